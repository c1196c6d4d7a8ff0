// Package cpu is golem's CPU backend: Go kernels over float32 slices, GEMM
// as a packed, cache-blocked driver over assembly micro-kernels, and one
// worker pool for all parallel work.
package cpu

import (
	"fmt"
	"math/bits"
	"sync"

	"github.com/golem-ml/golem/backend"
)

func init() {
	backend.Register("cpu", func() (backend.Backend, error) { return New(), nil })
}

// Buf is a CPU buffer: a float32 slice.
type Buf struct {
	D []float32

	frozen *frozen // set by CPU.Freeze
}

// frozen holds a frozen buffer's values packed for the GEMMs that read it
// as their B operand, one packing per way it is read.
type frozen struct {
	mu    sync.Mutex
	packs []*packedB
}

// packedB is op(B) of a GEMM packed whole for kern, for B at offset off
// with row stride ldb, n x k (after transB).
type packedB struct {
	kern           *gemmKernel
	transB         bool
	off, ldb, n, k int
	data           []float32
}

// Freeze declares that b's values do not change until Thaw (or Free): the
// weights of a model being served. MatMul then keeps b packed the way its
// products read it, packing it once instead of at every call. Writing a
// frozen buffer without thawing it first leaves stale packed copies: the
// products would go on reading the old values.
func (c *CPU) Freeze(b backend.Buffer) {
	bb, ok := b.(*Buf)
	if !ok {
		return // a quantized buffer is read in place
	}
	if bb.frozen == nil {
		bb.frozen = &frozen{}
	}
}

// Thaw ends Freeze: the packed copies of b are dropped.
func (c *CPU) Thaw(b backend.Buffer) {
	if bb, ok := b.(*Buf); ok {
		bb.frozen = nil
	}
}

// FrozenBytes is the bytes of b's packed copies: none until a product
// with several rows reads b after Freeze, none after Thaw.
func (c *CPU) FrozenBytes(b backend.Buffer) int64 {
	bb, ok := b.(*Buf)
	if !ok || bb.frozen == nil {
		return 0
	}
	bb.frozen.mu.Lock()
	defer bb.frozen.mu.Unlock()
	var n int64
	for _, p := range bb.frozen.packs {
		n += 4 * int64(len(p.data))
	}
	return n
}

// packed returns op(B) packed whole for the active kernel, packing it on
// first use; nil when B is not frozen or too small to be worth keeping.
func packed(b backend.Buffer, transB bool, off, ldb, n, k int) []float32 {
	bb, ok := b.(*Buf)
	if !ok {
		return nil
	}
	fz := bb.frozen
	if fz == nil || n*k < 1<<12 {
		return nil
	}
	kern := activeKernel
	fz.mu.Lock()
	defer fz.mu.Unlock()
	for _, p := range fz.packs {
		if p.kern == kern && p.transB == transB && p.off == off && p.ldb == ldb && p.n == n && p.k == k {
			return p.data
		}
	}
	p := &packedB{kern: kern, transB: transB, off: off, ldb: ldb, n: n, k: k, data: make([]float32, k*packedWidth(kern, n))}
	prepackB(p.data, kern, transB, bb.D[off:], ldb, n, k, 0, 1, nil)
	fz.packs = append(fz.packs, p)
	return p.data
}

// Len reports the number of values.
func (b *Buf) Len() int { return len(b.D) }

// CPU implements backend.Backend. Freed buffers are kept in free lists by
// size class (sizes within an eighth of each other share a list), so a loop
// whose shapes repeat, or nearly repeat, allocates nothing after its first
// steps. What the lists keep is bounded (poolLimit): past the bound, the
// buffers of the size class least recently used go back to the garbage
// collector first, so lengths no longer seen (a serve's past requests, a
// run's rare long batches) leave the pool and the sizes in use stay.
type CPU struct {
	mu     sync.Mutex
	free   map[int]*class
	lru    class // the classes holding buffers, most recently used first: lru.next
	pooled int   // bytes held in free lists
	live   int64 // bytes handed out and not freed
	peak   int64 // the most live has been since New or ResetPeak
	most   int64 // the most live has been since New
	misses int64 // allocations the free lists could not serve
}

// A class is the free list of one size class, in the CPU's list of
// classes by last use.
type class struct {
	size       int
	bufs       []*Buf
	prev, next *class
}

// use moves cl to the front of the list of classes (the most recent).
func (c *CPU) use(cl *class) {
	if c.lru.next == cl {
		return
	}
	if cl.next != nil { // in the list: take it out
		cl.prev.next, cl.next.prev = cl.next, cl.prev
	}
	cl.prev, cl.next = &c.lru, c.lru.next
	c.lru.next.prev = cl
	c.lru.next = cl
}

// poolLimit is the most bytes the free lists keep: poolFactor times the
// most ever in use at once, at least MinPooled and at most MaxPooled.
func (c *CPU) poolLimit() int {
	return min(MaxPooled, max(MinPooled, int(poolFactor*c.most)))
}

// poolFactor bounds the free lists by the most bytes ever in use at once.
// A step's buffers, freed, serve the next step's, but a loop whose lengths
// vary keeps a step's worth for each length in turn: train's memory tests
// (train/memory_test.go) end holding 0.02 to 2.8 times their peak, and
// with a bound of twice it the SFT-with-LoRA and LLaVA stages missed the
// pool at every step.
const poolFactor = 4

// trim drops buffers, least recently used class first, until the free
// lists hold at most poolLimit bytes.
func (c *CPU) trim() {
	limit := c.poolLimit()
	for c.pooled > limit {
		cl := c.lru.prev
		if cl == &c.lru {
			return
		}
		if n := len(cl.bufs); n > 0 {
			cl.bufs[n-1] = nil
			cl.bufs = cl.bufs[:n-1]
			c.pooled -= 4 * cl.size
		}
		if len(cl.bufs) == 0 {
			cl.prev.next, cl.next.prev = cl.next, cl.prev
			cl.prev, cl.next = nil, nil
			delete(c.free, cl.size)
		}
	}
}

// MemStats is what a CPU backend's memory holds: the counters a test reads
// to show that a loop gives back all it takes.
type MemStats struct {
	Live   int64 // bytes of buffers handed out (Alloc, AllocHalf) and not freed, by size class
	Pooled int64 // bytes kept in the free lists for reuse
	Misses int64 // allocations the free lists could not serve: new memory from the heap
	Peak   int64 // the most Live has been since New or ResetPeak
	Limit  int64 // the most Pooled may be now: 4 times the most Live has been, within [MinPooled, MaxPooled]
}

// MemStats returns the backend's memory counters.
func (c *CPU) MemStats() MemStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return MemStats{Live: c.live, Pooled: int64(c.pooled), Misses: c.misses, Peak: c.peak, Limit: int64(c.poolLimit())}
}

// ResetPeak starts MemStats.Peak again from the live bytes now.
func (c *CPU) ResetPeak() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.peak = c.live
}

// The CPU backend has every optional ability package backend declares;
// these fail to build if a method drifts from the contract (a caller's
// type assertion would otherwise fail quietly and take the slower path).
var (
	_ backend.Backend             = (*CPU)(nil)
	_ backend.PackedAttention     = (*CPU)(nil)
	_ backend.InPlaceCrossEntropy = (*CPU)(nil)
	_ backend.MultiAdamW          = (*CPU)(nil)
	_ backend.Freezer             = (*CPU)(nil)
	_ backend.RowAttention        = (*CPU)(nil)
	_ backend.RowStore            = (*CPU)(nil)
	_ backend.HalfCache           = (*CPU)(nil)
	_ backend.Quantized           = (*CPU)(nil)
)

// MaxPooled is the most memory, in bytes, a CPU backend keeps for reuse;
// MinPooled what it may keep however little it has had in use at once.
var (
	MaxPooled = 4 << 30
	MinPooled = 64 << 20
)

// New returns a CPU backend.
func New() *CPU {
	c := &CPU{free: map[int]*class{}}
	c.lru.next, c.lru.prev = &c.lru, &c.lru
	return c
}

// Name returns "cpu".
func (c *CPU) Name() string { return "cpu" }

func f(b backend.Buffer) []float32 {
	if b == nil {
		return nil
	}
	if bb, ok := b.(*Buf); ok {
		return bb.D
	}
	panic(fmt.Sprintf("cpu: a %T where the kernel reads float32 values", b))
}

// Data returns the slice behind a CPU buffer (nil for nil). It is for this
// backend's own tests and benchmarks; code above the backend uses Download.
func Data(b backend.Buffer) []float32 { return f(b) }

// sizeClass rounds n up to the capacity of its free list: multiples of 16
// up to 256, then the top four bits of n (at most 1/8 wasted).
func sizeClass(n int) int {
	if n <= 256 {
		return (n + 15) &^ 15
	}
	shift := bits.Len(uint(n)) - 4
	return (n + 1<<shift - 1) >> shift << shift
}

// Alloc returns a buffer of n values from the free list or the heap.
func (c *CPU) Alloc(n int, zero bool) backend.Buffer {
	size := sizeClass(n)
	c.mu.Lock()
	c.live += 4 * int64(size)
	c.peak = max(c.peak, c.live)
	c.most = max(c.most, c.live)
	if cl := c.free[size]; cl != nil && len(cl.bufs) > 0 {
		b := cl.bufs[len(cl.bufs)-1]
		cl.bufs[len(cl.bufs)-1] = nil
		cl.bufs = cl.bufs[:len(cl.bufs)-1]
		c.pooled -= 4 * size
		c.use(cl)
		c.mu.Unlock()
		b.D = b.D[:n]
		if zero {
			clear(b.D)
		}
		return b
	}
	c.misses++
	c.mu.Unlock()
	return &Buf{D: make([]float32, n, size)}
}

// Free returns b to its free list, then drops the least recently used
// class's buffers while the lists hold more than poolLimit bytes.
func (c *CPU) Free(b backend.Buffer) {
	if b == nil {
		return
	}
	bb, ok := b.(*Buf)
	if !ok {
		if hb, ok := b.(*HalfBuf); ok { // the garbage collector's
			c.mu.Lock()
			c.live -= 2 * int64(cap(hb.H))
			c.mu.Unlock()
		}
		return
	}
	bb.frozen = nil
	size := cap(bb.D)
	if sizeClass(size) != size {
		return // not made by Alloc
	}
	c.mu.Lock()
	c.live -= 4 * int64(size)
	cl := c.free[size]
	if cl == nil {
		cl = &class{size: size}
		c.free[size] = cl
	}
	cl.bufs = append(cl.bufs, bb)
	c.pooled += 4 * size
	c.use(cl)
	c.trim()
	c.mu.Unlock()
}

// Upload copies src into dst at off.
func (c *CPU) Upload(dst backend.Buffer, off int, src []float32) {
	copy(f(dst)[off:off+len(src)], src)
}

// Download copies len(dst) values from src at off.
func (c *CPU) Download(dst []float32, src backend.Buffer, off int) {
	if q, ok := src.(*QuantBuf); ok {
		if off < 0 || off+len(dst) > q.Len() {
			panic(fmt.Sprintf("cpu: Download of [%d, %d) from %d values", off, off+len(dst), q.Len()))
		}
		q.dequant(dst, off)
		return
	}
	copy(dst, f(src)[off:off+len(dst)])
}

// Fill sets every value of dst to v.
func (c *CPU) Fill(dst backend.Buffer, v float32) {
	d := f(dst)
	// A model's gradients are zeroed whole each step: tens of MB, split
	// over the threads.
	Parallel(len(d), 1<<16, func(lo, hi int) {
		if v == 0 {
			clear(d[lo:hi])
			return
		}
		for i := lo; i < hi; i++ {
			d[i] = v
		}
	})
}

// Copy2D copies or adds a block of rows.
func (c *CPU) Copy2D(dst backend.Buffer, dOff, dStride int, src backend.Buffer, sOff, sStride int, rows, cols int, acc bool) {
	d, s := f(dst), f(src)
	if rows == 1 || (dStride == cols && sStride == cols) {
		// One contiguous run (a gradient added whole, as addGrad does):
		// split its values, not its one row, over the threads.
		n := rows * cols
		Parallel(n, 16384, func(lo, hi int) {
			dr, sr := d[dOff+lo:dOff+hi], s[sOff+lo:sOff+hi]
			if acc {
				axpy(dr, sr, 1)
			} else {
				copy(dr, sr)
			}
		})
		return
	}
	Parallel(rows, max(1, 16384/max(cols, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			dr := d[dOff+r*dStride : dOff+r*dStride+cols]
			sr := s[sOff+r*sStride : sOff+r*sStride+cols]
			if acc {
				axpy(dr, sr, 1)
			} else {
				copy(dr, sr)
			}
		}
	})
}

// Permute reorders dimensions.
func (c *CPU) Permute(dst, x backend.Buffer, shape, perm []int, acc bool) {
	n := len(shape)
	if n > backend.MaxDims || len(perm) != n {
		panic(fmt.Sprintf("cpu: permute of %d dims", n))
	}
	var inStride, outShape, outStrideIn [backend.MaxDims]int
	s := 1
	for i := n - 1; i >= 0; i-- {
		inStride[i] = s
		s *= shape[i]
	}
	for i := 0; i < n; i++ {
		outShape[i] = shape[perm[i]]
		outStrideIn[i] = inStride[perm[i]]
	}
	d, xs := f(dst), f(x)
	total := s
	if total == 0 {
		return
	}
	last := outShape[n-1]
	ls := outStrideIn[n-1]
	if n >= 2 && ls != 1 && last < 8 {
		permuteShort(d, xs, n, total, &outShape, &outStrideIn, acc)
		return
	}
	rows := total / last
	Parallel(rows, max(1, 8192/last), func(lo, hi int) {
		var idx [backend.MaxDims]int
		// decompose lo into the output index of dims 0..n-2
		r := lo
		for i := n - 2; i >= 0; i-- {
			idx[i] = r % outShape[i]
			r /= outShape[i]
		}
		for row := lo; row < hi; row++ {
			base := 0
			for i := 0; i < n-1; i++ {
				base += idx[i] * outStrideIn[i]
			}
			out := d[row*last : row*last+last]
			switch {
			case ls == 1 && acc && last >= 16: // a contiguous run (shorter ones cost more in the call)
				axpy(out, xs[base:base+last], 1)
			case ls == 1 && !acc:
				copy(out, xs[base:base+last])
			case acc:
				for j := range out {
					out[j] += xs[base+j*ls]
				}
			default:
				for j := range out {
					out[j] = xs[base+j*ls]
				}
			}
			for i := n - 2; i >= 0; i-- {
				idx[i]++
				if idx[i] < outShape[i] {
					break
				}
				idx[i] = 0
			}
		}
	})
}

// permuteShort is Permute where the output's last dim is short and
// strided (an interleave, as the sub-pixel convolutions' phases): a row is
// the last two dims, so the index arithmetic runs once per row of them,
// not once per few values. A row of two interleaved contiguous runs (a
// stride-2 convolution's phases) is vinterleave2 with AVX-512: two loads
// and two permutes for each 32 values (vinterleave2256 with AVX2).
func permuteShort(d, xs []float32, n, total int, outShape, outStrideIn *[backend.MaxDims]int, acc bool) {
	last, ls := outShape[n-1], outStrideIn[n-1]
	l2, s2 := outShape[n-2], outStrideIn[n-2]
	blk := l2 * last
	// two contiguous runs interleaved (stride-2 phases): vinterleave2
	ilv := (haveVec || haveVec256) && last == 2 && s2 == 1
	Parallel(total/blk, max(1, 8192/blk), func(lo, hi int) {
		var idx [backend.MaxDims]int
		r := lo
		for i := n - 3; i >= 0; i-- {
			idx[i] = r % outShape[i]
			r /= outShape[i]
		}
		for row := lo; row < hi; row++ {
			base := 0
			for i := 0; i < n-2; i++ {
				base += idx[i] * outStrideIn[i]
			}
			out := d[row*blk : row*blk+blk]
			if ilv {
				a, b := xs[base:base+l2], xs[base+ls:base+ls+l2]
				if haveVec {
					vinterleave2(&out[0], &a[0], &b[0], l2, acc)
				} else {
					vinterleave2256(&out[0], &a[0], &b[0], l2, acc)
				}
				goto next
			}
			// value (j2, j) of the row reads xs[base + j2*s2 + j*ls]:
			// one strided (or, with s2 == 1, contiguous) input run per j
			for j := range last {
				src := xs[base+j*ls:]
				src = src[:(l2-1)*s2+1]
				o := out[j:]
				o = o[:(l2-1)*last+1]
				if acc {
					for j2 := range l2 {
						o[j2*last] += src[j2*s2]
					}
				} else {
					for j2 := range l2 {
						o[j2*last] = src[j2*s2]
					}
				}
			}
		next:
			for i := n - 3; i >= 0; i-- {
				idx[i]++
				if idx[i] < outShape[i] {
					break
				}
				idx[i] = 0
			}
		}
	})
}

// MatMul runs a batched GEMM. Batches run in parallel when there are
// several, each matrix product in parallel otherwise.
func (c *CPU) MatMul(g backend.Gemm, a, b, cc backend.Buffer) {
	if q, ok := b.(*QuantBuf); ok {
		c.matmulQuantB(g, a, q, cc)
		return
	}
	matmul(g, a, b, cc, activeKernel)
}

// MatMulBF16 is MatMul with op(A) and op(B) rounded to bfloat16 and their
// products summed in float32 (SgemmBF16), backend.BF16Products's ability. A
// quantized B runs its own kernel, as in MatMul.
func (c *CPU) MatMulBF16(g backend.Gemm, a, b, cc backend.Buffer) {
	if q, ok := b.(*QuantBuf); ok {
		c.matmulQuantB(g, a, q, cc)
		return
	}
	matmul(g, a, b, cc, activeBF16)
}

// matmul is MatMul with the micro-kernel kern (float32 or bf16).
func matmul(g backend.Gemm, a, b, cc backend.Buffer, kern *gemmKernel) {
	A, B, C := f(a), f(b), f(cc)
	if !kern.bf16 && g.Batch <= 1 && g.M == 1 && g.K > 0 {
		gemv(g.TransA, g.TransB, g.N, g.K, g.Alpha, A[g.OffA:], g.LDA, B[g.OffB:], g.LDB, g.Beta, C[g.OffC:g.OffC+g.N])
		return
	}
	if g.Batch <= 1 {
		var fixed []float32
		if !kern.bf16 {
			fixed = packed(b, g.TransB, g.OffB, g.LDB, g.N, g.K)
		}
		gemm(Threads(), kern, g.TransA, g.TransB, g.M, g.N, g.K, g.Alpha, A[g.OffA:], g.LDA, B[g.OffB:], g.LDB, g.Beta, C[g.OffC:], g.LDC, fixed)
		return
	}
	if g.StrideC == 0 {
		// Every batch writes the same C: run them in order.
		for i := 0; i < g.Batch; i++ {
			beta := g.Beta
			if i > 0 {
				beta = 1
			}
			gemm(Threads(), kern, g.TransA, g.TransB, g.M, g.N, g.K, g.Alpha, A[g.OffA+i*g.StrideA:], g.LDA, B[g.OffB+i*g.StrideB:], g.LDB, beta, C[g.OffC:], g.LDC, nil)
		}
		return
	}
	if g.Batch < Threads() || int64(g.M)*int64(g.N)*int64(g.K) > 1<<21 {
		for i := 0; i < g.Batch; i++ {
			gemm(Threads(), kern, g.TransA, g.TransB, g.M, g.N, g.K, g.Alpha, A[g.OffA+i*g.StrideA:], g.LDA, B[g.OffB+i*g.StrideB:], g.LDB, g.Beta, C[g.OffC+i*g.StrideC:], g.LDC, nil)
		}
		return
	}
	Parallel(g.Batch, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			gemm(1, kern, g.TransA, g.TransB, g.M, g.N, g.K, g.Alpha, A[g.OffA+i*g.StrideA:], g.LDA, B[g.OffB+i*g.StrideB:], g.LDB, g.Beta, C[g.OffC+i*g.StrideC:], g.LDC, nil)
		}
	})
}

// gemv is MatMul for one row of output (decoding, bias gradients):
// c = alpha*x*op(B) + beta*c with x the one row of op(A). It reads B once,
// in place, where a GEMM would pack it first. Threads split the columns of
// c, so each value is computed the same way for any thread count.
func gemv(transA, transB bool, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32) {
	x := a[:k]
	if transA && lda != 1 {
		// op(A) is the first column of a k x lda matrix.
		xb := gemvScratch.Get().(*[]float32)
		defer gemvScratch.Put(xb)
		if cap(*xb) < k {
			*xb = make([]float32, k)
		}
		x = (*xb)[:k]
		for p := range x {
			x[p] = a[p*lda]
		}
	}
	grain := 64
	if !transB {
		grain = 256
	}
	Parallel(n, grain, func(lo, hi int) {
		cj := c[lo:hi]
		switch beta {
		case 0:
			clear(cj)
		case 1:
		default:
			for j := range cj {
				cj[j] *= beta
			}
		}
		if transB {
			// B is n x k: c[j] += alpha * dot(x, B[j]).
			for j := lo; j < hi; j++ {
				c[j] += alpha * dot(x, b[j*ldb:j*ldb+k])
			}
			return
		}
		p := 0
		if (haveVec || haveVec256) && len(cj) > 0 {
			// Four rows of B per pass over c.
			for ; p+4 <= len(x); p += 4 {
				xs := [4]float32{alpha * x[p], alpha * x[p+1], alpha * x[p+2], alpha * x[p+3]}
				_ = b[(p+3)*ldb+hi-1]
				if haveVec {
					vaxpy4(&cj[0], &b[p*ldb+lo], ldb, len(cj), &xs)
				} else {
					vaxpy4256(&cj[0], &b[p*ldb+lo], ldb, len(cj), &xs)
				}
			}
		}
		for ; p < len(x); p++ {
			axpy(cj, b[p*ldb+lo:p*ldb+hi], alpha*x[p])
		}
	})
}

var gemvScratch = sync.Pool{New: func() any { return new([]float32) }}

// axpy: y += a*x.
func axpy(y, x []float32, a float32) {
	if len(y) == 0 {
		return
	}
	x = x[:len(y)]
	if haveVec {
		vaxpy(&y[0], &x[0], len(y), a)
		return
	}
	if haveVec256 {
		vaxpy256(&y[0], &x[0], len(y), a)
		return
	}
	if a == 1 {
		for i := range y {
			y[i] += x[i]
		}
		return
	}
	for i := range y {
		y[i] += a * x[i]
	}
}

// dot returns the dot product of x and y[:len(x)].
func dot(x, y []float32) float32 {
	if len(x) == 0 {
		return 0
	}
	y = y[:len(x)]
	if haveVec {
		return vdot(&x[0], &y[0], len(x))
	}
	if haveVec256 {
		return vdot256(&x[0], &y[0], len(x))
	}
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * y[i]
		s1 += x[i+1] * y[i+1]
		s2 += x[i+2] * y[i+2]
		s3 += x[i+3] * y[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// grain returns a parallel grain so that each chunk does about 32k values of
// work over rows of the given width.
func grain(cols int) int { return max(1, 32768/max(cols, 1)) }
