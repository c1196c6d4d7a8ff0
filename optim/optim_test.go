package optim

import (
	"math"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// TestAdamWMatchesReference runs three steps and compares with PyTorch's
// AdamW update written out in float64; the 1-D parameter gets no decay.
func TestAdamWMatchesReference(t *testing.T) {
	be := cpu.New()
	w := tensor.FromHost(be, []float32{0.5, -1, 2, 0.1, 0, 3}, 2, 3).SetRequiresGrad(true)
	b := tensor.FromHost(be, []float32{1, -2}, 2).SetRequiresGrad(true)
	opt := NewAdamW([]nn.Named{{Name: "w", Tensor: w}, {Name: "b", Tensor: b}}, 0.9, 0.99, 1e-8, 0.1)
	grads := [][]float32{{0.1, -0.2, 0.3, 0, 1, -1}, {0.5, 0.25}}
	ref := [][]float64{{0.5, -1, 2, 0.1, 0, 3}, {1, -2}}
	m := [][]float64{make([]float64, 6), make([]float64, 2)}
	v := [][]float64{make([]float64, 6), make([]float64, 2)}
	lr := 0.01
	for step := 1; step <= 3; step++ {
		for i, p := range []*tensor.Tensor{w, b} {
			g := make([]float32, len(grads[i]))
			for j := range g {
				g[j] = grads[i][j] * float32(step)
			}
			p.ZeroGrad()
			be.Upload(p.GradBuffer(), 0, g)
			wd := 0.0
			if i == 0 {
				wd = 0.1
			}
			for j := range ref[i] {
				gj := float64(g[j])
				ref[i][j] *= 1 - lr*wd
				m[i][j] = 0.9*m[i][j] + 0.1*gj
				v[i][j] = 0.99*v[i][j] + 0.01*gj*gj
				mh := m[i][j] / (1 - math.Pow(0.9, float64(step)))
				vh := v[i][j] / (1 - math.Pow(0.99, float64(step)))
				ref[i][j] -= lr * mh / (math.Sqrt(vh) + 1e-8)
			}
		}
		opt.Update(float32(lr))
	}
	for i, p := range []*tensor.Tensor{w, b} {
		for j, got := range p.Host() {
			if math.Abs(float64(got)-ref[i][j]) > 1e-6 {
				t.Errorf("param %d[%d] = %v, reference %v", i, j, got, ref[i][j])
			}
		}
	}
}

func TestClipGradNorm(t *testing.T) {
	be := cpu.New()
	w := tensor.FromHost(be, []float32{1, 1}, 2).SetRequiresGrad(true)
	be.Upload(w.GradBuffer(), 0, []float32{3, 4})
	opt := NewAdamW([]nn.Named{{Name: "w", Tensor: w}}, 0.9, 0.99, 1e-8, 0)
	if n := opt.ClipGradNorm(1); math.Abs(n-5) > 1e-6 {
		t.Fatalf("norm %v, want 5", n)
	}
	if n := opt.GradNorm(); math.Abs(n-1) > 1e-5 {
		t.Errorf("norm after clipping %v, want 1", n)
	}
	if n := opt.ClipGradNorm(10); math.Abs(n-1) > 1e-5 || math.Abs(opt.GradNorm()-1) > 1e-5 {
		t.Errorf("clipping below the norm changed the gradient")
	}
}

func TestCosine(t *testing.T) {
	c := Cosine{Max: 1e-3, Min: 1e-4, Warmup: 10, Decay: 110}
	if got := c.At(0); math.Abs(got-1e-3/11) > 1e-12 {
		t.Errorf("step 0: %v", got)
	}
	if got := c.At(10); math.Abs(got-1e-3) > 1e-12 {
		t.Errorf("end of warmup: %v", got)
	}
	if got := c.At(60); math.Abs(got-5.5e-4) > 1e-12 {
		t.Errorf("half way: %v", got)
	}
	if got := c.At(500); got != 1e-4 {
		t.Errorf("after decay: %v", got)
	}
	for s := 11; s < 110; s++ {
		if c.At(s) > c.At(s-1) {
			t.Fatalf("schedule rises at step %d", s)
		}
	}
}
