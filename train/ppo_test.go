package train

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tokenizer"
)

// tinyRM saves a reward model (a fresh head on the LM in dir) with tok.
func tinyRM(t *testing.T, lmDir string, tok *tokenizer.Tokenizer) string {
	lm, err := gpt.Load(cpu.New(), lmDir)
	if err != nil {
		t.Fatal(err)
	}
	s := gpt.NewScorer(lm, 5)
	dir := t.TempDir()
	if err := s.Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := tok.Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func taskPrompts(tasks []synth.Task) []data.Example {
	var ex []data.Example
	for _, tk := range tasks {
		ex = append(ex, data.Example{Kind: data.PromptCompletion, Prompt: tk.Prompt})
	}
	return ex
}

// TestPPOResumeIsExact stops a run in the middle of a rollout's updates,
// resumes it, and compares every logged number and the final weights of
// the policy, the value model and the EMA with an uninterrupted run.
func TestPPOResumeIsExact(t *testing.T) {
	sft := tinyLM(t, 1, 96)
	rm := tinyRM(t, sft, tinyTokenizer(t))
	prompts := taskPrompts(synth.MustTasks(synth.TaskOptions{Seed: 1, N: 8, Kinds: []string{synth.KindFirstLetter, synth.KindNumberOnly}}))
	text := synth.Corpus(synth.CorpusOptions{Seed: 2, Bytes: 25000})[:20000]
	run := func(out string, resume bool, stopAt int) Result {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		loop := Config{Steps: 6, LR: 1e-3, Seed: 3, Out: out, Resume: resume, Quiet: true, Accum: 2}
		if stopAt > 0 {
			loop.OnStep = func(step int, _ float64) {
				if step == stopAt {
					cancel()
				}
			}
		}
		res, err := PPO(ctx, PPOOptions{Backend: cpu.New(), Policy: sft, Reward: rm, Prompts: prompts, Batch: 4, MiniBatches: 2, Epochs: 2,
			MaxTokens: 12, TargetKL: 1, KLHorizon: 20, PtxCoef: 0.5, PtxTexts: []string{text}, Loop: loop, Log: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a, b := t.TempDir(), t.TempDir()
	run(a, false, 0)
	if part := run(b, false, 3); !part.Interrupted || part.Step != 3 {
		t.Fatalf("interrupted run: %+v", part)
	}
	run(b, true, 0)
	la, lb := metricRecords(t, a), metricRecords(t, b)
	if len(la) != 6 || len(lb) != 6 {
		t.Fatalf("%d and %d records", len(la), len(lb))
	}
	for i := range la {
		for _, k := range []string{"loss", "reward", "kl", "kl_coef", "clip_frac", "value_loss", "entropy", "approx_kl", "ptx_loss"} {
			if _, ok := la[i][k]; !ok {
				t.Fatalf("step %d: %q not logged", i+1, k)
			}
			if math.Float64bits(la[i][k]) != math.Float64bits(lb[i][k]) {
				t.Errorf("step %d: %s %v uninterrupted, %v resumed", i+1, k, la[i][k], lb[i][k])
			}
		}
	}
	for i, r := range la {
		if k3, ok := r["kl_k3"]; !ok || k3 < 0 {
			t.Errorf("step %d: kl_k3 %v (logged %v), want >= 0", i+1, k3, ok)
		}
	}
	if la[4]["kl_coef"] == la[0]["kl_coef"] {
		t.Errorf("adaptive KL coefficient did not move: %v, %v", la[0]["kl_coef"], la[4]["kl_coef"])
	}
	be := cpu.New()
	for _, sub := range []string{"", "ema"} {
		ma, err := gpt.Load(be, filepath.Join(a, sub))
		if err != nil {
			t.Fatal(err)
		}
		mb, _ := gpt.Load(be, filepath.Join(b, sub))
		sameParams(t, "policy "+sub, ma.Params(), mb.Params())
	}
	va, err := gpt.LoadScorer(be, filepath.Join(a, "value"))
	if err != nil {
		t.Fatal(err)
	}
	vb, _ := gpt.LoadScorer(be, filepath.Join(b, "value"))
	sameParams(t, "value", va.Params(), vb.Params())
	ref, _ := gpt.Load(be, sft)
	if sameish(ref.Params(), func() []float32 { m, _ := gpt.Load(be, a); return m.Params()[0].Tensor.Host() }()) {
		t.Error("the policy did not change")
	}
}

func sameish(ps []nn.Named, x []float32) bool {
	y := ps[0].Tensor.Host()
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

func sameParams(t *testing.T, what string, a, b []nn.Named) {
	t.Helper()
	for i, p := range a {
		x, y := p.Tensor.Host(), b[i].Tensor.Host()
		for j := range x {
			if math.Float32bits(x[j]) != math.Float32bits(y[j]) {
				t.Fatalf("%s: %s differs after resume", what, p.Name)
			}
		}
	}
}

func TestPPORejectsOtherTokenizer(t *testing.T) {
	sft := tinyLM(t, 1, 64)
	text := synth.Corpus(synth.CorpusOptions{Seed: 1, Bytes: 55000})[:50000]
	other, err := tokenizer.Train(tokenizer.TrainOptions{Texts: []string{text}, VocabSize: 300, Progress: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	rm := tinyRM(t, sft, other)
	prompts := taskPrompts(synth.MustTasks(synth.TaskOptions{Seed: 1, N: 2, Kinds: []string{synth.KindFirstLetter}}))
	_, err = PPO(context.Background(), PPOOptions{Backend: cpu.New(), Policy: sft, Reward: rm, Prompts: prompts, Batch: 2, MiniBatches: 1, Epochs: 1,
		Loop: Config{Steps: 1, LR: 1e-3, Out: t.TempDir(), Quiet: true}, Log: io.Discard})
	wantErr(t, err, "tokenizers")
	_, err = PPO(context.Background(), PPOOptions{Backend: cpu.New(), Policy: rm, Reward: rm, Prompts: prompts,
		Loop: Config{Steps: 1, LR: 1e-3, Out: t.TempDir(), Quiet: true}, Log: io.Discard})
	wantErr(t, err, "not a language model")
	_, err = PPO(context.Background(), PPOOptions{Backend: cpu.New(), Policy: sft, Reward: sft, Prompts: prompts,
		Loop: Config{Steps: 1, LR: 1e-3, Out: t.TempDir(), Quiet: true}, Log: io.Discard})
	wantErr(t, err, "score.weight")
	long := []data.Example{{Prompt: []data.Message{{Role: "user", Content: text[:2000]}}, Source: "p.jsonl:4"}}
	_, err = PPO(context.Background(), PPOOptions{Backend: cpu.New(), Policy: sft, Reward: tinyRM(t, sft, tinyTokenizer(t)), Prompts: long,
		Loop: Config{Steps: 1, LR: 1e-3, Out: t.TempDir(), Quiet: true}, Log: io.Discard})
	wantErr(t, err, "p.jsonl:4: the prompt has")
}

// A run resumed inside a rollout iteration trains on the rollout its
// checkpoint holds; a ppo_state.json holding another rollout (or none) is
// an error naming the file, not a silent fresh rollout.
func TestPPOResumeChecksItsRollout(t *testing.T) {
	sft := tinyLM(t, 1, 96)
	rm := tinyRM(t, sft, tinyTokenizer(t))
	prompts := taskPrompts(synth.MustTasks(synth.TaskOptions{Seed: 1, N: 4, Kinds: []string{synth.KindFirstLetter}}))
	run := func(out string, resume bool, stopAt int) (Result, error) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		loop := Config{Steps: 4, LR: 1e-3, Seed: 3, Out: out, Resume: resume, Quiet: true, Progress: io.Discard}
		if stopAt > 0 {
			loop.OnStep = func(step int, _ float64) {
				if step == stopAt {
					cancel()
				}
			}
		}
		return PPO(ctx, PPOOptions{Backend: cpu.New(), Policy: sft, Reward: rm, Prompts: prompts, Batch: 2, MiniBatches: 2, Epochs: 1,
			MaxTokens: 6, Loop: loop, Log: io.Discard})
	}
	for _, tc := range []struct {
		rollout any
		want    string
	}{{map[string]any{"iter": 3}, "holds rollout 3, but the checkpoint is in the middle of rollout 0"}, {nil, "holds no rollout, but"}} {
		out := t.TempDir()
		if res, err := run(out, false, 1); err != nil || !res.Interrupted || res.Step != 1 {
			t.Fatalf("interrupted run: %+v, %v", res, err)
		}
		path := filepath.Join(out, "trainer", "step-00000001", ppoStateFile)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var st map[string]any
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		if ro, ok := tc.rollout.(map[string]any); ok {
			st["rollout"].(map[string]any)["iter"] = ro["iter"]
		} else {
			delete(st, "rollout")
		}
		if b, err = json.Marshal(st); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = run(out, true, 0)
		wantErr(t, err, filepath.Join(out, ppoStateFile)+" "+tc.want)
	}
}
