package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/golem-ml/golem/backend"
)

// allChannels lets the F(2x2, 2x2) path take convolutions of any
// channel count, for the rest of the test.
func allChannels(t *testing.T) {
	old := winogradS2Min
	winogradS2Min = 1
	t.Cleanup(func() { winogradS2Min = old })
}

// s2Tile makes the path run tile m (2 or 4) on every shape it takes,
// and returns a func that restores the tile's choice.
func s2Tile(m int) func() {
	old := winogradS2Force
	winogradS2Force = m
	return func() { winogradS2Force = old }
}

// s2Name is tile m's algorithm.
func s2Name(m int) string { return fmt.Sprintf("F(%dx%d, 2x2)", m, m) }

// winogradS2Cases are vqvae-32's four 4x4 stride-2 layers (batch 2) and
// the edges: odd outputs (the last tiles half outside), paddings 0, 2
// and 3, C and K not multiples of 8, batch 1 and 3, a non-square image,
// a transposed convolution with output padding.
var winogradS2Cases = []struct {
	name          string
	transposed    bool
	N, C, H, W, K int
	pad, outPad   int
}{
	{"encoder 128->128", false, 2, 128, 16, 16, 128, 1, 0},
	{"encoder 3->128", false, 2, 3, 32, 32, 128, 1, 0},
	{"decoder 128->128", true, 2, 128, 8, 8, 128, 1, 0},
	{"decoder 128->3", true, 2, 128, 16, 16, 3, 1, 0},
	{"odd 7x7", false, 3, 5, 7, 7, 6, 1, 0},
	{"padding 0, 9x6", false, 1, 4, 9, 6, 3, 0, 0},
	{"padding 2", false, 3, 3, 5, 7, 9, 2, 0},
	{"padding 3", false, 1, 2, 4, 4, 2, 3, 0},
	{"1x1 output", false, 2, 3, 2, 2, 4, 1, 0},
	{"transposed odd 3x5", true, 3, 6, 3, 5, 5, 1, 0},
	{"transposed padding 0", true, 1, 5, 4, 3, 7, 0, 0},
	{"transposed padding 2", true, 2, 3, 5, 5, 4, 2, 0},
	{"transposed output padding", true, 1, 9, 4, 5, 3, 1, 1},
}

// winogradS2Bound is the difference allowed between tile m's path and
// the GEMM path, relative to the sum of the magnitudes of the products an
// output (or gradient) is made of. F(2x2, 2x2): 2^-18, 64 units of
// float32's last place. Both paths round; the transformed factors are
// sums of up to 4 values each (B^T d, A dy A^T, G w G^T), so each
// product the transformed GEMMs round is up to 16x one of the direct
// convolution's, and the output transform adds up to 4 rounded points.
// Measured on these cases: at most 5.3e-7 for outputs and input
// gradients, 3.9e-7 for weight gradients (1.2e-6 against their own
// magnitudes, before the kernel's largest was their scale). F(4x4, 2x2):
// its transforms' magnitudes (|A^T| |G| |B^T| summed over an output's
// products, 205 in 2-D against 9) are 23x F(2x2, 2x2)'s, so 2^-18 * 32 =
// 2^-13; measured on these cases: at most 4.6e-6 (an output of an odd
// 3x5 transposed convolution), 1.7e-6 for input gradients, 1.9e-6 for
// weight gradients.
func winogradS2Bound(m int) float64 {
	if m == 4 {
		return 1.0 / (1 << 13)
	}
	return 1.0 / (1 << 18)
}

// TestWinogradS2MatchesGemm runs Conv2d and ConvTranspose2d on the
// F(2x2, 2x2) and F(4x4, 2x2) paths and on the GEMM path (SetWinograd(false)) on
// realistic magnitudes, forward and backward, and checks that every
// value of the output and of the gradients of x, w and the bias differ
// by at most winogradS2Bound of its magnitude: the same computation on
// |x|, |w|, |bias| and |dy| by the GEMM path (for the weight gradient,
// the largest of its kernel's 16).
func TestWinogradS2MatchesGemm(t *testing.T) {
	if _, ok := be.(backend.WinogradS2); !ok {
		t.Fatal("the CPU backend has no backend.WinogradS2")
	}
	allChannels(t)
	for _, tile := range []int{2, 4} {
		defer s2Tile(tile)()
		testWinogradS2MatchesGemm(t, tile)
	}
}

func testWinogradS2MatchesGemm(t *testing.T, tile int) {
	for _, c := range winogradS2Cases {
		r := rand.New(rand.NewPCG(71, uint64(c.C*c.K)))
		bound := 1 / math.Sqrt(float64(16*c.C))
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
		o := ConvOptions{Stride: [2]int{2, 2}, Padding: [2]int{c.pad, c.pad}, OutputPadding: [2]int{c.outPad, c.outPad}}
		wshape := []int{c.K, c.C, 4, 4}
		op := func(x, w, b *Tensor) *Tensor { return Conv2d(x, w, b, o) }
		if c.transposed {
			wshape = []int{c.C, c.K, 4, 4}
			op = func(x, w, b *Tensor) *Tensor { return ConvTranspose2d(x, w, b, o) }
		}
		wh, bh := uni(numel(wshape), bound), uni(c.K, bound)
		var dyh []float32
		abs := func(v []float32) []float32 {
			out := make([]float32, len(v))
			for i, x := range v {
				out[i] = float32(math.Abs(float64(x)))
			}
			return out
		}
		run := func(wino, mag bool) [][]float32 {
			defer SetWinograd(SetWinograd(wino))
			xh, wh, bh := xh, wh, bh
			if mag { // the magnitudes' run
				xh, wh, bh = abs(xh), abs(wh), abs(bh)
			}
			x := FromHost(be, xh, c.N, c.C, c.H, c.W).SetRequiresGrad(true)
			w := FromHost(be, wh, wshape...).SetRequiresGrad(true)
			b := FromHost(be, bh, c.K).SetRequiresGrad(true)
			y := op(x, w, b)
			if dyh == nil {
				dyh = make([]float32, y.Len())
				for i := range dyh {
					dyh[i] = float32(r.NormFloat64() * 1e-3)
				}
			}
			dy := dyh
			if mag {
				dy = abs(dyh)
			}
			Backward(Sum(Mul(y, FromHost(be, dy, y.Shape()...))))
			return [][]float32{y.Host(), x.Grad().Host(), w.Grad().Host(), b.Grad().Host()}
		}
		wino, gemm, scale := run(true, false), run(false, false), run(false, true)
		// A weight gradient's scale is its kernel's largest: G^T mixes
		// a phase's 4 taps, so F(4x4, 2x2)'s rounded thirds leave a
		// tap no product reaches (all in the padding) a little of its
		// neighbours' magnitude rather than 0.
		for k := 0; k < len(scale[2]); k += 16 {
			big := slices.Max(scale[2][k : k+16])
			for j := k; j < k+16; j++ {
				scale[2][j] = big
			}
		}
		for i, what := range []string{"output", "dx", "dw", "db"} {
			worst, at := 0.0, 0
			for j, v := range wino[i] {
				if e := math.Abs(float64(v)-float64(gemm[i][j])) / math.Max(float64(scale[i][j]), 1e-30); e > worst {
					worst, at = e, j
				}
			}
			t.Logf("%s: %s: worst |%s - GEMM| / magnitude %.2g", c.name, what, s2Name(tile), worst)
			if worst > winogradS2Bound(tile) {
				t.Errorf("%s: %s[%d] is %.8g through %s, %.8g through the GEMM: difference %.3g of the magnitude %.3g, over %.3g",
					c.name, what, at, wino[i][at], s2Name(tile), gemm[i][at], worst, scale[i][at], winogradS2Bound(tile))
			}
		}
	}
}

// TestGradWinogradS2 checks the F(2x2, 2x2) and F(4x4, 2x2) paths'
// gradients, Conv2d's and ConvTranspose2d's, against central finite
// differences, on odd sizes and paddings 0 to 2, with and without bias.
func TestGradWinogradS2(t *testing.T) {
	allChannels(t)
	for _, tile := range []int{2, 4} {
		defer s2Tile(tile)()
		testGradWinogradS2(t, tile)
	}
}

func testGradWinogradS2(t *testing.T, tile int) {
	r := rand.New(rand.NewPCG(73, 74))
	for _, c := range []struct{ N, C, H, W, K, pad, outPad int }{
		{2, 3, 7, 6, 2, 1, 0}, {1, 2, 6, 9, 3, 0, 0}, {1, 2, 5, 5, 2, 2, 0}, {3, 1, 4, 4, 2, 1, 1},
	} {
		o := ConvOptions{Stride: [2]int{2, 2}, Padding: [2]int{c.pad, c.pad}}
		name := fmt.Sprintf("winogradS2 %s %+v", s2Name(tile), c)
		if _, m, ok := winogradS2For(be, geom("conv2d", c.N, c.C, c.H, c.W, c.K, 4, 4, o.norm())); !ok || m != tile {
			t.Fatalf("%s: not on the %s path", name, s2Name(tile))
		}
		x, w, b := randT(r, 1, c.N, c.C, c.H, c.W), randT(r, 0.5, c.K, c.C, 4, 4), randT(r, 1, c.K)
		gradCheck(t, name, r, []*Tensor{x, w, b}, func(in []*Tensor) *Tensor { return Conv2d(in[0], in[1], in[2], o) })
		gradCheck(t, name+" no bias", r, []*Tensor{x, w}, func(in []*Tensor) *Tensor { return Conv2d(in[0], in[1], nil, o) })
		ot := o
		ot.OutputPadding = [2]int{c.outPad, c.outPad}
		xt, wt, bt := randT(r, 1, c.N, c.K, c.H, c.W), randT(r, 0.5, c.K, c.C, 4, 4), randT(r, 1, c.C)
		gradCheck(t, name+" transposed", r, []*Tensor{xt, wt, bt}, func(in []*Tensor) *Tensor { return ConvTranspose2d(in[0], in[1], in[2], ot) })
		gradCheck(t, name+" transposed no bias", r, []*Tensor{xt, wt}, func(in []*Tensor) *Tensor { return ConvTranspose2d(in[0], in[1], nil, ot) })
	}
}

// TestWinogradS2Geometry: the path takes 4x4 stride-2 convolutions of one
// group and no dilation only, of winogradS2Min channels in and out, in
// tiles of 4 where winogradS2Tile says, and
// SetWinograd(false) turns it off.
func TestWinogradS2Geometry(t *testing.T) {
	base := ConvOptions{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}
	for _, c := range []struct {
		name   string
		kh, kw int
		o      ConvOptions
		want   bool
	}{
		{"4x4 stride 2", 4, 4, base, true},
		{"padding 0", 4, 4, ConvOptions{Stride: [2]int{2, 2}}, true},
		{"3x3 stride 2", 3, 3, base, false},
		{"4x2", 4, 2, base, false},
		{"stride 1", 4, 4, ConvOptions{Padding: [2]int{1, 1}}, false},
		{"stride (2, 1)", 4, 4, ConvOptions{Stride: [2]int{2, 1}, Padding: [2]int{1, 1}}, false},
		{"dilation 2", 4, 4, ConvOptions{Stride: [2]int{2, 2}, Padding: [2]int{3, 3}, Dilation: [2]int{2, 2}}, false},
		{"groups 2", 4, 4, ConvOptions{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}, Groups: 2}, false},
	} {
		g := geom("conv2d", 2, 8, 16, 16, 8, c.kh, c.kw, c.o.norm())
		if _, _, ok := winogradS2For(be, g); ok != c.want {
			t.Errorf("%s: on the F(2x2, 2x2) path %v, want %v", c.name, ok, c.want)
		}
	}
	for _, ch := range [][2]int{{3, 128}, {128, 3}, {7, 8}} {
		if _, _, ok := winogradS2For(be, geom("conv2d", 2, ch[0], 16, 16, ch[1], 4, 4, base.norm())); ok {
			t.Errorf("%d -> %d channels: on the F(2x2, 2x2) path, below winogradS2Min %d", ch[0], ch[1], winogradS2Min)
		}
	}
	for _, c := range []struct{ H, W, tile int }{{16, 16, 4}, {16, 30, 4}, {24, 24, 4}, {22, 22, 4}, {14, 16, 2}, {8, 8, 2}, {16, 8, 2}, {20, 20, 2}, {18, 18, 2}} {
		g := geom("conv2d", 2, 8, c.H, c.W, 8, 4, 4, base.norm())
		if _, m, ok := winogradS2For(be, g); !ok || m != c.tile {
			t.Errorf("%dx%d output: tile %d (on the path %v), want %d", g.OH, g.OW, m, ok, c.tile)
		}
	}
	defer SetWinograd(SetWinograd(false))
	if _, _, ok := winogradS2For(be, geom("conv2d", 2, 8, 16, 16, 8, 4, 4, base.norm())); ok {
		t.Error("SetWinograd(false) leaves the F(2x2, 2x2) path on")
	}
}
