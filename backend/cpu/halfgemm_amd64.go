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
