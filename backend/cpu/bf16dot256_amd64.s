//go:build !purego

#include "textflag.h"

// bdot256: the bf16 weights' decoding product (bdotRows) on CPUs with
// AVX2 and FMA but no AVX512_BF16: bdot's contract, with VDPBF16PS's
// pair done as in the AVX2 bf16 GEMM (bf16gemm256_amd64.s): each lane
// of 8 pairs split into hi (AND 0xffff0000) and lo (<< 16), on x's side
// and on the weights' (a row's bfloat16 values read two at a time as
// pairs, little-endian: the even one low), and summed by two FMAs, hi
// first. Four vectors of accumulators over 32 pairs at a time, one over
// 8, then a masked load of the last 1-7 pairs; then the vectors and
// their 8 lanes summed. MXCSR is left alone: a denormal sum is kept
// where VDPBF16PS would flush it (the results agree within float32's
// summation, as bdot's do, not bit for bit).

// bdotMask256: 8 lanes set, then 8 clear; loaded from lane 8-r it sets
// the first r lanes.
DATA bdotMask256<>+0(SB)/8, $0xffffffffffffffff
DATA bdotMask256<>+8(SB)/8, $0xffffffffffffffff
DATA bdotMask256<>+16(SB)/8, $0xffffffffffffffff
DATA bdotMask256<>+24(SB)/8, $0xffffffffffffffff
DATA bdotMask256<>+32(SB)/8, $0
DATA bdotMask256<>+40(SB)/8, $0
DATA bdotMask256<>+48(SB)/8, $0
DATA bdotMask256<>+56(SB)/8, $0
GLOBL bdotMask256<>(SB), RODATA|NOPTR, $64

// PAIR(x, w, acc) adds the 8 pairs of x and w (registers, both split
// here) to acc: acc += hi(x)*hi(w), then acc += lo(x)*lo(w). Y15 holds
// 0xffff0000 in each lane; Y12 and Y13 are scratch.
#define PAIR(x, w, acc) \
	VPAND x, Y15, Y12 \
	VPAND w, Y15, Y13 \
	VFMADD231PS Y12, Y13, acc \
	VPSLLD $16, x, x \
	VPSLLD $16, w, w \
	VFMADD231PS x, w, acc

// func bdot256(out, x *float32, w *uint16, kp, n, ldw int)
// out[j] = the sum over the kp pairs q of x (bfloat16 pairs) times row j
// of w (bfloat16 values, rows ldw apart, read as kp pairs), for j < n
// (n >= 1, kp >= 1).
TEXT ·bdot256(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DX
	MOVQ w+16(FP), R8
	MOVQ n+32(FP), R9
	MOVQ ldw+40(FP), R10
	SHLQ $1, R10
	VPCMPEQD Y15, Y15, Y15
	VPSLLD $16, Y15, Y15
	// Y14: the mask of the last kp%8 pairs.
	MOVQ kp+24(FP), AX
	MOVQ AX, R11
	ANDQ $7, R11
	MOVQ $8, BX
	SUBQ R11, BX
	LEAQ bdotMask256<>(SB), CX
	VMOVDQU (CX)(BX*4), Y14
bdotRow:
	MOVQ x+8(FP), SI
	MOVQ R8, DI
	MOVQ kp+24(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	CMPQ CX, $32
	JLT bdot8
bdot32:
	VMOVDQU (SI), Y4
	VMOVDQU (DI), Y5
	VMOVDQU 32(SI), Y6
	VMOVDQU 32(DI), Y7
	VMOVDQU 64(SI), Y8
	VMOVDQU 64(DI), Y9
	VMOVDQU 96(SI), Y10
	VMOVDQU 96(DI), Y11
	PAIR(Y4, Y5, Y0)
	PAIR(Y6, Y7, Y1)
	PAIR(Y8, Y9, Y2)
	PAIR(Y10, Y11, Y3)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	CMPQ CX, $32
	JGE bdot32
bdot8:
	CMPQ CX, $8
	JLT bdotTail
	VMOVDQU (SI), Y4
	VMOVDQU (DI), Y5
	PAIR(Y4, Y5, Y0)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP bdot8
bdotTail:
	TESTQ CX, CX
	JEQ bdotSum
	VPMASKMOVD (SI), Y14, Y4
	VPMASKMOVD (DI), Y14, Y5
	PAIR(Y4, Y5, Y1)
bdotSum:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	MOVSS X0, (DX)
	ADDQ $4, DX
	ADDQ R10, R8
	DECQ R9
	JNE bdotRow
	VZEROUPPER
	RET
