package cpu

import "math"

// bfloat16 matrix products: op(A) and op(B) rounded to bfloat16 (8
// significant bits, float32's range) as they are packed, multiplied in
// pairs with float32 accumulation. On CPUs with AVX512_BF16 the kernel is
// VDPBF16PS (gemm_amd64.s, encoded as bytes by gemm_gen.go); on CPUs with
// AVX2 and FMA, two FMAs a pair (bf16gemm256_amd64.s); elsewhere the Go
// kernel below. All compute the same values, bit for bit: they follow
// Intel's definition of the instruction (see toBF16 and
// genericComputeBF16).

// ToBF16 rounds f to bfloat16 as VCVTNE2PS2BF16 does: to nearest, ties to
// even; zero and denormal inputs give a zero of their sign (DAZ); NaNs
// stay NaN (quiet).
func ToBF16(f float32) uint16 {
	x := math.Float32bits(f)
	switch {
	case x&0x7f800000 == 0: // zero or denormal
		return uint16(x>>16) & 0x8000
	case x&0x7fffffff > 0x7f800000: // NaN
		return uint16(x>>16) | 0x40
	}
	return uint16((x + 0x7fff + (x>>16)&1) >> 16)
}

// FromBF16 widens a bfloat16 value to float32 (exactly).
func FromBF16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// pairBits packs two values as one kernel lane: lo (step 2q) in the low
// half, hi (step 2q+1) in the high half, VDPBF16PS's order.
func pairBits(lo, hi float32) float32 {
	return math.Float32frombits(uint32(ToBF16(lo)) | uint32(ToBF16(hi))<<16)
}

// pairStrided and pairRowsPack are the bf16 packing primitives,
// replaced by vector code (bf16pack_amd64.go) where the CPU has
// AVX512_BF16.
var (
	pairStrided  = packStridedPairs
	pairRowsPack = packRowsPairs
)

// packStridedPairs and packRowsPairs are packStrided and packRows for the
// bf16 kernels: they fill (kc+1)/2 steps q of width lanes at dst[q*ds:],
// lane i holding steps 2q and 2q+1 of value i as a bfloat16 pair (step kc,
// past the end, is zero), the first cnt lanes from src, the rest zero.
func packStridedPairs(dst []float32, ds int, src []float32, ss, kc, cnt, width int) {
	kp := (kc + 1) / 2
	for i := 0; i < cnt; i++ {
		row := src[i*ss : i*ss+kc]
		q := 0
		for ; 2*q+1 < kc; q++ {
			dst[q*ds+i] = pairBits(row[2*q], row[2*q+1])
		}
		if q < kp {
			dst[q*ds+i] = pairBits(row[2*q], 0)
		}
	}
	if width > cnt {
		for q := 0; q < kp; q++ {
			clear(dst[q*ds+cnt : q*ds+width])
		}
	}
}

func packRowsPairs(dst []float32, ds int, src []float32, ss, kc, cnt, width int) {
	for q := 0; q < (kc+1)/2; q++ {
		d := dst[q*ds : q*ds+width]
		lo := src[2*q*ss : 2*q*ss+cnt]
		if 2*q+1 < kc {
			hi := src[(2*q+1)*ss : (2*q+1)*ss+cnt]
			for i := range lo {
				d[i] = pairBits(lo[i], hi[i])
			}
		} else {
			for i := range lo {
				d[i] = pairBits(lo[i], 0)
			}
		}
		clear(d[cnt:])
	}
}

// genericBF16Kernel is the pure-Go bf16 micro-kernel, used where the CPU
// has neither AVX512_BF16 nor AVX2 with FMA. Its cache blocking along k (kc) is the assembly
// kernel's, so both sum the same pairs in the same order.
var genericBF16Kernel = &gemmKernel{
	name: "go", mr: 4, nr: 16, vec: 4,
	kc: bf16KC, nc: 1024, mc: 64,
	compute: genericComputeBF16, bf16: true,
}

// bf16KC is the k block of the bf16 kernels: 256 pairs, so that a
// 32-column micro-panel of B (32 KB) stays in L1 as the float32 kernel's
// 256 steps do.
const bf16KC = 512

// genericComputeBF16 is the definition the assembly kernel follows, that
// of VDPBF16PS (Intel SDM): each lane of C's accumulator adds, per pair,
// first the product of the high (odd) halves, then that of the low (even)
// ones; the products of two bfloat16 values are exact in float32; each
// sum is rounded to nearest even and flushed to zero when denormal (FTZ),
// so the accumulator is never denormal (DAZ has nothing to do). Then each value of C
// is alpha times its sum plus, unless beta is 0, beta times C (the
// assembly fuses that last multiply-add; for alpha and beta of 0 or 1
// that makes no difference).
func genericComputeBF16(kc int, a, b, c []float32, ldc, mr, nr int, alpha, beta float32) {
	kp := (kc + 1) / 2
	w := roundUp(nr, 4)
	var acc [4 * 16]float32
	a = a[:kp*mr]
	b = b[:kp*w]
	for q := 0; q < kp; q++ {
		ap := a[q*mr : q*mr+mr]
		bp := b[q*w : q*w+nr]
		for i, av := range ap {
			ax := math.Float32bits(av)
			alo, ahi := math.Float32frombits(ax<<16), math.Float32frombits(ax&0xffff0000)
			row := acc[i*16 : i*16+16]
			for j, bv := range bp {
				bx := math.Float32bits(bv)
				blo, bhi := math.Float32frombits(bx<<16), math.Float32frombits(bx&0xffff0000)
				row[j] = ftz(ftz(row[j]+ahi*bhi) + alo*blo)
			}
		}
	}
	for i := 0; i < mr; i++ {
		row := c[i*ldc : i*ldc+nr]
		for j := range row {
			v := alpha * acc[i*16+j]
			if beta != 0 {
				v += beta * row[j]
			}
			row[j] = v
		}
	}
}

// ftz flushes a denormal to a zero of its sign.
func ftz(f float32) float32 {
	if x := math.Float32bits(f); x&0x7f800000 == 0 {
		return math.Float32frombits(x & 0x80000000)
	}
	return f
}

// bf16Kernels lists the bf16 kernels this machine can run, best first;
// SgemmBF16 uses activeBF16.
var (
	bf16Kernels []*gemmKernel
	activeBF16  *gemmKernel
)

func init() {
	bf16Kernels = append(archBF16Kernels(), genericBF16Kernel)
	activeBF16 = bf16Kernels[0]
}

// useBF16Kernel makes SgemmBF16 use the named kernel and returns the
// previous one's name; it is for tests.
func useBF16Kernel(name string) string {
	prev := activeBF16.name
	for _, k := range bf16Kernels {
		if k.name == name {
			activeBF16 = k
			return prev
		}
	}
	panic("cpu: no bf16 gemm kernel " + name)
}

// SgemmBF16 is Sgemm with op(A) and op(B) rounded to bfloat16 (ToBF16)
// and their products summed in float32 (pairs of k steps at a time, see
// genericComputeBF16): mixed-precision training's matrix products. C and
// alpha, beta stay float32.
func SgemmBF16(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemm(Threads(), activeBF16, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil)
}

// SgemmBF16ST is SgemmBF16 on the calling goroutine alone.
func SgemmBF16ST(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemm(1, activeBF16, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil)
}

// convertPairsGo is convertPairs in Go.
func convertPairsGo(dst, src []float32, n int) {
	for q := 0; 2*q < n; q++ {
		hi := float32(0)
		if 2*q+1 < n {
			hi = src[2*q+1]
		}
		dst[q] = pairBits(src[2*q], hi)
	}
}

// bdotRowsGo is bdotRows in Go: each product summed pair after pair as
// genericComputeBF16 sums them (the vector code sums lanes, 16 in bdot,
// 4 vectors of 8 in bdot256, and then across them, so the two agree to
// float32's rounding, not bit for bit).
func bdotRowsGo(out, x []float32, w []uint16, k int) {
	for j := range out {
		row := w[j*k : j*k+k]
		var acc float32
		for q := 0; 2*q < k; q++ {
			xb := math.Float32bits(x[q])
			lo := math.Float32frombits(xb<<16) * FromBF16(row[2*q])
			if 2*q+1 < k {
				acc = ftz(acc + math.Float32frombits(xb&0xffff0000)*FromBF16(row[2*q+1]))
			}
			acc = ftz(acc + lo)
		}
		out[j] = acc
	}
}

// fromBF16s widens bfloat16 values to float32 (exactly).
func fromBF16s(dst []float32, src []uint16) {
	src = src[:len(dst)]
	for i, h := range src {
		dst[i] = FromBF16(h)
	}
}

// matmulBF16 is c = alpha * a W^T + beta * c for W a bfloat16 matrix [n,
// k]: the bf16 kernels' arithmetic (a's rows rounded to bfloat16, pairs
// summed in float32; W's values are bfloat16 already). A few rows of a
// (decoding) take dot products straight from W's rows, read once (bdot);
// more (a prefill) widen tiles of W and run SgemmBF16 on each (matmulWide).
func matmulBF16(m, n, k int, alpha float32, a []float32, lda int, w *QuantBuf, beta float32, c []float32, ldc int) {
	matmulWide(m, n, k, alpha, a, lda, w, beta, c, ldc, fromBF16s, SgemmBF16ST, func(out []float32, x []float32, ldx, nx int, rows []uint16) {
		xp := make([]float32, (k+1)/2)
		nt := len(out) / nx
		for i := range nx {
			convertPairs(xp, x[i*ldx:i*ldx+k], k)
			bdotRows(out[i*nt:i*nt+nt], xp, rows, k)
		}
	})
}
