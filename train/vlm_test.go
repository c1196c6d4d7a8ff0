package train

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/model/clip"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/model/load"
	"github.com/golem-ml/golem/model/vit"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// vlmFixture copies vlmWorld's folders into a folder of the test's own
// and returns the shapes, CLIP and LM folders in it.
func vlmFixture(t *testing.T) (data, clipDir, lmDir string) {
	t.Helper()
	world, err := vlmWorld()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := copyWorld(root, world, filepath.Join("shapes", "images"), filepath.Join("shapes", "classes")); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "shapes"), filepath.Join(root, "clip"), filepath.Join(root, "lm")
}

// copyWorld copies the folder src into dst, but for the folders links
// (relative to src), which become links to src's: a shapes world's images
// and classes, which no test writes into (copying their files took a
// quarter of a second a test).
func copyWorld(dst, src string, links ...string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		switch {
		case slices.Contains(links, rel):
			if err := os.Symlink(path, to); err != nil {
				return err
			}
			return fs.SkipDir
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
}

// vlmWorld writes, once per test binary (TestMain removes it), a small
// shapes world (16 x 16 images), a random tiny CLIP and a tiny Llama
// pretrained for 60 steps on the captions (a random language model's
// outputs hardly depend on its inputs, so stage 1 could not teach the
// projector anything) into the folders shapes, clip and lm of a
// temporary folder. Eleven tests made it each, 6 s of the package's CPU.
var vlmWorld = sync.OnceValues(func() (string, error) {
	root, err := fixtureDir("vlm")
	if err != nil {
		return "", err
	}
	data := filepath.Join(root, "shapes")
	if _, err := shapes.Write(shapes.Options{Out: data, Seed: 1, Size: 16, Train: 64, Test: 8, PerClass: 1}); err != nil {
		return "", err
	}
	if err := shortConversations(filepath.Join(data, "train_llava.json")); err != nil {
		return "", err
	}
	be := cpu.New()
	vc := vit.Config{Arch: vit.CLIP, Image: 16, Patch: 8, Channels: 3, Hidden: 16, Layers: 1, Heads: 2, Intermediate: 32, Activation: "gelu", Eps: 1e-5}
	tc := clip.TextConfig{Vocab: 64, Context: 8, Hidden: 16, Layers: 1, Heads: 2, Intermediate: 32, Activation: "gelu", Eps: 1e-5, BOS: 62, EOS: 63, Pad: 63}
	cm, err := clip.New(be, clip.Config{Vision: vc, Text: tc, Projection: 16, LogitScaleInit: 2.6592}, 1)
	if err != nil {
		return "", err
	}
	if err := cm.Save(filepath.Join(root, "clip")); err != nil {
		return "", err
	}
	// The language model: a tiny Llama pretrained briefly on the captions.
	var text strings.Builder
	ds, err := vision.Open(filepath.Join(data, "train.jsonl"), vision.Limits{})
	if err != nil {
		return "", err
	}
	for i := range ds.Len() {
		im, err := ds.Load(i)
		if err != nil {
			ds.Close()
			return "", err
		}
		text.WriteString(llava.UserTurn("Describe the image.") + " " + im.Caption + "\n")
	}
	ds.Close()
	scratch, err := fixtureDir("vlm-scratch") // the corpus and its token cache
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(scratch)
	corpus := filepath.Join(scratch, "captions.txt")
	if err := os.WriteFile(corpus, []byte(text.String()), 0o644); err != nil {
		return "", err
	}
	c := gpt.Config{Arch: "llama", Context: 512, Layers: 1, Heads: 2, KVHeads: 2, Hidden: 32, Intermediate: 64,
		Eps: 1e-5, Activation: "silu", RopeTheta: 1e4, BOS: -1, EOS: -1}
	_, err = Pretrain(context.Background(), PretrainOptions{Backend: be, Data: []string{corpus}, VocabSize: 300, CacheDir: filepath.Join(scratch, "cache"), Log: io.Discard,
		Preset: Preset{Model: c, Batch: 8, Block: 64, EvalIters: 1, Loop: Config{Steps: 60, LR: 1e-2, Warmup: 5, Out: filepath.Join(root, "lm"), Quiet: true, Progress: io.Discard}}})
	if err != nil {
		return "", err
	}
	return root, nil
})

// shortConversations keeps, under -short, the first two exchanges (the
// description, then one question and its answer) of each conversation in
// the LLaVA file path. The shapes world's conversations are of 10 to 13
// exchanges, 300 to 510 tokens with the image (many run into the 512-token
// context and are cut): the instruct stage's steps, and its evaluations,
// cost about a third on 75 to 260 tokens, and still train on a turn after
// the first.
func shortConversations(path string) error {
	if !testing.Short() {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var recs []vision.LLaVA
	if err := json.Unmarshal(b, &recs); err != nil {
		return err
	}
	for i := range recs {
		recs[i].Conversations = recs[i].Conversations[:min(len(recs[i].Conversations), 4)]
	}
	if b, err = json.Marshal(recs); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// Stage 1 then stage 2 from stage 1's folder: each lowers the loss on
// its training set (val_loss over all of it, so no batch's noise),
// stage 1 changes the projector alone, stage 2 the language model too,
// and each saves a LLaVA folder that loads.
func TestVLMStagesTrain(t *testing.T) {
	data, clipDir, lmDir := vlmFixture(t)
	run := func(stage, from, spec string, steps int) (string, float64) {
		out := filepath.Join(t.TempDir(), "out")
		res, err := VLM(context.Background(), VLMOptions{Backend: cpu.New(), Stage: stage, Model: from, Vision: clipDir, LM: lmDir,
			Data: spec, EvalData: spec, Batch: 8, Log: io.Discard,
			Loop: Config{Steps: steps, LR: 1e-2, Warmup: 2, Out: out, Quiet: true, Progress: io.Discard}})
		if err != nil {
			t.Fatal(err)
		}
		return out, res.Eval["val_loss"]
	}
	captions, convs := filepath.Join(data, "train.jsonl"), filepath.Join(data, "train_llava.json")
	_, before := run(StageAlign, "", captions, 1)
	out1, after := run(StageAlign, "", captions, 40)
	if !(after < before-0.02) { // 1.424 -> 1.383: a frozen 1-layer LM learns little from the image
		t.Fatalf("stage 1: loss on its captions %.3f after 1 step, %.3f after 40: did not fall", before, after)
	}
	t.Logf("stage 1: loss %.3f -> %.3f", before, after)
	m1, err := llava.Load(cpu.New(), out1)
	if err != nil {
		t.Fatal(err)
	}
	lm, _ := gpt.Load(cpu.New(), lmDir)
	if !equalParams(m1.LM.Params(), lm.Params()) {
		t.Fatal("stage 1 changed the language model")
	}
	// Stage 2 falls fast (the short tier's two exchanges a conversation:
	// 4.096 -> 2.765 after 12 steps, 3.266 after 6).
	steps2 := 12
	if testing.Short() {
		steps2 = 6
	}
	_, before = run(StageInstruct, out1, convs, 1)
	out2, after := run(StageInstruct, out1, convs, steps2)
	if !(after < before-0.3) {
		t.Fatalf("stage 2: loss on its conversations %.3f after 1 step, %.3f after %d: did not fall", before, after, steps2)
	}
	t.Logf("stage 2: loss %.3f -> %.3f", before, after)
	m2, err := llava.Load(cpu.New(), out2)
	if err != nil {
		t.Fatal(err)
	}
	if equalParams(m2.LM.Params(), m1.LM.Params()) {
		t.Fatal("stage 2 left the language model unchanged")
	}
	if !equalParams(m2.Vision.Params(), m1.Vision.Params()) {
		t.Fatal("stage 2 changed the vision tower")
	}
}

func TestVLMDataErrors(t *testing.T) {
	data, clipDir, lmDir := vlmFixture(t)
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`[{"id":"x","image":"`+filepath.Join(data, "images/train/000000.png")+`","conversations":[{"from":"human","value":"What is it?"},{"from":"gpt","value":"a"}]}]`), 0o644)
	for _, c := range []struct{ stage, spec, want string }{
		{StageInstruct, bad, "<image>"},
		{StageInstruct, filepath.Join(data, "train.jsonl"), "no conversation"},
		{"pretrain", filepath.Join(data, "train.jsonl"), "stage"},
	} {
		_, err := VLM(context.Background(), VLMOptions{Backend: cpu.New(), Stage: c.stage, Vision: clipDir, LM: lmDir, Data: c.spec, Log: io.Discard,
			Loop: Config{Steps: 1, Out: filepath.Join(t.TempDir(), "out"), Quiet: true}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: err = %v, want one with %q", c.stage, c.spec, err, c.want)
		}
	}
}

// --lm is read as every command reads --model (model/load): a LoRA
// adapter folder over the language model is merged into it, and stage 1
// keeps the merged weights; a LLaVA folder is refused, naming --model.
func TestVLMLMAdapter(t *testing.T) {
	data, clipDir, lmDir := vlmFixture(t)
	lm, err := gpt.Load(cpu.New(), lmDir)
	if err != nil {
		t.Fatal(err)
	}
	c := gpt.LoRAConfig{R: 2, Alpha: 4}
	if _, err := lm.AttachLoRA(c, 1); err != nil {
		t.Fatal(err)
	}
	for i, p := range lm.LoRAParams() { // a B that is not zero: the adapter moves the outputs
		v := p.Tensor.Host()
		for j := range v {
			v[j] = float32((i+j)%7-3) * 0.05
		}
		p.Tensor.Set(v)
	}
	adapter := filepath.Join(t.TempDir(), "adapter")
	if err := lm.SaveLoRA(adapter, c, lmDir); err != nil {
		t.Fatal(err)
	}
	merged, err := load.Model(cpu.New(), adapter, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := gpt.Load(cpu.New(), lmDir)
	if equalParams(merged.Model.Params(), base.Params()) {
		t.Fatal("the adapter does not change the language model")
	}
	out := filepath.Join(t.TempDir(), "align")
	o := VLMOptions{Backend: cpu.New(), Stage: StageAlign, Vision: clipDir, LM: adapter, Data: filepath.Join(data, "train.jsonl"), Batch: 2, Log: io.Discard,
		Loop: Config{Steps: 1, LR: 1e-3, Out: out, Quiet: true, Progress: io.Discard}}
	if _, err := VLM(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	m, err := llava.Load(cpu.New(), out)
	if err != nil {
		t.Fatal(err)
	}
	if !equalParams(m.LM.Params(), merged.Model.Params()) {
		t.Fatal("stage 1 over --lm ADAPTER: the language model is not the adapter merged into its base")
	}
	o.LM, o.Loop.Out = out, filepath.Join(t.TempDir(), "x")
	if _, err := VLM(context.Background(), o); err == nil || !strings.Contains(err.Error(), "is a LLaVA folder: start from it with --model") {
		t.Fatalf("--lm a LLaVA folder: %v", err)
	}
}

// equalParams reports whether a and b hold the same values.
func equalParams(a, b []nn.Named) bool {
	for i, p := range a {
		x, y := p.Tensor.Host(), b[i].Tensor.Host()
		for j := range x {
			if x[j] != y[j] {
				return false
			}
		}
	}
	return true
}

// resumeExact runs a stage 4 steps in one go, and in another folder 2
// steps stopped (as Ctrl-C stops it: the loop saves) then resumed, and
// fails unless the two folders' parameters (params reads them) are the
// same. run trains with loop (its Steps, Out, Resume, OnStep and output
// set; the stage's own LR and seed are run's to set).
func resumeExact(t *testing.T, run func(ctx context.Context, loop Config) (Result, error), params func(dir string) ([]nn.Named, error)) {
	t.Helper()
	do := func(out string, resume bool, stopAt int) Result {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		res, err := run(ctx, Config{Steps: 4, Out: out, Resume: resume, Quiet: true, Progress: io.Discard,
			OnStep: func(step int, _ float64) {
				if step == stopAt {
					cancel()
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	whole, parts := filepath.Join(t.TempDir(), "whole"), filepath.Join(t.TempDir(), "parts")
	do(whole, false, -1)
	if res := do(parts, false, 2); !res.Interrupted || res.Step != 2 {
		t.Fatalf("stopped run: %+v, want interrupted at step 2", res)
	}
	do(parts, true, -1)
	a, err := params(whole)
	if err != nil {
		t.Fatal(err)
	}
	b, err := params(parts)
	if err != nil {
		t.Fatal(err)
	}
	if !equalParams(a, b) {
		t.Fatal("2 steps and 2 resumed differ from 4 steps")
	}
}

// A stage stopped after 2 of 4 steps (as Ctrl-C stops it: the loop
// saves) and resumed ends where 4 steps in one run end (the loop's whole
// checkpoints and the stage's data drawn from the seed and step).
func TestVLMResumeExact(t *testing.T) {
	data, clipDir, lmDir := vlmFixture(t)
	resumeExact(t, func(ctx context.Context, loop Config) (Result, error) {
		loop.LR = 1e-2
		return VLM(ctx, VLMOptions{Backend: cpu.New(), Stage: StageAlign, Vision: clipDir, LM: lmDir,
			Data: filepath.Join(data, "train.jsonl"), Batch: 4, Log: io.Discard, Loop: loop})
	}, func(dir string) ([]nn.Named, error) {
		m, err := llava.Load(cpu.New(), dir)
		if err != nil {
			return nil, err
		}
		return m.Params(), nil
	})
}

// The generation path (eval's prompt, llava.Prompt, through
// generate.ImageText) sees the tokens the training path trains on and
// continues them as the training path's logits say: a description, then
// a question after it. (eval vlm once put the placeholder before "USER: "
// while training puts it after, so every model it scored saw a prompt it
// never trained on.)
func TestVLMGenerateMatchesTraining(t *testing.T) {
	data, clipDir, lmDir := vlmFixture(t)
	be := cpu.New()
	cm, err := clip.Load(be, clipDir)
	if err != nil {
		t.Fatal(err)
	}
	lm, err := gpt.Load(be, lmDir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(lmDir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := llava.New(cm.Vision, lm, -1, 7)
	if err != nil {
		t.Fatal(err)
	}
	task := &vlmTask{model: m, tok: tok}
	ex, err := task.encode([]vision.Turn{{From: "human", Value: llava.AlignPrompt}, {From: "gpt", Value: "The image shows a red circle."},
		{From: "human", Value: "What colour is the circle?"}, {From: "gpt", Value: "red"}})
	if err != nil {
		t.Fatal(err)
	}
	end := "\n"
	if ids := tok.EndIDs(); len(ids) > 0 {
		end, _ = tok.Token(ids[0])
	}
	prompt := llava.Prompt(end, true, "Describe the image.", "The image shows a red circle.", "What colour is the circle?")
	b, a, _ := strings.Cut(prompt, llava.Placeholder) // as generate.ImageText encodes it
	before, after := tok.Encode(b), tok.EncodeWithSpecial(a)
	if !slices.Equal(before, ex.before) || len(after) >= len(ex.after) || !slices.Equal(after, ex.after[:len(after)]) || !ex.target[len(after)] || ex.target[len(after)-1] {
		t.Fatalf("generation sees %v + image + %v;\ntraining trains on %v + image + %v (targets %v)", before, after, ex.before, ex.after, ex.target)
	}
	im, err := vision.ReadFile(filepath.Join(data, "images", "train", "000000.png"), vision.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	pix, err := vision.CLIPPixels(im, m.Config.Vision.Image, m.Config.Vision.Channels)
	if err != nil {
		t.Fatal(err)
	}
	// Greedy continuation through the training path's logits.
	ids := slices.Clone(after)
	var want []int
	tensor.NoGrad(func() {
		for range 6 {
			s := tensor.NewScope()
			img, err := m.ImageFeatures(s, pix, 1)
			if err != nil {
				t.Fatal(err)
			}
			in := make([]int32, len(ids))
			for i, id := range ids {
				in[i] = int32(id)
			}
			h := m.LM.Forward(in, 1, len(in), gpt.Options{Embeds: m.Prefix(before, img), Scope: s})
			logits := m.LM.Logits(tensor.Slice(h, 1, h.Dim(1)-1, h.Dim(1))).Host()
			s.Close()
			next := 0
			for j, v := range logits {
				if v > logits[next] {
					next = j
				}
			}
			if slices.Contains(tok.EndIDs(), next) {
				break
			}
			want = append(want, next)
			ids = append(ids, next)
		}
	})
	got, err := generate.ImageText(m, tok, pix, prompt, generate.Options{MaxTokens: 6}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got != tok.Decode(want) {
		t.Fatalf("generate.ImageText continues with %q, the training path's logits with %q", got, tok.Decode(want))
	}
}
