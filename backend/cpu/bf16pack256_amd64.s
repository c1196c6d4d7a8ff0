//go:build !purego

#include "textflag.h"

// The bf16 kernels' packing on CPUs with AVX2 but no AVX512_BF16
// (bf16pack_amd64.go): float32 values rounded to bfloat16 as ToBF16
// rounds them, 8 at a time, and paired.

DATA bf16c256<>+0(SB)/4, $0x00000001  // the rounding's parity bit (after >> 16)
DATA bf16c256<>+4(SB)/4, $0x00007fff  // half an ulp less one
DATA bf16c256<>+8(SB)/4, $0x7f800000  // the exponent
DATA bf16c256<>+12(SB)/4, $0x7fffffff // all but the sign
DATA bf16c256<>+16(SB)/4, $0x80000000 // the sign
DATA bf16c256<>+20(SB)/4, $0x00400000 // a NaN's quiet bit
DATA bf16c256<>+24(SB)/4, $0xffff0000 // the high half
GLOBL bf16c256<>(SB), RODATA|NOPTR, $28

// ROUND(x, t, u) sets x's high half to ToBF16 of x (its low half is then
// garbage): x + 0x7fff + the parity bit, then a zero or denormal x
// becomes its sign, a NaN x quiet (x | 0x400000). Clobbers t and u;
// Y8-Y14 hold the constants above.
#define ROUND(x, t, u) \
	VPSRLD $16, x, t \
	VPAND Y8, t, t \
	VPADDD Y9, t, t \
	VPADDD x, t, t \
	VPAND Y10, x, u \
	VPCMPEQD Y7, u, u \
	VPBLENDVB u, Y12, t, t \
	VPAND Y11, x, u \
	VPCMPGTD Y10, u, u \
	VPOR Y13, x, x \
	VPBLENDVB u, x, t, x

// func pairRound256(dst, lo, hi *float32, n int)
// dst[i] = pair(lo[i], hi[i]) (ToBF16 of lo[i] in the low half, of hi[i]
// in the high half) for i < 8*n.
TEXT ·pairRound256(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ lo+8(FP), SI
	MOVQ hi+16(FP), BX
	MOVQ n+24(FP), CX
	VPBROADCASTD bf16c256<>+0(SB), Y8
	VPBROADCASTD bf16c256<>+4(SB), Y9
	VPBROADCASTD bf16c256<>+8(SB), Y10
	VPBROADCASTD bf16c256<>+12(SB), Y11
	VPBROADCASTD bf16c256<>+20(SB), Y13
	VPBROADCASTD bf16c256<>+24(SB), Y14
	VPXOR Y7, Y7, Y7
pairRoundLoop:
	VMOVDQU (SI), Y0
	VMOVDQU (BX), Y1
	// Y12: the sign of lo, for ROUND's zeros and denormals; then hi's.
	VPBROADCASTD bf16c256<>+16(SB), Y12
	VPAND Y0, Y12, Y12
	ROUND(Y0, Y2, Y3)
	VPBROADCASTD bf16c256<>+16(SB), Y12
	VPAND Y1, Y12, Y12
	ROUND(Y1, Y2, Y3)
	VPSRLD $16, Y0, Y0
	VPAND Y14, Y1, Y1
	VPOR Y1, Y0, Y0
	VMOVDQU Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, BX
	ADDQ $32, DI
	DECQ CX
	JNE pairRoundLoop
	VZEROUPPER
	RET

// pairBytes256 picks, within each 128-bit lane, the high halves of
// dwords 0 and 1 (the first pair) and of 2 and 3 (the second) into
// dwords 0 and 1; dwords 2 and 3 are zero.
DATA pairBytes256<>+0(SB)/8, $0x0f0e0b0a07060302
DATA pairBytes256<>+8(SB)/8, $0x8080808080808080
DATA pairBytes256<>+16(SB)/8, $0x0f0e0b0a07060302
DATA pairBytes256<>+24(SB)/8, $0x8080808080808080
GLOBL pairBytes256<>(SB), RODATA|NOPTR, $32

// func cvtPairs256(dst, src *float32, n int)
// dst[q] = pair(src[2q], src[2q+1]) for q < 8*n: 16 values a step,
// rounded by ROUND, their high halves picked in pairs (VPSHUFB) and the
// two vectors' pairs put back in order (VPUNPCKLQDQ, VPERMQ).
TEXT ·cvtPairs256(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VPBROADCASTD bf16c256<>+0(SB), Y8
	VPBROADCASTD bf16c256<>+4(SB), Y9
	VPBROADCASTD bf16c256<>+8(SB), Y10
	VPBROADCASTD bf16c256<>+12(SB), Y11
	VPBROADCASTD bf16c256<>+20(SB), Y13
	VMOVDQU pairBytes256<>(SB), Y14
	VPXOR Y7, Y7, Y7
cvtPairsLoop:
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y1
	VPBROADCASTD bf16c256<>+16(SB), Y12
	VPAND Y0, Y12, Y12
	ROUND(Y0, Y2, Y3)
	VPBROADCASTD bf16c256<>+16(SB), Y12
	VPAND Y1, Y12, Y12
	ROUND(Y1, Y2, Y3)
	// Y0: pairs 0,1 | 4,5 in its lanes' low halves; Y1: 2,3 | 6,7.
	VPSHUFB Y14, Y0, Y0
	VPSHUFB Y14, Y1, Y1
	// pairs 0,1,4,5,2,3,6,7 (qwords 0-3: 01 23 45 67 after VPERMQ).
	VPUNPCKLQDQ Y1, Y0, Y0
	VPERMQ $0xd8, Y0, Y0
	VMOVDQU Y0, (DI)
	ADDQ $64, SI
	ADDQ $32, DI
	DECQ CX
	JNE cvtPairsLoop
	VZEROUPPER
	RET

// func splitPairs256(p *float32, n, n8 int)
// For i < 8*n8: p[n+i] = p[i] << 16 (the pair's low value), then p[i] =
// p[i] AND 0xffff0000 (its high value): splitPairs' vector part.
TEXT ·splitPairs256(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), R9
	SHLQ $2, R9
	MOVQ n8+16(FP), CX
	VPCMPEQD Y15, Y15, Y15
	VPSLLD $16, Y15, Y15
splitPairsLoop:
	VMOVDQU (SI), Y0
	VPSLLD $16, Y0, Y1
	VPAND Y15, Y0, Y0
	VMOVDQU Y1, (SI)(R9*1)
	VMOVDQU Y0, (SI)
	ADDQ $32, SI
	DECQ CX
	JNE splitPairsLoop
	VZEROUPPER
	RET

// laneMask256: 8 lanes set, then 8 clear; loaded from lane 8-c it sets
// the first c lanes.
DATA laneMask256<>+0(SB)/8, $0xffffffffffffffff
DATA laneMask256<>+8(SB)/8, $0xffffffffffffffff
DATA laneMask256<>+16(SB)/8, $0xffffffffffffffff
DATA laneMask256<>+24(SB)/8, $0xffffffffffffffff
DATA laneMask256<>+32(SB)/8, $0
DATA laneMask256<>+40(SB)/8, $0
DATA laneMask256<>+48(SB)/8, $0
DATA laneMask256<>+56(SB)/8, $0
GLOBL laneMask256<>(SB), RODATA|NOPTR, $64

// func pairRowsMask256(dst *float32, ds int, src *float32, ss int, kp, c int)
// dst[q*ds+i] = pair(src[2q*ss+i], src[(2q+1)*ss+i]) for q < kp and the
// c lanes i < c (1 <= c <= 8): masked loads and stores of one vector a
// step (a transposed A's micro-panels, 6 lanes).
TEXT ·pairRowsMask256(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ ds+8(FP), R8
	SHLQ $2, R8
	MOVQ src+16(FP), SI
	MOVQ ss+24(FP), R9
	SHLQ $2, R9
	LEAQ (SI)(R9*1), BX
	SHLQ $1, R9
	MOVQ kp+32(FP), CX
	MOVQ $8, AX
	SUBQ c+40(FP), AX
	LEAQ laneMask256<>(SB), DX
	VMOVDQU (DX)(AX*4), Y6
	VPBROADCASTD bf16c256<>+0(SB), Y8
	VPBROADCASTD bf16c256<>+4(SB), Y9
	VPBROADCASTD bf16c256<>+8(SB), Y10
	VPBROADCASTD bf16c256<>+12(SB), Y11
	VPBROADCASTD bf16c256<>+20(SB), Y13
	VPBROADCASTD bf16c256<>+24(SB), Y14
	VPXOR Y7, Y7, Y7
pairRowsMaskLoop:
	VPMASKMOVD (SI), Y6, Y0
	VPMASKMOVD (BX), Y6, Y1
	VPBROADCASTD bf16c256<>+16(SB), Y12
	VPAND Y0, Y12, Y12
	ROUND(Y0, Y2, Y3)
	VPBROADCASTD bf16c256<>+16(SB), Y12
	VPAND Y1, Y12, Y12
	ROUND(Y1, Y2, Y3)
	VPSRLD $16, Y0, Y0
	VPAND Y14, Y1, Y1
	VPOR Y1, Y0, Y0
	VPMASKMOVD Y0, Y6, (DI)
	ADDQ R9, SI
	ADDQ R9, BX
	ADDQ R8, DI
	DECQ CX
	JNE pairRowsMaskLoop
	VZEROUPPER
	RET
