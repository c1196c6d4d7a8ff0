package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/eval"
	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/model/dalle"
	"github.com/golem-ml/golem/model/resnet"
)

// TestImagineCommands trains a VQ-VAE and a text-to-image model a few
// steps on a small shapes world through the real binary, draws samples
// (the pick and the grid), reranks them with a CLIP model when ../shared
// has CLIP's tokenizer, and refuses bad input: --n 0, a prompt longer
// than the text context, a missing --vq folder, a model folder without
// its VQ-VAE.
func TestImagineCommands(t *testing.T) {
	dir := t.TempDir()
	world := filepath.Join(dir, "shapes")
	if _, err := shapes.Write(shapes.Options{Out: world, Seed: 1, Size: 16, Train: 32, Test: 8, PerClass: 1}); err != nil {
		t.Fatal(err)
	}
	// The full run trains the VQ-VAE 100 steps and the annotator 200, so
	// that the drawn images differ to the annotator's eyes and the
	// preference runs below make pairs whose rules are checked (with 3 and
	// 2 steps every image looks alike to it: no pair, nothing to check);
	// the fast tier checks the commands' output alone.
	vqSteps, judgeSteps := "100", "200"
	if testing.Short() {
		vqSteps, judgeSteps = "3", "2"
	}
	vq := filepath.Join(dir, "vq")
	if stdout, stderr, code := runGolem(t, "vq", "train", "--data", filepath.Join(world, "train.jsonl"), "--image-size", "16", "--batch", "8",
		"--steps", vqSteps, "--eval-every", "0", "--out", vq, "--threads", "2"); code != 0 {
		t.Fatalf("vq train: exit %d\n%s%s", code, stdout, stderr)
	}
	model := filepath.Join(dir, "t2i")
	trainBatch, steps := "8", "4"
	if testing.Short() {
		trainBatch, steps = "4", "2"
	}
	stdout, stderr, code := runGolem(t, "imagine", "train", "--vq", vq, "--data", filepath.Join(world, "train.jsonl"), "--eval-data", filepath.Join(world, "test.jsonl"),
		"--batch", trainBatch, "--steps", steps, "--out", model, "--threads", "2")
	if code != 0 {
		t.Fatalf("imagine train: exit %d\n%s%s", code, stdout, stderr)
	}
	if !regexp.MustCompile(`held-out: val_loss=[0-9.]+ val_loss_uncond=[0-9.]+`).MatchString(stdout) || !regexp.MustCompile(`^loss=[0-9.]+$`).MatchString(lastLine(stdout)) {
		t.Fatalf("imagine train printed\n%s", stdout)
	}
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "metrics.jsonl", "vq/config.json", "vq/model.safetensors"} {
		if _, err := os.Stat(filepath.Join(model, f)); err != nil {
			t.Fatalf("imagine train wrote no %s: %v", f, err)
		}
	}
	png := filepath.Join(dir, "circle.png")
	if stdout, stderr, code = runGolem(t, "imagine", "--model", model, "--prompt", "one shape: a red circle", "--n", "3", "--guidance", "2", "--out", png); code != 0 {
		t.Fatalf("imagine: exit %d\n%s%s", code, stdout, stderr)
	}
	img, err := vision.ReadFile(png, vision.Limits{})
	if err != nil || img.C != 3 || img.H != 16 || img.W != 16 {
		t.Fatalf("imagine wrote %v (%v), want a 16x16 RGB PNG", img, err)
	}
	if _, err := vision.ReadFile(filepath.Join(dir, "circle-grid.png"), vision.Limits{}); err != nil || !strings.Contains(stdout, "3 samples written to") {
		t.Fatalf("no grid (%v):\n%s", err, stdout)
	}
	// drawer draws from here on: under -short a small model (1 block of
	// width 32, not the tiny preset's 4 of 128) over the trained one's
	// tokenizer and VQ-VAE, random, so that the batch mode, the
	// preferences, DPO and reranking below, which check what the commands
	// write and not how well the model draws, cost a tenth of the CPU; the
	// trained folder loads and draws above.
	drawer := model
	if testing.Short() {
		drawer = smallT2I(t, model, filepath.Join(dir, "t2i-small"))
	}

	for i, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"imagine", "--model", model, "--prompt", "a red circle", "--n", "0", "--out", png}, 2, "--n 0, want 1 to 64"},
		{[]string{"imagine", "--model", model, "--prompt", strings.Repeat("a red circle and ", 20), "--out", png}, 1, "longer than the model's text context"},
		{[]string{"imagine", "train", "--vq", filepath.Join(dir, "nope"), "--data", filepath.Join(world, "train.jsonl"), "--out", filepath.Join(dir, "x")}, 1, "--vq"},
		{[]string{"imagine", "train", "--data", filepath.Join(world, "train.jsonl"), "--out", filepath.Join(dir, "x")}, 2, "needs --vq"},
		{[]string{"imagine", "--model", vq, "--prompt", "a red circle", "--out", png}, 1, "golem_dalle"},
	} {
		_, stderr, code := runRefused(t, i == 0, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("golem %s: exit %d, stderr %q; want exit %d and %q", strings.Join(c.args, " "), code, stderr, c.code, c.want)
		}
	}
	// Batch mode: one pick per caption of a split, in eval judge's format.
	judge := filepath.Join(dir, "judge")
	if stdout, stderr, code := runGolem(t, "vision", "judge", "train", "--data", world, "--out", judge, "--steps", judgeSteps, "--batch", "8",
		"--image-size", "16", "--eval-split", "", "--threads", "2"); code != 0 {
		t.Fatalf("vision judge train: exit %d\n%s%s", code, stdout, stderr)
	}
	batch := filepath.Join(dir, "batch")
	if stdout, stderr, code = runGolem(t, "imagine", "--model", drawer, "--prompts", filepath.Join(world, "test.jsonl"), "--out-dir", batch, "--n", "2", "--all-samples"); code != 0 ||
		!strings.Contains(stdout, "8 images (2 samples each) written to") || !strings.Contains(stdout, "every sample (16) listed in") {
		t.Fatalf("imagine --prompts: exit %d\n%s%s", code, stdout, stderr)
	}
	checkImagineBatch(t, world, judge, filepath.Join(batch, "images.jsonl"), 8, 1)
	if _, err := os.Stat(filepath.Join(batch, "first.jsonl")); err == nil {
		t.Error("imagine --prompts without --rerank wrote first.jsonl")
	}
	// --all-samples: every sample, caption by caption (without reranking
	// the pick is sample 0, the same image); eval judge --baseline counts
	// a caption's samples as one caption.
	samples := filepath.Join(batch, "samples.jsonl")
	checkImagineBatch(t, world, judge, samples, 16, 2)
	for k, p := range judgeImages(t, filepath.Join(batch, "images.jsonl")) {
		a, _ := os.ReadFile(filepath.Join(batch, p))
		b, err := os.ReadFile(filepath.Join(batch, judgeImages(t, samples)[2*k]))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("caption %d: the pick %s is not sample 0 (%v)", k, p, err)
		}
	}
	if stdout, stderr, code := runGolem(t, "eval", "judge", "--judge", judge, "--data", samples, "--baseline", samples); code != 0 ||
		!strings.Contains(stdout, "paired over 8 captions") {
		t.Errorf("eval judge --baseline of every sample: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, stderr, code := runGolem(t, "imagine", "--model", model, "--prompt", "a red circle", "--out", png, "--all-samples"); code != 2 || !strings.Contains(stderr, "--all-samples goes with --prompts") {
		t.Errorf("--all-samples without batch mode: exit %d, stderr %q", code, stderr)
	}
	// Simulated preferences, the 2-step judge as the annotator: every pair
	// prefers the higher score or, of the same score, the number of shapes
	// nearer the caption's; its images are there.
	prefs := filepath.Join(dir, "prefs")
	stdout, stderr, code = runGolem(t, "imagine", "prefs", "--model", drawer, "--prompts", filepath.Join(world, "train.jsonl"), "--annotator", judge,
		"--n", "4", "--limit", "6", "--pairs", "exact", "--out-dir", prefs)
	if code != 0 || !regexp.MustCompile(`^\d+ pairs from 6 captions \(4 samples each; \d captions gave none; \d+ pairs left out where`).MatchString(lastLine(stdout)) {
		t.Fatalf("imagine prefs: exit %d\n%s%s", code, stdout, stderr)
	}
	b, err := os.ReadFile(filepath.Join(prefs, "prefs.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "" {
			continue
		}
		var p struct{ Prompt, Chosen, Rejected string }
		var sc struct {
			C    float64 `json:"chosen_score"`
			R    float64 `json:"rejected_score"`
			OffC int     `json:"chosen_count_off"`
			OffR int     `json:"rejected_count_off"`
			TokC []int32 `json:"chosen_tokens"` // the 4x4 grid each was drawn as
			TokR []int32 `json:"rejected_tokens"`
		}
		json.Unmarshal([]byte(l), &p)
		json.Unmarshal([]byte(l), &sc)
		if p.Prompt == "" || !(sc.C > sc.R || sc.C == sc.R && sc.OffC < sc.OffR) || !regexp.MustCompile(`^images/00000[0-5]-[0-3]\.png$`).MatchString(p.Chosen) ||
			len(sc.TokC) != 16 || len(sc.TokR) != 16 {
			t.Errorf("prefs.jsonl:%d: %s", i+1, l)
		}
		for k, f := range []string{p.Chosen, p.Rejected} {
			img, err := vision.ReadFile(filepath.Join(prefs, f), vision.Limits{})
			if err != nil {
				t.Errorf("prefs.jsonl:%d: %v", i+1, err)
			}
			if i > 0 || err != nil || len(sc.TokC) != 16 {
				continue
			}
			// The first pair's tokens, decoded by the VQ-VAE, are its images.
			tok := [2][]int32{sc.TokC, sc.TokR}[k]
			rows, _ := json.Marshal([][]int32{tok[0:4], tok[4:8], tok[8:12], tok[12:16]})
			tf, dec := filepath.Join(dir, "tok.json"), filepath.Join(dir, "tok.png")
			os.WriteFile(tf, rows, 0o644)
			if stdout, stderr, code := runGolem(t, "vq", "decode", "--model", vq, "--tokens", tf, "--out", dec); code != 0 {
				t.Fatalf("vq decode: exit %d\n%s%s", code, stdout, stderr)
			}
			if d, err := vision.ReadFile(dec, vision.Limits{}); err != nil || !slices.Equal(d.Pix, img.Pix) {
				t.Errorf("prefs.jsonl:1: %s is not what its tokens decode to (%v)", f, err)
			}
		}
	}
	if pngs, _ := filepath.Glob(filepath.Join(prefs, "images", "*.png")); len(pngs) != 24 {
		t.Errorf("imagine prefs wrote %d images, want 6 captions x 4", len(pngs))
	}
	// --pairs exact makes exact ones: the annotator sees the chosen
	// sample no worse on any stated attribute, its number of shapes no
	// further from the caption's, and that number right; --pairs all
	// keeps these and the pairs that trade something away (the same
	// draws: the same seeds). (The 2-step annotator may see all samples
	// alike: TestDominantPairs in eval checks the rules on made-up
	// scenes.)
	// (--pairs all in the full run only: under -short the exact and the
	// default count runs cover the command.)
	all := filepath.Join(dir, "prefs-all")
	var allLines []prefLine
	if !testing.Short() {
		if stdout, stderr, code = runGolem(t, "imagine", "prefs", "--model", drawer, "--prompts", filepath.Join(world, "train.jsonl"), "--annotator", judge,
			"--n", "4", "--limit", "6", "--pairs", "all", "--out-dir", all); code != 0 || strings.Contains(lastLine(stdout), "left out") {
			t.Fatalf("imagine prefs --pairs all: exit %d\n%s%s", code, stdout, stderr)
		}
		allLines = prefLines(t, filepath.Join(all, "prefs.jsonl"))
	}
	exactLines := prefLines(t, filepath.Join(prefs, "prefs.jsonl"))
	g, err := resnet.LoadGrid(cpu.New(), judge)
	if err != nil {
		t.Fatal(err)
	}
	captions, err := eval.ReadJudgeItems(filepath.Join(world, "train.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	exact := func(dir string, l prefLine) bool {
		j, err := strconv.Atoi(l.Chosen[len("images/") : len("images/")+6])
		if err != nil {
			t.Fatal(err)
		}
		it := []eval.JudgeItem{captions[j], captions[j]}
		it[0].Image, it[1].Image = filepath.Join(dir, l.Chosen), filepath.Join(dir, l.Rejected)
		seen, err := eval.JudgeSeen(g, it, 2)
		if err != nil {
			t.Fatal(err)
		}
		st := it[0].Stated()
		off := eval.CountOff(it[0].Kind, st, seen[0])
		return off == 0 && eval.Dominates(eval.ScoreScene(it[0].Kind, st, seen[0]), eval.ScoreScene(it[0].Kind, st, seen[1]), off, eval.CountOff(it[0].Kind, st, seen[1]))
	}
	for _, l := range allLines {
		if e := exact(all, l); e != slices.Contains(exactLines, l) {
			t.Errorf("%s over %s: exact %v, in the --pairs exact prefs.jsonl %v", l.Chosen, l.Rejected, e, !e)
		}
	}
	for _, l := range exactLines {
		if !exact(prefs, l) {
			t.Errorf("%s over %s: in the --pairs exact prefs.jsonl, not an exact pair", l.Chosen, l.Rejected)
		}
	}
	// --pairs count, the default: of each caption's samples (the same draws), the one
	// nearer the caption's number of shapes, as the annotator sees them,
	// over the other, and of two as near the higher mean accuracy: every
	// such pair and no other.
	countDir := filepath.Join(dir, "prefs-count")
	if stdout, stderr, code = runGolem(t, "imagine", "prefs", "--model", drawer, "--prompts", filepath.Join(world, "train.jsonl"), "--annotator", judge,
		"--n", "4", "--limit", "6", "--out-dir", countDir); code != 0 ||
		!regexp.MustCompile(`^\d+ pairs from 6 captions \(4 samples each; \d captions gave none; in \d+ pairs the sample nearer the caption's number of shapes was chosen over a better-scored one;`).MatchString(lastLine(stdout)) {
		t.Fatalf("imagine prefs --pairs count: exit %d\n%s%s", code, stdout, stderr)
	}
	var wantCount []prefLine
	for j := range 6 {
		it := make([]eval.JudgeItem, 4)
		for i := range it {
			it[i] = captions[j]
			it[i].Image = filepath.Join(countDir, fmt.Sprintf("images/%06d-%d.png", j, i))
		}
		seen, err := eval.JudgeSeen(g, it, 4)
		if err != nil {
			t.Fatal(err)
		}
		st := it[0].Stated()
		off, score := make([]int, 4), make([]float64, 4)
		for i := range it {
			off[i], score[i] = eval.CountOff(it[i].Kind, st, seen[i]), eval.ScoreScene(it[i].Kind, st, seen[i]).MeanAcc()
		}
		for c := range 4 {
			for r := range 4 {
				if off[c] < off[r] || off[c] == off[r] && score[c] > score[r]+1e-9 {
					wantCount = append(wantCount, prefLine{captions[j].Caption, fmt.Sprintf("images/%06d-%d.png", j, c), fmt.Sprintf("images/%06d-%d.png", j, r)})
				}
			}
		}
	}
	gotCount := prefLines(t, filepath.Join(countDir, "prefs.jsonl"))
	t.Logf("--pairs exact: %d pairs, --pairs all: %d, --pairs count: %d", len(exactLines), len(allLines), len(gotCount))
	if !testing.Short() && (len(exactLines) == 0 || len(gotCount) == 0 || len(allLines) == 0) {
		t.Errorf("--pairs exact made %d pairs, all %d, count %d: the annotator saw every sample alike, so the rules above checked nothing", len(exactLines), len(allLines), len(gotCount))
	}
	if len(gotCount) != len(wantCount) {
		t.Errorf("--pairs count wrote %d pairs, want %d: %v", len(gotCount), len(wantCount), wantCount)
	}
	for _, l := range wantCount {
		if !slices.Contains(gotCount, l) {
			t.Errorf("--pairs count: no pair %s over %s", l.Chosen, l.Rejected)
		}
	}
	// --pairs anchored (full run only): the beyond-clip pairs, both
	// samples with the caption's number of shapes, and count anchors,
	// the caption's number over another, no more of them than the others;
	// each of them a count pair of the same draws. (This test's 2-step
	// models may make none: TestCountAnchors and TestCapAnchors in eval
	// check the rule on made-up scenes.)
	if !testing.Short() {
		anchoredDir := filepath.Join(dir, "prefs-anchored")
		if stdout, stderr, code = runGolem(t, "imagine", "prefs", "--model", drawer, "--prompts", filepath.Join(world, "train.jsonl"), "--annotator", judge,
			"--n", "4", "--limit", "6", "--pairs", "anchored", "--out-dir", anchoredDir); code != 0 ||
			!regexp.MustCompile(`^\d+ pairs from 6 captions \(4 samples each; \d captions gave none; \d+ of them count anchors;`).MatchString(lastLine(stdout)) {
			t.Fatalf("imagine prefs --pairs anchored: exit %d\n%s%s", code, stdout, stderr)
		}
		type offLine struct {
			prefLine
			ChosenOff   int `json:"chosen_count_off"`
			RejectedOff int `json:"rejected_count_off"`
		}
		lines, anchors := jsonLines[offLine](t, filepath.Join(anchoredDir, "prefs.jsonl")), 0
		for _, l := range lines {
			if l.ChosenOff != 0 {
				t.Errorf("--pairs anchored: %s over %s: the chosen sample is %d shapes off the caption's number", l.Chosen, l.Rejected, l.ChosenOff)
			}
			if l.RejectedOff > 0 {
				anchors++
			}
			if !slices.Contains(wantCount, l.prefLine) {
				t.Errorf("--pairs anchored: %s over %s is not a count pair", l.Chosen, l.Rejected)
			}
		}
		t.Logf("--pairs anchored: %d pairs, %d of them count anchors", len(lines), anchors)
		if anchors > len(lines)-anchors {
			t.Errorf("--pairs anchored: %d count anchors and %d other pairs, want no more anchors than others", anchors, len(lines)-anchors)
		}
	}
	// DPO on preferences of the annotation app's form: each train scene's
	// image over the next one's for its caption.
	trainPrefs, heldPrefs := filepath.Join(world, "prefs_train.jsonl"), filepath.Join(world, "prefs_test.jsonl")
	for _, f := range [][2]string{{"train", trainPrefs}, {"test", heldPrefs}} {
		b, err := os.ReadFile(filepath.Join(world, f[0]+".jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		var lines []struct{ Image, Caption string }
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var x struct{ Image, Caption string }
			json.Unmarshal([]byte(l), &x)
			lines = append(lines, x)
		}
		var out strings.Builder
		for i, x := range lines {
			j, _ := json.Marshal(map[string]string{"prompt": x.Caption, "chosen": x.Image, "rejected": lines[(i+1)%len(lines)].Image})
			out.Write(append(j, '\n'))
		}
		os.WriteFile(f[1], []byte(out.String()), 0o644)
	}
	tuned := filepath.Join(dir, "t2i-dpo")
	stdout, stderr, code = runGolem(t, "imagine", "dpo", "--model", drawer, "--data", trainPrefs, "--heldout", heldPrefs, "--steps", "3", "--batch", "4",
		"--rpo-alpha", "1", "--out", tuned, "--threads", "2")
	if code != 0 || !regexp.MustCompile(`^loss=[0-9.]+ val_accuracy=[0-9.]+ val_margin=-?[0-9.]+$`).MatchString(lastLine(stdout)) ||
		!strings.Contains(stderr, "imagine dpo: 32 pairs to train on, 8 held out (40 images as 4x4 code grids)") {
		t.Fatalf("imagine dpo: exit %d\n%s%s", code, stdout, stderr)
	}
	if stdout, stderr, code = runGolem(t, "imagine", "--model", tuned, "--prompt", "one shape: a red circle", "--out", filepath.Join(dir, "tuned.png")); code != 0 {
		t.Fatalf("imagine with the tuned model: exit %d\n%s%s", code, stdout, stderr)
	}
	os.WriteFile(filepath.Join(dir, "badprefs.jsonl"), []byte(`{"prompt": "a red circle", "chosen": "a.png"}`+"\n"), 0o644)
	for i, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"imagine", "prefs", "--model", model, "--prompts", filepath.Join(world, "train.jsonl"), "--annotator", judge, "--n", "1", "--out-dir", prefs}, 2, "--n 1, want 2 to 64"},
		{[]string{"imagine", "prefs", "--model", model, "--prompts", filepath.Join(world, "train.jsonl"), "--annotator", model, "--out-dir", prefs}, 1, "--annotator"},
		{[]string{"imagine", "prefs", "--model", model, "--prompts", filepath.Join(world, "train.jsonl"), "--annotator", judge, "--score", "max", "--out-dir", prefs}, 2, `--score "max", want mean or share`},
		{[]string{"imagine", "prefs", "--model", model, "--prompts", filepath.Join(world, "train.jsonl"), "--annotator", judge, "--pairs", "some", "--out-dir", prefs}, 2, `--pairs "some", want count, exact, dominant, all`},
		{[]string{"imagine", "dpo", "--model", model, "--data", filepath.Join(dir, "badprefs.jsonl"), "--out", filepath.Join(dir, "x")}, 1, `badprefs.jsonl:1: no "rejected"`},
		{[]string{"imagine", "dpo", "--model", model, "--data", trainPrefs, "--heldout-frac", "0", "--out", filepath.Join(dir, "x")}, 2, "--heldout-frac 0"},
		{[]string{"imagine", "dpo", "--model", model, "--data", trainPrefs, "--steps", "20", "--decay-steps", "10", "--out", filepath.Join(dir, "x")}, 2, "--decay-steps 10, want 0 (--steps) or at least --steps 20"},
	} {
		_, stderr, code := runRefused(t, i == 0, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("golem %s: exit %d, stderr %q; want exit %d and %q", strings.Join(c.args, " "), code, stderr, c.code, c.want)
		}
	}
	// The generator's own output is a prompts file too; a bad line is named.
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(`{"image": "a.png", "caption": "a red circle", "scene": {"objects": []}}`+"\n"+"{\n"), 0o644)
	for i, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"imagine", "--model", model, "--prompts", filepath.Join(batch, "images.jsonl"), "--out-dir", filepath.Join(dir, "again"), "--limit", "1"}, 0, ""},
		{[]string{"imagine", "--model", model, "--prompts", bad, "--out-dir", filepath.Join(dir, "x")}, 1, "bad.jsonl:1: "},
		{[]string{"imagine", "--model", model, "--prompts", filepath.Join(world, "test.jsonl"), "--out", png}, 2, "without --prompt and --out"},
		{[]string{"imagine", "--model", model, "--prompts", filepath.Join(world, "test.jsonl")}, 2, "-out-dir"},
		{[]string{"imagine", "--model", model, "--prompts", filepath.Join(world, "test.jsonl"), "--out-dir", filepath.Join(dir, "x"), "--limit", "-1"}, 2, "--limit -1"},
	} {
		_, stderr, code := runRefused(t, i == 0, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("golem %s: exit %d, stderr %q; want exit %d and %q", strings.Join(c.args, " "), code, stderr, c.code, c.want)
		}
	}

	// Reranking by a CLIP model (a few steps of golem clip train).
	t.Run("rerank", func(t *testing.T) {
		tok := shared.Path(t, "data/tokenizer/clip/bpe_simple_vocab_16e6.txt.gz")
		clipDir := filepath.Join(dir, "clip")
		if testing.Short() {
			// TestCLIPTrainResume's run of clip train (once per test
			// binary), on another shapes world: a reranker is a reranker.
			clipDir, _, _ = trainedCLIP(t)
		} else if stdout, stderr, code := runGolem(t, "clip", "train", "--data", filepath.Join(world, "train.jsonl"), "--tokenizer", tok, "--image-size", "16",
			"--batch", "8", "--steps", "2", "--eval-every", "0", "--out", clipDir, "--threads", "2"); code != 0 {
			t.Fatalf("clip train: exit %d\n%s%s", code, stdout, stderr)
		}
		stdout, stderr, code := runGolem(t, "imagine", "--model", drawer, "--prompt", "one shape: a red circle", "--n", "4", "--rerank", clipDir, "--out", png)
		if code != 0 {
			t.Fatalf("imagine --rerank: exit %d\n%s%s", code, stdout, stderr)
		}
		if n := len(regexp.MustCompile(`(?m)^sample \d: clip_score=-?[0-9.]+$`).FindAllString(stdout, -1)); n != 4 ||
			!regexp.MustCompile(`sample \d \(the highest CLIP score, -?[0-9.]+\) written to`).MatchString(lastLine(stdout)) {
			t.Fatalf("imagine --rerank printed\n%s", stdout)
		}
		// Batch mode with reranking: images.jsonl (the picks) and
		// first.jsonl (sample 0 of the same draws), both read by eval judge.
		out := filepath.Join(dir, "batch-rerank")
		stdout, stderr, code = runGolem(t, "imagine", "--model", drawer, "--prompts", filepath.Join(world, "test.jsonl"), "--out-dir", out,
			"--limit", "5", "--n", "3", "--rerank", clipDir)
		if code != 0 || !strings.Contains(stdout, "5 images (3 samples each) written to") || !strings.Contains(lastLine(stdout), "first.jsonl") {
			t.Fatalf("imagine --prompts --rerank: exit %d\n%s%s", code, stdout, stderr)
		}
		checkImagineBatch(t, world, judge, filepath.Join(out, "images.jsonl"), 5, 1)
		checkImagineBatch(t, world, judge, filepath.Join(out, "first.jsonl"), 5, 1)
	})
	if err := os.RemoveAll(filepath.Join(model, "vq")); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runGolem(t, "imagine", "--model", model, "--prompt", "a red circle", "--out", png); code != 1 || !strings.Contains(stderr, "no VQ-VAE folder vq/") {
		t.Errorf("a folder without vq/: exit %d, stderr %q", code, stderr)
	}
}

// smallT2I saves a random text-to-image model of 1 block of width 32 over
// the tokenizer and VQ-VAE of the model folder from into out.
func smallT2I(t *testing.T, from, out string) string {
	t.Helper()
	be := cpu.New()
	m, err := dalle.Load(be, from)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Config
	small, err := dalle.New(be, dalle.NewConfig(c.Text.Vocab, c.Pad, c.TextLength, c.Grid, c.Codes, 32, 1, 2), m.Tok, m.VQ, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := small.Save(out); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkImagineBatch checks a batch mode's JSONL file: want lines, line k
// for the split's caption k with the scene of its image carried through,
// its image a PNG in the file's folder, and golem eval judge reads it.
func checkImagineBatch(t *testing.T, world, judge, file string, want, per int) {
	t.Helper()
	caps, err := os.ReadFile(filepath.Join(world, "test.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := shapes.ReadScenes(filepath.Join(world, "test_scenes.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	scenes := map[string][]shapes.ObjectRecord{}
	for _, r := range recs {
		scenes[r.Image] = r.Objects
	}
	capLines := strings.Split(strings.TrimSpace(string(caps)), "\n")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != want {
		t.Fatalf("%s: %d lines, want %d", file, len(lines), want)
	}
	for k, l := range lines {
		var got struct {
			Image, Caption string
			Scene          struct{ Objects []shapes.ObjectRecord }
		}
		var src struct{ Image, Caption string }
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatalf("%s:%d: %v", file, k+1, err)
		}
		json.Unmarshal([]byte(capLines[k/per]), &src)
		if got.Caption != src.Caption || !reflect.DeepEqual(got.Scene.Objects, scenes[src.Image]) || len(got.Scene.Objects) == 0 {
			t.Errorf("%s:%d: %s, want caption %q and the objects of %s: %v", file, k+1, l, src.Caption, src.Image, scenes[src.Image])
		}
		if _, err := vision.ReadFile(filepath.Join(filepath.Dir(file), got.Image), vision.Limits{}); err != nil {
			t.Errorf("%s:%d: %v", file, k+1, err)
		}
	}
	stdout, stderr, code := runGolem(t, "eval", "judge", "--judge", judge, "--data", file)
	if code != 0 || !regexp.MustCompile(`(?m)^all +`+strconv.Itoa(want)+` `).MatchString(stdout) {
		t.Fatalf("eval judge --data %s: exit %d\n%s%s", file, code, stdout, stderr)
	}
	judgeLast(t, stdout)
}

// judgeImages is the image of each line of a file eval judge reads.
func judgeImages(t *testing.T, path string) []string {
	var out []string
	for _, l := range jsonLines[struct{ Image string }](t, path) {
		out = append(out, l.Image)
	}
	return out
}

type prefLine struct{ Prompt, Chosen, Rejected string }

func prefLines(t *testing.T, path string) []prefLine { return jsonLines[prefLine](t, path) }

// jsonLines reads a JSONL file's lines as Ts, blank lines skipped.
func jsonLines[T any](t *testing.T, path string) []T {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for i, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var v T
		if l != "" {
			if err := json.Unmarshal([]byte(l), &v); err != nil {
				t.Fatalf("%s:%d: %v", path, i+1, err)
			}
			out = append(out, v)
		}
	}
	return out
}
