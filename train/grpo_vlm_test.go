package train

import (
	"context"
	"io"
	"math"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/model/llava"
)

// vlmVerifiable makes GRPO tasks of the shapes world's image prompts:
// each example's prompt and image, scored "short" (minus the answer's
// length in characters over 10), a reward a random model can find.
func vlmVerifiable(ex []data.Example) []Verifiable {
	out := make([]Verifiable, len(ex))
	for i, e := range ex {
		out[i] = Verifiable{Key: e.Source, Prompt: e.Prompt, Images: e.Images, Score: func(r string) map[string]float64 {
			return map[string]float64{"short": -float64(len(r)) / 10}
		}}
	}
	return out
}

// TestGRPOVLM runs GRPO on a LLaVA model, each prompt with its image
// (the shapes world's, read from their files): a short run raises the
// reward, the tower and the projector stay as they were, and a run
// stopped after step 2 and resumed logs every number of the
// uninterrupted run and ends with its weights, bit for bit. Prompts
// without an image, and images for a text-only model, are errors naming
// the task.
func TestGRPOVLM(t *testing.T) {
	vlmDir, lmDir, prefs, _ := vlmPrefsFixture(t, 16)
	ds, err := data.Read(prefs, data.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := llava.Load(cpu.New(), vlmDir)
	if err != nil {
		t.Fatal(err)
	}
	tasks := vlmVerifiable(ds.Examples[:8])
	run := grpoVLMRun(t, vlmDir, tasks, false)

	out := t.TempDir()
	run(out, 15, 1e-2, false, 0)
	r := metricRecords(t, out)
	first, last := (r[0]["reward"]+r[1]["reward"]+r[2]["reward"])/3, (r[12]["reward"]+r[13]["reward"]+r[14]["reward"])/3
	t.Logf("reward %.2f in the first three steps, %.2f in the last three", first, last)
	if last < first+0.3 {
		t.Errorf("reward %.2f in the first three steps, %.2f in the last three: GRPO did not raise it", first, last)
	}
	onlyLMTrained(t, v, out, "GRPO")

	resumesExactly(t, run)

	loop := Config{Steps: 1, Out: t.TempDir(), Quiet: true}
	noImage := vlmVerifiable(ds.Examples[:2])
	noImage[1].Images = nil
	_, err = GRPO(context.Background(), GRPOOptions{Backend: cpu.New(), Policy: vlmDir, Tasks: noImage, Rewards: []string{"short"}, Loop: loop, Log: io.Discard})
	wantErr(t, err, "grpo: task 2 ("+ds.Examples[1].Source+"): the prompt has no image")
	_, err = GRPO(context.Background(), GRPOOptions{Backend: cpu.New(), Policy: lmDir, Tasks: tasks, Rewards: []string{"short"}, Loop: Config{Steps: 1, Out: t.TempDir(), Quiet: true}, Log: io.Discard})
	wantErr(t, err, "is a text-only model")
}

// grpoVLMRun returns a GRPO run on the LLaVA model vlmDir's tasks (group
// 8, 2 prompts, seed 3) to out for steps at lr, resumed or not, stopped
// after step stopAt when it is above 0; proj trains the projector too.
func grpoVLMRun(t *testing.T, vlmDir string, tasks []Verifiable, proj bool) func(out string, steps int, lr float64, resume bool, stopAt int) {
	return func(out string, steps int, lr float64, resume bool, stopAt int) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		loop := Config{Steps: steps, LR: lr, Seed: 3, Out: out, Resume: resume, Quiet: true, Progress: io.Discard}
		if stopAt > 0 {
			loop.OnStep = func(step int, _ float64) {
				if step == stopAt {
					cancel()
				}
			}
		}
		if _, err := GRPO(ctx, GRPOOptions{Backend: cpu.New(), Policy: vlmDir, Tasks: tasks, Rewards: []string{"short"}, Group: 8, Prompts: 2, MaxTokens: 12,
			TrainProjector: proj, Loop: loop, Log: io.Discard}); err != nil {
			t.Fatal(err)
		}
	}
}

// resumesExactly checks that a 4-step run stopped after step 2 and
// resumed logs every number of the uninterrupted run and ends with its
// weights (the whole LLaVA model's), bit for bit.
func resumesExactly(t *testing.T, run func(out string, steps int, lr float64, resume bool, stopAt int)) {
	t.Helper()
	a, b := t.TempDir(), t.TempDir()
	run(a, 4, 1e-3, false, 0)
	run(b, 4, 1e-3, false, 2)
	run(b, 4, 1e-3, true, 0)
	la, lb := metricRecords(t, a), metricRecords(t, b)
	if len(la) != 4 || len(lb) != 4 {
		t.Fatalf("%d and %d records", len(la), len(lb))
	}
	for i := range la {
		for _, k := range []string{"loss", "reward", "kl", "response_len", "reward_std"} {
			if math.Float64bits(la[i][k]) != math.Float64bits(lb[i][k]) {
				t.Errorf("step %d: %s %v uninterrupted, %v resumed", i+1, k, la[i][k], lb[i][k])
			}
		}
	}
	ma, err := llava.Load(cpu.New(), a)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := llava.Load(cpu.New(), b)
	if err != nil {
		t.Fatal(err)
	}
	sameParams(t, b, ma.Params(), mb.Params())
}

// TestGRPOVLMProjector runs GRPO with TrainProjector (golem grpo --train
// projector,lm): a short run raises the reward and moves the projector
// and the language model, not the tower; the KL is 0 at the first step
// (the reference is the starting model, its projector included) and
// above 0 later; a run stopped and resumed matches the uninterrupted one
// bit for bit. LoRA, and a text-only policy, are errors.
func TestGRPOVLMProjector(t *testing.T) {
	vlmDir, lmDir, prefs, _ := vlmPrefsFixture(t, 16)
	ds, err := data.Read(prefs, data.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := llava.Load(cpu.New(), vlmDir)
	if err != nil {
		t.Fatal(err)
	}
	tasks := vlmVerifiable(ds.Examples[:8])
	run := grpoVLMRun(t, vlmDir, tasks, true)

	out := t.TempDir()
	run(out, 15, 1e-2, false, 0)
	r := metricRecords(t, out)
	first, last := (r[0]["reward"]+r[1]["reward"]+r[2]["reward"])/3, (r[12]["reward"]+r[13]["reward"]+r[14]["reward"])/3
	t.Logf("reward %.2f in the first three steps, %.2f in the last three; kl %g at step 1, %g at step 15", first, last, r[0]["kl"], r[14]["kl"])
	if last < first+0.3 {
		t.Errorf("reward %.2f in the first three steps, %.2f in the last three: GRPO did not raise it", first, last)
	}
	if r[0]["kl"] != 0 || !(r[14]["kl"] > 0) {
		t.Errorf("kl %g at step 1 (want 0: the policy is the reference), %g at step 15 (want above 0)", r[0]["kl"], r[14]["kl"])
	}
	after, err := llava.Load(cpu.New(), out)
	if err != nil {
		t.Fatal(err)
	}
	if equalParams(v.ProjectorParams(), after.ProjectorParams()) || equalParams(v.LM.Params(), after.LM.Params()) {
		t.Error("GRPO with the projector left the projector or the language model unchanged")
	}
	if !equalParams(v.Vision.Params(), after.Vision.Params()) {
		t.Error("GRPO with the projector changed the vision tower")
	}

	resumesExactly(t, run)

	_, err = GRPO(context.Background(), GRPOOptions{Backend: cpu.New(), Policy: vlmDir, Tasks: tasks, Rewards: []string{"short"}, TrainProjector: true,
		LoRA: &testLoRA, Loop: Config{Steps: 1, Out: t.TempDir(), Quiet: true}, Log: io.Discard})
	wantErr(t, err, "grpo: training the projector is for a full run, not LoRA")
	_, err = GRPO(context.Background(), GRPOOptions{Backend: cpu.New(), Policy: lmDir, Tasks: vlmVerifiable(ds.Examples[:2]), Rewards: []string{"short"}, TrainProjector: true,
		Loop: Config{Steps: 1, Out: t.TempDir(), Quiet: true}, Log: io.Discard})
	wantErr(t, err, "grpo: training the projector needs a LLaVA policy; "+lmDir+" is a text-only model")
}
