package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/golem-ml/golem/backend"
)

// TestWinogradVectorMatchesGo runs the Winograd transforms with their
// vector tile kernels (AVX-512's where the CPU has it, AVX2's where it
// has AVX2) and with the Go ones, input and output, forward and adjoint,
// and their channel-last copies with packStrided's vector transposes and
// with Go's: the same sums in the same order, so the same values (channel
// counts with a masked tail: 20, 5, 33; odd outputs; paddings 0 to 2).
func TestWinogradVectorMatchesGo(t *testing.T) {
	var levels []string
	if haveVec {
		levels = append(levels, "AVX-512")
	}
	if haveAVX2FMA {
		levels = append(levels, "AVX2")
	}
	if len(levels) == 0 {
		t.Skip("no AVX-512 or AVX2 here: only the Go kernels run")
	}
	c := New()
	r := rand.New(rand.NewPCG(71, 72))
	for _, g := range []backend.Conv2D{
		{N: 3, C: 20, H: 8, W: 8, K: 16, PH: 1, PW: 1},
		{N: 2, C: 5, H: 7, W: 5, K: 3, PH: 1, PW: 1},
		{N: 2, C: 33, H: 6, W: 9, K: 4, PH: 0, PW: 0},
		{N: 1, C: 16, H: 3, W: 4, K: 2, PH: 2, PW: 2},
	} {
		g.KH, g.KW, g.SH, g.SW, g.DH, g.DW, g.Groups = 3, 3, 1, 1, 1, 1, 1
		g.OH, g.OW = g.H+2*g.PH-2, g.W+2*g.PW-2
		T := g.N * ((g.OH + 1) / 2) * ((g.OW + 1) / 2)
		x := randBuf(c, r, g.N*g.C*g.H*g.W)
		dv := randBuf(c, r, backend.WinogradLen(T*g.C))
		m := randBuf(c, r, backend.WinogradLen(T*g.K))
		dy := randBuf(c, r, g.N*g.K*g.OH*g.OW)
		bias := randBuf(c, r, g.K)
		run := func(level string) [][]float32 {
			old, old256, ps := haveVec, haveVec256, packStrided
			haveVec, haveVec256 = level == "AVX-512", level == "AVX2"
			if level == "Go" {
				packStrided = packStridedGo // the channel-last copies too
			}
			defer func() { haveVec, haveVec256, packStrided = old, old256, ps }()
			v := c.Alloc(backend.WinogradLen(T*g.C), true)
			c.WinogradInput(g, v, x)
			dx := randBufSeed(c, 7, g.N*g.C*g.H*g.W)
			c.WinogradInputGrad(g, dx, dv)
			y := c.Alloc(g.N*g.K*g.OH*g.OW, false)
			c.WinogradOutput(g, y, m, bias)
			y0 := c.Alloc(g.N*g.K*g.OH*g.OW, false)
			c.WinogradOutput(g, y0, m, nil)
			dm := c.Alloc(backend.WinogradLen(T*g.K), true)
			c.WinogradOutputGrad(g, dm, dy)
			var out [][]float32
			for _, b := range []backend.Buffer{v, dx, y, y0, dm} {
				out = append(out, append([]float32(nil), f(b)...))
			}
			return out
		}
		gov := run("Go")
		for _, level := range levels {
			vec := run(level)
			for k, name := range []string{"v", "dx", "y", "y without bias", "dm"} {
				for i := range gov[k] {
					// bit for bit, but for the sign of a zero (a tile's
					// padding, negated in one order or the other)
					if math.Float32bits(vec[k][i]) != math.Float32bits(gov[k][i]) && !(vec[k][i] == 0 && gov[k][i] == 0) {
						t.Fatalf("%+v: %s[%d] is %g with %s, %g in Go", g, name, i, vec[k][i], level, gov[k][i])
					}
				}
			}
		}
	}
}

// TestWinogradTileKernels256 runs each AVX2 tile kernel against its Go
// version on one tile of n channels, n from 0 to 1000 so that every tail
// of the 8-lane chunks (and the masked last chunk) is run, on values with
// signed zeros among them (negation is the sign bit's flip, as Go's -x).
// The runs of channels lie apart (gaps between taps, rows and points)
// holding sentinels: a kernel that writes past its n channels changes one
// and fails. Bit for bit: the same sums in the same order.
func TestWinogradTileKernels256(t *testing.T) {
	if !haveAVX2FMA {
		t.Skip("no AVX2 here")
	}
	r := rand.New(rand.NewPCG(5, 6))
	fill := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			switch r.IntN(8) {
			case 0:
				s[i] = 0
			case 1:
				s[i] = float32(math.Copysign(0, -1))
			default:
				s[i] = float32(r.NormFloat64())
			}
		}
		return s
	}
	same := func(name string, n int, a, b []float32) {
		t.Helper()
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				t.Fatalf("%s, n=%d: [%d] is %g in AVX2, %g in Go", name, n, i, a[i], b[i])
			}
		}
	}
	for _, n := range []int{0, 1, 2, 7, 8, 9, 15, 16, 17, 23, 31, 33, 64, 1000} {
		// taps: tap (i, j) at i*ld + j*n, ld = 4n+5; points at e*ds, ds = n+3
		ld, ds := 4*n+5, n+3
		taps, pts := 3*ld+4*n+1, 15*ds+n+1
		src := fill(taps)
		a, b := fill(pts), make([]float32, pts)
		copy(b, a)
		wgin256(&src[0], ld, &a[0], ds, n)
		wginGo(src, ld, b, ds, n)
		same("wgin", n, a, b)

		p := fill(pts)
		a = fill(taps)
		b = append([]float32(nil), a...)
		wgingrad256(&a[0], ld, &p[0], ds, n)
		wgingradGo(b, ld, p, ds, n)
		same("wgingrad", n, a, b)

		// wgout: points at e*ds, outputs at 0, n, ld, ld+n with ld = 2n+5
		old := 2*n + 5
		bias := fill(n + 1)
		a = fill(old + 2*n + 1)
		b = append([]float32(nil), a...)
		wgout256(&p[0], ds, &a[0], old, &bias[0], n)
		wgoutGo(p, ds, b, old, bias, n)
		same("wgout", n, a, b)

		dy := fill(old + 2*n + 1)
		a = fill(pts)
		b = append([]float32(nil), a...)
		wgoutgrad256(&dy[0], old, &a[0], ds, n)
		wgoutgradGo(dy, old, b, ds, n)
		same("wgoutgrad", n, a, b)
	}
}

func randBufSeed(c *CPU, seed uint64, n int) backend.Buffer {
	return randBuf(c, rand.New(rand.NewPCG(seed, seed)), n)
}

// BenchmarkWinogradTransforms runs the four transforms of vqvae-32's
// residual 3x3 (batch 32, 128 -> 64 channels, 8x8): input, its adjoint,
// output with bias, its adjoint; one thread; with the tile kernels this
// CPU selects (AVX-512, AVX2 or Go) and, as Go/, with Go's.
func BenchmarkWinogradTransforms(b *testing.B) {
	b.Run("selected", benchmarkWinogradTransforms)
	b.Run("Go", func(b *testing.B) {
		old, old256 := haveVec, haveVec256
		haveVec, haveVec256 = false, false
		defer func() { haveVec, haveVec256 = old, old256 }()
		benchmarkWinogradTransforms(b)
	})
}

func benchmarkWinogradTransforms(b *testing.B) {
	c := New()
	defer SetThreads(SetThreads(1))
	r := rand.New(rand.NewPCG(3, 4))
	g := backend.Conv2D{N: 32, C: 128, H: 8, W: 8, K: 64, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1,
		DH: 1, DW: 1, Groups: 1, OH: 8, OW: 8}
	T := g.N * 16
	x, dx := randBuf(c, r, g.N*g.C*64), randBuf(c, r, g.N*g.C*64)
	v, m := randBuf(c, r, backend.WinogradLen(T*g.C)), randBuf(c, r, backend.WinogradLen(T*g.K))
	y, bias := randBuf(c, r, g.N*g.K*64), randBuf(c, r, g.K)
	for b.Loop() {
		c.WinogradInput(g, v, x)
		c.WinogradInputGrad(g, dx, v)
		c.WinogradOutput(g, y, m, bias)
		c.WinogradOutputGrad(g, m, y)
	}
}
