//go:build !purego

#include "textflag.h"

// Products of activations with Q8_0 and Q4_0 matrices (see quant.go): R
// rows of int8 activations (R = 8, 4, 2 or 1; see qrows: per block, the
// R rows' corrections, their scales, then each row's 32 codes) against
// one panel of 16 weight rows (see
// panelBlock), a block a step. The 16 int32 lanes of a VPDPBUSD are the
// 16 weight rows: the block's codes are loaded (Q4_0: unpacked) once into
// Z0-Z7 (group g: values 4g..4g+3 of the 16 rows, unsigned) and serve
// all R rows, each row's 4 codes of a group broadcast from memory
// (VPDPBUSD.BCST). A row's block sums (exact, started from the row's
// correction, so that the weights' shift is taken back) are converted to
// float32 and scaled by the 16 rows' scales (Z8, widened from float16)
// times the row's scale, into the row's accumulator (Z16 + row): per
// block and row 12 instructions for 512 products, plus the weights' 9
// (Q8_0) or 13 (Q4_0) shared by the R rows.

// Q8W loads a Q8_0 step's weights: scales to Z8, groups to Z0-Z7.
#define Q8W \
	VCVTPH2PS (DI), Z8; \
	VMOVDQU64 32(DI), Z0; \
	VMOVDQU64 96(DI), Z1; \
	VMOVDQU64 160(DI), Z2; \
	VMOVDQU64 224(DI), Z3; \
	VMOVDQU64 288(DI), Z4; \
	VMOVDQU64 352(DI), Z5; \
	VMOVDQU64 416(DI), Z6; \
	VMOVDQU64 480(DI), Z7

// Q4W unpacks a Q4_0 step's weights: scales to Z8, the low nibbles of
// the 4 vectors to Z0-Z3 (groups 0-3), the high ones to Z4-Z7 (Z31: 0x0f
// bytes).
#define Q4W \
	VCVTPH2PS (DI), Z8; \
	VPANDD 32(DI), Z31, Z0; \
	VPSRLW $4, 32(DI), Z4; \
	VPANDD Z31, Z4, Z4; \
	VPANDD 96(DI), Z31, Z1; \
	VPSRLW $4, 96(DI), Z5; \
	VPANDD Z31, Z5, Z5; \
	VPANDD 160(DI), Z31, Z2; \
	VPSRLW $4, 160(DI), Z6; \
	VPANDD Z31, Z6, Z6; \
	VPANDD 224(DI), Z31, Z3; \
	VPSRLW $4, 224(DI), Z7; \
	VPANDD Z31, Z7, Z7

// QROW accumulates row i of NR into acc (tmp, tmpf: scratch).
#define QROW(NR, i, acc, tmp, tmpf) \
	VPBROADCASTD (4*i)(SI), tmp; \
	VPDPBUSD.BCST (8*NR+32*i+0)(SI), Z0, tmp; \
	VPDPBUSD.BCST (8*NR+32*i+4)(SI), Z1, tmp; \
	VPDPBUSD.BCST (8*NR+32*i+8)(SI), Z2, tmp; \
	VPDPBUSD.BCST (8*NR+32*i+12)(SI), Z3, tmp; \
	VPDPBUSD.BCST (8*NR+32*i+16)(SI), Z4, tmp; \
	VPDPBUSD.BCST (8*NR+32*i+20)(SI), Z5, tmp; \
	VPDPBUSD.BCST (8*NR+32*i+24)(SI), Z6, tmp; \
	VPDPBUSD.BCST (8*NR+32*i+28)(SI), Z7, tmp; \
	VCVTDQ2PS tmp, tmp; \
	VMULPS.BCST (4*NR+4*i)(SI), Z8, tmpf; \
	VFMADD231PS tmpf, tmp, acc

// QSETUP loads the arguments: SI the packed rows, DI the panel, CX the
// blocks, DX out, R9 its row stride in bytes, Z13 alpha, Z14 beta, K1 the
// columns to write, BX beta's bits without the sign (0: out is not
// read), Z31 0x0f bytes (Q4W's mask).
#define QSETUP \
	MOVQ x+0(FP), SI; \
	MOVQ w+8(FP), DI; \
	MOVQ nb+16(FP), CX; \
	MOVQ out+24(FP), DX; \
	MOVQ ldc+32(FP), R9; \
	SHLQ $2, R9; \
	VBROADCASTSS alpha+40(FP), Z13; \
	VBROADCASTSS beta+44(FP), Z14; \
	MOVL beta+44(FP), BX; \
	ANDL $0x7fffffff, BX; \
	MOVL mask+48(FP), AX; \
	KMOVW AX, K1; \
	MOVL $0x0f0f0f0f, AX; \
	VPBROADCASTD AX, Z31

// QPUT writes acc times alpha to the next row of out.
#define QPUT(acc) \
	VMULPS Z13, acc, acc; \
	VMOVUPS acc, K1, (DX); \
	ADDQ R9, DX

// QPUTB is QPUT plus beta times out's values.
#define QPUTB(acc) \
	VMULPS Z13, acc, acc; \
	VMOVUPS.Z (DX), K1, Z9; \
	VFMADD231PS Z14, Z9, acc; \
	VMOVUPS acc, K1, (DX); \
	ADDQ R9, DX

// func q8gemm8(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32)
TEXT ·q8gemm8(SB), NOSPLIT, $0-52
	QSETUP
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
loop8x8:
	Q8W
	QROW(8, 0, Z16, Z9, Z10)
	QROW(8, 1, Z17, Z11, Z12)
	QROW(8, 2, Z18, Z24, Z25)
	QROW(8, 3, Z19, Z26, Z27)
	QROW(8, 4, Z20, Z9, Z10)
	QROW(8, 5, Z21, Z11, Z12)
	QROW(8, 6, Z22, Z24, Z25)
	QROW(8, 7, Z23, Z26, Z27)
	ADDQ $320, SI
	ADDQ $544, DI
	DECQ CX
	JNZ loop8x8
	TESTL BX, BX
	JNZ beta8x8
	QPUT(Z16)
	QPUT(Z17)
	QPUT(Z18)
	QPUT(Z19)
	QPUT(Z20)
	QPUT(Z21)
	QPUT(Z22)
	QPUT(Z23)
	VZEROUPPER
	RET
beta8x8:
	QPUTB(Z16)
	QPUTB(Z17)
	QPUTB(Z18)
	QPUTB(Z19)
	QPUTB(Z20)
	QPUTB(Z21)
	QPUTB(Z22)
	QPUTB(Z23)
	VZEROUPPER
	RET

// func q8gemm4(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32)
TEXT ·q8gemm4(SB), NOSPLIT, $0-52
	QSETUP
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
loop8x4:
	Q8W
	QROW(4, 0, Z16, Z9, Z10)
	QROW(4, 1, Z17, Z11, Z12)
	QROW(4, 2, Z18, Z24, Z25)
	QROW(4, 3, Z19, Z26, Z27)
	ADDQ $160, SI
	ADDQ $544, DI
	DECQ CX
	JNZ loop8x4
	TESTL BX, BX
	JNZ beta8x4
	QPUT(Z16)
	QPUT(Z17)
	QPUT(Z18)
	QPUT(Z19)
	VZEROUPPER
	RET
beta8x4:
	QPUTB(Z16)
	QPUTB(Z17)
	QPUTB(Z18)
	QPUTB(Z19)
	VZEROUPPER
	RET

// func q8gemm2(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32)
TEXT ·q8gemm2(SB), NOSPLIT, $0-52
	QSETUP
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
loop8x2:
	Q8W
	QROW(2, 0, Z16, Z9, Z10)
	QROW(2, 1, Z17, Z11, Z12)
	ADDQ $80, SI
	ADDQ $544, DI
	DECQ CX
	JNZ loop8x2
	TESTL BX, BX
	JNZ beta8x2
	QPUT(Z16)
	QPUT(Z17)
	VZEROUPPER
	RET
beta8x2:
	QPUTB(Z16)
	QPUTB(Z17)
	VZEROUPPER
	RET

// func q8gemm1(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32)
TEXT ·q8gemm1(SB), NOSPLIT, $0-52
	QSETUP
	VPXORD Z16, Z16, Z16
loop8x1:
	Q8W
	QROW(1, 0, Z16, Z9, Z10)
	ADDQ $40, SI
	ADDQ $544, DI
	DECQ CX
	JNZ loop8x1
	TESTL BX, BX
	JNZ beta8x1
	QPUT(Z16)
	VZEROUPPER
	RET
beta8x1:
	QPUTB(Z16)
	VZEROUPPER
	RET

// func q4gemm8(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32)
TEXT ·q4gemm8(SB), NOSPLIT, $0-52
	QSETUP
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
loop4x8:
	Q4W
	QROW(8, 0, Z16, Z9, Z10)
	QROW(8, 1, Z17, Z11, Z12)
	QROW(8, 2, Z18, Z24, Z25)
	QROW(8, 3, Z19, Z26, Z27)
	QROW(8, 4, Z20, Z9, Z10)
	QROW(8, 5, Z21, Z11, Z12)
	QROW(8, 6, Z22, Z24, Z25)
	QROW(8, 7, Z23, Z26, Z27)
	ADDQ $320, SI
	ADDQ $288, DI
	DECQ CX
	JNZ loop4x8
	TESTL BX, BX
	JNZ beta4x8
	QPUT(Z16)
	QPUT(Z17)
	QPUT(Z18)
	QPUT(Z19)
	QPUT(Z20)
	QPUT(Z21)
	QPUT(Z22)
	QPUT(Z23)
	VZEROUPPER
	RET
beta4x8:
	QPUTB(Z16)
	QPUTB(Z17)
	QPUTB(Z18)
	QPUTB(Z19)
	QPUTB(Z20)
	QPUTB(Z21)
	QPUTB(Z22)
	QPUTB(Z23)
	VZEROUPPER
	RET

// func q4gemm4(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32)
TEXT ·q4gemm4(SB), NOSPLIT, $0-52
	QSETUP
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
loop4x4:
	Q4W
	QROW(4, 0, Z16, Z9, Z10)
	QROW(4, 1, Z17, Z11, Z12)
	QROW(4, 2, Z18, Z24, Z25)
	QROW(4, 3, Z19, Z26, Z27)
	ADDQ $160, SI
	ADDQ $288, DI
	DECQ CX
	JNZ loop4x4
	TESTL BX, BX
	JNZ beta4x4
	QPUT(Z16)
	QPUT(Z17)
	QPUT(Z18)
	QPUT(Z19)
	VZEROUPPER
	RET
beta4x4:
	QPUTB(Z16)
	QPUTB(Z17)
	QPUTB(Z18)
	QPUTB(Z19)
	VZEROUPPER
	RET

// func q4gemm2(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32)
TEXT ·q4gemm2(SB), NOSPLIT, $0-52
	QSETUP
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
loop4x2:
	Q4W
	QROW(2, 0, Z16, Z9, Z10)
	QROW(2, 1, Z17, Z11, Z12)
	ADDQ $80, SI
	ADDQ $288, DI
	DECQ CX
	JNZ loop4x2
	TESTL BX, BX
	JNZ beta4x2
	QPUT(Z16)
	QPUT(Z17)
	VZEROUPPER
	RET
beta4x2:
	QPUTB(Z16)
	QPUTB(Z17)
	VZEROUPPER
	RET

// func q4gemm1(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32)
TEXT ·q4gemm1(SB), NOSPLIT, $0-52
	QSETUP
	VPXORD Z16, Z16, Z16
loop4x1:
	Q4W
	QROW(1, 0, Z16, Z9, Z10)
	ADDQ $40, SI
	ADDQ $288, DI
	DECQ CX
	JNZ loop4x1
	TESTL BX, BX
	JNZ beta4x1
	QPUT(Z16)
	VZEROUPPER
	RET
beta4x1:
	QPUTB(Z16)
	VZEROUPPER
	RET

// Rounding activations to int8 (see quantizeRows), a block a step.

// BLOCKMAX sets Xm's lane 0 to the largest |value| of the block in a, b
// (Z31: 0x7fffffff), or to NaN (X30) if the block holds a NaN; Zt, Yt, Xt
// and Ym are scratch (Zm, Ym, Xm and Zt, Yt, Xt name the same registers).
#define BLOCKMAX(a, b, zm, ym, xm, zt, yt, xt) \
	VPANDD Z31, a, zm; \
	VPANDD Z31, b, zt; \
	VMAXPS zt, zm, zm; \
	VEXTRACTF64X4 $1, zm, yt; \
	VMAXPS yt, ym, ym; \
	VEXTRACTF128 $1, ym, xt; \
	VMAXPS xt, xm, xm; \
	VPERMILPS $0x4e, xm, xt; \
	VMAXPS xt, xm, xm; \
	VPERMILPS $0xb1, xm, xt; \
	VMAXPS xt, xm, xm; \
	VCMPPS $3, a, a, K1; \
	VCMPPS $3, b, b, K2; \
	KORW K1, K2, K1; \
	KORTESTW K1, K1; \
	JZ 2(PC); \
	VMOVAPS X30, xm

// BLOCKCODES rounds the values in z (16 of a block) to int8 codes in x,
// with the inverse scale in Zid: t = v * id, plus 0.5 with t's sign
// (Z29: 0x80000000, Z28: 0x3f000000), truncated; Zt is scratch.
#define BLOCKCODES(z, id, x, t) \
	VMULPS id, z, z; \
	VPANDD Z29, z, t; \
	VPORD Z28, t, t; \
	VADDPS t, z, z; \
	VCVTTPS2DQ z, z; \
	VPMOVDB z, x

// func quantPack(x *float32, nb int, corr, scale, codes *uint32, stride int, shift int32)
TEXT ·quantPack(SB), NOSPLIT, $0-52
	MOVQ x+0(FP), SI
	MOVQ nb+8(FP), CX
	MOVQ corr+16(FP), R8
	MOVQ scale+24(FP), R9
	MOVQ codes+32(FP), DI
	MOVQ stride+40(FP), R10
	MOVL shift+48(FP), AX
	NEGL AX
	VPBROADCASTD AX, Z27
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z31
	MOVL $0x7fc00000, AX
	VPBROADCASTD AX, Z30
	MOVL $0x80000000, AX
	VPBROADCASTD AX, Z29
	MOVL $0x3f000000, AX
	VPBROADCASTD AX, Z28
	MOVL $0x01010101, AX
	VPBROADCASTD AX, Z26
	MOVL $0x477fe000, AX // 65504, float16's largest (f32ToF16 saturates)
	VPBROADCASTD AX, Z22
	MOVL $127, AX
	VCVTSI2SSL AX, X25, X25
	MOVL $1, AX
	VCVTSI2SSL AX, X24, X24
	VXORPS X23, X23, X23
blockloop:
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	BLOCKMAX(Z0, Z1, Z4, Y4, X4, Z6, Y6, X6)
	// d = amax / 127, stored rounded to float16 (a NaN stays NaN); the
	// codes take id = 1/d, 0 where d is 0.
	VDIVSS X25, X4, X4
	VMINSS X4, X22, X5
	VCVTPS2PH $0, X5, X5
	VCVTPH2PS X5, X5
	VMOVSS X5, (R9)
	VDIVSS X4, X24, X6
	VCMPSS $0, X23, X4, K1
	VMOVSS X23, X23, K1, X6
	VBROADCASTSS X6, Z6
	BLOCKCODES(Z0, Z6, X8, Z12)
	BLOCKCODES(Z1, Z6, X9, Z12)
	VMOVDQU X8, (DI)
	VMOVDQU X9, 16(DI)
	// The correction: -shift times the sum of the 32 codes.
	VINSERTI128 $1, X9, Y8, Y10
	VPXORD Y13, Y13, Y13
	VPDPBUSD Y10, Y26, Y13
	VEXTRACTI128 $1, Y13, X14
	VPADDD X14, X13, X13
	VPSHUFD $0x4e, X13, X14
	VPADDD X14, X13, X13
	VPSHUFD $0xb1, X13, X14
	VPADDD X14, X13, X13
	VPMULLD X27, X13, X13
	VMOVD X13, (R8)
	ADDQ $128, SI
	ADDQ R10, R8
	ADDQ R10, R9
	ADDQ R10, DI
	DECQ CX
	JNZ blockloop
	VZEROUPPER
	RET
