package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/backend/cpu"
)

var be backend.Backend = cpu.New()

func randT(r *rand.Rand, scale float32, shape ...int) *Tensor {
	d := make([]float32, numel(shape))
	for i := range d {
		d[i] = float32(r.NormFloat64()) * scale
	}
	return FromHost(be, d, shape...).SetRequiresGrad(true)
}

// gradCheck compares the analytic gradient of sum(f(inputs) * w), for a
// fixed random w, with central finite differences accumulated in float64.
func gradCheck(t *testing.T, name string, r *rand.Rand, ins []*Tensor, fn func(in []*Tensor) *Tensor) {
	t.Helper()
	out := fn(ins)
	wd := make([]float32, out.Len())
	for i := range wd {
		wd[i] = float32(r.NormFloat64())
	}
	w := FromHost(be, wd, out.shape...)
	loss := Sum(Mul(out, w))
	for _, in := range ins {
		in.ZeroGrad()
	}
	Backward(loss)
	eval := func() float64 {
		var s float64
		NoGrad(func() {
			o := fn(ins).Host()
			for i, v := range o {
				s += float64(v) * float64(wd[i])
			}
		})
		return s
	}
	for k, in := range ins {
		if !in.requiresGrad {
			continue
		}
		ana := in.Grad().Host()
		vals := in.Host()
		idx := r.Perm(len(vals))
		if len(idx) > 24 {
			idx = idx[:24]
		}
		for _, i := range idx {
			eps := float32(1e-2) * max(1, float32(math.Abs(float64(vals[i]))))
			orig := vals[i]
			vals[i] = orig + eps
			in.Set(vals)
			fp := eval()
			vals[i] = orig - eps
			in.Set(vals)
			fm := eval()
			vals[i] = orig
			in.Set(vals)
			num := (fp - fm) / (2 * float64(eps))
			a := float64(ana[i])
			if diff := math.Abs(num - a); diff > 2e-2*math.Max(math.Abs(num), math.Abs(a))+2e-3 {
				t.Errorf("%s: input %d %v elem %d: analytic %.6g numeric %.6g", name, k, in.shape, i, a, num)
			}
		}
	}
	Release(loss)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// quantize rounds x to multiples of 1/q and adds off.
func quantize(x *Tensor, q, off float32) {
	h := x.Host()
	for i := range h {
		h[i] = float32(math.Round(float64(h[i]*q)))/q + off
	}
	x.Set(h)
}

func shapesFor(r *rand.Rand) [][]int {
	return [][]int{{1}, {1, 1}, {3, 5}, {2, 3, 7}, {r.IntN(4) + 1, r.IntN(9) + 1}}
}

func TestGradUnary(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ops := map[string]func(*Tensor) *Tensor{
		"neg": Neg, "exp": Exp, "tanh": Tanh, "sigmoid": Sigmoid, "gelu": GELU, "gelu_tanh": GELUTanh,
		"silu": SiLU, "square": Square, "scale": func(x *Tensor) *Tensor { return Scale(x, -1.7) },
		"add_scalar": func(x *Tensor) *Tensor { return AddScalar(x, 0.3) },
		"clamp":      func(x *Tensor) *Tensor { return Clamp(x, -0.5, 0.5) },
		"relu":       ReLU, "abs": Abs,
		"sum": Sum, "mean": Mean, "sum_last": SumLast, "mean_last": MeanLast,
		"softmax": Softmax, "log_softmax": LogSoftmax,
		"l2norm": func(x *Tensor) *Tensor { return L2Normalize(x, 1e-12) },
	}
	for _, name := range sortedKeys(ops) {
		op := ops[name]
		for _, sh := range shapesFor(r) {
			x := randT(r, 1, sh...)
			if name == "relu" || name == "abs" || name == "clamp" {
				// Keep finite differences off the kinks at 0 and +-0.5.
				quantize(x, 4, 0.125)
			}
			gradCheck(t, fmt.Sprintf("%s%v", name, sh), r, []*Tensor{x}, func(in []*Tensor) *Tensor { return op(in[0]) })
		}
	}
	// Positive-domain ops.
	pos := map[string]func(*Tensor) *Tensor{"log": Log, "sqrt": Sqrt, "recip": Recip,
		"pow": func(x *Tensor) *Tensor { return Pow(x, 1.5) }}
	for _, name := range sortedKeys(pos) {
		op := pos[name]
		for _, sh := range shapesFor(r) {
			x := randT(r, 1, sh...)
			h := x.Host()
			for i := range h {
				h[i] = float32(math.Abs(float64(h[i]))) + 0.5
			}
			x.Set(h)
			gradCheck(t, fmt.Sprintf("%s%v", name, sh), r, []*Tensor{x}, func(in []*Tensor) *Tensor { return op(in[0]) })
		}
	}
}

func TestGradBinaryBroadcast(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	pairs := [][2][]int{
		{{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{4}, {3, 4}}, {{2, 3, 5}, {3, 1}}, {{1}, {2, 3}},
		{{2, 1, 5}, {1, 3, 5}}, {{1, 1}, {1, 1}}, {{5, 7}, {5, 1}},
	}
	ops := map[string]func(a, b *Tensor) *Tensor{"add": Add, "sub": Sub, "mul": Mul, "div": Div, "max": Maximum, "min": Minimum, "swiglu": SwiGLU}
	for _, name := range sortedKeys(ops) {
		op := ops[name]
		for _, p := range pairs {
			if name == "swiglu" && len(p[0]) != len(p[1]) {
				continue
			}
			a, b := randT(r, 1, p[0]...), randT(r, 1, p[1]...)
			if name == "max" || name == "min" {
				// a on integers, b half way between: never a tie.
				quantize(a, 1, 0)
				quantize(b, 1, 0.5)
			}
			if name == "div" {
				h := b.Host()
				for i := range h {
					h[i] = float32(math.Copysign(math.Abs(float64(h[i]))+0.5, float64(h[i])))
				}
				b.Set(h)
			}
			gradCheck(t, fmt.Sprintf("%s%v%v", name, p[0], p[1]), r, []*Tensor{a, b}, func(in []*Tensor) *Tensor { return op(in[0], in[1]) })
		}
	}
}

func TestGradWhereDropout(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	a, b := randT(r, 1, 3, 5), randT(r, 1, 3, 5)
	cond := make([]bool, 15)
	for i := range cond {
		cond[i] = r.IntN(2) == 0
	}
	gradCheck(t, "where", r, []*Tensor{a, b}, func(in []*Tensor) *Tensor { return Where(cond, in[0], in[1]) })
	x := randT(r, 1, 4, 9)
	gradCheck(t, "dropout", r, []*Tensor{x}, func(in []*Tensor) *Tensor { return Dropout(in[0], 0.3, 42) })
	// The mask drops about p of the values and is fixed by the seed.
	NoGrad(func() {
		big := New(be, 10000)
		big.Set(make([]float32, 10000))
		ones := AddScalar(big, 1)
		d := Dropout(ones, 0.25, 7).Host()
		zeros := 0
		for _, v := range d {
			if v == 0 {
				zeros++
			} else if math.Abs(float64(v)-1/0.75) > 1e-6 {
				t.Fatalf("dropout kept value %v, want %v", v, 1/0.75)
			}
		}
		if zeros < 2300 || zeros > 2700 {
			t.Errorf("dropout dropped %d of 10000 at p=0.25", zeros)
		}
		d2 := Dropout(ones, 0.25, 7).Host()
		for i := range d {
			if d[i] != d2[i] {
				t.Fatal("dropout mask not determined by seed")
			}
		}
	})
}

func TestGradMatMul(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, c := range []struct {
		a, b   []int
		ta, tb bool
	}{
		{[]int{3, 4}, []int{4, 5}, false, false},
		{[]int{4, 3}, []int{4, 5}, true, false},
		{[]int{3, 4}, []int{5, 4}, false, true},
		{[]int{4, 3}, []int{5, 4}, true, true},
		{[]int{2, 3, 4}, []int{4, 5}, false, false},
		{[]int{2, 3, 4}, []int{5, 4}, false, true},
		{[]int{2, 4, 3}, []int{4, 5}, true, false},
		{[]int{2, 3, 4}, []int{2, 4, 5}, false, false},
		{[]int{2, 4, 3}, []int{2, 5, 4}, true, true},
		{[]int{1, 1}, []int{1, 1}, false, false},
		{[]int{3, 1, 7}, []int{3, 7, 1}, false, false},
	} {
		a, b := randT(r, 1, c.a...), randT(r, 1, c.b...)
		gradCheck(t, fmt.Sprintf("matmul%v%v%v%v", c.a, c.b, c.ta, c.tb), r, []*Tensor{a, b}, func(in []*Tensor) *Tensor { return MatMul(in[0], in[1], c.ta, c.tb) })
	}
}

func TestGradLinearNorms(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, sh := range [][]int{{1, 1}, {3, 5}, {2, 3, 7}} {
		in := sh[len(sh)-1]
		x := randT(r, 1, sh...)
		w, b := randT(r, 1, 4, in), randT(r, 1, 4)
		gradCheck(t, fmt.Sprintf("linear%v", sh), r, []*Tensor{x, w, b}, func(i []*Tensor) *Tensor { return Linear(i[0], i[1], i[2]) })
		wio := randT(r, 1, in, 4)
		gradCheck(t, fmt.Sprintf("linear_inout%v", sh), r, []*Tensor{x, wio, b}, func(i []*Tensor) *Tensor { return LinearInOut(i[0], i[1], i[2]) })
		gradCheck(t, fmt.Sprintf("linear_nobias%v", sh), r, []*Tensor{x, w}, func(i []*Tensor) *Tensor { return Linear(i[0], i[1], nil) })
		g, bb := randT(r, 1, in), randT(r, 1, in)
		if in > 1 {
			gradCheck(t, fmt.Sprintf("layernorm%v", sh), r, []*Tensor{x, g, bb}, func(i []*Tensor) *Tensor { return LayerNorm(i[0], i[1], i[2], 1e-5) })
			gradCheck(t, fmt.Sprintf("layernorm_nobias%v", sh), r, []*Tensor{x, g}, func(i []*Tensor) *Tensor { return LayerNorm(i[0], i[1], nil, 1e-5) })
		}
		gradCheck(t, fmt.Sprintf("rmsnorm%v", sh), r, []*Tensor{x, g}, func(i []*Tensor) *Tensor { return RMSNorm(i[0], i[1], 1e-6) })
	}
}

func TestGradAttention(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, c := range []struct {
		B, T, S, H, HKV, D int
		causal, mask       bool
		window             int
	}{
		{1, 1, 1, 1, 1, 1, true, false, 0},
		{2, 5, 5, 2, 2, 3, true, false, 0},
		{2, 4, 4, 4, 2, 2, true, false, 0},
		{1, 3, 7, 2, 1, 4, true, false, 0},
		{2, 5, 5, 2, 2, 3, false, true, 0},
		{2, 6, 6, 3, 1, 2, true, true, 0},
		// Sliding windows (Mistral): prefill, a cache's last rows, a
		// padded batch, and a window no row outgrows.
		{2, 6, 6, 2, 1, 3, true, false, 2},
		{1, 3, 7, 2, 1, 4, true, false, 3},
		{2, 6, 6, 3, 1, 2, true, true, 3},
		{1, 4, 4, 2, 2, 2, true, false, 9},
	} {
		q := randT(r, 1, c.B, c.T, c.H*c.D)
		k := randT(r, 1, c.B, c.S, c.HKV*c.D)
		v := randT(r, 1, c.B, c.S, c.HKV*c.D)
		var mask []bool
		if c.mask {
			mask = make([]bool, c.B*c.S)
			for i := range mask {
				mask[i] = i%c.S != 1
			}
		}
		o := AttentionOptions{Heads: c.H, KVHeads: c.HKV, Causal: c.causal, KeyMask: mask, Window: c.window}
		gradCheck(t, fmt.Sprintf("attention%+v", c), r, []*Tensor{q, k, v}, func(i []*Tensor) *Tensor { return Attention(i[0], i[1], i[2], o) })
	}
}

// TestAttentionMatchesNaive checks the fused kernel against attention
// composed of plain ops (matmul, mask, softmax).
func TestAttentionMatchesNaive(t *testing.T) {
	for _, window := range []int{0, 1, 3} {
		testAttentionMatchesNaive(t, window)
	}
}

// testAttentionMatchesNaive is TestAttentionMatchesNaive for a sliding
// window (0: none): query i sees keys i-window+1..i.
func testAttentionMatchesNaive(t *testing.T, window int) {
	r := rand.New(rand.NewPCG(13, 14))
	B, T, H, D := 2, 5, 2, 3
	q, k, v := randT(r, 1, B, T, H*D), randT(r, 1, B, T, H*D), randT(r, 1, B, T, H*D)
	got := Attention(q, k, v, AttentionOptions{Heads: H, Causal: true, Window: window}).Host()
	qh, kh, vh := q.Host(), k.Host(), v.Host()
	for b := 0; b < B; b++ {
		for h := 0; h < H; h++ {
			for i := 0; i < T; i++ {
				var w []float64
				m := math.Inf(-1)
				first := 0
				if window > 0 {
					first = max(0, i-window+1)
				}
				for j := first; j <= i; j++ {
					var s float64
					for d := 0; d < D; d++ {
						s += float64(qh[(b*T+i)*H*D+h*D+d]) * float64(kh[(b*T+j)*H*D+h*D+d])
					}
					s /= math.Sqrt(float64(D))
					w = append(w, s)
					m = math.Max(m, s)
				}
				var z float64
				for j := range w {
					w[j] = math.Exp(w[j] - m)
					z += w[j]
				}
				for d := 0; d < D; d++ {
					var o float64
					for j := range w {
						o += w[j] / z * float64(vh[(b*T+first+j)*H*D+h*D+d])
					}
					g := got[(b*T+i)*H*D+h*D+d]
					if math.Abs(o-float64(g)) > 1e-5 {
						t.Fatalf("window %d: b%d h%d t%d d%d: got %v want %v", window, b, h, i, d, g, o)
					}
				}
			}
		}
	}
}

func TestGradRoPEEmbedding(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	x := randT(r, 1, 2, 3, 8)
	gradCheck(t, "rope", r, []*Tensor{x}, func(i []*Tensor) *Tensor { return RoPE(i[0], RoPEOptions{Heads: 2, Theta: 10000, Start: 3}) })
	inv := []float32{1, 0.01} // a scaled RoPE's own frequencies, D/2 of them
	gradCheck(t, "rope_invfreq", r, []*Tensor{x}, func(i []*Tensor) *Tensor { return RoPE(i[0], RoPEOptions{Heads: 2, InvFreq: inv, Start: 3}) })
	// Its values: pair (i, i+2) of each head at position p turned by p*inv[i].
	NoGrad(func() {
		y, xh := RoPE(x, RoPEOptions{Heads: 2, InvFreq: inv, Start: 3}).Host(), x.Host()
		for bt := range 6 {
			p := float64(3 + bt%3)
			for h := range 2 {
				for i, f := range inv {
					o := bt*8 + h*4 + i
					sn, cs := math.Sincos(p * float64(f))
					x0, x1 := float64(xh[o]), float64(xh[o+2])
					if math.Abs(float64(y[o])-(x0*cs-x1*sn)) > 1e-5 || math.Abs(float64(y[o+2])-(x1*cs+x0*sn)) > 1e-5 {
						t.Fatalf("row %d head %d pair %d: got %v %v", bt, h, i, y[o], y[o+2])
					}
				}
			}
		}
	})
	table := randT(r, 1, 7, 5)
	ids := []int32{3, 0, 3, 6, 1}
	gradCheck(t, "embedding", r, []*Tensor{table}, func(i []*Tensor) *Tensor { return Embedding(i[0], ids) })
}

func TestGradLosses(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	logits := randT(r, 2, 6, 11)
	targets := []int32{3, IgnoreIndex, 0, 10, 5, 5}
	gradCheck(t, "cross_entropy", r, []*Tensor{logits}, func(i []*Tensor) *Tensor { return CrossEntropy(i[0], targets, nil) })
	weights := []float32{1, 1, 0, 2, 0.5, 1}
	gradCheck(t, "cross_entropy_weighted", r, []*Tensor{logits}, func(i []*Tensor) *Tensor { return CrossEntropy(i[0], targets, weights) })
	gradCheck(t, "token_logprobs", r, []*Tensor{logits}, func(i []*Tensor) *Tensor { return TokenLogProbs(i[0], []int32{1, 2, 3, 4, 5, 6}) })
	// Value: cross-entropy equals the mean of -log softmax at the targets.
	NoGrad(func() {
		ce := CrossEntropy(logits, targets, nil).Item()
		ls := LogSoftmax(logits).Host()
		var want float64
		n := 0
		for i, tg := range targets {
			if tg >= 0 {
				want -= float64(ls[i*11+int(tg)])
				n++
			}
		}
		want /= float64(n)
		if math.Abs(float64(ce)-want) > 1e-5 {
			t.Errorf("cross-entropy %v, want %v", ce, want)
		}
	})
}

func TestGradShapeOps(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	x := randT(r, 1, 2, 3, 4)
	gradCheck(t, "reshape", r, []*Tensor{x}, func(i []*Tensor) *Tensor { return Square(Reshape(i[0], 6, -1)) })
	gradCheck(t, "permute", r, []*Tensor{x}, func(i []*Tensor) *Tensor { return Permute(i[0], 2, 0, 1) })
	gradCheck(t, "transpose", r, []*Tensor{x}, func(i []*Tensor) *Tensor { return Transpose(i[0], 0, 2) })
	gradCheck(t, "slice", r, []*Tensor{x}, func(i []*Tensor) *Tensor { return Slice(i[0], 1, 1, 3) })
	gradCheck(t, "slice_last", r, []*Tensor{x}, func(i []*Tensor) *Tensor { return Slice(i[0], -1, 3, 4) })
	y := randT(r, 1, 2, 1, 4)
	gradCheck(t, "concat", r, []*Tensor{x, y}, func(i []*Tensor) *Tensor { return Concat(1, i[0], i[1], i[0]) })
	// Values of permute.
	NoGrad(func() {
		p := Permute(x, 2, 0, 1).Host()
		h := x.Host()
		for a := 0; a < 2; a++ {
			for b := 0; b < 3; b++ {
				for c := 0; c < 4; c++ {
					if p[c*6+a*3+b] != h[a*12+b*4+c] {
						t.Fatal("permute moved values wrongly")
					}
				}
			}
		}
	})
}

func TestGradAccumulatesAndFreeze(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	w := randT(r, 1, 3)
	x := randT(r, 1, 3).SetRequiresGrad(false)
	for step := 0; step < 2; step++ {
		loss := Sum(Mul(w, x))
		Backward(loss)
		Release(loss)
	}
	g, xh := w.Grad().Host(), x.Host()
	for i := range g {
		if math.Abs(float64(g[i]-2*xh[i])) > 1e-6 {
			t.Fatalf("accumulated grad %v, want 2*%v", g, xh)
		}
	}
	if x.Grad() != nil {
		t.Error("frozen tensor got a gradient")
	}
	NoGrad(func() {
		if Mul(w, x).RequiresGrad() {
			t.Error("NoGrad op recorded a gradient")
		}
	})
}
