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
	run := grpoVLMRun(t, vlmDir, tasks, nil)

	out := t.TempDir()
	// 10 steps under -short: the reward -1.90 -> -1.33 against a rise of
	// 0.3 wanted (-1.89 -> -1.22 after 15).
	steps := 15
	if testing.Short() {
		steps = 10
	}
	run(out, steps, 1e-2, false, 0)
	r := metricRecords(t, out)
	first, last := (r[0]["reward"]+r[1]["reward"]+r[2]["reward"])/3, (r[steps-3]["reward"]+r[steps-2]["reward"]+r[steps-1]["reward"])/3
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
// after step stopAt when it is above 0; set, when not nil, changes the
// options.
func grpoVLMRun(t *testing.T, vlmDir string, tasks []Verifiable, set func(*GRPOOptions)) func(out string, steps int, lr float64, resume bool, stopAt int) {
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
		o := GRPOOptions{Backend: cpu.New(), Policy: vlmDir, Tasks: tasks, Rewards: []string{"short"}, Group: 8, Prompts: 2, MaxTokens: 12, Loop: loop, Log: io.Discard}
		if set != nil {
			set(&o)
		}
		if _, err := GRPO(ctx, o); err != nil {
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
	run := grpoVLMRun(t, vlmDir, tasks, func(o *GRPOOptions) { o.TrainProjector = true })

	out := t.TempDir()
	// The short tier runs 4 steps and leaves the rising reward and the
	// resumed run to TestGRPOVLM's (the same loop without the projector).
	steps := 15
	if testing.Short() {
		steps = 4
	}
	run(out, steps, 1e-2, false, 0)
	r := metricRecords(t, out)
	if !testing.Short() {
		first, last := (r[0]["reward"]+r[1]["reward"]+r[2]["reward"])/3, (r[12]["reward"]+r[13]["reward"]+r[14]["reward"])/3
		t.Logf("reward %.2f in the first three steps, %.2f in the last three", first, last)
		if last < first+0.3 {
			t.Errorf("reward %.2f in the first three steps, %.2f in the last three: GRPO did not raise it", first, last)
		}
	}
	t.Logf("kl %g at step 1, %g at step %d", r[0]["kl"], r[steps-1]["kl"], steps)
	if r[0]["kl"] != 0 || !(r[steps-1]["kl"] > 0) {
		t.Errorf("kl %g at step 1 (want 0: the policy is the reference), %g at step %d (want above 0)", r[0]["kl"], r[steps-1]["kl"], steps)
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

	if !testing.Short() {
		resumesExactly(t, run)
	}

	_, err = GRPO(context.Background(), GRPOOptions{Backend: cpu.New(), Policy: vlmDir, Tasks: tasks, Rewards: []string{"short"}, TrainProjector: true,
		LoRA: &testLoRA, Loop: Config{Steps: 1, Out: t.TempDir(), Quiet: true}, Log: io.Discard})
	wantErr(t, err, "grpo: training the projector is for a full run, not LoRA")
	_, err = GRPO(context.Background(), GRPOOptions{Backend: cpu.New(), Policy: lmDir, Tasks: vlmVerifiable(ds.Examples[:2]), Rewards: []string{"short"}, TrainProjector: true,
		Loop: Config{Steps: 1, Out: t.TempDir(), Quiet: true}, Log: io.Discard})
	wantErr(t, err, "grpo: training the projector needs a LLaVA policy; "+lmDir+" is a text-only model")
}

// TestGRPOVLMSkipUniform runs GRPO on tasks half of which score every
// answer alike (0): without SkipUniform about half the groups are alike
// (groups_alike), with it none is, and the groups kept are about half of
// those drawn (a step may draw two that differ at once); a run stopped and resumed matches the uninterrupted one
// bit for bit.
func TestGRPOVLMSkipUniform(t *testing.T) {
	vlmDir, _, prefs, _ := vlmPrefsFixture(t, 16)
	ds, err := data.Read(prefs, data.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tasks := vlmVerifiable(ds.Examples[:8])
	for i := range 4 {
		tasks[i].Score = func(string) map[string]float64 { return map[string]float64{"short": 0} }
	}
	mean := func(r []map[string]float64, k string) float64 {
		s := 0.0
		for _, x := range r {
			s += x[k]
		}
		return s / float64(len(r))
	}
	plain, skip := t.TempDir(), t.TempDir()
	grpoVLMRun(t, vlmDir, tasks, nil)(plain, 6, 1e-3, false, 0)
	run := grpoVLMRun(t, vlmDir, tasks, func(o *GRPOOptions) { o.SkipUniform = true })
	run(skip, 6, 1e-3, false, 0)
	rp, rs := metricRecords(t, plain), metricRecords(t, skip)
	t.Logf("groups alike %.2f without SkipUniform; with it %.2f, %.2f of the groups drawn kept in %.1f draws", mean(rp, "groups_alike"), mean(rs, "groups_alike"), mean(rs, "groups_kept"), mean(rs, "draws"))
	if a := mean(rp, "groups_alike"); a < 0.2 || a > 0.8 {
		t.Errorf("without SkipUniform %.2f of the groups alike, want about half", a)
	}
	for i, r := range rs {
		if r["groups_alike"] != 0 || r["groups_kept"] <= 0 || r["groups_kept"] > 1 || r["draws"] < 1 || r["draws"] > 4 {
			t.Errorf("step %d with SkipUniform: groups_alike %v (want 0), groups_kept %v, draws %v", i+1, r["groups_alike"], r["groups_kept"], r["draws"])
		}
	}
	if k := mean(rs, "groups_kept"); k > 0.8 {
		t.Errorf("with SkipUniform %.2f of the groups drawn kept, want about half", k)
	}
	if testing.Short() {
		t.Log("the resumed run: full run only (go test ./...); the short tier resumes GRPO on a LLaVA model in TestGRPOVLM")
		return
	}
	resumesExactly(t, run)
}
