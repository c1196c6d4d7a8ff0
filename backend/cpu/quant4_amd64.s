//go:build !purego

#include "textflag.h"

// Q4_0 products (see q4Panel in quant.go): NR rows of activations (packed
// by packQ4Rows: per block, the NR rows' corrections, scales, then the
// 8 groups of 4 codes of each row) against one panel of 16 weight rows,
// a block a step. The 16 int32 lanes of a VPDPBUSD are the 16 weight
// rows: the block's 256 bytes of nibbles unpack once into 8 registers (Z0-Z7,
// groups 0-7 of the 16 rows) and serve all NR rows, each row's group of
// 4 codes broadcast from memory. A row's block sum (exact, started from
// its correction) is converted to float32 and scaled by the 16 weight
// rows' scales (Z8, from float16) times the row's scale, into the row's
// accumulator (Z16 + row).

// Q4W unpacks the step's weights: scales to Z8, groups to Z0-Z7 (Z31:
// 0x0f bytes).
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

// Q4ROW accumulates row i of NR into acc, with tmp and tmpf scratch.
#define Q4ROW(NR, i, acc, tmp, tmpf) \
	VPBROADCASTD (4*i)(SI), tmp; \
	VPDPBUSD.BCST (8*NR+4*i)(SI), Z0, tmp; \
	VPDPBUSD.BCST (12*NR+4*i)(SI), Z1, tmp; \
	VPDPBUSD.BCST (16*NR+4*i)(SI), Z2, tmp; \
	VPDPBUSD.BCST (20*NR+4*i)(SI), Z3, tmp; \
	VPDPBUSD.BCST (24*NR+4*i)(SI), Z4, tmp; \
	VPDPBUSD.BCST (28*NR+4*i)(SI), Z5, tmp; \
	VPDPBUSD.BCST (32*NR+4*i)(SI), Z6, tmp; \
	VPDPBUSD.BCST (36*NR+4*i)(SI), Z7, tmp; \
	VCVTDQ2PS tmp, tmp; \
	VMULPS.BCST (4*NR+4*i)(SI), Z8, tmpf; \
	VFMADD231PS tmpf, tmp, acc

// Q4SETUP loads the arguments: SI the packed rows, DI the panel, CX the
// blocks, DX out, R9 its row stride in bytes, Z13 alpha, Z14 beta, K1 the
// columns to write, BX beta's bits without the sign (0: c is not read).
#define Q4SETUP \
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

// Q4PUT writes acc scaled by alpha to the next row of out (c = alpha*acc).
#define Q4PUT(acc) \
	VMULPS Z13, acc, acc; \
	VMOVUPS acc, K1, (DX); \
	ADDQ R9, DX

// Q4PUTB is Q4PUT with beta: c = alpha*acc + beta*c.
#define Q4PUTB(acc) \
	VMULPS Z13, acc, acc; \
	VMOVUPS.Z (DX), K1, Z9; \
	VFMADD231PS Z14, Z9, acc; \
	VMOVUPS acc, K1, (DX); \
	ADDQ R9, DX

// func q4gemm8(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32)
TEXT ·q4gemm8(SB), NOSPLIT, $0-52
	Q4SETUP
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
loop8r:
	Q4W
	Q4ROW(8, 0, Z16, Z9, Z10)
	Q4ROW(8, 1, Z17, Z11, Z12)
	Q4ROW(8, 2, Z18, Z24, Z25)
	Q4ROW(8, 3, Z19, Z26, Z27)
	Q4ROW(8, 4, Z20, Z9, Z10)
	Q4ROW(8, 5, Z21, Z11, Z12)
	Q4ROW(8, 6, Z22, Z24, Z25)
	Q4ROW(8, 7, Z23, Z26, Z27)
	ADDQ $320, SI
	ADDQ $288, DI
	DECQ CX
	JNZ loop8r
	TESTL BX, BX
	JNZ beta8
	Q4PUT(Z16)
	Q4PUT(Z17)
	Q4PUT(Z18)
	Q4PUT(Z19)
	Q4PUT(Z20)
	Q4PUT(Z21)
	Q4PUT(Z22)
	Q4PUT(Z23)
	VZEROUPPER
	RET
beta8:
	Q4PUTB(Z16)
	Q4PUTB(Z17)
	Q4PUTB(Z18)
	Q4PUTB(Z19)
	Q4PUTB(Z20)
	Q4PUTB(Z21)
	Q4PUTB(Z22)
	Q4PUTB(Z23)
	VZEROUPPER
	RET

// func q4gemm4(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32)
TEXT ·q4gemm4(SB), NOSPLIT, $0-52
	Q4SETUP
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
loop4r:
	Q4W
	Q4ROW(4, 0, Z16, Z9, Z10)
	Q4ROW(4, 1, Z17, Z11, Z12)
	Q4ROW(4, 2, Z18, Z24, Z25)
	Q4ROW(4, 3, Z19, Z26, Z27)
	ADDQ $160, SI
	ADDQ $288, DI
	DECQ CX
	JNZ loop4r
	TESTL BX, BX
	JNZ beta4
	Q4PUT(Z16)
	Q4PUT(Z17)
	Q4PUT(Z18)
	Q4PUT(Z19)
	VZEROUPPER
	RET
beta4:
	Q4PUTB(Z16)
	Q4PUTB(Z17)
	Q4PUTB(Z18)
	Q4PUTB(Z19)
	VZEROUPPER
	RET

// func q4gemm2(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32)
TEXT ·q4gemm2(SB), NOSPLIT, $0-52
	Q4SETUP
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
loop2r:
	Q4W
	Q4ROW(2, 0, Z16, Z9, Z10)
	Q4ROW(2, 1, Z17, Z11, Z12)
	ADDQ $80, SI
	ADDQ $288, DI
	DECQ CX
	JNZ loop2r
	TESTL BX, BX
	JNZ beta2
	Q4PUT(Z16)
	Q4PUT(Z17)
	VZEROUPPER
	RET
beta2:
	Q4PUTB(Z16)
	Q4PUTB(Z17)
	VZEROUPPER
	RET

// func q4gemm1(x *uint32, w *byte, nb int, out *float32, ldc int, alpha, beta float32, mask uint32)
TEXT ·q4gemm1(SB), NOSPLIT, $0-52
	Q4SETUP
	VPXORD Z16, Z16, Z16
loop1r:
	Q4W
	Q4ROW(1, 0, Z16, Z9, Z10)
	ADDQ $40, SI
	ADDQ $288, DI
	DECQ CX
	JNZ loop1r
	TESTL BX, BX
	JNZ beta1
	Q4PUT(Z16)
	VZEROUPPER
	RET
beta1:
	Q4PUTB(Z16)
	VZEROUPPER
	RET
