package safetensors

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestFloat16Exhaustive converts every half value to float32 and back.
func TestFloat16Exhaustive(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := Float16ToFloat32(uint16(h))
		back := Float32ToFloat16(f)
		if math.IsNaN(float64(f)) {
			if back&0x7c00 != 0x7c00 || back&0x3ff == 0 || back&0x8000 != uint16(h)&0x8000 {
				t.Fatalf("NaN %#04x -> %#04x", h, back)
			}
			continue
		}
		if back != uint16(h) {
			t.Fatalf("%#04x -> %v -> %#04x", h, f, back)
		}
	}
	if v := Float16ToFloat32(0x3c00); v != 1 {
		t.Errorf("0x3c00 = %v, want 1", v)
	}
	if v := Float16ToFloat32(0x0001); v != 0x1p-24 {
		t.Errorf("smallest subnormal = %v", v)
	}
	if v := Float16ToFloat32(0x7bff); v != 65504 {
		t.Errorf("largest half = %v", v)
	}
}

func TestBFloat16Exhaustive(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := BFloat16ToFloat32(uint16(h))
		back := Float32ToBFloat16(f)
		if math.IsNaN(float64(f)) {
			if !math.IsNaN(float64(BFloat16ToFloat32(back))) {
				t.Fatalf("NaN %#04x -> %#04x", h, back)
			}
			continue
		}
		if back != uint16(h) {
			t.Fatalf("%#04x -> %v -> %#04x", h, f, back)
		}
	}
}

// nearest returns the representable value of decode (over all 16-bit codes of
// one sign) nearest to x, ties to the even code: the definition of rounding.
func nearest(x float64, decode func(uint16) float32, maxFinite uint16) uint16 {
	sign := uint16(0)
	if math.Signbit(x) {
		sign, x = 0x8000, -x
	}
	// binary search over the monotone positive codes 0..maxFinite
	lo, hi := uint16(0), maxFinite
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if float64(decode(mid)) <= x {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	best := lo
	if lo < maxFinite {
		dl, dh := x-float64(decode(lo)), float64(decode(lo+1))-x
		if dh < dl || dh == dl && lo&1 == 1 {
			best = lo + 1
		}
	} else {
		// beyond the largest finite: overflow to infinity from half an ulp up
		ulp := float64(decode(maxFinite)) - float64(decode(maxFinite-1))
		if x >= float64(decode(maxFinite))+ulp/2 {
			best = maxFinite + 1 // infinity code
		}
	}
	return sign | best
}

func TestFloat32ToHalfRounding(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var xs []float32
	for h := 0; h < 0x7c00; h++ { // every half value, its midpoints and neighbours
		a, b := float64(Float16ToFloat32(uint16(h))), float64(Float16ToFloat32(uint16(h+1)))
		m := float32((a + b) / 2)
		xs = append(xs, m, math.Nextafter32(m, 0), math.Nextafter32(m, 1e9))
	}
	for i := 0; i < 200000; i++ {
		xs = append(xs, math.Float32frombits(r.Uint32()&0x7fffffff|uint32(r.IntN(2))<<31))
	}
	xs = append(xs, 0x1p-25, 0x1p-26, 65519.99, 65520, 1e-30, math.MaxFloat32)
	for _, x := range xs {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			continue
		}
		if got, want := Float32ToFloat16(x), nearest(float64(x), Float16ToFloat32, 0x7bff); got != want {
			t.Fatalf("Float32ToFloat16(%g) = %#04x, want %#04x", x, got, want)
		}
		if got, want := Float32ToBFloat16(x), nearest(float64(x), BFloat16ToFloat32, 0x7f7f); got != want {
			t.Fatalf("Float32ToBFloat16(%g) = %#04x, want %#04x", x, got, want)
		}
	}
	inf := float32(math.Inf(1))
	if Float32ToFloat16(inf) != 0x7c00 || Float32ToFloat16(-inf) != 0xfc00 || Float32ToBFloat16(inf) != 0x7f80 {
		t.Error("infinities not preserved")
	}
	nan := float32(math.NaN())
	if !math.IsNaN(float64(Float16ToFloat32(Float32ToFloat16(nan)))) || !math.IsNaN(float64(BFloat16ToFloat32(Float32ToBFloat16(nan)))) {
		t.Error("NaN not preserved")
	}
}
