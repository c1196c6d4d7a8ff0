//go:build !purego

#include "textflag.h"

// The float16 kernels for CPUs with AVX2, FMA and F16C but no AVX-512
// (haveHalf2): the KV cache's conversion (vtohalf2), decoding attention's
// scores and weighted sums over float16 keys and values (vdotsh2,
// vwsumh2, also the float16 weights' decoding products) and the float16
// weights' prefill packing (packTransposeHalf8). Without AVX-512's masked
// loads, the tails that do not fill a vector run one value at a time
// (VCVTPH2PS on a scalar); the sums' orders are spelled out in
// half_avx2_test.go's Go models, which the tests compare bit for bit.

// lanemask: from byte (8-cnt)*4, eight dwords whose first cnt are all
// ones (packTransposeHalf8's lanes beyond the rows it has are zeroed).
DATA lanemask<>+0(SB)/8, $0xffffffffffffffff
DATA lanemask<>+8(SB)/8, $0xffffffffffffffff
DATA lanemask<>+16(SB)/8, $0xffffffffffffffff
DATA lanemask<>+24(SB)/8, $0xffffffffffffffff
DATA lanemask<>+32(SB)/8, $0
DATA lanemask<>+40(SB)/8, $0
DATA lanemask<>+48(SB)/8, $0
DATA lanemask<>+56(SB)/8, $0
GLOBL lanemask<>(SB), RODATA|NOPTR, $64

// func vtohalf2(dst *uint16, src *float32, n int)
// dst = float16(src), rounded to nearest even after saturating at
// +-65504 (NaN stays NaN: VMINPS returns its second source, src, for a
// NaN), eight values a step, then one at a time: vtohalf's arithmetic.
TEXT ·vtohalf2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVL $0x477fe000, AX // 65504
	VMOVD AX, X14
	VBROADCASTSS X14, Y14
	MOVL $0xc77fe000, AX // -65504
	VMOVD AX, X15
	VBROADCASTSS X15, Y15
tohalf2_loop16:
	CMPQ CX, $16
	JLT tohalf2_loop8
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMINPS Y0, Y14, Y0
	VMINPS Y1, Y14, Y1
	VMAXPS Y0, Y15, Y0
	VMAXPS Y1, Y15, Y1
	VCVTPS2PH $0, Y0, (DI)
	VCVTPS2PH $0, Y1, 16(DI)
	ADDQ $64, SI
	ADDQ $32, DI
	SUBQ $16, CX
	JMP tohalf2_loop16
tohalf2_loop8:
	CMPQ CX, $8
	JLT tohalf2_tail
	VMOVUPS (SI), Y0
	VMINPS Y0, Y14, Y0
	VMAXPS Y0, Y15, Y0
	VCVTPS2PH $0, Y0, (DI)
	ADDQ $32, SI
	ADDQ $16, DI
	SUBQ $8, CX
tohalf2_tail:
	TESTQ CX, CX
	JZ tohalf2_done
	VMOVSS (SI), X0
	VMINSS X0, X14, X0
	VMAXSS X0, X15, X0
	VCVTPS2PH $0, X0, X1
	VMOVD X1, AX
	MOVW AX, (DI)
	ADDQ $4, SI
	ADDQ $2, DI
	DECQ CX
	JMP tohalf2_tail
tohalf2_done:
	VZEROUPPER
	RET

// func vdotsh2(out, q *float32, k *uint16, ldk, n, d int, scale float32)
// out[j] = scale * dot(q[:d], k[j*ldk:j*ldk+d]) for j < n, k float16.
// Each dot: four accumulators of 8 lanes over steps of 32 values (value
// i+8a+l into accumulator a, lane l, by one fused multiply-add), then
// steps of 8 into the first; the last d%8 values into a scalar t, one
// fused multiply-add each; then ((a0+a1)+(a2+a3)) lane by lane, the upper
// four lanes added to the lower, lanes 2,3 to 0,1, lane 1 to lane 0,
// then t; then times scale.
TEXT ·vdotsh2(SB), NOSPLIT, $0-52
	MOVQ out+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ k+16(FP), DX
	MOVQ ldk+24(FP), R8
	SHLQ $1, R8
	MOVQ R8, R13
	SHLQ $5, R13
	MOVQ n+32(FP), BX
	MOVQ d+40(FP), R9
	VMOVSS scale+48(FP), X15
dotsh2_key:
	TESTQ BX, BX
	JZ dotsh2_done
	PREFETCHT0 (DX)(R13*1)
	PREFETCHT0 64(DX)(R13*1)
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS X6, X6, X6
	MOVQ SI, R10
	MOVQ DX, R11
	MOVQ R9, CX
dotsh2_loop32:
	CMPQ CX, $32
	JLT dotsh2_loop8
	PREFETCHT0 1024(R11) // the stream 16 lines ahead: decoding reads W once, from memory
	VCVTPH2PS (R11), Y8
	VCVTPH2PS 16(R11), Y9
	VCVTPH2PS 32(R11), Y10
	VCVTPH2PS 48(R11), Y11
	VFMADD231PS (R10), Y8, Y0
	VFMADD231PS 32(R10), Y9, Y1
	VFMADD231PS 64(R10), Y10, Y2
	VFMADD231PS 96(R10), Y11, Y3
	ADDQ $128, R10
	ADDQ $64, R11
	SUBQ $32, CX
	JMP dotsh2_loop32
dotsh2_loop8:
	CMPQ CX, $8
	JLT dotsh2_tail
	VCVTPH2PS (R11), Y8
	VFMADD231PS (R10), Y8, Y0
	ADDQ $32, R10
	ADDQ $16, R11
	SUBQ $8, CX
	JMP dotsh2_loop8
dotsh2_tail:
	TESTQ CX, CX
	JZ dotsh2_sum
	MOVWLZX (R11), AX
	VMOVD AX, X8
	VCVTPH2PS X8, X8
	VFMADD231SS (R10), X8, X6
	ADDQ $4, R10
	ADDQ $2, R11
	DECQ CX
	JMP dotsh2_tail
dotsh2_sum:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVHLPS X0, X0, X1
	VADDPS X1, X0, X0
	VMOVSHDUP X0, X1
	VADDSS X1, X0, X0
	VADDSS X6, X0, X0
	VMULSS X15, X0, X0
	VMOVSS X0, (DI)
	ADDQ $4, DI
	ADDQ R8, DX
	DECQ BX
	JMP dotsh2_key
dotsh2_done:
	VZEROUPPER
	RET

// WSUMH2_COL8(off, acc): acc += p[j] (Y8) * the 8 float16 values at
// off(R11), widened.
#define WSUMH2_COL8(off, acc) \
	VCVTPH2PS off(R11), Y9; \
	VFMADD231PS Y9, Y8, acc

// func vwsumh2(o, p *float32, v *uint16, ldv, n, d int)
// o = sum over j < n of p[j] * v[j*ldv : j*ldv+d], v float16: each
// column's terms added in order from zero, one fused multiply-add each
// (vwsumh's arithmetic), over chunks of 64 columns held in eight
// registers across the keys, then one of 32 (four), then of 8, then
// single columns.
TEXT ·vwsumh2(SB), NOSPLIT, $0-48
	MOVQ o+0(FP), DI
	MOVQ p+8(FP), SI
	MOVQ v+16(FP), DX
	MOVQ ldv+24(FP), R8
	SHLQ $1, R8
	MOVQ R8, R13
	SHLQ $5, R13
	MOVQ n+32(FP), BX
	MOVQ d+40(FP), R9
wsumh2_chunk64:
	CMPQ R9, $64
	JLT wsumh2_chunk32
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ SI, R10
	MOVQ DX, R11
	MOVQ BX, CX
wsumh2_key64:
	TESTQ CX, CX
	JZ wsumh2_store64
	PREFETCHT0 (R11)(R13*1)
	PREFETCHT0 64(R11)(R13*1)
	VBROADCASTSS (R10), Y8
	WSUMH2_COL8(0, Y0)
	WSUMH2_COL8(16, Y1)
	WSUMH2_COL8(32, Y2)
	WSUMH2_COL8(48, Y3)
	WSUMH2_COL8(64, Y4)
	WSUMH2_COL8(80, Y5)
	WSUMH2_COL8(96, Y6)
	WSUMH2_COL8(112, Y7)
	ADDQ $4, R10
	ADDQ R8, R11
	DECQ CX
	JMP wsumh2_key64
wsumh2_store64:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VMOVUPS Y4, 128(DI)
	VMOVUPS Y5, 160(DI)
	VMOVUPS Y6, 192(DI)
	VMOVUPS Y7, 224(DI)
	ADDQ $256, DI
	ADDQ $128, DX
	SUBQ $64, R9
	JMP wsumh2_chunk64
wsumh2_chunk32:
	CMPQ R9, $32
	JLT wsumh2_chunk8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ SI, R10
	MOVQ DX, R11
	MOVQ BX, CX
wsumh2_key32:
	TESTQ CX, CX
	JZ wsumh2_store32
	PREFETCHT0 (R11)(R13*1)
	VBROADCASTSS (R10), Y8
	WSUMH2_COL8(0, Y0)
	WSUMH2_COL8(16, Y1)
	WSUMH2_COL8(32, Y2)
	WSUMH2_COL8(48, Y3)
	ADDQ $4, R10
	ADDQ R8, R11
	DECQ CX
	JMP wsumh2_key32
wsumh2_store32:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, DI
	ADDQ $64, DX
	SUBQ $32, R9
wsumh2_chunk8:
	CMPQ R9, $8
	JLT wsumh2_col
	VXORPS Y0, Y0, Y0
	MOVQ SI, R10
	MOVQ DX, R11
	MOVQ BX, CX
wsumh2_key8:
	TESTQ CX, CX
	JZ wsumh2_store8
	VBROADCASTSS (R10), Y8
	WSUMH2_COL8(0, Y0)
	ADDQ $4, R10
	ADDQ R8, R11
	DECQ CX
	JMP wsumh2_key8
wsumh2_store8:
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	ADDQ $16, DX
	SUBQ $8, R9
	JMP wsumh2_chunk8
wsumh2_col:
	TESTQ R9, R9
	JLE wsumh2_done
	VXORPS X0, X0, X0
	MOVQ SI, R10
	MOVQ DX, R11
	MOVQ BX, CX
wsumh2_key1:
	TESTQ CX, CX
	JZ wsumh2_store1
	MOVWLZX (R11), AX
	VMOVD AX, X9
	VCVTPH2PS X9, X9
	VFMADD231SS (R10), X9, X0
	ADDQ $4, R10
	ADDQ R8, R11
	DECQ CX
	JMP wsumh2_key1
wsumh2_store1:
	VMOVSS X0, (DI)
	ADDQ $4, DI
	ADDQ $2, DX
	DECQ R9
	JMP wsumh2_col
wsumh2_done:
	VZEROUPPER
	RET

// PTH8_ROW(i, reg): reg = the 8 float16 values at BX widened, where BX
// is row i's if i < cnt (DX), else the last row's (lanes beyond cnt are
// zeroed after the transpose); BX moves from row i-1 to row i.
#define PTH8_ROW(i, reg) \
	LEAQ (BX)(R9*1), AX; \
	CMPQ DX, $i; \
	CMOVQGT AX, BX; \
	VCVTPH2PS (BX), reg

// PTH8_STORE(reg): the next step's 8 lanes, those beyond cnt zeroed.
#define PTH8_STORE(reg) \
	VANDPS (R10), reg, reg; \
	VMOVUPS reg, (DI); \
	ADDQ R8, DI

// func packTransposeHalf8(dst *float32, dstStride int, src *uint16, srcStride int, kc int, cnt int)
// packTransposeHalf for 8 lanes and kc a multiple of 8: dst[p*dstStride+i]
// = src[i*srcStride+p] widened for p < kc and i < cnt, zero for cnt <= i
// < 8; each block of 8 steps is 8 rows widened (VCVTPH2PS) and transposed
// in registers (unpack, shuffle, 128-bit permute).
TEXT ·packTransposeHalf8(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ dstStride+8(FP), R8
	SHLQ $2, R8
	MOVQ src+16(FP), SI
	MOVQ srcStride+24(FP), R9
	SHLQ $1, R9
	MOVQ kc+32(FP), CX
	MOVQ cnt+40(FP), DX
	LEAQ lanemask<>(SB), R10
	MOVQ $8, AX
	SUBQ DX, AX
	LEAQ (R10)(AX*4), R10
pth8_loop:
	CMPQ CX, $8
	JLT pth8_done
	MOVQ SI, BX
	VCVTPH2PS (BX), Y0
	PTH8_ROW(1, Y1)
	PTH8_ROW(2, Y2)
	PTH8_ROW(3, Y3)
	PTH8_ROW(4, Y4)
	PTH8_ROW(5, Y5)
	PTH8_ROW(6, Y6)
	PTH8_ROW(7, Y7)
	// Pairs of rows interleaved: Y8 = r0[0] r1[0] r0[1] r1[1] | r0[4] ...
	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15
	// Quads: Y0 = r0..r3 of step 0 | of step 4, Y1 steps 1|5, Y2 2|6,
	// Y3 3|7; Y4..Y7 the same of r4..r7.
	VSHUFPS $0x44, Y10, Y8, Y0
	VSHUFPS $0xee, Y10, Y8, Y1
	VSHUFPS $0x44, Y11, Y9, Y2
	VSHUFPS $0xee, Y11, Y9, Y3
	VSHUFPS $0x44, Y14, Y12, Y4
	VSHUFPS $0xee, Y14, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y6
	VSHUFPS $0xee, Y15, Y13, Y7
	// Steps: the low halves give steps 0..3, the high halves 4..7.
	VPERM2F128 $0x20, Y4, Y0, Y8
	VPERM2F128 $0x20, Y5, Y1, Y9
	VPERM2F128 $0x20, Y6, Y2, Y10
	VPERM2F128 $0x20, Y7, Y3, Y11
	VPERM2F128 $0x31, Y4, Y0, Y12
	VPERM2F128 $0x31, Y5, Y1, Y13
	VPERM2F128 $0x31, Y6, Y2, Y14
	VPERM2F128 $0x31, Y7, Y3, Y15
	PTH8_STORE(Y8)
	PTH8_STORE(Y9)
	PTH8_STORE(Y10)
	PTH8_STORE(Y11)
	PTH8_STORE(Y12)
	PTH8_STORE(Y13)
	PTH8_STORE(Y14)
	PTH8_STORE(Y15)
	ADDQ $16, SI
	SUBQ $8, CX
	JMP pth8_loop
pth8_done:
	VZEROUPPER
	RET

// func vdotsh2x8(out, q *float32, k *uint16, ldk, blocks, d int, scale float32)
// vdotsh2 over blocks of 8 keys (d a multiple of 8): out[j] = scale *
// dot(q[:d], k[j*ldk:j*ldk+d]) for j < 8*blocks, each key's 8 lanes
// summed by one fused multiply-add a value, in order, then (lanes
// 0+1 + 2+3) + (4+5 + 6+7) by two horizontal adds; then the 8 sums
// together times scale. One load of q serves the 8 keys.
TEXT ·vdotsh2x8(SB), NOSPLIT, $0-52
	MOVQ out+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ k+16(FP), DX
	MOVQ ldk+24(FP), R8
	SHLQ $1, R8
	LEAQ (R8)(R8*2), R13 // 3 keys
	MOVQ blocks+32(FP), BX
	MOVQ d+40(FP), R9
	VBROADCASTSS scale+48(FP), Y15
dotsh2x8_block:
	TESTQ BX, BX
	JZ dotsh2x8_done
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ SI, R10
	MOVQ DX, R11
	LEAQ (DX)(R8*4), R12 // keys 4..7
	MOVQ R9, CX
dotsh2x8_step:
	TESTQ CX, CX
	JZ dotsh2x8_sum
	VMOVUPS (R10), Y8
	VCVTPH2PS (R11), Y9
	VCVTPH2PS (R11)(R8*1), Y10
	VFMADD231PS Y9, Y8, Y0
	VFMADD231PS Y10, Y8, Y1
	VCVTPH2PS (R11)(R8*2), Y9
	VCVTPH2PS (R11)(R13*1), Y10
	VFMADD231PS Y9, Y8, Y2
	VFMADD231PS Y10, Y8, Y3
	VCVTPH2PS (R12), Y9
	VCVTPH2PS (R12)(R8*1), Y10
	VFMADD231PS Y9, Y8, Y4
	VFMADD231PS Y10, Y8, Y5
	VCVTPH2PS (R12)(R8*2), Y9
	VCVTPH2PS (R12)(R13*1), Y10
	VFMADD231PS Y9, Y8, Y6
	VFMADD231PS Y10, Y8, Y7
	ADDQ $32, R10
	ADDQ $16, R11
	ADDQ $16, R12
	SUBQ $8, CX
	JMP dotsh2x8_step
dotsh2x8_sum:
	// Y0 = key 0's lanes 0+1, 2+3, key 1's, | the same of lanes 4..7.
	VHADDPS Y1, Y0, Y0
	VHADDPS Y3, Y2, Y2
	VHADDPS Y5, Y4, Y4
	VHADDPS Y7, Y6, Y6
	// Y0 = keys 0..3's (0+1)+(2+3) | their (4+5)+(6+7); Y4 keys 4..7's.
	VHADDPS Y2, Y0, Y0
	VHADDPS Y6, Y4, Y4
	VPERM2F128 $0x20, Y4, Y0, Y1
	VPERM2F128 $0x31, Y4, Y0, Y2
	VADDPS Y2, Y1, Y1
	VMULPS Y15, Y1, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, DI
	LEAQ (DX)(R8*8), DX
	DECQ BX
	JMP dotsh2x8_block
dotsh2x8_done:
	VZEROUPPER
	RET

// func vfromhalf2(dst *float32, src *uint16, n int)
// dst = float32(src), 16 values a step (VCVTPH2PS), then 8, then one at a
// time: f16ToF32 exactly, but that a signaling NaN comes out quiet.
TEXT ·vfromhalf2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
fromhalf2_loop16:
	CMPQ CX, $16
	JLT fromhalf2_loop8
	VCVTPH2PS (SI), Y0
	VCVTPH2PS 16(SI), Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $32, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP fromhalf2_loop16
fromhalf2_loop8:
	CMPQ CX, $8
	JLT fromhalf2_tail
	VCVTPH2PS (SI), Y0
	VMOVUPS Y0, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $8, CX
fromhalf2_tail:
	TESTQ CX, CX
	JZ fromhalf2_done
	MOVWLZX (SI), AX
	VMOVD AX, X0
	VCVTPH2PS X0, X0
	VMOVSS X0, (DI)
	ADDQ $2, SI
	ADDQ $4, DI
	DECQ CX
	JMP fromhalf2_tail
fromhalf2_done:
	VZEROUPPER
	RET

// func vdotsh2r3(out *float32, ldo int, x *float32, ldx int, k *uint16, ldk, n, d int)
// vdotsh2 (scale 1) for 3 rows of activations at once: out[r*ldo+j] =
// dot(x[r*ldx:r*ldx+d], k[j*ldk:j*ldk+d]) for r < 3, j < n. Each float16
// value of k is widened once for the 3 rows; each row's sums are
// vdotsh2's, accumulator by accumulator and lane by lane (rows in
// Y0-Y3, Y4-Y7, Y8-Y11), so every output is bit for bit vdotsh2's for that
// row alone. The last d%8 values' scalars are summed after the vectors'
// reduction (independent of it) in the freed X1, X5, X9.
TEXT ·vdotsh2r3(SB), NOSPLIT, $0-64
	MOVQ out+0(FP), DI
	MOVQ ldo+8(FP), R14
	SHLQ $2, R14
	MOVQ x+16(FP), SI
	MOVQ ldx+24(FP), R12
	SHLQ $2, R12
	MOVQ k+32(FP), DX
	MOVQ ldk+40(FP), R8
	SHLQ $1, R8
	MOVQ R8, R13
	SHLQ $5, R13
	MOVQ n+48(FP), BX
	MOVQ d+56(FP), R9
dotsh2r3_key:
	TESTQ BX, BX
	JZ dotsh2r3_done
	PREFETCHT0 (DX)(R13*1)
	PREFETCHT0 64(DX)(R13*1)
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	MOVQ SI, R10
	MOVQ DX, R11
	MOVQ R9, CX
dotsh2r3_loop32:
	CMPQ CX, $32
	JLT dotsh2r3_loop8
	PREFETCHT0 1024(R11)
	VCVTPH2PS (R11), Y12
	VCVTPH2PS 16(R11), Y13
	VCVTPH2PS 32(R11), Y14
	VCVTPH2PS 48(R11), Y15
	VFMADD231PS (R10), Y12, Y0
	VFMADD231PS 32(R10), Y13, Y1
	VFMADD231PS 64(R10), Y14, Y2
	VFMADD231PS 96(R10), Y15, Y3
	VFMADD231PS (R10)(R12*1), Y12, Y4
	VFMADD231PS 32(R10)(R12*1), Y13, Y5
	VFMADD231PS 64(R10)(R12*1), Y14, Y6
	VFMADD231PS 96(R10)(R12*1), Y15, Y7
	VFMADD231PS (R10)(R12*2), Y12, Y8
	VFMADD231PS 32(R10)(R12*2), Y13, Y9
	VFMADD231PS 64(R10)(R12*2), Y14, Y10
	VFMADD231PS 96(R10)(R12*2), Y15, Y11
	ADDQ $128, R10
	ADDQ $64, R11
	SUBQ $32, CX
	JMP dotsh2r3_loop32
dotsh2r3_loop8:
	CMPQ CX, $8
	JLT dotsh2r3_reduce
	VCVTPH2PS (R11), Y12
	VFMADD231PS (R10), Y12, Y0
	VFMADD231PS (R10)(R12*1), Y12, Y4
	VFMADD231PS (R10)(R12*2), Y12, Y8
	ADDQ $32, R10
	ADDQ $16, R11
	SUBQ $8, CX
	JMP dotsh2r3_loop8
dotsh2r3_reduce:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVHLPS X0, X0, X1
	VADDPS X1, X0, X0
	VMOVSHDUP X0, X1
	VADDSS X1, X0, X0
	VXORPS X1, X1, X1
	VADDPS Y5, Y4, Y4
	VADDPS Y7, Y6, Y6
	VADDPS Y6, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VADDPS X5, X4, X4
	VMOVHLPS X4, X4, X5
	VADDPS X5, X4, X4
	VMOVSHDUP X4, X5
	VADDSS X5, X4, X4
	VXORPS X5, X5, X5
	VADDPS Y9, Y8, Y8
	VADDPS Y11, Y10, Y10
	VADDPS Y10, Y8, Y8
	VEXTRACTF128 $1, Y8, X9
	VADDPS X9, X8, X8
	VMOVHLPS X8, X8, X9
	VADDPS X9, X8, X8
	VMOVSHDUP X8, X9
	VADDSS X9, X8, X8
	VXORPS X9, X9, X9
dotsh2r3_tail:
	TESTQ CX, CX
	JZ dotsh2r3_sum
	MOVWLZX (R11), AX
	VMOVD AX, X12
	VCVTPH2PS X12, X12
	VFMADD231SS (R10), X12, X1
	VFMADD231SS (R10)(R12*1), X12, X5
	VFMADD231SS (R10)(R12*2), X12, X9
	ADDQ $4, R10
	ADDQ $2, R11
	DECQ CX
	JMP dotsh2r3_tail
dotsh2r3_sum:
	VADDSS X1, X0, X0
	VMOVSS X0, (DI)
	VADDSS X5, X4, X4
	VMOVSS X4, (DI)(R14*1)
	VADDSS X9, X8, X8
	VMOVSS X8, (DI)(R14*2)
	ADDQ $4, DI
	ADDQ R8, DX
	DECQ BX
	JMP dotsh2r3_key
dotsh2r3_done:
	VZEROUPPER
	RET

// func vdotsh2r2(out *float32, ldo int, x *float32, ldx int, k *uint16, ldk, n, d int)
// vdotsh2 (scale 1) for 2 rows of activations at once: out[r*ldo+j] =
// dot(x[r*ldx:r*ldx+d], k[j*ldk:j*ldk+d]) for r < 2, j < n. Each float16
// value of k is widened once for the 2 rows; each row's sums are
// vdotsh2's, accumulator by accumulator and lane by lane (rows in
// Y0-Y3, Y4-Y7), so every output is bit for bit vdotsh2's for that
// row alone. The last d%8 values' scalars are summed after the vectors'
// reduction (independent of it) in the freed X1, X5.
TEXT ·vdotsh2r2(SB), NOSPLIT, $0-64
	MOVQ out+0(FP), DI
	MOVQ ldo+8(FP), R14
	SHLQ $2, R14
	MOVQ x+16(FP), SI
	MOVQ ldx+24(FP), R12
	SHLQ $2, R12
	MOVQ k+32(FP), DX
	MOVQ ldk+40(FP), R8
	SHLQ $1, R8
	MOVQ R8, R13
	SHLQ $5, R13
	MOVQ n+48(FP), BX
	MOVQ d+56(FP), R9
dotsh2r2_key:
	TESTQ BX, BX
	JZ dotsh2r2_done
	PREFETCHT0 (DX)(R13*1)
	PREFETCHT0 64(DX)(R13*1)
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ SI, R10
	MOVQ DX, R11
	MOVQ R9, CX
dotsh2r2_loop32:
	CMPQ CX, $32
	JLT dotsh2r2_loop8
	PREFETCHT0 1024(R11)
	VCVTPH2PS (R11), Y12
	VCVTPH2PS 16(R11), Y13
	VCVTPH2PS 32(R11), Y14
	VCVTPH2PS 48(R11), Y15
	VFMADD231PS (R10), Y12, Y0
	VFMADD231PS 32(R10), Y13, Y1
	VFMADD231PS 64(R10), Y14, Y2
	VFMADD231PS 96(R10), Y15, Y3
	VFMADD231PS (R10)(R12*1), Y12, Y4
	VFMADD231PS 32(R10)(R12*1), Y13, Y5
	VFMADD231PS 64(R10)(R12*1), Y14, Y6
	VFMADD231PS 96(R10)(R12*1), Y15, Y7
	ADDQ $128, R10
	ADDQ $64, R11
	SUBQ $32, CX
	JMP dotsh2r2_loop32
dotsh2r2_loop8:
	CMPQ CX, $8
	JLT dotsh2r2_reduce
	VCVTPH2PS (R11), Y12
	VFMADD231PS (R10), Y12, Y0
	VFMADD231PS (R10)(R12*1), Y12, Y4
	ADDQ $32, R10
	ADDQ $16, R11
	SUBQ $8, CX
	JMP dotsh2r2_loop8
dotsh2r2_reduce:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVHLPS X0, X0, X1
	VADDPS X1, X0, X0
	VMOVSHDUP X0, X1
	VADDSS X1, X0, X0
	VXORPS X1, X1, X1
	VADDPS Y5, Y4, Y4
	VADDPS Y7, Y6, Y6
	VADDPS Y6, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VADDPS X5, X4, X4
	VMOVHLPS X4, X4, X5
	VADDPS X5, X4, X4
	VMOVSHDUP X4, X5
	VADDSS X5, X4, X4
	VXORPS X5, X5, X5
dotsh2r2_tail:
	TESTQ CX, CX
	JZ dotsh2r2_sum
	MOVWLZX (R11), AX
	VMOVD AX, X12
	VCVTPH2PS X12, X12
	VFMADD231SS (R10), X12, X1
	VFMADD231SS (R10)(R12*1), X12, X5
	ADDQ $4, R10
	ADDQ $2, R11
	DECQ CX
	JMP dotsh2r2_tail
dotsh2r2_sum:
	VADDSS X1, X0, X0
	VMOVSS X0, (DI)
	VADDSS X5, X4, X4
	VMOVSS X4, (DI)(R14*1)
	ADDQ $4, DI
	ADDQ R8, DX
	DECQ BX
	JMP dotsh2r2_key
dotsh2r2_done:
	VZEROUPPER
	RET
