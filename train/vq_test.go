package train

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/model/vqvae"
)

// golem vq train's stage on generated shapes scenes: the reconstruction
// loss falls, the held-out PSNR of the trained model beats the untrained
// one's, the metrics hold PSNR and codebook usage, and the folder loads.
func TestVQLearnsShapes(t *testing.T) {
	dir := t.TempDir()
	if _, err := shapes.Write(shapes.Options{Out: dir, Seed: 1, Size: 16, Train: 64, Test: 16, PerClass: 1}); err != nil {
		t.Fatal(err)
	}
	be := cpu.New()
	c := vqvae.Presets()["tiny"]
	c.ImageSize = 16
	out := filepath.Join(dir, "vq")
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
