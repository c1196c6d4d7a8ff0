package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/model/clip"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/vit"
	"github.com/golem-ml/golem/tokenizer"
)

// TestVLMCommands runs LLaVA's two stages through the real binary on a
// random tiny CLIP and language model, then generate and chat with an
// image, stage 2 with LoRA, dpo and reward on the shapes world's
// simulated image labels, and the errors of a text-only model and of a
// file that is no image.
func TestVLMCommands(t *testing.T) {
	dir := t.TempDir()
	world := filepath.Join(dir, "shapes")
	if _, err := shapes.Write(shapes.Options{Out: world, Seed: 1, Size: 16, Train: 16, Test: 2, PerClass: 1}); err != nil {
		t.Fatal(err)
	}
	be := cpu.New()
	vc := vit.Config{Arch: vit.CLIP, Image: 16, Patch: 8, Channels: 3, Hidden: 16, Layers: 1, Heads: 2, Intermediate: 32, Activation: "gelu", Eps: 1e-5}
	tc := clip.TextConfig{Vocab: 64, Context: 8, Hidden: 16, Layers: 1, Heads: 2, Intermediate: 32, Activation: "gelu", Eps: 1e-5, BOS: 62, EOS: 63, Pad: 63}
	cm, err := clip.New(be, clip.Config{Vision: vc, Text: tc, Projection: 16, LogitScaleInit: 2.6592}, 1)
	if err != nil {
		t.Fatal(err)
	}
	clipDir := filepath.Join(dir, "clip")
	if err := cm.Save(clipDir); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join(world, "train.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Train(tokenizer.TrainOptions{Texts: []string{string(text)}, VocabSize: 300})
	if err != nil {
		t.Fatal(err)
	}
	lm, err := gpt.New(be, gpt.Config{Arch: "llama", Vocab: tok.VocabSize(), Context: 512, Layers: 1, Heads: 2, KVHeads: 2, Hidden: 32, Intermediate: 64,
		Eps: 1e-5, Activation: "silu", RopeTheta: 1e4, BOS: -1, EOS: -1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	lmDir := filepath.Join(dir, "lm")
	if err := lm.Save(lmDir); err != nil {
		t.Fatal(err)
	}
	if err := tok.Save(lmDir); err != nil {
		t.Fatal(err)
	}

	align, instruct := filepath.Join(dir, "align"), filepath.Join(dir, "instruct")
	run := func(args ...string) string {
		t.Helper()
		stdout, stderr, code := runGolem(t, args...)
		if code != 0 {
			t.Fatalf("golem %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
		}
		return stdout
	}
	out := run("vlm", "--stage", "align", "--vision", clipDir, "--lm", lmDir, "--data", filepath.Join(world, "train.jsonl"), "--out", align, "--steps", "3", "--batch", "4")
	if !strings.HasPrefix(lastLine(out), "loss=") {
		t.Fatalf("vlm align printed %q, want loss=X last", out)
	}
	run("vlm", "--stage", "instruct", "--model", align, "--data", filepath.Join(world, "train_llava.json"), "--out", instruct, "--steps", "2", "--batch", "2")
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "metrics.jsonl"} {
		if _, err := os.Stat(filepath.Join(instruct, f)); err != nil {
			t.Fatalf("vlm wrote no %s: %v", f, err)
		}
	}
	img := filepath.Join(world, "images", "test", "000000.png")
	run("generate", "--model", instruct, "--image", img, "--prompt", "USER: <image>\nDescribe the image.\nASSISTANT:", "--max-tokens", "4", "--temperature", "0")
	chat := golemOut(t, "", "What colour is the circle?\n/reset\nHow many shapes are there?\n", "chat", "--model", instruct, "--image", img, "--max-tokens", "3", "--temperature", "0")
	if !strings.Contains(chat, "(history cleared)") {
		t.Fatalf("chat --image printed %q", chat)
	}

	marks := filepath.Join(dir, "instruct.marks")
	for _, m := range []string{instruct, lmDir} { // the VLM, and the base LM answering from the text alone
		args := []string{"eval", "vlm", "--model", m, "--data", world, "--split", "test", "--limit", "1", "--max-tokens", "3"}
		if m == instruct {
			args = append(args, "--marks", marks)
		} else {
			args = append(args, "--against", marks)
		}
		out := run(args...)
		if !regexp.MustCompile(`^caption_acc=[01]\.\d{4} vqa_acc=[01]\.\d{4}$`).MatchString(lastLine(out)) || !strings.Contains(out, "1 scenes of test") {
			t.Fatalf("eval vlm --model %s printed\n%s", m, out)
		}
		// --marks writes one mark a question; --against prints the paired
		// difference with those marks.
		if b, err := os.ReadFile(marks); err != nil || !regexp.MustCompile(`^[01]+\n$`).Match(b) {
			t.Fatalf("eval vlm --marks wrote %q, %v", b, err)
		}
		if m == lmDir && !regexp.MustCompile(`against .*instruct\.marks: vqa_acc [+-][01]\.\d{4}, standard error of the paired difference [01]\.\d{4}`).MatchString(out) {
			t.Fatalf("eval vlm --against printed\n%s", out)
		}
	}
	// Marks of another split or --limit are refused, naming the file.
	if _, stderr, code := runGolem(t, "eval", "vlm", "--model", instruct, "--data", world, "--split", "test", "--limit", "2", "--max-tokens", "3", "--against", marks); code == 0 || !strings.Contains(stderr, "instruct.marks marks") {
		t.Fatalf("eval vlm --against with another --limit: exit %d, %s", code, stderr)
	}

	// A real photo set: stage 1 on COCO mini's captions JSON (JPEG photos,
	// five captions an image), and generate --image on one of its photos.
	t.Run("coco", func(t *testing.T) {
		captions := shared.Path(t, "data/images/coco_mini_val2017/captions_val2017.json")
		coco := filepath.Join(dir, "coco-align")
		run("vlm", "--stage", "align", "--vision", clipDir, "--lm", lmDir, "--data", captions, "--out", coco, "--steps", "1", "--batch", "2")
		photo := filepath.Join(filepath.Dir(captions), "000000000139.jpg")
		if out := run("generate", "--model", coco, "--image", photo, "--prompt", "Describe the image.", "--max-tokens", "4", "--temperature", "0"); strings.Contains(out, "golem:") {
			t.Fatalf("generate --image on a COCO photo printed %q", out)
		}
	})

	// data shapes-prefs samples the model's own answers and writes pairs
	// dpo trains on, images relative to the file.
	op := filepath.Join(dir, "prefs", "onpolicy.jsonl")
	if err := os.MkdirAll(filepath.Dir(op), 0o755); err != nil {
		t.Fatal(err)
	}
	out = run("data", "shapes-prefs", "--model", instruct, "--data", world, "--limit", "2", "--k", "3", "--max-tokens", "3", "--out", op)
	if m := regexp.MustCompile(`^pairs=(\d+) `).FindStringSubmatch(lastLine(out)); m == nil || m[1] == "0" || !strings.Contains(out, "2 scenes of train") {
		t.Fatalf("data shapes-prefs printed\n%s", out)
	}
	run("dpo", "--model", instruct, "--data", op, "--steps", "1", "--batch", "2", "--out", filepath.Join(dir, "dpo-onpolicy"))
	// --on corrections: each greedy description (--k 0) against its
	// correction, which is a whole description of the scene that scores 1.
	cp := filepath.Join(dir, "prefs", "corrections.jsonl")
	out = run("data", "shapes-prefs", "--on", "corrections", "--k", "0", "--model", instruct, "--data", world, "--limit", "2", "--max-tokens", "3", "--out", cp)
	if lastLine(out) != "pairs=2 "+cp || !strings.Contains(out, "2 scenes of train, greedy descriptions' mean score") {
		t.Fatalf("data shapes-prefs --on corrections printed\n%s", out)
	}
	cds, err := data.Read(cp, data.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, trainScenes, err := shapes.ReadScenes(filepath.Join(world, "train_scenes.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for i, ex := range cds.Examples {
		p := ex.Pairs()[0]
		if c, r := p.Chosen[0].Content, p.Rejected[0].Content; c == r || trainScenes[i].DescriptionScore(c) != 1 {
			t.Fatalf("correction pair %d: %q over %q (score %v)", i, c, r, trainScenes[i].DescriptionScore(c))
		}
	}

	// grpo on a shapes world: its questions asked as eval vlm asks them
	// (after the model's own description), each sampled answer marked as
	// eval vlm marks it (metrics.jsonl's "correct", the reward); OUT is a
	// LLaVA folder eval vlm reads.
	grpo := filepath.Join(dir, "grpo")
	stdout, stderr, code := runGolem(t, "grpo", "--model", instruct, "--data", world, "--limit", "2", "--steps", "2", "--batch", "2", "--group", "2", "--max-tokens", "3", "--out", grpo)
	if code != 0 || !regexp.MustCompile(`grpo: \d+ questions about .*shapes's train scenes, after the model's own descriptions`).MatchString(stderr) {
		t.Fatalf("grpo on a shapes world: exit %d\n%s%s", code, stdout, stderr)
	}
	b, err := os.ReadFile(filepath.Join(grpo, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 2 || !strings.Contains(lines[0], `"correct":`) || !strings.Contains(lines[0], `"reward":`) {
		t.Fatalf("grpo metrics.jsonl:\n%s", b)
	}
	run("eval", "vlm", "--model", grpo, "--data", world, "--split", "test", "--limit", "1", "--max-tokens", "3")

	// Stage 2 with LoRA writes an adapter folder that generate --image and
	// eval vlm take; dpo and reward train on the shapes world's simulated
	// image labels from the LLaVA folder.
	lora, dpo, rm := filepath.Join(dir, "lora"), filepath.Join(dir, "dpo"), filepath.Join(dir, "rm")
	for _, f := range []string{"train_prefs.jsonl", "train_rankings.jsonl"} { // the first 40 labels, beside their images
		b, err := os.ReadFile(filepath.Join(world, f))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitAfter(string(b), "\n")
		if err := os.WriteFile(filepath.Join(world, "some_"+f), []byte(strings.Join(lines[:40], "")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run("vlm", "--stage", "instruct", "--model", align, "--data", filepath.Join(world, "train_llava.json"), "--out", lora, "--steps", "2", "--batch", "2", "--lora-r", "4", "--lora-alpha", "8")
	if _, err := os.Stat(filepath.Join(lora, "adapter_model.safetensors")); err != nil {
		t.Fatalf("vlm --lora-r: %v", err)
	}
	run("generate", "--model", lora, "--image", img, "--prompt", "Describe the image.", "--max-tokens", "4", "--temperature", "0")
	out = run("dpo", "--model", instruct, "--data", filepath.Join(world, "some_train_prefs.jsonl"), "--out", dpo, "--steps", "2", "--batch", "2")
	if !regexp.MustCompile(`^loss=\d+\.\d{4} val_accuracy=`).MatchString(lastLine(out)) {
		t.Fatalf("dpo on a LLaVA model printed\n%s", out)
	}
	out = run("reward", "--model", instruct, "--data", filepath.Join(world, "some_train_rankings.jsonl"), "--out", rm, "--steps", "2", "--batch", "2")
	if !strings.HasPrefix(lastLine(out), "heldout_pairs=") {
		t.Fatalf("reward on a LLaVA model printed\n%s", out)
	}
	// ppo --lora-r on the LLaVA folder writes an adapter folder over it
	// that generate --image reads.
	ppoLoRA := filepath.Join(dir, "ppo-lora")
	run("ppo", "--model", instruct, "--reward", rm, "--data", filepath.Join(world, "some_train_rankings.jsonl"), "--out", ppoLoRA,
		"--steps", "2", "--batch", "2", "--minibatches", "1", "--epochs", "1", "--max-tokens", "3", "--lora-r", "4")
	if _, err := os.Stat(filepath.Join(ppoLoRA, "adapter_model.safetensors")); err != nil {
		t.Fatalf("ppo --lora-r on a LLaVA model: %v", err)
	}
	run("generate", "--model", ppoLoRA, "--image", img, "--prompt", "Describe the image.", "--max-tokens", "4", "--temperature", "0")
	for _, m := range []string{lora, dpo} {
		out := run("eval", "vlm", "--model", m, "--data", world, "--split", "test", "--limit", "1", "--max-tokens", "3")
		if !regexp.MustCompile(`^caption_acc=[01]\.\d{4} vqa_acc=[01]\.\d{4}$`).MatchString(lastLine(out)) {
			t.Fatalf("eval vlm --model %s printed\n%s", m, out)
		}
	}

	for i, c := range []struct {
		args []string
		want string
	}{
		{[]string{"vlm", "--stage", "align", "--vision", clipDir, "--lm", lmDir, "--data", filepath.Join(world, "train.jsonl"), "--out", filepath.Join(dir, "y"), "--lora-r", "4"}, "stage \"instruct\""},
		{[]string{"generate", "--model", lmDir, "--image", img, "--prompt", "hi"}, "is a text-only model"},
		{[]string{"generate", "--model", instruct, "--image", filepath.Join(world, "train.jsonl"), "--prompt", "hi"}, "train.jsonl"},
		{[]string{"generate", "--model", instruct, "--image", img, "--prompt", "<image><image>"}, "want once"},
		{[]string{"vlm", "--stage", "instruct", "--model", align, "--data", filepath.Join(world, "train.jsonl"), "--out", filepath.Join(dir, "x")}, "no conversation"},
		{[]string{"data", "shapes-prefs", "--model", lmDir, "--data", world, "--out", filepath.Join(dir, "p.jsonl")}, "not a LLaVA folder"},
		{[]string{"data", "shapes-prefs", "--model", instruct, "--data", filepath.Join(dir, "nope"), "--out", filepath.Join(dir, "p.jsonl")}, "train_scenes.jsonl"},
		{[]string{"data", "shapes-prefs", "--on", "captions", "--model", instruct, "--data", world, "--out", filepath.Join(dir, "p.jsonl")}, "want answers, descriptions or corrections"},
		{[]string{"data", "shapes-prefs", "--on", "corrections", "--k", "-1", "--model", instruct, "--data", world, "--out", filepath.Join(dir, "p.jsonl")}, "want at least 0 samples"},
		{[]string{"data", "shapes-prefs", "--on", "descriptions", "--greedy-wrong", "--model", instruct, "--data", world, "--out", filepath.Join(dir, "p.jsonl")}, "--greedy-wrong is for --on answers"},
		{[]string{"data", "shapes-prefs", "--on", "descriptions", "--model", instruct, "--data", filepath.Join(dir, "nope"), "--out", filepath.Join(dir, "p.jsonl")}, "train_scenes.jsonl"},
		{[]string{"eval", "vlm", "--model", instruct, "--data", world, "--against", filepath.Join(world, "train.jsonl")}, "not a --marks file"},
		{[]string{"grpo", "--model", lmDir, "--data", world, "--out", filepath.Join(dir, "g")}, "is not a LLaVA folder"},
		{[]string{"grpo", "--model", instruct, "--data", world, "--split", "nope", "--out", filepath.Join(dir, "g")}, "nope_scenes.jsonl"},
	} {
		stdout, stderr, code := runRefused(t, i == 0, c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("golem %s: exit %d, stderr %q; want a failure naming %q\n%s", strings.Join(c.args, " "), code, stderr, c.want, stdout)
		}
	}
}
