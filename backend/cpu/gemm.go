package cpu

//go:generate go run gemm_gen.go
//go:generate go run attn_gen.go
//go:generate go run quant_gen.go

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// A gemmKernel is one micro-kernel family: it computes tiles of at most
// mr x nr values of C from packed panels whose B rows are padded to a
// multiple of vec values.
type gemmKernel struct {
	name    string
	mr, nr  int // largest tile
	vec     int // B panel width granularity (one vector)
	kc, nc  int // cache blocking: k values per block, columns of B per packed block
	mc      int // rows of A per packed block
	compute func(kc int, a, b, c []float32, ldc, mr, nr int, alpha, beta float32)
	// bf16: the panels hold bfloat16 pairs (see packPairs), a step of
	// the kernel is two steps of k; the kernel sums the pairs' products
	// in float32 as VDPBF16PS does.
	bf16 bool
	// splitA, when not nil, rewrites each packed panel of A (mr rows,
	// kc steps, kc even) for the kernel after packA's packers fill it:
	// the AVX2 bf16 kernel's his and los (splitPairs).
	splitA func(a []float32, mr, kc int)
}

// gemmKernels lists the kernels this machine can run, best first; the first
// is the one Sgemm uses. Tests force the others through useKernel.
var gemmKernels []*gemmKernel

var activeKernel *gemmKernel

func init() {
	gemmKernels = append(archKernels(), genericKernel)
	activeKernel = gemmKernels[0]
}

// useKernel makes Sgemm use the named kernel and returns the previous one's
// name; it is for tests.
func useKernel(name string) string {
	prev := activeKernel.name
	for _, k := range gemmKernels {
		if k.name == name {
			activeKernel = k
			return prev
		}
	}
	panic("cpu: no gemm kernel " + name)
}

// GemmKernel names the micro-kernel Sgemm uses on this machine ("avx512",
// "avx2" or "go").
func GemmKernel() string { return activeKernel.name }

// Sgemm computes C = alpha*op(A)*op(B) + beta*C over row-major float32
// matrices, where op(A) is m x k and op(B) is k x n. A is stored m x k with
// row stride lda >= k, or k x m with lda >= m when transA is set; likewise B
// is k x n (ldb >= n) or, transposed, n x k (ldb >= k). C is m x n with
// ldc >= n. When beta is 0, C is only written, so NaNs in it do not
// propagate. The work is split across the worker pool by output tiles, never
// along k, so results are bit-identical for any thread count.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemm(Threads(), activeKernel, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil)
}

// SgemmST is Sgemm on the calling goroutine alone, for kernels that are
// already parallel (attention runs one per head). It gives the same results
// as Sgemm.
func SgemmST(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemm(1, activeKernel, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil)
}

const (
	// minParallelFlops is the work below which waking a worker costs more
	// than it saves.
	minParallelFlops = 1 << 18
	// partRows is the least length of a part of a parallel call beyond
	// one per thread; maxPartsPerThread caps how many parts a thread gets.
	partRows          = 256
	maxPartsPerThread = 4
	// Operands of minShared to maxShared values are packed once for all
	// parts of a parallel call.
	minShared = 1 << 14
	maxShared = 1 << 23
)

// gemm is Sgemm on threads threads with the micro-kernel kern (a bf16
// one makes it SgemmBF16). fixed, when not nil, is op(B) packed whole for
// kern (a frozen buffer's), used instead of packing B again.
func gemm(threads int, kern *gemmKernel, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, fixed []float32) {
	checkGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	gemmFrom(threads, kern, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, fixed, nil, imageA{})
}

// An imageA describes an op(A) (not transposed) stored image by image:
// A [N, m, plane] (a convolution's output gradient in NCHW) read as
// [m, N*plane], column p of row i at (p/plane)*stride + i*lda + p%plane.
// The zero value is an ordinary A.
type imageA struct{ plane, stride int }

// gemmFrom is gemm after its checks, with op(B) read from src (a
// convolution's column matrix packed straight from its image: implicit.go)
// where src is not nil, in place of b, and op(A) stored image by image
// where ai says so (float32 kernels only).
func gemmFrom(threads int, kern *gemmKernel, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, fixed []float32, src *colSource, ai imageA) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	call := getCall()
	call.kern, call.transA, call.transB, call.m, call.n, call.k = kern, transA, transB, m, n, k
	call.alpha, call.a, call.lda, call.b, call.ldb = alpha, a, lda, b, ldb
	call.beta, call.c, call.ldc, call.splitN = beta, c, ldc, false
	call.fixed, call.src, call.ai = fixed, src, ai
	call.next.Store(0)
	// Split C into parts along its longer side. Column splits fall on whole
	// vectors so every part runs full-width kernels. Large products get
	// more parts than threads, taken in turn by whichever thread is free,
	// so a thread the OS delays does not hold the others up; each part
	// repacks op(B) (or op(A)), so parts stay at least partRows long.
	// With B packed already, column parts fall on whole panels.
	parts, workers := 1, 1
	if threads > 1 && 2*float64(m)*float64(n)*float64(k) >= minParallelFlops {
		call.splitN = n > m
		long, units := m, m
		if call.splitN {
			long, units = n, (n+call.colUnit()-1)/call.colUnit()
		}
		workers = min(threads, units)
		per := min(max(long/(workers*partRows), 1), maxPartsPerThread)
		parts = min(workers*per, units)
	}
	call.parts, call.workers = parts, workers
	if workers == 1 {
		call.run(0, 1)
		putCall(call)
		return
	}
	// When several parts need the same packed operand, the threads pack
	// it together first, once.
	if parts > 1 && (fixed == nil || call.splitN) {
		size := k * packedWidth(kern, n)
		if call.splitN {
			size = k * m
		}
		if size >= minShared && size <= maxShared {
			call.preBuf = getPack()
			call.preBuf.a = grow(call.preBuf.a, size)
			call.pre = call.preBuf.a
			call.packing = true
			Parallel(workers, 1, call.fn)
			call.packing = false
		}
	}
	Parallel(workers, 1, call.fn)
	if call.preBuf != nil {
		putPack(call.preBuf)
		call.preBuf, call.pre = nil, nil
	}
	putCall(call)
}

// checkGemm panics with a clear message when the arguments describe
// matrices that do not fit in the slices.
func checkGemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("cpu: Sgemm: negative size m=%d n=%d k=%d", m, n, k))
	}
	check := checkMatrix
	if transA {
		check("a", k, m, a, lda)
	} else {
		check("a", m, k, a, lda)
	}
	if transB {
		check("b", n, k, b, ldb)
	} else {
		check("b", k, n, b, ldb)
	}
	check("c", m, n, c, ldc)
}

// checkMatrix panics unless s holds a rows x cols matrix with row stride ld.
func checkMatrix(name string, rows, cols int, s []float32, ld int) {
	if ld < max(cols, 1) {
		panic(fmt.Sprintf("cpu: Sgemm: ld%s=%d < %d columns", name, ld, cols))
	}
	// len(s) >= (rows-1)*ld + cols, without overflow.
	if rows > 0 && cols > 0 && (len(s) < cols || (len(s)-cols)/ld < rows-1) {
		panic(fmt.Sprintf("cpu: Sgemm: %s has %d values, a %dx%d matrix with stride %d needs %d", name, len(s), rows, cols, ld, (rows-1)*ld+cols))
	}
}

// scaleC sets C = beta*C, writing zeros when beta is 0.
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
		} else if beta != 1 {
			for j := range row {
				row[j] *= beta
			}
		}
	}
}

// A gemmCall holds the arguments of one Sgemm call for its parts. Calls are
// recycled so that a call allocates nothing, closure included.
type gemmCall struct {
	kern           *gemmKernel
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	a, b, c        []float32
	lda, ldb, ldc  int
	parts, workers int
	next           atomic.Int32 // next part to compute
	splitN         bool
	fixed          []float32        // op(B) packed whole already, or nil
	src            *colSource       // op(B)'s column matrix, read from its image, or nil
	ai             imageA           // how op(A) is stored
	packing        bool             // run packs pre instead of computing parts
	pre            []float32        // op(A) (splitN) or op(B) packed whole, or nil
	preBuf         *packBuf         // holds pre
	fn             func(lo, hi int) // call.run, bound once
}

var (
	callMu   sync.Mutex
	freeCall []*gemmCall
)

func getCall() *gemmCall {
	callMu.Lock()
	defer callMu.Unlock()
	if n := len(freeCall); n > 0 {
		c := freeCall[n-1]
		freeCall = freeCall[:n-1]
		return c
	}
	c := new(gemmCall)
	c.fn = c.run
	return c
}

// colUnit is the granularity of column parts: whole vectors, or whole
// panels when B comes packed.
func (g *gemmCall) colUnit() int {
	if g.fixed != nil {
		return g.kern.nr
	}
	return g.kern.vec
}

func putCall(c *gemmCall) {
	c.a, c.b, c.c, c.fixed, c.src = nil, nil, nil, nil, nil
	callMu.Lock()
	freeCall = append(freeCall, c)
	callMu.Unlock()
}

// run computes parts of the call until none is left. Which thread computes
// a part does not change its result. In the packing phase, thread lo packs
// its share of the operand that all parts use.
func (g *gemmCall) run(lo, hi int) {
	if g.packing {
		for w := lo; w < hi; w++ {
			if g.splitN {
				prepackA(g.pre, g.kern, g.transA, g.a, g.lda, g.m, g.k, w, g.workers, g.ai)
			} else {
				prepackB(g.pre, g.kern, g.transB, g.b, g.ldb, g.n, g.k, w, g.workers, g.src)
			}
		}
		return
	}
	buf := getPack()
	defer putPack(buf)
	var preA, preB []float32
	if g.pre != nil {
		if g.splitN {
			preA = g.pre
		} else {
			preB = g.pre
		}
	}
	if g.fixed != nil {
		preB = g.fixed
	}
	unit := g.colUnit()
	for {
		part := int(g.next.Add(1)) - 1
		if part >= g.parts {
			break
		}
		i0, i1, j0, j1 := 0, g.m, 0, g.n
		if g.splitN {
			// Whole vectors (or panels) per part; the last part takes
			// the rest.
			nu := (g.n + unit - 1) / unit
			j0 = min(part*nu/g.parts*unit, g.n)
			j1 = min((part+1)*nu/g.parts*unit, g.n)
		} else {
			i0 = part * g.m / g.parts
			i1 = (part + 1) * g.m / g.parts
		}
		if i0 >= i1 || j0 >= j1 {
			continue
		}
		var a, b []float32
		if g.transA {
			a = g.a[i0:]
		} else {
			a = g.a[i0*g.lda:]
		}
		switch {
		case g.src != nil:
		case g.transB:
			b = g.b[j0*g.ldb:]
		default:
			b = g.b[j0:]
		}
		gemmBlocked(g.kern, buf, g.transA, g.transB, i1-i0, j1-j0, g.k, g.alpha, a, g.lda, b, g.ldb, g.beta, g.c[i0*g.ldc+j0:], g.ldc, preA, preB, g.n, j0, g.src, g.ai)
	}
}

// packBuf holds one goroutine's packed panels. Buffers only grow and are
// recycled, so steady-state calls allocate nothing.
type packBuf struct{ a, b []float32 }

var (
	packMu   sync.Mutex
	freePack []*packBuf
)

func getPack() *packBuf {
	packMu.Lock()
	defer packMu.Unlock()
	if n := len(freePack); n > 0 {
		p := freePack[n-1]
		freePack = freePack[:n-1]
		return p
	}
	return new(packBuf)
}

func putPack(p *packBuf) {
	packMu.Lock()
	freePack = append(freePack, p)
	packMu.Unlock()
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// gemmBlocked computes C = alpha*op(A)*op(B) + beta*C on one goroutine, in
// the order of BLIS: B is cut into packed blocks of kern.nc columns and k
// into blocks of at most kern.kc (C accumulates over them in order), A into
// packed blocks of kern.mc rows, and each pair of micro-panels goes to the
// micro-kernel.
// Rows are dealt into tiles of near-equal height so no thin tail tile runs
// a starved kernel. preA or preB, when not nil, hold op(A) or op(B) packed
// whole by prepackA or prepackB; preB holds all bn columns of op(B), of
// which these are the columns from bj0 on (a multiple of kern.nr). src,
// when not nil, is op(B) (from its column bj0 on), read in place of b; ai
// says how A is stored.
func gemmBlocked(kern *gemmKernel, buf *packBuf, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, preA, preB []float32, bn, bj0 int, src *colSource, ai imageA) {
	kcb := blockSize(k, kern.kc, 1)
	mcb := blockSize(m, kern.mc, kern.mr)
	ncb := kern.nc
	npad := packedWidth(kern, bn)
	for jc := 0; jc < n; jc += ncb {
		nc := min(ncb, n-jc)
		for pc := 0; pc < k; pc += kcb {
			kc := min(kcb, k-pc)
			bet := beta
			if pc > 0 {
				bet = 1
			}
			// The packed block of B stays in the outer caches, the
			// block of A in L2, one micro-panel of B in L1.
			var pb []float32
			if preB != nil {
				o := pc*npad + (bj0+jc)*kc
				pb = preB[o : o+kc*packedWidth(kern, nc)]
			} else {
				buf.b = grow(buf.b, kc*packedWidth(kern, nc))
				pb = buf.b
				packB(kern, pb, transB, b, ldb, pc, jc, kc, nc, src, bj0)
			}
			for ic := 0; ic < m; ic += mcb {
				mc := min(mcb, m-ic)
				ntile := (mc + kern.mr - 1) / kern.mr
				var pa []float32
				if preA != nil {
					pa = preA[pc*m+ic*kc : pc*m+(ic+mc)*kc]
				} else {
					buf.a = grow(buf.a, mc*kc)
					pa = buf.a
					packA(kern, pa, transA, a, lda, ic, pc, mc, kc, ntile, ai)
				}
				bo := 0
				for j := 0; j < nc; j += kern.nr {
					nr := min(kern.nr, nc-j)
					w := roundUp(nr, kern.vec)
					bp := pb[bo : bo+kc*w]
					bo += kc * w
					for t := 0; t < ntile; t++ {
						r0, r1 := t*mc/ntile, (t+1)*mc/ntile
						kern.compute(kc, pa[r0*kc:r1*kc], bp, c[(ic+r0)*ldc+jc+j:], ldc, r1-r0, nr, alpha, bet)
					}
				}
			}
		}
	}
}

// packedWidth is the width of n columns of B packed into panels: whole
// panels of kern.nr, the last one padded to whole vectors.
func packedWidth(kern *gemmKernel, n int) int {
	return n/kern.nr*kern.nr + roundUp(n%kern.nr, kern.vec)
}

// prepackA packs the blocks of op(A) that gemmBlocked visits, for all of
// its m rows, into dst: block (pc, ic) starts at pc*m + ic*kc. Only blocks
// u with u%step == first are packed, so that several goroutines can share
// the work.
func prepackA(dst []float32, kern *gemmKernel, transA bool, a []float32, lda, m, k, first, step int, ai imageA) {
	kcb := blockSize(k, kern.kc, 1)
	mcb := blockSize(m, kern.mc, kern.mr)
	u := 0
	for pc := 0; pc < k; pc += kcb {
		kc := min(kcb, k-pc)
		for ic := 0; ic < m; ic += mcb {
			if u%step == first {
				mc := min(mcb, m-ic)
				packA(kern, dst[pc*m+ic*kc:pc*m+(ic+mc)*kc], transA, a, lda, ic, pc, mc, kc, (mc+kern.mr-1)/kern.mr, ai)
			}
			u++
		}
	}
}

// prepackB packs the blocks of op(B) that gemmBlocked visits, for all of
// its n columns, into dst: block (pc, jc) starts at pc*packedWidth(n) +
// jc*kc. Blocks are shared out as in prepackA. src, when not nil, is
// op(B), read in place of b.
func prepackB(dst []float32, kern *gemmKernel, transB bool, b []float32, ldb, n, k, first, step int, src *colSource) {
	kcb := blockSize(k, kern.kc, 1)
	npad := packedWidth(kern, n)
	u := 0
	for pc := 0; pc < k; pc += kcb {
		kc := min(kcb, k-pc)
		for jc := 0; jc < n; jc += kern.nc {
			if u%step == first {
				nc := min(kern.nc, n-jc)
				o := pc*npad + jc*kc
				packB(kern, dst[o:o+kc*packedWidth(kern, nc)], transB, b, ldb, pc, jc, kc, nc, src, 0)
			}
			u++
		}
	}
}

// blockSize cuts n into the fewest blocks of at most max (a multiple of
// unit, unless n is smaller) and returns the size of equal blocks.
func blockSize(n, max, unit int) int {
	if n <= max {
		return n
	}
	nb := (n + max - 1) / max
	return roundUp((n+nb-1)/nb, unit)
}

func roundUp(n, m int) int { return (n + m - 1) / m * m }

// packA packs rows [i0, i0+mc) and columns [p0, p0+kc) of op(A) into ntile
// micro-panels of near-equal height; panel t holds kc steps of its rows
// (bf16 kernels: (kc+1)/2 steps of pairs, in the same place). An A
// stored image by image (ai) is packed a run of one image's columns at a
// time.
func packA(kern *gemmKernel, dst []float32, trans bool, a []float32, lda, i0, p0, mc, kc, ntile int, ai imageA) {
	strided, rows := packers(kern)
	for t := 0; t < ntile; t++ {
		r0, r1 := t*mc/ntile, (t+1)*mc/ntile
		mr := r1 - r0
		d := dst[r0*kc : r1*kc]
		if ai.plane > 0 {
			for q := p0; q < p0+kc; {
				n, l := q/ai.plane, q%ai.plane
				run := min(ai.plane-l, p0+kc-q)
				strided(d[(q-p0)*mr:], mr, a[n*ai.stride+(i0+r0)*lda+l:], lda, run, mr, mr)
				q += run
			}
			continue
		}
		if trans {
			rows(d, mr, a[p0*lda+i0+r0:], lda, kc, mr, mr) // A is stored k x m
		} else {
			strided(d, mr, a[(i0+r0)*lda+p0:], lda, kc, mr, mr)
		}
		if kern.splitA != nil && kc%2 == 0 {
			kern.splitA(d, mr, kc)
		}
	}
}

// packB packs rows [p0, p0+kc) and columns [j0, j0+nc) of op(B) into
// micro-panels kern.nr columns wide (the last one narrower, padded with
// zeros to a multiple of kern.vec); each panel holds kc rows (bf16
// kernels: (kc+1)/2 rows of pairs, in the same place). src, when not
// nil, is op(B) from column bj0 on (float32 kernels only), read in place
// of b.
func packB(kern *gemmKernel, dst []float32, trans bool, b []float32, ldb, p0, j0, kc, nc int, src *colSource, bj0 int) {
	strided, rows := packers(kern)
	o := 0
	for j := 0; j < nc; j += kern.nr {
		w := min(kern.nr, nc-j)
		wp := roundUp(w, kern.vec)
		d := dst[o : o+kc*wp]
		o += kc * wp
		if src != nil {
			if trans {
				src.packStrided(d, wp, bj0+j0+j, p0, kc, w, wp)
			} else {
				src.packRows(d, wp, p0, bj0+j0+j, kc, w, wp)
			}
			continue
		}
		if trans {
			strided(d, wp, b[(j0+j)*ldb+p0:], ldb, kc, w, wp) // B is stored n x k
		} else {
			rows(d, wp, b[p0*ldb+j0+j:], ldb, kc, w, wp)
		}
	}
}

// packers returns kern's packing primitives.
func packers(kern *gemmKernel) (strided, rows func(dst []float32, ds int, src []float32, ss, kc, cnt, width int)) {
	if kern.bf16 {
		return pairStrided, pairRowsPack
	}
	return packStrided, packRows
}

// packStrided and packRows are the packing primitives, replaced by vector
// code where the machine has it. Both fill kc steps p of width values at
// dst[p*ds:], the first cnt from src and the rest with zeros: packStrided
// reads step p down a column, src[i*ss+p], packRows along a row,
// src[p*ss+i].
var (
	packStrided = packStridedGo
	packRows    = packRowsGo
)

func packStridedGo(dst []float32, ds int, src []float32, ss, kc, cnt, width int) {
	for i := 0; i < cnt; i++ {
		row := src[i*ss : i*ss+kc]
		for p, v := range row {
			dst[p*ds+i] = v
		}
	}
	if width > cnt {
		for p := 0; p < kc; p++ {
			clear(dst[p*ds+cnt : p*ds+width])
		}
	}
}

func packRowsGo(dst []float32, ds int, src []float32, ss, kc, cnt, width int) {
	for p := 0; p < kc; p++ {
		d := dst[p*ds : p*ds+width]
		copy(d[:cnt], src[p*ss:p*ss+cnt])
		clear(d[cnt:])
	}
}
