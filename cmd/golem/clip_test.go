package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/internal/shared"
)

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestCLIPCommands trains a tiny CLIP on a small shapes world, then runs
// zero-shot classification on its class folders and retrieval on its
// test split through the real binary.
func TestCLIPCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("full tier: trains CLIP 150 steps through the golem binary to check it learns; TestCLIPTrainResume runs clip train in the short tier")
	}
	tok := shared.Path(t, "data/tokenizer/clip/bpe_simple_vocab_16e6.txt.gz")
	dir := t.TempDir()
	world := filepath.Join(dir, "shapes")
	if _, err := shapes.Write(shapes.Options{Out: world, Seed: 1, Size: 16, Train: 48, Test: 16, PerClass: 1}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "clip")
	stdout, stderr, code := runGolem(t, "clip", "train", "--data", filepath.Join(world, "train.jsonl"), "--eval-data", filepath.Join(world, "test.jsonl"),
		"--tokenizer", tok, "--image-size", "16", "--batch", "16", "--steps", "150", "--warmup", "5", "--eval-every", "0", "--out", out, "--threads", "2")
	if code != 0 {
		t.Fatalf("clip train: exit %d\n%s%s", code, stdout, stderr)
	}
	m := regexp.MustCompile(`^loss=([0-9.]+)$`).FindStringSubmatch(lastLine(stdout))
	if m == nil {
		t.Fatalf("clip train's last line is %q, want loss=X", lastLine(stdout))
	}
	// A batch of 16 pairs starts at ln 16 = 2.77 (no pair told apart); the
	// model must have learned to match images and captions.
	if loss, _ := strconv.ParseFloat(m[1], 64); loss > 0.6*math.Log(16) {
		t.Fatalf("clip train: final loss %v, want below %.2f (ln 16 = %.2f is chance)\n%s", loss, 0.6*math.Log(16), math.Log(16), stderr)
	}
	for _, f := range []string{"config.json", "model.safetensors", "bpe_simple_vocab_16e6.txt.gz", "metrics.jsonl"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Fatalf("clip train wrote no %s: %v", f, err)
		}
	}

	stdout, stderr, code = runGolem(t, "clip", "zeroshot", "--model", out, "--data", filepath.Join(world, "classes"), "--template", "a {}", "--template", "one shape: a {}", "--per-class")
	if code != 0 {
		t.Fatalf("clip zeroshot: exit %d\n%s%s", code, stdout, stderr)
	}
	if !regexp.MustCompile(`(?m)^  red triangle +[01]/1$`).MatchString(stdout) || !strings.Contains(stdout, "32 images, 32 classes, 2 templates") || !regexp.MustCompile(`^zeroshot_acc=(0|1)\.\d{4}$`).MatchString(lastLine(stdout)) {
		t.Fatalf("clip zeroshot printed\n%s", stdout)
	}

	stdout, stderr, code = runGolem(t, "clip", "retrieve", "--model", out, "--data", filepath.Join(world, "test.jsonl"))
	if code != 0 {
		t.Fatalf("clip retrieve: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "16 images, 16 texts") || !regexp.MustCompile(`^i2t_r1=[01]\.\d{4} i2t_r5=[01]\.\d{4} t2i_r1=[01]\.\d{4} t2i_r5=[01]\.\d{4}$`).MatchString(lastLine(stdout)) {
		t.Fatalf("clip retrieve printed\n%s", stdout)
	}

	// COCO captions: every image's five captions are its matches.
	coco := shared.Path(t, "data/images/coco_mini_val2017/captions_val2017.json")
	stdout, stderr, code = runGolem(t, "clip", "retrieve", "--model", out, "--data", coco)
	if code != 0 || !strings.Contains(stdout, "79 images, 395 texts") || !strings.HasPrefix(lastLine(stdout), "i2t_r1=") {
		t.Fatalf("clip retrieve on COCO mini: exit %d\n%s%s", code, stdout, stderr)
	}
	// clip train on COCO captions JSON (JPEG photos, five captions each),
	// from the model above (--model), and retrieval with what it wrote.
	cocoOut := filepath.Join(dir, "clip-coco")
	stdout, stderr, code = runGolem(t, "clip", "train", "--data", coco, "--model", out, "--batch", "8", "--steps", "2", "--eval-every", "0", "--out", cocoOut, "--threads", "2")
	if code != 0 || !regexp.MustCompile(`^loss=[0-9.]+$`).MatchString(lastLine(stdout)) {
		t.Fatalf("clip train on COCO mini: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, stderr, code = runGolem(t, "clip", "retrieve", "--model", cocoOut, "--data", coco)
	if code != 0 || !strings.Contains(stdout, "79 images, 395 texts") {
		t.Fatalf("clip retrieve with the COCO-trained model: exit %d\n%s%s", code, stdout, stderr)
	}

	// Bad input names what is wrong.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"clip", "zeroshot", "--model", out, "--data", filepath.Join(world, "test.jsonl")}, "is not a class folder: pass --classes"},
		{[]string{"clip", "zeroshot", "--model", out, "--data", filepath.Join(world, "classes"), "--classes", "red,blue"}, "label 2, not one of the 2 classes"},
		{[]string{"clip", "retrieve", "--model", out, "--data", filepath.Join(world, "nope.jsonl")}, "nope.jsonl"},
		{[]string{"clip", "retrieve", "--model", world, "--data", filepath.Join(world, "test.jsonl")}, "config.json"},
		{[]string{"clip", "train", "--data", filepath.Join(world, "train.jsonl"), "--out", filepath.Join(dir, "x")}, "needs --tokenizer"},
		{[]string{"clip", "train", "--data", filepath.Join(world, "classes"), "--tokenizer", tok, "--out", filepath.Join(dir, "y")}, "blue_circle/0000.png: no caption"},
	} {
		_, stderr, code := runGolem(t, c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("golem %s: exit %d, stderr %q; want an error containing %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
}

// TestCLIPTrainResume: a run stopped halfway (after 4 steps of 8, 2 of 4
// under -short) and resumed ends with the same weights as a run never
// stopped (each step's pairs are a function of the seed and the step).
func TestCLIPTrainResume(t *testing.T) {
	whole, world, steps := trainedCLIP(t)
	parts := filepath.Join(t.TempDir(), "parts")
	clipTrain(t, world, parts, steps/2, steps, "--save-every", strconv.Itoa(steps/2))
	clipTrain(t, world, parts, steps, steps, "--resume")
	a, err := os.ReadFile(filepath.Join(whole, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(parts, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("%d steps in one run and %d + %d resumed differ", steps, steps/2, steps/2)
	}
}

// TestCLIPZeroshotRetrieve runs clip zeroshot and clip retrieve on the
// model trainedCLIP made (a few steps: it checks what the commands print,
// not what they score; TestCLIPCommands, in the full run, trains one that
// tells pairs apart), so that the fast tier runs both commands too.
func TestCLIPZeroshotRetrieve(t *testing.T) {
	out, world, _ := trainedCLIP(t)
	dir := filepath.Dir(world)
	stdout, stderr, code := runGolem(t, "clip", "zeroshot", "--model", out, "--data", filepath.Join(dir, "classes"), "--template", "a {}", "--per-class")
	if code != 0 || !strings.Contains(stdout, "1 templates") || !regexp.MustCompile(`^zeroshot_acc=(0|1)\.\d{4}$`).MatchString(lastLine(stdout)) {
		t.Fatalf("clip zeroshot: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, stderr, code = runGolem(t, "clip", "retrieve", "--model", out, "--data", world)
	if code != 0 || !strings.Contains(stdout, "24 images, 24 texts") ||
		!regexp.MustCompile(`^i2t_r1=[01]\.\d{4} i2t_r5=[01]\.\d{4} t2i_r1=[01]\.\d{4} t2i_r5=[01]\.\d{4}$`).MatchString(lastLine(stdout)) {
		t.Fatalf("clip retrieve: exit %d\n%s%s", code, stdout, stderr)
	}
}

var clipOnce struct {
	sync.Once
	out, world string
	steps      int
	ok         bool
}

// trainedCLIP runs golem clip train once per test binary, uninterrupted,
// on a small shapes world (8 steps, 4 under -short), and returns its
// folder, the world's train.jsonl and the steps: TestCLIPTrainResume's
// reference run, and the reranker TestImagineCommands draws with under
// -short.
func trainedCLIP(t *testing.T) (out, world string, steps int) {
	t.Helper()
	f := fixtures(t)
	clipOnce.Do(func() {
		dir := filepath.Join(f.dir, "clip")
		clipOnce.world, clipOnce.out, clipOnce.steps = filepath.Join(dir, "shapes", "train.jsonl"), filepath.Join(dir, "whole"), 8
		if testing.Short() {
			clipOnce.steps = 4
		}
		if _, err := shapes.Write(shapes.Options{Out: filepath.Join(dir, "shapes"), Seed: 2, Size: 16, Train: 24, Test: 1, PerClass: 1}); err != nil {
			t.Fatal(err)
		}
		clipTrain(t, clipOnce.world, clipOnce.out, clipOnce.steps, clipOnce.steps)
		clipOnce.ok = true
	})
	if !clipOnce.ok {
		t.Fatal("the uninterrupted clip train run failed")
	}
	return clipOnce.out, clipOnce.world, clipOnce.steps
}

// clipTrain runs golem clip train on data into out: steps steps of a
// schedule of total (total/4 of warmup, then a cosine decay to total).
func clipTrain(t *testing.T, data, out string, steps, total int, extra ...string) {
	t.Helper()
	tok := shared.Path(t, "data/tokenizer/clip/bpe_simple_vocab_16e6.txt.gz")
	args := append([]string{"clip", "train", "--data", data, "--tokenizer", tok, "--image-size", "16",
		"--batch", "8", "--steps", strconv.Itoa(steps), "--decay-steps", strconv.Itoa(total), "--warmup", strconv.Itoa(total / 4), "--out", out, "--threads", "1"}, extra...)
	if stdout, stderr, code := runGolem(t, args...); code != 0 {
		t.Fatalf("golem %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
	}
}

// TestDataShapes runs golem data shapes: the files it names exist, the
// same seed writes the same bytes, and bad counts are usage errors.
func TestDataShapes(t *testing.T) {
	dir := t.TempDir()
	var first []byte
	for i, out := range []string{filepath.Join(dir, "a"), filepath.Join(dir, "b")} {
		stdout, stderr, code := runGolem(t, "data", "shapes", "--out", out, "--n", "5", "--n-test", "2", "--per-class", "1", "--size", "24", "--seed", "9")
		if code != 0 || !strings.Contains(stdout, "train    5 scenes: "+out+"/train.jsonl") || !strings.Contains(stdout, "held-out pairs (never in train): [red triangle") {
			t.Fatalf("data shapes: exit %d\n%s%s", code, stdout, stderr)
		}
		b, err := os.ReadFile(filepath.Join(out, "heldout_llava.json"))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = b
		} else if !bytes.Equal(first, b) {
			t.Fatal("two runs with --seed 9 wrote different heldout_llava.json")
		}
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--out", dir, "--n", "0"}, 2, "--n 0: want at least 1"},
		{[]string{"--n", "3"}, 2, "need --out DIR"},
		{[]string{"--out", dir, "--size", "8"}, 1, "size 8: want 12 to 1024 pixels"},
	} {
		_, stderr, code := runGolem(t, append([]string{"data", "shapes"}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("data shapes %v: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
}
