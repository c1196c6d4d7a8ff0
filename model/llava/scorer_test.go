package llava

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// fill sets every parameter of ps to N(0, sd) draws (a LoRA's B starts at
// zero: its adapter would compute nothing).
func fill(ps []nn.Named, seed uint64, sd float64) {
	r := rand.New(rand.NewPCG(seed, 1))
	for _, p := range ps {
		w := p.Tensor.Host()
		for i := range w {
			w[i] = float32(r.NormFloat64() * sd)
		}
		p.Tensor.Set(w)
	}
}

// values is s's value at every position of two fixed rows of tokens.
func values(s *Scorer) []float32 {
	ids := []int32{1, 5, 9, 2, 7, 3, 8, 4, 6, 0, 2, 9}
	var v []float32
	tensor.NoGrad(func() {
		sc := tensor.NewScope()
		defer sc.Close()
		v = s.Score.Values(ids, 2, 6, gpt.Options{Scope: sc}).Host()
	})
	return v
}

func sameValues(t *testing.T, what string, a, b []float32) {
	t.Helper()
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-5 {
			t.Fatalf("%s: value %d is %v, want %v", what, i, b[i], a[i])
		}
	}
}

// valueOver is PPO's value model with LoRA over the reward model rm: rm's
// tower, projector and language model shared, a copy of its head, fresh
// adapters (their B random, so that they compute something).
func valueOver(t *testing.T, rm *Scorer, c gpt.LoRAConfig, seed uint64) *Scorer {
	t.Helper()
	w := rm.Score.Score.Weight
	v := &Scorer{Model: rm.Model, Score: &gpt.Scorer{Model: rm.Score.Model, Bias: 0.25,
		Score: &nn.Linear{Weight: tensor.FromHost(w.Backend(), w.Host(), w.Shape()...)}}}
	ps, err := v.Score.AttachLoRA(c, seed)
	if err != nil {
		t.Fatal(err)
	}
	fill(ps, seed, 0.1)
	fill([]nn.Named{{Name: "score", Tensor: v.Score.Score.Weight}}, seed+1, 1)
	return v
}

// A value model's adapter over a LLaVA reward model (golem ppo --lora-r
// on a LLaVA policy), and one over a reward model's adapter (golem
// reward --lora-r), load back as what was saved: LoadScorer merged,
// LoadScorerLoRA and ApplyAdapter (on the reward model's own backbone)
// with the adapters attached; the reward model's backbone computes what
// it did with the adapters off, and a loop of adapters is no reward model.
func TestScorerAdapterOverScorer(t *testing.T) {
	be := cpu.New()
	c := gpt.LoRAConfig{R: 4, Alpha: 8, Targets: []string{"q_proj", "v_proj"}}
	base := t.TempDir()
	if err := tiny(t, "llama").Save(base); err != nil {
		t.Fatal(err)
	}
	m, err := Load(be, base)
	if err != nil {
		t.Fatal(err)
	}
	rm := NewScorer(m, 5)
	fill([]nn.Named{{Name: "score", Tensor: rm.Score.Score.Weight}}, 6, 1)
	rmDir := filepath.Join(t.TempDir(), "rm")
	if err := rm.Save(rmDir); err != nil {
		t.Fatal(err)
	}
	// A reward model's adapter over the LLaVA folder.
	ra, err := Load(be, base)
	if err != nil {
		t.Fatal(err)
	}
	rs := NewScorer(ra, 7)
	ps, err := rs.Score.AttachLoRA(c, 8)
	if err != nil {
		t.Fatal(err)
	}
	fill(ps, 9, 0.1)
	raDir := filepath.Join(t.TempDir(), "rm-lora")
	if err := rs.SaveLoRA(raDir, c, base); err != nil {
		t.Fatal(err)
	}

	for name, rmFrom := range map[string]string{"over a reward model": rmDir, "over a reward adapter": raDir} {
		t.Run(name, func(t *testing.T) {
			r, err := LoadScorer(be, rmFrom)
			if err != nil {
				t.Fatal(err)
			}
			before := values(r)
			v := valueOver(t, r, c, 10)
			want := values(v)
			var off []float32
			v.Score.WithoutLoRA(func() { off = values(&Scorer{Model: r.Model, Score: r.Score}) })
			sameValues(t, "the reward model's backbone with the adapters off", before, off)
			dir := filepath.Join(t.TempDir(), "value")
			if err := v.SaveLoRA(dir, c, rmFrom); err != nil {
				t.Fatal(err)
			}
			if !IsScorer(dir) || !IsLLaVA(dir) {
				t.Fatalf("IsScorer %v, IsLLaVA %v on a value model's adapter %s", IsScorer(dir), IsLLaVA(dir), name)
			}
			if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err == nil {
				t.Errorf("%s holds a whole model", dir)
			}
			merged, err := LoadScorer(be, dir)
			if err != nil {
				t.Fatal(err)
			}
			if merged.Score.Bias != 0.25 {
				t.Errorf("offset %v, want 0.25", merged.Score.Bias)
			}
			sameValues(t, "LoadScorer", want, values(merged))
			kept, got, err := LoadScorerLoRA(be, dir)
			if err != nil {
				t.Fatal(err)
			}
			if got.R != c.R || len(kept.Score.LoRAParams()) != len(v.Score.LoRAParams()) {
				t.Errorf("LoadScorerLoRA: r %d and %d adapter tensors, want %d and %d", got.R, len(kept.Score.LoRAParams()), c.R, len(v.Score.LoRAParams()))
			}
			sameValues(t, "LoadScorerLoRA", want, values(kept))
			// On the reward model's backbone, as PPO resumes: one copy of the weights.
			r2, err := LoadScorer(be, rmFrom)
			if err != nil {
				t.Fatal(err)
			}
			w := r2.Score.Score.Weight
			v2 := &Scorer{Model: r2.Model, Score: &gpt.Scorer{Model: r2.Score.Model, Score: &nn.Linear{Weight: tensor.FromHost(w.Backend(), w.Host(), w.Shape()...)}}}
			if err := v2.ApplyAdapter(dir); err != nil {
				t.Fatal(err)
			}
			sameValues(t, "ApplyAdapter", want, values(v2))
			if !v2.Score.Score.Weight.RequiresGrad() || !v2.Score.LoRAParams()[0].Tensor.RequiresGrad() || r2.Score.Model.Params()[0].Tensor.RequiresGrad() {
				t.Error("ApplyAdapter: want the adapters and the head trainable, the backbone frozen")
			}
		})
	}

	// Two adapters, each the other's base: no reward model, and no hang.
	cfg, err := os.ReadFile(filepath.Join(raDir, gpt.AdapterConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	loop := t.TempDir()
	a, b := filepath.Join(loop, "a"), filepath.Join(loop, "b")
	for dir, other := range map[string]string{a: b, b: a} {
		os.MkdirAll(dir, 0o755)
		j := strings.Replace(string(cfg), `"base_model_name_or_path": "`+base+`"`, `"base_model_name_or_path": "`+other+`"`, 1)
		if j == string(cfg) {
			t.Fatalf("no base_model_name_or_path %q in %s", base, cfg)
		}
		os.WriteFile(filepath.Join(dir, gpt.AdapterConfigFile), []byte(j), 0o644)
	}
	if IsScorer(a) {
		t.Error("IsScorer is true on a loop of adapters")
	}
	if _, err := LoadScorer(be, a); err == nil || !strings.Contains(err.Error(), "not a LLaVA reward model") {
		t.Errorf("a loop of adapters: %v", err)
	}
}
