//go:build !purego

#include "textflag.h"

// func vdots(out, q, k *float32, ldk, n, d int, scale float32)
// out[j] = scale * dot(q[:d], k[j*ldk:j*ldk+d]) for j < n, each dot summed
// exactly as vdot sums it, so the scores equal those of Attention.
TEXT ·vdots(SB), NOSPLIT, $0-52
	MOVQ out+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ k+16(FP), DX
	MOVQ ldk+24(FP), R8
	SHLQ $2, R8
	MOVQ R8, R13
	SHLQ $5, R13
	MOVQ n+32(FP), BX
	MOVQ d+40(FP), R9
	MOVSS scale+48(FP), X5
dots_key:
	TESTQ BX, BX
	JZ dots_done
	PREFETCHT0 (DX)(R13*1)
	PREFETCHT0 64(DX)(R13*1)
	VXORPS Z17, Z17, Z17
	VXORPS Z18, Z18, Z18
	VXORPS Z19, Z19, Z19
	VXORPS Z20, Z20, Z20
	MOVQ SI, R10
	MOVQ DX, R11
	MOVQ R9, CX
dots_loop4:
	CMPQ CX, $64
	JLT dots_loop
	VMOVUPS (R10), Z0
	VMOVUPS 64(R10), Z1
	VMOVUPS 128(R10), Z2
	VMOVUPS 192(R10), Z3
	VFMADD231PS (R11), Z0, Z17
	VFMADD231PS 64(R11), Z1, Z18
	VFMADD231PS 128(R11), Z2, Z19
	VFMADD231PS 192(R11), Z3, Z20
	ADDQ $256, R10
	ADDQ $256, R11
	SUBQ $64, CX
	JMP dots_loop4
dots_loop:
	CMPQ CX, $16
	JLT dots_tail
	VMOVUPS (R10), Z0
	VFMADD231PS (R11), Z0, Z17
	ADDQ $64, R10
	ADDQ $64, R11
	SUBQ $16, CX
	JMP dots_loop
dots_tail:
	TESTQ CX, CX
	JZ dots_sum
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1
	VMOVUPS.Z (R10), K1, Z0
	VMOVUPS.Z (R11), K1, Z1
	VFMADD231PS Z1, Z0, Z18
dots_sum:
	VADDPS Z18, Z17, Z17
	VADDPS Z20, Z19, Z19
	VADDPS Z19, Z17, Z17
	VEXTRACTF64X4 $1, Z17, Y1
	VADDPS Y1, Y17, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVHLPS X0, X0, X1
	VADDPS X1, X0, X0
	VMOVSHDUP X0, X1
	VADDSS X1, X0, X0
	VMULSS X5, X0, X0
	VMOVSS X0, (DI)
	ADDQ $4, DI
	ADDQ R8, DX
	DECQ BX
	JMP dots_key
dots_done:
	VZEROUPPER
	RET

// func vwsum(o, p, v *float32, ldv, n, d int, acc bool)
// o[0:d] = (acc ? o : 0) + sum over j < n, in order, of p[j]*v[j*ldv : j*ldv+d],
// each term added with one fused multiply-add, as vaxpy4 and vaxpy add
// them; the sums stay in registers across the keys, 64 columns at a time.
TEXT ·vwsum(SB), NOSPLIT, $0-49
	MOVQ o+0(FP), DI
	MOVQ p+8(FP), SI
	MOVQ v+16(FP), DX
	MOVQ ldv+24(FP), R8
	SHLQ $2, R8
	MOVQ R8, R13
	SHLQ $5, R13
	MOVQ n+32(FP), BX
	MOVQ d+40(FP), R9
	MOVBQZX acc+48(FP), R12
wsum_chunk:
	TESTQ R9, R9
	JLE wsum_done
	MOVQ $-1, AX
	CMPQ R9, $64
	JGE wsum_mask
	MOVQ R9, CX
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX
wsum_mask:
	KMOVW AX, K1
	SHRQ $16, AX
	KMOVW AX, K2
	SHRQ $16, AX
	KMOVW AX, K3
	SHRQ $16, AX
	KMOVW AX, K4
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	TESTQ R12, R12
	JZ wsum_start
	VMOVUPS.Z (DI), K1, Z0
	VMOVUPS.Z 64(DI), K2, Z1
	VMOVUPS.Z 128(DI), K3, Z2
	VMOVUPS.Z 192(DI), K4, Z3
wsum_start:
	MOVQ SI, R10
	MOVQ DX, R11
	MOVQ BX, CX
wsum_key:
	TESTQ CX, CX
	JZ wsum_store
	PREFETCHT0 (R11)(R13*1)
	PREFETCHT0 64(R11)(R13*1)
	VBROADCASTSS (R10), Z16
	VMOVUPS.Z (R11), K1, Z4
	VMOVUPS.Z 64(R11), K2, Z5
	VMOVUPS.Z 128(R11), K3, Z6
	VMOVUPS.Z 192(R11), K4, Z7
	VFMADD231PS Z4, Z16, Z0
	VFMADD231PS Z5, Z16, Z1
	VFMADD231PS Z6, Z16, Z2
	VFMADD231PS Z7, Z16, Z3
	ADDQ $4, R10
	ADDQ R8, R11
	DECQ CX
	JMP wsum_key
wsum_store:
	VMOVUPS Z0, K1, (DI)
	VMOVUPS Z1, K2, 64(DI)
	VMOVUPS Z2, K3, 128(DI)
	VMOVUPS Z3, K4, 192(DI)
	ADDQ $256, DI
	ADDQ $256, DX
	SUBQ $64, R9
	JMP wsum_chunk
wsum_done:
	VZEROUPPER
	RET

// func vdotsh512(out, q *float32, k *uint16, ldk, n, d int, scale float32)
// vdots over float16 keys: each key's values are converted to float32 as
// they load; the arithmetic is vdots'.
TEXT ·vdotsh512(SB), NOSPLIT, $0-52
	MOVQ out+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ k+16(FP), DX
	MOVQ ldk+24(FP), R8
	SHLQ $1, R8
	MOVQ R8, R13
	SHLQ $5, R13
	MOVQ n+32(FP), BX
	MOVQ d+40(FP), R9
	MOVSS scale+48(FP), X5
dotsh_key:
	TESTQ BX, BX
	JZ dotsh_done
	PREFETCHT0 (DX)(R13*1)
	PREFETCHT0 64(DX)(R13*1)
	VXORPS Z17, Z17, Z17
	VXORPS Z18, Z18, Z18
	VXORPS Z19, Z19, Z19
	VXORPS Z20, Z20, Z20
	MOVQ SI, R10
	MOVQ DX, R11
	MOVQ R9, CX
dotsh_loop4:
	CMPQ CX, $64
	JLT dotsh_loop
	VCVTPH2PS (R11), Z8
	VCVTPH2PS 32(R11), Z9
	VCVTPH2PS 64(R11), Z10
	VCVTPH2PS 96(R11), Z11
	VFMADD231PS (R10), Z8, Z17
	VFMADD231PS 64(R10), Z9, Z18
	VFMADD231PS 128(R10), Z10, Z19
	VFMADD231PS 192(R10), Z11, Z20
	ADDQ $256, R10
	ADDQ $128, R11
	SUBQ $64, CX
	JMP dotsh_loop4
dotsh_loop:
	CMPQ CX, $16
	JLT dotsh_tail
	VCVTPH2PS (R11), Z8
	VFMADD231PS (R10), Z8, Z17
	ADDQ $64, R10
	ADDQ $32, R11
	SUBQ $16, CX
	JMP dotsh_loop
dotsh_tail:
	TESTQ CX, CX
	JZ dotsh_sum
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1
	VMOVUPS.Z (R10), K1, Z0
	VMOVDQU16.Z (R11), K1, Y1
	VCVTPH2PS Y1, Z1
	VFMADD231PS Z1, Z0, Z18
dotsh_sum:
	VADDPS Z18, Z17, Z17
	VADDPS Z20, Z19, Z19
	VADDPS Z19, Z17, Z17
	VEXTRACTF64X4 $1, Z17, Y1
	VADDPS Y1, Y17, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVHLPS X0, X0, X1
	VADDPS X1, X0, X0
	VMOVSHDUP X0, X1
	VADDSS X1, X0, X0
	VMULSS X5, X0, X0
	VMOVSS X0, (DI)
	ADDQ $4, DI
	ADDQ R8, DX
	DECQ BX
	JMP dotsh_key
dotsh_done:
	VZEROUPPER
	RET

// func vwsumh512(o, p *float32, v *uint16, ldv, n, d int)
// o = sum over j < n of p[j] * v[j*ldv : j*ldv+d], v float16: vwsum's
// arithmetic (without accumulating into o) on values converted as they
// load.
TEXT ·vwsumh512(SB), NOSPLIT, $0-48
	MOVQ o+0(FP), DI
	MOVQ p+8(FP), SI
	MOVQ v+16(FP), DX
	MOVQ ldv+24(FP), R8
	SHLQ $1, R8
	MOVQ R8, R13
	SHLQ $5, R13
	MOVQ n+32(FP), BX
	MOVQ d+40(FP), R9
wsumh_chunk:
	TESTQ R9, R9
	JLE wsumh_done
	MOVQ $-1, AX
	CMPQ R9, $64
	JGE wsumh_mask
	MOVQ R9, CX
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX
wsumh_mask:
	KMOVW AX, K1
	SHRQ $16, AX
	KMOVW AX, K2
	SHRQ $16, AX
	KMOVW AX, K3
	SHRQ $16, AX
	KMOVW AX, K4
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	MOVQ SI, R10
	MOVQ DX, R11
	MOVQ BX, CX
wsumh_key:
	TESTQ CX, CX
	JZ wsumh_store
	PREFETCHT0 (R11)(R13*1)
	VBROADCASTSS (R10), Z16
	VMOVDQU16.Z (R11), K1, Y4
	VMOVDQU16.Z 32(R11), K2, Y5
	VMOVDQU16.Z 64(R11), K3, Y6
	VMOVDQU16.Z 96(R11), K4, Y7
	VCVTPH2PS Y4, Z4
	VCVTPH2PS Y5, Z5
	VCVTPH2PS Y6, Z6
	VCVTPH2PS Y7, Z7
	VFMADD231PS Z4, Z16, Z0
	VFMADD231PS Z5, Z16, Z1
	VFMADD231PS Z6, Z16, Z2
	VFMADD231PS Z7, Z16, Z3
	ADDQ $4, R10
	ADDQ R8, R11
	DECQ CX
	JMP wsumh_key
wsumh_store:
	VMOVUPS Z0, K1, (DI)
	VMOVUPS Z1, K2, 64(DI)
	VMOVUPS Z2, K3, 128(DI)
	VMOVUPS Z3, K4, 192(DI)
	ADDQ $256, DI
	ADDQ $128, DX
	SUBQ $64, R9
	JMP wsumh_chunk
wsumh_done:
	VZEROUPPER
	RET

// func vtohalf512(dst *uint16, src *float32, n int)
// dst = float16(src), rounded to nearest even after saturating at
// +-65504 (NaN stays NaN).
TEXT ·vtohalf512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVL $0x477fe000, AX // 65504
	VPBROADCASTD AX, Z30
	MOVL $0xc77fe000, AX // -65504
	VPBROADCASTD AX, Z31
tohalf_loop:
	CMPQ CX, $16
	JLT tohalf_tail
	VMOVUPS (SI), Z0
	VMINPS Z0, Z30, Z0
	VMAXPS Z0, Z31, Z0
	VCVTPS2PH $0, Z0, (DI)
	ADDQ $64, SI
	ADDQ $32, DI
	SUBQ $16, CX
	JMP tohalf_loop
tohalf_tail:
	TESTQ CX, CX
	JZ tohalf_done
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1
	VMOVUPS.Z (SI), K1, Z0
	VMINPS Z0, Z30, Z0
	VMAXPS Z0, Z31, Z0
	VCVTPS2PH $0, Z0, Y1
	VMOVDQU16 Y1, K1, (DI)
tohalf_done:
	VZEROUPPER
	RET
