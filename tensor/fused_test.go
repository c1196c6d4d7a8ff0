package tensor

import (
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
