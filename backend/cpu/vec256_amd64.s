//go:build !purego

#include "textflag.h"

// AVX2+FMA versions of the kernels of vec_amd64.s, for machines without
// AVX-512 (haveVec256: AVX2 and FMA, no AVX-512F). Each has the contract
// of its AVX-512 sibling (vec256 appended to the name) and the same
// method: EXP256 is EXP with its 2^n scaling done by two exponent
// multiplications (VSCALEFPS's single rounding, denormals and overflow
// included), PHI256 is PHI, and the reductions keep 8-lane partial sums
// added in a tree at the end. The vectors are 8 values; the last partial
// vector of a slice is loaded and stored with VMASKMOVPS (masked lanes
// read as zero, not written, never touched in memory), so any length
// works. There are 16 vector registers, so the constants are read from
// memory (c256, one 32-byte vector each).

// c256: the kernels' constants, 8 copies each.
// -104: EXP's lower clamp
DATA c256<>+0(SB)/8, $0xc2d00000c2d00000
DATA c256<>+8(SB)/8, $0xc2d00000c2d00000
DATA c256<>+16(SB)/8, $0xc2d00000c2d00000
DATA c256<>+24(SB)/8, $0xc2d00000c2d00000
// 89: its upper clamp
DATA c256<>+32(SB)/8, $0x42b2000042b20000
DATA c256<>+40(SB)/8, $0x42b2000042b20000
DATA c256<>+48(SB)/8, $0x42b2000042b20000
DATA c256<>+56(SB)/8, $0x42b2000042b20000
// log2(e)
DATA c256<>+64(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA c256<>+72(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA c256<>+80(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA c256<>+88(SB)/8, $0x3fb8aa3b3fb8aa3b
// -ln2, high part
DATA c256<>+96(SB)/8, $0xbf318000bf318000
DATA c256<>+104(SB)/8, $0xbf318000bf318000
DATA c256<>+112(SB)/8, $0xbf318000bf318000
DATA c256<>+120(SB)/8, $0xbf318000bf318000
// -ln2, low part
DATA c256<>+128(SB)/8, $0x395e8083395e8083
DATA c256<>+136(SB)/8, $0x395e8083395e8083
DATA c256<>+144(SB)/8, $0x395e8083395e8083
DATA c256<>+152(SB)/8, $0x395e8083395e8083
// Cephes' exp polynomial, highest degree first
DATA c256<>+160(SB)/8, $0x3950696739506967
DATA c256<>+168(SB)/8, $0x3950696739506967
DATA c256<>+176(SB)/8, $0x3950696739506967
DATA c256<>+184(SB)/8, $0x3950696739506967
DATA c256<>+192(SB)/8, $0x3ab743ce3ab743ce
DATA c256<>+200(SB)/8, $0x3ab743ce3ab743ce
DATA c256<>+208(SB)/8, $0x3ab743ce3ab743ce
DATA c256<>+216(SB)/8, $0x3ab743ce3ab743ce
DATA c256<>+224(SB)/8, $0x3c0889083c088908
DATA c256<>+232(SB)/8, $0x3c0889083c088908
DATA c256<>+240(SB)/8, $0x3c0889083c088908
DATA c256<>+248(SB)/8, $0x3c0889083c088908
DATA c256<>+256(SB)/8, $0x3d2aa9c13d2aa9c1
DATA c256<>+264(SB)/8, $0x3d2aa9c13d2aa9c1
DATA c256<>+272(SB)/8, $0x3d2aa9c13d2aa9c1
DATA c256<>+280(SB)/8, $0x3d2aa9c13d2aa9c1
DATA c256<>+288(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA c256<>+296(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA c256<>+304(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA c256<>+312(SB)/8, $0x3e2aaaaa3e2aaaaa
// 0.5
DATA c256<>+320(SB)/8, $0x3f0000003f000000
DATA c256<>+328(SB)/8, $0x3f0000003f000000
DATA c256<>+336(SB)/8, $0x3f0000003f000000
DATA c256<>+344(SB)/8, $0x3f0000003f000000
// 1
DATA c256<>+352(SB)/8, $0x3f8000003f800000
DATA c256<>+360(SB)/8, $0x3f8000003f800000
DATA c256<>+368(SB)/8, $0x3f8000003f800000
DATA c256<>+376(SB)/8, $0x3f8000003f800000
// 127, the exponent bias (int32)
DATA c256<>+384(SB)/8, $0x0000007f0000007f
DATA c256<>+392(SB)/8, $0x0000007f0000007f
DATA c256<>+400(SB)/8, $0x0000007f0000007f
DATA c256<>+408(SB)/8, $0x0000007f0000007f
// all bits but the sign
DATA c256<>+416(SB)/8, $0x7fffffff7fffffff
DATA c256<>+424(SB)/8, $0x7fffffff7fffffff
DATA c256<>+432(SB)/8, $0x7fffffff7fffffff
DATA c256<>+440(SB)/8, $0x7fffffff7fffffff
// 1/sqrt2
DATA c256<>+448(SB)/8, $0x3f3504f33f3504f3
DATA c256<>+456(SB)/8, $0x3f3504f33f3504f3
DATA c256<>+464(SB)/8, $0x3f3504f33f3504f3
DATA c256<>+472(SB)/8, $0x3f3504f33f3504f3
// 1/sqrt(2 pi)
DATA c256<>+480(SB)/8, $0x3ecc422a3ecc422a
DATA c256<>+488(SB)/8, $0x3ecc422a3ecc422a
DATA c256<>+496(SB)/8, $0x3ecc422a3ecc422a
DATA c256<>+504(SB)/8, $0x3ecc422a3ecc422a
// -Inf
DATA c256<>+512(SB)/8, $0xff800000ff800000
DATA c256<>+520(SB)/8, $0xff800000ff800000
DATA c256<>+528(SB)/8, $0xff800000ff800000
DATA c256<>+536(SB)/8, $0xff800000ff800000
// PHI's erfc polynomial, highest degree first
DATA c256<>+544(SB)/8, $0x3e2ef9453e2ef945
DATA c256<>+552(SB)/8, $0x3e2ef9453e2ef945
DATA c256<>+560(SB)/8, $0x3e2ef9453e2ef945
DATA c256<>+568(SB)/8, $0x3e2ef9453e2ef945
DATA c256<>+576(SB)/8, $0xbf527892bf527892
DATA c256<>+584(SB)/8, $0xbf527892bf527892
DATA c256<>+592(SB)/8, $0xbf527892bf527892
DATA c256<>+600(SB)/8, $0xbf527892bf527892
DATA c256<>+608(SB)/8, $0x3fbe87b03fbe87b0
DATA c256<>+616(SB)/8, $0x3fbe87b03fbe87b0
DATA c256<>+624(SB)/8, $0x3fbe87b03fbe87b0
DATA c256<>+632(SB)/8, $0x3fbe87b03fbe87b0
DATA c256<>+640(SB)/8, $0xbf914e5dbf914e5d
DATA c256<>+648(SB)/8, $0xbf914e5dbf914e5d
DATA c256<>+656(SB)/8, $0xbf914e5dbf914e5d
DATA c256<>+664(SB)/8, $0xbf914e5dbf914e5d
DATA c256<>+672(SB)/8, $0x3e8ec7cc3e8ec7cc
DATA c256<>+680(SB)/8, $0x3e8ec7cc3e8ec7cc
DATA c256<>+688(SB)/8, $0x3e8ec7cc3e8ec7cc
DATA c256<>+696(SB)/8, $0x3e8ec7cc3e8ec7cc
DATA c256<>+704(SB)/8, $0xbe3ec24cbe3ec24c
DATA c256<>+712(SB)/8, $0xbe3ec24cbe3ec24c
DATA c256<>+720(SB)/8, $0xbe3ec24cbe3ec24c
DATA c256<>+728(SB)/8, $0xbe3ec24cbe3ec24c
DATA c256<>+736(SB)/8, $0x3dc636c93dc636c9
DATA c256<>+744(SB)/8, $0x3dc636c93dc636c9
DATA c256<>+752(SB)/8, $0x3dc636c93dc636c9
DATA c256<>+760(SB)/8, $0x3dc636c93dc636c9
DATA c256<>+768(SB)/8, $0x3ebf88fb3ebf88fb
DATA c256<>+776(SB)/8, $0x3ebf88fb3ebf88fb
DATA c256<>+784(SB)/8, $0x3ebf88fb3ebf88fb
DATA c256<>+792(SB)/8, $0x3ebf88fb3ebf88fb
DATA c256<>+800(SB)/8, $0x3f8000c73f8000c7
DATA c256<>+808(SB)/8, $0x3f8000c73f8000c7
DATA c256<>+816(SB)/8, $0x3f8000c73f8000c7
DATA c256<>+824(SB)/8, $0x3f8000c73f8000c7
DATA c256<>+832(SB)/8, $0xbfa1fc4ebfa1fc4e
DATA c256<>+840(SB)/8, $0xbfa1fc4ebfa1fc4e
DATA c256<>+848(SB)/8, $0xbfa1fc4ebfa1fc4e
DATA c256<>+856(SB)/8, $0xbfa1fc4ebfa1fc4e
GLOBL c256<>(SB), RODATA|NOPTR, $864

#define C_EXPLO c256<>+0(SB)
#define C_EXPHI c256<>+32(SB)
#define C_LOG2E c256<>+64(SB)
#define C_LN2HI c256<>+96(SB)
#define C_LN2LO c256<>+128(SB)
#define C_E0 c256<>+160(SB)
#define C_E1 c256<>+192(SB)
#define C_E2 c256<>+224(SB)
#define C_E3 c256<>+256(SB)
#define C_E4 c256<>+288(SB)
#define C_HALF c256<>+320(SB)
#define C_ONE c256<>+352(SB)
#define C_BIAS c256<>+384(SB)
#define C_ABS c256<>+416(SB)
#define C_RSQRT2 c256<>+448(SB)
#define C_INVSQRT2PI c256<>+480(SB)
#define C_NEGINF c256<>+512(SB)
#define C_P0 c256<>+544(SB)
#define C_P1 c256<>+576(SB)
#define C_P2 c256<>+608(SB)
#define C_P3 c256<>+640(SB)
#define C_P4 c256<>+672(SB)
#define C_P5 c256<>+704(SB)
#define C_P6 c256<>+736(SB)
#define C_P7 c256<>+768(SB)
#define C_P8 c256<>+800(SB)
#define C_P9 c256<>+832(SB)

// EXP256 sets x = e^x (x clamped to [-104, 89], NaN kept) as EXP does:
// x = n ln2 + r (n rounded to nearest, ties to even), e^r by Cephes' degree-6
// polynomial; then, for VSCALEFPS, x * 2^(n>>1) (exact) * 2^(n-(n>>1))
// (the one rounding), each factor a normal float for n in [-150, 128],
// so denormal results and overflow to +Inf are VSCALEFPS's, bit for bit.
#define EXP256(x, t1, t2, t3) \
	VMOVUPS C_EXPLO, t1; \
	VMAXPS x, t1, x; \
	VMOVUPS C_EXPHI, t1; \
	VMINPS x, t1, x; \
	VMULPS C_LOG2E, x, t1; \
	VROUNDPS $0, t1, t1; \
	VFMADD231PS C_LN2HI, t1, x; \
	VFMADD231PS C_LN2LO, t1, x; \
	VMOVUPS C_E0, t2; \
	VFMADD213PS C_E1, x, t2; \
	VFMADD213PS C_E2, x, t2; \
	VFMADD213PS C_E3, x, t2; \
	VFMADD213PS C_E4, x, t2; \
	VFMADD213PS C_HALF, x, t2; \
	VMULPS x, x, t3; \
	VADDPS C_ONE, x, x; \
	VFMADD231PS t3, t2, x; \
	VCVTPS2DQ t1, t1; \
	VPSRAD $1, t1, t3; \
	VPSUBD t3, t1, t1; \
	VPADDD C_BIAS, t3, t3; \
	VPSLLD $23, t3, t3; \
	VMULPS t3, x, x; \
	VPADDD C_BIAS, t1, t1; \
	VPSLLD $23, t1, t1; \
	VMULPS t1, x, x

// EXP256_2 is EXP256 on x (temporaries t1-t3) and on y (u1-u3), their
// instructions interleaved: the values are EXP256's, bit for bit.
#define EXP256_2(x, y, t1, u1, t2, u2, t3, u3) \
	VMOVUPS C_EXPLO, t1; \
	VMOVUPS C_EXPLO, u1; \
	VMAXPS x, t1, x; \
	VMAXPS y, u1, y; \
	VMOVUPS C_EXPHI, t1; \
	VMOVUPS C_EXPHI, u1; \
	VMINPS x, t1, x; \
	VMINPS y, u1, y; \
	VMULPS C_LOG2E, x, t1; \
	VMULPS C_LOG2E, y, u1; \
	VROUNDPS $0, t1, t1; \
	VROUNDPS $0, u1, u1; \
	VFMADD231PS C_LN2HI, t1, x; \
	VFMADD231PS C_LN2HI, u1, y; \
	VFMADD231PS C_LN2LO, t1, x; \
	VFMADD231PS C_LN2LO, u1, y; \
	VMOVUPS C_E0, t2; \
	VMOVUPS C_E0, u2; \
	VFMADD213PS C_E1, x, t2; \
	VFMADD213PS C_E1, y, u2; \
	VFMADD213PS C_E2, x, t2; \
	VFMADD213PS C_E2, y, u2; \
	VFMADD213PS C_E3, x, t2; \
	VFMADD213PS C_E3, y, u2; \
	VFMADD213PS C_E4, x, t2; \
	VFMADD213PS C_E4, y, u2; \
	VFMADD213PS C_HALF, x, t2; \
	VFMADD213PS C_HALF, y, u2; \
	VMULPS x, x, t3; \
	VMULPS y, y, u3; \
	VADDPS C_ONE, x, x; \
	VADDPS C_ONE, y, y; \
	VFMADD231PS t3, t2, x; \
	VFMADD231PS u3, u2, y; \
	VCVTPS2DQ t1, t1; \
	VCVTPS2DQ u1, u1; \
	VPSRAD $1, t1, t3; \
	VPSRAD $1, u1, u3; \
	VPSUBD t3, t1, t1; \
	VPSUBD u3, u1, u1; \
	VPADDD C_BIAS, t3, t3; \
	VPADDD C_BIAS, u3, u3; \
	VPSLLD $23, t3, t3; \
	VPSLLD $23, u3, u3; \
	VMULPS t3, x, x; \
	VMULPS u3, y, y; \
	VPADDD C_BIAS, t1, t1; \
	VPADDD C_BIAS, u1, u1; \
	VPSLLD $23, t1, t1; \
	VPSLLD $23, u1, u1; \
	VMULPS t1, x, x; \
	VMULPS u1, y, y

// PHI256 is PHI for x in Y0: Y1 = |x|/sqrt2, Y4 = Phi(x), as
// 0.5*erfc(|x|/sqrt2) mirrored for x > 0 (a compare and VBLENDVPS for
// PHI's masked move). Clobbers Y2, Y3, Y5, Y6.
#define PHI256 \
	VANDPS C_ABS, Y0, Y1; \
	VMULPS C_RSQRT2, Y1, Y1; \
	VMOVUPS C_ONE, Y2; \
	VFMADD231PS C_HALF, Y1, Y2; \
	VMOVUPS C_ONE, Y3; \
	VDIVPS Y2, Y3, Y2; \
	VMOVUPS C_P0, Y3; \
	VFMADD213PS C_P1, Y2, Y3; \
	VFMADD213PS C_P2, Y2, Y3; \
	VFMADD213PS C_P3, Y2, Y3; \
	VFMADD213PS C_P4, Y2, Y3; \
	VFMADD213PS C_P5, Y2, Y3; \
	VFMADD213PS C_P6, Y2, Y3; \
	VFMADD213PS C_P7, Y2, Y3; \
	VFMADD213PS C_P8, Y2, Y3; \
	VFMADD213PS C_P9, Y2, Y3; \
	VFNMADD231PS Y1, Y1, Y3; \
	EXP256(Y3, Y4, Y5, Y6); \
	VMULPS Y2, Y3, Y3; \
	VMULPS C_HALF, Y3, Y3; \
	VMOVUPS C_ONE, Y4; \
	VSUBPS Y3, Y4, Y4; \
	VXORPS Y6, Y6, Y6; \
	VCMPPS $1, Y6, Y0, Y6; \
	VBLENDVPS Y6, Y3, Y4, Y4

// PHI256_2 is PHI256 on Y0 and, in Y8-Y14 (x in Y8, Phi(x) to Y12), on a
// second vector, their instructions interleaved as PHI2's: the values are
// PHI256's, bit for bit.
#define PHI256_2 \
	VANDPS C_ABS, Y0, Y1; \
	VANDPS C_ABS, Y8, Y9; \
	VMULPS C_RSQRT2, Y1, Y1; \
	VMULPS C_RSQRT2, Y9, Y9; \
	VMOVUPS C_ONE, Y2; \
	VMOVUPS C_ONE, Y10; \
	VFMADD231PS C_HALF, Y1, Y2; \
	VFMADD231PS C_HALF, Y9, Y10; \
	VMOVUPS C_ONE, Y3; \
	VMOVUPS C_ONE, Y11; \
	VDIVPS Y2, Y3, Y2; \
	VDIVPS Y10, Y11, Y10; \
	VMOVUPS C_P0, Y3; \
	VMOVUPS C_P0, Y11; \
	VFMADD213PS C_P1, Y2, Y3; \
	VFMADD213PS C_P1, Y10, Y11; \
	VFMADD213PS C_P2, Y2, Y3; \
	VFMADD213PS C_P2, Y10, Y11; \
	VFMADD213PS C_P3, Y2, Y3; \
	VFMADD213PS C_P3, Y10, Y11; \
	VFMADD213PS C_P4, Y2, Y3; \
	VFMADD213PS C_P4, Y10, Y11; \
	VFMADD213PS C_P5, Y2, Y3; \
	VFMADD213PS C_P5, Y10, Y11; \
	VFMADD213PS C_P6, Y2, Y3; \
	VFMADD213PS C_P6, Y10, Y11; \
	VFMADD213PS C_P7, Y2, Y3; \
	VFMADD213PS C_P7, Y10, Y11; \
	VFMADD213PS C_P8, Y2, Y3; \
	VFMADD213PS C_P8, Y10, Y11; \
	VFMADD213PS C_P9, Y2, Y3; \
	VFMADD213PS C_P9, Y10, Y11; \
	VFNMADD231PS Y1, Y1, Y3; \
	VFNMADD231PS Y9, Y9, Y11; \
	EXP256_2(Y3, Y11, Y4, Y12, Y5, Y13, Y6, Y14); \
	VMULPS Y2, Y3, Y3; \
	VMULPS Y10, Y11, Y11; \
	VMULPS C_HALF, Y3, Y3; \
	VMULPS C_HALF, Y11, Y11; \
	VMOVUPS C_ONE, Y4; \
	VMOVUPS C_ONE, Y12; \
	VSUBPS Y3, Y4, Y4; \
	VSUBPS Y11, Y12, Y12; \
	VXORPS Y6, Y6, Y6; \
	VXORPS Y14, Y14, Y14; \
	VCMPPS $1, Y6, Y0, Y6; \
	VCMPPS $1, Y14, Y8, Y14; \
	VBLENDVPS Y6, Y3, Y4, Y4; \
	VBLENDVPS Y14, Y11, Y12, Y12

// GELUGRAD256: Y4 = Phi(x) + x*phi(x) for x in Y0, as GELUGRAD: PHI256,
// then x*phi(x) from PHI256's |x|/sqrt2 (Y1) added.
// Clobbers Y1-Y3, Y5, Y6.
#define GELUGRAD256 \
	PHI256; \
	VXORPS Y5, Y5, Y5; \
	VFNMADD231PS Y1, Y1, Y5; \
	EXP256(Y5, Y6, Y2, Y3); \
	VMULPS C_INVSQRT2PI, Y5, Y5; \
	VFMADD231PS Y5, Y0, Y4

// GELUGRAD256_2 is GELUGRAD256 on Y0 (to Y4) and Y8 (to Y12), interleaved:
// PHI256_2, then both x*phi(x) added.
#define GELUGRAD256_2 \
	PHI256_2; \
	VXORPS Y5, Y5, Y5; \
	VXORPS Y13, Y13, Y13; \
	VFNMADD231PS Y1, Y1, Y5; \
	VFNMADD231PS Y9, Y9, Y13; \
	EXP256_2(Y5, Y13, Y6, Y14, Y2, Y10, Y3, Y11); \
	VMULPS C_INVSQRT2PI, Y5, Y5; \
	VMULPS C_INVSQRT2PI, Y13, Y13; \
	VFMADD231PS Y5, Y0, Y4; \
	VFMADD231PS Y13, Y8, Y12

// mask256: 16 all-ones words, then 16 zeros. The 8 words at
// mask256+64-4n have their first n lanes set (TAILMASK256); the 16 at
// mask256+64-8n their first 2n (vinterleave2256's tail).
DATA mask256<>+0(SB)/8, $0xffffffffffffffff
DATA mask256<>+8(SB)/8, $0xffffffffffffffff
DATA mask256<>+16(SB)/8, $0xffffffffffffffff
DATA mask256<>+24(SB)/8, $0xffffffffffffffff
DATA mask256<>+32(SB)/8, $0xffffffffffffffff
DATA mask256<>+40(SB)/8, $0xffffffffffffffff
DATA mask256<>+48(SB)/8, $0xffffffffffffffff
DATA mask256<>+56(SB)/8, $0xffffffffffffffff
DATA mask256<>+64(SB)/8, $0
DATA mask256<>+72(SB)/8, $0
DATA mask256<>+80(SB)/8, $0
DATA mask256<>+88(SB)/8, $0
DATA mask256<>+96(SB)/8, $0
DATA mask256<>+104(SB)/8, $0
DATA mask256<>+112(SB)/8, $0
DATA mask256<>+120(SB)/8, $0
GLOBL mask256<>(SB), RODATA|NOPTR, $128

// TAILMASK256 sets m to the VMASKMOVPS mask of the first CX (1-7) lanes;
// clobbers AX and CX.
#define TAILMASK256(m) \
	LEAQ mask256<>+64(SB), AX; \
	SHLQ $2, CX; \
	SUBQ CX, AX; \
	VMOVUPS (AX), m

// HSUM256 sums the 8 lanes of Y10 into X0 (as HSUM does its last 8);
// clobbers X1.
#define HSUM256 \
	VEXTRACTF128 $1, Y10, X1; \
	VADDPS X1, X10, X0; \
	VMOVHLPS X0, X0, X1; \
	VADDPS X1, X0, X0; \
	VMOVSHDUP X0, X1; \
	VADDSS X1, X0, X0

// func vexpsub256(y, x *float32, n int, m, s float32) float32
TEXT ·vexpsub256(SB), NOSPLIT, $0-36
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS m+24(FP), Y8
	VBROADCASTSS s+28(FP), Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
expsub256_loop2:
	CMPQ CX, $16
	JLT expsub256_loop
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y4
	VSUBPS Y8, Y0, Y0
	VSUBPS Y8, Y4, Y4
	EXP256_2(Y0, Y4, Y1, Y5, Y2, Y6, Y3, Y7)
	VADDPS Y0, Y10, Y10
	VADDPS Y4, Y11, Y11
	VMULPS Y9, Y0, Y0
	VMULPS Y9, Y4, Y4
	VMOVUPS Y0, (DI)
	VMOVUPS Y4, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP expsub256_loop2
expsub256_loop:
	CMPQ CX, $8
	JLT expsub256_tail
	VMOVUPS (SI), Y0
	VSUBPS Y8, Y0, Y0
	EXP256(Y0, Y1, Y2, Y3)
	VADDPS Y0, Y10, Y10
	VMULPS Y9, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
expsub256_tail:
	TESTQ CX, CX
	JZ expsub256_done
	TAILMASK256(Y12)
	VMASKMOVPS (SI), Y12, Y0
	VSUBPS Y8, Y0, Y0
	EXP256(Y0, Y1, Y2, Y3)
	VANDPS Y12, Y0, Y0 // the lanes past n add nothing
	VADDPS Y0, Y11, Y11
	VMULPS Y9, Y0, Y0
	VMASKMOVPS Y0, Y12, (DI)
expsub256_done:
	VADDPS Y11, Y10, Y10
	HSUM256
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// func vexpsum256(x *float32, n int, m float32) float32
TEXT ·vexpsum256(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS m+16(FP), Y8
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
expsum256_loop2:
	CMPQ CX, $16
	JLT expsum256_loop
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y4
	VSUBPS Y8, Y0, Y0
	VSUBPS Y8, Y4, Y4
	EXP256_2(Y0, Y4, Y1, Y5, Y2, Y6, Y3, Y7)
	VADDPS Y0, Y10, Y10
	VADDPS Y4, Y11, Y11
	ADDQ $64, SI
	SUBQ $16, CX
	JMP expsum256_loop2
expsum256_loop:
	CMPQ CX, $8
	JLT expsum256_tail
	VMOVUPS (SI), Y0
	VSUBPS Y8, Y0, Y0
	EXP256(Y0, Y1, Y2, Y3)
	VADDPS Y0, Y10, Y10
	ADDQ $32, SI
	SUBQ $8, CX
expsum256_tail:
	TESTQ CX, CX
	JZ expsum256_done
	TAILMASK256(Y12)
	VMASKMOVPS (SI), Y12, Y0
	VSUBPS Y8, Y0, Y0
	EXP256(Y0, Y1, Y2, Y3)
	VANDPS Y12, Y0, Y0
	VADDPS Y0, Y11, Y11
expsum256_done:
	VADDPS Y11, Y10, Y10
	HSUM256
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func vmax256(x *float32, n int) float32
TEXT ·vmax256(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS C_NEGINF, Y0
	VMOVAPS Y0, Y1
max256_loop2:
	CMPQ CX, $16
	JLT max256_loop
	VMAXPS (SI), Y0, Y0
	VMAXPS 32(SI), Y1, Y1
	ADDQ $64, SI
	SUBQ $16, CX
	JMP max256_loop2
max256_loop:
	CMPQ CX, $8
	JLT max256_tail
	VMAXPS (SI), Y0, Y0
	ADDQ $32, SI
	SUBQ $8, CX
max256_tail:
	TESTQ CX, CX
	JZ max256_done
	TAILMASK256(Y12)
	VMASKMOVPS (SI), Y12, Y2
	VMAXPS Y2, Y1, Y3
	VBLENDVPS Y12, Y3, Y1, Y1 // the lanes past n keep Y1's
max256_done:
	VMAXPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VMOVHLPS X0, X0, X1
	VMAXPS X1, X0, X0
	VMOVSHDUP X0, X1
	VMAXSS X1, X0, X0
	VMOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// func vgelu256(y, x *float32, n int)
TEXT ·vgelu256(SB), NOSPLIT, $0-24
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
gelu256_loop2:
	CMPQ CX, $16
	JLT gelu256_loop
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y8
	PHI256_2
	VMULPS Y4, Y0, Y0
	VMULPS Y12, Y8, Y8
	VMOVUPS Y0, (DI)
	VMOVUPS Y8, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP gelu256_loop2
gelu256_loop:
	CMPQ CX, $8
	JLT gelu256_tail
	VMOVUPS (SI), Y0
	PHI256
	VMULPS Y4, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
gelu256_tail:
	TESTQ CX, CX
	JZ gelu256_done
	TAILMASK256(Y15)
	VMASKMOVPS (SI), Y15, Y0
	PHI256
	VMULPS Y4, Y0, Y0
	VMASKMOVPS Y0, Y15, (DI)
gelu256_done:
	VZEROUPPER
	RET

// func vgelugrad256(dx, x, dy *float32, n int, set bool)
// dx += dy * GELU'(x); with set, dx = 0 + dy * GELU'(x), dx not read.
TEXT ·vgelugrad256(SB), NOSPLIT, $0-33
	MOVQ dx+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ dy+16(FP), DX
	MOVQ n+24(FP), CX
	MOVBQZX set+32(FP), R8
gelugrad256_loop2:
	CMPQ CX, $16
	JLT gelugrad256_loop
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y8
	GELUGRAD256_2
	VXORPS Y6, Y6, Y6
	VXORPS Y14, Y14, Y14
	TESTQ R8, R8
	JNE gelugrad256_add2
	VMOVUPS (DI), Y6
	VMOVUPS 32(DI), Y14
gelugrad256_add2:
	VFMADD231PS (DX), Y4, Y6
	VFMADD231PS 32(DX), Y12, Y14
	VMOVUPS Y6, (DI)
	VMOVUPS Y14, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $64, DX
	SUBQ $16, CX
	JMP gelugrad256_loop2
gelugrad256_loop:
	CMPQ CX, $8
	JLT gelugrad256_tail
	VMOVUPS (SI), Y0
	GELUGRAD256
	VXORPS Y6, Y6, Y6
	TESTQ R8, R8
	JNE gelugrad256_add
	VMOVUPS (DI), Y6
gelugrad256_add:
	VFMADD231PS (DX), Y4, Y6
	VMOVUPS Y6, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, DX
	SUBQ $8, CX
gelugrad256_tail:
	TESTQ CX, CX
	JZ gelugrad256_done
	TAILMASK256(Y15)
	VMASKMOVPS (SI), Y15, Y0
	GELUGRAD256
	VXORPS Y6, Y6, Y6
	TESTQ R8, R8
	JNE gelugrad256_addtail
	VMASKMOVPS (DI), Y15, Y6
gelugrad256_addtail:
	VMASKMOVPS (DX), Y15, Y5
	VFMADD231PS Y5, Y4, Y6
	VMASKMOVPS Y6, Y15, (DI)
gelugrad256_done:
	VZEROUPPER
	RET

// func vaxpy256(y, x *float32, n int, a float32)
TEXT ·vaxpy256(SB), NOSPLIT, $0-28
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS a+24(FP), Y15
axpy256_loop4:
	CMPQ CX, $32
	JLT axpy256_loop
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	VFMADD231PS (SI), Y15, Y0
	VFMADD231PS 32(SI), Y15, Y1
	VFMADD231PS 64(SI), Y15, Y2
	VFMADD231PS 96(SI), Y15, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP axpy256_loop4
axpy256_loop:
	CMPQ CX, $8
	JLT axpy256_tail
	VMOVUPS (DI), Y0
	VFMADD231PS (SI), Y15, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP axpy256_loop
axpy256_tail:
	TESTQ CX, CX
	JZ axpy256_done
	TAILMASK256(Y12)
	VMASKMOVPS (DI), Y12, Y0
	VMASKMOVPS (SI), Y12, Y1
	VFMADD231PS Y1, Y15, Y0
	VMASKMOVPS Y0, Y12, (DI)
axpy256_done:
	VZEROUPPER
	RET

// func vdot256(x, y *float32, n int) float32
TEXT ·vdot256(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
dot256_loop4:
	CMPQ CX, $32
	JLT dot256_loop
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VFMADD231PS (DI), Y0, Y10
	VFMADD231PS 32(DI), Y1, Y11
	VFMADD231PS 64(DI), Y2, Y12
	VFMADD231PS 96(DI), Y3, Y13
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP dot256_loop4
dot256_loop:
	CMPQ CX, $8
	JLT dot256_tail
	VMOVUPS (SI), Y0
	VFMADD231PS (DI), Y0, Y10
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP dot256_loop
dot256_tail:
	TESTQ CX, CX
	JZ dot256_done
	TAILMASK256(Y14)
	VMASKMOVPS (SI), Y14, Y0
	VMASKMOVPS (DI), Y14, Y1
	VFMADD231PS Y1, Y0, Y11
dot256_done:
	VADDPS Y11, Y10, Y10
	VADDPS Y13, Y12, Y12
	VADDPS Y12, Y10, Y10
	HSUM256
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func vlnfwd256(y, x, w, b *float32, n int, eps float32) (mean, rstd float32)
// LayerNorm of one row: mean and variance in two passes, then
// y = (x-mean)*rstd*w + b; w and b may be nil.
TEXT ·vlnfwd256(SB), NOSPLIT, $0-56
	MOVQ x+8(FP), SI
	MOVQ n+32(FP), R9
	MOVQ R9, CX
	ANDQ $7, CX
	JZ ln256_full
	TAILMASK256(Y15) // the last vector's lanes, for all three passes
ln256_full:
	// pass 1: sum
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	MOVQ SI, R8
	MOVQ R9, CX
ln256_sum:
	CMPQ CX, $8
	JLT ln256_sumtail
	VADDPS (R8), Y10, Y10
	ADDQ $32, R8
	SUBQ $8, CX
	JMP ln256_sum
ln256_sumtail:
	TESTQ CX, CX
	JZ ln256_sumdone
	VMASKMOVPS (R8), Y15, Y2
	VADDPS Y2, Y11, Y11
ln256_sumdone:
	VADDPS Y11, Y10, Y10
	HSUM256
	VCVTSI2SSQ R9, X3, X3
	VDIVSS X3, X0, X0
	VBROADCASTSS X0, Y8
	VMOVSS X0, mean+48(FP)
	// pass 2: sum of squared deviations
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	MOVQ SI, R8
	MOVQ R9, CX
ln256_var:
	CMPQ CX, $8
	JLT ln256_vartail
	VMOVUPS (R8), Y2
	VSUBPS Y8, Y2, Y2
	VFMADD231PS Y2, Y2, Y10
	ADDQ $32, R8
	SUBQ $8, CX
	JMP ln256_var
ln256_vartail:
	TESTQ CX, CX
	JZ ln256_vardone
	VMASKMOVPS (R8), Y15, Y2
	VSUBPS Y8, Y2, Y2
	VANDPS Y15, Y2, Y2
	VFMADD231PS Y2, Y2, Y11
ln256_vardone:
	VADDPS Y11, Y10, Y10
	HSUM256
	VCVTSI2SSQ R9, X3, X3
	VDIVSS X3, X0, X0
	VADDSS eps+40(FP), X0, X0
	VSQRTSS X0, X0, X0
	VMOVSS C_ONE, X3
	VDIVSS X0, X3, X3
	VMOVSS X3, rstd+52(FP)
	VBROADCASTSS X3, Y9
	// pass 3: normalise
	MOVQ y+0(FP), DI
	MOVQ w+16(FP), DX
	MOVQ b+24(FP), BX
	XORQ R10, R10
ln256_out:
	CMPQ R9, $8
	JLT ln256_outtail
	VMOVUPS (SI)(R10*1), Y2
	VSUBPS Y8, Y2, Y2
	VMULPS Y9, Y2, Y2
	TESTQ DX, DX
	JZ ln256_now
	VMULPS (DX)(R10*1), Y2, Y2
ln256_now:
	TESTQ BX, BX
	JZ ln256_nob
	VADDPS (BX)(R10*1), Y2, Y2
ln256_nob:
	VMOVUPS Y2, (DI)(R10*1)
	ADDQ $32, R10
	SUBQ $8, R9
	JMP ln256_out
ln256_outtail:
	TESTQ R9, R9
	JZ ln256_done
	VMASKMOVPS (SI)(R10*1), Y15, Y2
	VSUBPS Y8, Y2, Y2
	VMULPS Y9, Y2, Y2
	TESTQ DX, DX
	JZ ln256_nowtail
	VMASKMOVPS (DX)(R10*1), Y15, Y3
	VMULPS Y3, Y2, Y2
ln256_nowtail:
	TESTQ BX, BX
	JZ ln256_nobtail
	VMASKMOVPS (BX)(R10*1), Y15, Y3
	VADDPS Y3, Y2, Y2
ln256_nobtail:
	VMASKMOVPS Y2, Y15, (DI)(R10*1)
ln256_done:
	VZEROUPPER
	RET

// LNGRADA256 is vlngrad256's first pass on one vector: x in Y2, g in Y3,
// pw in Y4, pb in Y5 (loaded); it leaves xhat in Y2, pw += g*xhat in Y4
// and pb += g in Y5. LNGRADSUM256 then adds g*w (Y3, multiplied by w
// between the two where there is one) to Y10 and g*w*xhat to Y11.
#define LNGRADA256 \
	VSUBPS Y8, Y2, Y2; \
	VMULPS Y9, Y2, Y2; \
	VFMADD231PS Y3, Y2, Y4; \
	VADDPS Y3, Y5, Y5

#define LNGRADSUM256 \
	VADDPS Y3, Y10, Y10; \
	VFMADD231PS Y3, Y2, Y11

// func vlngrad256(dx, x, gr, w, pw, pb *float32, n int, mean, rstd float32)
// LayerNorm backward of one row: pw += g*xhat, pb += g, and, if dx is not
// nil, dx += rstd*(g*w - mean(g*w) - xhat*mean(g*w*xhat)); w may be nil.
TEXT ·vlngrad256(SB), NOSPLIT, $0-64
	MOVQ x+8(FP), SI
	MOVQ gr+16(FP), DX
	MOVQ w+24(FP), BX
	MOVQ pw+32(FP), R11
	MOVQ pb+40(FP), R12
	MOVQ n+48(FP), R9
	VBROADCASTSS mean+56(FP), Y8
	VBROADCASTSS rstd+60(FP), Y9
	MOVQ R9, CX
	ANDQ $7, CX
	JZ lng256_full
	TAILMASK256(Y15)
lng256_full:
	VXORPS Y10, Y10, Y10 // sum g*w
	VXORPS Y11, Y11, Y11 // sum g*w*xhat
	XORQ R10, R10
lng256_a:
	CMPQ R9, $8
	JLT lng256_atail
	VMOVUPS (SI)(R10*1), Y2
	VMOVUPS (DX)(R10*1), Y3
	VMOVUPS (R11)(R10*1), Y4
	VMOVUPS (R12)(R10*1), Y5
	LNGRADA256
	TESTQ BX, BX
	JZ lng256_anow
	VMULPS (BX)(R10*1), Y3, Y3
lng256_anow:
	LNGRADSUM256
	VMOVUPS Y4, (R11)(R10*1)
	VMOVUPS Y5, (R12)(R10*1)
	ADDQ $32, R10
	SUBQ $8, R9
	JMP lng256_a
lng256_atail:
	TESTQ R9, R9
	JZ lng256_adone
	VMASKMOVPS (SI)(R10*1), Y15, Y2
	VMASKMOVPS (DX)(R10*1), Y15, Y3
	VMASKMOVPS (R11)(R10*1), Y15, Y4
	VMASKMOVPS (R12)(R10*1), Y15, Y5
	LNGRADA256
	TESTQ BX, BX
	JZ lng256_anowtail
	VMASKMOVPS (BX)(R10*1), Y15, Y6
	VMULPS Y6, Y3, Y3
lng256_anowtail:
	LNGRADSUM256
	VMASKMOVPS Y4, Y15, (R11)(R10*1)
	VMASKMOVPS Y5, Y15, (R12)(R10*1)
lng256_adone:
	MOVQ dx+0(FP), DI
	TESTQ DI, DI
	JZ lng256_done
	// g is 0 in the lanes past n, so they added nothing to Y10, Y11
	VMOVAPS Y11, Y7
	HSUM256
	VMOVAPS X0, X5
	VMOVAPS Y7, Y10
	HSUM256
	// X5 = sum g*w, X0 = sum g*w*xhat; c2 = rstd*sg/n, c3 = rstd*sgn/n
	MOVQ n+48(FP), R9
	VCVTSI2SSQ R9, X3, X3
	VMOVSS rstd+60(FP), X4
	VDIVSS X3, X4, X4
	VMULSS X4, X5, X5
	VMULSS X4, X0, X0
	VBROADCASTSS X5, Y12
	VBROADCASTSS X0, Y13
	XORQ R10, R10
lng256_b:
	CMPQ R9, $8
	JLT lng256_btail
	VMOVUPS (SI)(R10*1), Y2
	VSUBPS Y8, Y2, Y2
	VMULPS Y9, Y2, Y2         // xhat
	VMOVUPS (DX)(R10*1), Y3   // g
	TESTQ BX, BX
	JZ lng256_bnow
	VMULPS (BX)(R10*1), Y3, Y3
lng256_bnow:
	VMULPS Y9, Y3, Y3         // rstd*g*w
	VSUBPS Y12, Y3, Y3
	VFNMADD231PS Y13, Y2, Y3  // - xhat*c3
	VADDPS (DI)(R10*1), Y3, Y3
	VMOVUPS Y3, (DI)(R10*1)
	ADDQ $32, R10
	SUBQ $8, R9
	JMP lng256_b
lng256_btail:
	TESTQ R9, R9
	JZ lng256_done
	VMASKMOVPS (SI)(R10*1), Y15, Y2
	VSUBPS Y8, Y2, Y2
	VMULPS Y9, Y2, Y2
	VMASKMOVPS (DX)(R10*1), Y15, Y3
	TESTQ BX, BX
	JZ lng256_bnowtail
	VMASKMOVPS (BX)(R10*1), Y15, Y4
	VMULPS Y4, Y3, Y3
lng256_bnowtail:
	VMULPS Y9, Y3, Y3
	VSUBPS Y12, Y3, Y3
	VFNMADD231PS Y13, Y2, Y3
	VMASKMOVPS (DI)(R10*1), Y15, Y4
	VADDPS Y3, Y4, Y4
	VMASKMOVPS Y4, Y15, (DI)(R10*1)
lng256_done:
	VZEROUPPER
	RET

// ADAM256: one AdamW step on g in Y0, m in Y1, v in Y2, p in Y4 (the
// constants in Y8-Y15, as vadamw256 loads them): m and v to Y1 and Y2,
// p to Y4. Clobbers Y3.
#define ADAM256 \
	VMULPS Y8, Y1, Y1; \
	VMULPS Y14, Y0, Y3; \
	VADDPS Y3, Y1, Y1; \
	VMULPS Y9, Y2, Y2; \
	VMULPS Y15, Y0, Y3; \
	VMULPS Y0, Y3, Y3; \
	VADDPS Y3, Y2, Y2; \
	VSQRTPS Y2, Y3; \
	VDIVPS Y12, Y3, Y3; \
	VADDPS Y10, Y3, Y3; \
	VMULPS Y11, Y1, Y0; \
	VDIVPS Y3, Y0, Y0; \
	VMULPS Y13, Y4, Y4; \
	VSUBPS Y0, Y4, Y4

// func vadamw256(p, gr, m, v *float32, n int, h *[6]float32)
// One AdamW step over n values; h holds beta1, beta2, eps, the step size
// (lr / bias correction 1), sqrt(bias correction 2) and the decay factor.
TEXT ·vadamw256(SB), NOSPLIT, $0-48
	MOVQ p+0(FP), DI
	MOVQ gr+8(FP), SI
	MOVQ m+16(FP), DX
	MOVQ v+24(FP), BX
	MOVQ n+32(FP), R9
	MOVQ h+40(FP), AX
	VBROADCASTSS 0(AX), Y8   // b1
	VBROADCASTSS 4(AX), Y9   // b2
	VBROADCASTSS 8(AX), Y10  // eps
	VBROADCASTSS 12(AX), Y11 // step size
	VBROADCASTSS 16(AX), Y12 // sqrt(bc2)
	VBROADCASTSS 20(AX), Y13 // decay
	VMOVUPS C_ONE, Y0
	VSUBPS Y8, Y0, Y14       // 1-b1
	VSUBPS Y9, Y0, Y15       // 1-b2
	XORQ R10, R10
adam256_loop:
	CMPQ R9, $8
	JLT adam256_tail
	VMOVUPS (SI)(R10*1), Y0
	VMOVUPS (DX)(R10*1), Y1
	VMOVUPS (BX)(R10*1), Y2
	VMOVUPS (DI)(R10*1), Y4
	ADAM256
	VMOVUPS Y1, (DX)(R10*1)
	VMOVUPS Y2, (BX)(R10*1)
	VMOVUPS Y4, (DI)(R10*1)
	ADDQ $32, R10
	SUBQ $8, R9
	JMP adam256_loop
adam256_tail:
	TESTQ R9, R9
	JZ adam256_done
	MOVQ R9, CX
	TAILMASK256(Y5)
	VMASKMOVPS (SI)(R10*1), Y5, Y0
	VMASKMOVPS (DX)(R10*1), Y5, Y1
	VMASKMOVPS (BX)(R10*1), Y5, Y2
	VMASKMOVPS (DI)(R10*1), Y5, Y4
	ADAM256
	VMASKMOVPS Y1, Y5, (DX)(R10*1)
	VMASKMOVPS Y2, Y5, (BX)(R10*1)
	VMASKMOVPS Y4, Y5, (DI)(R10*1)
adam256_done:
	VZEROUPPER
	RET

// func vaxpy4256(c, b *float32, ldb, n int, x *[4]float32)
// c[j] += x[0]*b[j] + x[1]*b[ldb+j] + x[2]*b[2*ldb+j] + x[3]*b[3*ldb+j].
TEXT ·vaxpy4256(SB), NOSPLIT, $0-40
	MOVQ c+0(FP), DI
	MOVQ b+8(FP), SI
	MOVQ ldb+16(FP), R8
	SHLQ $2, R8
	MOVQ n+24(FP), R9
	MOVQ x+32(FP), AX
	VBROADCASTSS 0(AX), Y8
	VBROADCASTSS 4(AX), Y9
	VBROADCASTSS 8(AX), Y10
	VBROADCASTSS 12(AX), Y11
	LEAQ (SI)(R8*1), R11
	LEAQ (R11)(R8*1), R12
	LEAQ (R12)(R8*1), R13
	XORQ R10, R10
axpy4256_loop:
	CMPQ R9, $8
	JLT axpy4256_tail
	VMOVUPS (DI)(R10*1), Y0
	VFMADD231PS (SI)(R10*1), Y8, Y0
	VFMADD231PS (R11)(R10*1), Y9, Y0
	VFMADD231PS (R12)(R10*1), Y10, Y0
	VFMADD231PS (R13)(R10*1), Y11, Y0
	VMOVUPS Y0, (DI)(R10*1)
	ADDQ $32, R10
	SUBQ $8, R9
	JMP axpy4256_loop
axpy4256_tail:
	TESTQ R9, R9
	JZ axpy4256_done
	MOVQ R9, CX
	TAILMASK256(Y5)
	VMASKMOVPS (DI)(R10*1), Y5, Y0
	VMASKMOVPS (SI)(R10*1), Y5, Y1
	VMASKMOVPS (R11)(R10*1), Y5, Y2
	VMASKMOVPS (R12)(R10*1), Y5, Y3
	VMASKMOVPS (R13)(R10*1), Y5, Y4
	VFMADD231PS Y1, Y8, Y0
	VFMADD231PS Y2, Y9, Y0
	VFMADD231PS Y3, Y10, Y0
	VFMADD231PS Y4, Y11, Y0
	VMASKMOVPS Y0, Y5, (DI)(R10*1)
axpy4256_done:
	VZEROUPPER
	RET

// func vsilu256(y, x *float32, n int)
// y = x / (1 + e^-x).
TEXT ·vsilu256(SB), NOSPLIT, $0-24
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VXORPS Y9, Y9, Y9
silu256_loop:
	CMPQ CX, $8
	JLT silu256_tail
	VMOVUPS (SI), Y0
	VSUBPS Y0, Y9, Y1
	EXP256(Y1, Y2, Y3, Y4)
	VADDPS C_ONE, Y1, Y1
	VDIVPS Y1, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP silu256_loop
silu256_tail:
	TESTQ CX, CX
	JZ silu256_done
	TAILMASK256(Y15)
	VMASKMOVPS (SI), Y15, Y0
	VSUBPS Y0, Y9, Y1
	EXP256(Y1, Y2, Y3, Y4)
	VADDPS C_ONE, Y1, Y1
	VDIVPS Y1, Y0, Y0
	VMASKMOVPS Y0, Y15, (DI)
silu256_done:
	VZEROUPPER
	RET

// func vscal256(x *float32, n int, a float32)
// x[i] *= a.
TEXT ·vscal256(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSS a+16(FP), Y15
scal256_loop4:
	CMPQ CX, $32
	JLT scal256_loop
	VMULPS (DI), Y15, Y0
	VMULPS 32(DI), Y15, Y1
	VMULPS 64(DI), Y15, Y2
	VMULPS 96(DI), Y15, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, DI
	SUBQ $32, CX
	JMP scal256_loop4
scal256_loop:
	CMPQ CX, $8
	JLT scal256_tail
	VMULPS (DI), Y15, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	SUBQ $8, CX
	JMP scal256_loop
scal256_tail:
	TESTQ CX, CX
	JZ scal256_done
	TAILMASK256(Y12)
	VMASKMOVPS (DI), Y12, Y0
	VMULPS Y0, Y15, Y0
	VMASKMOVPS Y0, Y12, (DI)
scal256_done:
	VZEROUPPER
	RET

// func vsoftgrad256(d, p *float32, n int, s, scale float32)
// d[i] = p[i] * (d[i] - s) * scale, rounded after each operation as Go
// rounds the same expression.
TEXT ·vsoftgrad256(SB), NOSPLIT, $0-32
	MOVQ d+0(FP), DI
	MOVQ p+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS s+24(FP), Y14
	VBROADCASTSS scale+28(FP), Y15
softgrad256_loop2:
	CMPQ CX, $16
	JLT softgrad256_loop
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VSUBPS Y14, Y0, Y0
	VSUBPS Y14, Y1, Y1
	VMULPS (SI), Y0, Y0
	VMULPS 32(SI), Y1, Y1
	VMULPS Y15, Y0, Y0
	VMULPS Y15, Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP softgrad256_loop2
softgrad256_loop:
	CMPQ CX, $8
	JLT softgrad256_tail
	VMOVUPS (DI), Y0
	VSUBPS Y14, Y0, Y0
	VMULPS (SI), Y0, Y0
	VMULPS Y15, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
softgrad256_tail:
	TESTQ CX, CX
	JZ softgrad256_done
	TAILMASK256(Y12)
	VMASKMOVPS (DI), Y12, Y0
	VMASKMOVPS (SI), Y12, Y1
	VSUBPS Y14, Y0, Y0
	VMULPS Y1, Y0, Y0
	VMULPS Y15, Y0, Y0
	VMASKMOVPS Y0, Y12, (DI)
softgrad256_done:
	VZEROUPPER
	RET

// func vrelugrad256(d, x, gr *float32, n int)
// d += gr where x > 0 (ordered: NaN not); elsewhere d keeps its bits.
TEXT ·vrelugrad256(SB), NOSPLIT, $0-32
	MOVQ d+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ gr+16(FP), DX
	MOVQ n+24(FP), CX
	VXORPS Y15, Y15, Y15
relugrad256_loop:
	CMPQ CX, $8
	JLT relugrad256_tail
	VMOVUPS (SI), Y0
	VCMPPS $0x1e, Y15, Y0, Y2 // x > 0
	VMOVUPS (DI), Y1
	VADDPS (DX), Y1, Y3
	VBLENDVPS Y2, Y3, Y1, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, DX
	SUBQ $8, CX
	JMP relugrad256_loop
relugrad256_tail:
	TESTQ CX, CX
	JZ relugrad256_done
	TAILMASK256(Y12)
	VMASKMOVPS (SI), Y12, Y0
	VCMPPS $0x1e, Y15, Y0, Y2 // the lanes past n read 0: not > 0
	VMASKMOVPS (DI), Y12, Y1
	VMASKMOVPS (DX), Y12, Y4
	VADDPS Y4, Y1, Y3
	VBLENDVPS Y2, Y3, Y1, Y1
	VMASKMOVPS Y1, Y12, (DI)
relugrad256_done:
	VZEROUPPER
	RET

// func vrelu256(y, x *float32, n int)
// y = max(x, 0) as Go's max: VMAXPS keeps x where 0 > x is false (x >= 0
// and NaN), then adding +0 turns -0 into +0 and changes nothing else.
TEXT ·vrelu256(SB), NOSPLIT, $0-24
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VXORPS Y15, Y15, Y15
relu256_loop:
	CMPQ CX, $8
	JLT relu256_tail
	VMAXPS (SI), Y15, Y0
	VADDPS Y15, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP relu256_loop
relu256_tail:
	TESTQ CX, CX
	JZ relu256_done
	TAILMASK256(Y12)
	VMASKMOVPS (SI), Y12, Y1
	VMAXPS Y1, Y15, Y0
	VADDPS Y15, Y0, Y0
	VMASKMOVPS Y0, Y12, (DI)
relu256_done:
	VZEROUPPER
	RET

// ILV256: a in Y0, b in Y1 interleaved into Y2 (a0 b0 ... a3 b3) and Y3
// (a4 b4 ... a7 b7): VUNPCKLPS/VUNPCKHPS interleave within each 128-bit
// half, VPERM2F128 puts the halves in order. Clobbers Y4, Y5.
#define ILV256 \
	VUNPCKLPS Y1, Y0, Y4; \
	VUNPCKHPS Y1, Y0, Y5; \
	VPERM2F128 $0x20, Y5, Y4, Y2; \
	VPERM2F128 $0x31, Y5, Y4, Y3

// func vinterleave2256(d, a, b *float32, n int, acc bool)
// d[2i] = a[i], d[2i+1] = b[i] for i < n (added into d with acc).
TEXT ·vinterleave2256(SB), NOSPLIT, $0-33
	MOVQ d+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	MOVBLZX acc+32(FP), R11
ilv256_loop:
	CMPQ CX, $8
	JLT ilv256_tail
	VMOVUPS (SI), Y0
	VMOVUPS (DX), Y1
	ILV256
	TESTQ R11, R11
	JZ ilv256_store
	VADDPS (DI), Y2, Y2
	VADDPS 32(DI), Y3, Y3
ilv256_store:
	VMOVUPS Y2, (DI)
	VMOVUPS Y3, 32(DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $64, DI
	SUBQ $8, CX
	JMP ilv256_loop
ilv256_tail:
	TESTQ CX, CX
	JZ ilv256_done
	// 2n values left: Y6 the first output vector's lanes, Y7 the second's
	LEAQ mask256<>+64(SB), AX
	SHLQ $3, CX
	SUBQ CX, AX
	VMOVUPS (AX), Y6
	VMOVUPS 32(AX), Y7
	SHRQ $1, CX
	LEAQ mask256<>+64(SB), AX
	SUBQ CX, AX
	VMOVUPS (AX), Y8 // the n lanes of a and b
	VMASKMOVPS (SI), Y8, Y0
	VMASKMOVPS (DX), Y8, Y1
	ILV256
	TESTQ R11, R11
	JZ ilv256_tailstore
	VMASKMOVPS (DI), Y6, Y4
	VADDPS Y4, Y2, Y2
	VMASKMOVPS 32(DI), Y7, Y5
	VADDPS Y5, Y3, Y3
ilv256_tailstore:
	VMASKMOVPS Y2, Y6, (DI)
	VMASKMOVPS Y3, Y7, 32(DI)
ilv256_done:
	VZEROUPPER
	RET

// ct256: the constants of tanh and GELUTanh (vtanh256, vgelutanh256,
// vgelutanhgrad256), 8 copies each.
// 9: tanh's clamp of |x| (tanh 9 rounds to 1)
DATA ct256<>+0(SB)/8, $0x4110000041100000
DATA ct256<>+8(SB)/8, $0x4110000041100000
DATA ct256<>+16(SB)/8, $0x4110000041100000
DATA ct256<>+24(SB)/8, $0x4110000041100000
// -2
DATA ct256<>+32(SB)/8, $0xc0000000c0000000
DATA ct256<>+40(SB)/8, $0xc0000000c0000000
DATA ct256<>+48(SB)/8, $0xc0000000c0000000
DATA ct256<>+56(SB)/8, $0xc0000000c0000000
// 2
DATA ct256<>+64(SB)/8, $0x4000000040000000
DATA ct256<>+72(SB)/8, $0x4000000040000000
DATA ct256<>+80(SB)/8, $0x4000000040000000
DATA ct256<>+88(SB)/8, $0x4000000040000000
// gtA = -2 sqrt(2/pi)
DATA ct256<>+96(SB)/8, $0xbfcc422abfcc422a
DATA ct256<>+104(SB)/8, $0xbfcc422abfcc422a
DATA ct256<>+112(SB)/8, $0xbfcc422abfcc422a
DATA ct256<>+120(SB)/8, $0xbfcc422abfcc422a
// gtB = -2 sqrt(2/pi) * 0.044715
DATA ct256<>+128(SB)/8, $0xbd922279bd922279
DATA ct256<>+136(SB)/8, $0xbd922279bd922279
DATA ct256<>+144(SB)/8, $0xbd922279bd922279
DATA ct256<>+152(SB)/8, $0xbd922279bd922279
// gtK = 2 sqrt(2/pi)
DATA ct256<>+160(SB)/8, $0x3fcc422a3fcc422a
DATA ct256<>+168(SB)/8, $0x3fcc422a3fcc422a
DATA ct256<>+176(SB)/8, $0x3fcc422a3fcc422a
DATA ct256<>+184(SB)/8, $0x3fcc422a3fcc422a
// gtG = 3 * 0.044715 * 2 sqrt(2/pi)
DATA ct256<>+192(SB)/8, $0x3e5b33b63e5b33b6
DATA ct256<>+200(SB)/8, $0x3e5b33b63e5b33b6
DATA ct256<>+208(SB)/8, $0x3e5b33b63e5b33b6
DATA ct256<>+216(SB)/8, $0x3e5b33b63e5b33b6
// 88 and -88: where GELUTanh's gradient is 0 or 1 (-2u beyond them)
DATA ct256<>+224(SB)/8, $0x42b0000042b00000
DATA ct256<>+232(SB)/8, $0x42b0000042b00000
DATA ct256<>+240(SB)/8, $0x42b0000042b00000
DATA ct256<>+248(SB)/8, $0x42b0000042b00000
DATA ct256<>+256(SB)/8, $0xc2b00000c2b00000
DATA ct256<>+264(SB)/8, $0xc2b00000c2b00000
DATA ct256<>+272(SB)/8, $0xc2b00000c2b00000
DATA ct256<>+280(SB)/8, $0xc2b00000c2b00000
GLOBL ct256<>(SB), RODATA|NOPTR, $288

#define CT_NINE ct256<>+0(SB)
#define CT_MTWO ct256<>+32(SB)
#define CT_TWO ct256<>+64(SB)
#define CT_GTA ct256<>+96(SB)
#define CT_GTB ct256<>+128(SB)
#define CT_GTK ct256<>+160(SB)
#define CT_GTG ct256<>+192(SB)
#define CT_88 ct256<>+224(SB)
#define CT_M88 ct256<>+256(SB)

// TANH256 sets y = tanh x as tanhf does (x kept): a = min(|x|, 9) (NaN
// kept), z = -2a = n ln2 + r as in EXP256 (n in [-26, 0], so 2^n is one
// normal float), q = e^r - 1 = r + r^2 p(r) by EXP256's polynomial,
// m = e^z - 1 = 2^n q + (2^n - 1) in one FMA (q itself for n = 0: no
// cancellation for small a), tanh a = -m/(2+m), x's sign put back.
// Clobbers t1-t4.
#define TANH256(x, y, t1, t2, t3, t4) \
	VANDPS C_ABS, x, t1; \
	VXORPS t1, x, t4; \
	VMOVUPS CT_NINE, t2; \
	VMINPS t1, t2, t1; \
	VMULPS CT_MTWO, t1, t1; \
	VMULPS C_LOG2E, t1, t2; \
	VROUNDPS $0, t2, t2; \
	VFMADD231PS C_LN2HI, t2, t1; \
	VFMADD231PS C_LN2LO, t2, t1; \
	VMOVUPS C_E0, t3; \
	VFMADD213PS C_E1, t1, t3; \
	VFMADD213PS C_E2, t1, t3; \
	VFMADD213PS C_E3, t1, t3; \
	VFMADD213PS C_E4, t1, t3; \
	VFMADD213PS C_HALF, t1, t3; \
	VMULPS t1, t1, y; \
	VFMADD213PS t1, y, t3; \
	VCVTPS2DQ t2, t2; \
	VPADDD C_BIAS, t2, t2; \
	VPSLLD $23, t2, t2; \
	VSUBPS C_ONE, t2, y; \
	VFMADD231PS t3, t2, y; \
	VADDPS CT_TWO, y, t3; \
	VDIVPS t3, y, y; \
	VANDPS C_ABS, y, y; \
	VORPS t4, y, y

// GELUTANH256 sets y = GELUTanh(x) = x / (1 + e^(-2u)) as geluTanhf does,
// -2u = x (gtA + gtB x^2) (x kept; +Inf gives +Inf, -Inf NaN, as
// 0.5 x (1 + tanh u) does). Clobbers t1-t4.
#define GELUTANH256(x, y, t1, t2, t3, t4) \
	VMULPS x, x, t1; \
	VMOVUPS CT_GTB, t2; \
	VFMADD213PS CT_GTA, t1, t2; \
	VMULPS x, t2, t1; \
	EXP256(t1, t2, t3, t4); \
	VADDPS C_ONE, t1, t1; \
	VDIVPS t1, x, y

// GELUTANHGRAD256 sets Y4 = GELUTanh'(x) for x in Y0 as geluTanhGradf
// does: e = e^(-2u), s = 1/(1+e), s (1 + x (e s) (gtK + gtG x^2)); 0
// where -2u > 88 (NaN, from Inf*0, replaced too), 1 where -2u < -88 (NaN
// stays NaN: the compares are ordered). Clobbers Y1-Y3, Y5, Y7.
#define GELUTANHGRAD256 \
	VMULPS Y0, Y0, Y1; \
	VMOVUPS CT_GTB, Y2; \
	VFMADD213PS CT_GTA, Y1, Y2; \
	VMULPS Y0, Y2, Y2; \
	VMOVAPS Y2, Y7; \
	EXP256(Y2, Y3, Y4, Y5); \
	VADDPS C_ONE, Y2, Y4; \
	VMOVUPS C_ONE, Y5; \
	VDIVPS Y4, Y5, Y4; \
	VMULPS Y4, Y2, Y2; \
	VMULPS Y0, Y2, Y2; \
	VMOVUPS CT_GTG, Y3; \
	VFMADD213PS CT_GTK, Y1, Y3; \
	VMOVUPS C_ONE, Y5; \
	VFMADD231PS Y3, Y2, Y5; \
	VMULPS Y5, Y4, Y4; \
	VCMPPS $0x1e, CT_88, Y7, Y5; \
	VANDNPS Y4, Y5, Y4; \
	VCMPPS $0x11, CT_M88, Y7, Y5; \
	VBLENDVPS Y5, C_ONE, Y4, Y4

// func vtanh256(y, x *float32, n int)
TEXT ·vtanh256(SB), NOSPLIT, $0-24
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
tanh256_loop:
	CMPQ CX, $8
	JLT tanh256_tail
	VMOVUPS (SI), Y0
	TANH256(Y0, Y1, Y2, Y3, Y4, Y5)
	VMOVUPS Y1, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP tanh256_loop
tanh256_tail:
	TESTQ CX, CX
	JZ tanh256_done
	TAILMASK256(Y15)
	VMASKMOVPS (SI), Y15, Y0
	TANH256(Y0, Y1, Y2, Y3, Y4, Y5)
	VMASKMOVPS Y1, Y15, (DI)
tanh256_done:
	VZEROUPPER
	RET

// func vgelutanh256(y, x *float32, n int)
TEXT ·vgelutanh256(SB), NOSPLIT, $0-24
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
gelutanh256_loop:
	CMPQ CX, $8
	JLT gelutanh256_tail
	VMOVUPS (SI), Y0
	GELUTANH256(Y0, Y1, Y2, Y3, Y4, Y5)
	VMOVUPS Y1, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP gelutanh256_loop
gelutanh256_tail:
	TESTQ CX, CX
	JZ gelutanh256_done
	TAILMASK256(Y15)
	VMASKMOVPS (SI), Y15, Y0
	GELUTANH256(Y0, Y1, Y2, Y3, Y4, Y5)
	VMASKMOVPS Y1, Y15, (DI)
gelutanh256_done:
	VZEROUPPER
	RET

// func vgelutanhgrad256(dx, x, dy *float32, n int, set bool)
// dx += dy * GELUTanh'(x); with set, dx = 0 + dy * GELUTanh'(x), dx not
// read.
TEXT ·vgelutanhgrad256(SB), NOSPLIT, $0-33
	MOVQ dx+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ dy+16(FP), DX
	MOVQ n+24(FP), CX
	MOVBQZX set+32(FP), R8
gelutanhgrad256_loop:
	CMPQ CX, $8
	JLT gelutanhgrad256_tail
	VMOVUPS (SI), Y0
	GELUTANHGRAD256
	VXORPS Y6, Y6, Y6
	TESTQ R8, R8
	JNE gelutanhgrad256_add
	VMOVUPS (DI), Y6
gelutanhgrad256_add:
	VFMADD231PS (DX), Y4, Y6
	VMOVUPS Y6, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, DX
	SUBQ $8, CX
	JMP gelutanhgrad256_loop
gelutanhgrad256_tail:
	TESTQ CX, CX
	JZ gelutanhgrad256_done
	TAILMASK256(Y15)
	VMASKMOVPS (SI), Y15, Y0
	GELUTANHGRAD256
	VXORPS Y6, Y6, Y6
	TESTQ R8, R8
	JNE gelutanhgrad256_addtail
	VMASKMOVPS (DI), Y15, Y6
gelutanhgrad256_addtail:
	VMASKMOVPS (DX), Y15, Y5
	VFMADD231PS Y5, Y4, Y6
	VMASKMOVPS Y6, Y15, (DI)
gelutanhgrad256_done:
	VZEROUPPER
	RET
