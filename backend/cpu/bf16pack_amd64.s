//go:build !purego

#include "textflag.h"

// The bf16 kernels' packing (bf16_amd64.go): float32 values to bfloat16
// pairs by VCVTNE2PS2BF16, which Go's assembler has no mnemonic for.
// VCVTNE2PS2BF16 Z2, Z1, Z0 (EVEX.512.F2.0F38.W0 72 /r) sets the words
// 0-15 of Z2 to Z0's 16 values rounded (nearest even, DAZ), 16-31 to Z1's.
#define CVT_Z2_Z1_Z0 BYTE $0x62; BYTE $0xf2; BYTE $0x77; BYTE $0x48; BYTE $0x72; BYTE $0xd0

// func cvtPairs(dst, src *float32, chunks int, m0, m1, ms int)
// dst[q] = pair(src[2q], src[2q+1]) for chunks steps of 32 values, then
// one step with loads masked by m0 (values 0-15) and m1 (16-31), the
// store by ms.
TEXT ·cvtPairs(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ chunks+16(FP), CX
	TESTQ CX, CX
	JEQ cvtTail
cvtLoop:
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	CVT_Z2_Z1_Z0
	VMOVDQU32 Z2, (DI)
	ADDQ $128, SI
	ADDQ $64, DI
	DECQ CX
	JNE cvtLoop
cvtTail:
	MOVQ ms+40(FP), AX
	TESTQ AX, AX
	JEQ cvtDone
	KMOVW AX, K3
	MOVQ m0+24(FP), AX
	KMOVW AX, K1
	MOVQ m1+32(FP), AX
	KMOVW AX, K2
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z 64(SI), K2, Z1
	CVT_Z2_Z1_Z0
	VMOVDQU32 Z2, K3, (DI)
cvtDone:
	VZEROUPPER
	RET

// pairIndex interleaves the two halves' words: word 2i from word i, word
// 2i+1 from word 16+i.
DATA pairIndex<>+0(SB)/8, $0x0011000100100000
DATA pairIndex<>+8(SB)/8, $0x0013000300120002
DATA pairIndex<>+16(SB)/8, $0x0015000500140004
DATA pairIndex<>+24(SB)/8, $0x0017000700160006
DATA pairIndex<>+32(SB)/8, $0x0019000900180008
DATA pairIndex<>+40(SB)/8, $0x001b000b001a000a
DATA pairIndex<>+48(SB)/8, $0x001d000d001c000c
DATA pairIndex<>+56(SB)/8, $0x001f000f001e000e
GLOBL pairIndex<>(SB), RODATA|NOPTR, $64

// func pairRows(dst *float32, ds int, src *float32, ss int, kc int, lmask, smask int)
// dst[q*ds+i] = pair(src[2q*ss+i], src[(2q+1)*ss+i]) for q < (kc+1)/2
// (the value past an odd kc read as zero) and the lanes i of smask; lanes
// outside lmask read as zero.
TEXT ·pairRows(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ ds+8(FP), R8
	SHLQ $2, R8
	MOVQ src+16(FP), SI
	MOVQ ss+24(FP), R9
	SHLQ $2, R9
	LEAQ (SI)(R9*1), BX
	SHLQ $1, R9
	MOVQ kc+32(FP), CX
	MOVQ CX, DX
	ANDQ $1, DX
	SHRQ $1, CX
	MOVQ lmask+40(FP), AX
	KMOVW AX, K1
	MOVQ smask+48(FP), AX
	KMOVW AX, K2
	VMOVDQU64 pairIndex<>(SB), Z3
	TESTQ CX, CX
	JEQ pairTail
pairLoop:
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (BX), K1, Z1
	CVT_Z2_Z1_Z0
	VPERMW Z2, Z3, Z4
	VMOVDQU32 Z4, K2, (DI)
	ADDQ R9, SI
	ADDQ R9, BX
	ADDQ R8, DI
	DECQ CX
	JNE pairLoop
pairTail:
	TESTQ DX, DX
	JEQ pairDone
	VMOVUPS.Z (SI), K1, Z0
	VPXORD Z1, Z1, Z1
	CVT_Z2_Z1_Z0
	VPERMW Z2, Z3, Z4
	VMOVDQU32 Z4, K2, (DI)
pairDone:
	VZEROUPPER
	RET

// VDPBF16PS Z1, Z0, Z2: Z1 += the pairs' dot products of Z0 and Z2.
#define DP_Z1_Z0_Z2 BYTE $0x62; BYTE $0xf2; BYTE $0x7e; BYTE $0x48; BYTE $0x52; BYTE $0xca

// func bdot(out, x *float32, w *uint16, kp, n, ldw int)
// out[j] = the sum over the kp pairs q of x (bfloat16 pairs) times row j
// of w (bfloat16 values, rows ldw apart, read as kp pairs), for j < n:
// 16 lanes of VDPBF16PS, then summed across the lanes.
TEXT ·bdot(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DX
	MOVQ w+16(FP), R8
	MOVQ n+32(FP), R9
	MOVQ ldw+40(FP), R10
	SHLQ $1, R10
	MOVQ kp+24(FP), AX
	MOVQ AX, R11
	ANDQ $15, R11
	MOVL $1, BX
	MOVQ R11, CX
	SHLL CX, BX
	DECL BX
	KMOVW BX, K1
	SHRQ $4, AX
bdotRow:
	MOVQ x+8(FP), SI
	MOVQ R8, DI
	MOVQ AX, CX
	VPXORD Z1, Z1, Z1
	TESTQ CX, CX
	JEQ bdotTail
bdotLoop:
	VMOVDQU32 (SI), Z0
	VMOVDQU32 (DI), Z2
	DP_Z1_Z0_Z2
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNE bdotLoop
bdotTail:
	TESTQ R11, R11
	JEQ bdotSum
	VMOVDQU32.Z (SI), K1, Z0
	VMOVDQU32.Z (DI), K1, Z2
	DP_Z1_Z0_Z2
bdotSum:
	VEXTRACTF64X4 $1, Z1, Y3
	VADDPS Y3, Y1, Y1
	VEXTRACTF128 $1, Y1, X3
	VADDPS X3, X1, X1
	VHADDPS X1, X1, X1
	VHADDPS X1, X1, X1
	MOVSS X1, (DX)
	ADDQ $4, DX
	ADDQ R10, R8
	DECQ R9
	JNE bdotRow
	VZEROUPPER
	RET
