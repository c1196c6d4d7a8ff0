package gpt

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/kvcache"
	"github.com/golem-ml/golem/safetensors"
	"github.com/golem-ml/golem/tensor"
)

// relErr is max|a-b| / max|b|: the error relative to the reference's scale.
func relErr(a, b []float32) float64 {
	var d, s float64
	for i := range b {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
		s = math.Max(s, math.Abs(float64(b[i])))
	}
	return d / math.Max(s, 1e-30)
}

func ids32(v []int64) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

// greedy decodes n tokens with the KV cache (prompt in one pass, then one
// token at a time), as generation does.
func greedy(m *Model, prompt []int32, n int) []int32 {
	out := append([]int32(nil), prompt...)
	tensor.NoGrad(func() {
		cache := &kvcache.Growable{}
		defer cache.Close()
		in := prompt
		for i := 0; i < n; i++ {
			h := m.Forward(in, 1, len(in), Options{Cache: cache})
			last := tensor.Slice(h, 1, len(in)-1, len(in))
			logits := m.Logits(last).Host()
			best := 0
			for j, v := range logits {
				if v > logits[best] {
					best = j
				}
			}
			tensor.Release(logits2(h))
			out = append(out, int32(best))
			in = []int32{int32(best)}
		}
	})
	return out
}

func logits2(t *tensor.Tensor) *tensor.Tensor { return t }

func TestMatchesTransformers(t *testing.T) {
	for _, name := range []string{"gpt2-tiny", "llama-tiny", "qwen2-tiny", "llama3-tiny", "mistral-tiny"} {
		t.Run(name, func(t *testing.T) {
			dir := shared.Path(t, filepath.Join("fixtures/hf", name))
			be := cpu.New()
			m, err := Load(be, dir)
			if err != nil {
				t.Fatal(err)
			}
			g, err := safetensors.Open(filepath.Join(dir, "golden.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			idsRaw, shape, err := g.Int64("input_ids")
			if err != nil {
				t.Fatal(err)
			}
			B, T := shape[0], shape[1]
			ids := ids32(idsRaw)
			targets := make([]int32, B*T)
			for b := 0; b < B; b++ {
				for i := 0; i < T; i++ {
					targets[b*T+i] = tensor.IgnoreIndex
					if i+1 < T {
						targets[b*T+i] = ids[b*T+i+1]
					}
				}
			}
			logits := m.Logits(m.Forward(ids, B, T, Options{}))
			loss := tensor.CrossEntropy(logits, targets, nil)
			wantLogits, _, _ := g.Float32("logits")
			if e := relErr(logits.Host(), wantLogits); e > 1e-4 {
				t.Errorf("logits differ: relative error %.3g", e)
			} else {
				t.Logf("logits relative error %.3g", e)
			}
			wantLoss, _, _ := g.Float32("loss")
			if e := math.Abs(float64(loss.Item()-wantLoss[0])) / float64(wantLoss[0]); e > 1e-4 {
				t.Errorf("loss %v, transformers %v", loss.Item(), wantLoss[0])
			}
			tensor.Backward(loss)
			worst := 0.0
			for _, p := range m.Params() {
				if want, _, err := g.Float32("grad." + p.Name); err == nil {
					e := relErr(p.Tensor.Grad().Host(), want)
					worst = math.Max(worst, e)
					if e > 1e-3 {
						t.Errorf("gradient of %s: relative error %.3g", p.Name, e)
					}
				} else if want, _, err := g.Float32("gradnorm." + p.Name); err == nil {
					var s float64
					for _, v := range p.Tensor.Grad().Host() {
						s += float64(v) * float64(v)
					}
					if e := math.Abs(math.Sqrt(s)-float64(want[0])) / float64(want[0]); e > 1e-3 {
						t.Errorf("gradient norm of %s: %v, transformers %v", p.Name, math.Sqrt(s), want[0])
					}
				} else if !strings.HasPrefix(p.Name, "lm_head") {
					t.Errorf("no golden gradient for %s", p.Name)
				}
			}
			t.Logf("worst gradient relative error %.3g", worst)
			tensor.Release(loss)

			promptRaw, _, _ := g.Int64("greedy_prompt")
			wantOut, _, _ := g.Int64("greedy_output")
			got := greedy(m, ids32(promptRaw), len(wantOut)-len(promptRaw))
			for i := range wantOut {
				if int64(got[i]) != wantOut[i] {
					t.Fatalf("greedy output %v, transformers %v", got, wantOut)
				}
			}
		})
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	for _, name := range []string{"gpt2-tiny", "llama-tiny", "qwen2-tiny", "llama3-tiny", "mistral-tiny"} {
		t.Run(name, func(t *testing.T) { testSaveLoadRoundTrip(t, name) })
	}
}

// sameConfig compares configs, their rope scaling by value.
func sameConfig(a, b Config) bool {
	if (a.RopeScaling == nil) != (b.RopeScaling == nil) || a.RopeScaling != nil && *a.RopeScaling != *b.RopeScaling {
		return false
	}
	a.RopeScaling, b.RopeScaling = nil, nil
	return a == b
}

func testSaveLoadRoundTrip(t *testing.T, name string) {
	{
		dir := shared.Path(t, filepath.Join("fixtures/hf", name))
		be := cpu.New()
		m, err := Load(be, dir)
		if err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		if err := m.Save(out); err != nil {
			t.Fatal(err)
		}
		m2, err := Load(be, out)
		if err != nil {
			t.Fatal(err)
		}
		if !sameConfig(m2.Config, m.Config) {
			t.Errorf("%s: config after round trip %+v, was %+v", name, m2.Config, m.Config)
		}
		orig, _ := safetensors.OpenModel(dir)
		p2 := m2.Params()
		for i, p := range m.Params() {
			a, b := p.Tensor.Host(), p2[i].Tensor.Host()
			want, shape, err := orig.Float32(p.Name)
			if err != nil || p2[i].Name != p.Name {
				t.Fatalf("%s: %s: %v", name, p.Name, err)
			}
			_ = shape
			for j := range a {
				if math.Float32bits(a[j]) != math.Float32bits(b[j]) || math.Float32bits(a[j]) != math.Float32bits(want[j]) {
					t.Fatalf("%s: %s changed in the round trip", name, p.Name)
				}
			}
		}
		orig.Close()
	}
}

// TestSaveWithoutBiases: a GPT-2 without biases is saved as transformers
// reads GPT-2, with every bias (six a block and ln_f's) all zero beside
// the model's own tensors, and loads back without biases, computing the
// same hidden states (hfParams).
func TestSaveWithoutBiases(t *testing.T) {
	be := cpu.New()
	m, err := New(be, tinyConfig("gpt2"), 3)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	st, err := safetensors.OpenModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	own := map[string][]float32{}
	for _, p := range m.Params() {
		own[p.Name] = p.Tensor.Host()
	}
	biases := 0
	for _, name := range st.Names() {
		x, _, err := st.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		if want, ok := own[name]; ok {
			if relErr(x, want) != 0 {
				t.Errorf("%s differs from the model's", name)
			}
			continue
		}
		if !strings.HasSuffix(name, ".bias") || slices.ContainsFunc(x, func(v float32) bool { return v != 0 }) {
			t.Errorf("%s: not the model's, nor a zero bias", name)
		}
		biases++
	}
	if want := 6*m.Config.Layers + 1; biases != want || len(st.Names()) != len(own)+want {
		t.Errorf("%d zero biases, %d tensors; want %d and %d", biases, len(st.Names()), want, len(own)+want)
	}
	m2, err := Load(be, dir)
	if err != nil {
		t.Fatal(err)
	}
	ids := []int32{3, 1, 4, 1, 5}
	if m2.Config.Bias || relErr(hiddenOf(m2, ids, Options{}), hiddenOf(m, ids, Options{})) != 0 {
		t.Errorf("loaded back: bias %v, or other hidden states", m2.Config.Bias)
	}
}
