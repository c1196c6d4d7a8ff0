package gguf

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// block returns a block of 32 values starting with head, the rest zero.
func block(head ...float32) []float32 {
	b := make([]float32, QK)
	copy(b, head)
	return b
}

// Known Q8_0 blocks, worked by hand from quantize_row_q8_0_ref: with
// amax 127 the scale is exactly 1 (float16 0x3c00) and q = roundf(x), which
// rounds halves away from zero (2.5 -> 3, -2.5 -> -3; round-to-even would
// give 2); with amax 254 the scale is 2 (0x4000) and q = roundf(x/2).
func TestQ8_0KnownValues(t *testing.T) {
	for _, c := range []struct {
		x    []float32
		want []byte // d (2 bytes LE), then the leading qs; the rest are 0
	}{
		{block(127, -2.5, 2.5, 0.49, -0.51, 1.5, 100.4), []byte{0x00, 0x3c, 127, 0xfd, 3, 0, 0xff, 2, 100}},
		{block(-254, 3, -5, 1), []byte{0x00, 0x40, 0x81, 2, 0xfd, 1}}, // -254/2 = -127 = 0x81, 1.5 -> 2, -2.5 -> -3, 0.5 -> 1
		{block(), []byte{0, 0}},
	} {
		got, err := Quantize(Q8_0, c.x)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, 2+QK)
		copy(want, c.want)
		if !bytes.Equal(got, want) {
			t.Errorf("Q8_0 of %v:\n got % x\nwant % x", c.x[:8], got, want)
		}
	}
	// Dequantizing is q*d.
	b := make([]byte, 2+QK)
	copy(b, []byte{0x00, 0x38, 0x81, 0x7f, 3}) // d = 0.5
	out := make([]float32, QK)
	if err := Dequantize(Q8_0, b, out); err != nil {
		t.Fatal(err)
	}
	if out[0] != -63.5 || out[1] != 63.5 || out[2] != 1.5 || out[3] != 0 {
		t.Errorf("dequantized %v", out[:4])
	}
}

// Known Q4_0 blocks from quantize_row_q4_0_ref: the value of largest
// magnitude m gives d = m/-8; q = min(15, trunc(x/d + 8.5)); value j goes in
// the low nibble of byte j, value j+16 in the high nibble.
func TestQ4_0KnownValues(t *testing.T) {
	// m = -8: d = 1 (0x3c00), q = trunc(x + 8.5) capped at 15.
	x := block(-8, 7, 7.9, 0, 0.5, -0.5, -3.2)
	x[16], x[17], x[18] = 1, -1, 6.49
	got, err := Quantize(Q4_0, x)
	if err != nil {
		t.Fatal(err)
	}
	q := []byte{0, 15, 15, 8, 9, 8, 5}
	hi := []byte{9, 7, 14}
	want := make([]byte, 2+QK/2)
	want[0], want[1] = 0x00, 0x3c
	for j := range QK / 2 {
		lo, h := byte(8), byte(8)
		if j < len(q) {
			lo = q[j]
		}
		if j < len(hi) {
			h = hi[j]
		}
		want[2+j] = lo | h<<4
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Q4_0:\n got % x\nwant % x", got, want)
	}
	out := make([]float32, QK)
	if err := Dequantize(Q4_0, got, out); err != nil {
		t.Fatal(err)
	}
	for j, w := range map[int]float32{0: -8, 1: 7, 2: 7, 3: 0, 4: 1, 5: 0, 6: -3, 16: 1, 17: -1, 18: 6, 31: 0} {
		if out[j] != w {
			t.Errorf("dequantized[%d] = %g, want %g", j, out[j], w)
		}
	}
	// m = +8: d = -1 (0xbc00); +8 is exact, -8 is clamped to 7*d = -7.
	got, _ = Quantize(Q4_0, block(8, -4, -8))
	if got[0] != 0x00 || got[1] != 0xbc || got[2]&0xf != 0 || got[3]&0xf != 12 || got[4]&0xf != 15 {
		t.Errorf("Q4_0 with a positive maximum: % x", got)
	}
}

func TestFloatTypesKnownValues(t *testing.T) {
	for _, c := range []struct {
		typ  TensorType
		x    float32
		want []byte
	}{
		{F32, 1, []byte{0, 0, 0x80, 0x3f}},
		{F16, 1, []byte{0x00, 0x3c}},
		{F16, 65504, []byte{0xff, 0x7b}},
		{F16, 1 + 1.0/2048, []byte{0x00, 0x3c}}, // a tie rounds to even
		{BF16, 1, []byte{0x80, 0x3f}},
		{BF16, -2, []byte{0x00, 0xc0}},
	} {
		got, err := Quantize(c.typ, []float32{c.x})
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("%s(%g) = % x, %v; want % x", c.typ, c.x, got, err, c.want)
		}
	}
}

// Random weights survive each type within its error bound: float16 and
// bfloat16 to half a unit in the last place, Q8_0 to d/2 (plus the float16
// rounding of d), Q4_0 to |d| (the clamp at 15 costs a whole step).
func TestQuantizeErrorBound(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 64*QK)
	for i := range x {
		x[i] = float32(r.NormFloat64() * 0.02)
	}
	x[5] = 0.3 // an outlier in the first block
	for _, typ := range []TensorType{F32, F16, BF16, Q8_0, Q4_0} {
		b, err := Quantize(typ, x)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float32, len(x))
		if err := Dequantize(typ, b, out); err != nil {
			t.Fatal(err)
		}
		for blk := 0; blk < len(x)/QK; blk++ {
			var amax float64
			for _, v := range x[blk*QK : (blk+1)*QK] {
				amax = max(amax, math.Abs(float64(v)))
			}
			for i := blk * QK; i < (blk+1)*QK; i++ {
				bound := map[TensorType]float64{
					F32:  0,
					F16:  math.Abs(float64(x[i]))*0x1p-11 + 0x1p-25,
					BF16: math.Abs(float64(x[i])) * 0x1p-8,
					Q8_0: amax/127/2 + amax*0x1p-11,
					Q4_0: amax/8 + amax*0x1p-11,
				}[typ]
				if e := math.Abs(float64(out[i] - x[i])); e > bound {
					t.Fatalf("%s: value %d: %g came back %g (error %g > bound %g)", typ, i, x[i], out[i], e, bound)
				}
			}
		}
	}
}

func TestQuantizeRefuses(t *testing.T) {
	if _, err := Quantize(Q8_0, make([]float32, 33)); err == nil {
		t.Error("Q8_0 of 33 values: no error")
	}
	if _, err := Quantize(Q4_0, block(float32(math.NaN()))); err == nil {
		t.Error("Q4_0 of NaN: no error")
	}
	if _, err := Quantize(Q4_K, make([]float32, QKK)); err == nil || !strings.Contains(err.Error(), "golem reads Q4_K but does not quantize to it") {
		t.Errorf("Q4_K: %v", err)
	}
	if _, err := Quantize(TensorType(16), block()); err == nil {
		t.Error("IQ2_XXS: no error")
	}
	if err := Dequantize(Q8_0, make([]byte, 33), make([]float32, 32)); err == nil {
		t.Error("Q8_0 from 33 bytes: no error")
	}
}
