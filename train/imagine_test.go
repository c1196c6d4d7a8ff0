package train

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/golem-ml/golem/internal/testmodels"
	"github.com/golem-ml/golem/nn"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/model/dalle"
)

// imagineData writes a small shapes world (16-pixel scenes; imagineWorld's,
// copied) and an untrained tiny VQ-VAE at that size into dir.
func imagineData(t *testing.T, dir string) string {
	t.Helper()
	world, err := imagineWorld()
	if err != nil {
		t.Fatal(err)
	}
	if err := copyWorld(dir, world, "images", "classes"); err != nil {
		t.Fatal(err)
	}
	vqDir := filepath.Join(dir, "vq")
	if err := testmodels.VQVAE(t, cpu.New(), 16, 1).Save(vqDir); err != nil {
		t.Fatal(err)
	}
	return vqDir
}

// imagineWorld writes imagineData's shapes world once per test binary
// (TestMain removes it); seven tests wrote it each.
var imagineWorld = sync.OnceValues(func() (string, error) {
	dir, err := fixtureDir("imagine")
	if err != nil {
		return "", err
	}
	_, err = shapes.Write(shapes.Options{Out: dir, Seed: 1, Size: 16, Train: 64, Test: 16, PerClass: 1})
	return dir, err
})

// golem imagine train's stage: the image tokens' loss falls, the
// held-out losses given the caption and given none are logged, and the
// folder (tokenizer and VQ-VAE inside) loads.
func TestImagineLearns(t *testing.T) {
	dir := t.TempDir()
	vqDir := imagineData(t, dir)
	out := filepath.Join(dir, "t2i")
	var losses []float64
	// 15 steps under -short: the loss 4.12 -> 2.48 (0.60 of it, against a
	// bound of 0.8; 0.32 after 30).
	steps := 30
	if testing.Short() {
		steps = 15
	}
	res, err := Imagine(context.Background(), ImagineOptions{Backend: cpu.New(), VQ: vqDir,
		Data: filepath.Join(dir, "train.jsonl"), EvalData: filepath.Join(dir, "test.jsonl"),
		Model: ImaginePreset{Hidden: 32, Layers: 2, Heads: 2, TextLength: 64, Vocab: 512}, Batch: 16, Log: io.Discard,
		Loop: Config{Steps: steps, LR: 3e-3, Warmup: 3, Beta2: 0.99, Seed: 1, Out: out, Quiet: true,
			OnStep: func(_ int, l float64) { losses = append(losses, l) }}})
	if err != nil {
		t.Fatal(err)
	}
	if !(losses[len(losses)-1] < 0.8*losses[0]) {
		t.Fatalf("loss %v after %d steps, from %v: want it down by 20%%", losses[len(losses)-1], steps, losses[0])
	}
	for _, k := range []string{"val_loss", "val_loss_uncond"} {
		if v, ok := res.Eval[k]; !ok || !(v > 0) {
			t.Fatalf("evaluation %v: no %s", res.Eval, k)
		}
	}
	m, err := dalle.Load(cpu.New(), out)
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.Grid != 4 || m.Config.Codes != 64 || m.Config.TextLength != 64 {
		t.Fatalf("config %+v, want a 4x4 grid of 64 codes after 64 text tokens", m.Config)
	}
	b, err := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	if _, ok := last["val_loss"]; !ok {
		t.Fatalf("the last metrics line %v has no val_loss", last)
	}
}

// Bad input: no --vq, a --vq folder that is not there, a caption longer
// than the text context (named by its image).
func TestImagineBadInput(t *testing.T) {
	dir := t.TempDir()
	vqDir := imagineData(t, dir)
	opts := func() ImagineOptions {
		return ImagineOptions{Backend: cpu.New(), VQ: vqDir, Data: filepath.Join(dir, "train.jsonl"),
			Model: ImaginePreset{Hidden: 32, Layers: 1, Heads: 2, TextLength: 64, Vocab: 512}, Log: io.Discard,
			Loop: Config{Steps: 1, Out: filepath.Join(dir, "out"), Quiet: true}}
	}
	o := opts()
	o.VQ = ""
	if _, err := Imagine(context.Background(), o); err == nil || !strings.Contains(err.Error(), "--vq") {
		t.Fatalf("no --vq: %v", err)
	}
	o = opts()
	o.VQ = filepath.Join(dir, "missing")
	if _, err := Imagine(context.Background(), o); err == nil || !strings.Contains(err.Error(), "--vq") || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("--vq missing: %v", err)
	}
	o = opts()
	o.Model.TextLength = 4
	if _, err := Imagine(context.Background(), o); err == nil || !strings.Contains(err.Error(), "train.jsonl:") || !strings.Contains(err.Error(), "--text-length") {
		t.Fatalf("caption too long: %v", err)
	}
}

// A text-to-image run stopped after 2 of 4 steps and resumed (the
// tokenizer and the VQ-VAE read back from its folder) ends with the same
// parameters as 4 steps in one run.
func TestImagineResumeExact(t *testing.T) {
	dir := t.TempDir()
	vqDir := imagineData(t, dir)
	resumeExact(t, func(ctx context.Context, loop Config) (Result, error) {
		loop.LR, loop.Seed = 1e-2, 3
		return Imagine(ctx, ImagineOptions{Backend: cpu.New(), VQ: vqDir, Data: filepath.Join(dir, "train.jsonl"),
			Model: ImaginePreset{Hidden: 32, Layers: 1, Heads: 2, TextLength: 64, Vocab: 400}, Batch: 8, CaptionDropout: 0.5, Log: io.Discard, Loop: loop})
	}, func(dir string) ([]nn.Named, error) {
		m, err := dalle.Load(cpu.New(), dir)
		if err != nil {
			return nil, err
		}
		return m.Params(), nil
	})
}
