package demo

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/eval"
	"github.com/golem-ml/golem/internal/shared"
)

// TestDemoQuick runs every stage of the demo for a few steps.
func TestDemoQuick(t *testing.T) {
	out := t.TempDir()
	res, err := Run(context.Background(), Options{NewBackend: func() backend.Backend { return cpu.New() }, Out: out, Quick: true, Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Models) != 5 || res.Models[0].Name != "base" || res.Models[1].Name != "sft" {
		t.Fatalf("models: %+v", res.Models)
	}
	for _, name := range []string{"base", "sft", "reward", "ppo", "dpo", "grpo"} {
		if _, err := os.Stat(filepath.Join(out, name, "config.json")); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if res.RewardModel.Pairs == 0 || len(res.Curves["ppo"]) == 0 || len(res.Checks) == 0 {
		t.Errorf("missing numbers: %+v", res.RewardModel)
	}
	if _, err := os.Stat(filepath.Join(out, "demo_result.json")); err != nil {
		t.Error(err)
	}
	// Tool use: round trips in SFT's data, a score for every model, a check.
	if b, err := os.ReadFile(filepath.Join(out, "data/sft.jsonl")); err != nil || !strings.Contains(string(b), `<tool_call>\n{\"name\":\"calculator\"`) || !strings.Contains(string(b), "<tool_response>") {
		t.Errorf("SFT's data has no calculator round trips (%v)", err)
	}
	for _, m := range res.Models {
		if m.ToolUse.Tasks != 4 {
			t.Errorf("%s: tool use on %d questions, want 4", m.Name, m.ToolUse.Tasks)
		}
	}
	if !slices.ContainsFunc(res.Checks, func(c Check) bool { return strings.Contains(c.Claim, "tool use") }) {
		t.Errorf("no tool-use check: %+v", res.Checks)
	}
	if md := Report(res).Summary.Text(); !strings.Contains(md, "tool use") {
		t.Errorf("the summary has no tool-use column:\n%s", md)
	}
}

// TestDemoFull runs the full demo when GOLEM_DEMO_OUT names a folder (it
// takes up to 15 minutes on two cores; not for CI).
func TestDemoFull(t *testing.T) {
	out := os.Getenv("GOLEM_DEMO_OUT")
	if out == "" {
		t.Skip("set GOLEM_DEMO_OUT=DIR to run the full demo")
	}
	res, err := Run(context.Background(), Options{NewBackend: func() backend.Backend { return cpu.New() }, Out: out, Log: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Checks {
		t.Logf("%v  %s", c.Pass, c.Claim)
	}
}

// TestToolModelQuick runs ToolModel's stages for a few steps (serve's
// TestToolCallRoundTrip and cmd/golem's TestChatCalculatorDemoModel train
// it whole and check what it learned).
func TestToolModelQuick(t *testing.T) {
	out := t.TempDir()
	tu, err := ToolModel(context.Background(), ToolModelOptions{NewBackend: func() backend.Backend { return cpu.New() }, Out: out, Quick: true, Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if tu.Tasks != 4 {
		t.Errorf("tool use on %d questions, want 4", tu.Tasks)
	}
	for _, f := range []string{"base/config.json", "sft/config.json", "sft/tokenizer.json", "data/sft.jsonl"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}

// TestDemoMultimodalQuick runs every stage of the multimodal demo for a
// few steps and writes its report card: the scores of the three models on
// both splits, the confusion matrix, the scenes beside what the models
// said of them.
func TestDemoMultimodalQuick(t *testing.T) {
	tok := shared.Path(t, "data/tokenizer/clip/bpe_simple_vocab_16e6.txt.gz")
	out := t.TempDir()
	res, err := RunMultimodal(context.Background(), Options{NewBackend: func() backend.Backend { return cpu.New() }, Out: out, Quick: true, Log: io.Discard, CLIPTokenizer: tok})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.VLM) != 8 || res.Eval("rlhf", "heldout") == nil || res.Eval("rlhf", "test").Questions == 0 || res.Eval("base", "test").Questions == 0 {
		t.Fatalf("evaluations: %+v", res.VLM)
	}
	if len(res.Classes) != 32 || len(res.Confusion) != 32 || res.ZeroShot.N != 32 || res.HeldOut[1] != 4 {
		t.Fatalf("zero-shot: %d classes, %d images, held-out %v", len(res.Classes), res.ZeroShot.N, res.HeldOut)
	}
	if len(res.Checks) != 9 || len(res.Curves["instruct"]) == 0 || len(res.Curves["dpo"]) == 0 || len(res.Curves["reward"]) == 0 {
		t.Fatalf("checks %d, curves %v", len(res.Checks), res.Curves)
	}
	if h := res.RLHF; h == nil || h.RM.Pairs == 0 || h.ShorterWinsN != h.RM.Pairs || h.DPOPairs == 0 || h.DPOHeldout == 0 {
		t.Fatalf("rlhf: %+v (the baseline must be scored on the reward model's held-out pairs)", h)
	}
	if p := res.RLHF.Sampled; p.Scenes != rlhfSizesOf(true).prefScenes || p.Samples != rlhfK*p.Scenes || p.Pairs != res.RLHF.DPOPairs {
		t.Fatalf("on-policy pairs: %+v, DPO trained on %d (want %d descriptions of each of %d scenes)", p, res.RLHF.DPOPairs, rlhfK, rlhfSizesOf(true).prefScenes)
	}
	// The text-to-image stage: the VQ-VAE's PSNR, the judge's accuracies
	// of the first samples and of CLIP's picks on both splits, a grid of
	// samples per split, its check.
	ir := res.Imagine
	if ir == nil || !(ir.PSNR > 0) || len(ir.Rows) != 4 || len(ir.Grids) != 2 || ir.Rows[3].Split != "heldout" || ir.Rows[3].Picks != "rerank" {
		t.Fatalf("text to image: %+v", ir)
	}
	for _, row := range ir.Rows {
		for _, a := range []string{"colour", "shape", "count", "position"} {
			if v, ok := row.Acc[a]; !ok || v < 0 || v > 1 {
				t.Errorf("text to image %s %s: %s accuracy %v", row.Split, row.Picks, a, v)
			}
		}
	}
	if !strings.Contains(res.Checks[8].Claim, "CLIP's pick of 2 is above the first sample's") {
		t.Errorf("the last check is %q", res.Checks[8].Claim)
	}
	if err := MultimodalReport(res).Write(out); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := res.Eval("align", "heldout").Scenes[0]
	for _, want := range []string{"after stage 2 (instruct)", "after RLHF (DPO)", "RLHF beats SFT on held-out answers", "the shorter answer wins", "![zeroshot_confusion](plots/zeroshot_confusion.svg)", "](" + s.Image + ")", "truth: " + s.Truth,
		"## Text to image", "held-out PSNR", "](" + ir.Grids[1].Image + ")", "CLIP's pick of 2"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	for _, f := range []string{"plots/zeroshot_confusion.svg", s.Image, "report.html", "report.json", "align/config.json", "instruct/model.safetensors", "dpo/model.safetensors", "reward/config.json", "shapes/train_description_prefs.jsonl", "shapes/test_description_prefs.jsonl",
		ir.Grids[0].Image, "t2i/vq/config.json", "judge/model.safetensors", "plots/t2i_loss.svg"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}

// TestShorterWins checks the reward model's baseline on a ranking of
// three answers and a preference pair: of each pair the shorter answer
// wins, a tie counts half.
func TestShorterWins(t *testing.T) {
	a := func(s string) []data.Message { return []data.Message{{Role: "assistant", Content: s}} }
	ex := []data.Example{
		// best "red", then "The image shows a red circle.", then "blue": pairs
		// (red > long) right, (red > blue) right, (long > blue) wrong.
		{Kind: data.Ranking, Completions: [][]data.Message{a("blue"), a("red"), a("The image shows a red circle.")}, Ranking: []int{1, 2, 0}},
		{Kind: data.Preference, Chosen: a("yes"), Rejected: a("two")}, // a tie
	}
	acc, n := shorterWins(ex)
	if n != 4 || acc != 2.5/4 {
		t.Fatalf("shorterWins = %v over %d pairs, want 0.625 over 4", acc, n)
	}
}

// TestRLHFCheckNoise checks that the claim "RLHF beats SFT" fails on a
// difference within noise (the 7 of 1,574 questions the simulated pairs
// gave: 0.381 against 0.386) and holds on one well beyond it, with the
// unpaired standard error (no marks) and the paired one (each question's
// marks): 40 more right of 1,574 is noise when the two models disagree on
// 800 questions (2 SE 0.036) and not when they disagree on 60 (2 SE 0.010).
func TestRLHFCheckNoise(t *testing.T) {
	marks := func(right, flips int) string {
		// right '1's first; flips questions swapped against the other model's.
		b := []byte(strings.Repeat("1", right) + strings.Repeat("0", 1574-right))
		for i := 0; i < flips; i++ {
			b[1573-i], b[i] = b[i], b[1573-i]
		}
		return string(b)
	}
	for _, c := range []struct {
		sft, rl   int
		sftM, rlM string
		want      bool
	}{
		{600, 607, "", "", false}, {600, 550, "", "", false}, {600, 700, "", "", true},
		{600, 640, marks(600, 0), marks(640, 380), false},
		{600, 640, marks(600, 0), marks(640, 10), true},
		{600, 590, marks(600, 0), marks(590, 0), false},
	} {
		r := &MMResult{VLM: []VLMEval{
			{Model: "instruct", Split: "test", VLMResult: eval.VLMResult{Questions: 1574, VQA: float64(c.sft) / 1574, Marks: c.sftM}},
			{Model: "rlhf", Split: "test", VLMResult: eval.VLMResult{Questions: 1574, VQA: float64(c.rl) / 1574, Marks: c.rlM}},
			// The held-out pairs are reported, never held to the check.
			{Model: "instruct", Split: "heldout", VLMResult: eval.VLMResult{Questions: 1574, VQA: 0.5}},
			{Model: "rlhf", Split: "heldout", VLMResult: eval.VLMResult{Questions: 1574, VQA: float64(1574-c.rl) / 1574}},
		}}
		var got []bool
		var msg string
		rlhfChecks(r, func(m string, ok bool) { got = append(got, ok); msg = m })
		if len(got) != 1 || got[0] != c.want || !strings.Contains(msg, "held-out colour-shape pairs, apart") {
			t.Errorf("stage 2 %d, RLHF %d right of 1574 (marks %v): check %v, want %v: %s", c.sft, c.rl, c.sftM != "", got, c.want, msg)
		}
	}
}
