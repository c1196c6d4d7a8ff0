package gguf

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// The tests below build blocks by hand from ggml-common.h's layouts, each
// value's code put where the layout says (the other way round from the
// dequantizers' loops), with scales that are powers of two so that every
// expected value is exact, and check every value.

// putF16 writes the float16 bits h at b.
func putF16(b []byte, h uint16) { binary.LittleEndian.PutUint16(b, h) }

const (
	f16Half    = 0x3800 // 0.5
	f16Quarter = 0x3400 // 0.25
	f16Two     = 0x4000 // 2
)

func checkBlock(t *testing.T, typ TensorType, blk []byte, want func(i int) float32) {
	t.Helper()
	if len(blk) != typ.BlockBytes() {
		t.Fatalf("%s: block of %d bytes, want %d", typ, len(blk), typ.BlockBytes())
	}
	out := make([]float32, typ.BlockSize())
	if err := Dequantize(typ, blk, out); err != nil {
		t.Fatal(err)
	}
	bad := 0
	for i, v := range out {
		if w := want(i); v != w {
			if bad < 4 {
				t.Errorf("%s: value %d is %g, want %g", typ, i, v, w)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values wrong", typ, bad, len(out))
	}
}

// Q4_1: y = q*d + m, value j in byte j's low nibble, j+16 in its high one.
// Q5_0 and Q5_1 add the fifth bit of value j as bit j of qh; Q5_0 is
// (q-16)*d. IQ4_NL indexes a table.
func TestLegacyKnownValues(t *testing.T) {
	code := func(i int) int { return (i*7 + 3) % 32 }
	nib := func(b []byte, i int, q int) { // value i's low 4 bits into the nibbles b
		if i < 16 {
			b[i] |= byte(q & 15)
		} else {
			b[i-16] |= byte(q&15) << 4
		}
	}
	q41 := make([]byte, 20)
	putF16(q41, f16Half)
	putF16(q41[2:], 0xc500) // m = -5
	for i := range QK {
		nib(q41[4:], i, code(i)&15)
	}
	checkBlock(t, Q4_1, q41, func(i int) float32 { return float32(code(i)&15)*0.5 - 5 })

	q50 := make([]byte, 22)
	putF16(q50, f16Two)
	var qh uint32
	for i := range QK {
		nib(q50[6:], i, code(i))
		qh |= uint32(code(i)>>4) << i
	}
	binary.LittleEndian.PutUint32(q50[2:], qh)
	checkBlock(t, Q5_0, q50, func(i int) float32 { return float32(code(i)-16) * 2 })

	q51 := make([]byte, 24)
	putF16(q51, f16Quarter)
	putF16(q51[2:], 0x3c00) // m = 1
	copy(q51[4:], q50[2:])
	checkBlock(t, Q5_1, q51, func(i int) float32 { return float32(code(i))*0.25 + 1 })

	// IQ4_NL: Q4_0's nibbles pick one of ggml's 16 levels (kvalues_iq4nl,
	// -127 ... 113), times d.
	levels := []float32{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}
	iq := make([]byte, 18)
	putF16(iq, f16Half)
	for i := range QK {
		nib(iq[2:], i, code(i)&15)
	}
	checkBlock(t, IQ4_NL, iq, func(i int) float32 { return 0.5 * levels[code(i)&15] })
}

// The k-quants' codes along a super-block of 256 values: value i's low
// bits in 128-value halves n = i/128, as ggml's quantize_row_*_ref pack
// them.
func TestKQuantKnownValues(t *testing.T) {
	code := func(i, bits int) int { return (i*37 + i/16) % (1 << bits) }
	// sc and mn: a 6-bit scale and min per sub-block (Q4_K, Q5_K: 8 of 32),
	// reaching above 15 so that the packing's high bits count.
	sc := func(j int) int { return (j*23 + 5) % 64 }
	mn := func(j int) int { return (j*41 + 60) % 64 }
	packK4 := func(s []byte) { // 8 scales and mins into 12 bytes
		for j := range 4 {
			s[j] = byte(sc(j)) | byte(sc(j+4)>>4)<<6
			s[j+4] = byte(mn(j)) | byte(mn(j+4)>>4)<<6
			s[j+8] = byte(sc(j+4)&15) | byte(mn(j+4)&15)<<4
		}
	}

	// Q4_K: d, dmin, scales, 128 bytes: in each 64 values, sub-block 2k in
	// the low nibbles of bytes 32k..32k+31, sub-block 2k+1 in the high ones.
	q4 := make([]byte, 144)
	putF16(q4, f16Half)
	putF16(q4[2:], f16Quarter)
	packK4(q4[4:16])
	for i := range QKK {
		s, l := i/32, i%32
		q4[16+32*(s/2)+l] |= byte(code(i, 4)) << (4 * (s % 2))
	}
	checkBlock(t, Q4_K, q4, func(i int) float32 {
		return 0.5*float32(sc(i/32)*code(i, 4)) - 0.25*float32(mn(i/32))
	})

	// Q5_K: the fifth bit of value l of sub-block s is bit s of qh[l].
	q5 := make([]byte, 176)
	putF16(q5, f16Half)
	putF16(q5[2:], f16Quarter)
	packK4(q5[4:16])
	for i := range QKK {
		s, l := i/32, i%32
		q5[48+32*(s/2)+l] |= byte(code(i, 5)&15) << (4 * (s % 2))
		q5[16+l] |= byte(code(i, 5)>>4) << s
	}
	checkBlock(t, Q5_K, q5, func(i int) float32 {
		return 0.5*float32(sc(i/32)*code(i, 5)) - 0.25*float32(mn(i/32))
	})

	// Q6_K: value i = 128n + 32g + l: its low 4 bits in ql[64n + l] (g 0),
	// ql[64n+32+l] (g 1), their high nibbles (g 2, 3); its high 2 bits in
	// qh[32n + l] at bits 2g; int8 scale i/16; y = d*scale*(q-32).
	q6 := make([]byte, 210)
	sc8 := func(j int) int { return j*9 - 70 } // -70 .. 65
	for j := range 16 {
		q6[192+j] = byte(int8(sc8(j)))
	}
	putF16(q6[208:], f16Half)
	for i := range QKK {
		n, g, l := i/128, i%128/32, i%32
		q := code(i, 6)
		q6[64*n+32*(g%2)+l] |= byte(q&15) << (4 * (g / 2))
		q6[128+32*n+l] |= byte(q>>4) << (2 * g)
	}
	checkBlock(t, Q6_K, q6, func(i int) float32 { return 0.5 * float32(sc8(i/16)*(code(i, 6)-32)) })

	// Q2_K: value i = 128n + 32g + l: 2 bits in qs[32n + l] at bits 2g;
	// sub-block i/16's scale byte: low nibble times d, high nibble times
	// dmin; y = d*sc*q - dmin*m.
	q2 := make([]byte, 84)
	for j := range 16 {
		q2[j] = byte(sc(j)%16) | byte(mn(j)%16)<<4
	}
	for i := range QKK {
		n, g, l := i/128, i%128/32, i%32
		q2[16+32*n+l] |= byte(code(i, 2)) << (2 * g)
	}
	putF16(q2[80:], f16Two)
	putF16(q2[82:], f16Half)
	checkBlock(t, Q2_K, q2, func(i int) float32 {
		return 2*float32(sc(i/16)%16*code(i, 2)) - 0.5*float32(mn(i/16)%16)
	})

	// Q3_K: Q2_K's 2-bit layout; the third bit of value i = 128n + 32g + l
	// is bit 4n+g of hmask[l] (set: the code as is; clear: minus 4); the
	// sixteen 6-bit scales (offset 32) pack their low 4 bits into bytes 0-7
	// (scales 0-7 low nibbles, 8-15 high) and their top 2 bits into bytes
	// 8-11 (scale j at byte 8 + j%4, bits 2*(j/4)).
	q3 := make([]byte, 110)
	for i := range QKK {
		n, g, l := i/128, i%128/32, i%32
		q := code(i, 3) // 0..7: q-4 is the value's code
		q3[32+32*n+l] |= byte(q&3) << (2 * g)
		if q >= 4 {
			q3[l] |= 1 << (4*n + g)
		}
	}
	for j := range 16 {
		s := sc(j)
		q3[96+j%8] |= byte(s&15) << (4 * (j / 8))
		q3[96+8+j%4] |= byte(s>>4) << (2 * (j / 4))
	}
	putF16(q3[108:], f16Quarter)
	checkBlock(t, Q3_K, q3, func(i int) float32 { return 0.25 * float32((sc(i/16)-32)*(code(i, 3)-4)) })
}

// Bad lengths: a k-quant tensor is whole super-blocks of 256 values, and
// Dequantize wants exactly its bytes.
func TestKQuantRefuses(t *testing.T) {
	if err := Dequantize(Q4_K, make([]byte, 144), make([]float32, 128)); err == nil {
		t.Error("Q4_K of 128 values: no error")
	}
	if err := Dequantize(Q6_K, make([]byte, 209), make([]float32, 256)); err == nil {
		t.Error("Q6_K from 209 bytes: no error")
	}
	if n, err := TensorBytes(Q5_K, 512); err != nil || n != 352 {
		t.Errorf("Q5_K of 512 values: %d bytes, %v", n, err)
	}
}

// Convert gives the bytes of Quantize(Dequantize(...)), a chunk of rows
// at a time (here 300 rows of 256 values: more than one chunk of 64K
// values), and refuses non-finite values naming the row.
func TestConvert(t *testing.T) {
	const rows, row = 300, 256
	b := make([]byte, rows*row/QKK*Q6_K.BlockBytes())
	for i := range b {
		b[i] = byte(i*131 + i/7)
	}
	for k := 0; k < len(b); k += Q6_K.BlockBytes() {
		putF16(b[k+208:], f16Quarter)
	}
	x := make([]float32, rows*row)
	if err := Dequantize(Q6_K, b, x); err != nil {
		t.Fatal(err)
	}
	want, err := Quantize(Q8_0, x)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Convert(Q6_K, b, row, Q8_0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("Convert differs from Quantize(Dequantize)")
	}
	putF16(b[299*Q6_K.BlockBytes()+208:], 0x7c00) // row 299's d is +Inf
	if _, err := Convert(Q6_K, b, row, Q8_0); err == nil || !strings.Contains(err.Error(), "row 299, value 0 is +Inf") {
		t.Errorf("Inf scale: %v", err)
	}
	if _, err := Convert(Q6_K, b[:100], row, Q8_0); err == nil {
		t.Error("a partial row: no error")
	}
}
