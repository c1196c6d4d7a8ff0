package vit

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/safetensors"
	"github.com/golem-ml/golem/tensor"
)

// The goldens of bench/peer/make_vit_fixtures.py (transformers'
// ViTModel and ViTMAEForPreTraining): these tests skip until they are in
// ../shared/fixtures/hf.

func openGolden(t *testing.T, name string) (*Model, *safetensors.File) {
	t.Helper()
	dir := shared.Path(t, "fixtures/hf/"+name+"/golden.safetensors")
	m, err := Load(cpu.New(), filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	g, err := safetensors.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return m, g
}

func goldenTensor(t *testing.T, g *safetensors.File, name string) ([]float32, []int) {
	t.Helper()
	v, s, err := g.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return v, s
}

// compare checks got against the golden tensor name within tol relative.
func compare(t *testing.T, g *safetensors.File, name string, got []float32, tol float64) {
	t.Helper()
	want, _ := goldenTensor(t, g, name)
	if e := relErr(got, want); e > tol {
		t.Errorf("%s differs from transformers by %.2g relative (tolerance %g)", name, e, tol)
	}
}

// compareGrads checks every parameter's gradient that the golden holds
// within 1e-3 relative; key biases, whose gradient is zero in exact
// arithmetic (the softmax ignores a shift of all of a query's scores),
// within 1e-6 of zero.
func compareGrads(t *testing.T, m *Model, g *safetensors.File) {
	t.Helper()
	n := 0
	for _, p := range m.Params() {
		want, _, err := g.Float32("grad." + p.Name)
		if err != nil {
			if p.Tensor.RequiresGrad() {
				t.Errorf("golden has no grad.%s", p.Name)
			}
			continue
		}
		n++
		got := p.Tensor.Grad().Host()
		if strings.HasSuffix(p.Name, "attention.attention.key.bias") {
			for i := range got {
				if math.Abs(float64(got[i])) > 1e-6 || math.Abs(float64(want[i])) > 1e-6 {
					t.Errorf("grad.%s[%d] = %g (transformers %g), want about 0", p.Name, i, got[i], want[i])
				}
			}
			continue
		}
		if e := relErr(got, want); e > 1e-3 {
			t.Errorf("grad.%s differs from transformers by %.2g relative", p.Name, e)
		}
	}
	t.Logf("%d gradients compared", n)
}

// ViTModel's last_hidden_state and pooler_output within 1e-4 of
// transformers', and the gradients of a loss over both within 1e-3.
func TestViTMatchesTransformers(t *testing.T) {
	m, g := openGolden(t, "vit-tiny")
	be := cpu.New()
	pix, shape := goldenTensor(t, g, "pixel_values")
	tokens := m.Forward(tensor.FromHost(be, pix, shape...))
	pooled := m.Pool(tokens)
	compare(t, g, "last_hidden_state", tokens.Host(), 1e-4)
	compare(t, g, "pooler_output", pooled.Host(), 1e-4)
	w := make([]float32, m.Config.Hidden)
	for i := range w {
		w[i] = float32(i) / float32(len(w))
	}
	loss := tensor.Add(tensor.Mean(tensor.Square(tokens)), tensor.Sum(tensor.Mul(pooled, tensor.FromHost(be, w, len(w)))))
	compare(t, g, "loss", loss.Host(), 1e-4)
	tensor.Backward(loss)
	compareGrads(t, m, g)
}

// ViTMAEForPreTraining with transformers' noise: the same mask, logits
// (every patch's prediction) and loss within 1e-4, gradients within 1e-3.
func TestMAEMatchesTransformers(t *testing.T) {
	m, g := openGolden(t, "vit-mae-tiny")
	pix, shape := goldenTensor(t, g, "pixel_values")
	noise, _ := goldenTensor(t, g, "noise")
	loss, pred, mask := m.ForwardMAE(tensor.FromHost(cpu.New(), pix, shape...), m.Config.MaskRatio, noise)
	compare(t, g, "mask", mask, 0)
	compare(t, g, "logits", pred.Host(), 1e-4)
	compare(t, g, "loss", loss.Host(), 1e-4)
	tensor.Backward(loss)
	compareGrads(t, m, g)
}
