//go:build !purego

#include "textflag.h"

// AVX-512 kernels of Winograd's F(2x2, 3x3) input transform and its
// adjoint on one tile, 16 channels a vector (winograd.go has the Go
// versions, the same sums in the same order). A tile's 4x4 taps lie in a
// channel-last scratch: tap (i, j) at src + i*ld + j*n floats, n the
// channels; the 16 transformed points at dst + e*ds.

// WGMASK sets K1 to the lanes of the next chunk: all 16, or the last CX.
#define WGMASK(lbl) \
	MOVQ $0xffff, AX; \
	CMPQ CX, $16; \
	JGE lbl; \
	MOVL $1, AX; \
	SHLL CX, AX; \
	DECL AX; \
lbl: \
	KMOVW AX, K1

// WGLOAD16 loads the 16 transformed points of a tile, at SI + e*R9
// bytes, under K1 into Z0-Z15.
#define WGLOAD16 \
	MOVQ SI, DX; \
	VMOVUPS.Z (DX), K1, Z0; \
	ADDQ R9, DX; \
	VMOVUPS.Z (DX), K1, Z1; \
	ADDQ R9, DX; \
	VMOVUPS.Z (DX), K1, Z2; \
	ADDQ R9, DX; \
	VMOVUPS.Z (DX), K1, Z3; \
	ADDQ R9, DX; \
	VMOVUPS.Z (DX), K1, Z4; \
	ADDQ R9, DX; \
	VMOVUPS.Z (DX), K1, Z5; \
	ADDQ R9, DX; \
	VMOVUPS.Z (DX), K1, Z6; \
	ADDQ R9, DX; \
	VMOVUPS.Z (DX), K1, Z7; \
	ADDQ R9, DX; \
	VMOVUPS.Z (DX), K1, Z8; \
	ADDQ R9, DX; \
	VMOVUPS.Z (DX), K1, Z9; \
	ADDQ R9, DX; \
	VMOVUPS.Z (DX), K1, Z10; \
	ADDQ R9, DX; \
	VMOVUPS.Z (DX), K1, Z11; \
	ADDQ R9, DX; \
	VMOVUPS.Z (DX), K1, Z12; \
	ADDQ R9, DX; \
	VMOVUPS.Z (DX), K1, Z13; \
	ADDQ R9, DX; \
	VMOVUPS.Z (DX), K1, Z14; \
	ADDQ R9, DX; \
	VMOVUPS.Z (DX), K1, Z15

// func wgin(src *float32, ld int, dst *float32, ds int, n int)
TEXT ·wgin(SB), NOSPLIT, $0-40
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

wgin_loop:
	TESTQ CX, CX
	JLE wgin_done
	WGMASK(wgin_mask)
	VMOVUPS.Z (R11), K1, Z0
	VMOVUPS.Z (R11)(R10*1), K1, Z1
	VMOVUPS.Z (R11)(R10*2), K1, Z2
	VMOVUPS.Z (R11)(BX*1), K1, Z3
	VMOVUPS.Z (R12), K1, Z4
	VMOVUPS.Z (R12)(R10*1), K1, Z5
	VMOVUPS.Z (R12)(R10*2), K1, Z6
	VMOVUPS.Z (R12)(BX*1), K1, Z7
	VMOVUPS.Z (R13), K1, Z8
	VMOVUPS.Z (R13)(R10*1), K1, Z9
	VMOVUPS.Z (R13)(R10*2), K1, Z10
	VMOVUPS.Z (R13)(BX*1), K1, Z11
	VMOVUPS.Z (R14), K1, Z12
	VMOVUPS.Z (R14)(R10*1), K1, Z13
	VMOVUPS.Z (R14)(R10*2), K1, Z14
	VMOVUPS.Z (R14)(BX*1), K1, Z15

	// B^T d: rows a = d0 - d2, b = d1 + d2, c = d2 - d1, d = d1 - d3
	VSUBPS Z8, Z0, Z16
	VSUBPS Z9, Z1, Z17
	VSUBPS Z10, Z2, Z18
	VSUBPS Z11, Z3, Z19
	VADDPS Z8, Z4, Z20
	VADDPS Z9, Z5, Z21
	VADDPS Z10, Z6, Z22
	VADDPS Z11, Z7, Z23
	VSUBPS Z4, Z8, Z24
	VSUBPS Z5, Z9, Z25
	VSUBPS Z6, Z10, Z26
	VSUBPS Z7, Z11, Z27
	VSUBPS Z12, Z4, Z28
	VSUBPS Z13, Z5, Z29
	VSUBPS Z14, Z6, Z30
	VSUBPS Z15, Z7, Z31

	// (B^T d) B: each row p -> p0-p2, p1+p2, p2-p1, p1-p3
	MOVQ DI, DX
	VSUBPS Z18, Z16, Z0
	VADDPS Z18, Z17, Z1
	VSUBPS Z17, Z18, Z2
	VSUBPS Z19, Z17, Z3
	VSUBPS Z22, Z20, Z4
	VADDPS Z22, Z21, Z5
	VSUBPS Z21, Z22, Z6
	VSUBPS Z23, Z21, Z7
	VSUBPS Z26, Z24, Z8
	VADDPS Z26, Z25, Z9
	VSUBPS Z25, Z26, Z10
	VSUBPS Z27, Z25, Z11
	VSUBPS Z30, Z28, Z12
	VADDPS Z30, Z29, Z13
	VSUBPS Z29, Z30, Z14
	VSUBPS Z31, Z29, Z15
	VMOVUPS Z0, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z1, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z2, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z3, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z4, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z5, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z6, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z7, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z8, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z9, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z10, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z11, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z12, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z13, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z14, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z15, K1, (DX)

	ADDQ $64, R11
	ADDQ $64, R12
	ADDQ $64, R13
	ADDQ $64, R14
	ADDQ $64, DI
	SUBQ $16, CX
	JMP wgin_loop

wgin_done:
	VZEROUPPER
	RET

// WGADD adds z into the n-channel run at m under K1 (t a scratch).
#define WGADD(z, m, t) \
	VMOVUPS.Z m, K1, t; \
	VADDPS z, t, t; \
	VMOVUPS t, K1, m

// WGSUB subtracts z from the run at m under K1.
#define WGSUB(z, m, t) \
	VMOVUPS.Z m, K1, t; \
	VSUBPS z, t, t; \
	VMOVUPS t, K1, m

// WGCOL adds B (q0..q3) of one tile column into its four taps: row 0
// += q0, row 1 += q1 - q2 + q3, row 2 += q1 + q2 - q0, row 3 -= q3; col
// m0..m3 the column's tap in each row.
#define WGCOL(m0, m1, m2, m3) \
	WGADD(Z16, m0, Z20); \
	VSUBPS Z18, Z17, Z21; \
	VADDPS Z19, Z21, Z21; \
	WGADD(Z21, m1, Z22); \
	VADDPS Z18, Z17, Z21; \
	VSUBPS Z16, Z21, Z21; \
	WGADD(Z21, m2, Z22); \
	WGSUB(Z19, m3, Z22)

// func wgingrad(dst *float32, ld int, src *float32, ss int, n int)
TEXT ·wgingrad(SB), NOSPLIT, $0-40
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
	LEAQ (R11)(R8*1), R12
	LEAQ (R12)(R8*1), R13
	LEAQ (R13)(R8*1), R14
	VXORPS Z24, Z24, Z24

wgingrad_loop:
	TESTQ CX, CX
	JLE wgingrad_done
	WGMASK(wgingrad_mask)
	WGLOAD16

	// column 0: q_r = p_r0
	VMOVAPS Z0, Z16
	VMOVAPS Z4, Z17
	VMOVAPS Z8, Z18
	VMOVAPS Z12, Z19
	WGCOL((R11), (R12), (R13), (R14))
	// column 1: q_r = p_r1 - p_r2 + p_r3
	VSUBPS Z2, Z1, Z16
	VADDPS Z3, Z16, Z16
	VSUBPS Z6, Z5, Z17
	VADDPS Z7, Z17, Z17
	VSUBPS Z10, Z9, Z18
	VADDPS Z11, Z18, Z18
	VSUBPS Z14, Z13, Z19
	VADDPS Z15, Z19, Z19
	WGCOL((R11)(R10*1), (R12)(R10*1), (R13)(R10*1), (R14)(R10*1))
	// column 2: q_r = p_r1 + p_r2 - p_r0
	VADDPS Z2, Z1, Z16
	VSUBPS Z0, Z16, Z16
	VADDPS Z6, Z5, Z17
	VSUBPS Z4, Z17, Z17
	VADDPS Z10, Z9, Z18
	VSUBPS Z8, Z18, Z18
	VADDPS Z14, Z13, Z19
	VSUBPS Z12, Z19, Z19
	WGCOL((R11)(R10*2), (R12)(R10*2), (R13)(R10*2), (R14)(R10*2))
	// column 3: q_r = -p_r3
	VSUBPS Z3, Z24, Z16
	VSUBPS Z7, Z24, Z17
	VSUBPS Z11, Z24, Z18
	VSUBPS Z15, Z24, Z19
	WGCOL((R11)(BX*1), (R12)(BX*1), (R13)(BX*1), (R14)(BX*1))

	ADDQ $64, R11
	ADDQ $64, R12
	ADDQ $64, R13
	ADDQ $64, R14
	ADDQ $64, SI
	SUBQ $16, CX
	JMP wgingrad_loop

wgingrad_done:
	VZEROUPPER
	RET

// func wgout(src *float32, ss int, dst *float32, ld int, bias *float32, n int)
TEXT ·wgout(SB), NOSPLIT, $0-48
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

wgout_loop:
	TESTQ CX, CX
	JLE wgout_done
	WGMASK(wgout_mask)
	WGLOAD16
	VMOVUPS.Z (R13), K1, Z24

	// A^T m: s_k = (m0k + m1k) + m2k, u_k = (m1k - m2k) - m3k
	VADDPS Z4, Z0, Z16
	VADDPS Z8, Z16, Z16
	VADDPS Z5, Z1, Z17
	VADDPS Z9, Z17, Z17
	VADDPS Z6, Z2, Z18
	VADDPS Z10, Z18, Z18
	VADDPS Z7, Z3, Z19
	VADDPS Z11, Z19, Z19
	VSUBPS Z8, Z4, Z20
	VSUBPS Z12, Z20, Z20
	VSUBPS Z9, Z5, Z21
	VSUBPS Z13, Z21, Z21
	VSUBPS Z10, Z6, Z22
	VSUBPS Z14, Z22, Z22
	VSUBPS Z11, Z7, Z23
	VSUBPS Z15, Z23, Z23

	// (A^T m) A + bias: y0 = ((p0 + p1) + p2) + b, y1 = ((p1 - p2) - p3) + b
	VADDPS Z17, Z16, Z0
	VADDPS Z18, Z0, Z0
	VADDPS Z24, Z0, Z0
	VSUBPS Z18, Z17, Z1
	VSUBPS Z19, Z1, Z1
	VADDPS Z24, Z1, Z1
	VADDPS Z21, Z20, Z2
	VADDPS Z22, Z2, Z2
	VADDPS Z24, Z2, Z2
	VSUBPS Z22, Z21, Z3
	VSUBPS Z23, Z3, Z3
	VADDPS Z24, Z3, Z3
	VMOVUPS Z0, K1, (R11)
	VMOVUPS Z1, K1, (R11)(R10*1)
	VMOVUPS Z2, K1, (R12)
	VMOVUPS Z3, K1, (R12)(R10*1)

	ADDQ $64, SI
	ADDQ $64, R11
	ADDQ $64, R12
	ADDQ $64, R13
	SUBQ $16, CX
	JMP wgout_loop

wgout_done:
	VZEROUPPER
	RET

// func wgoutgrad(src *float32, ld int, dst *float32, ds int, n int)
TEXT ·wgoutgrad(SB), NOSPLIT, $0-40
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
	VXORPS Z31, Z31, Z31

wgoutgrad_loop:
	TESTQ CX, CX
	JLE wgoutgrad_done
	WGMASK(wgoutgrad_mask)
	// dy's tile [a b; c d]
	VMOVUPS.Z (R11), K1, Z0
	VMOVUPS.Z (R11)(R10*1), K1, Z1
	VMOVUPS.Z (R12), K1, Z2
	VMOVUPS.Z (R12)(R10*1), K1, Z3
	// e = a + c, h = b + d, k = a - c, l = b - d
	VADDPS Z2, Z0, Z4
	VADDPS Z3, Z1, Z5
	VSUBPS Z2, Z0, Z6
	VSUBPS Z3, Z1, Z7
	// rows (p, q) -> p, p + q, p - q, -q: (a, b), (e, h), (k, l), then
	// -c, -c - d, d - c, d
	VADDPS Z1, Z0, Z8
	VSUBPS Z1, Z0, Z9
	VSUBPS Z1, Z31, Z10
	VADDPS Z5, Z4, Z11
	VSUBPS Z5, Z4, Z12
	VSUBPS Z5, Z31, Z13
	VADDPS Z7, Z6, Z14
	VSUBPS Z7, Z6, Z15
	VSUBPS Z7, Z31, Z16
	VSUBPS Z2, Z31, Z17
	VSUBPS Z3, Z17, Z18
	VSUBPS Z2, Z3, Z19
	MOVQ DI, DX
	VMOVUPS Z0, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z8, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z9, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z10, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z4, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z11, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z12, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z13, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z6, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z14, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z15, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z16, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z17, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z18, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z19, K1, (DX)
	ADDQ R9, DX
	VMOVUPS Z3, K1, (DX)

	ADDQ $64, R11
	ADDQ $64, R12
	ADDQ $64, DI
	SUBQ $16, CX
	JMP wgoutgrad_loop

wgoutgrad_done:
	VZEROUPPER
	RET
