package train

import (
	"context"
	"io"
	"math"
	"path/filepath"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/internal/shared"
)

func prefPairs(tasks []synth.Task) []data.Example {
	var ex []data.Example
	for _, tk := range tasks {
		ex = append(ex, data.Example{Kind: data.Preference, Prompt: tk.Prompt, Source: "synth:" + tk.Key,
			Chosen:   []data.Message{{Role: "assistant", Content: tk.Answer}},
			Rejected: []data.Message{{Role: "assistant", Content: "I do not know, sorry."}}})
	}
	return ex
}

func TestDPO(t *testing.T) {
	sft := tinyLM(t, 1, 128)
	kinds := []string{synth.KindFirstLetter, synth.KindNumberOnly}
	tr := prefPairs(synth.MustTasks(synth.TaskOptions{Seed: 1, N: 32, Kinds: kinds}))
	va := prefPairs(synth.MustTasks(synth.TaskOptions{Seed: 2, N: 16, Kinds: kinds, Split: synth.SplitHeldout}))
	for _, lt := range []string{"sigmoid", "ipo"} {
		if lt == "ipo" && testing.Short() {
			// The stage is the same but for dpoLoss, whose IPO loss and
			// gradients TestDPOLossHandCase checks by hand.
			t.Log("ipo: full run only (go test ./...): TestDPOLossHandCase checks the IPO loss and its gradients, this test's sigmoid run the stage")
			continue
		}
		out := t.TempDir()
		res, err := DPO(context.Background(), DPOOptions{Backend: cpu.New(), Policy: sft, Data: tr, Heldout: va, LossType: lt, Beta: 0.5, Batch: 4,
			Loop: Config{Steps: 12, LR: 3e-3, Out: out, Quiet: true}, Log: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		recs := metricRecords(t, out)
		// At the start the policy is the reference: h = 0.
		want := math.Log(2)
		if lt == "ipo" {
			want = 1 // (0 - 1/(2*0.5))^2
		}
		if math.Abs(recs[0]["loss"]-want) > 1e-4 {
			t.Errorf("%s: first loss %v, want %v", lt, recs[0]["loss"], want)
		}
		if res.Loss >= recs[0]["loss"] {
			t.Errorf("%s: loss did not go down: %v -> %v", lt, recs[0]["loss"], res.Loss)
		}
		if res.Eval["val_accuracy"] < 0.9 {
			t.Errorf("%s: held-out accuracy %v", lt, res.Eval["val_accuracy"])
		}
	}
	_, err := DPO(context.Background(), DPOOptions{Backend: cpu.New(), Policy: sft, Data: tr, LossType: "hinge", Loop: Config{Steps: 1, LR: 1, Out: t.TempDir()}})
	wantErr(t, err, "hinge")
}

// TestDPOLlamaFactory trains a few steps on LLaMA-Factory's DPO pairs.
func TestDPOLlamaFactory(t *testing.T) {
	ex := readHead(t, shared.Path(t, "data/preference/llamafactory_dpo_en_demo.json"), 40)
	sft := tinyLM(t, 1, 128)
	res, err := DPO(context.Background(), DPOOptions{Backend: cpu.New(), Policy: sft, Data: ex, Truncate: true, Batch: 2,
		Loop: Config{Steps: 3, LR: 1e-3, Out: t.TempDir(), Quiet: true}, Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if math.IsNaN(res.Loss) || res.Step != 3 {
		t.Errorf("result %+v", res)
	}
}

// Text and image DPO share their settings' defaults and checks
// (dpoSettings): a negative batch or beta, a negative RPO alpha or an
// unknown loss is an error in both, before any model is read; zero
// values take the defaults.
func TestDPOSettings(t *testing.T) {
	beta, loss, batch := 0.0, "", 0
	if err := dpoSettings("dpo", &beta, &loss, 0, &batch); err != nil || beta != 0.1 || loss != "sigmoid" || batch != 8 {
		t.Errorf("defaults: beta %v, loss %q, batch %d, error %v; want 0.1, sigmoid, 8, none", beta, loss, batch, err)
	}
	out := filepath.Join(t.TempDir(), "out")
	for _, c := range []struct {
		beta, rpo float64
		loss      string
		batch     int
		want      string
	}{
		{beta: -0.1, want: "beta -0.1, want above 0"},
		{beta: math.NaN(), want: "beta NaN, want above 0"},
		{batch: -2, want: "batch -2, want 1 or more"},
		{rpo: -1, want: "RPO alpha -1, want 0 (off) or above"},
		{loss: "hinge", want: `loss type "hinge": want sigmoid or ipo`},
	} {
		_, err := DPO(context.Background(), DPOOptions{Backend: cpu.New(), Policy: "nowhere", Beta: c.beta, RPOAlpha: c.rpo, LossType: c.loss, Batch: c.batch, Log: io.Discard, Loop: Config{Out: out}})
		wantErr(t, err, "dpo: "+c.want)
		_, err = ImagineDPO(context.Background(), ImagineDPOOptions{Backend: cpu.New(), Model: "nowhere", Data: "nowhere.jsonl", Beta: c.beta, RPOAlpha: c.rpo, LossType: c.loss, Batch: c.batch, Log: io.Discard, Loop: Config{Out: out}})
		wantErr(t, err, "imagine dpo: "+c.want)
	}
}
