package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/golem-ml/golem/backend"
)

// TestConvMatMulMatchesColumns runs ConvMatMul against Im2Col's matrix and
// MatMul, both ways round (the forward GEMM W col and the weight
// gradient's dY col^T, and ConvWeightGrad with dY in NCHW), on one and
// two threads, writing and adding: the
// packed panels hold the same values, so the results are bit for bit
// the same. The geometries cover each way a panel is filled: shifted
// planes (3x3 padding 1), stride phases (4x4 stride 2), strided rows,
// dilation, 1x1, panels that cross from one image to the next (25
// outputs an image) and, with two threads, op(B) packed once for all
// parts.
func TestConvMatMulMatchesColumns(t *testing.T) {
	c := New()
	r := rand.New(rand.NewPCG(41, 42))
	for _, g := range []backend.Conv2D{
		{N: 3, C: 8, H: 8, W: 8, K: 16, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, DH: 1, DW: 1},  // a residual 3x3
		{N: 2, C: 6, H: 16, W: 16, K: 8, KH: 4, KW: 4, SH: 2, SW: 2, PH: 1, PW: 1, DH: 1, DW: 1}, // vqvae-32's downsampling
		{N: 2, C: 5, H: 10, W: 10, K: 7, KH: 4, KW: 4, SH: 2, SW: 2, PH: 2, PW: 2, DH: 1, DW: 1},
		{N: 4, C: 6, H: 5, W: 5, K: 9, KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1},
		{N: 3, C: 4, H: 5, W: 5, K: 5, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, DH: 1, DW: 1},
		{N: 2, C: 3, H: 7, W: 9, K: 4, KH: 3, KW: 3, SH: 2, SW: 2, PH: 1, PW: 1, DH: 1, DW: 1},  // odd sides: strided rows
		{N: 2, C: 2, H: 5, W: 9, K: 3, KH: 3, KW: 3, SH: 1, SW: 3, PH: 1, PW: 2, DH: 1, DW: 2},  // columns strided and dilated
		{N: 2, C: 2, H: 7, W: 7, K: 3, KH: 3, KW: 2, SH: 1, SW: 1, PH: 2, PW: 0, DH: 2, DW: 1},  // rows dilated
		{N: 1, C: 2, H: 3, W: 40, K: 2, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, DH: 1, DW: 1}, // rows wider than a panel
		{N: 8, C: 4, H: 8, W: 8, K: 256, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, DH: 1, DW: 1},
	} {
		g.Groups = 1
		g.OH = (g.H+2*g.PH-g.DH*(g.KH-1)-1)/g.SH + 1
		g.OW = (g.W+2*g.PW-g.DW*(g.KW-1)-1)/g.SW + 1
		CKK, NL := g.C*g.KH*g.KW, g.N*g.OH*g.OW
		x := randBuf(c, r, g.N*g.C*g.H*g.W)
		col := c.Alloc(CKK*NL, false)
		c.Im2Col(g, col, x, 0)
		for _, th := range []int{1, 2} {
			for _, trans := range []bool{false, true} {
				for _, beta := range []float32{0, 1} {
					name := fmt.Sprintf("%+v threads %d transB %v beta %v", g, th, trans, beta)
					prev := SetThreads(th)
					// forward: C [K, NL] = A [K, CKK] col; weight
					// gradient: C [K, CKK] = A [K, NL] col^T
					p := backend.Gemm{M: g.K, N: NL, K: CKK, Alpha: 1, Beta: beta, Batch: 1, LDA: CKK, LDB: NL, LDC: NL}
					if trans {
						p = backend.Gemm{TransB: true, M: g.K, N: CKK, K: NL, Alpha: 0.5, Beta: beta, Batch: 1, LDA: NL, LDB: NL, LDC: CKK}
					}
					a := randBuf(c, r, p.M*p.K)
					c0 := randBuf(c, r, p.M*p.N)
					want, got := c.Alloc(p.M*p.N, false), c.Alloc(p.M*p.N, false)
					copy(f(want), f(c0))
					copy(f(got), f(c0))
					c.MatMul(p, a, col, want)
					c.ConvMatMul(p, g, a, x, got)
					SetThreads(prev)
					for i, v := range f(want) {
						if f(got)[i] != v {
							t.Fatalf("%s: value %d is %g, Im2Col and MatMul give %g", name, i, f(got)[i], v)
						}
					}
					if trans {
						// ConvWeightGrad: dy in NCHW, A its channel-major copy
						dy := c.Alloc(p.M*p.K, false)
						c.Permute(dy, a, []int{g.K, g.N, g.OH * g.OW}, []int{1, 0, 2}, false)
						c.Permute(a, dy, []int{g.N, g.K, g.OH * g.OW}, []int{1, 0, 2}, false)
						copy(f(want), f(c0))
						copy(f(got), f(c0))
						p.Alpha = 1
						prev := SetThreads(th)
						c.MatMul(p, a, col, want)
						c.ConvWeightGrad(g, got, dy, x, beta)
						SetThreads(prev)
						for i, v := range f(want) {
							if f(got)[i] != v {
								t.Fatalf("%s: ConvWeightGrad's value %d is %g, Im2Col and MatMul give %g", name, i, f(got)[i], v)
							}
						}
						c.Free(dy)
					}
					for _, b := range []backend.Buffer{a, c0, want, got} {
						c.Free(b)
					}
				}
			}
		}
		c.Free(col)
		c.Free(x)
	}
}

// TestConvMatMulBadArgs: a product that does not match the column
// matrix's shape, or groups, is refused with its sizes.
func TestConvMatMulBadArgs(t *testing.T) {
	c := New()
	g := backend.Conv2D{N: 1, C: 2, H: 4, W: 4, K: 3, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, DH: 1, DW: 1, Groups: 1, OH: 4, OW: 4}
	x, a, out := c.Alloc(32, false), c.Alloc(3*18, false), c.Alloc(3*16, false)
	for _, p := range []backend.Gemm{
		{M: 3, N: 16, K: 17, Alpha: 1, Batch: 1, LDA: 17, LDC: 16},
		{M: 3, N: 15, K: 18, Alpha: 1, Batch: 1, LDA: 18, LDC: 16},
	} {
		func() {
			defer func() {
				if e := recover(); e == nil {
					t.Errorf("%+v: no panic", p)
				}
			}()
			c.ConvMatMul(p, g, a, x, out)
		}()
	}
}

func randBuf(c *CPU, r *rand.Rand, n int) backend.Buffer {
	b := c.Alloc(n, false)
	for i := range f(b) {
		f(b)[i] = r.Float32()*2 - 1
	}
	return b
}

// TestSplitPhasesOnce: ConvMatMul and ConvWeightGrad over x split once by
// SplitPhases (g.Phased) give what they give splitting x themselves, bit
// for bit (4x4 stride 2 as vqvae-32's, a patch embedding); ConvPhases is
// false where they read x as it is, and SplitPhases refuses those.
func TestSplitPhasesOnce(t *testing.T) {
	c := New()
	r := rand.New(rand.NewPCG(43, 44))
	for _, g := range []backend.Conv2D{
		{N: 2, C: 6, H: 16, W: 16, K: 8, KH: 4, KW: 4, SH: 2, SW: 2, PH: 1, PW: 1, DH: 1, DW: 1, Groups: 1, OH: 8, OW: 8},
		{N: 3, C: 2, H: 8, W: 12, K: 5, KH: 4, KW: 4, SH: 4, SW: 4, DH: 1, DW: 1, Groups: 1, OH: 2, OW: 3},
	} {
		if !c.ConvPhases(g) {
			t.Fatalf("%+v: ConvPhases false", g)
		}
		CKK, NL := g.C*g.KH*g.KW, g.N*g.OH*g.OW
		x, a := randBuf(c, r, g.N*g.C*g.H*g.W), randBuf(c, r, g.K*CKK)
		dy := randBuf(c, r, g.N*g.K*g.OH*g.OW)
		sp := c.Alloc(g.N*g.C*g.H*g.W, false)
		c.SplitPhases(g, sp, x)
		gp := g
		gp.Phased = true
		p := backend.Gemm{M: g.K, N: NL, K: CKK, Alpha: 1, Batch: 1, LDA: CKK, LDC: NL}
		y0, y1 := c.Alloc(g.K*NL, false), c.Alloc(g.K*NL, false)
		c.ConvMatMul(p, g, a, x, y0)
		c.ConvMatMul(p, gp, a, sp, y1)
		w0, w1 := c.Alloc(g.K*CKK, false), c.Alloc(g.K*CKK, false)
		c.ConvWeightGrad(g, w0, dy, x, 0)
		c.ConvWeightGrad(gp, w1, dy, sp, 0)
		for i, v := range f(y0) {
			if f(y1)[i] != v {
				t.Fatalf("%+v: ConvMatMul's value %d is %g split once, %g", g, i, f(y1)[i], v)
			}
		}
		for i, v := range f(w0) {
			if f(w1)[i] != v {
				t.Fatalf("%+v: ConvWeightGrad's value %d is %g split once, %g", g, i, f(w1)[i], v)
			}
		}
	}
	g := backend.Conv2D{N: 1, C: 2, H: 8, W: 8, K: 2, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, DH: 1, DW: 1, Groups: 1, OH: 8, OW: 8}
	if c.ConvPhases(g) {
		t.Fatal("ConvPhases true for a stride-1 3x3")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("SplitPhases of a stride-1 3x3 did not panic")
		}
	}()
	c.SplitPhases(g, c.Alloc(128, false), c.Alloc(128, false))
}
