//go:build !purego

#include "textflag.h"

// Q8_0 dot products (see quant.go; Q4_0's are quant4_amd64.s): one row
// of int8 activations against four rows of a Q8_0 matrix, 64 values (two blocks) a
// step. Per step and row: the weights' 64 unsigned codes, VPDPBUSD with
// the activations' signed codes onto the lanes' corrections (so each of
// the 16 int32 lanes holds the exact sum of its 4 products), converted
// to float32 and multiplied by the lanes' activation scale times the
// weights' block scale (the blocks' values are interleaved 4 by 4, see
// chunkPos: block 2i's in the even lanes, 2i+1's in the odd ones, so one
// 64-bit broadcast of the two adjacent scales scales them all),
// accumulated in Z8-Z11. The four accumulators are summed across lanes
// at the end.
//
// Each step also prefetches the same chunk of the next four rows, codes
// and scales (rows are contiguous, so they lie 4 rows' bytes ahead): a
// decoding step's matrices stream from memory, and the hardware
// prefetchers alone leave it waiting (x W^T of 4864 x 896 and 896 x 4864
// Q8_0 matrices, one row, out of cache: 11 -> 16 GB/s of CPU time).

// QSETUP loads the arguments: SI codes, DI lane scales, R8 corrections,
// R9-R12 the rows' codes, R13, R14, AX, BX their scales, CX the steps,
// DX out, R15 the size of 4 rows' scales (nch*32; their codes' is 8
// times that).
#define QSETUP \
	MOVQ q+0(FP), SI; \
	MOVQ d+8(FP), DI; \
	MOVQ c+16(FP), R8; \
	MOVQ wq+24(FP), DX; \
	MOVQ 0(DX), R9; \
	MOVQ 8(DX), R10; \
	MOVQ 16(DX), R11; \
	MOVQ 24(DX), R12; \
	MOVQ ws+32(FP), DX; \
	MOVQ 0(DX), R13; \
	MOVQ 8(DX), R14; \
	MOVQ 16(DX), AX; \
	MOVQ 24(DX), BX; \
	MOVQ nch+40(FP), CX; \
	MOVQ CX, R15; \
	SHLQ $5, R15; \
	MOVQ out+48(FP), DX; \
	VPXORD Z8, Z8, Z8; \
	VPXORD Z9, Z9, Z9; \
	VPXORD Z10, Z10, Z10; \
	VPXORD Z11, Z11, Z11

// QROW accumulates one row: codes in w (a ZMM), scales at s.
#define QROW(w, s, acc) \
	VMOVDQA32 Z2, Z4; \
	VPDPBUSD Z0, w, Z4; \
	VCVTDQ2PS Z4, Z4; \
	VBROADCASTSD (s), Z6; \
	VMULPS Z1, Z6, Z6; \
	VFMADD231PS Z6, Z4, acc

// QSTEP loads the step's activations.
#define QSTEP \
	VMOVDQU32 (SI), Z0; \
	VMOVUPS (DI), Z1; \
	VMOVDQU32 (R8), Z2

// QPREFETCH(s) prefetches the step's chunk of the next 4 rows: codes at
// R15*s past the rows' (s: 8, a Q8_0 code's bytes per scale's 4), scales at R15.
#define QPREFETCH(s) \
	PREFETCHT0 (R9)(R15*s); \
	PREFETCHT0 (R10)(R15*s); \
	PREFETCHT0 (R11)(R15*s); \
	PREFETCHT0 (R12)(R15*s); \
	PREFETCHT0 (R13)(R15*1); \
	PREFETCHT0 (R14)(R15*1); \
	PREFETCHT0 (AX)(R15*1); \
	PREFETCHT0 (BX)(R15*1)

// QNEXT advances the activations and the scales one step.
#define QNEXT \
	ADDQ $64, SI; \
	ADDQ $64, DI; \
	ADDQ $64, R8; \
	ADDQ $8, R13; \
	ADDQ $8, R14; \
	ADDQ $8, AX; \
	ADDQ $8, BX

// QSUM sums each accumulator across its lanes into off(DX): out[0..3].
#define QSUM(off) \
	VEXTRACTF64X4 $1, Z8, Y12; \
	VADDPS Y12, Y8, Y8; \
	VEXTRACTF64X4 $1, Z9, Y12; \
	VADDPS Y12, Y9, Y9; \
	VEXTRACTF64X4 $1, Z10, Y12; \
	VADDPS Y12, Y10, Y10; \
	VEXTRACTF64X4 $1, Z11, Y12; \
	VADDPS Y12, Y11, Y11; \
	VHADDPS Y9, Y8, Y12; \
	VHADDPS Y11, Y10, Y13; \
	VHADDPS Y13, Y12, Y14; \
	VEXTRACTF128 $1, Y14, X15; \
	VADDPS X15, X14, X14; \
	VMOVUPS X14, off(DX)

#define QEND \
	QSUM(0); \
	VZEROUPPER

// The two-row kernel (qdot8x2x4) runs two rows of activations,
// the second nch*64 bytes after the first in each of q, d and c (DX holds
// that stride in the loop), against the same four weight rows: the
// weights' codes are loaded and their scales broadcast once
// for both. The second row's accumulators are Z24-Z27.

// QSETUP2 is QSETUP, then DX = the rows' stride and Z24-Z27 zeroed.
#define QSETUP2 \
	QSETUP; \
	MOVQ nch+40(FP), DX; \
	SHLQ $6, DX; \
	VPXORD Z24, Z24, Z24; \
	VPXORD Z25, Z25, Z25; \
	VPXORD Z26, Z26, Z26; \
	VPXORD Z27, Z27, Z27

// QSTEP2 loads the step's activations of both rows (the second's in
// Z16-Z18).
#define QSTEP2 \
	QSTEP; \
	VMOVDQU32 (SI)(DX*1), Z16; \
	VMOVUPS (DI)(DX*1), Z17; \
	VMOVDQU32 (R8)(DX*1), Z18

// QROW2 accumulates one weight row (codes in Z5, scales at s) into both
// rows' accumulators.
#define QROW2(s, acc, acc2) \
	VBROADCASTSD (s), Z6; \
	VMOVDQA32 Z2, Z4; \
	VPDPBUSD Z0, Z5, Z4; \
	VCVTDQ2PS Z4, Z4; \
	VMULPS Z1, Z6, Z7; \
	VFMADD231PS Z7, Z4, acc; \
	VMOVDQA32 Z18, Z19; \
	VPDPBUSD Z16, Z5, Z19; \
	VCVTDQ2PS Z19, Z19; \
	VMULPS Z17, Z6, Z20; \
	VFMADD231PS Z20, Z19, acc2

// QEND2 writes both rows' sums: out[0..3], out[4..7].
#define QEND2 \
	MOVQ out+48(FP), DX; \
	QSUM(0); \
	VMOVAPS Z24, Z8; \
	VMOVAPS Z25, Z9; \
	VMOVAPS Z26, Z10; \
	VMOVAPS Z27, Z11; \
	QSUM(16); \
	VZEROUPPER

// func qdot8x4(q *int8, d *float32, c *int32, wq *[4]*byte, ws *[4]*float32, nch int, out *[4]float32)
TEXT ·qdot8x4(SB), NOSPLIT, $0-56
	QSETUP
loop8:
	QSTEP
	QPREFETCH(8)
	VMOVDQU32 (R9), Z5
	QROW(Z5, R13, Z8)
	VMOVDQU32 (R10), Z5
	QROW(Z5, R14, Z9)
	VMOVDQU32 (R11), Z5
	QROW(Z5, AX, Z10)
	VMOVDQU32 (R12), Z5
	QROW(Z5, BX, Z11)
	ADDQ $64, R9
	ADDQ $64, R10
	ADDQ $64, R11
	ADDQ $64, R12
	QNEXT
	DECQ CX
	JNZ loop8
	QEND
	RET

// func qdot8x2x4(q *int8, d *float32, c *int32, wq *[4]*byte, ws *[4]*float32, nch int, out *[8]float32)
TEXT ·qdot8x2x4(SB), NOSPLIT, $0-56
	QSETUP2
loop82:
	QSTEP2
	QPREFETCH(8)
	VMOVDQU32 (R9), Z5
	QROW2(R13, Z8, Z24)
	VMOVDQU32 (R10), Z5
	QROW2(R14, Z9, Z25)
	VMOVDQU32 (R11), Z5
	QROW2(AX, Z10, Z26)
	VMOVDQU32 (R12), Z5
	QROW2(BX, Z11, Z27)
	ADDQ $64, R9
	ADDQ $64, R10
	ADDQ $64, R11
	ADDQ $64, R12
	QNEXT
	DECQ CX
	JNZ loop82
	QEND2
	RET

// Rounding activations to int8 (see quantizeRows), a chunk (two blocks,
// 64 float32 values) a step.

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

// func quantChunks(x *float32, nch int, q *int8, d *float32, corr *int32, shift int32)
TEXT ·quantChunks(SB), NOSPLIT, $0-44
	MOVQ x+0(FP), SI
	MOVQ nch+8(FP), CX
	MOVQ q+16(FP), DI
	MOVQ d+24(FP), R8
	MOVQ corr+32(FP), R9
	MOVL shift+40(FP), AX
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
	MOVL $127, AX
	VCVTSI2SSL AX, X25, X25
	MOVL $1, AX
	VCVTSI2SSL AX, X24, X24
	VXORPS X23, X23, X23
chunkloop:
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	VMOVUPS 128(SI), Z2
	VMOVUPS 192(SI), Z3
	BLOCKMAX(Z0, Z1, Z4, Y4, X4, Z6, Y6, X6)
	BLOCKMAX(Z2, Z3, Z5, Y5, X5, Z6, Y6, X6)
	// d = amax / 127; id = 1/d, 0 where d is 0.
	VDIVSS X25, X4, X4
	VDIVSS X25, X5, X5
	VMOVSS X4, (R8)
	VMOVSS X5, 4(R8)
	VDIVSS X4, X24, X6
	VDIVSS X5, X24, X7
	VCMPSS $0, X23, X4, K1
	VMOVSS X23, X23, K1, X6
	VCMPSS $0, X23, X5, K1
	VMOVSS X23, X23, K1, X7
	VBROADCASTSS X6, Z6
	VBROADCASTSS X7, Z7
	BLOCKCODES(Z0, Z6, X8, Z12)
	BLOCKCODES(Z1, Z6, X10, Z12)
	BLOCKCODES(Z2, Z7, X9, Z12)
	BLOCKCODES(Z3, Z7, X11, Z12)
	// Interleave the blocks 4 codes by 4 (chunkPos).
	VPUNPCKLDQ X9, X8, X12
	VPUNPCKHDQ X9, X8, X13
	VPUNPCKLDQ X11, X10, X14
	VPUNPCKHDQ X11, X10, X15
	VMOVDQU X12, (DI)
	VMOVDQU X13, 16(DI)
	VMOVDQU X14, 32(DI)
	VMOVDQU X15, 48(DI)
	// The lanes' corrections: -shift times the sums of their 4 codes.
	VMOVDQU32 (DI), Z12
	VPXORD Z13, Z13, Z13
	VPDPBUSD Z12, Z26, Z13
	VPMULLD Z27, Z13, Z13
	VMOVDQU32 Z13, (R9)
	ADDQ $256, SI
	ADDQ $64, DI
	ADDQ $8, R8
	ADDQ $64, R9
	DECQ CX
	JNZ chunkloop
	VZEROUPPER
	RET
