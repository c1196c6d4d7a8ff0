//go:build !amd64 || purego

package cpu

// haveVNNI is false: the quantized products run the scalar definition.
var haveVNNI = false

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
