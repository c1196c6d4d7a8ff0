package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestGradLinearCrossEntropy(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	x, w := randT(r, 1, 2, 3, 5), randT(r, 1, 11, 5)
	targets := []int32{3, IgnoreIndex, 0, 10, 5, 5}
	weights := []float32{1, 1, 0, 2, 0.5, 1}
	// gradCheck multiplies by a weight tensor; the loss is a scalar, so
	// compare the scalar times a fixed weight.
	gradCheck(t, "linear_cross_entropy", r, []*Tensor{x, w}, func(i []*Tensor) *Tensor {
		return LinearCrossEntropy(i[0], i[1], targets, nil)
	})
	gradCheck(t, "linear_cross_entropy_weighted", r, []*Tensor{x, w}, func(i []*Tensor) *Tensor {
		return LinearCrossEntropy(i[0], i[1], targets, weights)
	})
	gradCheck(t, "linear_cross_entropy_1x1", r, []*Tensor{randT(r, 1, 1, 1), randT(r, 1, 1, 1)}, func(i []*Tensor) *Tensor {
		return LinearCrossEntropy(i[0], i[1], []int32{0}, nil)
	})
}

// TestLinearCrossEntropyMatchesUnfused checks the fused op's loss and
// gradients against Linear followed by CrossEntropy.
func TestLinearCrossEntropyMatchesUnfused(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, weights := range [][]float32{nil, {1, 0.5, 0, 2, 1, 1, 3, 1, 1}} {
		x, w := randT(r, 1, 3, 3, 7), randT(r, 0.5, 37, 7)
		targets := []int32{1, 36, IgnoreIndex, 0, 5, 5, 20, IgnoreIndex, 9}
		loss := Scale(LinearCrossEntropy(x, w, targets, weights), 1.7)
		Backward(loss)
		l1, gx1, gw1 := loss.Item(), x.Grad().Host(), w.Grad().Host()
		Release(loss)
		x.ZeroGrad()
		w.ZeroGrad()
		loss = Scale(CrossEntropy(Linear(x, w, nil), targets, weights), 1.7)
		Backward(loss)
		l2, gx2, gw2 := loss.Item(), x.Grad().Host(), w.Grad().Host()
		Release(loss)
		if math.Abs(float64(l1-l2)) > 1e-5*math.Abs(float64(l2)) {
			t.Errorf("loss %v, unfused %v", l1, l2)
		}
		for i := range gx1 {
			if math.Abs(float64(gx1[i]-gx2[i])) > 1e-5 {
				t.Fatalf("dx[%d] %v, unfused %v", i, gx1[i], gx2[i])
			}
		}
		for i := range gw1 {
			if math.Abs(float64(gw1[i]-gw2[i])) > 1e-5 {
				t.Fatalf("dw[%d] %v, unfused %v", i, gw1[i], gw2[i])
			}
		}
		NoGrad(func() {
			if l := 1.7 * LinearCrossEntropy(x, w, targets, weights).Item(); math.Abs(float64(l-l2)) > 1e-5*math.Abs(float64(l2)) {
				t.Errorf("no-grad loss %v, want %v", l, l2)
			}
		})
	}
}

func TestGradAttentionQKV(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	for _, c := range []struct {
		B, T, H, HKV, D int
		causal, mask    bool
	}{
		{1, 1, 1, 1, 1, true, false},
		{2, 5, 2, 2, 3, true, false},
		{2, 4, 4, 2, 2, true, false},
		{2, 6, 3, 1, 2, true, true},
		{1, 5, 2, 2, 3, false, false},
		{2, 6, 2, 1, 2, true, true}, // with a sliding window of 2, below
	} {
		W := (c.H + 2*c.HKV) * c.D
		qkv := randT(r, 1, c.B, c.T, W)
		var mask []bool
		if c.mask {
			mask = make([]bool, c.B*c.T)
			for i := range mask {
				mask[i] = i%c.T != 1
			}
		}
		o := AttentionOptions{Heads: c.H, KVHeads: c.HKV, Causal: c.causal, KeyMask: mask}
		if c.B == 2 && c.T == 6 && c.H == 2 {
			o.Window = 2
		}
		name := fmt.Sprintf("attention_qkv%+v", c)
		gradCheck(t, name, r, []*Tensor{qkv}, func(i []*Tensor) *Tensor { return AttentionQKV(i[0], o) })
		// Same values and gradients as slicing q, k and v out.
		w := randT(r, 1, c.B, c.T, c.H*c.D).SetRequiresGrad(false)
		run := func(f func() *Tensor) ([]float32, []float32) {
			qkv.ZeroGrad()
			out := f()
			loss := Sum(Mul(out, w))
			Backward(loss)
			v, g := out.Host(), qkv.Grad().Host()
			Release(loss)
			return v, g
		}
		v1, g1 := run(func() *Tensor { return AttentionQKV(qkv, o) })
		v2, g2 := run(func() *Tensor {
			D := c.D
			return Attention(Slice(qkv, 2, 0, c.H*D), Slice(qkv, 2, c.H*D, (c.H+c.HKV)*D), Slice(qkv, 2, (c.H+c.HKV)*D, W), o)
		})
		for i := range v1 {
			if math.Abs(float64(v1[i]-v2[i])) > 1e-6 {
				t.Fatalf("%s: output %d: %v vs sliced %v", name, i, v1[i], v2[i])
			}
		}
		for i := range g1 {
			if math.Abs(float64(g1[i]-g2[i])) > 1e-5 {
				t.Fatalf("%s: gradient %d: %v vs sliced %v", name, i, g1[i], g2[i])
			}
		}
	}
}
