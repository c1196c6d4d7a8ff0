//go:build !purego

#include "textflag.h"

// AVX-512 kernels for the exp-heavy loops: softmax, cross-entropy and exact
// GELU. Each walks its slices 16 values at a time (GELU and its gradient
// 32, two independent chains, then 16) and finishes with one masked
// vector, so any length works. vec.go has the pure-Go versions (the
// same formulas) and the contract of each.

// EXPCONST loads the constants of EXP into Z20-Z31.
#define EXPCONST \
	MOVL $0xc2d00000, AX; VPBROADCASTD AX, Z31; \
	MOVL $0x42b20000, AX; VPBROADCASTD AX, Z30; \
	MOVL $0x3fb8aa3b, AX; VPBROADCASTD AX, Z29; \
	MOVL $0xbf318000, AX; VPBROADCASTD AX, Z28; \
	MOVL $0x395e8083, AX; VPBROADCASTD AX, Z27; \
	MOVL $0x39506967, AX; VPBROADCASTD AX, Z26; \
	MOVL $0x3ab743ce, AX; VPBROADCASTD AX, Z25; \
	MOVL $0x3c088908, AX; VPBROADCASTD AX, Z24; \
	MOVL $0x3d2aa9c1, AX; VPBROADCASTD AX, Z23; \
	MOVL $0x3e2aaaaa, AX; VPBROADCASTD AX, Z22; \
	MOVL $0x3f000000, AX; VPBROADCASTD AX, Z21; \
	MOVL $0x3f800000, AX; VPBROADCASTD AX, Z20

// EXP sets x = e^x (x clamped to [-104, 89], NaN kept): x = n ln2 + r, e^r
// by Cephes' degree-6 polynomial, scaled by 2^n with VSCALEFPS.
#define EXP(x, t1, t2, t3) \
	VMAXPS x, Z31, x; \
	VMINPS x, Z30, x; \
	VMULPS Z29, x, t1; \
	VRNDSCALEPS $0, t1, t1; \
	VFMADD231PS t1, Z28, x; \
	VFMADD231PS t1, Z27, x; \
	VMOVAPS Z26, t2; \
	VFMADD213PS Z25, x, t2; \
	VFMADD213PS Z24, x, t2; \
	VFMADD213PS Z23, x, t2; \
	VFMADD213PS Z22, x, t2; \
	VFMADD213PS Z21, x, t2; \
	VMULPS x, x, t3; \
	VADDPS Z20, x, x; \
	VFMADD231PS t3, t2, x; \
	VSCALEFPS t1, x, x

// EXP2 is EXP on x (temporaries t1-t3) and on y (u1-u3), their
// instructions interleaved: the values are EXP's, bit for bit.
#define EXP2(x, y, t1, u1, t2, u2, t3, u3) \
	VMAXPS x, Z31, x; \
	VMAXPS y, Z31, y; \
	VMINPS x, Z30, x; \
	VMINPS y, Z30, y; \
	VMULPS Z29, x, t1; \
	VMULPS Z29, y, u1; \
	VRNDSCALEPS $0, t1, t1; \
	VRNDSCALEPS $0, u1, u1; \
	VFMADD231PS t1, Z28, x; \
	VFMADD231PS u1, Z28, y; \
	VFMADD231PS t1, Z27, x; \
	VFMADD231PS u1, Z27, y; \
	VMOVAPS Z26, t2; \
	VMOVAPS Z26, u2; \
	VFMADD213PS Z25, x, t2; \
	VFMADD213PS Z25, y, u2; \
	VFMADD213PS Z24, x, t2; \
	VFMADD213PS Z24, y, u2; \
	VFMADD213PS Z23, x, t2; \
	VFMADD213PS Z23, y, u2; \
	VFMADD213PS Z22, x, t2; \
	VFMADD213PS Z22, y, u2; \
	VFMADD213PS Z21, x, t2; \
	VFMADD213PS Z21, y, u2; \
	VMULPS x, x, t3; \
	VMULPS y, y, u3; \
	VADDPS Z20, x, x; \
	VADDPS Z20, y, y; \
	VFMADD231PS t3, t2, x; \
	VFMADD231PS u3, u2, y; \
	VSCALEFPS t1, x, x; \
	VSCALEFPS u1, y, y

// phiPoly holds the coefficients of PHI's erfc polynomial after the
// first (Z17), highest degree first, read by embedded broadcasts so that
// Z8-Z16 are free for a second vector.
DATA phiPoly<>+0(SB)/4, $0xbf527892
DATA phiPoly<>+4(SB)/4, $0x3fbe87b0
DATA phiPoly<>+8(SB)/4, $0xbf914e5d
DATA phiPoly<>+12(SB)/4, $0x3e8ec7cc
DATA phiPoly<>+16(SB)/4, $0xbe3ec24c
DATA phiPoly<>+20(SB)/4, $0x3dc636c9
DATA phiPoly<>+24(SB)/4, $0x3ebf88fb
DATA phiPoly<>+28(SB)/4, $0x3f8000c7
DATA phiPoly<>+32(SB)/4, $0xbfa1fc4e
GLOBL phiPoly<>(SB), RODATA|NOPTR, $36

// PHICONST loads the constants of PHI held in registers into Z7 and
// Z17-Z19.
#define PHICONST \
	MOVL $0x3ecc422a, AX; VPBROADCASTD AX, Z7; \
	MOVL $0x3e2ef945, AX; VPBROADCASTD AX, Z17; \
	MOVL $0x3f000000, AX; VPBROADCASTD AX, Z18; \
	MOVL $0x3f3504f3, AX; VPBROADCASTD AX, Z19

// PHI computes, for x in Z0: Z1 = |x|/sqrt2 and Z4 = Phi(x), the normal
// CDF, as 0.5*erfc(|x|/sqrt2) mirrored for x > 0, with the erfc of
// Numerical Recipes (fractional error < 1.2e-7). Clobbers Z2, Z3, Z5, Z6, K2.
#define PHI \
	VPSLLD $1, Z0, Z1; \
	VPSRLD $1, Z1, Z1; \
	VMULPS Z19, Z1, Z1; \
	VMOVAPS Z20, Z2; \
	VFMADD231PS Z18, Z1, Z2; \
	VDIVPS Z2, Z20, Z2; \
	VMOVAPS Z17, Z3; \
	VFMADD213PS.BCST phiPoly<>+0(SB), Z2, Z3; \
	VFMADD213PS.BCST phiPoly<>+4(SB), Z2, Z3; \
	VFMADD213PS.BCST phiPoly<>+8(SB), Z2, Z3; \
	VFMADD213PS.BCST phiPoly<>+12(SB), Z2, Z3; \
	VFMADD213PS.BCST phiPoly<>+16(SB), Z2, Z3; \
	VFMADD213PS.BCST phiPoly<>+20(SB), Z2, Z3; \
	VFMADD213PS.BCST phiPoly<>+24(SB), Z2, Z3; \
	VFMADD213PS.BCST phiPoly<>+28(SB), Z2, Z3; \
	VFMADD213PS.BCST phiPoly<>+32(SB), Z2, Z3; \
	VFNMADD231PS Z1, Z1, Z3; \
	EXP(Z3, Z4, Z5, Z6); \
	VMULPS Z2, Z3, Z3; \
	VMULPS Z18, Z3, Z3; \
	VSUBPS Z3, Z20, Z4; \
	VXORPS Z6, Z6, Z6; \
	VCMPPS $1, Z6, Z0, K2; \
	VMOVAPS Z3, K2, Z4

// PHI2 is PHI on Z0 and, in Z8-Z14 and K3 (the same roles: x in Z8,
// Phi(x) to Z12), on a second vector, their instructions interleaved:
// each PHI is a chain of about 40 dependent instructions, and two
// independent ones keep the vector units busy where one leaves them
// waiting on latencies. The values are PHI's, bit for bit.
#define PHI2 \
	VPSLLD $1, Z0, Z1; \
	VPSLLD $1, Z8, Z9; \
	VPSRLD $1, Z1, Z1; \
	VPSRLD $1, Z9, Z9; \
	VMULPS Z19, Z1, Z1; \
	VMULPS Z19, Z9, Z9; \
	VMOVAPS Z20, Z2; \
	VMOVAPS Z20, Z10; \
	VFMADD231PS Z18, Z1, Z2; \
	VFMADD231PS Z18, Z9, Z10; \
	VDIVPS Z2, Z20, Z2; \
	VDIVPS Z10, Z20, Z10; \
	VMOVAPS Z17, Z3; \
	VMOVAPS Z17, Z11; \
	VFMADD213PS.BCST phiPoly<>+0(SB), Z2, Z3; \
	VFMADD213PS.BCST phiPoly<>+0(SB), Z10, Z11; \
	VFMADD213PS.BCST phiPoly<>+4(SB), Z2, Z3; \
	VFMADD213PS.BCST phiPoly<>+4(SB), Z10, Z11; \
	VFMADD213PS.BCST phiPoly<>+8(SB), Z2, Z3; \
	VFMADD213PS.BCST phiPoly<>+8(SB), Z10, Z11; \
	VFMADD213PS.BCST phiPoly<>+12(SB), Z2, Z3; \
	VFMADD213PS.BCST phiPoly<>+12(SB), Z10, Z11; \
	VFMADD213PS.BCST phiPoly<>+16(SB), Z2, Z3; \
	VFMADD213PS.BCST phiPoly<>+16(SB), Z10, Z11; \
	VFMADD213PS.BCST phiPoly<>+20(SB), Z2, Z3; \
	VFMADD213PS.BCST phiPoly<>+20(SB), Z10, Z11; \
	VFMADD213PS.BCST phiPoly<>+24(SB), Z2, Z3; \
	VFMADD213PS.BCST phiPoly<>+24(SB), Z10, Z11; \
	VFMADD213PS.BCST phiPoly<>+28(SB), Z2, Z3; \
	VFMADD213PS.BCST phiPoly<>+28(SB), Z10, Z11; \
	VFMADD213PS.BCST phiPoly<>+32(SB), Z2, Z3; \
	VFMADD213PS.BCST phiPoly<>+32(SB), Z10, Z11; \
	VFNMADD231PS Z1, Z1, Z3; \
	VFNMADD231PS Z9, Z9, Z11; \
	EXP2(Z3, Z11, Z4, Z12, Z5, Z13, Z6, Z14); \
	VMULPS Z2, Z3, Z3; \
	VMULPS Z10, Z11, Z11; \
	VMULPS Z18, Z3, Z3; \
	VMULPS Z18, Z11, Z11; \
	VSUBPS Z3, Z20, Z4; \
	VSUBPS Z11, Z20, Z12; \
	VXORPS Z6, Z6, Z6; \
	VXORPS Z14, Z14, Z14; \
	VCMPPS $1, Z6, Z0, K2; \
	VCMPPS $1, Z14, Z8, K3; \
	VMOVAPS Z3, K2, Z4; \
	VMOVAPS Z11, K3, Z12

// TAILMASK sets K1 to the low CX bits.
#define TAILMASK \
	MOVL $1, AX; \
	SHLL CX, AX; \
	DECL AX; \
	KMOVW AX, K1

// HSUM sums the 16 lanes of Z17 into X0.
#define HSUM \
	VEXTRACTF64X4 $1, Z17, Y1; \
	VADDPS Y1, Y17, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS X1, X0, X0; \
	VMOVHLPS X0, X0, X1; \
	VADDPS X1, X0, X0; \
	VMOVSHDUP X0, X1; \
	VADDSS X1, X0, X0

// func vexpsub(y, x *float32, n int, m, s float32) float32
TEXT ·vexpsub(SB), NOSPLIT, $0-36
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS m+24(FP), Z18
	VBROADCASTSS s+28(FP), Z19
	EXPCONST
	VXORPS Z17, Z17, Z17
expsub_loop:
	CMPQ CX, $16
	JLT expsub_tail
	VMOVUPS (SI), Z0
	VSUBPS Z18, Z0, Z0
	EXP(Z0, Z1, Z2, Z3)
	VADDPS Z0, Z17, Z17
	VMULPS Z19, Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP expsub_loop
expsub_tail:
	TESTQ CX, CX
	JZ expsub_done
	TAILMASK
	VMOVUPS.Z (SI), K1, Z0
	VSUBPS Z18, Z0, Z0
	EXP(Z0, Z1, Z2, Z3)
	VMOVAPS.Z Z0, K1, Z0
	VADDPS Z0, Z17, Z17
	VMULPS Z19, Z0, Z0
	VMOVUPS Z0, K1, (DI)
expsub_done:
	HSUM
	MOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// func vexpsum(x *float32, n int, m float32) float32
TEXT ·vexpsum(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS m+16(FP), Z18
	EXPCONST
	VXORPS Z17, Z17, Z17
	VXORPS Z16, Z16, Z16
expsum_loop2:
	CMPQ CX, $32
	JLT expsum_loop
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z4
	VSUBPS Z18, Z0, Z0
	VSUBPS Z18, Z4, Z4
	EXP(Z0, Z1, Z2, Z3)
	EXP(Z4, Z5, Z6, Z7)
	VADDPS Z0, Z17, Z17
	VADDPS Z4, Z16, Z16
	ADDQ $128, SI
	SUBQ $32, CX
	JMP expsum_loop2
expsum_loop:
	CMPQ CX, $16
	JLT expsum_tail
	VMOVUPS (SI), Z0
	VSUBPS Z18, Z0, Z0
	EXP(Z0, Z1, Z2, Z3)
	VADDPS Z0, Z17, Z17
	ADDQ $64, SI
	SUBQ $16, CX
	JMP expsum_loop
expsum_tail:
	TESTQ CX, CX
	JZ expsum_done
	TAILMASK
	VMOVUPS.Z (SI), K1, Z0
	VSUBPS Z18, Z0, Z0
	EXP(Z0, Z1, Z2, Z3)
	VMOVAPS.Z Z0, K1, Z0
	VADDPS Z0, Z17, Z17
expsum_done:
	VADDPS Z16, Z17, Z17
	HSUM
	MOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func vmax(x *float32, n int) float32
TEXT ·vmax(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVL $0xff800000, AX
	VPBROADCASTD AX, Z0
	VMOVAPS Z0, Z1
max_loop2:
	CMPQ CX, $32
	JLT max_loop
	VMAXPS (SI), Z0, Z0
	VMAXPS 64(SI), Z1, Z1
	ADDQ $128, SI
	SUBQ $32, CX
	JMP max_loop2
max_loop:
	CMPQ CX, $16
	JLT max_tail
	VMAXPS (SI), Z0, Z0
	ADDQ $64, SI
	SUBQ $16, CX
	JMP max_loop
max_tail:
	TESTQ CX, CX
	JZ max_done
	TAILMASK
	VMAXPS (SI), Z0, K1, Z0
max_done:
	VMAXPS Z1, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VMOVHLPS X0, X0, X1
	VMAXPS X1, X0, X0
	VMOVSHDUP X0, X1
	VMAXSS X1, X0, X0
	MOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// func vgelu(y, x *float32, n int)
TEXT ·vgelu(SB), NOSPLIT, $0-24
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	EXPCONST
	PHICONST
gelu_loop2:
	CMPQ CX, $32
	JLT gelu_loop
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z8
	PHI2
	VMULPS Z4, Z0, Z0
	VMULPS Z12, Z8, Z8
	VMOVUPS Z0, (DI)
	VMOVUPS Z8, 64(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP gelu_loop2
gelu_loop:
	CMPQ CX, $16
	JLT gelu_tail
	VMOVUPS (SI), Z0
	PHI
	VMULPS Z4, Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP gelu_loop
gelu_tail:
	TESTQ CX, CX
	JZ gelu_done
	TAILMASK
	VMOVUPS.Z (SI), K1, Z0
	PHI
	VMULPS Z4, Z0, Z0
	VMOVUPS Z0, K1, (DI)
gelu_done:
	VZEROUPPER
	RET

// GELUGRAD: Z4 = Phi(x) + x*phi(x) for x in Z0 (after PHI), with
// phi(x) = exp(-z*z)/sqrt(2 pi), z = |x|/sqrt2 in Z1.
#define GELUGRAD \
	PHI; \
	VXORPS Z5, Z5, Z5; \
	VFNMADD231PS Z1, Z1, Z5; \
	EXP(Z5, Z6, Z2, Z3); \
	VMULPS Z7, Z5, Z5; \
	VFMADD231PS Z5, Z0, Z4

// GELUGRAD2 is GELUGRAD on Z0 (to Z4) and Z8 (to Z12), interleaved as
// PHI2.
#define GELUGRAD2 \
	PHI2; \
	VXORPS Z5, Z5, Z5; \
	VXORPS Z13, Z13, Z13; \
	VFNMADD231PS Z1, Z1, Z5; \
	VFNMADD231PS Z9, Z9, Z13; \
	EXP2(Z5, Z13, Z6, Z14, Z2, Z10, Z3, Z11); \
	VMULPS Z7, Z5, Z5; \
	VMULPS Z7, Z13, Z13; \
	VFMADD231PS Z5, Z0, Z4; \
	VFMADD231PS Z13, Z8, Z12

// func vgelugrad(dx, x, dy *float32, n int, set bool)
// dx += dy * GELU'(x); with set, dx = 0 + dy * GELU'(x) (dx's old values
// not read: a new gradient, bit for bit what adding into zeros gives).
TEXT ·vgelugrad(SB), NOSPLIT, $0-33
	MOVQ dx+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ dy+16(FP), DX
	MOVQ n+24(FP), CX
	MOVBQZX set+32(FP), R8
	EXPCONST
	PHICONST
gelugrad_loop2:
	CMPQ CX, $32
	JLT gelugrad_loop
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z8
	GELUGRAD2
	TESTQ R8, R8
	JNE gelugrad_set2
	VMOVUPS (DI), Z6
	VMOVUPS 64(DI), Z14
	JMP gelugrad_add2
gelugrad_set2:
	VPXORD Z6, Z6, Z6
	VPXORD Z14, Z14, Z14
gelugrad_add2:
	VFMADD231PS (DX), Z4, Z6
	VFMADD231PS 64(DX), Z12, Z14
	VMOVUPS Z6, (DI)
	VMOVUPS Z14, 64(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	ADDQ $128, DX
	SUBQ $32, CX
	JMP gelugrad_loop2
gelugrad_loop:
	CMPQ CX, $16
	JLT gelugrad_tail
	VMOVUPS (SI), Z0
	GELUGRAD
	VPXORD Z6, Z6, Z6
	TESTQ R8, R8
	JNE gelugrad_add
	VMOVUPS (DI), Z6
gelugrad_add:
	VFMADD231PS (DX), Z4, Z6
	VMOVUPS Z6, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $64, DX
	SUBQ $16, CX
	JMP gelugrad_loop
gelugrad_tail:
	TESTQ CX, CX
	JZ gelugrad_done
	TAILMASK
	VMOVUPS.Z (SI), K1, Z0
	GELUGRAD
	VPXORD Z6, Z6, Z6
	TESTQ R8, R8
	JNE gelugrad_addtail
	VMOVUPS.Z (DI), K1, Z6
gelugrad_addtail:
	VMOVUPS.Z (DX), K1, Z5
	VFMADD231PS Z5, Z4, Z6
	VMOVUPS Z6, K1, (DI)
gelugrad_done:
	VZEROUPPER
	RET

// func vaxpy(y, x *float32, n int, a float32)
TEXT ·vaxpy(SB), NOSPLIT, $0-28
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS a+24(FP), Z31
axpy_loop4:
	CMPQ CX, $64
	JLT axpy_loop
	VMOVUPS (DI), Z0
	VMOVUPS 64(DI), Z1
	VMOVUPS 128(DI), Z2
	VMOVUPS 192(DI), Z3
	VFMADD231PS (SI), Z31, Z0
	VFMADD231PS 64(SI), Z31, Z1
	VFMADD231PS 128(SI), Z31, Z2
	VFMADD231PS 192(SI), Z31, Z3
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $64, CX
	JMP axpy_loop4
axpy_loop:
	CMPQ CX, $16
	JLT axpy_tail
	VMOVUPS (DI), Z0
	VFMADD231PS (SI), Z31, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP axpy_loop
axpy_tail:
	TESTQ CX, CX
	JZ axpy_done
	TAILMASK
	VMOVUPS.Z (DI), K1, Z0
	VMOVUPS.Z (SI), K1, Z1
	VFMADD231PS Z1, Z31, Z0
	VMOVUPS Z0, K1, (DI)
axpy_done:
	VZEROUPPER
	RET

// func vdot(x, y *float32, n int) float32
TEXT ·vdot(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Z17, Z17, Z17
	VXORPS Z18, Z18, Z18
	VXORPS Z19, Z19, Z19
	VXORPS Z20, Z20, Z20
dot_loop4:
	CMPQ CX, $64
	JLT dot_loop
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	VMOVUPS 128(SI), Z2
	VMOVUPS 192(SI), Z3
	VFMADD231PS (DI), Z0, Z17
	VFMADD231PS 64(DI), Z1, Z18
	VFMADD231PS 128(DI), Z2, Z19
	VFMADD231PS 192(DI), Z3, Z20
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $64, CX
	JMP dot_loop4
dot_loop:
	CMPQ CX, $16
	JLT dot_tail
	VMOVUPS (SI), Z0
	VFMADD231PS (DI), Z0, Z17
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP dot_loop
dot_tail:
	TESTQ CX, CX
	JZ dot_done
	TAILMASK
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (DI), K1, Z1
	VFMADD231PS Z1, Z0, Z18
dot_done:
	VADDPS Z18, Z17, Z17
	VADDPS Z20, Z19, Z19
	VADDPS Z19, Z17, Z17
	HSUM
	MOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func vlnfwd(y, x, w, b *float32, n int, eps float32) (mean, rstd float32)
// LayerNorm of one row: mean and variance in two passes, then
// y = (x-mean)*rstd*w + b; w and b may be nil.
TEXT ·vlnfwd(SB), NOSPLIT, $0-56
	MOVQ x+8(FP), SI
	MOVQ n+32(FP), CX
	// pass 1: sum
	VXORPS Z17, Z17, Z17
	MOVQ SI, R8
	MOVQ CX, R9
ln_sum:
	CMPQ R9, $16
	JLT ln_sumtail
	VADDPS (R8), Z17, Z17
	ADDQ $64, R8
	SUBQ $16, R9
	JMP ln_sum
ln_sumtail:
	TESTQ R9, R9
	JZ ln_sumdone
	MOVQ R9, CX
	TAILMASK
	VMOVUPS.Z (R8), K1, Z2
	VADDPS Z2, Z17, Z17
ln_sumdone:
	HSUM
	MOVQ n+32(FP), CX
	CVTSQ2SS CX, X3
	DIVSS X3, X0
	VBROADCASTSS X0, Z18
	MOVSS X0, mean+48(FP)
	// pass 2: sum of squared deviations
	VXORPS Z17, Z17, Z17
	MOVQ SI, R8
	MOVQ CX, R9
ln_var:
	CMPQ R9, $16
	JLT ln_vartail
	VMOVUPS (R8), Z2
	VSUBPS Z18, Z2, Z2
	VFMADD231PS Z2, Z2, Z17
	ADDQ $64, R8
	SUBQ $16, R9
	JMP ln_var
ln_vartail:
	TESTQ R9, R9
	JZ ln_vardone
	MOVQ R9, CX
	TAILMASK
	VMOVUPS.Z (R8), K1, Z2
	VSUBPS Z18, Z2, Z2
	VMOVAPS.Z Z2, K1, Z2
	VFMADD231PS Z2, Z2, Z17
ln_vardone:
	HSUM
	MOVQ n+32(FP), CX
	CVTSQ2SS CX, X3
	DIVSS X3, X0
	ADDSS eps+40(FP), X0
	SQRTSS X0, X0
	MOVL $0x3f800000, AX
	VPBROADCASTD AX, X3
	DIVSS X0, X3
	MOVSS X3, rstd+52(FP)
	VBROADCASTSS X3, Z19
	// pass 3: normalise
	MOVQ y+0(FP), DI
	MOVQ w+16(FP), DX
	MOVQ b+24(FP), BX
	MOVQ CX, R9
	XORQ R10, R10
ln_out:
	CMPQ R9, $16
	JLT ln_outtail
	MOVL $0xffff, AX
	KMOVW AX, K1
	JMP ln_one
ln_outtail:
	TESTQ R9, R9
	JZ ln_done
	MOVQ R9, CX
	TAILMASK
ln_one:
	VMOVUPS.Z (SI)(R10*1), K1, Z2
	VSUBPS Z18, Z2, Z2
	VMULPS Z19, Z2, Z2
	TESTQ DX, DX
	JZ ln_now
	VMOVUPS.Z (DX)(R10*1), K1, Z3
	VMULPS Z3, Z2, Z2
ln_now:
	TESTQ BX, BX
	JZ ln_nob
	VMOVUPS.Z (BX)(R10*1), K1, Z3
	VADDPS Z3, Z2, Z2
ln_nob:
	VMOVUPS Z2, K1, (DI)(R10*1)
	ADDQ $64, R10
	SUBQ $16, R9
	JG ln_out
ln_done:
	VZEROUPPER
	RET

// func vlngrad(dx, x, gr, w, pw, pb *float32, n int, mean, rstd float32)
// LayerNorm backward of one row: pw += g*xhat, pb += g, and, if dx is not
// nil, dx += rstd*(g*w - mean(g*w) - xhat*mean(g*w*xhat)); w may be nil.
TEXT ·vlngrad(SB), NOSPLIT, $0-64
	MOVQ x+8(FP), SI
	MOVQ gr+16(FP), DX
	MOVQ w+24(FP), BX
	MOVQ pw+32(FP), R11
	MOVQ pb+40(FP), R12
	MOVQ n+48(FP), R9
	VBROADCASTSS mean+56(FP), Z18
	VBROADCASTSS rstd+60(FP), Z19
	VXORPS Z17, Z17, Z17 // sum g*w
	VXORPS Z16, Z16, Z16 // sum g*w*xhat
	XORQ R10, R10
lng_a:
	CMPQ R9, $16
	JLT lng_atail
	MOVL $0xffff, AX
	KMOVW AX, K1
	JMP lng_aone
lng_atail:
	TESTQ R9, R9
	JZ lng_adone
	MOVQ R9, CX
	TAILMASK
lng_aone:
	VMOVUPS.Z (SI)(R10*1), K1, Z2
	VSUBPS Z18, Z2, Z2
	VMULPS Z19, Z2, Z2           // xhat
	VMOVUPS.Z (DX)(R10*1), K1, Z3 // g
	VMOVUPS.Z (R11)(R10*1), K1, Z4
	VFMADD231PS Z3, Z2, Z4
	VMOVUPS Z4, K1, (R11)(R10*1)
	VMOVUPS.Z (R12)(R10*1), K1, Z4
	VADDPS Z3, Z4, Z4
	VMOVUPS Z4, K1, (R12)(R10*1)
	TESTQ BX, BX
	JZ lng_anow
	VMOVUPS.Z (BX)(R10*1), K1, Z4
	VMULPS Z4, Z3, Z3
lng_anow:
	VADDPS Z3, Z17, Z17
	VFMADD231PS Z3, Z2, Z16
	ADDQ $64, R10
	SUBQ $16, R9
	JG lng_a
lng_adone:
	MOVQ dx+0(FP), DI
	TESTQ DI, DI
	JZ lng_done
	HSUM
	VMOVAPS Z16, Z17
	VMOVAPS X0, X5
	HSUM
	// X5 = sum g*w, X0 = sum g*w*xhat; c2 = -rstd*sg/n, c3 = -rstd*sgn/n
	MOVQ n+48(FP), CX
	CVTSQ2SS CX, X3
	MOVSS rstd+60(FP), X4
	DIVSS X3, X4
	MULSS X4, X5
	MULSS X4, X0
	VBROADCASTSS X5, Z20
	VBROADCASTSS X0, Z21
	MOVQ n+48(FP), R9
	XORQ R10, R10
lng_b:
	CMPQ R9, $16
	JLT lng_btail
	MOVL $0xffff, AX
	KMOVW AX, K1
	JMP lng_bone
lng_btail:
	TESTQ R9, R9
	JZ lng_done
	MOVQ R9, CX
	TAILMASK
lng_bone:
	VMOVUPS.Z (SI)(R10*1), K1, Z2
	VSUBPS Z18, Z2, Z2
	VMULPS Z19, Z2, Z2           // xhat
	VMOVUPS.Z (DX)(R10*1), K1, Z3 // g
	TESTQ BX, BX
	JZ lng_bnow
	VMOVUPS.Z (BX)(R10*1), K1, Z4
	VMULPS Z4, Z3, Z3
lng_bnow:
	VMULPS Z19, Z3, Z3           // rstd*g*w
	VSUBPS Z20, Z3, Z3
	VFNMADD231PS Z21, Z2, Z3     // - xhat*c3
	VMOVUPS.Z (DI)(R10*1), K1, Z4
	VADDPS Z3, Z4, Z4
	VMOVUPS Z4, K1, (DI)(R10*1)
	ADDQ $64, R10
	SUBQ $16, R9
	JG lng_b
lng_done:
	VZEROUPPER
	RET

// func vadamw(p, gr, m, v *float32, n int, h *[6]float32)
// One AdamW step over n values; h holds beta1, beta2, eps, the step size
// (lr / bias correction 1), sqrt(bias correction 2) and the decay factor.
TEXT ·vadamw(SB), NOSPLIT, $0-48
	MOVQ p+0(FP), DI
	MOVQ gr+8(FP), SI
	MOVQ m+16(FP), DX
	MOVQ v+24(FP), BX
	MOVQ n+32(FP), R9
	MOVQ h+40(FP), AX
	VBROADCASTSS 0(AX), Z20  // b1
	VBROADCASTSS 4(AX), Z21  // b2
	VBROADCASTSS 8(AX), Z22  // eps
	VBROADCASTSS 12(AX), Z23 // step size
	VBROADCASTSS 16(AX), Z24 // sqrt(bc2)
	VBROADCASTSS 20(AX), Z25 // decay
	MOVL $0x3f800000, AX
	VPBROADCASTD AX, Z26
	VSUBPS Z20, Z26, Z27     // 1-b1
	VSUBPS Z21, Z26, Z28     // 1-b2
	XORQ R10, R10
adam_loop:
	CMPQ R9, $16
	JLT adam_tail
	MOVL $0xffff, AX
	KMOVW AX, K1
	JMP adam_one
adam_tail:
	TESTQ R9, R9
	JZ adam_done
	MOVQ R9, CX
	TAILMASK
adam_one:
	VMOVUPS.Z (SI)(R10*1), K1, Z0 // g
	VMOVUPS.Z (DX)(R10*1), K1, Z1 // m
	VMOVUPS.Z (BX)(R10*1), K1, Z2 // v
	VMULPS Z20, Z1, Z1
	VMULPS Z27, Z0, Z3
	VADDPS Z3, Z1, Z1             // m = b1*m + (1-b1)*g
	VMULPS Z21, Z2, Z2
	VMULPS Z28, Z0, Z3
	VMULPS Z0, Z3, Z3
	VADDPS Z3, Z2, Z2             // v = b2*v + (1-b2)*g*g
	VMOVUPS Z1, K1, (DX)(R10*1)
	VMOVUPS Z2, K1, (BX)(R10*1)
	VSQRTPS Z2, Z3
	VDIVPS Z24, Z3, Z3
	VADDPS Z22, Z3, Z3            // denom
	VMULPS Z23, Z1, Z1
	VDIVPS Z3, Z1, Z1             // step*m/denom
	VMOVUPS.Z (DI)(R10*1), K1, Z4
	VMULPS Z25, Z4, Z4
	VSUBPS Z1, Z4, Z4
	VMOVUPS Z4, K1, (DI)(R10*1)
	ADDQ $64, R10
	SUBQ $16, R9
	JG adam_loop
adam_done:
	VZEROUPPER
	RET

// func vaxpy4(c, b *float32, ldb, n int, x *[4]float32)
// c[j] += x[0]*b[j] + x[1]*b[ldb+j] + x[2]*b[2*ldb+j] + x[3]*b[3*ldb+j]
// for j < n: four rows of a matrix-vector product per pass over c.
TEXT ·vaxpy4(SB), NOSPLIT, $0-40
	MOVQ c+0(FP), DI
	MOVQ b+8(FP), SI
	MOVQ ldb+16(FP), R8
	SHLQ $2, R8
	MOVQ n+24(FP), R9
	MOVQ x+32(FP), AX
	VBROADCASTSS 0(AX), Z20
	VBROADCASTSS 4(AX), Z21
	VBROADCASTSS 8(AX), Z22
	VBROADCASTSS 12(AX), Z23
	LEAQ (SI)(R8*1), R11
	LEAQ (R11)(R8*1), R12
	LEAQ (R12)(R8*1), R13
	XORQ R10, R10
axpy4_loop:
	CMPQ R9, $16
	JLT axpy4_tail
	MOVL $0xffff, AX
	KMOVW AX, K1
	JMP axpy4_one
axpy4_tail:
	TESTQ R9, R9
	JZ axpy4_done
	MOVQ R9, CX
	TAILMASK
axpy4_one:
	VMOVUPS.Z (DI)(R10*1), K1, Z0
	VMOVUPS.Z (SI)(R10*1), K1, Z1
	VMOVUPS.Z (R11)(R10*1), K1, Z2
	VMOVUPS.Z (R12)(R10*1), K1, Z3
	VMOVUPS.Z (R13)(R10*1), K1, Z4
	VFMADD231PS Z1, Z20, Z0
	VFMADD231PS Z2, Z21, Z0
	VFMADD231PS Z3, Z22, Z0
	VFMADD231PS Z4, Z23, Z0
	VMOVUPS Z0, K1, (DI)(R10*1)
	ADDQ $64, R10
	SUBQ $16, R9
	JG axpy4_loop
axpy4_done:
	VZEROUPPER
	RET

// func vsilu(y, x *float32, n int)
// y = x / (1 + e^-x).
TEXT ·vsilu(SB), NOSPLIT, $0-24
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	EXPCONST
	VXORPS Z16, Z16, Z16
silu_loop:
	CMPQ CX, $16
	JLT silu_tail
	VMOVUPS (SI), Z0
	VSUBPS Z0, Z16, Z1
	EXP(Z1, Z2, Z3, Z4)
	VADDPS Z20, Z1, Z1
	VDIVPS Z1, Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP silu_loop
silu_tail:
	TESTQ CX, CX
	JZ silu_done
	TAILMASK
	VMOVUPS.Z (SI), K1, Z0
	VSUBPS Z0, Z16, Z1
	EXP(Z1, Z2, Z3, Z4)
	VADDPS Z20, Z1, Z1
	VDIVPS Z1, Z0, Z0
	VMOVUPS Z0, K1, (DI)
silu_done:
	VZEROUPPER
	RET

// func vscal(x *float32, n int, a float32)
// x[i] *= a.
TEXT ·vscal(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSS a+16(FP), Z31
scal_loop4:
	CMPQ CX, $64
	JLT scal_loop
	VMULPS (DI), Z31, Z0
	VMULPS 64(DI), Z31, Z1
	VMULPS 128(DI), Z31, Z2
	VMULPS 192(DI), Z31, Z3
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	ADDQ $256, DI
	SUBQ $64, CX
	JMP scal_loop4
scal_loop:
	CMPQ CX, $16
	JLT scal_tail
	VMULPS (DI), Z31, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, DI
	SUBQ $16, CX
	JMP scal_loop
scal_tail:
	TESTQ CX, CX
	JZ scal_done
	TAILMASK
	VMOVUPS.Z (DI), K1, Z0
	VMULPS Z0, Z31, Z0
	VMOVUPS Z0, K1, (DI)
scal_done:
	VZEROUPPER
	RET

// func vsoftgrad(d, p *float32, n int, s, scale float32)
// d[i] = p[i] * (d[i] - s) * scale, rounded after each operation as Go
// rounds the same expression.
TEXT ·vsoftgrad(SB), NOSPLIT, $0-32
	MOVQ d+0(FP), DI
	MOVQ p+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS s+24(FP), Z30
	VBROADCASTSS scale+28(FP), Z31
softgrad_loop2:
	CMPQ CX, $32
	JLT softgrad_loop
	VMOVUPS (DI), Z0
	VMOVUPS 64(DI), Z1
	VSUBPS Z30, Z0, Z0
	VSUBPS Z30, Z1, Z1
	VMULPS (SI), Z0, Z0
	VMULPS 64(SI), Z1, Z1
	VMULPS Z31, Z0, Z0
	VMULPS Z31, Z1, Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP softgrad_loop2
softgrad_loop:
	CMPQ CX, $16
	JLT softgrad_tail
	VMOVUPS (DI), Z0
	VSUBPS Z30, Z0, Z0
	VMULPS (SI), Z0, Z0
	VMULPS Z31, Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP softgrad_loop
softgrad_tail:
	TESTQ CX, CX
	JZ softgrad_done
	TAILMASK
	VMOVUPS.Z (DI), K1, Z0
	VMOVUPS.Z (SI), K1, Z1
	VSUBPS Z30, Z0, Z0
	VMULPS Z1, Z0, Z0
	VMULPS Z31, Z0, Z0
	VMOVUPS Z0, K1, (DI)
softgrad_done:
	VZEROUPPER
	RET

// func vrelugrad(d, x, gr *float32, n int)
// d += gr where x > 0 (ordered: NaN not), 16 values a vector.
TEXT ·vrelugrad(SB), NOSPLIT, $0-32
	MOVQ d+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ gr+16(FP), DX
	MOVQ n+24(FP), CX
	VXORPS Z31, Z31, Z31
relugrad_loop:
	CMPQ CX, $16
	JLT relugrad_tail
	VMOVUPS (SI), Z0
	VCMPPS $0x1e, Z31, Z0, K2
	VMOVUPS (DI), Z1
	VADDPS (DX), Z1, K2, Z1
	VMOVUPS Z1, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $64, DX
	SUBQ $16, CX
	JMP relugrad_loop
relugrad_tail:
	TESTQ CX, CX
	JZ relugrad_done
	TAILMASK
	VMOVUPS.Z (SI), K1, Z0
	VCMPPS $0x1e, Z31, Z0, K2 // the lanes past n read 0: not > 0
	VMOVUPS.Z (DI), K1, Z1
	VADDPS (DX), Z1, K2, Z1
	VMOVUPS Z1, K1, (DI)
relugrad_done:
	VZEROUPPER
	RET

// func vrelu(y, x *float32, n int)
// y = max(x, 0) as Go's max: VMAXPS keeps x where 0 > x is false (x >= 0
// and NaN), then adding +0 turns -0 into +0 and changes nothing else; 16
// values a vector.
TEXT ·vrelu(SB), NOSPLIT, $0-24
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VXORPS Z31, Z31, Z31
relu_loop:
	CMPQ CX, $16
	JLT relu_tail
	VMAXPS (SI), Z31, Z0
	VADDPS Z31, Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP relu_loop
relu_tail:
	TESTQ CX, CX
	JZ relu_done
	TAILMASK
	VMOVUPS.Z (SI), K1, Z1
	VMAXPS Z1, Z31, Z0
	VADDPS Z31, Z0, Z0
	VMOVUPS Z0, K1, (DI)
relu_done:
	VZEROUPPER
	RET

// ilvIndex: VPERMI2PS's indices interleaving two vectors a (0-15) and b
// (16-31): a0 b0 a1 b1 ... a7 b7, then a8 b8 ... a15 b15.
DATA ilvIndex<>+0(SB)/8, $0x0000001000000000
DATA ilvIndex<>+8(SB)/8, $0x0000001100000001
DATA ilvIndex<>+16(SB)/8, $0x0000001200000002
DATA ilvIndex<>+24(SB)/8, $0x0000001300000003
DATA ilvIndex<>+32(SB)/8, $0x0000001400000004
DATA ilvIndex<>+40(SB)/8, $0x0000001500000005
DATA ilvIndex<>+48(SB)/8, $0x0000001600000006
DATA ilvIndex<>+56(SB)/8, $0x0000001700000007
DATA ilvIndex<>+64(SB)/8, $0x0000001800000008
DATA ilvIndex<>+72(SB)/8, $0x0000001900000009
DATA ilvIndex<>+80(SB)/8, $0x0000001a0000000a
DATA ilvIndex<>+88(SB)/8, $0x0000001b0000000b
DATA ilvIndex<>+96(SB)/8, $0x0000001c0000000c
DATA ilvIndex<>+104(SB)/8, $0x0000001d0000000d
DATA ilvIndex<>+112(SB)/8, $0x0000001e0000000e
DATA ilvIndex<>+120(SB)/8, $0x0000001f0000000f
GLOBL ilvIndex<>(SB), RODATA|NOPTR, $128

// func vinterleave2(d, a, b *float32, n int, acc bool)
// d[2i] = a[i], d[2i+1] = b[i] for i < n (added into d with acc), 16
// values of each a vector.
TEXT ·vinterleave2(SB), NOSPLIT, $0-33
	MOVQ d+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	MOVBLZX acc+32(FP), R11
	VMOVUPS ilvIndex<>+0(SB), Z30
	VMOVUPS ilvIndex<>+64(SB), Z31
ilv_loop:
	CMPQ CX, $16
	JLT ilv_tail
	VMOVUPS (SI), Z0
	VMOVUPS (DX), Z1
	VMOVAPS Z30, Z2
	VPERMI2PS Z1, Z0, Z2
	VMOVAPS Z31, Z3
	VPERMI2PS Z1, Z0, Z3
	TESTQ R11, R11
	JZ ilv_store
	VADDPS (DI), Z2, Z2
	VADDPS 64(DI), Z3, Z3
ilv_store:
	VMOVUPS Z2, (DI)
	VMOVUPS Z3, 64(DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $128, DI
	SUBQ $16, CX
	JMP ilv_loop
ilv_tail:
	TESTQ CX, CX
	JZ ilv_done
	TAILMASK
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (DX), K1, Z1
	VMOVAPS Z30, Z2
	VPERMI2PS Z1, Z0, Z2
	VMOVAPS Z31, Z3
	VPERMI2PS Z1, Z0, Z3
	// 2n values left: K2 the first vector's lanes, K3 the second's
	LEAQ (CX)(CX*1), CX
	MOVL $0xffff, AX
	KMOVW AX, K2
	XORL AX, AX
	CMPQ CX, $16
	JGE ilv_masks
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K2
	XORL AX, AX
	JMP ilv_k3
ilv_masks:
	SUBQ $16, CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
ilv_k3:
	KMOVW AX, K3
	TESTQ R11, R11
	JZ ilv_tailstore
	VMOVUPS.Z (DI), K2, Z4
	VADDPS Z4, Z2, Z2
	VMOVUPS.Z 64(DI), K3, Z5
	VADDPS Z5, Z3, Z3
ilv_tailstore:
	VMOVUPS Z2, K2, (DI)
	VMOVUPS Z3, K3, 64(DI)
ilv_done:
	VZEROUPPER
	RET
