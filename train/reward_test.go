package train

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/gpt2"
)

// rankingsOf makes 3-way rankings over synth tasks: the reference answer,
// a wrong answer and an empty reply, ranked by the simulated annotator.
func rankingsOf(tasks []synth.Task) []data.Example {
	var ex []data.Example
	an := synth.Annotator{Seed: 1}
	for i, tk := range tasks {
		other := tasks[(i+1)%len(tasks)].Answer
		resp := []string{"I do not know.", tk.Answer, other}
		r := an.RankAll(tk, resp)
		e := data.Example{Kind: data.Ranking, Prompt: r.Prompt, Ranking: r.Ranking, Source: "synth"}
		for _, c := range r.Completions {
			e.Completions = append(e.Completions, []data.Message{{Role: "assistant", Content: c}})
		}
		ex = append(ex, e)
	}
	return ex
}

func TestRewardLearnsRankings(t *testing.T) {
	sft := tinyLM(t, 1, 128)
	kinds := []string{synth.KindFirstLetter, synth.KindNumberOnly, synth.KindOneWord}
	trainEx := rankingsOf(synth.MustTasks(synth.TaskOptions{Seed: 1, N: 128, Kinds: kinds}))
	valEx := rankingsOf(synth.MustTasks(synth.TaskOptions{Seed: 2, N: 24, Kinds: kinds, Split: synth.SplitHeldout}))
	out := t.TempDir()
	res, rep, err := Reward(context.Background(), RewardOptions{Backend: cpu.New(), Model: sft, Data: trainEx, Heldout: valEx, Batch: 4,
		Loop: Config{Steps: 100, LR: 3e-3, Warmup: 4, Out: out, Quiet: true}, Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pairs != 3*len(valEx) {
		t.Errorf("%d held-out pairs, want %d", rep.Pairs, 3*len(valEx))
	}
	if rep.Accuracy < 0.75 {
		t.Errorf("held-out accuracy %.3f after %d steps, want >= 0.75 (%v)", rep.Accuracy, res.Step, res.Eval)
	}
	// The saved model centres the demonstrations (best answers) on 0.
	s, err := gpt.LoadScorer(cpu.New(), out)
	if err != nil {
		t.Fatal(err)
	}
	c := newChat(tinyTokenizer(t), 128, false)
	items, _ := rankItems(c, nil, "", trainEx)
	var best [][]int
	for _, it := range items {
		best = append(best, it.seqs[it.pairs[0].Winner])
	}
	sc, _ := s.ScoreSequences(best, 16)
	if m := mean(sc); m > 1e-3 || m < -1e-3 {
		t.Errorf("demonstrations score %.4f on average, want 0", m)
	}
}

func TestRewardRejects(t *testing.T) {
	sft := tinyLM(t, 1, 48)
	tasks := synth.MustTasks(synth.TaskOptions{Seed: 1, N: 4, Kinds: []string{synth.KindFirstLetter}})
	ex := rankingsOf(tasks)
	run := func(ex []data.Example) error {
		_, _, err := Reward(context.Background(), RewardOptions{Backend: cpu.New(), Model: sft, Data: ex, Heldout: ex[:1],
			Loop: Config{Steps: 1, LR: 1e-3, Out: t.TempDir(), Quiet: true}, Log: io.Discard})
		return err
	}
	dup := append([]data.Example{}, ex...)
	dup[0].Completions = append([][]data.Message{}, dup[0].Completions...)
	dup[0].Completions[1] = dup[0].Completions[0]
	wantErr(t, run(dup), "are the same")
	bad := append([]data.Example{}, ex...)
	bad[1].Ranking = []int{0, 0, 1}
	wantErr(t, run(bad), "lists an answer twice")
	long := append([]data.Example{}, ex...)
	long[2].Prompt = []data.Message{{Role: "user", Content: "Please read this long text carefully: " + tasks[0].Answer + tasks[1].Answer + tasks[2].Answer + tasks[3].Answer}}
	wantErr(t, run(long), "longer than the model's context")
	sftEx := []data.Example{{Kind: data.PromptCompletion, Prompt: tasks[0].Prompt, Completion: []data.Message{{Role: "assistant", Content: "x"}}, Source: "f.jsonl:3"}}
	wantErr(t, run(sftEx), "f.jsonl:3")
}

// TestRewardHH trains a few steps on Anthropic's HH-RLHF strings: the
// reader's preference examples go through the chat template, long
// conversations keep their end.
func TestRewardHH(t *testing.T) {
	ex := readHead(t, shared.Path(t, "data/preference/hh_rlhf_harmless_base_test.jsonl.gz"), 60)
	sft := tinyLM(t, 1, 96)
	_, _, err := Reward(context.Background(), RewardOptions{Backend: cpu.New(), Model: sft, Data: ex, Loop: Config{Steps: 1, LR: 1e-3, Out: t.TempDir(), Quiet: true}, Log: io.Discard})
	wantErr(t, err, "longer than the model's context")
	_, rep, err := Reward(context.Background(), RewardOptions{Backend: cpu.New(), Model: sft, Data: ex, HeldoutFrac: 0.2, Truncate: true, Batch: 4,
		Loop: Config{Steps: 3, LR: 1e-3, Out: t.TempDir(), Quiet: true}, Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pairs == 0 || math.IsNaN(rep.Accuracy) {
		t.Errorf("report %+v", rep)
	}
}

// TestRewardFreezeEmbeddings: the embeddings keep the starting model's
// weights while the rest trains.
func TestRewardFreezeEmbeddings(t *testing.T) {
	sft := tinyLM(t, 1, 128)
	ex := rankingsOf(synth.MustTasks(synth.TaskOptions{Seed: 1, N: 16, Kinds: []string{synth.KindFirstLetter}}))
	out := t.TempDir()
	_, _, err := Reward(context.Background(), RewardOptions{Backend: cpu.New(), Model: sft, Data: ex, Heldout: ex[:4], Batch: 4, FreezeEmbeddings: true,
		Loop: Config{Steps: 3, LR: 1e-2, Out: out, Quiet: true}, Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	before, err := gpt.Load(cpu.New(), sft)
	if err != nil {
		t.Fatal(err)
	}
	after, err := gpt.LoadScorer(cpu.New(), out)
	if err != nil {
		t.Fatal(err)
	}
	same := func(a, b []float32) bool {
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return len(a) == len(b)
	}
	if !same(before.Embed.Weight.Host(), after.Embed.Weight.Host()) || !same(before.Pos.Weight.Host(), after.Pos.Weight.Host()) {
		t.Error("the frozen embeddings changed")
	}
	if same(before.Body.(*gpt2.Model).Blocks[0].QKV.Weight.Host(), after.Body.(*gpt2.Model).Blocks[0].QKV.Weight.Host()) {
		t.Error("the first block, not frozen, did not train")
	}
}

// TestRewardNoHeldoutIsNotZero: with no held-out pairs the accuracy is not
// a measured 0: Eval has none (golem reward prints n/a) and the report's
// JSON has null.
func TestRewardNoHeldoutIsNotZero(t *testing.T) {
	sft := tinyLM(t, 1, 128)
	ex := rankingsOf(synth.MustTasks(synth.TaskOptions{Seed: 1, N: 8, Kinds: []string{synth.KindOneWord}}))
	res, rep, err := Reward(context.Background(), RewardOptions{Backend: cpu.New(), Model: sft, Data: ex, HeldoutFrac: 1e-9, Batch: 4,
		Loop: Config{Steps: 1, LR: 1e-3, Out: t.TempDir(), Quiet: true}, Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pairs != 0 {
		t.Fatalf("%d held-out pairs, want 0", rep.Pairs)
	}
	if _, ok := res.Eval["accuracy"]; ok {
		t.Errorf("Eval has an accuracy with no held-out pairs: %v", res.Eval)
	}
	b, _ := json.Marshal(rep)
	if !strings.Contains(string(b), `"accuracy":null`) {
		t.Errorf("report JSON %s, want accuracy null", b)
	}
	rep.Pairs = 3
	if b, _ := json.Marshal(rep); !strings.Contains(string(b), `"accuracy":0,`) {
		t.Errorf("report JSON with pairs %s, want accuracy 0", b)
	}
}
