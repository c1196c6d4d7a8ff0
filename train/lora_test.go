package train

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/load"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/safetensors"
)

// testLoRA is the adapters the LoRA stage tests train: every linear layer,
// with dropout, so that resume must replay the masks.
var testLoRA = gpt.LoRAConfig{R: 4, Alpha: 8, Dropout: 0.1, Targets: []string{"all-linear"}}

// checkAdapterOut checks out is a PEFT LoRA adapter folder over base (no
// copy of the base's weights) that changes the base's function, and
// returns the adapter's parameters.
func checkAdapterOut(t *testing.T, out, base string) []nn.Named {
	t.Helper()
	if !gpt.IsAdapter(out) {
		t.Fatalf("%s is not a PEFT adapter folder", out)
	}
	if _, err := os.Stat(filepath.Join(out, "model.safetensors")); err == nil {
		t.Errorf("%s holds a whole model beside the adapter", out)
	}
	l, err := load.Model(cpu.New(), out, load.Options{KeepLoRA: true})
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := filepath.Abs(base); l.Adapter == nil || l.Adapter.Base != a {
		t.Fatalf("adapter %+v, want one over %s", l.Adapter, a)
	}
	ps := l.Model.LoRAParams()
	moved := false
	for _, p := range ps {
		if strings.HasSuffix(p.Name, "lora_B.weight") && slices.ContainsFunc(p.Tensor.Host(), func(v float32) bool { return v != 0 }) {
			moved = true
		}
	}
	if !moved {
		t.Error("every lora_B is still zero: the adapter did not train")
	}
	return ps
}

// TestDPOLoRA: DPO with LoRA starts at the reference (loss log 2: the
// reference is the policy with its adapters off), learns, writes a PEFT
// adapter over the starting model and, with Merge, the merged model; a
// run stopped after step 2 and resumed ends with the uninterrupted run's
// adapter, bit for bit.
func TestDPOLoRA(t *testing.T) {
	sft := tinyLM(t, 1, 128)
	kinds := []string{synth.KindFirstLetter, synth.KindNumberOnly}
	tr := prefPairs(synth.MustTasks(synth.TaskOptions{Seed: 1, N: 32, Kinds: kinds}))
	va := prefPairs(synth.MustTasks(synth.TaskOptions{Seed: 2, N: 16, Kinds: kinds, Split: synth.SplitHeldout}))
	run := func(out string, resume bool, stopAt int) Result {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		lora := testLoRA
		loop := Config{Steps: 8, LR: 1e-2, Seed: 3, Out: out, Resume: resume, Quiet: true, Progress: io.Discard}
		if stopAt > 0 {
			loop.OnStep = func(step int, _ float64) {
				if step == stopAt {
					cancel()
				}
			}
		}
		res, err := DPO(ctx, DPOOptions{Backend: cpu.New(), Policy: sft, Data: tr, Heldout: va, Beta: 0.5, Batch: 4, LoRA: &lora, Merge: stopAt == 0,
			Loop: loop, Log: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a, b := t.TempDir(), t.TempDir()
	res := run(a, false, 0)
	recs := metricRecords(t, a)
	if math.Abs(recs[0]["loss"]-math.Log(2)) > 1e-4 {
		t.Errorf("first loss %v, want log 2 (the policy is the reference)", recs[0]["loss"])
	}
	if res.Loss >= recs[0]["loss"] {
		t.Errorf("loss did not go down: %v -> %v", recs[0]["loss"], res.Loss)
	}
	pa := checkAdapterOut(t, a, sft)
	if _, err := gpt.Load(cpu.New(), filepath.Join(a, "merged")); err != nil {
		t.Errorf("Merge: %v", err)
	}
	run(b, false, 2)
	run(b, true, 0)
	sameParams(t, b, pa, checkAdapterOut(t, b, sft))
	_, err := DPO(context.Background(), DPOOptions{Backend: cpu.New(), Policy: sft, Data: tr, Merge: true, Loop: Config{Steps: 1, Out: t.TempDir()}, Log: io.Discard})
	wantErr(t, err, "--merge needs LoRA")
}

// TestGRPOLoRA: GRPO with LoRA measures a KL of 0 at the first step (the
// reference is the policy with its adapters off) and more later, writes a
// PEFT adapter, and resumes exactly.
func TestGRPOLoRA(t *testing.T) {
	sft := tinyLM(t, 1, 96)
	tasks := verifiable(synth.MustTasks(synth.TaskOptions{Seed: 1, N: 8, Kinds: []string{synth.KindFirstLetter, synth.KindNumberOnly}}))
	run := func(out string, resume bool, stopAt int) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		lora := testLoRA
		loop := Config{Steps: 4, LR: 3e-2, Seed: 3, Out: out, Resume: resume, Quiet: true, Progress: io.Discard}
		if stopAt > 0 {
			loop.OnStep = func(step int, _ float64) {
				if step == stopAt {
					cancel()
				}
			}
		}
		if _, err := GRPO(ctx, GRPOOptions{Backend: cpu.New(), Policy: sft, Tasks: tasks, Rewards: []string{"correct", "format", "task"}, Group: 4, Prompts: 2, MaxTokens: 10,
			LoRA: &lora, Loop: loop, Log: io.Discard}); err != nil {
			t.Fatal(err)
		}
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
		for _, k := range []string{"loss", "reward", "kl"} {
			if math.Float64bits(la[i][k]) != math.Float64bits(lb[i][k]) {
				t.Errorf("step %d: %s %v uninterrupted, %v resumed", i+1, k, la[i][k], lb[i][k])
			}
		}
	}
	if la[0]["kl"] != 0 || !(la[3]["kl"] > 0) {
		t.Errorf("KL to the reference %v at the first step (want 0), %v at the last (want > 0)", la[0]["kl"], la[3]["kl"])
	}
	sameParams(t, b, checkAdapterOut(t, a, sft), checkAdapterOut(t, b, sft))
}

// TestCheckpointActivationsStages: with Config.CheckpointActivations the
// stages log the same losses and write the same model, bit for bit (DPO
// with LoRA dropout, the reward model's scorer).
func TestCheckpointActivationsStages(t *testing.T) {
	sft := tinyLM(t, 1, 128)
	kinds := []string{synth.KindFirstLetter, synth.KindNumberOnly}
	tr := prefPairs(synth.MustTasks(synth.TaskOptions{Seed: 1, N: 16, Kinds: kinds}))
	ranks := rankingsOf(synth.MustTasks(synth.TaskOptions{Seed: 1, N: 16, Kinds: kinds}))
	var outs [2][2]string
	for i, ck := range []bool{false, true} {
		loop := func() Config {
			return Config{Steps: 3, LR: 1e-2, Seed: 3, Out: t.TempDir(), Quiet: true, Progress: io.Discard, CheckpointActivations: ck}
		}
		lora := testLoRA
		c := loop()
		if _, err := DPO(context.Background(), DPOOptions{Backend: cpu.New(), Policy: sft, Data: tr, Heldout: tr[:2], Batch: 4, LoRA: &lora, Loop: c, Log: io.Discard}); err != nil {
			t.Fatal(err)
		}
		outs[0][i] = c.Out
		c = loop()
		if _, _, err := Reward(context.Background(), RewardOptions{Backend: cpu.New(), Model: sft, Data: ranks, Heldout: ranks[:2], Batch: 4, Loop: c, Log: io.Discard}); err != nil {
			t.Fatal(err)
		}
		outs[1][i] = c.Out
	}
	for k, o := range outs {
		la, lb := metricRecords(t, o[0]), metricRecords(t, o[1])
		if len(la) != 3 || len(lb) != 3 {
			t.Fatalf("%d and %d records", len(la), len(lb))
		}
		for i := range la {
			if math.Float64bits(la[i]["loss"]) != math.Float64bits(lb[i]["loss"]) {
				t.Errorf("stage %d, step %d: loss %v, with checkpointing %v", k, i+1, la[i]["loss"], lb[i]["loss"])
			}
		}
	}
	sameParams(t, outs[0][1], checkAdapterOut(t, outs[0][0], sft), checkAdapterOut(t, outs[0][1], sft))
	ra, err := gpt.LoadScorer(cpu.New(), outs[1][0])
	if err != nil {
		t.Fatal(err)
	}
	rb, err := gpt.LoadScorer(cpu.New(), outs[1][1])
	if err != nil {
		t.Fatal(err)
	}
	sameParams(t, outs[1][1], ra.Params(), rb.Params())
}

// TestRewardLoRA: a reward model trained with LoRA is a PEFT SEQ_CLS
// adapter (the score head in modules_to_save, the offset in the file's
// metadata) that gpt.LoadScorer reads over its base and that scores as
// the merged reward model does; a run stopped after step 2 and resumed
// ends with the uninterrupted run's adapter and head, bit for bit.
func TestRewardLoRA(t *testing.T) {
	sft := tinyLM(t, 1, 128)
	kinds := []string{synth.KindFirstLetter, synth.KindNumberOnly}
	ranks := rankingsOf(synth.MustTasks(synth.TaskOptions{Seed: 1, N: 32, Kinds: kinds}))
	run := func(out string, resume bool, stopAt int) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		lora := testLoRA
		loop := Config{Steps: 6, LR: 1e-2, Seed: 3, Out: out, Resume: resume, Quiet: true, Progress: io.Discard}
		if stopAt > 0 {
			loop.OnStep = func(step int, _ float64) {
				if step == stopAt {
					cancel()
				}
			}
		}
		if _, _, err := Reward(ctx, RewardOptions{Backend: cpu.New(), Model: sft, Data: ranks, Heldout: ranks[:4], Batch: 4, LoRA: &lora, Merge: stopAt == 0,
			Loop: loop, Log: io.Discard}); err != nil {
			t.Fatal(err)
		}
	}
	a, b := t.TempDir(), t.TempDir()
	run(a, false, 0)
	var cfg map[string]any
	raw, err := os.ReadFile(filepath.Join(a, gpt.AdapterConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["task_type"] != "SEQ_CLS" || fmt.Sprint(cfg["modules_to_save"]) != "[score]" {
		t.Errorf("adapter_config.json: %s", raw)
	}
	if _, err := os.Stat(filepath.Join(a, "model.safetensors")); err == nil {
		t.Error("OUT holds a whole model beside the adapter")
	}
	sa, err := gpt.LoadScorer(cpu.New(), a)
	if err != nil {
		t.Fatal(err)
	}
	sm, err := gpt.LoadScorer(cpu.New(), filepath.Join(a, "merged"))
	if err != nil {
		t.Fatal(err)
	}
	if sa.Bias == 0 || sa.Bias != sm.Bias {
		t.Errorf("offset %v in the adapter, %v merged (want equal, non-zero)", sa.Bias, sm.Bias)
	}
	seqs := [][]int{{1, 2, 3, 4, 5}, {7, 8, 9}, {4, 4, 4, 4, 4, 4, 4, 4}}
	xa, err := sa.ScoreSequences(seqs, 4)
	if err != nil {
		t.Fatal(err)
	}
	xm, _ := sm.ScoreSequences(seqs, 4)
	base, _ := gpt.Load(cpu.New(), sft)
	xb, _ := gpt.NewScorer(base, 20).ScoreSequences(seqs, 4)
	for i := range xa {
		if math.Abs(xa[i]-xm[i]) > 1e-4 {
			t.Errorf("sequence %d: the adapter scores %v, the merged model %v", i, xa[i], xm[i])
		}
		if xa[i] == xb[i] {
			t.Errorf("sequence %d: scored %v by the adapter and by a fresh head", i, xa[i])
		}
	}
	run(b, false, 2)
	run(b, true, 0)
	sb, err := gpt.LoadScorer(cpu.New(), b)
	if err != nil {
		t.Fatal(err)
	}
	pa := append(sa.LoRAParams(), nn.Named{Name: "score", Tensor: sa.Score.Weight})
	pb := append(sb.LoRAParams(), nn.Named{Name: "score", Tensor: sb.Score.Weight})
	sameParams(t, b, pa, pb)
	// A reward adapter is not a language model.
	if _, err := load.Model(cpu.New(), a, load.Options{}); err == nil || !strings.Contains(err.Error(), "reward or value model's adapter") {
		t.Errorf("load.Model of a reward adapter: %v", err)
	}
}

// TestPPOLoRA: PPO with LoRA on the policy and on the value model samples
// its first rollout as PPO without does (the same answers, the same
// reward, a KL of 0: the adapters start at zero and the reference is the
// policy with them off), moves reward and KL as it trains, and trains the
// adapters and the value head alone: Out and Out/value are PEFT adapters
// over the SFT and reward models (no EMA), the optimizer holds only their
// tensors, and a run stopped inside a rollout and resumed ends with the
// uninterrupted run's numbers and adapters, bit for bit.
func TestPPOLoRA(t *testing.T) {
	sft := tinyLM(t, 1, 96)
	rm := tinyRM(t, sft, tinyTokenizer(t))
	prompts := taskPrompts(synth.MustTasks(synth.TaskOptions{Seed: 1, N: 8, Kinds: []string{synth.KindFirstLetter, synth.KindNumberOnly}}))
	run := func(out string, lora bool, resume bool, stopAt int) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		loop := Config{Steps: 6, LR: 1e-3, Seed: 3, Out: out, Resume: resume, Quiet: true, Progress: io.Discard}
		o := PPOOptions{Backend: cpu.New(), Policy: sft, Reward: rm, Prompts: prompts, Batch: 4, MiniBatches: 2, Epochs: 1, MaxTokens: 10, Log: io.Discard}
		if lora {
			c := testLoRA
			o.LoRA, o.Merge, loop.LR = &c, stopAt == 0, 3e-2
		}
		if stopAt > 0 {
			loop.OnStep = func(step int, _ float64) {
				if step == stopAt {
					cancel()
				}
			}
		}
		o.Loop = loop
		if _, err := PPO(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	full, a, b := t.TempDir(), t.TempDir(), t.TempDir()
	run(full, false, false, 0)
	run(a, true, false, 0)
	lf, la := metricRecords(t, full), metricRecords(t, a)
	if len(lf) != 6 || len(la) != 6 {
		t.Fatalf("%d and %d records", len(lf), len(la))
	}
	for _, k := range []string{"reward", "kl", "response_len"} {
		if math.Float64bits(lf[0][k]) != math.Float64bits(la[0][k]) {
			t.Errorf("first rollout: %s %v without LoRA, %v with", k, lf[0][k], la[0][k])
		}
	}
	for name, l := range map[string][]map[string]float64{"full": lf, "LoRA": la} {
		t.Logf("%s: reward %v -> %v, kl %v -> %v", name, l[0]["reward"], l[5]["reward"], l[0]["kl_k3"], l[5]["kl_k3"])
		if l[0]["kl"] != 0 || !(l[5]["kl_k3"] > 0) || l[5]["reward"] == l[0]["reward"] {
			t.Errorf("%s: KL %v at the first rollout (want 0), %v at the last (want > 0); reward %v -> %v (want it to move)",
				name, l[0]["kl"], l[5]["kl_k3"], l[0]["reward"], l[5]["reward"])
		}
	}
	if _, err := os.Stat(filepath.Join(a, "ema")); err == nil {
		t.Error("a LoRA run wrote an EMA")
	}
	pa := checkAdapterOut(t, a, sft)
	if _, err := gpt.Load(cpu.New(), filepath.Join(a, "merged")); err != nil {
		t.Errorf("Merge: %v", err)
	}
	value := func(out string) []nn.Named {
		dir := filepath.Join(out, "value")
		a, err := gpt.ReadAdapterConfig(dir)
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := filepath.Abs(rm); !a.Scorer || a.Base != r {
			t.Fatalf("value adapter %+v, want a SEQ_CLS adapter over %s", a, r)
		}
		if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err == nil {
			t.Errorf("%s holds a whole model beside the adapter", dir)
		}
		v, err := gpt.LoadScorer(cpu.New(), dir)
		if err != nil {
			t.Fatal(err)
		}
		return append(v.LoRAParams(), nn.Named{Name: "score", Tensor: v.Score.Weight})
	}
	va := value(a)
	f, err := safetensors.Open(filepath.Join(a, "trainer", "step-00000006", "optimizer.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for _, name := range f.Names() {
		if !strings.Contains(name, "lora_") && !strings.Contains(name, "score.weight") {
			t.Errorf("the optimizer trains %s", name)
		}
		n++
	}
	if n == 0 {
		t.Error("the optimizer holds no tensors")
	}
	run(b, true, false, 3) // inside the second rollout
	run(b, true, true, 0)
	lb := metricRecords(t, b)
	for i := range la {
		for _, k := range []string{"loss", "reward", "kl", "value_loss"} {
			if math.Float64bits(la[i][k]) != math.Float64bits(lb[i][k]) {
				t.Errorf("step %d: %s %v uninterrupted, %v resumed", i+1, k, la[i][k], lb[i][k])
			}
		}
	}
	sameParams(t, b, pa, checkAdapterOut(t, b, sft))
	sameParams(t, b+"/value", va, value(b))
}
