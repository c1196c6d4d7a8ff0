package cpu

import (
	"fmt"
	"math"
	"sync"

	"github.com/golem-ml/golem/backend"
)

// Quantized weights (backend.Quantized): ggml's Q8_0 and Q4_0 blocks of 32
// values with one scale each, and float16 matrices (F16; see matmulHalf). A product x W^T first rounds each row of x
// to int8 per block of 32 (scale = max|x|/127, as llama.cpp's
// quantize_row_q8_0), then sums code times code in int32 per block and
// scales each block's sum by both scales in float32: llama.cpp's
// Q8_0 x Q8_0 and Q4_0 x Q8_0 dot products. On AVX-512 VNNI the block sums
// are VPDPBUSD (unsigned x signed bytes); its unsigned operand is the
// weights' codes shifted to 0..255 (Q8_0's q+128, Q4_0's nibble as it is),
// and the shift is taken back with the activations' block sums. On AVX2
// without VNNI they are VPMADDUBSW's (quant_gen.go: exact, so the outputs
// are the Go definition's bit for bit).
//
// The matrices are kept in panels of 16 rows (panelAt) for kernels whose
// 16 int32 lanes are 16 rows of W (q8gemm8, q4gemm8): a block of the
// panel's 16 rows is loaded (Q4_0: unpacked) into 8 registers once and
// serves up to 8 rows of activations, each row's 4 codes a step broadcast
// to all lanes, and each lane sums a whole block, so that a block's sum
// is converted, scaled and added once for 16 outputs (llama.cpp's CPU
// library repacks Q4_0 rows 8 at a time for the same reason), where
// lanes holding positions of one dot product had paid a conversion, a
// multiply and an add per 64 values and pair of rows, and a reduction
// across lanes per output. The activations are rounded straight into the
// layout the kernels read (qrows).

// QuantBuf is a quantized weight matrix: Rows x Cols values in blocks of
// 32 along each row, kept as the kernels read them (panelAt); F16 and
// BF16 values as they are (H).
type QuantBuf struct {
	T          backend.QuantType
	Rows, Cols int
	Q          []byte   // Q8_0's and Q4_0's panels
	H          []uint16 // F16's or BF16's values (Q is nil)
}

// panelBlock is the size of one block of a panel: 16 rows' float16 scales
// (32 bytes), then the codes in vectors of 64 bytes, 4 values of each of
// the 16 rows. Q8_0's 8 vectors: byte 4r+t of vector g is row r's value
// 4g+t, q+128. Q4_0's 4: byte 4r+t of vector g holds row r's values 4g+t
// (low nibble) and 16+4g+t (high), ggml's nibbles (q+8).
func (b *QuantBuf) panelBlock() int {
	if b.T == backend.Q4_0 {
		return 32 + 4*64
	}
	return 32 + 8*64
}

// panelAt returns where row r's block blk starts in Q (its panel's block)
// and r's place in the panel. A panel is the blocks of 16 rows one after
// the other (Cols/32 of them); the last panel is padded with rows of
// zeros (scale 0).
func (b *QuantBuf) panelAt(r, blk int) (int, int) {
	nb := b.Cols / backend.QuantBlock
	return (r/16*nb + blk) * b.panelBlock(), r % 16
}

// Len reports the number of values.
func (b *QuantBuf) Len() int { return b.Rows * b.Cols }

// UploadQuant returns a quantized buffer of rows x cols values from
// blocks, ggml's bytes (a GGUF tensor's data).
func (c *CPU) UploadQuant(t backend.QuantType, rows, cols int, blocks []byte) (backend.Buffer, error) {
	bb := t.BlockBytes()
	if bb == 0 {
		return nil, fmt.Errorf("cpu: unknown quantized type %v", t)
	}
	if rows <= 0 || cols <= 0 || cols%t.BlockSize() != 0 {
		return nil, fmt.Errorf("cpu: %v matrix of %d x %d: rows must be whole blocks of %d", t, rows, cols, t.BlockSize())
	}
	nb := rows * (cols / t.BlockSize())
	if len(blocks) != nb*bb {
		return nil, fmt.Errorf("cpu: %v matrix of %d x %d takes %d bytes, have %d", t, rows, cols, nb*bb, len(blocks))
	}
	if t == backend.F16 || t == backend.BF16 {
		h := make([]uint16, nb)
		for i := range h {
			h[i] = uint16(blocks[2*i]) | uint16(blocks[2*i+1])<<8
			if t == backend.F16 && h[i]&0x7c00 == 0x7c00 {
				return nil, fmt.Errorf("cpu: F16 value %d (row %d) is %g", i, i/cols, f16ToF32(h[i]))
			}
			if t == backend.BF16 && h[i]&0x7f80 == 0x7f80 {
				return nil, fmt.Errorf("cpu: BF16 value %d (row %d) is %g", i, i/cols, FromBF16(h[i]))
			}
		}
		return &QuantBuf{T: t, Rows: rows, Cols: cols, H: h}, nil
	}
	q := &QuantBuf{T: t, Rows: rows, Cols: cols}
	nbr := cols / backend.QuantBlock // blocks a row
	q.Q = make([]byte, (rows+15)/16*nbr*q.panelBlock())
	for i := range nb {
		r, b := i/nbr, i%nbr
		blk := blocks[i*bb : (i+1)*bb]
		if d := f16ToF32(uint16(blk[0]) | uint16(blk[1])<<8); d-d != 0 {
			return nil, fmt.Errorf("cpu: %v block %d (row %d) has scale %g", t, i, r, d)
		}
		at, rr := q.panelAt(r, b)
		p := q.Q[at : at+q.panelBlock()]
		p[2*rr], p[2*rr+1] = blk[0], blk[1]
		for g := range (bb - 2) / 4 { // Q8_0's 8 groups of 4 codes, Q4_0's 4 pairs
			dst := p[32+64*g+4*rr : 32+64*g+4*rr+4]
			copy(dst, blk[2+4*g:6+4*g])
			if t == backend.Q8_0 {
				for j := range dst {
					dst[j] ^= 0x80
				}
			}
		}
	}
	return q, nil
}

// QuantOf reports b's quantized type; false for a float buffer.
func (c *CPU) QuantOf(b backend.Buffer) (backend.QuantType, bool) {
	if q, ok := b.(*QuantBuf); ok {
		return q.T, true
	}
	return 0, false
}

// code returns the code of value j of block blk of row r: Q8_0's q,
// Q4_0's q-8.
func (b *QuantBuf) code(r, blk, j int) int32 {
	at, rr := b.panelAt(r, blk)
	if b.T == backend.Q8_0 {
		return int32(b.Q[at+32+64*(j/4)+4*rr+j%4]) - 128
	}
	v := b.Q[at+32+64*(j%16/4)+4*rr+j%4]
	if j >= 16 {
		v >>= 4
	}
	return int32(v&15) - 8
}

// scale returns the scale of block blk of row r.
func (b *QuantBuf) scale(r, blk int) float32 {
	at, rr := b.panelAt(r, blk)
	return f16ToF32(uint16(b.Q[at+2*rr]) | uint16(b.Q[at+2*rr+1])<<8)
}

// dequant writes values [off, off+len(dst)) of b, in row-major order.
func (b *QuantBuf) dequant(dst []float32, off int) {
	if b.T == backend.F16 {
		FromHalf(dst, b.H[off:off+len(dst)])
		return
	}
	if b.T == backend.BF16 {
		fromBF16s(dst, b.H[off:off+len(dst)])
		return
	}
	for i := range dst {
		p := off + i
		r, col := p/b.Cols, p%b.Cols
		blk := col / backend.QuantBlock
		dst[i] = b.scale(r, blk) * float32(b.code(r, blk, col%backend.QuantBlock))
	}
}

// dequantRows writes whole rows [lo, hi) of b into dst (hi-lo rows).
func (b *QuantBuf) dequantRows(dst []float32, lo, hi int) {
	if b.T == backend.F16 {
		FromHalf(dst[:(hi-lo)*b.Cols], b.H[lo*b.Cols:hi*b.Cols])
		return
	}
	if b.T == backend.BF16 {
		fromBF16s(dst[:(hi-lo)*b.Cols], b.H[lo*b.Cols:hi*b.Cols])
		return
	}
	nb := b.Cols / backend.QuantBlock
	for r := lo; r < hi; r++ {
		out := dst[(r-lo)*b.Cols : (r-lo+1)*b.Cols]
		for blk := range nb {
			d := b.scale(r, blk)
			o := out[blk*32 : blk*32+32]
			at, rr := b.panelAt(r, blk)
			codes := b.Q[at+32+4*rr:]
			if b.T == backend.Q8_0 {
				for j := range o {
					o[j] = d * float32(int32(codes[64*(j/4)+j%4])-128)
				}
				continue
			}
			for j := range 16 {
				v := codes[64*(j/4)+j%4]
				o[j] = d * float32(int32(v&15)-8)
				o[j+16] = d * float32(int32(v>>4)-8)
			}
		}
	}
}

// Dequantize returns b's values as a new float32 slice (for tests).
func Dequantize(b backend.Buffer) []float32 {
	q := b.(*QuantBuf)
	out := make([]float32, q.Len())
	q.dequantRows(out, 0, q.Rows)
	return out
}

// dequantBuf returns b's values in a float32 buffer of c's (freed by the
// caller), for the products the quantized kernel does not run.
func (c *CPU) dequantBuf(b *QuantBuf) *Buf {
	out := c.Alloc(b.Len(), false).(*Buf)
	Parallel(b.Rows, max(1, 16384/b.Cols), func(lo, hi int) {
		b.dequantRows(out.D[lo*b.Cols:hi*b.Cols], lo, hi)
	})
	return out
}

// qrows is m rows of activations rounded to int8 blocks (nb a row) for
// the kernels: the rows in groups of 8, then what is left in groups of 4,
// 2 and 1 (rowGroup); each group's blocks one after the other; a block of
// a group of R rows 10R words: the R rows' corrections (-shift times the
// sum of their 32 codes, which the kernels start their sums from), their
// scales (float32 values of float16s), then each row's 32 codes (8 words,
// 4 int8 codes each, little-endian).
type qrows struct {
	m, nb int
	pack  []uint32
}

var qrowsPool = sync.Pool{New: func() any { return new(qrows) }}

// rowGroup returns the group of packed rows that row i of m is in: its
// first row g0 and its R rows (8, 4, 2 or 1).
func rowGroup(m, i int) (g0, R int) {
	g0 = i / 8 * 8
	if g0+8 <= m {
		return g0, 8
	}
	for R = 4; ; R /= 2 {
		if m-g0 >= R {
			if i < g0+R {
				return g0, R
			}
			g0 += R
		}
	}
}

// quantizeRows rounds m rows of k values of a (rows lda apart) to int8
// blocks; shift is the weights' code offset (128 for Q8_0, 8 for Q4_0).
// quantPack (AVX-512) or quantPackAVX2 rounds them where the CPU has it
// (the codes and scales of quantizeBlock), else quantizeBlock.
func quantizeRows(x *qrows, m, k int, a []float32, lda int, shift int32) {
	nb := k / backend.QuantBlock
	x.m, x.nb = m, nb
	x.pack = growT(x.pack, m*nb*10)
	Parallel(m, max(1, 4096/k), func(lo, hi int) {
		var qb [32]int8
		for i := lo; i < hi; i++ {
			g0, R := rowGroup(m, i)
			ri := i - g0
			p := x.pack[g0*nb*10 : (g0+R)*nb*10]
			row := a[i*lda : i*lda+k]
			if haveVNNI && fastQuant {
				quantPack(&row[0], nb, &p[ri], &p[R+ri], &p[2*R+8*ri], 40*R, shift)
				continue
			}
			if haveQuantAVX2 && fastQuant {
				quantPackAVX2(&row[0], nb, &p[ri], &p[R+ri], &p[2*R+8*ri], 40*R, shift)
				continue
			}
			for b := range nb {
				s := quantizeBlock(qb[:], row[b*32:b*32+32])
				blk := p[b*10*R : (b+1)*10*R]
				var sum int32
				for g := range 8 {
					c := qb[4*g : 4*g+4]
					sum += int32(c[0]) + int32(c[1]) + int32(c[2]) + int32(c[3])
					blk[2*R+8*ri+g] = uint32(uint8(c[0])) | uint32(uint8(c[1]))<<8 | uint32(uint8(c[2]))<<16 | uint32(uint8(c[3]))<<24
				}
				blk[ri] = uint32(-shift * sum)
				blk[R+ri] = math.Float32bits(s)
			}
		}
	})
}

// quantizeBlock rounds 32 values to int8 codes with scale max|x|/127,
// to nearest with ties away from zero, and returns the scale rounded to
// float16 as ggml's quantize_row_q8_0 stores it (so that the products are
// llama.cpp's).
//
// Branch-free (the signs of activations are a coin toss, and a mispredicted
// branch a value cost as much as the rest): |v| by clearing the sign bit,
// and the 0.5 added away from zero takes t's sign bit.
func quantizeBlock(q []int8, x []float32) float32 {
	x = x[:32]
	q = q[:32]
	var amax float32
	for _, v := range x {
		amax = max(amax, math.Float32frombits(math.Float32bits(v)&^(1<<31))) // NaN stays NaN
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	for j, v := range x {
		t := v * id
		half := math.Float32frombits(0x3f000000 | math.Float32bits(t)&(1<<31))
		q[j] = int8(int32(t + half))
	}
	return f16ToF32(f32ToF16(d))
}

func growT[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// qdotRef is the scalar definition of one dot product: row i of x with
// row r of w, block by block, int32 sums scaled in float32.
func qdotRef(x *qrows, i int, w *QuantBuf, r int) float32 {
	g0, R := rowGroup(x.m, i)
	p := x.pack[g0*x.nb*10:]
	var sum float32
	for b := range x.nb {
		blk := p[b*10*R:]
		var s int32
		for j := range 32 {
			s += int32(int8(blk[2*R+8*(i-g0)+j/4]>>(8*(j%4)))) * w.code(r, b, j)
		}
		sum += float32(s) * (math.Float32frombits(blk[R+i-g0]) * w.scale(r, b))
	}
	return sum
}

// fastQuant enables the assembly kernels (tests turn it off to compare).
var fastQuant = true

// matmulQuant is c = alpha * a W^T + beta * c for a [m, k] (rows lda
// apart), W quantized [n, k], c [m, n] (rows ldc apart). Threads split
// W's panels; each panel (16 rows, a few KB to a few tens of KB) stays in
// cache while all of a's rows pass over it, 8 at a time, so each value is
// computed the same way for any thread count.
func matmulQuant(m, n, k int, alpha float32, a []float32, lda int, w *QuantBuf, beta float32, c []float32, ldc int) {
	if w.Rows != n || w.Cols != k {
		panic(fmt.Sprintf("cpu: product with a %d x %d quantized matrix as %d x %d", w.Rows, w.Cols, n, k))
	}
	if m == 0 || n == 0 {
		return
	}
	_ = a[(m-1)*lda+k-1]
	_ = c[(m-1)*ldc+n-1]
	x := qrowsPool.Get().(*qrows)
	defer qrowsPool.Put(x)
	shift := int32(128)
	if w.T == backend.Q4_0 {
		shift = 8
	}
	quantizeRows(x, m, k, a, lda, shift)
	nb := k / backend.QuantBlock
	if !haveVNNI && haveQuantAVX2 && fastQuant {
		matmulQuantAVX2(m, n, nb, alpha, x, w, beta, c, ldc)
		return
	}
	if !haveVNNI || !fastQuant {
		Parallel(n, 16, func(lo, hi int) {
			for i := range m {
				for j := lo; j < hi; j++ {
					v := alpha * qdotRef(x, i, w, j)
					if beta != 0 {
						v += beta * c[i*ldc+j]
					}
					c[i*ldc+j] = v
				}
			}
		})
		return
	}
	pb := w.panelBlock()
	Parallel((n+15)/16, max(1, 64/(m*nb)), func(lo, hi int) {
		for p := lo; p < hi; p++ {
			wp := &w.Q[p*nb*pb]
			mask := uint32(1)<<min(16, n-16*p) - 1
			for i := 0; i < m; {
				_, R := rowGroup(m, i)
				panelKernel(R, w.T)(&x.pack[i*nb*10], wp, nb, &c[i*ldc+16*p], ldc, alpha, beta, mask)
				i += R
			}
		}
	})
}

// matmulQuantAVX2 is matmulQuant's products on AVX2 (quant_gen.go's
// kernels, the Go path's values bit for bit): threads split the panels as
// there; each group of rows takes the 4-row kernel on each half of the
// panel (8 columns) while 4 rows are left, then the 2- and 1-row kernels
// on the whole panel (16 columns).
func matmulQuantAVX2(m, n, nb int, alpha float32, x *qrows, w *QuantBuf, beta float32, c []float32, ldc int) {
	k4, k2, k1 := q8y4x8, q8y2x16, q8y1x16
	if w.T == backend.Q4_0 {
		k4, k2, k1 = q4y4x8, q4y2x16, q4y1x16
	}
	pb := w.panelBlock()
	Parallel((n+15)/16, max(1, 64/(m*nb)), func(lo, hi int) {
		for p := lo; p < hi; p++ {
			wp := &w.Q[p*nb*pb]
			cols := min(16, n-16*p)
			for g0 := 0; g0 < m; {
				_, R := rowGroup(m, g0)
				at, xs := g0*nb*10, 40*R
				for r := 0; r < R; {
					corr, scale, codes := &x.pack[at+r], &x.pack[at+R+r], &x.pack[at+2*R+8*r]
					out := c[(g0+r)*ldc+16*p:]
					switch {
					case R-r >= 4:
						for h := 0; h < 2 && 8*h < cols; h++ {
							k4(corr, scale, codes, xs, wp, h, nb, &out[8*h], ldc, alpha, beta, min(8, cols-8*h))
						}
						r += 4
					case R-r >= 2:
						k2(corr, scale, codes, xs, wp, 0, nb, &out[0], ldc, alpha, beta, cols)
						r += 2
					default:
						k1(corr, scale, codes, xs, wp, 0, nb, &out[0], ldc, alpha, beta, cols)
						r++
					}
				}
				g0 += R
			}
		}
	})
}

// panelKernel returns the kernel for R rows of activations (8, 4, 2 or
// 1) and a matrix of type t.
func panelKernel(R int, t backend.QuantType) func(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32) {
	ks := [4]func(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32){q8gemm8, q8gemm4, q8gemm2, q8gemm1}
	if t == backend.Q4_0 {
		ks = [4]func(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32){q4gemm8, q4gemm4, q4gemm2, q4gemm1}
	}
	switch R {
	case 8:
		return ks[0]
	case 4:
		return ks[1]
	case 2:
		return ks[2]
	}
	return ks[3]
}

// matmulQuantB runs MatMul with a quantized B: the kernel for a forward
// pass (B transposed, A not), else B dequantized into a float32 buffer.
func (c *CPU) matmulQuantB(g backend.Gemm, a backend.Buffer, b *QuantBuf, cc backend.Buffer) {
	if g.Batch <= 1 && g.TransB && !g.TransA && g.OffB == 0 && g.LDB == b.Cols {
		if b.T == backend.BF16 {
			matmulBF16(g.M, g.N, g.K, g.Alpha, f(a)[g.OffA:], g.LDA, b, g.Beta, f(cc)[g.OffC:], g.LDC)
			return
		}
		if b.T == backend.F16 {
			matmulHalf(g.M, g.N, g.K, g.Alpha, f(a)[g.OffA:], g.LDA, b, g.Beta, f(cc)[g.OffC:], g.LDC)
			return
		}
		matmulQuant(g.M, g.N, g.K, g.Alpha, f(a)[g.OffA:], g.LDA, b, g.Beta, f(cc)[g.OffC:], g.LDC)
		return
	}
	if g.Batch > 1 && g.StrideB != 0 {
		panic("cpu: a batched product over a quantized matrix")
	}
	fb := c.dequantBuf(b)
	defer c.Free(fb)
	c.MatMul(g, a, fb, cc)
}

// matmulHalf is c = alpha * a W^T + beta * c for W a float16 matrix [n, k]
// (its values exact in float32, the arithmetic float32's). Up to 64 rows
// of a (decoding, one sequence or a batch) take dot products straight
// from the float16 rows (vdotsh where the CPU has it, matmulWide); more (a
// prefill) run the float32 GEMM's kernel on W widened a block at a time
// (gemmHalf).
func matmulHalf(m, n, k int, alpha float32, a []float32, lda int, w *QuantBuf, beta float32, c []float32, ldc int) {
	if m > w.dotRows() && w.Rows == n && w.Cols == k {
		gemmHalf(m, n, k, alpha, a, lda, w, beta, c, ldc)
		return
	}
	matmulWide(m, n, k, alpha, a, lda, w, beta, c, ldc, nil, nil, halfDots(k))
}

// halfDots returns matmulWide's dots for float16 rows of k values. On
// AVX2 without AVX-512, rows of activations go three at a time
// (vdotsh2r3), a last pair two (vdotsh2r2), a last one alone (vdotsh2):
// each float16 value of W is widened once a group, and every row's dots
// are bit for bit vdotsh2's for it alone, so a sequence's products are
// the same in any batch.
func halfDots(k int) func(out, x []float32, ldx, nx int, rows []uint16) {
	return func(out, x []float32, ldx, nx int, rows []uint16) {
		nt := len(out) / nx
		if haveHalf && fastQuant {
			// The kernels read and write what these bounds allow.
			_, _ = x[(nx-1)*ldx+k-1], rows[nt*k-1]
			i := 0
			if haveHalf2 && !haveHalf512 {
				for ; nx-i >= 3; i += 3 {
					vdotsh2r3(&out[i*nt], nt, &x[i*ldx], ldx, &rows[0], k, nt, k)
				}
				if nx-i == 2 {
					vdotsh2r2(&out[i*nt], nt, &x[i*ldx], ldx, &rows[0], k, nt, k)
					i += 2
				}
			}
			for ; i < nx; i++ {
				vdotsh(&out[i*nt], &x[i*ldx], &rows[0], k, nt, k, 1)
			}
			return
		}
		for i := range nx {
			xi := x[i*ldx : i*ldx+k]
			for j := range nt {
				var s float32
				for p, h := range rows[j*k : j*k+k] {
					s += xi[p] * f16ToF32(h)
				}
				out[i*nt+j] = s
			}
		}
	}
}

// dotRows is how many rows of activations matmulWide multiplies by dot
// products straight from W's 16-bit rows: float16's 64, bfloat16's 4.
// Up to 64 rows (serve's batched decoding) a sequence's products are the
// same alone and in a batch, each row's dots summed alike; the prefill's
// GEMM (gemmHalf) sums in another order. By speed alone that GEMM would
// pay from about 16 rows (BenchmarkMatMulHalf, one thread, the loaded
// machine, GMAC per CPU-second, GEMM against dots: 16 rows 41-47 against
// 36-39, 32 rows 54-62 against 31-38, 64 rows 59-74 against 29-40; before
// gemmHalf, widening tiles for the sgemm had run 5 against 30 at 16 rows).
func (w *QuantBuf) dotRows() int {
	if w.T == backend.F16 {
		return 64
	}
	return 4
}

// matmulWide is c = alpha * a W^T + beta * c for W a matrix of 16-bit
// values [n, k] (float16 or bfloat16). Up to w.dotRows() rows of a
// (decoding) take dots(out, x, ldx, nx, rows): the products of the nx rows
// of x (ldx apart, a's rows) with the rows of W given, out's nx rows of
// len(out)/nx each, over tiles of W that stay in cache for all of a's
// rows; more (a prefill) widen tiles of W to float32 (widen) and run sgemm
// on each, so the conversion is paid once a tile for all of a's rows
// (bfloat16's; float16's prefill is gemmHalf, and widen and sgemm nil).
// Threads split W's rows.
func matmulWide(m, n, k int, alpha float32, a []float32, lda int, w *QuantBuf, beta float32, c []float32, ldc int,
	widen func(dst []float32, src []uint16), sgemm func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int),
	dots func(out, x []float32, ldx, nx int, rows []uint16)) {
	if w.Rows != n || w.Cols != k {
		panic(fmt.Sprintf("cpu: product with a %d x %d %v matrix as %d x %d", w.Rows, w.Cols, w.T, n, k))
	}
	if m == 0 || n == 0 {
		return
	}
	_ = a[(m-1)*lda+k-1]
	_ = c[(m-1)*ldc+n-1]
	if m <= w.dotRows() {
		Parallel(n, max(16, 4096*16/max(k, 1)), func(lo, hi int) {
			// Tiles of W small enough (64 KB) to stay in cache while
			// every row of a passes over them.
			tile := max(4, 32768/max(k, 1))
			out := make([]float32, m*min(tile, hi-lo))
			for r0 := lo; r0 < hi; r0 += tile {
				r1 := min(hi, r0+tile)
				nt := r1 - r0
				dots(out[:m*nt], a[:(m-1)*lda+k], lda, m, w.H[r0*k:r1*k])
				for i := range m {
					ci := c[i*ldc+r0 : i*ldc+r1]
					for j, v := range out[i*nt : i*nt+nt] {
						if beta != 0 {
							v = alpha*v + beta*ci[j]
						} else {
							v *= alpha
						}
						ci[j] = v
					}
				}
			}
		})
		return
	}
	const tile = 128
	Parallel((n+tile-1)/tile, 1, func(lo, hi int) {
		buf := make([]float32, tile*k)
		for t := lo; t < hi; t++ {
			r0, r1 := t*tile, min(n, (t+1)*tile)
			wt := buf[:(r1-r0)*k]
			widen(wt, w.H[r0*k:r1*k])
			sgemm(false, true, m, r1-r0, k, alpha, a, lda, wt, k, beta, c[r0:], ldc)
		}
	})
}
