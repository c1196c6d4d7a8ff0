package train

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/model/vqvae"
)

// golem vq train's stage on generated shapes scenes: the reconstruction
// loss falls, the held-out PSNR of the trained model beats the untrained
// one's, the metrics hold PSNR and codebook usage, and the folder loads.
func TestVQLearnsShapes(t *testing.T) {
	dir, err := imagineWorld() // 64 train and 16 test scenes of 16 pixels; read only
	if err != nil {
		t.Fatal(err)
	}
	be := cpu.New()
	c := vqvae.Presets()["tiny"]
	c.ImageSize = 16
	out := filepath.Join(t.TempDir(), "vq")
	var losses []float64
	res, err := VQ(context.Background(), VQOptions{Backend: be, Data: filepath.Join(dir, "train.jsonl"), EvalData: filepath.Join(dir, "test.jsonl"),
		Model: c, Batch: 16, Log: os.Stderr,
		Loop: Config{Steps: 40, LR: 3e-3, Beta2: 0.999, Seed: 1, Out: out, Quiet: true,
			OnStep: func(_ int, l float64) { losses = append(losses, l) }}})
	if err != nil {
		t.Fatal(err)
	}
	if !(losses[len(losses)-1] < 0.6*losses[0]) {
		t.Fatalf("loss %v after 40 steps, from %v: want it down by 40%%", losses[len(losses)-1], losses[0])
	}
	for _, k := range []string{"val_psnr", "val_mse", "val_perplexity", "val_codes_used"} {
		if _, ok := res.Eval[k]; !ok {
			t.Fatalf("evaluation %v has no %s", res.Eval, k)
		}
	}
	m, err := vqvae.Load(be, out)
	if err != nil {
		t.Fatal(err)
	}
	val, err := LoadVQImages(filepath.Join(dir, "test.jsonl"), m.Config)
	if err != nil {
		t.Fatal(err)
	}
	fresh, _ := vqvae.New(be, c, 1)
	before, after := EvalVQ(fresh, val, 8), EvalVQ(m, val, 8)
	if !(after.PSNR > before.PSNR+3) || after.PSNR != res.Eval["val_psnr"] {
		t.Fatalf("held-out PSNR %.2f dB trained (run's %.2f), %.2f untrained: want 3 dB more", after.PSNR, res.Eval["val_psnr"], before.PSNR)
	}
	b, err := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"psnr"`, `"perplexity"`, `"codes_used"`, `"recon_mse"`} {
		if !strings.Contains(string(b), k) {
			t.Fatalf("metrics.jsonl has no %s", k)
		}
	}
}

// An image's tokens decode to an image of the model's size; bad grids
// are refused by row and column.
func TestVQTokensImage(t *testing.T) {
	be := cpu.New()
	c := vqvae.Presets()["tiny"]
	m, err := vqvae.New(be, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	img := vision.NewImage(1, 40, 48) // gray, not square: fit to 3x32x32
	for i := range img.Pix {
		img.Pix[i] = float32(i%40) / 40
	}
	grid, err := VQTokens(m, img)
	if err != nil {
		t.Fatal(err)
	}
	if len(grid) != 8 || len(grid[7]) != 8 {
		t.Fatalf("grid of %d rows, want 8x8", len(grid))
	}
	back, err := VQImage(m, grid)
	if err != nil {
		t.Fatal(err)
	}
	if back.C != 3 || back.H != 32 || back.W != 32 {
		t.Fatalf("decoded %s, want 3x32x32", back.Shape())
	}
	grid[2] = grid[2][:7]
	if _, err := VQImage(m, grid); err == nil || !strings.Contains(err.Error(), "row 2 has 7 tokens") {
		t.Fatalf("a ragged grid: %v", err)
	}
	grid[2] = append(grid[2], 64)
	if _, err := VQImage(m, grid); err == nil || !strings.Contains(err.Error(), "row 2, column 7") {
		t.Fatalf("id 64 of 64 codes: %v", err)
	}
}

// A VQ-VAE run holds no more memory at its last step (memflat.Steps) than
// after the warm-up, with the EMA codebook and with the gradient-learned one.
func TestMemoryFlatVQ(t *testing.T) {
	dir := t.TempDir()
	if _, err := shapes.Write(shapes.Options{Out: dir, Seed: 1, Size: 12, Train: 8, Test: 4, PerClass: 1}); err != nil {
		t.Fatal(err)
	}
	for _, decay := range []float64{0.99, 0} {
		checkFlat(t, func(be *cpu.CPU, loop Config) error {
			c := vqvae.Presets()["tiny"]
			c.ImageSize, c.Hidden, c.ResHidden, c.CodeDim, c.Codes, c.Decay, c.DeadAfter = 8, 8, 4, 4, 16, decay, 5
			_, err := VQ(context.Background(), VQOptions{Backend: be, Data: filepath.Join(dir, "train.jsonl"), EvalData: filepath.Join(dir, "test.jsonl"),
				Model: c, Batch: 2, Loop: loop, Log: io.Discard})
			return err
		})
	}
}

// A VQ-VAE run stopped at step 6 and resumed ends where an uninterrupted
// run does, codebook, EMA state and dead-code counters included.
func TestVQResume(t *testing.T) {
	dir := t.TempDir()
	if _, err := shapes.Write(shapes.Options{Out: dir, Seed: 1, Size: 16, Train: 24, Test: 4, PerClass: 1}); err != nil {
		t.Fatal(err)
	}
	c := vqvae.Presets()["tiny"]
	c.ImageSize, c.DeadAfter = 16, 3
	run := func(out string, resume bool, stopAt int) Result {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		loop := Config{Steps: 12, LR: 3e-3, Seed: 2, Out: out, Resume: resume, Quiet: true}
		if stopAt > 0 {
			loop.OnStep = func(step int, _ float64) {
				if step == stopAt {
					cancel()
				}
			}
		}
		res, err := VQ(ctx, VQOptions{Backend: cpu.New(), Data: filepath.Join(dir, "train.jsonl"), Model: c, Batch: 8, Loop: loop, Log: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	run(a, false, 0)
	if res := run(b, false, 6); !res.Interrupted || res.Step != 6 {
		t.Fatalf("the interrupted run: %+v", res)
	}
	run(b, true, 0)
	be := cpu.New()
	ma, err := vqvae.Load(be, a)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := vqvae.Load(be, b)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := os.ReadFile(filepath.Join(a, "metrics.jsonl")); !regexp.MustCompile(`"restarts":[1-9]`).Match(m) {
		t.Fatal("no code was restarted: the test does not cover the restarts' state")
	}
	sameParams(t, b, ma.Params(), mb.Params())
}
