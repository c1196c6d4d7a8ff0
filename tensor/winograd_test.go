package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/golem-ml/golem/backend"
)

// naiveConvGrads returns the gradients of a stride-1 one-group
// convolution of x [N, C, H, W] by w [K, C, kh, kw] (padding p) for the
// output gradient dy [N, K, OH, OW], in float64: dx and dw, and beside
// them dxs and dws, the sums of the magnitudes of their terms (the
// gradients of |x|, |w| and |dy|, bit for bit), in the same pass.
func naiveConvGrads(x []float64, N, C, H, W int, w []float64, K, kh, kw int, dy []float64, p [2]int) (dx, dw, dxs, dws []float64) {
	OH, OW := H+2*p[0]-kh+1, W+2*p[1]-kw+1
	dx, dw = make([]float64, len(x)), make([]float64, len(w))
	dxs, dws = make([]float64, len(x)), make([]float64, len(w))
	for n := range N {
		for k := range K {
			for oh := range OH {
				for ow := range OW {
					d := dy[((n*K+k)*OH+oh)*OW+ow]
					for c := range C {
						for i := range kh {
							h := oh - p[0] + i
							if h < 0 || h >= H {
								continue
							}
							for j := range kw {
								ww := ow - p[1] + j
								if ww < 0 || ww >= W {
									continue
								}
								xi, wi := ((n*C+c)*H+h)*W+ww, ((k*C+c)*kh+i)*kw+j
								a, b := d*w[wi], d*x[xi]
								dx[xi] += a
								dw[wi] += b
								dxs[xi] += math.Abs(a)
								dws[wi] += math.Abs(b)
							}
						}
					}
				}
			}
		}
	}
	return dx, dw, dxs, dws
}

// maxRelErr is the largest |got - want| / scale over the elements.
func maxRelErr(got []float32, want, scale []float64) (float64, int) {
	worst, at := 0.0, 0
	for i, w := range want {
		if e := math.Abs(float64(got[i])-w) / math.Max(scale[i], 1e-30); e > worst {
			worst, at = e, i
		}
	}
	return worst, at
}

// winogradCases are vqvae-32's two 3x3 shapes (batch 2) and the edges:
// odd outputs (tiles half outside), padding 0 and 2, a 1x1 image, a long
// row.
var winogradCases = []struct {
	name          string
	N, C, H, W, K int
	pad           int
}{
	{"residual 3x3", 2, 128, 8, 8, 64, 1},
	{"decoder projection", 2, 64, 8, 8, 128, 1},
	{"odd 7x5", 3, 5, 7, 5, 6, 1},
	{"padding 0", 2, 4, 9, 6, 3, 0},
	{"padding 2", 1, 3, 4, 5, 2, 2},
	{"1x1 image", 2, 3, 1, 1, 4, 1},
	{"long row", 1, 8, 3, 17, 4, 1},
}

// winogradBound is the error allowed to the Winograd path, relative to
// the sum of the magnitudes of the products an output (or gradient) is
// made of (the convolution of |x| by |w|, and so on): 2^-20, 16 units of
// float32's last place. The transforms add and halve a few values per
// tile; measured on these cases the worst is 2.1e-7 for the output (the
// GEMM path's worst 1.5e-7), 2.6e-7 for dx (1.3e-7) and 3.8e-7 for dw
// (3.0e-7).
const winogradBound = 1.0 / (1 << 20)

// TestWinogradMatchesGemm runs the Winograd path (the CPU backend's
// backend.Winograd) and the implicit GEMM (SetWinograd(false)) on
// realistic magnitudes (activations after a ReLU, PyTorch's default
// initialisation, small output gradients), forward and backward, and
// checks both against the float64 definition: every value of the output
// and of the gradients of x, w and the bias within winogradBound of the
// sum of its products' magnitudes.
func TestWinogradMatchesGemm(t *testing.T) {
	if _, ok := be.(backend.Winograd); !ok {
		t.Fatal("the CPU backend has no backend.Winograd")
	}
	for _, c := range winogradCases {
		r := rand.New(rand.NewPCG(61, uint64(c.C)))
		bound := 1 / math.Sqrt(float64(9*c.C)) // PyTorch's default init: U(-bound, bound)
		uni := func(n int, s float64) []float32 {
			d := make([]float32, n)
			for i := range d {
				d[i] = float32((2*r.Float64() - 1) * s)
			}
			return d
		}
		xh := make([]float32, c.N*c.C*c.H*c.W)
		for i := range xh {
			xh[i] = float32(math.Max(0, r.NormFloat64())) // after a ReLU
		}
		wh, bh := uni(c.K*c.C*9, bound), uni(c.K, bound)
		OH, OW := c.H+2*c.pad-2, c.W+2*c.pad-2
		dyh := make([]float32, c.N*c.K*OH*OW)
		for i := range dyh {
			dyh[i] = float32(r.NormFloat64() * 1e-3)
		}
		o := ConvOptions{Padding: [2]int{c.pad, c.pad}}
		run := func(wino bool) [][]float32 {
			defer SetWinograd(SetWinograd(wino))
			x := FromHost(be, xh, c.N, c.C, c.H, c.W).SetRequiresGrad(true)
			w := FromHost(be, wh, c.K, c.C, 3, 3).SetRequiresGrad(true)
			b := FromHost(be, bh, c.K).SetRequiresGrad(true)
			y := Conv2d(x, w, b, o)
			Backward(Sum(Mul(y, FromHost(be, dyh, y.Shape()...))))
			return [][]float32{y.Host(), x.Grad().Host(), w.Grad().Host(), b.Grad().Host()}
		}
		f64 := func(v []float32) []float64 {
			out := make([]float64, len(v))
			for i, x := range v {
				out[i] = float64(x)
			}
			return out
		}
		x64, w64, b64, dy64 := f64(xh), f64(wh), f64(bh), f64(dyh)
		y, ys, _, _ := naiveConvMag(x64, c.N, c.C, c.H, c.W, w64, c.K, 3, 3, b64, o)
		dx, dw, dxs, dws := naiveConvGrads(x64, c.N, c.C, c.H, c.W, w64, c.K, 3, 3, dy64, o.Padding)
		db, dbs := make([]float64, c.K), make([]float64, c.K)
		for i, d := range dy64 {
			k := i / (OH * OW) % c.K
			db[k] += d
			dbs[k] += math.Abs(d)
		}
		want, scale := [][]float64{y, dx, dw, db}, [][]float64{ys, dxs, dws, dbs}
		wino, gemm := run(true), run(false)
		for i, what := range []string{"output", "dx", "dw", "db"} {
			e, at := maxRelErr(wino[i], want[i], scale[i])
			eg, _ := maxRelErr(gemm[i], want[i], scale[i])
			t.Logf("%s: %s: worst error / magnitude %.2g (the GEMM path's %.2g)", c.name, what, e, eg)
			if e > winogradBound {
				t.Errorf("%s: %s[%d] is %.8g through Winograd, %.8g in float64 (GEMM path %.8g): error %.3g of the magnitude %.3g, over 2^-20",
					c.name, what, at, wino[i][at], want[i][at], gemm[i][at], e, scale[i][at])
			}
		}
	}
}

// TestGradWinograd checks the Winograd path's gradients (the transforms'
// adjoints and the GEMMs between them) against central finite
// differences, on odd sizes and paddings 0 to 2, with and without bias.
func TestGradWinograd(t *testing.T) {
	r := rand.New(rand.NewPCG(63, 64))
	for _, c := range []struct{ N, C, H, W, K, pad int }{
		{2, 3, 5, 4, 2, 1}, {1, 2, 6, 7, 3, 0}, {1, 2, 3, 3, 2, 2}, {2, 1, 1, 2, 2, 1},
	} {
		o := ConvOptions{Padding: [2]int{c.pad, c.pad}}
		x, w, b := randT(r, 1, c.N, c.C, c.H, c.W), randT(r, 0.5, c.K, c.C, 3, 3), randT(r, 1, c.K)
		name := fmt.Sprintf("winograd%+v", c)
		if _, ok := winogradFor(be, geom("conv2d", c.N, c.C, c.H, c.W, c.K, 3, 3, o.norm())); !ok {
			t.Fatalf("%s: not on the Winograd path", name)
		}
		gradCheck(t, name, r, []*Tensor{x, w, b}, func(in []*Tensor) *Tensor { return Conv2d(in[0], in[1], in[2], o) })
		gradCheck(t, name+" no bias", r, []*Tensor{x, w}, func(in []*Tensor) *Tensor { return Conv2d(in[0], in[1], nil, o) })
	}
}

// TestWinogradTransformsAgain: a convolution whose transformed input is
// over winogradKeep does not keep it but transforms x again in the
// backward pass; the gradients are the same bit for bit.
func TestWinogradTransformsAgain(t *testing.T) {
	run := func(keep int) [][]float32 {
		old := winogradKeep
		winogradKeep = keep
		defer func() { winogradKeep = old }()
		r := rand.New(rand.NewPCG(65, 66))
		x, w, b := randT(r, 1, 2, 5, 7, 6), randT(r, 0.3, 4, 5, 3, 3), randT(r, 1, 4)
		y := Conv2d(x, w, b, ConvOptions{Padding: [2]int{1, 1}})
		if n := len(y.saved); (keep == 0) != (n == 1) {
			t.Fatalf("winogradKeep %d: %d buffers kept", keep, n)
		}
		Backward(Sum(Mul(y, randT(r, 1, y.Shape()...))))
		return [][]float32{y.Host(), x.Grad().Host(), w.Grad().Host(), b.Grad().Host()}
	}
	kept, again := run(1<<24), run(0)
	for i := range kept {
		for j, v := range kept[i] {
			if again[i][j] != v {
				t.Fatalf("tensor %d value %d: %g transformed again, %g kept", i, j, again[i][j], v)
			}
		}
	}
}
