package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/model/clip"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/model/vit"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/store"
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
	// chat --image's first answer, and its first after /reset, are
	// generate --image's answers to the same questions: the image goes in
	// the first turn again after /reset.
	chat := golemOut(t, "", "What colour is the circle?\n/reset\nHow many shapes are there?\n", "chat", "--model", instruct, "--image", img, "--max-tokens", "3", "--temperature", "0")
	ask := func(q string) string {
		return run("generate", "--model", instruct, "--image", img, "--prompt", q, "--max-tokens", "3", "--temperature", "0")
	}
	if want := ask("What colour is the circle?") + "(history cleared)\n" + ask("How many shapes are there?"); chat != want {
		t.Fatalf("chat --image printed %q; want generate --image's answers %q", chat, want)
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
		if testing.Short() {
			t.Skip("full run only (go test ./...): vlm on COCO mini decodes its 79 JPEG photos, 1.7 s of CPU; the shapes world's vlm align and generate --image above cover the command, data/vision's TestCOCOCaptionsMini the captions JSON and the photos")
		}
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
	// --ask descriptions: "Describe the image." about each scene, each
	// sampled description rewarded by the annotator's score of it
	// (metrics.jsonl's "description", 0 to 1, the reward).
	grpoDesc := filepath.Join(dir, "grpo-desc")
	stdout, stderr, code = runGolem(t, "grpo", "--model", instruct, "--data", world, "--limit", "2", "--ask", "descriptions", "--steps", "1", "--batch", "2", "--group", "2", "--max-tokens", "6", "--out", grpoDesc)
	if code != 0 || !regexp.MustCompile(`grpo: 2 descriptions of .*shapes's train scenes to ask for`).MatchString(stderr) {
		t.Fatalf("grpo --ask descriptions: exit %d\n%s%s", code, stdout, stderr)
	}
	if b, err = os.ReadFile(filepath.Join(grpoDesc, "metrics.jsonl")); err != nil || !regexp.MustCompile(`"description":[0-9.e-]+,.*"reward":[0-9.e-]+`).Match(b) || strings.Contains(string(b), `"correct"`) {
		t.Fatalf("grpo --ask descriptions metrics.jsonl (%v):\n%s", err, b)
	}
	// eval vlm --after true asks each question after the scene's own
	// description: the caption is the model's either way.
	own, truth := run("eval", "vlm", "--model", instruct, "--data", world, "--split", "test", "--limit", "2", "--max-tokens", "3"),
		run("eval", "vlm", "--model", instruct, "--data", world, "--split", "test", "--limit", "2", "--max-tokens", "3", "--after", "true")
	if capOf := regexp.MustCompile(`caption_acc=\S+`); capOf.FindString(own) == "" || capOf.FindString(own) != capOf.FindString(truth) {
		t.Fatalf("eval vlm --after true:\n%s\nwithout:\n%s", truth, own)
	}
	// --train projector,lm trains the projector too (train's
	// TestGRPOVLMProjector checks that it moves; a random model's answers
	// here are all wrong, so nothing does): the run says so, OUT's model
	// card too, and the tower stays stage 2's; --skip-uniform logs the
	// share of groups kept.
	if !testing.Short() { // full run only: grpo above covers the command, train's TestGRPOVLMProjector the projector's training
		grpoProj := filepath.Join(dir, "grpo-proj")
		stdout, stderr, code = runGolem(t, "grpo", "--model", instruct, "--data", world, "--limit", "2", "--steps", "2", "--batch", "2", "--group", "2", "--max-tokens", "3", "--train", "projector,lm", "--skip-uniform", "--out", grpoProj)
		card, _ := os.ReadFile(filepath.Join(grpoProj, "README.md"))
		metrics, _ := os.ReadFile(filepath.Join(grpoProj, "metrics.jsonl"))
		if code != 0 || !strings.Contains(stderr, "full, the projector too") || !strings.Contains(string(card), "full, the projector too") || !strings.Contains(string(metrics), `"groups_kept":`) {
			t.Fatalf("grpo --train projector,lm: exit %d\n%s%s\nREADME.md:\n%s", code, stdout, stderr, card)
		}
		before, err := llava.Load(be, instruct)
		if err != nil {
			t.Fatal(err)
		}
		after, err := llava.Load(be, grpoProj)
		if err != nil {
			t.Fatal(err)
		}
		if !sameWeights(before.Vision.Params(), after.Vision.Params()) {
			t.Fatal("grpo --train projector,lm moved the vision tower")
		}
	}
	// eval vlm --samples: the greedy answer's mark and pass@k per kind.
	out = run("eval", "vlm", "--model", instruct, "--data", world, "--split", "test", "--limit", "2", "--max-tokens", "3", "--samples", "4")
	if !regexp.MustCompile(`(?m)^  kind +questions greedy pass@1 pass@2 pass@4 vote@4 answers chance@4\n(  (colour|shape|count|position) .*\n)+  all +\d+( [01]\.\d{4}){5} +- [01]\.\d{4}$`).MatchString(out) ||
		!regexp.MustCompile(`^greedy=[01]\.\d{4} pass@1=[01]\.\d{4} pass@4=[01]\.\d{4}$`).MatchString(lastLine(out)) {
		t.Fatalf("eval vlm --samples printed\n%s", out)
	}

	// Stage 2 with LoRA writes an adapter folder that generate --image and
	// eval vlm take; dpo and reward train on the shapes world's simulated
	// image labels from the LLaVA folder.
	lora, dpo, rm := filepath.Join(dir, "lora"), filepath.Join(dir, "dpo"), filepath.Join(dir, "rm")
	for _, f := range []string{"train_prefs.jsonl", "train_rankings.jsonl"} { // the first 16 labels, beside their images
		b, err := os.ReadFile(filepath.Join(world, f))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitAfter(string(b), "\n")
		if err := os.WriteFile(filepath.Join(world, "some_"+f), []byte(strings.Join(lines[:16], "")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run("vlm", "--stage", "instruct", "--model", align, "--data", filepath.Join(world, "train_llava.json"), "--out", lora, "--steps", "2", "--batch", "2", "--lora-r", "4", "--lora-alpha", "8")
	if _, err := os.Stat(filepath.Join(lora, "adapter_model.safetensors")); err != nil {
		t.Fatalf("vlm --lora-r: %v", err)
	}
	run("generate", "--model", lora, "--image", img, "--prompt", "Describe the image.", "--max-tokens", "4", "--temperature", "0")
	// The adapter without its tokenizer (PEFT saves none) takes its
	// base's: generate --image and eval vlm give what they give with it.
	bare := filepath.Join(dir, "lora-bare")
	os.Mkdir(bare, 0o755)
	for _, f := range []string{"adapter_config.json", "adapter_model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(lora, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bare, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"generate", "--image", img, "--prompt", "Describe the image.", "--max-tokens", "4", "--temperature", "0"},
		{"eval", "vlm", "--data", world, "--split", "test", "--limit", "1", "--max-tokens", "3"},
	} {
		if a, b := run(append(args, "--model", lora)...), run(append(args, "--model", bare)...); a != b {
			t.Errorf("golem %s: %q with the adapter's tokenizer, %q without", strings.Join(args, " "), a, b)
		}
	}
	run("vlm", "--stage", "instruct", "--model", bare, "--data", filepath.Join(world, "train_llava.json"), "--out", filepath.Join(dir, "from-bare"), "--steps", "1", "--batch", "2")
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

	// The loop with people's labels: image prompts imported into a store
	// (one with <image>, one without: the image then goes before the
	// text), ranked there, exported by golem export (images/SHA256.png
	// beside the files), and the exports train reward, dpo and ppo on the
	// LLaVA model.
	t.Run("labels", func(t *testing.T) {
		ldir := t.TempDir()
		prompts := filepath.Join(ldir, "prompts.jsonl")
		if err := os.WriteFile(prompts, []byte(`{"prompt": "<image>\nWhat colour is the circle?", "images": ["`+img+`"]}`+"\n"+
			`{"prompt": "How many shapes are there?", "images": ["`+filepath.Join(world, "images", "test", "000001.png")+`"]}`+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		db := "sqlite:" + filepath.Join(ldir, "labels.db")
		if out := run("prompts", "import", "--db", db, prompts); !strings.Contains(out, "2 prompts added, 0 already there, 2 new images") {
			t.Fatalf("prompts import: %s", out)
		}
		ctx := context.Background()
		st, err := store.Open(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		u, err := st.CreateUser(ctx, store.NewUser{Username: "ann", Password: "ann-password"})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			p, err := st.NextPrompt(ctx, u.ID, store.TaskRank)
			if err != nil || p.Image == "" {
				t.Fatalf("next prompt %+v, %v; want one with an image", p, err)
			}
			r := store.Ranking{PromptID: p.ID, AnnotatorID: u.ID, Order: []int{2, 0, 1}}
			for _, a := range []string{"red", "two", "blue"} {
				r.Responses = append(r.Responses, store.Response{Model: "human", Content: a})
			}
			if _, err := st.AddRanking(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		st.Close()
		prefs, ranks := filepath.Join(ldir, "export", "prefs.jsonl"), filepath.Join(ldir, "export", "rankings.jsonl")
		run("export", "--db", db, "--kind", "preferences", "--out", prefs)
		run("export", "--db", db, "--kind", "rankings", "--out", ranks)
		if b, _ := os.ReadFile(prefs); strings.Count(string(b), `"images":["images/`) != 6 {
			t.Fatalf("preferences export:\n%s", b)
		}
		if out := run("dpo", "--model", instruct, "--data", prefs, "--out", filepath.Join(ldir, "dpo"), "--steps", "2", "--batch", "2"); !strings.HasPrefix(lastLine(out), "loss=") {
			t.Fatalf("dpo on exported labels printed\n%s", out)
		}
		rm2 := filepath.Join(ldir, "rm")
		if out := run("reward", "--model", instruct, "--data", ranks, "--out", rm2, "--steps", "2", "--batch", "2"); !strings.HasPrefix(lastLine(out), "heldout_pairs=") {
			t.Fatalf("reward on exported labels printed\n%s", out)
		}
		run("ppo", "--model", instruct, "--reward", rm2, "--data", ranks, "--out", filepath.Join(ldir, "ppo"),
			"--steps", "1", "--batch", "2", "--minibatches", "1", "--epochs", "1", "--max-tokens", "3")
		if _, err := os.Stat(filepath.Join(ldir, "ppo", "model.safetensors")); err != nil {
			t.Fatalf("ppo on exported prompts: %v", err)
		}
	})
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
		{[]string{"grpo", "--model", instruct, "--data", world, "--train", "tower", "--out", filepath.Join(dir, "g")}, "want lm or projector,lm"},
		{[]string{"grpo", "--model", instruct, "--data", world, "--train", "projector,lm", "--lora-r", "4", "--out", filepath.Join(dir, "g")}, "not LoRA"},
		{[]string{"eval", "vlm", "--model", instruct, "--data", world, "--samples", "4", "--marks", filepath.Join(dir, "m")}, "not with --samples"},
		{[]string{"eval", "vlm", "--model", lmDir, "--data", world, "--samples", "4"}, "not a LLaVA folder"},
		{[]string{"eval", "vlm", "--model", instruct, "--data", world, "--after", "mine"}, "want own or true"},
		{[]string{"eval", "vlm", "--model", instruct, "--data", world, "--after", "true", "--samples", "4"}, "--after true goes without --samples"},
		{[]string{"grpo", "--model", instruct, "--data", world, "--ask", "captions", "--out", filepath.Join(dir, "g")}, "want questions or descriptions"},
		{[]string{"grpo", "--model", lmDir, "--data", "builtin", "--ask", "descriptions", "--out", filepath.Join(dir, "g")}, "--ask is for a shapes world"},
	} {
		stdout, stderr, code := runRefused(t, i == 0, c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("golem %s: exit %d, stderr %q; want a failure naming %q\n%s", strings.Join(c.args, " "), code, stderr, c.want, stdout)
		}
	}
}

// sameWeights reports whether a and b (the same model's parameters, in
// one order) hold the same values.
func sameWeights(a, b []nn.Named) bool {
	for i := range a {
		if !slices.Equal(a[i].Tensor.Host(), b[i].Tensor.Host()) {
			return false
		}
	}
	return true
}
