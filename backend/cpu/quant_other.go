//go:build !amd64 || purego

package cpu

// haveVNNI is false: the quantized products run the scalar definition.
var haveVNNI = false

// haveQuantAVX2 is false: no AVX2 kernels either.
var haveQuantAVX2 = false

func q8gemm8(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32) {
	panic("cpu: no vector kernels")
}

func q8gemm4(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32) {
	panic("cpu: no vector kernels")
}

func q8gemm2(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32) {
	panic("cpu: no vector kernels")
}

func q8gemm1(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32) {
	panic("cpu: no vector kernels")
}

func q4gemm8(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32) {
	panic("cpu: no vector kernels")
}

func q4gemm4(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32) {
	panic("cpu: no vector kernels")
}

func q4gemm2(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32) {
	panic("cpu: no vector kernels")
}

func q4gemm1(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32) {
	panic("cpu: no vector kernels")
}

func quantPack(x *float32, nb int, corr, scale, codes *uint32, stride int, shift int32) {
	panic("cpu: no vector kernels")
}

func q8y4x8(corr, scale, codes *uint32, xstride int, w *byte, h, nb int, out *float32, ldc int, alpha, beta float32, cols int) {
	panic("cpu: no vector kernels")
}

func q8y2x16(corr, scale, codes *uint32, xstride int, w *byte, h, nb int, out *float32, ldc int, alpha, beta float32, cols int) {
	panic("cpu: no vector kernels")
}

func q8y1x16(corr, scale, codes *uint32, xstride int, w *byte, h, nb int, out *float32, ldc int, alpha, beta float32, cols int) {
	panic("cpu: no vector kernels")
}

func q4y4x8(corr, scale, codes *uint32, xstride int, w *byte, h, nb int, out *float32, ldc int, alpha, beta float32, cols int) {
	panic("cpu: no vector kernels")
}

func q4y2x16(corr, scale, codes *uint32, xstride int, w *byte, h, nb int, out *float32, ldc int, alpha, beta float32, cols int) {
	panic("cpu: no vector kernels")
}

func q4y1x16(corr, scale, codes *uint32, xstride int, w *byte, h, nb int, out *float32, ldc int, alpha, beta float32, cols int) {
	panic("cpu: no vector kernels")
}

func quantPackAVX2(x *float32, nb int, corr, scale, codes *uint32, stride int, shift int32) {
	panic("cpu: no vector kernels")
}
