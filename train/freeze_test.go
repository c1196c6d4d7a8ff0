package train

import (
	"context"
	"io"
	"math"
	"path/filepath"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/synth"
)

// wideLM is tinyLM at width 64, so that every matrix of the policy is
// one the CPU keeps packed when frozen (4,096 values or more).
func wideLM(t *testing.T) string { return tinyLMWidth(t, 5, 96, 64) }

// A GRPO run whose rollouts sample with the policy frozen (thawed before
// each optimizer step) logs every number and ends with every weight bit
// for bit as a run that never freezes it, full weights and LoRA.
func TestRolloutFreezeIsExact(t *testing.T) {
	sft := wideLM(t)
	tasks := verifiable(synth.MustTasks(synth.TaskOptions{Seed: 1, N: 8, Kinds: []string{synth.KindFirstLetter, synth.KindNumberOnly}}))
	defer func() { freezeRollouts = true }()
	for _, lora := range []bool{false, true} {
		run := func(freeze bool) string {
			freezeRollouts = freeze
			out := t.TempDir()
			o := GRPOOptions{Backend: cpu.New(), Policy: sft, Tasks: tasks, Rewards: []string{"correct", "format", "task"}, Group: 4, Prompts: 2, MaxTokens: 10,
				Loop: Config{Steps: 3, LR: 1e-2, Seed: 3, Out: out, Quiet: true, Progress: io.Discard}, Log: io.Discard}
			if lora {
				lc := testLoRA
				o.LoRA, o.Merge = &lc, true
			}
			if _, err := GRPO(context.Background(), o); err != nil {
				t.Fatal(err)
			}
			return out
		}
		a, b := run(false), run(true)
		la, lb := metricRecords(t, a), metricRecords(t, b)
		if len(la) != 3 || len(lb) != 3 {
			t.Fatalf("lora %v: %d and %d records", lora, len(la), len(lb))
		}
		for i := range la {
			for _, k := range []string{"loss", "reward", "kl", "response_len"} {
				if math.Float64bits(la[i][k]) != math.Float64bits(lb[i][k]) {
					t.Errorf("lora %v: step %d: %s %v never frozen, %v frozen while sampling", lora, i+1, k, la[i][k], lb[i][k])
				}
			}
		}
		if lora {
			a, b = filepath.Join(a, "merged"), filepath.Join(b, "merged")
		}
		sameModel(t, a, b)
	}
}
