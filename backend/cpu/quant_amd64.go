//go:build !purego

package cpu

import "golang.org/x/sys/cpu"

// haveVNNI: the quantized products of quant_amd64.s (AVX-512 with VNNI's
// VPDPBUSD and byte/word masked loads).
var haveVNNI = haveVec && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VNNI

// q8gemm8 sets 16 columns (those of mask's bits) of 8 rows of out (ldc
// apart) to alpha times the products of 8 rows of activations x (packed
// by packQuantRows, nb blocks) with one panel w of a Q8_0 matrix (16 rows, see
// panelBlock), plus beta times out's values (not read where beta is 0).
//
//go:noescape
func q8gemm8(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32)

// q8gemm4 is q8gemm8 for 4 rows of activations.
//
//go:noescape
func q8gemm4(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32)

// q8gemm2 is q8gemm8 for 2 rows of activations.
//
//go:noescape
func q8gemm2(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32)

// q8gemm1 is q8gemm8 for 1 row of activations.
//
//go:noescape
func q8gemm1(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32)

// q4gemm8 is q8gemm8 for a Q4_0 matrix.
//
//go:noescape
func q4gemm8(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32)

// q4gemm4 is q4gemm8 for 4 rows of activations.
//
//go:noescape
func q4gemm4(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32)

// q4gemm2 is q4gemm8 for 2 rows of activations.
//
//go:noescape
func q4gemm2(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32)

// q4gemm1 is q4gemm8 for 1 row of activations.
//
//go:noescape
func q4gemm1(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32)

// quantPack rounds nb blocks of activations x (32 values each) to int8
// codes as quantizeBlock does, and writes each block's correction (-shift
// times the sum of its codes), scale (float16-rounded, as quantizeBlock
// returns it) and 32 codes at corr, scale and codes, stride bytes further
// each block (see qrows).
//
//go:noescape
func quantPack(x *float32, nb int, corr, scale, codes *uint32, stride int, shift int32)

// haveQuantAVX2: the AVX2 quantized products of quant_avx2_amd64.s
// (quant_gen.go), where AVX-512 VNNI is absent (haveVNNI wins): VPMADDUBSW
// and VPSIGNB for the block sums, F16C's VCVTPH2PS for the scales.
var haveQuantAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C

// q8y4x8 sets cols (1 to 8) columns of 4 rows of out (ldc apart) to alpha
// times the products of 4 rows of activations (their corrections, scales
// and codes in qrows' layout, xstride bytes a block) with half h of one
// panel w of a Q8_0 matrix (its rows 8h..8h+7, nb blocks), plus beta times
// out's values (not read where beta is 0), as the Go path computes them.
//
//go:noescape
func q8y4x8(corr, scale, codes *uint32, xstride int, w *byte, h, nb int, out *float32, ldc int, alpha, beta float32, cols int)

// q8y2x16 is q8y4x8 for 2 rows of activations and the whole panel (h 0,
// cols 1 to 16).
//
//go:noescape
func q8y2x16(corr, scale, codes *uint32, xstride int, w *byte, h, nb int, out *float32, ldc int, alpha, beta float32, cols int)

// q8y1x16 is q8y2x16 for 1 row of activations.
//
//go:noescape
func q8y1x16(corr, scale, codes *uint32, xstride int, w *byte, h, nb int, out *float32, ldc int, alpha, beta float32, cols int)

// q4y4x8 is q8y4x8 for a Q4_0 matrix.
//
//go:noescape
func q4y4x8(corr, scale, codes *uint32, xstride int, w *byte, h, nb int, out *float32, ldc int, alpha, beta float32, cols int)

// q4y2x16 is q8y2x16 for a Q4_0 matrix.
//
//go:noescape
func q4y2x16(corr, scale, codes *uint32, xstride int, w *byte, h, nb int, out *float32, ldc int, alpha, beta float32, cols int)

// q4y1x16 is q8y1x16 for a Q4_0 matrix.
//
//go:noescape
func q4y1x16(corr, scale, codes *uint32, xstride int, w *byte, h, nb int, out *float32, ldc int, alpha, beta float32, cols int)

// quantPackAVX2 is quantPack with AVX2 and F16C (quant_pack_avx2_amd64.s).
//
//go:noescape
func quantPackAVX2(x *float32, nb int, corr, scale, codes *uint32, stride int, shift int32)
