//go:build !purego

package cpu

// packTransposeHalf (halfgemm_amd64.s, written by gemm_gen.go) is
// packTranspose over float16 values: it sets dst[p*dstStride+i] to
// src[i*srcStride+p] widened (VCVTPH2PS) for p < kc and the lanes i of
// smask, with zero for the lanes outside gmask (which must be the low
// bits); src and srcStride count float16 values.
//
//go:noescape
func packTransposeHalf(dst *float32, dstStride int, src *uint16, srcStride int, kc int, gmask, smask int)

// packHalfStrided512 is packHalfStridedGo by packTransposeHalf, 16 lanes a
// call.
func packHalfStrided512(dst []float32, ds int, src []uint16, ss, kc, cnt, width int) {
	if kc == 0 || width == 0 {
		return
	}
	_ = src[(cnt-1)*ss+kc-1]
	_ = dst[(kc-1)*ds+width-1]
	for h := 0; h < width; h += 16 {
		c, w := min(max(cnt-h, 0), 16), min(width-h, 16)
		s := &src[0]
		if c > 0 {
			s = &src[h*ss]
		}
		packTransposeHalf(&dst[h], ds, s, ss, kc, 1<<c-1, 1<<w-1)
	}
}

// packTransposeHalf8 (half_avx2_amd64.s) is packTransposeHalf for AVX2
// and F16C: 8 lanes, the first cnt of them from src's rows, the rest
// zero, for kc (a multiple of 8) steps.
//
//go:noescape
func packTransposeHalf8(dst *float32, dstStride int, src *uint16, srcStride int, kc int, cnt int)

// packHalfStrided256 is packHalfStridedGo by packTransposeHalf8, 8 lanes
// and 8 steps a block; the steps past the last multiple of 8, and lanes
// past the last multiple of 8 (never, for the GEMM's panels), are packed
// by packHalfStridedGo.
func packHalfStrided256(dst []float32, ds int, src []uint16, ss, kc, cnt, width int) {
	if kc == 0 || width == 0 {
		return
	}
	_ = src[(cnt-1)*ss+kc-1]
	_ = dst[(kc-1)*ds+width-1]
	k8, w8 := kc&^7, width&^7
	if k8 > 0 {
		for h := 0; h < w8; h += 8 {
			c := min(max(cnt-h, 0), 8)
			s := &src[0]
			if c > 0 {
				s = &src[h*ss]
			}
			packTransposeHalf8(&dst[h], ds, s, ss, k8, c)
		}
	}
	if k8 < kc {
		packHalfStridedGo(dst[k8*ds:], ds, src[k8:], ss, kc-k8, cnt, width)
	}
	if w8 < width && k8 > 0 {
		if cnt > w8 {
			packHalfStridedGo(dst[w8:], ds, src[w8*ss:], ss, k8, cnt-w8, width-w8)
		} else {
			packHalfStridedGo(dst[w8:], ds, nil, ss, k8, 0, width-w8)
		}
	}
}
