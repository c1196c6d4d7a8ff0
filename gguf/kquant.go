package gguf

import (
	"encoding/binary"

	"github.com/golem-ml/golem/safetensors"
)

// The quantized types golem reads but does not write: the legacy Q4_1,
// Q5_0 and Q5_1 and the non-linear IQ4_NL (blocks of 32 values, as Q4_0)
// and the k-quants Q2_K to Q6_K (super-blocks of 256 values split into
// sub-blocks of 16 or 32, each with its own scale, and for Q2_K, Q4_K and
// Q5_K a minimum, quantized against the super-block's float16 d and
// dmin). What llama.cpp's Q4_K_M files hold: Q4_K and Q6_K matrices, and
// Q5_0, Q5_1, Q8_0 or Q4_1 where a row is not a multiple of 256 (some
// llama.cpp versions write IQ4_NL there in Q3_K_M and Q2_K files). Each
// function below is ggml's dequantize_row_* for its type (ggml-quants.c),
// written from the block layouts of ggml-common.h: the same values,
// float32 for float32 (every product rounded as C rounds it, none fused).

// f16 reads the float16 at b.
func f16(b []byte) float32 { return safetensors.Float16ToFloat32(binary.LittleEndian.Uint16(b)) }

// dequantizeMore dequantizes the types of this file; Dequantize has checked
// that b holds exactly len(out) values of t.
func dequantizeMore(t TensorType, b []byte, out []float32) {
	bs, bb := t.BlockSize(), t.BlockBytes()
	f := map[TensorType]func(blk []byte, y []float32){
		Q4_1: dequantQ4_1, Q5_0: dequantQ5_0, Q5_1: dequantQ5_1,
		Q2_K: dequantQ2_K, Q3_K: dequantQ3_K, Q4_K: dequantQ4_K, Q5_K: dequantQ5_K, Q6_K: dequantQ6_K,
		IQ4_NL: dequantIQ4_NL,
	}[t]
	for i := range len(out) / bs {
		f(b[i*bb:(i+1)*bb], out[i*bs:(i+1)*bs])
	}
}

// dequantQ4_1: d, m (float16), 16 bytes of nibbles (value j low, j+16
// high); y = q*d + m.
func dequantQ4_1(blk []byte, y []float32) {
	d, m := f16(blk), f16(blk[2:])
	qs := blk[4:]
	for j := range QK / 2 {
		y[j] = float32(float32(qs[j]&0x0f)*d) + m
		y[j+QK/2] = float32(float32(qs[j]>>4)*d) + m
	}
}

// fifthBits returns the 5-bit codes of a Q5_0/Q5_1 block: nibbles as
// Q4_0's, the fifth bit of value j in bit j of the little-endian qh.
func fifthBits(qh uint32, qs []byte, j int) (x0, x1 int32) {
	h0 := byte(qh>>j<<4) & 0x10
	h1 := byte(qh>>(j+12)) & 0x10
	return int32(qs[j]&0x0f | h0), int32(qs[j]>>4 | h1)
}

// dequantQ5_0: d (float16), qh (4 bytes), 16 bytes of nibbles; y = (q-16)*d.
func dequantQ5_0(blk []byte, y []float32) {
	d, qh, qs := f16(blk), binary.LittleEndian.Uint32(blk[2:]), blk[6:]
	for j := range QK / 2 {
		x0, x1 := fifthBits(qh, qs, j)
		y[j] = float32(x0-16) * d
		y[j+QK/2] = float32(x1-16) * d
	}
}

// dequantQ5_1: d, m (float16), qh, nibbles; y = q*d + m.
func dequantQ5_1(blk []byte, y []float32) {
	d, m, qh, qs := f16(blk), f16(blk[2:]), binary.LittleEndian.Uint32(blk[4:]), blk[8:]
	for j := range QK / 2 {
		x0, x1 := fifthBits(qh, qs, j)
		y[j] = float32(float32(x0)*d) + m
		y[j+QK/2] = float32(float32(x1)*d) + m
	}
}

// dequantQ2_K: 16 bytes of scales (low nibble: the sub-block's scale,
// high: its min, both 4-bit, times d and dmin), 64 bytes of 2-bit codes,
// d, dmin. Each 128 values read 32 code bytes four times, shifted by 0, 2,
// 4, 6: 16 values with one scale, the next 16 with the next.
func dequantQ2_K(blk []byte, y []float32) {
	sc, q := blk[:16], blk[16:80]
	d, dmin := f16(blk[80:]), f16(blk[82:])
	is, k := 0, 0
	for range 2 {
		for shift := 0; shift < 8; shift += 2 {
			for half := 0; half < 32; half += 16 {
				dl, ml := d*float32(sc[is]&0x0f), dmin*float32(sc[is]>>4)
				is++
				for l := range 16 {
					y[k] = float32(dl*float32((q[half+l]>>shift)&3)) - ml
					k++
				}
			}
		}
		q = q[32:]
	}
}

// dequantQ3_K: 32 bytes of high bits (value's bit set: code as is, clear:
// minus 4), 64 bytes of low 2-bit codes laid out as Q2_K's, 12 bytes
// packing sixteen 6-bit scales (offset 32), d.
func dequantQ3_K(blk []byte, y []float32) {
	hm, q, s := blk[:32], blk[32:96], blk[96:108]
	d := f16(blk[108:])
	var scales [16]int32
	for j := range 16 {
		lo := s[j%8] & 0x0f
		if j >= 8 {
			lo = s[j-8] >> 4
		}
		hi := (s[8+j%4] >> (2 * (j / 4))) & 3
		scales[j] = int32(lo|hi<<4) - 32
	}
	is, k := 0, 0
	m := byte(1)
	for range 2 {
		for shift := 0; shift < 8; shift += 2 {
			for half := 0; half < 32; half += 16 {
				dl := d * float32(scales[is])
				is++
				for l := range 16 {
					v := int32((q[half+l] >> shift) & 3)
					if hm[half+l]&m == 0 {
						v -= 4
					}
					y[k] = dl * float32(v)
					k++
				}
			}
			m <<= 1
		}
		q = q[32:]
	}
}

// scaleMinK4 is ggml's get_scale_min_k4: the 6-bit scale and min of
// sub-block j of a Q4_K/Q5_K super-block from its 12 scale bytes.
func scaleMinK4(j int, q []byte) (sc, m byte) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0x0f | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// dequantQ4_K: d, dmin, 12 scale bytes (eight 6-bit scales and mins),
// 128 bytes of nibbles: each 64 values are 32 bytes' low nibbles (one
// sub-block) then their high ones (the next); y = d*sc*q - dmin*m.
func dequantQ4_K(blk []byte, y []float32) {
	d, dmin, s, q := f16(blk), f16(blk[2:]), blk[4:16], blk[16:]
	for j := 0; j < QKK/64; j++ {
		sc1, m1 := scaleMinK4(2*j, s)
		sc2, m2 := scaleMinK4(2*j+1, s)
		d1, mn1 := d*float32(sc1), dmin*float32(m1)
		d2, mn2 := d*float32(sc2), dmin*float32(m2)
		for l := range 32 {
			y[64*j+l] = float32(d1*float32(q[32*j+l]&0x0f)) - mn1
			y[64*j+32+l] = float32(d2*float32(q[32*j+l]>>4)) - mn2
		}
	}
}

// dequantQ5_K: Q4_K's layout with 32 bytes of fifth bits after the scales:
// bit 2j of qh[l] for value l of sub-block 2j, bit 2j+1 for sub-block 2j+1.
func dequantQ5_K(blk []byte, y []float32) {
	d, dmin, s, qh, q := f16(blk), f16(blk[2:]), blk[4:16], blk[16:48], blk[48:]
	for j := 0; j < QKK/64; j++ {
		sc1, m1 := scaleMinK4(2*j, s)
		sc2, m2 := scaleMinK4(2*j+1, s)
		d1, mn1 := d*float32(sc1), dmin*float32(m1)
		d2, mn2 := d*float32(sc2), dmin*float32(m2)
		u1, u2 := byte(1)<<(2*j), byte(2)<<(2*j)
		for l := range 32 {
			lo, hi := q[32*j+l]&0x0f, q[32*j+l]>>4
			if qh[l]&u1 != 0 {
				lo += 16
			}
			if qh[l]&u2 != 0 {
				hi += 16
			}
			y[64*j+l] = float32(d1*float32(lo)) - mn1
			y[64*j+32+l] = float32(d2*float32(hi)) - mn2
		}
	}
}

// dequantQ6_K: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16
// int8 scales (one per 16 values), d; y = d*scale*(q-32). Each 128 values
// take 64 low-nibble bytes and 32 high bytes: value l, l+32, l+64, l+96 of
// them from byte l's and l+32's nibbles and byte l's bits 0-1, 2-3, 4-5,
// 6-7.
func dequantQ6_K(blk []byte, y []float32) {
	ql, qh, sc := blk[:128], blk[128:192], blk[192:208]
	d := f16(blk[208:])
	for n := range 2 {
		ql, qh, sc, y := ql[64*n:], qh[32*n:], sc[8*n:], y[128*n:]
		for l := range 32 {
			is := l / 16
			q1 := int32(ql[l]&0x0f|(qh[l]&3)<<4) - 32
			q2 := int32(ql[l+32]&0x0f|((qh[l]>>2)&3)<<4) - 32
			q3 := int32(ql[l]>>4|((qh[l]>>4)&3)<<4) - 32
			q4 := int32(ql[l+32]>>4|((qh[l]>>6)&3)<<4) - 32
			y[l] = float32(d*float32(int8(sc[is]))) * float32(q1)
			y[l+32] = float32(d*float32(int8(sc[is+2]))) * float32(q2)
			y[l+64] = float32(d*float32(int8(sc[is+4]))) * float32(q3)
			y[l+96] = float32(d*float32(int8(sc[is+6]))) * float32(q4)
		}
	}
}

// iq4nl is ggml's kvalues_iq4nl: the 16 levels an IQ4_NL code selects,
// denser near zero, where weights are.
var iq4nl = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// dequantIQ4_NL: d (float16), 16 bytes of nibbles laid out as Q4_0's;
// y = d*iq4nl[q].
func dequantIQ4_NL(blk []byte, y []float32) {
	d, qs := f16(blk), blk[2:]
	for j := range QK / 2 {
		y[j] = d * float32(iq4nl[qs[j]&0x0f])
		y[j+QK/2] = d * float32(iq4nl[qs[j]>>4])
	}
}
