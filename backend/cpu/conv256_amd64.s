//go:build !purego

#include "textflag.h"

// AVX2 kernels of the convolution path, for machines without AVX-512
// (haveConv256): Winograd's tile transforms and the stride phases'
// split (deinterleave256); their interleave is vec256_amd64.s's
// vinterleave2256.
//
// Winograd's F(2x2, 3x3) transforms on one tile, 8 channels a vector: winograd_amd64.s's AVX-512 kernels for machines
// without AVX-512 (haveConv256), the same layouts and the same sums in
// the same order as winograd.go's Go versions, so the same values. With
// 16 vector registers, a tile is done a row (or a column) at a time,
// loading each value where it is used. Negation is a flip of the sign
// bit (Y14), Go's -x. The last n%8 channels are done once more under a
// mask (Y15, VMASKMOVPS: lanes outside it read 0 and are not written);
// the other chunks by plain loads and stores. Every body below is a
// macro over LD(m, y) and ST(y, m), expanded once with each pair.

// wgmask256 holds 8 all-ones lanes then 8 zeros: the 8 lanes at byte
// 32 - 4r are a mask of the first r.
DATA wgmask256<>+0(SB)/8, $0xffffffffffffffff
DATA wgmask256<>+8(SB)/8, $0xffffffffffffffff
DATA wgmask256<>+16(SB)/8, $0xffffffffffffffff
DATA wgmask256<>+24(SB)/8, $0xffffffffffffffff
DATA wgmask256<>+32(SB)/8, $0
DATA wgmask256<>+40(SB)/8, $0
DATA wgmask256<>+48(SB)/8, $0
DATA wgmask256<>+56(SB)/8, $0
GLOBL wgmask256<>(SB), RODATA|NOPTR, $64

// Full chunks: plain loads and stores.
#define LDF(m, y) VMOVUPS m, y
#define STF(y, m) VMOVUPS y, m

// The tail: masked by Y15.
#define LDM(m, y) VMASKMOVPS m, Y15, y
#define STM(y, m) VMASKMOVPS y, Y15, m

// WG256SIGN sets Y14 to the sign bit in every lane.
#define WG256SIGN \
	MOVL $0x80000000, AX; \
	MOVQ AX, X14; \
	VPBROADCASTD X14, Y14

// WG256TAIL sets Y15 to the mask of the last CX (1 to 7) lanes.
#define WG256TAIL \
	LEAQ wgmask256<>(SB), AX; \
	MOVQ CX, DX; \
	SHLQ $2, DX; \
	NEGQ DX; \
	VMOVUPS 32(AX)(DX*1), Y15

// WGIN256ROW stores the 4 points of one row p of B^T d, already in Y8-Y11
// (p0..p3): p0 - p2, p1 + p2, p2 - p1, p1 - p3, at DX, DX+R9, ...; DX
// is left past the fourth.
#define WGIN256ROW(ST) \
	VSUBPS Y10, Y8, Y12; \
	ST(Y12, (DX)); \
	ADDQ R9, DX; \
	VADDPS Y10, Y9, Y12; \
	ST(Y12, (DX)); \
	ADDQ R9, DX; \
	VSUBPS Y9, Y10, Y12; \
	ST(Y12, (DX)); \
	ADDQ R9, DX; \
	VSUBPS Y11, Y9, Y12; \
	ST(Y12, (DX)); \
	ADDQ R9, DX

// WGIN256 is one chunk of wgin: rows r0..r3 of the tile at R11..R14, tap
// j at +j*R10 (R10 = n*4, BX = 3*R10); points at DI + e*R9.
#define WGIN256(LD, ST) \
	LD((R11), Y0); \
	LD((R11)(R10*1), Y1); \
	LD((R11)(R10*2), Y2); \
	LD((R11)(BX*1), Y3); \
	LD((R13), Y4); \
	LD((R13)(R10*1), Y5); \
	LD((R13)(R10*2), Y6); \
	LD((R13)(BX*1), Y7); \
	MOVQ DI, DX; \
	VSUBPS Y4, Y0, Y8; \
	VSUBPS Y5, Y1, Y9; \
	VSUBPS Y6, Y2, Y10; \
	VSUBPS Y7, Y3, Y11; \
	WGIN256ROW(ST); \
	LD((R12), Y0); \
	LD((R12)(R10*1), Y1); \
	LD((R12)(R10*2), Y2); \
	LD((R12)(BX*1), Y3); \
	VADDPS Y4, Y0, Y8; \
	VADDPS Y5, Y1, Y9; \
	VADDPS Y6, Y2, Y10; \
	VADDPS Y7, Y3, Y11; \
	WGIN256ROW(ST); \
	VSUBPS Y0, Y4, Y8; \
	VSUBPS Y1, Y5, Y9; \
	VSUBPS Y2, Y6, Y10; \
	VSUBPS Y3, Y7, Y11; \
	WGIN256ROW(ST); \
	LD((R14), Y4); \
	LD((R14)(R10*1), Y5); \
	LD((R14)(R10*2), Y6); \
	LD((R14)(BX*1), Y7); \
	VSUBPS Y4, Y0, Y8; \
	VSUBPS Y5, Y1, Y9; \
	VSUBPS Y6, Y2, Y10; \
	VSUBPS Y7, Y3, Y11; \
	WGIN256ROW(ST)

// func wgin256(src *float32, ld int, dst *float32, ds int, n int)
TEXT ·wgin256(SB), NOSPLIT, $0-40
	MOVQ src+0(FP), R11
	MOVQ ld+8(FP), R8
	SHLQ $2, R8
	MOVQ dst+16(FP), DI
	MOVQ ds+24(FP), R9
	SHLQ $2, R9
	MOVQ n+32(FP), CX
	MOVQ CX, R10
	SHLQ $2, R10
	LEAQ (R10)(R10*2), BX
	LEAQ (R11)(R8*1), R12
	LEAQ (R12)(R8*1), R13
	LEAQ (R13)(R8*1), R14

wgin256_loop:
	CMPQ CX, $8
	JLT wgin256_tail
	WGIN256(LDF, STF)
	ADDQ $32, R11
	ADDQ $32, R12
	ADDQ $32, R13
	ADDQ $32, R14
	ADDQ $32, DI
	SUBQ $8, CX
	JMP wgin256_loop

wgin256_tail:
	TESTQ CX, CX
	JLE wgin256_done
	WG256TAIL
	WGIN256(LDM, STM)

wgin256_done:
	VZEROUPPER
	RET

// WG256ADD adds y into the run at m (t a scratch).
#define WG256ADD(LD, ST, y, m, t) \
	LD(m, t); \
	VADDPS y, t, t; \
	ST(t, m)

// WG256COL adds B (q0..q3 in Y0..Y3) of one tile column into its four
// taps: row 0 += q0, row 1 += (q1 - q2) + q3, row 2 += (q1 + q2) - q0,
// row 3 -= q3; m0..m3 the column's tap in each row.
#define WG256COL(LD, ST, m0, m1, m2, m3) \
	WG256ADD(LD, ST, Y0, m0, Y4); \
	VSUBPS Y2, Y1, Y5; \
	VADDPS Y3, Y5, Y5; \
	WG256ADD(LD, ST, Y5, m1, Y4); \
	VADDPS Y2, Y1, Y5; \
	VSUBPS Y0, Y5, Y5; \
	WG256ADD(LD, ST, Y5, m2, Y4); \
	LD(m3, Y4); \
	VSUBPS Y3, Y4, Y4; \
	ST(Y4, m3)

// WG256Q computes one row's q of a column from that row's points p0..p3,
// whose base (point 4r) is at DX: column 1's (p1 - p2) + p3, column 2's
// (p1 + p2) - p0.
#define WG256Q1(LD, q) \
	LD((DX)(R9*1), q); \
	LD((DX)(R9*2), Y6); \
	VSUBPS Y6, q, q; \
	LD((DX)(R14*1), Y6); \
	VADDPS Y6, q, q

#define WG256Q2(LD, q) \
	LD((DX)(R9*1), q); \
	LD((DX)(R9*2), Y6); \
	VADDPS Y6, q, q; \
	LD((DX), Y6); \
	VSUBPS Y6, q, q

// WG256ROWS steps DX through the four rows' bases (point 0, 4, 8, 12),
// running Q(LD, q) for each row's register.
#define WG256ROWS(Q, LD) \
	MOVQ SI, DX; \
	Q(LD, Y0); \
	ADDQ R12, DX; \
	Q(LD, Y1); \
	ADDQ R12, DX; \
	Q(LD, Y2); \
	ADDQ R12, DX; \
	Q(LD, Y3)

#define WG256QP0(LD, q) LD((DX), q)

#define WG256QN3(LD, q) \
	LD((DX)(R14*1), q); \
	VXORPS Y14, q, q

// WGINGRAD256 is one chunk of wgingrad: the tile's taps at R11 (row i at
// +i*R8, tap j at +j*R10, BX = 3*R10); points at SI + e*R9 (R12 = 4*R9,
// R14 = 3*R9).
#define WGINGRAD256(LD, ST) \
	WG256ROWS(WG256QP0, LD); \
	MOVQ R11, DX; \
	WG256COL(LD, ST, (DX), (DX)(R8*1), (DX)(R8*2), (DX)(R13*1)); \
	WG256ROWS(WG256Q1, LD); \
	LEAQ (R11)(R10*1), DX; \
	WG256COL(LD, ST, (DX), (DX)(R8*1), (DX)(R8*2), (DX)(R13*1)); \
	WG256ROWS(WG256Q2, LD); \
	LEAQ (R11)(R10*2), DX; \
	WG256COL(LD, ST, (DX), (DX)(R8*1), (DX)(R8*2), (DX)(R13*1)); \
	WG256ROWS(WG256QN3, LD); \
	LEAQ (R11)(BX*1), DX; \
	WG256COL(LD, ST, (DX), (DX)(R8*1), (DX)(R8*2), (DX)(R13*1))

// func wgingrad256(dst *float32, ld int, src *float32, ss int, n int)
TEXT ·wgingrad256(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), R11
	MOVQ ld+8(FP), R8
	SHLQ $2, R8
	MOVQ src+16(FP), SI
	MOVQ ss+24(FP), R9
	SHLQ $2, R9
	MOVQ n+32(FP), CX
	MOVQ CX, R10
	SHLQ $2, R10
	LEAQ (R10)(R10*2), BX
	LEAQ (R8)(R8*2), R13
	LEAQ (R9)(R9*2), R14
	MOVQ R9, R12
	SHLQ $2, R12
	WG256SIGN

wgingrad256_loop:
	CMPQ CX, $8
	JLT wgingrad256_tail
	WGINGRAD256(LDF, STF)
	ADDQ $32, R11
	ADDQ $32, SI
	SUBQ $8, CX
	JMP wgingrad256_loop

wgingrad256_tail:
	TESTQ CX, CX
	JLE wgingrad256_done
	WG256TAIL
	WGINGRAD256(LDM, STM)

wgingrad256_done:
	VZEROUPPER
	RET

// WGOUT256SU computes column k's s = (m_k + m_4+k) + m_8+k into s and
// u = (m_4+k - m_8+k) - m_12+k into u, point k at DX (R12 = 4*R9).
#define WGOUT256SU(LD, s, u) \
	LD((DX), Y8); \
	LEAQ (DX)(R12*1), AX; \
	LD((AX), Y9); \
	LEAQ (AX)(R12*1), AX; \
	LD((AX), Y10); \
	LEAQ (AX)(R12*1), AX; \
	LD((AX), Y11); \
	VADDPS Y9, Y8, s; \
	VADDPS Y10, s, s; \
	VSUBPS Y10, Y9, u; \
	VSUBPS Y11, u, u; \
	ADDQ R9, DX

// WGOUT256 is one chunk of wgout: points at SI + e*R9, bias at R13, the
// outputs at R11, R11+R10, R14, R14+R10.
#define WGOUT256(LD, ST) \
	MOVQ SI, DX; \
	WGOUT256SU(LD, Y0, Y4); \
	WGOUT256SU(LD, Y1, Y5); \
	WGOUT256SU(LD, Y2, Y6); \
	WGOUT256SU(LD, Y3, Y7); \
	LD((R13), Y12); \
	VADDPS Y1, Y0, Y8; \
	VADDPS Y2, Y8, Y8; \
	VADDPS Y12, Y8, Y8; \
	ST(Y8, (R11)); \
	VSUBPS Y2, Y1, Y8; \
	VSUBPS Y3, Y8, Y8; \
	VADDPS Y12, Y8, Y8; \
	ST(Y8, (R11)(R10*1)); \
	VADDPS Y5, Y4, Y8; \
	VADDPS Y6, Y8, Y8; \
	VADDPS Y12, Y8, Y8; \
	ST(Y8, (R14)); \
	VSUBPS Y6, Y5, Y8; \
	VSUBPS Y7, Y8, Y8; \
	VADDPS Y12, Y8, Y8; \
	ST(Y8, (R14)(R10*1))

// func wgout256(src *float32, ss int, dst *float32, ld int, bias *float32, n int)
TEXT ·wgout256(SB), NOSPLIT, $0-48
	MOVQ src+0(FP), SI
	MOVQ ss+8(FP), R9
	SHLQ $2, R9
	MOVQ dst+16(FP), R11
	MOVQ ld+24(FP), R8
	SHLQ $2, R8
	MOVQ bias+32(FP), R13
	MOVQ n+40(FP), CX
	MOVQ CX, R10
	SHLQ $2, R10
	LEAQ (R11)(R8*1), R14
	MOVQ R9, R12
	SHLQ $2, R12

wgout256_loop:
	CMPQ CX, $8
	JLT wgout256_tail
	WGOUT256(LDF, STF)
	ADDQ $32, SI
	ADDQ $32, R11
	ADDQ $32, R14
	ADDQ $32, R13
	SUBQ $8, CX
	JMP wgout256_loop

wgout256_tail:
	TESTQ CX, CX
	JLE wgout256_done
	WG256TAIL
	WGOUT256(LDM, STM)

wgout256_done:
	VZEROUPPER
	RET

// WGOUTGRAD256 is one chunk of wgoutgrad: dy's tile [a b; c d] at R11,
// R11+R10, R14, R14+R10 (a Y0, b Y1, c Y2, d Y3); the 16 points a, a+b,
// a-b, -b, e, e+h, e-h, -h, p, p+q, p-q, -q, -c, -c-d, d-c, d (e = a+c,
// h = b+d, p = a-c, q = b-d) at DI + e*R9.
#define WGOUTGRAD256(LD, ST) \
	LD((R11), Y0); \
	LD((R11)(R10*1), Y1); \
	LD((R14), Y2); \
	LD((R14)(R10*1), Y3); \
	VADDPS Y2, Y0, Y4; \
	VADDPS Y3, Y1, Y5; \
	VSUBPS Y2, Y0, Y6; \
	VSUBPS Y3, Y1, Y7; \
	MOVQ DI, DX; \
	ST(Y0, (DX)); \
	ADDQ R9, DX; \
	VADDPS Y1, Y0, Y8; \
	ST(Y8, (DX)); \
	ADDQ R9, DX; \
	VSUBPS Y1, Y0, Y8; \
	ST(Y8, (DX)); \
	ADDQ R9, DX; \
	VXORPS Y14, Y1, Y8; \
	ST(Y8, (DX)); \
	ADDQ R9, DX; \
	ST(Y4, (DX)); \
	ADDQ R9, DX; \
	VADDPS Y5, Y4, Y8; \
	ST(Y8, (DX)); \
	ADDQ R9, DX; \
	VSUBPS Y5, Y4, Y8; \
	ST(Y8, (DX)); \
	ADDQ R9, DX; \
	VXORPS Y14, Y5, Y8; \
	ST(Y8, (DX)); \
	ADDQ R9, DX; \
	ST(Y6, (DX)); \
	ADDQ R9, DX; \
	VADDPS Y7, Y6, Y8; \
	ST(Y8, (DX)); \
	ADDQ R9, DX; \
	VSUBPS Y7, Y6, Y8; \
	ST(Y8, (DX)); \
	ADDQ R9, DX; \
	VXORPS Y14, Y7, Y8; \
	ST(Y8, (DX)); \
	ADDQ R9, DX; \
	VXORPS Y14, Y2, Y9; \
	ST(Y9, (DX)); \
	ADDQ R9, DX; \
	VSUBPS Y3, Y9, Y8; \
	ST(Y8, (DX)); \
	ADDQ R9, DX; \
	VSUBPS Y2, Y3, Y8; \
	ST(Y8, (DX)); \
	ADDQ R9, DX; \
	ST(Y3, (DX))

// func wgoutgrad256(src *float32, ld int, dst *float32, ds int, n int)
TEXT ·wgoutgrad256(SB), NOSPLIT, $0-40
	MOVQ src+0(FP), R11
	MOVQ ld+8(FP), R8
	SHLQ $2, R8
	MOVQ dst+16(FP), DI
	MOVQ ds+24(FP), R9
	SHLQ $2, R9
	MOVQ n+32(FP), CX
	MOVQ CX, R10
	SHLQ $2, R10
	LEAQ (R11)(R8*1), R14
	WG256SIGN

wgoutgrad256_loop:
	CMPQ CX, $8
	JLT wgoutgrad256_tail
	WGOUTGRAD256(LDF, STF)
	ADDQ $32, R11
	ADDQ $32, R14
	ADDQ $32, DI
	SUBQ $8, CX
	JMP wgoutgrad256_loop

wgoutgrad256_tail:
	TESTQ CX, CX
	JLE wgoutgrad256_done
	WG256TAIL
	WGOUTGRAD256(LDM, STM)

wgoutgrad256_done:
	VZEROUPPER
	RET

// func deinterleave256(a, b, src *float32, n int)
// a[i] = src[2i], b[i] = src[2i+1] for i < n, a multiple of 8: a row's
// two stride-2 phases, 8 values of each a step; the caller does the last
// n%8.
TEXT ·deinterleave256(SB), NOSPLIT, $0-32
	MOVQ a+0(FP), DI
	MOVQ b+8(FP), DX
	MOVQ src+16(FP), SI
	MOVQ n+24(FP), CX

dilv256_loop:
	CMPQ CX, $8
	JLT dilv256_done
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	// within each 128-bit half: s0 s2 s8 s10 | s4 s6 s12 s14 and the odd ones
	VSHUFPS $0x88, Y1, Y0, Y2
	VSHUFPS $0xdd, Y1, Y0, Y3
	// 64-bit quarters 0, 2, 1, 3: s0 s2 s4 s6 s8 s10 s12 s14
	VPERMPD $0xd8, Y2, Y2
	VPERMPD $0xd8, Y3, Y3
	VMOVUPS Y2, (DI)
	VMOVUPS Y3, (DX)
	ADDQ $64, SI
	ADDQ $32, DI
	ADDQ $32, DX
	SUBQ $8, CX
	JMP dilv256_loop

dilv256_done:
	VZEROUPPER
	RET

// Winograd's F(2x2, 2x2) transforms on one tile of one stride phase, 8
// channels a vector (winograds2.go; haveAVX2FMA, AVX-512 machines too):
// the same sums in the same order as winograds2.go's Go versions, so the
// same values. The last n%8 channels under Y15's mask, as above.

// WG2ROW stores the 3 points of one row of B^T d, x0..x2: x0 - x1, x1,
// x2 - x1, at DX, DX+R9, DX+2*R9; DX is left past the third.
#define WG2ROW(ST, x0, x1, x2) \
	VSUBPS x1, x0, Y6; \
	ST(Y6, (DX)); \
	ADDQ R9, DX; \
	ST(x1, (DX)); \
	ADDQ R9, DX; \
	VSUBPS x1, x2, Y6; \
	ST(Y6, (DX)); \
	ADDQ R9, DX

// WG2IN256 is one chunk of wg2in256: tap (a, b) at R11, R12, R13 (rows
// 0..2) + b*R10; points at DI + e*R9. Rows of B^T d: d0 - d1, d1, d2 - d1.
#define WG2IN256(LD, ST) \
	LD((R12), Y3); \
	LD((R12)(R10*1), Y4); \
	LD((R12)(R10*2), Y5); \
	LD((R11), Y0); \
	LD((R11)(R10*1), Y1); \
	LD((R11)(R10*2), Y2); \
	VSUBPS Y3, Y0, Y0; \
	VSUBPS Y4, Y1, Y1; \
	VSUBPS Y5, Y2, Y2; \
	MOVQ DI, DX; \
	WG2ROW(ST, Y0, Y1, Y2); \
	WG2ROW(ST, Y3, Y4, Y5); \
	LD((R13), Y0); \
	LD((R13)(R10*1), Y1); \
	LD((R13)(R10*2), Y2); \
	VSUBPS Y3, Y0, Y0; \
	VSUBPS Y4, Y1, Y1; \
	VSUBPS Y5, Y2, Y2; \
	WG2ROW(ST, Y0, Y1, Y2)

// func wg2in256(src *float32, ld, cs int, dst *float32, ds int, n int)
TEXT ·wg2in256(SB), NOSPLIT, $0-48
	MOVQ src+0(FP), R11
	MOVQ ld+8(FP), R8
	SHLQ $2, R8
	MOVQ cs+16(FP), R10
	SHLQ $2, R10
	MOVQ dst+24(FP), DI
	MOVQ ds+32(FP), R9
	SHLQ $2, R9
	MOVQ n+40(FP), CX
	LEAQ (R11)(R8*1), R12
	LEAQ (R12)(R8*1), R13

wg2in256_loop:
	CMPQ CX, $8
	JLT wg2in256_tail
	WG2IN256(LDF, STF)
	ADDQ $32, R11
	ADDQ $32, R12
	ADDQ $32, R13
	ADDQ $32, DI
	SUBQ $8, CX
	JMP wg2in256_loop

wg2in256_tail:
	TESTQ CX, CX
	JLE wg2in256_done
	WG256TAIL
	WG2IN256(LDM, STM)

wg2in256_done:
	VZEROUPPER
	RET

// WG2Q sets the middle value of one row's q (the columns' adjoint):
// q1 = (p1 - p0) - p2 into p1.
#define WG2Q(p0, p1, p2) \
	VSUBPS p0, p1, p1; \
	VSUBPS p2, p1, p1

// WG2INGRADCOL adds the rows' adjoint of one tap column b, q0 q1 q2 its
// rows' values, into the taps at m0, m1, m2: m0 += q0, m1 += (q1 - q0)
// - q2, m2 += q2.
#define WG2INGRADCOL(LD, ST, q0, q1, q2, m0, m1, m2) \
	WG256ADD(LD, ST, q0, m0, Y9); \
	VSUBPS q0, q1, Y10; \
	VSUBPS q2, Y10, Y10; \
	WG256ADD(LD, ST, Y10, m1, Y9); \
	WG256ADD(LD, ST, q2, m2, Y9)

// WG2INGRAD256 is one chunk of wg2ingrad256: points at SI + e*R9 (R14 =
// 3*R9), taps as WG2IN256's.
#define WG2INGRAD256(LD, ST) \
	LEAQ (SI)(R9*4), DX; \
	LD((SI), Y0); \
	LD((SI)(R9*1), Y1); \
	LD((SI)(R9*2), Y2); \
	LD((SI)(R14*1), Y3); \
	LD((DX), Y4); \
	LD((DX)(R9*1), Y5); \
	LD((DX)(R9*2), Y6); \
	LD((DX)(R14*1), Y7); \
	LD((DX)(R9*4), Y8); \
	WG2Q(Y0, Y1, Y2); \
	WG2Q(Y3, Y4, Y5); \
	WG2Q(Y6, Y7, Y8); \
	WG2INGRADCOL(LD, ST, Y0, Y3, Y6, (R11), (R12), (R13)); \
	WG2INGRADCOL(LD, ST, Y1, Y4, Y7, (R11)(R10*1), (R12)(R10*1), (R13)(R10*1)); \
	WG2INGRADCOL(LD, ST, Y2, Y5, Y8, (R11)(R10*2), (R12)(R10*2), (R13)(R10*2))

// func wg2ingrad256(dst *float32, ld, cs int, src *float32, ss int, n int)
TEXT ·wg2ingrad256(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), R11
	MOVQ ld+8(FP), R8
	SHLQ $2, R8
	MOVQ cs+16(FP), R10
	SHLQ $2, R10
	MOVQ src+24(FP), SI
	MOVQ ss+32(FP), R9
	SHLQ $2, R9
	MOVQ n+40(FP), CX
	LEAQ (R11)(R8*1), R12
	LEAQ (R12)(R8*1), R13
	LEAQ (R9)(R9*2), R14

wg2ingrad256_loop:
	CMPQ CX, $8
	JLT wg2ingrad256_tail
	WG2INGRAD256(LDF, STF)
	ADDQ $32, R11
	ADDQ $32, R12
	ADDQ $32, R13
	ADDQ $32, SI
	SUBQ $8, CX
	JMP wg2ingrad256_loop

wg2ingrad256_tail:
	TESTQ CX, CX
	JLE wg2ingrad256_done
	WG256TAIL
	WG2INGRAD256(LDM, STM)

wg2ingrad256_done:
	VZEROUPPER
	RET

// WG2OUT256 is one chunk of wg2out256: points at SI + e*R9 (R14 = 3*R9),
// bias at R13, the outputs at R11, R11+R10, R12, R12+R10. Rows of A^T m:
// s = m0 + m1 (point rows 0 and 1), u = m1 + m2; then the columns the
// same, plus the bias.
#define WG2OUT256(LD, ST) \
	LEAQ (SI)(R9*4), DX; \
	LD((SI), Y0); \
	LD((SI)(R9*1), Y1); \
	LD((SI)(R9*2), Y2); \
	LD((SI)(R14*1), Y3); \
	LD((DX), Y4); \
	LD((DX)(R9*1), Y5); \
	LD((DX)(R9*2), Y6); \
	LD((DX)(R14*1), Y7); \
	LD((DX)(R9*4), Y8); \
	VADDPS Y3, Y0, Y9; \
	VADDPS Y4, Y1, Y10; \
	VADDPS Y5, Y2, Y11; \
	VADDPS Y6, Y3, Y0; \
	VADDPS Y7, Y4, Y1; \
	VADDPS Y8, Y5, Y2; \
	LD((R13), Y12); \
	VADDPS Y10, Y9, Y13; \
	VADDPS Y12, Y13, Y13; \
	ST(Y13, (R11)); \
	VADDPS Y11, Y10, Y13; \
	VADDPS Y12, Y13, Y13; \
	ST(Y13, (R11)(R10*1)); \
	VADDPS Y1, Y0, Y13; \
	VADDPS Y12, Y13, Y13; \
	ST(Y13, (R12)); \
	VADDPS Y2, Y1, Y13; \
	VADDPS Y12, Y13, Y13; \
	ST(Y13, (R12)(R10*1))

// func wg2out256(src *float32, ss int, dst *float32, ld int, bias *float32, n int)
TEXT ·wg2out256(SB), NOSPLIT, $0-48
	MOVQ src+0(FP), SI
	MOVQ ss+8(FP), R9
	SHLQ $2, R9
	MOVQ dst+16(FP), R11
	MOVQ ld+24(FP), R8
	SHLQ $2, R8
	MOVQ bias+32(FP), R13
	MOVQ n+40(FP), CX
	MOVQ CX, R10
	SHLQ $2, R10
	LEAQ (R11)(R8*1), R12
	LEAQ (R9)(R9*2), R14

wg2out256_loop:
	CMPQ CX, $8
	JLT wg2out256_tail
	WG2OUT256(LDF, STF)
	ADDQ $32, SI
	ADDQ $32, R11
	ADDQ $32, R12
	ADDQ $32, R13
	SUBQ $8, CX
	JMP wg2out256_loop

wg2out256_tail:
	TESTQ CX, CX
	JLE wg2out256_done
	WG256TAIL
	WG2OUT256(LDM, STM)

wg2out256_done:
	VZEROUPPER
	RET

// WG2OUTGRAD256 is one chunk of wg2outgrad256: dy's tile [a b; c d] at
// R11, R11+R10, R12, R12+R10; the 9 points a, a+b, b, a+c, (a+b)+(c+d),
// b+d, c, c+d, d at DI + e*R9.
#define WG2OUTGRAD256(LD, ST) \
	LD((R11), Y0); \
	LD((R11)(R10*1), Y1); \
	LD((R12), Y2); \
	LD((R12)(R10*1), Y3); \
	VADDPS Y1, Y0, Y4; \
	VADDPS Y3, Y2, Y5; \
	MOVQ DI, DX; \
	ST(Y0, (DX)); \
	ADDQ R9, DX; \
	ST(Y4, (DX)); \
	ADDQ R9, DX; \
	ST(Y1, (DX)); \
	ADDQ R9, DX; \
	VADDPS Y2, Y0, Y6; \
	ST(Y6, (DX)); \
	ADDQ R9, DX; \
	VADDPS Y5, Y4, Y6; \
	ST(Y6, (DX)); \
	ADDQ R9, DX; \
	VADDPS Y3, Y1, Y6; \
	ST(Y6, (DX)); \
	ADDQ R9, DX; \
	ST(Y2, (DX)); \
	ADDQ R9, DX; \
	ST(Y5, (DX)); \
	ADDQ R9, DX; \
	ST(Y3, (DX))

// func wg2outgrad256(src *float32, ld int, dst *float32, ds int, n int)
TEXT ·wg2outgrad256(SB), NOSPLIT, $0-40
	MOVQ src+0(FP), R11
	MOVQ ld+8(FP), R8
	SHLQ $2, R8
	MOVQ dst+16(FP), DI
	MOVQ ds+24(FP), R9
	SHLQ $2, R9
	MOVQ n+32(FP), CX
	MOVQ CX, R10
	SHLQ $2, R10
	LEAQ (R11)(R8*1), R12

wg2outgrad256_loop:
	CMPQ CX, $8
	JLT wg2outgrad256_tail
	WG2OUTGRAD256(LDF, STF)
	ADDQ $32, R11
	ADDQ $32, R12
	ADDQ $32, DI
	SUBQ $8, CX
	JMP wg2outgrad256_loop

wg2outgrad256_tail:
	TESTQ CX, CX
	JLE wg2outgrad256_done
	WG256TAIL
	WG2OUTGRAD256(LDM, STM)

wg2outgrad256_done:
	VZEROUPPER
	RET

// Winograd's F(4x4, 2x2) transforms on one 5x5 tile of one stride
// phase (or one 4x4 output tile), 8 channels a vector (winograds2.go;
// haveAVX2FMA, AVX-512 machines too): the same sums in the same order as
// winograds2.go's wg4inGo, wg4ingradGo, wg4outGo and wg4outgradGo (the
// 1-D transforms wg4b, wg4bT, wg4a and wg4aT below as WG4B and the
// like), so the same values; doubling is x+x, negation a flip of the sign
// bit (Y14). A tile's first pass (B^T's or A^T's columns) goes to 25
// vectors of the stack frame (at BX), its second pass reads them back. Generated
// (the pattern of conv256_amd64.s's F(2x2, 2x2) kernels, unrolled).

#define WG4IN256(LD, ST) \
	MOVQ R11, DX; \
	LD((DX), Y0); \
	LD((DX)(R8*1), Y1); \
	LD((DX)(R8*2), Y2); \
	LD((DX)(R13*1), Y3); \
	LD((DX)(R8*4), Y4); \
	VSUBPS Y3, Y1, Y5; \
	VSUBPS Y2, Y0, Y6; \
	VADDPS Y6, Y6, Y6; \
	VSUBPS Y5, Y6, Y6; \
	STF(Y6, 0(BX)); \
	VADDPS Y2, Y1, Y6; \
	VADDPS Y6, Y5, Y6; \
	STF(Y6, 160(BX)); \
	VSUBPS Y1, Y2, Y6; \
	VADDPS Y6, Y6, Y6; \
	VSUBPS Y3, Y2, Y7; \
	VADDPS Y7, Y6, Y6; \
	STF(Y6, 320(BX)); \
	STF(Y5, 480(BX)); \
	VADDPS Y5, Y5, Y6; \
	VSUBPS Y2, Y4, Y7; \
	VADDPS Y7, Y6, Y6; \
	STF(Y6, 640(BX)); \
	ADDQ R10, DX; \
	LD((DX), Y0); \
	LD((DX)(R8*1), Y1); \
	LD((DX)(R8*2), Y2); \
	LD((DX)(R13*1), Y3); \
	LD((DX)(R8*4), Y4); \
	VSUBPS Y3, Y1, Y5; \
	VSUBPS Y2, Y0, Y6; \
	VADDPS Y6, Y6, Y6; \
	VSUBPS Y5, Y6, Y6; \
	STF(Y6, 32(BX)); \
	VADDPS Y2, Y1, Y6; \
	VADDPS Y6, Y5, Y6; \
	STF(Y6, 192(BX)); \
	VSUBPS Y1, Y2, Y6; \
	VADDPS Y6, Y6, Y6; \
	VSUBPS Y3, Y2, Y7; \
	VADDPS Y7, Y6, Y6; \
	STF(Y6, 352(BX)); \
	STF(Y5, 512(BX)); \
	VADDPS Y5, Y5, Y6; \
	VSUBPS Y2, Y4, Y7; \
	VADDPS Y7, Y6, Y6; \
	STF(Y6, 672(BX)); \
	ADDQ R10, DX; \
	LD((DX), Y0); \
	LD((DX)(R8*1), Y1); \
	LD((DX)(R8*2), Y2); \
	LD((DX)(R13*1), Y3); \
	LD((DX)(R8*4), Y4); \
	VSUBPS Y3, Y1, Y5; \
	VSUBPS Y2, Y0, Y6; \
	VADDPS Y6, Y6, Y6; \
	VSUBPS Y5, Y6, Y6; \
	STF(Y6, 64(BX)); \
	VADDPS Y2, Y1, Y6; \
	VADDPS Y6, Y5, Y6; \
	STF(Y6, 224(BX)); \
	VSUBPS Y1, Y2, Y6; \
	VADDPS Y6, Y6, Y6; \
	VSUBPS Y3, Y2, Y7; \
	VADDPS Y7, Y6, Y6; \
	STF(Y6, 384(BX)); \
	STF(Y5, 544(BX)); \
	VADDPS Y5, Y5, Y6; \
	VSUBPS Y2, Y4, Y7; \
	VADDPS Y7, Y6, Y6; \
	STF(Y6, 704(BX)); \
	ADDQ R10, DX; \
	LD((DX), Y0); \
	LD((DX)(R8*1), Y1); \
	LD((DX)(R8*2), Y2); \
	LD((DX)(R13*1), Y3); \
	LD((DX)(R8*4), Y4); \
	VSUBPS Y3, Y1, Y5; \
	VSUBPS Y2, Y0, Y6; \
	VADDPS Y6, Y6, Y6; \
	VSUBPS Y5, Y6, Y6; \
	STF(Y6, 96(BX)); \
	VADDPS Y2, Y1, Y6; \
	VADDPS Y6, Y5, Y6; \
	STF(Y6, 256(BX)); \
	VSUBPS Y1, Y2, Y6; \
	VADDPS Y6, Y6, Y6; \
	VSUBPS Y3, Y2, Y7; \
	VADDPS Y7, Y6, Y6; \
	STF(Y6, 416(BX)); \
	STF(Y5, 576(BX)); \
	VADDPS Y5, Y5, Y6; \
	VSUBPS Y2, Y4, Y7; \
	VADDPS Y7, Y6, Y6; \
	STF(Y6, 736(BX)); \
	ADDQ R10, DX; \
	LD((DX), Y0); \
	LD((DX)(R8*1), Y1); \
	LD((DX)(R8*2), Y2); \
	LD((DX)(R13*1), Y3); \
	LD((DX)(R8*4), Y4); \
	VSUBPS Y3, Y1, Y5; \
	VSUBPS Y2, Y0, Y6; \
	VADDPS Y6, Y6, Y6; \
	VSUBPS Y5, Y6, Y6; \
	STF(Y6, 128(BX)); \
	VADDPS Y2, Y1, Y6; \
	VADDPS Y6, Y5, Y6; \
	STF(Y6, 288(BX)); \
	VSUBPS Y1, Y2, Y6; \
	VADDPS Y6, Y6, Y6; \
	VSUBPS Y3, Y2, Y7; \
	VADDPS Y7, Y6, Y6; \
	STF(Y6, 448(BX)); \
	STF(Y5, 608(BX)); \
	VADDPS Y5, Y5, Y6; \
	VSUBPS Y2, Y4, Y7; \
	VADDPS Y7, Y6, Y6; \
	STF(Y6, 768(BX)); \
	MOVQ DI, DX; \
	LDF(0(BX), Y0); \
	LDF(32(BX), Y1); \
	LDF(64(BX), Y2); \
	LDF(96(BX), Y3); \
	LDF(128(BX), Y4); \
	VSUBPS Y3, Y1, Y5; \
	VSUBPS Y2, Y0, Y6; \
	VADDPS Y6, Y6, Y6; \
	VSUBPS Y5, Y6, Y6; \
	ST(Y6, (DX)); \
	VADDPS Y2, Y1, Y6; \
	VADDPS Y6, Y5, Y6; \
	ST(Y6, (DX)(R9*1)); \
	VSUBPS Y1, Y2, Y6; \
	VADDPS Y6, Y6, Y6; \
	VSUBPS Y3, Y2, Y7; \
	VADDPS Y7, Y6, Y6; \
	ST(Y6, (DX)(R9*2)); \
	ST(Y5, (DX)(R14*1)); \
	VADDPS Y5, Y5, Y6; \
	VSUBPS Y2, Y4, Y7; \
	VADDPS Y7, Y6, Y6; \
	ST(Y6, (DX)(R9*4)); \
	ADDQ R12, DX; \
	LDF(160(BX), Y0); \
	LDF(192(BX), Y1); \
	LDF(224(BX), Y2); \
	LDF(256(BX), Y3); \
	LDF(288(BX), Y4); \
	VSUBPS Y3, Y1, Y5; \
	VSUBPS Y2, Y0, Y6; \
	VADDPS Y6, Y6, Y6; \
	VSUBPS Y5, Y6, Y6; \
	ST(Y6, (DX)); \
	VADDPS Y2, Y1, Y6; \
	VADDPS Y6, Y5, Y6; \
	ST(Y6, (DX)(R9*1)); \
	VSUBPS Y1, Y2, Y6; \
	VADDPS Y6, Y6, Y6; \
	VSUBPS Y3, Y2, Y7; \
	VADDPS Y7, Y6, Y6; \
	ST(Y6, (DX)(R9*2)); \
	ST(Y5, (DX)(R14*1)); \
	VADDPS Y5, Y5, Y6; \
	VSUBPS Y2, Y4, Y7; \
	VADDPS Y7, Y6, Y6; \
	ST(Y6, (DX)(R9*4)); \
	ADDQ R12, DX; \
	LDF(320(BX), Y0); \
	LDF(352(BX), Y1); \
	LDF(384(BX), Y2); \
	LDF(416(BX), Y3); \
	LDF(448(BX), Y4); \
	VSUBPS Y3, Y1, Y5; \
	VSUBPS Y2, Y0, Y6; \
	VADDPS Y6, Y6, Y6; \
	VSUBPS Y5, Y6, Y6; \
	ST(Y6, (DX)); \
	VADDPS Y2, Y1, Y6; \
	VADDPS Y6, Y5, Y6; \
	ST(Y6, (DX)(R9*1)); \
	VSUBPS Y1, Y2, Y6; \
	VADDPS Y6, Y6, Y6; \
	VSUBPS Y3, Y2, Y7; \
	VADDPS Y7, Y6, Y6; \
	ST(Y6, (DX)(R9*2)); \
	ST(Y5, (DX)(R14*1)); \
	VADDPS Y5, Y5, Y6; \
	VSUBPS Y2, Y4, Y7; \
	VADDPS Y7, Y6, Y6; \
	ST(Y6, (DX)(R9*4)); \
	ADDQ R12, DX; \
	LDF(480(BX), Y0); \
	LDF(512(BX), Y1); \
	LDF(544(BX), Y2); \
	LDF(576(BX), Y3); \
	LDF(608(BX), Y4); \
	VSUBPS Y3, Y1, Y5; \
	VSUBPS Y2, Y0, Y6; \
	VADDPS Y6, Y6, Y6; \
	VSUBPS Y5, Y6, Y6; \
	ST(Y6, (DX)); \
	VADDPS Y2, Y1, Y6; \
	VADDPS Y6, Y5, Y6; \
	ST(Y6, (DX)(R9*1)); \
	VSUBPS Y1, Y2, Y6; \
	VADDPS Y6, Y6, Y6; \
	VSUBPS Y3, Y2, Y7; \
	VADDPS Y7, Y6, Y6; \
	ST(Y6, (DX)(R9*2)); \
	ST(Y5, (DX)(R14*1)); \
	VADDPS Y5, Y5, Y6; \
	VSUBPS Y2, Y4, Y7; \
	VADDPS Y7, Y6, Y6; \
	ST(Y6, (DX)(R9*4)); \
	ADDQ R12, DX; \
	LDF(640(BX), Y0); \
	LDF(672(BX), Y1); \
	LDF(704(BX), Y2); \
	LDF(736(BX), Y3); \
	LDF(768(BX), Y4); \
	VSUBPS Y3, Y1, Y5; \
	VSUBPS Y2, Y0, Y6; \
	VADDPS Y6, Y6, Y6; \
	VSUBPS Y5, Y6, Y6; \
	ST(Y6, (DX)); \
	VADDPS Y2, Y1, Y6; \
	VADDPS Y6, Y5, Y6; \
	ST(Y6, (DX)(R9*1)); \
	VSUBPS Y1, Y2, Y6; \
	VADDPS Y6, Y6, Y6; \
	VSUBPS Y3, Y2, Y7; \
	VADDPS Y7, Y6, Y6; \
	ST(Y6, (DX)(R9*2)); \
	ST(Y5, (DX)(R14*1)); \
	VADDPS Y5, Y5, Y6; \
	VSUBPS Y2, Y4, Y7; \
	VADDPS Y7, Y6, Y6; \
	ST(Y6, (DX)(R9*4))

// func wg4in256(src *float32, ld, cs int, dst *float32, ds int, n int)
TEXT ·wg4in256(SB), $800-48
	LEAQ 0(SP), BX
	MOVQ src+0(FP), R11
	MOVQ ld+8(FP), R8
	SHLQ $2, R8
	MOVQ cs+16(FP), R10
	SHLQ $2, R10
	MOVQ dst+24(FP), DI
	MOVQ ds+32(FP), R9
	SHLQ $2, R9
	MOVQ n+40(FP), CX
	LEAQ (R8)(R8*2), R13
	LEAQ (R9)(R9*2), R14
	LEAQ (R9)(R9*4), R12

wg4in256_loop:
	CMPQ CX, $8
	JLT wg4in256_tail
	WG4IN256(LDF, STF)
	ADDQ $32, R11
	ADDQ $32, DI
	SUBQ $8, CX
	JMP wg4in256_loop

wg4in256_tail:
	TESTQ CX, CX
	JLE wg4in256_done
	WG256TAIL
	WG4IN256(LDM, STM)

wg4in256_done:
	VZEROUPPER
	RET

#define WG4INGRAD256(LD, ST) \
	MOVQ SI, DX; \
	LD((DX), Y0); \
	LD((DX)(R9*1), Y1); \
	LD((DX)(R9*2), Y2); \
	LD((DX)(R14*1), Y3); \
	LD((DX)(R9*4), Y4); \
	VADDPS Y0, Y0, Y5; \
	VADDPS Y2, Y2, Y6; \
	VSUBPS Y0, Y1, Y7; \
	VADDPS Y4, Y4, Y8; \
	VADDPS Y8, Y3, Y8; \
	VADDPS Y8, Y7, Y7; \
	STF(Y5, 0(BX)); \
	VSUBPS Y6, Y1, Y8; \
	VADDPS Y8, Y7, Y8; \
	STF(Y8, 32(BX)); \
	VSUBPS Y5, Y1, Y8; \
	VADDPS Y2, Y6, Y9; \
	VADDPS Y9, Y8, Y8; \
	VSUBPS Y4, Y8, Y8; \
	STF(Y8, 64(BX)); \
	VADDPS Y2, Y7, Y8; \
	VXORPS Y14, Y8, Y8; \
	STF(Y8, 96(BX)); \
	STF(Y4, 128(BX)); \
	ADDQ R12, DX; \
	LD((DX), Y0); \
	LD((DX)(R9*1), Y1); \
	LD((DX)(R9*2), Y2); \
	LD((DX)(R14*1), Y3); \
	LD((DX)(R9*4), Y4); \
	VADDPS Y0, Y0, Y5; \
	VADDPS Y2, Y2, Y6; \
	VSUBPS Y0, Y1, Y7; \
	VADDPS Y4, Y4, Y8; \
	VADDPS Y8, Y3, Y8; \
	VADDPS Y8, Y7, Y7; \
	STF(Y5, 160(BX)); \
	VSUBPS Y6, Y1, Y8; \
	VADDPS Y8, Y7, Y8; \
	STF(Y8, 192(BX)); \
	VSUBPS Y5, Y1, Y8; \
	VADDPS Y2, Y6, Y9; \
	VADDPS Y9, Y8, Y8; \
	VSUBPS Y4, Y8, Y8; \
	STF(Y8, 224(BX)); \
	VADDPS Y2, Y7, Y8; \
	VXORPS Y14, Y8, Y8; \
	STF(Y8, 256(BX)); \
	STF(Y4, 288(BX)); \
	ADDQ R12, DX; \
	LD((DX), Y0); \
	LD((DX)(R9*1), Y1); \
	LD((DX)(R9*2), Y2); \
	LD((DX)(R14*1), Y3); \
	LD((DX)(R9*4), Y4); \
	VADDPS Y0, Y0, Y5; \
	VADDPS Y2, Y2, Y6; \
	VSUBPS Y0, Y1, Y7; \
	VADDPS Y4, Y4, Y8; \
	VADDPS Y8, Y3, Y8; \
	VADDPS Y8, Y7, Y7; \
	STF(Y5, 320(BX)); \
	VSUBPS Y6, Y1, Y8; \
	VADDPS Y8, Y7, Y8; \
	STF(Y8, 352(BX)); \
	VSUBPS Y5, Y1, Y8; \
	VADDPS Y2, Y6, Y9; \
	VADDPS Y9, Y8, Y8; \
	VSUBPS Y4, Y8, Y8; \
	STF(Y8, 384(BX)); \
	VADDPS Y2, Y7, Y8; \
	VXORPS Y14, Y8, Y8; \
	STF(Y8, 416(BX)); \
	STF(Y4, 448(BX)); \
	ADDQ R12, DX; \
	LD((DX), Y0); \
	LD((DX)(R9*1), Y1); \
	LD((DX)(R9*2), Y2); \
	LD((DX)(R14*1), Y3); \
	LD((DX)(R9*4), Y4); \
	VADDPS Y0, Y0, Y5; \
	VADDPS Y2, Y2, Y6; \
	VSUBPS Y0, Y1, Y7; \
	VADDPS Y4, Y4, Y8; \
	VADDPS Y8, Y3, Y8; \
	VADDPS Y8, Y7, Y7; \
	STF(Y5, 480(BX)); \
	VSUBPS Y6, Y1, Y8; \
	VADDPS Y8, Y7, Y8; \
	STF(Y8, 512(BX)); \
	VSUBPS Y5, Y1, Y8; \
	VADDPS Y2, Y6, Y9; \
	VADDPS Y9, Y8, Y8; \
	VSUBPS Y4, Y8, Y8; \
	STF(Y8, 544(BX)); \
	VADDPS Y2, Y7, Y8; \
	VXORPS Y14, Y8, Y8; \
	STF(Y8, 576(BX)); \
	STF(Y4, 608(BX)); \
	ADDQ R12, DX; \
	LD((DX), Y0); \
	LD((DX)(R9*1), Y1); \
	LD((DX)(R9*2), Y2); \
	LD((DX)(R14*1), Y3); \
	LD((DX)(R9*4), Y4); \
	VADDPS Y0, Y0, Y5; \
	VADDPS Y2, Y2, Y6; \
	VSUBPS Y0, Y1, Y7; \
	VADDPS Y4, Y4, Y8; \
	VADDPS Y8, Y3, Y8; \
	VADDPS Y8, Y7, Y7; \
	STF(Y5, 640(BX)); \
	VSUBPS Y6, Y1, Y8; \
	VADDPS Y8, Y7, Y8; \
	STF(Y8, 672(BX)); \
	VSUBPS Y5, Y1, Y8; \
	VADDPS Y2, Y6, Y9; \
	VADDPS Y9, Y8, Y8; \
	VSUBPS Y4, Y8, Y8; \
	STF(Y8, 704(BX)); \
	VADDPS Y2, Y7, Y8; \
	VXORPS Y14, Y8, Y8; \
	STF(Y8, 736(BX)); \
	STF(Y4, 768(BX)); \
	MOVQ R11, DX; \
	LDF(0(BX), Y0); \
	LDF(160(BX), Y1); \
	LDF(320(BX), Y2); \
	LDF(480(BX), Y3); \
	LDF(640(BX), Y4); \
	VADDPS Y0, Y0, Y5; \
	VADDPS Y2, Y2, Y6; \
	VSUBPS Y0, Y1, Y7; \
	VADDPS Y4, Y4, Y8; \
	VADDPS Y8, Y3, Y8; \
	VADDPS Y8, Y7, Y7; \
	LD((DX), Y10); \
	VADDPS Y5, Y10, Y10; \
	ST(Y10, (DX)); \
	VSUBPS Y6, Y1, Y8; \
	VADDPS Y8, Y7, Y8; \
	LD((DX)(R8*1), Y10); \
	VADDPS Y8, Y10, Y10; \
	ST(Y10, (DX)(R8*1)); \
	VSUBPS Y5, Y1, Y8; \
	VADDPS Y2, Y6, Y9; \
	VADDPS Y9, Y8, Y8; \
	VSUBPS Y4, Y8, Y8; \
	LD((DX)(R8*2), Y10); \
	VADDPS Y8, Y10, Y10; \
	ST(Y10, (DX)(R8*2)); \
	VADDPS Y2, Y7, Y8; \
	VXORPS Y14, Y8, Y8; \
	LD((DX)(R13*1), Y10); \
	VADDPS Y8, Y10, Y10; \
	ST(Y10, (DX)(R13*1)); \
	LD((DX)(R8*4), Y10); \
	VADDPS Y4, Y10, Y10; \
	ST(Y10, (DX)(R8*4)); \
	ADDQ R10, DX; \
	LDF(32(BX), Y0); \
	LDF(192(BX), Y1); \
	LDF(352(BX), Y2); \
	LDF(512(BX), Y3); \
	LDF(672(BX), Y4); \
	VADDPS Y0, Y0, Y5; \
	VADDPS Y2, Y2, Y6; \
	VSUBPS Y0, Y1, Y7; \
	VADDPS Y4, Y4, Y8; \
	VADDPS Y8, Y3, Y8; \
	VADDPS Y8, Y7, Y7; \
	LD((DX), Y10); \
	VADDPS Y5, Y10, Y10; \
	ST(Y10, (DX)); \
	VSUBPS Y6, Y1, Y8; \
	VADDPS Y8, Y7, Y8; \
	LD((DX)(R8*1), Y10); \
	VADDPS Y8, Y10, Y10; \
	ST(Y10, (DX)(R8*1)); \
	VSUBPS Y5, Y1, Y8; \
	VADDPS Y2, Y6, Y9; \
	VADDPS Y9, Y8, Y8; \
	VSUBPS Y4, Y8, Y8; \
	LD((DX)(R8*2), Y10); \
	VADDPS Y8, Y10, Y10; \
	ST(Y10, (DX)(R8*2)); \
	VADDPS Y2, Y7, Y8; \
	VXORPS Y14, Y8, Y8; \
	LD((DX)(R13*1), Y10); \
	VADDPS Y8, Y10, Y10; \
	ST(Y10, (DX)(R13*1)); \
	LD((DX)(R8*4), Y10); \
	VADDPS Y4, Y10, Y10; \
	ST(Y10, (DX)(R8*4)); \
	ADDQ R10, DX; \
	LDF(64(BX), Y0); \
	LDF(224(BX), Y1); \
	LDF(384(BX), Y2); \
	LDF(544(BX), Y3); \
	LDF(704(BX), Y4); \
	VADDPS Y0, Y0, Y5; \
	VADDPS Y2, Y2, Y6; \
	VSUBPS Y0, Y1, Y7; \
	VADDPS Y4, Y4, Y8; \
	VADDPS Y8, Y3, Y8; \
	VADDPS Y8, Y7, Y7; \
	LD((DX), Y10); \
	VADDPS Y5, Y10, Y10; \
	ST(Y10, (DX)); \
	VSUBPS Y6, Y1, Y8; \
	VADDPS Y8, Y7, Y8; \
	LD((DX)(R8*1), Y10); \
	VADDPS Y8, Y10, Y10; \
	ST(Y10, (DX)(R8*1)); \
	VSUBPS Y5, Y1, Y8; \
	VADDPS Y2, Y6, Y9; \
	VADDPS Y9, Y8, Y8; \
	VSUBPS Y4, Y8, Y8; \
	LD((DX)(R8*2), Y10); \
	VADDPS Y8, Y10, Y10; \
	ST(Y10, (DX)(R8*2)); \
	VADDPS Y2, Y7, Y8; \
	VXORPS Y14, Y8, Y8; \
	LD((DX)(R13*1), Y10); \
	VADDPS Y8, Y10, Y10; \
	ST(Y10, (DX)(R13*1)); \
	LD((DX)(R8*4), Y10); \
	VADDPS Y4, Y10, Y10; \
	ST(Y10, (DX)(R8*4)); \
	ADDQ R10, DX; \
	LDF(96(BX), Y0); \
	LDF(256(BX), Y1); \
	LDF(416(BX), Y2); \
	LDF(576(BX), Y3); \
	LDF(736(BX), Y4); \
	VADDPS Y0, Y0, Y5; \
	VADDPS Y2, Y2, Y6; \
	VSUBPS Y0, Y1, Y7; \
	VADDPS Y4, Y4, Y8; \
	VADDPS Y8, Y3, Y8; \
	VADDPS Y8, Y7, Y7; \
	LD((DX), Y10); \
	VADDPS Y5, Y10, Y10; \
	ST(Y10, (DX)); \
	VSUBPS Y6, Y1, Y8; \
	VADDPS Y8, Y7, Y8; \
	LD((DX)(R8*1), Y10); \
	VADDPS Y8, Y10, Y10; \
	ST(Y10, (DX)(R8*1)); \
	VSUBPS Y5, Y1, Y8; \
	VADDPS Y2, Y6, Y9; \
	VADDPS Y9, Y8, Y8; \
	VSUBPS Y4, Y8, Y8; \
	LD((DX)(R8*2), Y10); \
	VADDPS Y8, Y10, Y10; \
	ST(Y10, (DX)(R8*2)); \
	VADDPS Y2, Y7, Y8; \
	VXORPS Y14, Y8, Y8; \
	LD((DX)(R13*1), Y10); \
	VADDPS Y8, Y10, Y10; \
	ST(Y10, (DX)(R13*1)); \
	LD((DX)(R8*4), Y10); \
	VADDPS Y4, Y10, Y10; \
	ST(Y10, (DX)(R8*4)); \
	ADDQ R10, DX; \
	LDF(128(BX), Y0); \
	LDF(288(BX), Y1); \
	LDF(448(BX), Y2); \
	LDF(608(BX), Y3); \
	LDF(768(BX), Y4); \
	VADDPS Y0, Y0, Y5; \
	VADDPS Y2, Y2, Y6; \
	VSUBPS Y0, Y1, Y7; \
	VADDPS Y4, Y4, Y8; \
	VADDPS Y8, Y3, Y8; \
	VADDPS Y8, Y7, Y7; \
	LD((DX), Y10); \
	VADDPS Y5, Y10, Y10; \
	ST(Y10, (DX)); \
	VSUBPS Y6, Y1, Y8; \
	VADDPS Y8, Y7, Y8; \
	LD((DX)(R8*1), Y10); \
	VADDPS Y8, Y10, Y10; \
	ST(Y10, (DX)(R8*1)); \
	VSUBPS Y5, Y1, Y8; \
	VADDPS Y2, Y6, Y9; \
	VADDPS Y9, Y8, Y8; \
	VSUBPS Y4, Y8, Y8; \
	LD((DX)(R8*2), Y10); \
	VADDPS Y8, Y10, Y10; \
	ST(Y10, (DX)(R8*2)); \
	VADDPS Y2, Y7, Y8; \
	VXORPS Y14, Y8, Y8; \
	LD((DX)(R13*1), Y10); \
	VADDPS Y8, Y10, Y10; \
	ST(Y10, (DX)(R13*1)); \
	LD((DX)(R8*4), Y10); \
	VADDPS Y4, Y10, Y10; \
	ST(Y10, (DX)(R8*4))

// func wg4ingrad256(dst *float32, ld, cs int, src *float32, ss int, n int)
TEXT ·wg4ingrad256(SB), $800-48
	LEAQ 0(SP), BX
	MOVQ dst+0(FP), R11
	MOVQ ld+8(FP), R8
	SHLQ $2, R8
	MOVQ cs+16(FP), R10
	SHLQ $2, R10
	MOVQ src+24(FP), SI
	MOVQ ss+32(FP), R9
	SHLQ $2, R9
	MOVQ n+40(FP), CX
	LEAQ (R8)(R8*2), R13
	LEAQ (R9)(R9*2), R14
	LEAQ (R9)(R9*4), R12
	WG256SIGN

wg4ingrad256_loop:
	CMPQ CX, $8
	JLT wg4ingrad256_tail
	WG4INGRAD256(LDF, STF)
	ADDQ $32, R11
	ADDQ $32, SI
	SUBQ $8, CX
	JMP wg4ingrad256_loop

wg4ingrad256_tail:
	TESTQ CX, CX
	JLE wg4ingrad256_done
	WG256TAIL
	WG4INGRAD256(LDM, STM)

wg4ingrad256_done:
	VZEROUPPER
	RET

#define WG4OUT256(LD, ST) \
	MOVQ SI, DX; \
	LD((DX), Y0); \
	LD((DX)(R12*1), Y1); \
	LD((DX)(R12*2), Y2); \
	LD((DX)(R14*1), Y3); \
	LD((DX)(R12*4), Y4); \
	VADDPS Y2, Y1, Y5; \
	VSUBPS Y2, Y1, Y6; \
	VADDPS Y3, Y3, Y7; \
	VADDPS Y5, Y0, Y8; \
	VADDPS Y3, Y8, Y8; \
	STF(Y8, 0(BX)); \
	VADDPS Y7, Y6, Y8; \
	STF(Y8, 160(BX)); \
	VADDPS Y7, Y7, Y7; \
	VADDPS Y7, Y5, Y8; \
	STF(Y8, 320(BX)); \
	VADDPS Y7, Y7, Y7; \
	VADDPS Y7, Y6, Y8; \
	VADDPS Y4, Y8, Y8; \
	STF(Y8, 480(BX)); \
	ADDQ R9, DX; \
	LD((DX), Y0); \
	LD((DX)(R12*1), Y1); \
	LD((DX)(R12*2), Y2); \
	LD((DX)(R14*1), Y3); \
	LD((DX)(R12*4), Y4); \
	VADDPS Y2, Y1, Y5; \
	VSUBPS Y2, Y1, Y6; \
	VADDPS Y3, Y3, Y7; \
	VADDPS Y5, Y0, Y8; \
	VADDPS Y3, Y8, Y8; \
	STF(Y8, 32(BX)); \
	VADDPS Y7, Y6, Y8; \
	STF(Y8, 192(BX)); \
	VADDPS Y7, Y7, Y7; \
	VADDPS Y7, Y5, Y8; \
	STF(Y8, 352(BX)); \
	VADDPS Y7, Y7, Y7; \
	VADDPS Y7, Y6, Y8; \
	VADDPS Y4, Y8, Y8; \
	STF(Y8, 512(BX)); \
	ADDQ R9, DX; \
	LD((DX), Y0); \
	LD((DX)(R12*1), Y1); \
	LD((DX)(R12*2), Y2); \
	LD((DX)(R14*1), Y3); \
	LD((DX)(R12*4), Y4); \
	VADDPS Y2, Y1, Y5; \
	VSUBPS Y2, Y1, Y6; \
	VADDPS Y3, Y3, Y7; \
	VADDPS Y5, Y0, Y8; \
	VADDPS Y3, Y8, Y8; \
	STF(Y8, 64(BX)); \
	VADDPS Y7, Y6, Y8; \
	STF(Y8, 224(BX)); \
	VADDPS Y7, Y7, Y7; \
	VADDPS Y7, Y5, Y8; \
	STF(Y8, 384(BX)); \
	VADDPS Y7, Y7, Y7; \
	VADDPS Y7, Y6, Y8; \
	VADDPS Y4, Y8, Y8; \
	STF(Y8, 544(BX)); \
	ADDQ R9, DX; \
	LD((DX), Y0); \
	LD((DX)(R12*1), Y1); \
	LD((DX)(R12*2), Y2); \
	LD((DX)(R14*1), Y3); \
	LD((DX)(R12*4), Y4); \
	VADDPS Y2, Y1, Y5; \
	VSUBPS Y2, Y1, Y6; \
	VADDPS Y3, Y3, Y7; \
	VADDPS Y5, Y0, Y8; \
	VADDPS Y3, Y8, Y8; \
	STF(Y8, 96(BX)); \
	VADDPS Y7, Y6, Y8; \
	STF(Y8, 256(BX)); \
	VADDPS Y7, Y7, Y7; \
	VADDPS Y7, Y5, Y8; \
	STF(Y8, 416(BX)); \
	VADDPS Y7, Y7, Y7; \
	VADDPS Y7, Y6, Y8; \
	VADDPS Y4, Y8, Y8; \
	STF(Y8, 576(BX)); \
	ADDQ R9, DX; \
	LD((DX), Y0); \
	LD((DX)(R12*1), Y1); \
	LD((DX)(R12*2), Y2); \
	LD((DX)(R14*1), Y3); \
	LD((DX)(R12*4), Y4); \
	VADDPS Y2, Y1, Y5; \
	VSUBPS Y2, Y1, Y6; \
	VADDPS Y3, Y3, Y7; \
	VADDPS Y5, Y0, Y8; \
	VADDPS Y3, Y8, Y8; \
	STF(Y8, 128(BX)); \
	VADDPS Y7, Y6, Y8; \
	STF(Y8, 288(BX)); \
	VADDPS Y7, Y7, Y7; \
	VADDPS Y7, Y5, Y8; \
	STF(Y8, 448(BX)); \
	VADDPS Y7, Y7, Y7; \
	VADDPS Y7, Y6, Y8; \
	VADDPS Y4, Y8, Y8; \
	STF(Y8, 608(BX)); \
	LD((R11), Y12); \
	MOVQ DI, DX; \
	LDF(0(BX), Y0); \
	LDF(32(BX), Y1); \
	LDF(64(BX), Y2); \
	LDF(96(BX), Y3); \
	LDF(128(BX), Y4); \
	VADDPS Y2, Y1, Y5; \
	VSUBPS Y2, Y1, Y6; \
	VADDPS Y3, Y3, Y7; \
	VADDPS Y5, Y0, Y8; \
	VADDPS Y3, Y8, Y8; \
	VADDPS Y12, Y8, Y8; \
	ST(Y8, (DX)); \
	VADDPS Y7, Y6, Y8; \
	VADDPS Y12, Y8, Y8; \
	ST(Y8, (DX)(R10*1)); \
	VADDPS Y7, Y7, Y7; \
	VADDPS Y7, Y5, Y8; \
	VADDPS Y12, Y8, Y8; \
	ST(Y8, (DX)(R10*2)); \
	VADDPS Y7, Y7, Y7; \
	VADDPS Y7, Y6, Y8; \
	VADDPS Y4, Y8, Y8; \
	VADDPS Y12, Y8, Y8; \
	ST(Y8, (DX)(R13*1)); \
	ADDQ R8, DX; \
	LDF(160(BX), Y0); \
	LDF(192(BX), Y1); \
	LDF(224(BX), Y2); \
	LDF(256(BX), Y3); \
	LDF(288(BX), Y4); \
	VADDPS Y2, Y1, Y5; \
	VSUBPS Y2, Y1, Y6; \
	VADDPS Y3, Y3, Y7; \
	VADDPS Y5, Y0, Y8; \
	VADDPS Y3, Y8, Y8; \
	VADDPS Y12, Y8, Y8; \
	ST(Y8, (DX)); \
	VADDPS Y7, Y6, Y8; \
	VADDPS Y12, Y8, Y8; \
	ST(Y8, (DX)(R10*1)); \
	VADDPS Y7, Y7, Y7; \
	VADDPS Y7, Y5, Y8; \
	VADDPS Y12, Y8, Y8; \
	ST(Y8, (DX)(R10*2)); \
	VADDPS Y7, Y7, Y7; \
	VADDPS Y7, Y6, Y8; \
	VADDPS Y4, Y8, Y8; \
	VADDPS Y12, Y8, Y8; \
	ST(Y8, (DX)(R13*1)); \
	ADDQ R8, DX; \
	LDF(320(BX), Y0); \
	LDF(352(BX), Y1); \
	LDF(384(BX), Y2); \
	LDF(416(BX), Y3); \
	LDF(448(BX), Y4); \
	VADDPS Y2, Y1, Y5; \
	VSUBPS Y2, Y1, Y6; \
	VADDPS Y3, Y3, Y7; \
	VADDPS Y5, Y0, Y8; \
	VADDPS Y3, Y8, Y8; \
	VADDPS Y12, Y8, Y8; \
	ST(Y8, (DX)); \
	VADDPS Y7, Y6, Y8; \
	VADDPS Y12, Y8, Y8; \
	ST(Y8, (DX)(R10*1)); \
	VADDPS Y7, Y7, Y7; \
	VADDPS Y7, Y5, Y8; \
	VADDPS Y12, Y8, Y8; \
	ST(Y8, (DX)(R10*2)); \
	VADDPS Y7, Y7, Y7; \
	VADDPS Y7, Y6, Y8; \
	VADDPS Y4, Y8, Y8; \
	VADDPS Y12, Y8, Y8; \
	ST(Y8, (DX)(R13*1)); \
	ADDQ R8, DX; \
	LDF(480(BX), Y0); \
	LDF(512(BX), Y1); \
	LDF(544(BX), Y2); \
	LDF(576(BX), Y3); \
	LDF(608(BX), Y4); \
	VADDPS Y2, Y1, Y5; \
	VSUBPS Y2, Y1, Y6; \
	VADDPS Y3, Y3, Y7; \
	VADDPS Y5, Y0, Y8; \
	VADDPS Y3, Y8, Y8; \
	VADDPS Y12, Y8, Y8; \
	ST(Y8, (DX)); \
	VADDPS Y7, Y6, Y8; \
	VADDPS Y12, Y8, Y8; \
	ST(Y8, (DX)(R10*1)); \
	VADDPS Y7, Y7, Y7; \
	VADDPS Y7, Y5, Y8; \
	VADDPS Y12, Y8, Y8; \
	ST(Y8, (DX)(R10*2)); \
	VADDPS Y7, Y7, Y7; \
	VADDPS Y7, Y6, Y8; \
	VADDPS Y4, Y8, Y8; \
	VADDPS Y12, Y8, Y8; \
	ST(Y8, (DX)(R13*1))

// func wg4out256(src *float32, ss int, dst *float32, ld int, bias *float32, n int)
TEXT ·wg4out256(SB), $800-48
	LEAQ 0(SP), BX
	MOVQ src+0(FP), SI
	MOVQ ss+8(FP), R9
	SHLQ $2, R9
	MOVQ dst+16(FP), DI
	MOVQ ld+24(FP), R8
	SHLQ $2, R8
	MOVQ bias+32(FP), R11
	MOVQ n+40(FP), CX
	MOVQ CX, R10
	SHLQ $2, R10
	LEAQ (R10)(R10*2), R13
	LEAQ (R9)(R9*4), R12
	LEAQ (R12)(R12*2), R14

wg4out256_loop:
	CMPQ CX, $8
	JLT wg4out256_tail
	WG4OUT256(LDF, STF)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, R11
	SUBQ $8, CX
	JMP wg4out256_loop

wg4out256_tail:
	TESTQ CX, CX
	JLE wg4out256_done
	WG256TAIL
	WG4OUT256(LDM, STM)

wg4out256_done:
	VZEROUPPER
	RET

#define WG4OUTGRAD256(LD, ST) \
	MOVQ R11, DX; \
	LD((DX), Y0); \
	LD((DX)(R8*1), Y1); \
	LD((DX)(R8*2), Y2); \
	LD((DX)(R13*1), Y3); \
	STF(Y0, 0(BX)); \
	VADDPS Y1, Y0, Y4; \
	VADDPS Y3, Y2, Y5; \
	VADDPS Y5, Y4, Y4; \
	STF(Y4, 160(BX)); \
	VSUBPS Y1, Y0, Y4; \
	VSUBPS Y3, Y2, Y5; \
	VADDPS Y5, Y4, Y4; \
	STF(Y4, 320(BX)); \
	VADDPS Y1, Y1, Y4; \
	VADDPS Y4, Y0, Y4; \
	VADDPS Y2, Y2, Y5; \
	VADDPS Y5, Y5, Y5; \
	VADDPS Y3, Y3, Y6; \
	VADDPS Y6, Y6, Y6; \
	VADDPS Y6, Y6, Y6; \
	VADDPS Y6, Y5, Y5; \
	VADDPS Y5, Y4, Y4; \
	STF(Y4, 480(BX)); \
	STF(Y3, 640(BX)); \
	ADDQ R10, DX; \
	LD((DX), Y0); \
	LD((DX)(R8*1), Y1); \
	LD((DX)(R8*2), Y2); \
	LD((DX)(R13*1), Y3); \
	STF(Y0, 32(BX)); \
	VADDPS Y1, Y0, Y4; \
	VADDPS Y3, Y2, Y5; \
	VADDPS Y5, Y4, Y4; \
	STF(Y4, 192(BX)); \
	VSUBPS Y1, Y0, Y4; \
	VSUBPS Y3, Y2, Y5; \
	VADDPS Y5, Y4, Y4; \
	STF(Y4, 352(BX)); \
	VADDPS Y1, Y1, Y4; \
	VADDPS Y4, Y0, Y4; \
	VADDPS Y2, Y2, Y5; \
	VADDPS Y5, Y5, Y5; \
	VADDPS Y3, Y3, Y6; \
	VADDPS Y6, Y6, Y6; \
	VADDPS Y6, Y6, Y6; \
	VADDPS Y6, Y5, Y5; \
	VADDPS Y5, Y4, Y4; \
	STF(Y4, 512(BX)); \
	STF(Y3, 672(BX)); \
	ADDQ R10, DX; \
	LD((DX), Y0); \
	LD((DX)(R8*1), Y1); \
	LD((DX)(R8*2), Y2); \
	LD((DX)(R13*1), Y3); \
	STF(Y0, 64(BX)); \
	VADDPS Y1, Y0, Y4; \
	VADDPS Y3, Y2, Y5; \
	VADDPS Y5, Y4, Y4; \
	STF(Y4, 224(BX)); \
	VSUBPS Y1, Y0, Y4; \
	VSUBPS Y3, Y2, Y5; \
	VADDPS Y5, Y4, Y4; \
	STF(Y4, 384(BX)); \
	VADDPS Y1, Y1, Y4; \
	VADDPS Y4, Y0, Y4; \
	VADDPS Y2, Y2, Y5; \
	VADDPS Y5, Y5, Y5; \
	VADDPS Y3, Y3, Y6; \
	VADDPS Y6, Y6, Y6; \
	VADDPS Y6, Y6, Y6; \
	VADDPS Y6, Y5, Y5; \
	VADDPS Y5, Y4, Y4; \
	STF(Y4, 544(BX)); \
	STF(Y3, 704(BX)); \
	ADDQ R10, DX; \
	LD((DX), Y0); \
	LD((DX)(R8*1), Y1); \
	LD((DX)(R8*2), Y2); \
	LD((DX)(R13*1), Y3); \
	STF(Y0, 96(BX)); \
	VADDPS Y1, Y0, Y4; \
	VADDPS Y3, Y2, Y5; \
	VADDPS Y5, Y4, Y4; \
	STF(Y4, 256(BX)); \
	VSUBPS Y1, Y0, Y4; \
	VSUBPS Y3, Y2, Y5; \
	VADDPS Y5, Y4, Y4; \
	STF(Y4, 416(BX)); \
	VADDPS Y1, Y1, Y4; \
	VADDPS Y4, Y0, Y4; \
	VADDPS Y2, Y2, Y5; \
	VADDPS Y5, Y5, Y5; \
	VADDPS Y3, Y3, Y6; \
	VADDPS Y6, Y6, Y6; \
	VADDPS Y6, Y6, Y6; \
	VADDPS Y6, Y5, Y5; \
	VADDPS Y5, Y4, Y4; \
	STF(Y4, 576(BX)); \
	STF(Y3, 736(BX)); \
	MOVQ DI, DX; \
	LDF(0(BX), Y0); \
	LDF(32(BX), Y1); \
	LDF(64(BX), Y2); \
	LDF(96(BX), Y3); \
	ST(Y0, (DX)); \
	VADDPS Y1, Y0, Y4; \
	VADDPS Y3, Y2, Y5; \
	VADDPS Y5, Y4, Y4; \
	ST(Y4, (DX)(R9*1)); \
	VSUBPS Y1, Y0, Y4; \
	VSUBPS Y3, Y2, Y5; \
	VADDPS Y5, Y4, Y4; \
	ST(Y4, (DX)(R9*2)); \
	VADDPS Y1, Y1, Y4; \
	VADDPS Y4, Y0, Y4; \
	VADDPS Y2, Y2, Y5; \
	VADDPS Y5, Y5, Y5; \
	VADDPS Y3, Y3, Y6; \
	VADDPS Y6, Y6, Y6; \
	VADDPS Y6, Y6, Y6; \
	VADDPS Y6, Y5, Y5; \
	VADDPS Y5, Y4, Y4; \
	ST(Y4, (DX)(R14*1)); \
	ST(Y3, (DX)(R9*4)); \
	ADDQ R12, DX; \
	LDF(160(BX), Y0); \
	LDF(192(BX), Y1); \
	LDF(224(BX), Y2); \
	LDF(256(BX), Y3); \
	ST(Y0, (DX)); \
	VADDPS Y1, Y0, Y4; \
	VADDPS Y3, Y2, Y5; \
	VADDPS Y5, Y4, Y4; \
	ST(Y4, (DX)(R9*1)); \
	VSUBPS Y1, Y0, Y4; \
	VSUBPS Y3, Y2, Y5; \
	VADDPS Y5, Y4, Y4; \
	ST(Y4, (DX)(R9*2)); \
	VADDPS Y1, Y1, Y4; \
	VADDPS Y4, Y0, Y4; \
	VADDPS Y2, Y2, Y5; \
	VADDPS Y5, Y5, Y5; \
	VADDPS Y3, Y3, Y6; \
	VADDPS Y6, Y6, Y6; \
	VADDPS Y6, Y6, Y6; \
	VADDPS Y6, Y5, Y5; \
	VADDPS Y5, Y4, Y4; \
	ST(Y4, (DX)(R14*1)); \
	ST(Y3, (DX)(R9*4)); \
	ADDQ R12, DX; \
	LDF(320(BX), Y0); \
	LDF(352(BX), Y1); \
	LDF(384(BX), Y2); \
	LDF(416(BX), Y3); \
	ST(Y0, (DX)); \
	VADDPS Y1, Y0, Y4; \
	VADDPS Y3, Y2, Y5; \
	VADDPS Y5, Y4, Y4; \
	ST(Y4, (DX)(R9*1)); \
	VSUBPS Y1, Y0, Y4; \
	VSUBPS Y3, Y2, Y5; \
	VADDPS Y5, Y4, Y4; \
	ST(Y4, (DX)(R9*2)); \
	VADDPS Y1, Y1, Y4; \
	VADDPS Y4, Y0, Y4; \
	VADDPS Y2, Y2, Y5; \
	VADDPS Y5, Y5, Y5; \
	VADDPS Y3, Y3, Y6; \
	VADDPS Y6, Y6, Y6; \
	VADDPS Y6, Y6, Y6; \
	VADDPS Y6, Y5, Y5; \
	VADDPS Y5, Y4, Y4; \
	ST(Y4, (DX)(R14*1)); \
	ST(Y3, (DX)(R9*4)); \
	ADDQ R12, DX; \
	LDF(480(BX), Y0); \
	LDF(512(BX), Y1); \
	LDF(544(BX), Y2); \
	LDF(576(BX), Y3); \
	ST(Y0, (DX)); \
	VADDPS Y1, Y0, Y4; \
	VADDPS Y3, Y2, Y5; \
	VADDPS Y5, Y4, Y4; \
	ST(Y4, (DX)(R9*1)); \
	VSUBPS Y1, Y0, Y4; \
	VSUBPS Y3, Y2, Y5; \
	VADDPS Y5, Y4, Y4; \
	ST(Y4, (DX)(R9*2)); \
	VADDPS Y1, Y1, Y4; \
	VADDPS Y4, Y0, Y4; \
	VADDPS Y2, Y2, Y5; \
	VADDPS Y5, Y5, Y5; \
	VADDPS Y3, Y3, Y6; \
	VADDPS Y6, Y6, Y6; \
	VADDPS Y6, Y6, Y6; \
	VADDPS Y6, Y5, Y5; \
	VADDPS Y5, Y4, Y4; \
	ST(Y4, (DX)(R14*1)); \
	ST(Y3, (DX)(R9*4)); \
	ADDQ R12, DX; \
	LDF(640(BX), Y0); \
	LDF(672(BX), Y1); \
	LDF(704(BX), Y2); \
	LDF(736(BX), Y3); \
	ST(Y0, (DX)); \
	VADDPS Y1, Y0, Y4; \
	VADDPS Y3, Y2, Y5; \
	VADDPS Y5, Y4, Y4; \
	ST(Y4, (DX)(R9*1)); \
	VSUBPS Y1, Y0, Y4; \
	VSUBPS Y3, Y2, Y5; \
	VADDPS Y5, Y4, Y4; \
	ST(Y4, (DX)(R9*2)); \
	VADDPS Y1, Y1, Y4; \
	VADDPS Y4, Y0, Y4; \
	VADDPS Y2, Y2, Y5; \
	VADDPS Y5, Y5, Y5; \
	VADDPS Y3, Y3, Y6; \
	VADDPS Y6, Y6, Y6; \
	VADDPS Y6, Y6, Y6; \
	VADDPS Y6, Y5, Y5; \
	VADDPS Y5, Y4, Y4; \
	ST(Y4, (DX)(R14*1)); \
	ST(Y3, (DX)(R9*4))

// func wg4outgrad256(src *float32, ld int, dst *float32, ds int, n int)
TEXT ·wg4outgrad256(SB), $800-40
	LEAQ 0(SP), BX
	MOVQ src+0(FP), R11
	MOVQ ld+8(FP), R8
	SHLQ $2, R8
	MOVQ dst+16(FP), DI
	MOVQ ds+24(FP), R9
	SHLQ $2, R9
	MOVQ n+32(FP), CX
	MOVQ CX, R10
	SHLQ $2, R10
	LEAQ (R8)(R8*2), R13
	LEAQ (R9)(R9*2), R14
	LEAQ (R9)(R9*4), R12

wg4outgrad256_loop:
	CMPQ CX, $8
	JLT wg4outgrad256_tail
	WG4OUTGRAD256(LDF, STF)
	ADDQ $32, R11
	ADDQ $32, DI
	SUBQ $8, CX
	JMP wg4outgrad256_loop

wg4outgrad256_tail:
	TESTQ CX, CX
	JLE wg4outgrad256_done
	WG256TAIL
	WG4OUTGRAD256(LDM, STM)

wg4outgrad256_done:
	VZEROUPPER
	RET

