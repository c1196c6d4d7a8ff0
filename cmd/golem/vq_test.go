package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/data/vision"
)

// TestVQCommands trains a tiny VQ-VAE on a small shapes world through the
// real binary, then encodes a held-out image to its token grid and decodes
// the grid back to a PNG; bad token files are refused by file and line.
func TestVQCommands(t *testing.T) {
	images, steps := 48, "20"
	if testing.Short() {
		images, steps = 16, "4" // what it prints and writes, not how well it learns (train's VQ tests)
	}
	dir := t.TempDir()
	world := filepath.Join(dir, "shapes")
	if _, err := shapes.Write(shapes.Options{Out: world, Seed: 1, Size: 16, Train: images, Test: 8, PerClass: 1}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "vq")
	stdout, stderr, code := runGolem(t, "vq", "train", "--data", filepath.Join(world, "train.jsonl"), "--eval-data", filepath.Join(world, "test.jsonl"),
		"--image-size", "16", "--batch", "16", "--steps", steps, "--warmup", "2", "--eval-every", "0", "--out", out, "--threads", "2")
	if code != 0 {
		t.Fatalf("vq train: exit %d\n%s%s", code, stdout, stderr)
	}
	if !regexp.MustCompile(`held-out: val_psnr=[0-9.]+ dB val_mse=[0-9.]+ val_perplexity=[0-9.]+ val_codes_used=[01]\.\d{3}`).MatchString(stdout) ||
		!regexp.MustCompile(`^loss=[0-9.]+$`).MatchString(lastLine(stdout)) {
		t.Fatalf("vq train printed\n%s", stdout)
	}
	for _, f := range []string{"config.json", "model.safetensors", "metrics.jsonl"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Fatalf("vq train wrote no %s: %v", f, err)
		}
	}
	ims, _ := filepath.Glob(filepath.Join(world, "images", "test", "*.png"))
	if len(ims) == 0 {
		t.Fatal("no test images in the shapes world")
	}
	tokens := filepath.Join(dir, "tokens.json")
	if stdout, stderr, code = runGolem(t, "vq", "encode", "--model", out, "--image", ims[0], "--out", tokens); code != 0 {
		t.Fatalf("vq encode: exit %d\n%s%s", code, stdout, stderr)
	}
	b, _ := os.ReadFile(tokens)
	if rows := strings.Count(string(b), "\n  ["); rows != 4 {
		t.Fatalf("vq encode wrote %d rows, want a 4x4 grid:\n%s", rows, b)
	}
	png := filepath.Join(dir, "recon.png")
	if stdout, stderr, code = runGolem(t, "vq", "decode", "--model", out, "--tokens", tokens, "--out", png); code != 0 {
		t.Fatalf("vq decode: exit %d\n%s%s", code, stdout, stderr)
	}
	img, err := vision.ReadFile(png, vision.Limits{})
	if err != nil || img.C != 3 || img.H != 16 || img.W != 16 {
		t.Fatalf("vq decode wrote %v (%v), want a 16x16 RGB PNG", img, err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("[\n  [1, 2],\n  [3, 4.5]\n]\n"), 0o644)
	if _, stderr, code = runGolem(t, "vq", "decode", "--model", out, "--tokens", bad, "--out", png); code == 0 || !strings.Contains(stderr, bad+":3:") {
		t.Fatalf("a non-integer id: exit %d, stderr %q: want an error naming %s line 3", code, stderr, bad)
	}
	os.WriteFile(bad, []byte("[[1, 2], [3]]"), 0o644)
	if _, stderr, code = runGolem(t, "vq", "decode", "--model", out, "--tokens", bad, "--out", png); code == 0 || !strings.Contains(stderr, "row 1 has 1 tokens") {
		t.Fatalf("a ragged grid: exit %d, stderr %q", code, stderr)
	}
}
