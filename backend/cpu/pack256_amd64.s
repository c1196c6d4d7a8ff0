//go:build !purego

#include "textflag.h"

// TR4X2 transposes, within each 128-bit half, the 4x4 blocks of a, b, c
// and d (rows) into a, b, c, d (columns): with a..d holding steps 0-3 of
// rows 0-3 in their low halves and of rows 4-7 in their high halves, a
// ends with step 0 of rows 0-7, b step 1, c step 2, d step 3. Clobbers
// t0-t3.
#define TR4X2(a, b, c, d, t0, t1, t2, t3) \
	VUNPCKLPS b, a, t0; \
	VUNPCKHPS b, a, t1; \
	VUNPCKLPS d, c, t2; \
	VUNPCKHPS d, c, t3; \
	VUNPCKLPD t2, t0, a; \
	VUNPCKHPD t2, t0, b; \
	VUNPCKLPD t3, t1, c; \
	VUNPCKHPD t3, t1, d

// func packT8(dst *float32, ds int, src *float32, ss int, kb int)
// dst[p*ds+i] = src[i*ss+p] for the 8 rows i < 8 and p < 8*kb: kb 8x8
// transposes, each 16 128-bit loads (row i's 4 steps with row i+4's in
// the high half), two TR4X2 and 8 stores of 8 values.
TEXT ·packT8(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ ds+8(FP), R8
	SHLQ $2, R8
	MOVQ src+16(FP), SI
	MOVQ ss+24(FP), R9
	SHLQ $2, R9
	MOVQ kb+32(FP), CX
	LEAQ (R9)(R9*2), R10 // 3 rows of src
	LEAQ (SI)(R9*4), R11 // row 4
	LEAQ (R8)(R8*2), R12 // 3 steps of dst
packT8_loop:
	// steps 0-3
	VMOVUPS (SI), X0
	VINSERTF128 $1, (R11), Y0, Y0
	VMOVUPS (SI)(R9*1), X1
	VINSERTF128 $1, (R11)(R9*1), Y1, Y1
	VMOVUPS (SI)(R9*2), X2
	VINSERTF128 $1, (R11)(R9*2), Y2, Y2
	VMOVUPS (SI)(R10*1), X3
	VINSERTF128 $1, (R11)(R10*1), Y3, Y3
	// steps 4-7
	VMOVUPS 16(SI), X4
	VINSERTF128 $1, 16(R11), Y4, Y4
	VMOVUPS 16(SI)(R9*1), X5
	VINSERTF128 $1, 16(R11)(R9*1), Y5, Y5
	VMOVUPS 16(SI)(R9*2), X6
	VINSERTF128 $1, 16(R11)(R9*2), Y6, Y6
	VMOVUPS 16(SI)(R10*1), X7
	VINSERTF128 $1, 16(R11)(R10*1), Y7, Y7
	TR4X2(Y0, Y1, Y2, Y3, Y8, Y9, Y10, Y11)
	TR4X2(Y4, Y5, Y6, Y7, Y12, Y13, Y14, Y15)
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, (DI)(R8*1)
	VMOVUPS Y2, (DI)(R8*2)
	VMOVUPS Y3, (DI)(R12*1)
	LEAQ (DI)(R8*4), DI
	VMOVUPS Y4, (DI)
	VMOVUPS Y5, (DI)(R8*1)
	VMOVUPS Y6, (DI)(R8*2)
	VMOVUPS Y7, (DI)(R12*1)
	LEAQ (DI)(R8*4), DI
	ADDQ $32, SI
	ADDQ $32, R11
	DECQ CX
	JNE packT8_loop
	VZEROUPPER
	RET

// func packT6(dst *float32, src *float32, ss int, kb int)
// dst[6*p+i] = src[i*ss+p] for the 6 rows i < 6 and p < 8*kb: packT8's
// transposes with rows 6 and 7 zero (the AVX2 GEMM's A micro-panels, 6
// rows). Step p's 8 lanes are stored at dst+6p, the two past the 6
// overwritten by step p+1's; step 7 of the last block stores 6 only.
TEXT ·packT6(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ss+16(FP), R9
	SHLQ $2, R9
	MOVQ kb+24(FP), CX
	LEAQ (R9)(R9*2), R10 // 3 rows of src
	LEAQ (SI)(R9*4), R11 // row 4
packT6_loop:
	// steps 0-3: rows 0-3 low, rows 4-5 high (6-7 zero)
	VMOVUPS (SI), X0
	VINSERTF128 $1, (R11), Y0, Y0
	VMOVUPS (SI)(R9*1), X1
	VINSERTF128 $1, (R11)(R9*1), Y1, Y1
	VMOVUPS (SI)(R9*2), X2
	VMOVUPS (SI)(R10*1), X3
	// steps 4-7
	VMOVUPS 16(SI), X4
	VINSERTF128 $1, 16(R11), Y4, Y4
	VMOVUPS 16(SI)(R9*1), X5
	VINSERTF128 $1, 16(R11)(R9*1), Y5, Y5
	VMOVUPS 16(SI)(R9*2), X6
	VMOVUPS 16(SI)(R10*1), X7
	TR4X2(Y0, Y1, Y2, Y3, Y8, Y9, Y10, Y11)
	TR4X2(Y4, Y5, Y6, Y7, Y12, Y13, Y14, Y15)
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 24(DI)
	VMOVUPS Y2, 48(DI)
	VMOVUPS Y3, 72(DI)
	VMOVUPS Y4, 96(DI)
	VMOVUPS Y5, 120(DI)
	VMOVUPS Y6, 144(DI)
	VMOVUPS X7, 168(DI)
	VEXTRACTF128 $1, Y7, X8
	VMOVLPS X8, 184(DI)
	ADDQ $192, DI
	ADDQ $32, SI
	ADDQ $32, R11
	DECQ CX
	JNE packT6_loop
	VZEROUPPER
	RET

// func packC16(dst *float32, ds int, src *float32, ss int, kc int)
// dst[p*ds+i] = src[p*ss+i] for i < 16 and p < kc: the AVX2 GEMM's B
// micro-panels (16 wide) from rows of B, two loads and two stores a step.
TEXT ·packC16(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ ds+8(FP), R8
	SHLQ $2, R8
	MOVQ src+16(FP), SI
	MOVQ ss+24(FP), R9
	SHLQ $2, R9
	MOVQ kc+32(FP), CX
packC16_loop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ R9, SI
	ADDQ R8, DI
	DECQ CX
	JNE packC16_loop
	VZEROUPPER
	RET
