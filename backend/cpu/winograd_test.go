package cpu

import (
	"math/rand/v2"
	"testing"

	"github.com/golem-ml/golem/backend"
)

// TestWinogradVectorMatchesGo runs the Winograd transforms with their
// AVX-512 tile kernels and with the Go ones (haveVec off), input and
// output, forward and adjoint, and their channel-last copies with
// packStrided's 16x16 transposes and with Go's: the same sums in the same
// order, so the same values (channel counts with a masked tail: 20, 5, 33; odd
// outputs; paddings 0 to 2).
func TestWinogradVectorMatchesGo(t *testing.T) {
	if !haveVec {
		t.Skip("no AVX-512 here: only the Go kernels run")
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
		run := func(vec bool) [][]float32 {
			old, ps := haveVec, packStrided
			haveVec = vec
			if !vec {
				packStrided = packStridedGo // the channel-last copies too
			}
			defer func() { haveVec, packStrided = old, ps }()
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
		vec, gov := run(true), run(false)
		for k, name := range []string{"v", "dx", "y", "y without bias", "dm"} {
			for i := range gov[k] {
				if vec[k][i] != gov[k][i] {
					t.Fatalf("%+v: %s[%d] is %g with AVX-512, %g in Go", g, name, i, vec[k][i], gov[k][i])
				}
			}
		}
	}
}

func randBufSeed(c *CPU, seed uint64, n int) backend.Buffer {
	return randBuf(c, rand.New(rand.NewPCG(seed, seed)), n)
}

// BenchmarkWinogradTransforms runs the four transforms of vqvae-32's
// residual 3x3 (batch 32, 128 -> 64 channels, 8x8): input, its adjoint,
// output with bias, its adjoint; one thread.
func BenchmarkWinogradTransforms(b *testing.B) {
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
