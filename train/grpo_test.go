package train

import (
	"context"
	"io"
	"math"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/synth"
)

// verifiable is what cmd/golem's grpo makes of golem's built-in tasks.
func verifiable(ts []synth.Task) []Verifiable {
	out := make([]Verifiable, len(ts))
	for i, tk := range ts {
		out[i] = Verifiable{Key: tk.Key, Prompt: tk.Prompt, Score: tk.Scores}
	}
	return out
}

// TestGRPOResumeIsExact stops runs after step 2 and resumes them: every
// logged number is the uninterrupted run's, with the KL term in the loss
// and with it off (Beta < 0: the KL to the reference is then only
// measured), one micro-batch per step and two. The short tier runs the
// second (the frozen reference read back on resume, the accumulation);
// TestGRPOLoRA resumes with the KL term and one micro-batch, and
// TestMemoryFlatGRPO trains full weights with it.
func TestGRPOResumeIsExact(t *testing.T) {
	sft := tinyLM(t, 1, 96)
	tasks := verifiable(synth.MustTasks(synth.TaskOptions{Seed: 1, N: 8, Kinds: []string{synth.KindFirstLetter, synth.KindNumberOnly}}))
	rf := []string{"correct", "format", "task"}
	for _, tc := range []struct {
		beta  float64
		accum int
	}{{0, 1}, {-1, 2}} {
		if tc.beta == 0 && testing.Short() {
			t.Log("beta 0, accum 1: full run only (go test ./...); TestGRPOLoRA resumes with the KL term in the loss")
			continue
		}
		run := func(out string, resume bool, stopAt int) Result {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			loop := Config{Steps: 4, Accum: tc.accum, LR: 1e-3, Seed: 3, Out: out, Resume: resume, Quiet: true, Progress: io.Discard}
			if stopAt > 0 {
				loop.OnStep = func(step int, _ float64) {
					if step == stopAt {
						cancel()
					}
				}
			}
			res, err := GRPO(ctx, GRPOOptions{Backend: cpu.New(), Policy: sft, Tasks: tasks, Rewards: rf, Group: 4, Prompts: 2, MaxTokens: 10, Beta: tc.beta,
				Loop: loop, Log: io.Discard})
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		a, b := t.TempDir(), t.TempDir()
		run(a, false, 0)
		run(b, false, 2)
		run(b, true, 0)
		la, lb := metricRecords(t, a), metricRecords(t, b)
		if len(la) != 4 || len(lb) != 4 {
			t.Fatalf("%d and %d records", len(la), len(lb))
		}
		for i := range la {
			for _, k := range []string{"loss", "reward", "kl", "correct", "response_len", "reward_std"} {
				if math.Float64bits(la[i][k]) != math.Float64bits(lb[i][k]) {
					t.Errorf("beta %v, accum %d: step %d: %s %v uninterrupted, %v resumed", tc.beta, tc.accum, i+1, k, la[i][k], lb[i][k])
				}
			}
		}
		if la[0]["kl"] != 0 || !(la[3]["kl"] > 0) {
			t.Errorf("beta %v: KL to the reference %v at the first step (want 0), %v at the last (want > 0)", tc.beta, la[0]["kl"], la[3]["kl"])
		}
		sameModel(t, a, b)
	}
	_, err := GRPO(context.Background(), GRPOOptions{Backend: cpu.New(), Policy: sft, Tasks: tasks, Rewards: []string{"correct", "length"},
		Loop: Config{Steps: 1, Out: t.TempDir(), Quiet: true}, Log: io.Discard})
	if want := `grpo: reward function "length": want correct, format or task`; err == nil || err.Error() != want {
		t.Errorf("an unknown reward function: %v, want %q", err, want)
	}
}

// TestGRPOReward checks the group-relative update raises a reward a
// random model can find: answering with the first letter of a word.
func TestGRPOReward(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	sft := tinyLM(t, 1, 96)
	tasks := verifiable(synth.MustTasks(synth.TaskOptions{Seed: 1, N: 8, Kinds: []string{synth.KindFirstLetter}}))
	for i := range tasks {
		tasks[i].Score = func(r string) map[string]float64 { return map[string]float64{"short": -float64(len(r)) / 10} }
	}
	out := t.TempDir()
	_, err := GRPO(context.Background(), GRPOOptions{Backend: cpu.New(), Policy: sft, Tasks: tasks, Rewards: []string{"short"}, Group: 8, Prompts: 2, MaxTokens: 16,
		Loop: Config{Steps: 15, LR: 1e-2, Out: out, Quiet: true}, Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	r := metricRecords(t, out)
	first, last := (r[0]["response_len"]+r[1]["response_len"]+r[2]["response_len"])/3, (r[12]["response_len"]+r[13]["response_len"]+r[14]["response_len"])/3
	if last >= first {
		t.Errorf("answers did not get shorter under a length penalty: %.1f -> %.1f tokens", first, last)
	}
}
