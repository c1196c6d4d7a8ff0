package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/golem-ml/golem/backend"
)

// Every float16 converts to float32 exactly and back to itself.
func TestHalfRoundTrip(t *testing.T) {
	for h := range 1 << 16 {
		f := f16ToF32(uint16(h))
		if h&0x7fff == 0x7c00 {
			if back := f32ToF16(f); back != uint16(h)-1 {
				t.Fatalf("%v came back as %#04x, not saturated", f, back)
			}
			continue
		}
		if math.IsNaN(float64(f)) {
			if back := f32ToF16(f); back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, back)
			}
			continue
		}
		if back := f32ToF16(f); back != uint16(h) {
			t.Fatalf("%#04x -> %v -> %#04x", h, f, back)
		}
	}
	for _, c := range []struct {
		f float32
		h uint16
	}{{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {1e9, 0x7bff}, {float32(math.Inf(-1)), 0xfbff},
		{5.960464477539063e-08, 0x0001}, {2.980232238769531e-08, 0x0000}, {2.9802326e-08, 0x0001},
		{1 + 1.0/2048, 0x3c00}, {1 + 3.0/2048, 0x3c02}, {65519, 0x7bff}, {0.1, 0x2e66}} {
		if got := f32ToF16(c.f); got != c.h {
			t.Errorf("f32ToF16(%v) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
}

// The vector conversion (the CPU's own rounding) and the Go one agree on
// values of every magnitude, ties, subnormals, the saturation and NaN.
func TestHalfVectorConversion(t *testing.T) {
	if !haveHalf {
		t.Skip("no float16 conversion (AVX-512 or F16C) on this CPU")
	}
	r := rand.New(rand.NewPCG(5, 6))
	var src []float32
	for range 200000 {
		src = append(src, math.Float32frombits(r.Uint32()))
	}
	for h := range 1 << 16 { // every float16, and the ties around each
		f := f16ToF32(uint16(h))
		src = append(src, f, math.Nextafter32(f, 0), math.Float32frombits(math.Float32bits(f)+1<<12))
	}
	src = append(src, 65504, 65519, 65520, 1e30, -1e30, float32(math.Inf(1)), float32(math.NaN()), 0, float32(math.Copysign(0, -1)))
	for _, n := range []int{len(src), 37, 16, 5, 1} {
		got := make([]uint16, n+1)
		vtohalf(&got[0], &src[0], n)
		if got[n] != 0 {
			t.Fatalf("n=%d: wrote past the end", n)
		}
		for i := range n {
			if want := f32ToF16(src[i]); got[i] != want {
				t.Fatalf("%v (%#08x): vector %#04x, Go %#04x", src[i], math.Float32bits(src[i]), got[i], want)
			}
		}
	}
}

// AttentionRows over float16 keys and values: with AVX-512's per-key
// kernels (and the fallback) it equals, bit for bit, AttentionRows over
// the same values in float32; with the blocked kernels of attn_gen.go, and
// with AVX2's kernels (whose sums are ordered and fused unlike the Go
// dot and axpy the float32 path runs without AVX-512), it is within
// rounding of that; and each row equals, bit for bit, the same row
// attended alone.
func TestAttentionRowsHalf(t *testing.T) {
	c := New()
	r := rand.New(rand.NewPCG(7, 8))
	savedHalf, savedFast := haveHalf, fastHalf
	defer func() { haveHalf, fastHalf = savedHalf, savedFast }()
	for _, mode := range []string{"blocked", "per-key", "fallback"} {
		if mode != "fallback" && !savedHalf {
			continue
		}
		haveHalf, fastHalf = mode != "fallback", mode == "blocked"
		for _, d := range []int{16, 32, 64, 80, 7, 128} {
			B, slots, S, HQ, HKV := 5, 6, 40, 4, 2
			slot := []int32{3, 0, 5, 1, 2}
			n := []int32{33, 1, 23, 16, 40}
			q := randSlice(r, B*HQ*d)
			kf, vf := &Buf{D: randSlice(r, slots*S*HKV*d)}, &Buf{D: randSlice(r, slots*S*HKV*d)}
			kh, vh := c.AllocHalf(slots*S*HKV*d), c.AllocHalf(slots*S*HKV*d)
			c.CopyHalf(kh, 0, d, kf, 0, d, slots*S*HKV, d)
			c.CopyHalf(vh, 0, d, vf, 0, d, slots*S*HKV, d)
			FromHalf(kf.D, HalfData(kh))
			FromHalf(vf.D, HalfData(vh))
			a := backend.Attention{B: B, T: 1, S: S, HQ: HQ, HKV: HKV, D: d, Scale: float32(1 / math.Sqrt(float64(d)))}
			want, got := make([]float32, B*HQ*d), make([]float32, B*HQ*d)
			c.AttentionRows(a, slot, n, &Buf{D: want}, &Buf{D: q}, kf, vf)
			c.AttentionRows(a, slot, n, &Buf{D: got}, &Buf{D: q}, kh, vh)
			blocked := mode == "blocked" && d%16 == 0 && d != 80
			exact := !blocked && (mode == "fallback" || haveHalf512)
			for i := range want {
				if exact && got[i] != want[i] || math.Abs(float64(got[i]-want[i])) > 1e-5 {
					t.Fatalf("%s D=%d value %d: half %v, float32 %v", mode, d, i, got[i], want[i])
				}
			}
			one := a
			one.B = 1
			for b := range B {
				alone := make([]float32, HQ*d)
				c.AttentionRows(one, slot[b:b+1], n[b:b+1], &Buf{D: alone}, &Buf{D: q[b*HQ*d:]}, kh, vh)
				for i, v := range alone {
					if got[b*HQ*d+i] != v {
						t.Fatalf("%s D=%d row %d value %d: in the batch %v, alone %v", mode, d, b, i, got[b*HQ*d+i], v)
					}
				}
			}
		}
	}
}

// CopyHalf copies between float16 buffers and converts float32 rows in
// place, with strides, leaving the rest untouched.
func TestCopyHalf(t *testing.T) {
	c := New()
	src := &Buf{D: []float32{1, 2, 3, 9, 4, 5, 6, 9}}
	dst := c.AllocHalf(10)
	c.CopyHalf(dst, 1, 5, src, 0, 4, 2, 3)
	want := []float32{0, 1, 2, 3, 0, 0, 4, 5, 6, 0}
	got := make([]float32, 10)
	FromHalf(got, HalfData(dst))
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("after CopyHalf from float32: %v, want %v", got, want)
		}
	}
	dst2 := c.AllocHalf(6)
	c.CopyHalf(dst2, 0, 3, dst, 1, 5, 2, 3)
	FromHalf(got[:6], HalfData(dst2))
	for i, w := range []float32{1, 2, 3, 4, 5, 6} {
		if got[i] != w {
			t.Fatalf("after CopyHalf from float16: %v", got[:6])
		}
	}
}

// StoreRows puts each row's heads at its slot and position, in float32 and
// float16 caches, and touches nothing else.
func TestStoreRows(t *testing.T) {
	c := New()
	slots, H, S, D := 3, 2, 4, 3
	src := &Buf{D: []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}} // 3 rows of 2 heads of 3
	slot, pos := []int32{2, -1, 0}, []int32{1, 99, 3}                                        // the middle row is skipped
	want := make([]float32, slots*H*S*D)
	for r := range 3 {
		if slot[r] < 0 {
			continue
		}
		for h := range H {
			o := ((int(slot[r])*H+h)*S + int(pos[r])) * D
			copy(want[o:o+D], src.D[(r*H+h)*D:])
		}
	}
	f32, f16 := &Buf{D: make([]float32, len(want))}, c.AllocHalf(len(want))
	c.StoreRows(f32, S, H, D, slot, pos, src)
	c.StoreRows(f16, S, H, D, slot, pos, src)
	got16 := make([]float32, len(want))
	FromHalf(got16, HalfData(f16))
	for i := range want {
		if f32.D[i] != want[i] || got16[i] != want[i] {
			t.Fatalf("value %d: float32 cache %v, float16 cache %v, want %v", i, f32.D[i], got16[i], want[i])
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a position beyond the slot did not panic")
		}
	}()
	c.StoreRows(f32, S, H, D, slot, []int32{1, 0, 4}, src)
}
