//go:build !purego

package cpu

import "golang.org/x/sys/cpu"

// asmKernel is the signature of the generated micro-kernels in
// gemm_amd64.s; see gemm_gen.go for their contract.
type asmKernel func(k int, a, b, c *float32, ldc int, alpha, beta float32, mask int)

var (
	avx512Kernel = &gemmKernel{
		name: "avx512", mr: 14, nr: 32, vec: 16,
		kc: 256, nc: 4096, mc: 224,
		compute: compute512,
	}
	avx2Kernel = &gemmKernel{
		name: "avx2", mr: 6, nr: 16, vec: 8,
		kc: 256, nc: 4096, mc: 192,
		compute: compute256,
	}
)

func init() {
	if cpu.X86.HasAVX512F {
		packStrided, packRows = packStrided512, packRows512
	} else if cpu.X86.HasAVX2 {
		packStrided, packRows = packStrided256, packRows256
	}
}

// packT8 sets dst[p*ds+i] = src[i*ss+p] for i < 8 and p < 8*kb by 8x8
// transposes in registers (pack256_amd64.s, AVX).
//
//go:noescape
func packT8(dst *float32, ds int, src *float32, ss int, kb int)

//go:noescape
func packT6(dst *float32, src *float32, ss int, kb int)

//go:noescape
func packC16(dst *float32, ds int, src *float32, ss int, kc int)

// packStrided256 is packStrided by packT8 on each group of 8 full rows
// (their steps past the last multiple of 8 in Go); the last rows (fewer
// than 8) and the zeros of the width past cnt are packStridedGo's. A full
// micro-panel of the AVX2 GEMM's A (6 rows, stored 6 a step) is packT6's.
func packStrided256(dst []float32, ds int, src []float32, ss, kc, cnt, width int) {
	kb := kc / 8
	if cnt == 6 && width == 6 && ds == 6 && kb > 0 {
		_ = src[5*ss+kc-1]
		_ = dst[6*kc-1]
		packT6(&dst[0], &src[0], ss, kb)
		for i := range 6 {
			for p, v := range src[i*ss+8*kb : i*ss+kc] {
				dst[(8*kb+p)*6+i] = v
			}
		}
		return
	}
	h := 0
	for ; h+8 <= cnt && h+8 <= width; h += 8 {
		if kb > 0 {
			_ = src[(h+7)*ss+8*kb-1]
			_ = dst[(8*kb-1)*ds+h+7]
			packT8(&dst[h], ds, &src[h*ss], ss, kb)
		}
		for i := h; i < h+8; i++ {
			for p, v := range src[i*ss+8*kb : i*ss+kc] {
				dst[(8*kb+p)*ds+i] = v
			}
		}
	}
	if h < width {
		s := src
		if h < cnt {
			s = src[h*ss:]
		}
		packStridedGo(dst[h:], ds, s, ss, kc, max(cnt-h, 0), width-h)
	}
}

// packStrided512 is packStrided by 16x16 transposes in registers.
func packStrided512(dst []float32, ds int, src []float32, ss, kc, cnt, width int) {
	_ = src[(cnt-1)*ss+kc-1]
	_ = dst[(kc-1)*ds+width-1]
	for h := 0; h < width; h += 16 {
		c, w := min(max(cnt-h, 0), 16), min(width-h, 16)
		s := &src[0]
		if c > 0 {
			s = &src[h*ss]
		}
		packTranspose(&dst[h], ds, s, ss, kc, 1<<c-1, 1<<w-1)
	}
}

// packRows512 is packRows with one masked load and store per step of up
// to 16 values.
func packRows512(dst []float32, ds int, src []float32, ss, kc, cnt, width int) {
	_ = src[(kc-1)*ss+cnt-1]
	_ = dst[(kc-1)*ds+width-1]
	for h := 0; h < width; h += 16 {
		c, w := min(max(cnt-h, 0), 16), min(width-h, 16)
		s := &src[0]
		if c > 0 {
			s = &src[h]
		}
		packCopy(&dst[h], ds, s, ss, kc, 1<<c-1, 1<<w-1)
	}
}

func archKernels() []*gemmKernel {
	var ks []*gemmKernel
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL {
		ks = append(ks, avx512Kernel)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, avx2Kernel)
	}
	return ks
}

// compute512 runs an AVX-512 kernel on a tile of up to 14 x 32; the last
// vector of each row is masked to nr columns.
func compute512(kc int, a, b, c []float32, ldc, mr, nr int, alpha, beta float32) {
	nv := (nr + 15) / 16
	mask := 1<<(nr-16*(nv-1)) - 1
	_ = a[kc*mr-1]
	_ = b[kc*16*nv-1]
	_ = c[(mr-1)*ldc+nr-1]
	kernels512[nv-1][mr-1](kc, &a[0], &b[0], &c[0], ldc, alpha, beta, mask)
}

// compute256 runs an AVX2 kernel on a tile of up to 6 x 16. A tile whose
// width is not a whole number of vectors goes through a scratch tile, with
// the same arithmetic.
func compute256(kc int, a, b, c []float32, ldc, mr, nr int, alpha, beta float32) {
	nv := (nr + 7) / 8
	_ = a[kc*mr-1]
	_ = b[kc*8*nv-1]
	_ = c[(mr-1)*ldc+nr-1]
	if nr == 8*nv {
		kernels256[nv-1][mr-1](kc, &a[0], &b[0], &c[0], ldc, alpha, beta, 0)
		return
	}
	var t [6 * 16]float32
	if beta != 0 {
		for i := 0; i < mr; i++ {
			copy(t[i*16:i*16+nr], c[i*ldc:])
		}
	}
	sgemm256(nv, mr, kc, &a[0], &b[0], &t[0], 16, alpha, beta) // a direct call: t stays on the stack
	for i := 0; i < mr; i++ {
		copy(c[i*ldc:i*ldc+nr], t[i*16:])
	}
}

// avx512BF16Kernel is avx512Kernel's tile over bfloat16 pairs
// (VDPBF16PS), with the Go bf16 kernel's k blocking.
var avx512BF16Kernel = &gemmKernel{
	name: "avx512bf16", mr: 14, nr: 32, vec: 16,
	kc: bf16KC, nc: 4096, mc: 224,
	compute: computeBF16, bf16: true,
}

// avx2BF16Kernel is avx2Kernel's 6 x 16 tile over bfloat16 pairs
// (bgemm256_*: each pair split into two float32 values, two FMAs; see
// gemm_gen.go's bf16Kernel256), for CPUs with AVX2 and FMA but no
// AVX512_BF16, with the Go bf16 kernel's k blocking.
var avx2BF16Kernel = &gemmKernel{
	name: "avx2", mr: 6, nr: 16, vec: 8,
	kc: bf16KC, nc: 4096, mc: 192,
	compute: computeBF16256, bf16: true, splitA: splitPairs,
}

// haveBF16AVX2 reports whether SgemmBF16 and the bf16 weights' decoding
// run the AVX2 kernels: AVX2 and FMA without AVX512_BF16, whose kernels
// win where both exist.
var haveBF16AVX2 = !haveBF16 && haveAVX2FMA

func archBF16Kernels() []*gemmKernel {
	var ks []*gemmKernel
	if haveBF16 {
		ks = append(ks, avx512BF16Kernel)
	}
	if haveAVX2FMA {
		ks = append(ks, avx2BF16Kernel)
	}
	return ks
}

// computeBF16256 runs an AVX2 bf16 kernel on a tile of up to 6 x 16 from
// panels of (kc+1)/2 steps of pairs, A's split already (splitPairs) where
// kc is even; a tile whose width is not a whole number of vectors goes
// through a scratch tile, as in compute256.
func computeBF16256(kc int, a, b, c []float32, ldc, mr, nr int, alpha, beta float32) {
	kp := (kc + 1) / 2
	nv := (nr + 7) / 8
	if kp > bf16KC/2 {
		panic("cpu: bf16 k block past bf16KC")
	}
	split := kc%2 == 0
	_ = a[kp*mr-1]
	if split {
		_ = a[2*kp*mr-1]
	}
	_ = b[kp*8*nv-1]
	_ = c[(mr-1)*ldc+nr-1]
	if nr == 8*nv {
		if split {
			kernelsBF16256s[nv-1][mr-1](kp, &a[0], &b[0], &c[0], ldc, alpha, beta, 0)
		} else {
			kernelsBF16256[nv-1][mr-1](kp, &a[0], &b[0], &c[0], ldc, alpha, beta, 0)
		}
		return
	}
	var t [6 * 16]float32
	if beta != 0 {
		for i := 0; i < mr; i++ {
			copy(t[i*16:i*16+nr], c[i*ldc:])
		}
	}
	if split {
		bgemm256s(nv, mr, kp, &a[0], &b[0], &t[0], 16, alpha, beta) // a direct call: t stays on the stack
	} else {
		bgemm256(nv, mr, kp, &a[0], &b[0], &t[0], 16, alpha, beta)
	}
	for i := 0; i < mr; i++ {
		copy(c[i*ldc:i*ldc+nr], t[i*16:])
	}
}

// computeBF16 runs a bf16 kernel on a tile of up to 14 x 32 from panels
// of (kc+1)/2 steps of pairs.
func computeBF16(kc int, a, b, c []float32, ldc, mr, nr int, alpha, beta float32) {
	kp := (kc + 1) / 2
	nv := (nr + 15) / 16
	mask := 1<<(nr-16*(nv-1)) - 1
	_ = a[kp*mr-1]
	_ = b[kp*16*nv-1]
	_ = c[(mr-1)*ldc+nr-1]
	kernelsBF16[nv-1][mr-1](kp, &a[0], &b[0], &c[0], ldc, alpha, beta, mask)
}

// packRows256 is packRows by packC16 where a whole 16-wide panel comes
// from src (the AVX2 GEMM's B micro-panels), packRowsGo's copies
// otherwise.
func packRows256(dst []float32, ds int, src []float32, ss, kc, cnt, width int) {
	if cnt != 16 || width != 16 || kc == 0 {
		packRowsGo(dst, ds, src, ss, kc, cnt, width)
		return
	}
	_ = src[(kc-1)*ss+15]
	_ = dst[(kc-1)*ds+15]
	packC16(&dst[0], ds, &src[0], ss, kc)
}
