package cpu

import (
	"math/rand/v2"
	"testing"

	"github.com/golem-ml/golem/backend"
)

// TestSplitPhases256MatchesGo splits images into their stride phases with
// the AVX2 row split (deinterleave256, both column phases of a row in one
// pass) and in Go: copies, so the same values; widths whose halves have
// every tail of the 8-lane chunks (8 to 33 a phase row, and under 8 where
// Go does all), row strides 1 to 3 and odd channel counts.
func TestSplitPhases256MatchesGo(t *testing.T) {
	if !haveAVX2FMA {
		t.Skip("no AVX2 here")
	}
	r := rand.New(rand.NewPCG(9, 10))
	for _, s := range [][4]int{ // H, W, SH, C
		{4, 16, 2, 3}, {6, 18, 2, 1}, {2, 34, 1, 2}, {6, 66, 3, 1}, {4, 14, 2, 2}, {8, 2, 2, 1},
		{32, 32, 2, 3}, {16, 16, 2, 5}, {2, 30, 2, 1}, {4, 48, 2, 1},
	} {
		g := backend.Conv2D{N: 2, C: s[3], H: s[0], W: s[1], K: 4, KH: 2 * s[2], KW: 4, SH: s[2], SW: 2,
			DH: 1, DW: 1, Groups: 1}
		g.PH, g.PW = 0, 1
		g.OH, g.OW = (g.H-g.KH)/g.SH+1, g.W/2
		if !usePhases(g) {
			t.Fatalf("%+v: not a phased convolution", g)
		}
		n := g.N * g.C * g.H * g.W
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		split := func(avx2 bool) []float32 {
			old := haveVec256
			haveVec256 = avx2
			defer func() { haveVec256 = old }()
			sp := make([]float32, n)
			for i := range sp {
				sp[i] = -7 // a value the split must overwrite
			}
			splitPhases(g, sp, x)
			return sp
		}
		got, want := split(true), split(false)
		for i := range want {
			if got[i] != want[i] || want[i] == -7 {
				t.Fatalf("H %d W %d SH %d C %d: [%d] is %g with AVX2, %g in Go", g.H, g.W, g.SH, g.C, i, got[i], want[i])
			}
		}
	}
	for n := range 42 { // deinterleave2 alone: every tail
		src := make([]float32, 2*n+1)
		for i := range src {
			src[i] = float32(i)
		}
		a, b := make([]float32, n+1), make([]float32, n+1)
		a[n], b[n] = -1, -1
		deinterleave2(a[:n], b[:n], src[:2*n])
		for i := range n {
			if a[i] != float32(2*i) || b[i] != float32(2*i+1) {
				t.Fatalf("n %d: a[%d], b[%d] = %g, %g; want %d, %d", n, i, i, a[i], b[i], 2*i, 2*i+1)
			}
		}
		if a[n] != -1 || b[n] != -1 {
			t.Fatalf("n %d: wrote past the end", n)
		}
	}
}

// BenchmarkSplitPhases splits vqvae-32's second encoder convolution's
// input (batch 32, 64 channels, 16x16, stride 2) into its phases, one
// thread, with AVX2's row split and in Go.
func BenchmarkSplitPhases(b *testing.B) {
	defer SetThreads(SetThreads(1))
	g := backend.Conv2D{N: 32, C: 64, H: 16, W: 16, K: 128, KH: 4, KW: 4, SH: 2, SW: 2, PH: 1, PW: 1,
		DH: 1, DW: 1, Groups: 1, OH: 8, OW: 8}
	n := g.N * g.C * g.H * g.W
	x, sp := make([]float32, n), make([]float32, n)
	for _, level := range []string{"avx2", "go"} {
		b.Run(level, func(b *testing.B) {
			if level == "avx2" && !haveAVX2FMA {
				b.Skip("no AVX2")
			}
			old := haveVec256
			haveVec256 = level == "avx2"
			defer func() { haveVec256 = old }()
			for b.Loop() {
				splitPhases(g, sp, x)
			}
		})
	}
}
