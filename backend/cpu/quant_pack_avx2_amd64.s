//go:build !purego

#include "textflag.h"

// Rounding activations to int8 (see quantizeRows) with AVX2 and F16C, a
// block of 32 values a step, as quantizeBlock does bit for bit: the AVX2
// sibling of quant_amd64.s's quantPack.

// packk<>: the scalars 127, 1, 65504 (float16's largest: f32ToF16
// saturates), a NaN; then the dword order that VPERMD puts the packed
// codes back in (VPACKUSDW and VPACKUSWB interleave their 128-bit lanes).
DATA packk<>+0(SB)/4, $0x42fe0000
DATA packk<>+4(SB)/4, $0x3f800000
DATA packk<>+8(SB)/4, $0x477fe000
DATA packk<>+12(SB)/4, $0x7fc00000
DATA packk<>+16(SB)/4, $0
DATA packk<>+20(SB)/4, $4
DATA packk<>+24(SB)/4, $1
DATA packk<>+28(SB)/4, $5
DATA packk<>+32(SB)/4, $2
DATA packk<>+36(SB)/4, $6
DATA packk<>+40(SB)/4, $3
DATA packk<>+44(SB)/4, $7
GLOBL packk<>(SB), RODATA|NOPTR, $48

// PACKCODES rounds the 8 values in v to int8 codes, kept as the low byte
// of each dword (as Go's int8(int32(...)) keeps it; a NaN's 0x80000000
// gives 0): t = v * id (Y6), plus 0.5 with t's sign (Y14: 0x80000000,
// Y13: 0x3f000000), truncated, masked by Y12 (0xff); Y5 is scratch.
#define PACKCODES(v) \
	VMULPS Y6, v, v; \
	VANDPS Y14, v, Y5; \
	VORPS Y13, Y5, Y5; \
	VADDPS Y5, v, v; \
	VCVTTPS2DQ v, v; \
	VPAND Y12, v, v

// func quantPackAVX2(x *float32, nb int, corr, scale, codes *uint32, stride int, shift int32)
TEXT ·quantPackAVX2(SB), NOSPLIT, $0-52
	MOVQ x+0(FP), SI
	MOVQ nb+8(FP), CX
	MOVQ corr+16(FP), R8
	MOVQ scale+24(FP), R9
	MOVQ codes+32(FP), DI
	MOVQ stride+40(FP), R10
	MOVL shift+48(FP), AX
	NEGL AX
	MOVD AX, X8
	MOVL $0x7fffffff, AX
	MOVD AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x80000000, AX
	MOVD AX, X14
	VPBROADCASTD X14, Y14
	MOVL $0x3f000000, AX
	MOVD AX, X13
	VPBROADCASTD X13, Y13
	MOVL $0xff, AX
	MOVD AX, X12
	VPBROADCASTD X12, Y12
	VMOVDQU packk<>+16(SB), Y11
	MOVL $0x01010101, AX
	MOVD AX, X10
	VPBROADCASTD X10, Y10
	MOVL $0x00010001, AX
	MOVD AX, X9
	VPBROADCASTD X9, Y9

blockloop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	// X4's lane 0: the largest |value|, or a NaN if the block holds one.
	VANDPS Y15, Y0, Y4
	VANDPS Y15, Y1, Y5
	VMAXPS Y5, Y4, Y4
	VANDPS Y15, Y2, Y5
	VMAXPS Y5, Y4, Y4
	VANDPS Y15, Y3, Y5
	VMAXPS Y5, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VMAXPS X5, X4, X4
	VPERMILPS $0x4e, X4, X5
	VMAXPS X5, X4, X4
	VPERMILPS $0xb1, X4, X5
	VMAXPS X5, X4, X4
	VCMPPS $3, Y0, Y0, Y6
	VCMPPS $3, Y1, Y1, Y7
	VORPS Y7, Y6, Y6
	VCMPPS $3, Y2, Y2, Y7
	VORPS Y7, Y6, Y6
	VCMPPS $3, Y3, Y3, Y7
	VORPS Y7, Y6, Y6
	VPTEST Y6, Y6
	JZ finite
	VMOVSS packk<>+12(SB), X4

finite:
	// d = amax / 127, stored rounded to float16 (a NaN stays NaN); the
	// codes take id = 1/d, 0 where d is 0.
	VDIVSS packk<>+0(SB), X4, X4
	VMOVSS packk<>+8(SB), X5
	VMINSS X4, X5, X5
	VCVTPS2PH $0, X5, X5
	VCVTPH2PS X5, X5
	VMOVSS X5, (R9)
	VMOVSS packk<>+4(SB), X6
	VDIVSS X4, X6, X6
	VXORPS X7, X7, X7
	VCMPSS $4, X7, X4, X7
	VANDPS X7, X6, X6
	VBROADCASTSS X6, Y6
	PACKCODES(Y0)
	PACKCODES(Y1)
	PACKCODES(Y2)
	PACKCODES(Y3)
	// The bytes in order: a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7
	// after the packs, dwords 0 4 1 5 2 6 3 7 of the block.
	VPACKUSDW Y1, Y0, Y0
	VPACKUSDW Y3, Y2, Y2
	VPACKUSWB Y2, Y0, Y0
	VPERMD Y0, Y11, Y0
	VMOVDQU Y0, (DI)
	// The correction: -shift times the sum of the 32 codes.
	VPMADDUBSW Y0, Y10, Y1
	VPMADDWD Y9, Y1, Y1
	VEXTRACTI128 $1, Y1, X2
	VPADDD X2, X1, X1
	VPSHUFD $0x4e, X1, X2
	VPADDD X2, X1, X1
	VPSHUFD $0xb1, X1, X2
	VPADDD X2, X1, X1
	VPMULLD X8, X1, X1
	VMOVD X1, (R8)
	ADDQ $128, SI
	ADDQ R10, R8
	ADDQ R10, R9
	ADDQ R10, DI
	DECQ CX
	JNZ blockloop
	VZEROUPPER
	RET
