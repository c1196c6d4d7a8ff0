package gpt

import (
	"math"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/tensor"
)

func tinyConfig(arch string) Config {
	c := Config{Arch: arch, Vocab: 40, Context: 16, Layers: 1, Heads: 2, KVHeads: 2, Hidden: 16, Intermediate: 32,
		Eps: 1e-5, Activation: "gelu", Tied: arch == "gpt2", BOS: 1, EOS: 1, RopeTheta: 10000}
	if arch == "mistral" {
		c.SlidingWindow = 3
	}
	return c
}

func TestScorerSaveLoad(t *testing.T) {
	be := cpu.New()
	for _, arch := range []string{"gpt2", "llama"} {
		lm, err := New(be, tinyConfig(arch), 3)
		if err != nil {
			t.Fatal(err)
		}
		s := NewScorer(lm, 7)
		s.Bias = -0.25
		for _, p := range s.Params() {
			if p.Name == "lm_head.weight" {
				t.Fatalf("%s: scorer keeps the LM head", arch)
			}
		}
		seqs := [][]int{{1, 2, 3, 4}, {5, 6}, {7, 8, 9}}
		want, err := s.ScoreSequences(seqs, 2)
		if err != nil {
			t.Fatal(err)
		}
		// A row scored alone equals the row scored in a padded batch.
		alone, _ := s.ScoreSequences(seqs[1:2], 1)
		if math.Abs(alone[0]-want[1]) > 1e-5 {
			t.Errorf("%s: padded batch changes the score: %v vs %v", arch, want[1], alone[0])
		}
		dir := t.TempDir()
		if err := s.Save(dir); err != nil {
			t.Fatal(err)
		}
		if !IsScorer(dir) {
			t.Errorf("%s: IsScorer false for a saved scorer", arch)
		}
		got, err := LoadScorer(be, dir)
		if err != nil {
			t.Fatal(err)
		}
		if got.Bias != s.Bias {
			t.Errorf("%s: bias %v after load, want %v", arch, got.Bias, s.Bias)
		}
		have, _ := got.ScoreSequences(seqs, 3)
		for i := range want {
			if math.Abs(have[i]-want[i]) > 1e-5 {
				t.Errorf("%s: score %d is %v after load, want %v", arch, i, have[i], want[i])
			}
		}
		if _, err := Load(be, dir); err == nil {
			t.Errorf("%s: Load of a scorer folder: %v", arch, err)
		}
		lmDir := t.TempDir()
		if err := lm.Save(lmDir); err != nil {
			t.Fatal(err)
		}
		if IsScorer(lmDir) {
			t.Errorf("%s: IsScorer true for a language model", arch)
		}
		if _, err := LoadScorer(be, lmDir); err == nil || !strings.Contains(err.Error(), "language model") {
			t.Errorf("%s: LoadScorer of an LM folder: %v", arch, err)
		}
	}
}

func TestScorerGradient(t *testing.T) {
	be := cpu.New()
	lm, _ := New(be, tinyConfig("gpt2"), 3)
	s := NewScorer(lm, 7)
	ids := []int32{1, 2, 3, 4, 5, 6, 0, 0}
	sc := s.Scores(ids, 2, 4, []int{3, 1}, Options{})
	loss := tensor.Sum(sc)
	tensor.Backward(loss)
	g := s.Score.Weight.Grad()
	if g == nil {
		t.Fatal("no gradient on score.weight")
	}
	nz := false
	for _, v := range g.Host() {
		nz = nz || v != 0
	}
	if !nz {
		t.Error("score.weight gradient is zero")
	}
	if lm.Embed.Weight.Grad() == nil {
		t.Error("no gradient reaches the backbone")
	}
}

// A value model's adapter over a reward model's adapter (PPO with LoRA
// over a reward model trained with LoRA) loads: the reward adapter merged
// into its base, the value adapter attached; it scores as the two merged
// do. ApplyAdapter puts the same adapter on a scorer sharing the base's
// backbone; an adapter that loops back on itself is an error.
func TestScorerAdapterChain(t *testing.T) {
	be := cpu.New()
	lm, err := New(be, tinyConfig("llama"), 3)
	if err != nil {
		t.Fatal(err)
	}
	base, rmDir, vDir := t.TempDir(), t.TempDir(), t.TempDir()
	if err := lm.Save(base); err != nil {
		t.Fatal(err)
	}
	c := LoRAConfig{R: 2, Alpha: 4, Targets: []string{"all-linear"}}
	rm := NewScorer(lm, 7)
	ps, err := rm.AttachLoRA(c, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		randomize(p.Tensor, uint64(i+20))
	}
	rm.Bias = 0.5
	if err := rm.SaveLoRA(rmDir, c, base); err != nil {
		t.Fatal(err)
	}
	v, err := LoadScorer(be, rmDir)
	if err != nil {
		t.Fatal(err)
	}
	v.MergeLoRA()
	ps, err = v.AttachLoRA(c, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		randomize(p.Tensor, uint64(i+40))
	}
	randomize(v.Score.Weight, 60)
	v.Bias = -1
	if err := v.SaveLoRA(vDir, c, rmDir); err != nil {
		t.Fatal(err)
	}
	seqs := [][]int{{1, 2, 3, 4}, {5, 6}}
	want, _ := v.ScoreSequences(seqs, 2)
	got, err := LoadScorer(be, vDir)
	if err != nil {
		t.Fatal(err)
	}
	have, _ := got.ScoreSequences(seqs, 2)
	for i := range want {
		if math.Abs(have[i]-want[i]) > 1e-5 {
			t.Errorf("score %d: %v loaded, %v", i, have[i], want[i])
		}
	}
	// ApplyAdapter on a scorer over the merged reward model's backbone.
	shared, err := LoadScorer(be, rmDir)
	if err != nil {
		t.Fatal(err)
	}
	shared.MergeLoRA()
	if err := shared.ApplyAdapter(vDir); err != nil {
		t.Fatal(err)
	}
	have, _ = shared.ScoreSequences(seqs, 2)
	for i := range want {
		if math.Abs(have[i]-want[i]) > 1e-5 || shared.Bias != -1 {
			t.Errorf("ApplyAdapter: score %d %v (bias %v), want %v (-1)", i, have[i], shared.Bias, want[i])
		}
	}
	if err := shared.ApplyAdapter(base); err == nil {
		t.Error("ApplyAdapter of a model folder: no error")
	}
	loop := t.TempDir()
	if err := v.SaveLoRA(loop, c, loop); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadScorer(be, loop); err == nil || !strings.Contains(err.Error(), "more than 8 adapters") {
		t.Errorf("an adapter over itself: %v", err)
	}
}
