package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// writeBars writes a folder of class folders: n gray 12x12 PNGs a class,
// a bright horizontal (class h) or vertical (class v) bar on noise.
func writeBars(t *testing.T, dir string, n int, seed uint64) string {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 3))
	for _, class := range []string{"h", "v"} {
		if err := os.MkdirAll(filepath.Join(dir, class), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			g := image.NewGray(image.Rect(0, 0, 12, 12))
			for j := range g.Pix {
				g.Pix[j] = uint8(r.IntN(50))
			}
			at := r.IntN(12)
			for k := 0; k < 12; k++ {
				if class == "h" {
					g.SetGray(k, at, color.Gray{230})
				} else {
					g.SetGray(at, k, color.Gray{230})
				}
			}
			f, err := os.Create(filepath.Join(dir, class, fmt.Sprintf("%03d.png", i)))
			if err != nil {
				t.Fatal(err)
			}
			png.Encode(f, g)
			f.Close()
		}
	}
	return dir
}

var probeLast = regexp.MustCompile(`(?m)^linear_probe_acc=([01]\.\d{4}) knn_acc=([01]\.\d{4})\n\z`)

// golem vision pretrain and probe end to end, as processes, on a generated
// folder of images: the encoder folder and report.html are written, --steps
// 0 writes the initialised encoder (which the probe's random-init
// baseline then matches exactly), and probe prints its table with the two
// baselines and linear_probe_acc=X knn_acc=Y last.
func TestVisionCommands(t *testing.T) {
	dir := t.TempDir()
	trainDir := writeBars(t, filepath.Join(dir, "train"), 24, 1)
	testDir := writeBars(t, filepath.Join(dir, "test"), 10, 2)
	out := filepath.Join(dir, "simclr")
	stdout, stderr, code := runGolem(t, "vision", "pretrain", "--method", "simclr", "--data", trainDir, "--out", out, "--steps", "3", "--batch", "16", "--threads", "2")
	if code != 0 {
		t.Fatalf("pretrain: exit %d\n%s%s", code, stdout, stderr)
	}
	if !regexp.MustCompile(`(?m)^loss=\d+\.\d{4}$`).MatchString(stdout) {
		t.Errorf("pretrain printed no loss=X:\n%s", stdout)
	}
	for _, f := range []string{"config.json", "model.safetensors", "report.html", "augmentations.png", "metrics.jsonl"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("pretrain wrote no %s: %v", f, err)
		}
	}
	page, _ := os.ReadFile(filepath.Join(out, "report.html"))
	if !strings.Contains(string(page), "<svg") || !strings.Contains(string(page), `<img src="augmentations.png"`) {
		t.Errorf("report.html lacks the learning curve or the augmentation grid:\n%.400s", page)
	}

	stdout, stderr, code = runGolem(t, "vision", "probe", "--model", out, "--train", trainDir, "--test", testDir, "--probe-steps", "50", "--threads", "2")
	if code != 0 {
		t.Fatalf("probe: exit %d\n%s%s", code, stdout, stderr)
	}
	first := probeRows(stdout)
	if !probeLast.MatchString(stdout) || first["raw pixels"] == "" || first["random init"] == "" || first[out] == "" {
		t.Errorf("probe output lacks the baselines, the model or the last line:\n%s", stdout)
	}

	// --cells 2: the ResNet's 3x3 last map (12x12 images) averaged over
	// 2x2 cells, 64*4 features, for the random-init baseline too.
	stdout, stderr, code = runGolem(t, "vision", "probe", "--model", out, "--train", trainDir, "--test", testDir, "--probe-steps", "5", "--cells", "2")
	for _, want := range []string{"random init: 48 training and 20 test images, 256 features each", out + ": 48 training and 20 test images, 256 features each", "raw pixels: 48 training and 20 test images, 144 features each"} {
		if code != 0 || !strings.Contains(stderr, want) {
			t.Errorf("probe --cells 2: exit %d, stderr lacks %q:\n%s%s", code, want, stdout, stderr)
		}
	}

	init := filepath.Join(dir, "init")
	if stdout, stderr, code = runGolem(t, "vision", "pretrain", "--method", "mae", "--data", trainDir, "--out", init, "--steps", "0"); code != 0 {
		t.Fatalf("pretrain --steps 0: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(init, "reconstructions.png")); err != nil {
		t.Errorf("--steps 0 drew no reconstructions: %v", err)
	}
	// MAE's default encoder is the ResNet (the ViT's MAE did not beat its
	// random initialisation; docs/vision.md).
	if cfg, err := os.ReadFile(filepath.Join(init, "config.json")); err != nil || !strings.Contains(string(cfg), `"model_type": "golem_resnet"`) {
		t.Errorf("mae's default encoder is not the ResNet: %v\n%s", err, cfg)
	}
	stdout, stderr, code = runGolem(t, "vision", "probe", "--model", init, "--train", trainDir, "--test", testDir, "--probe-steps", "50")
	if code != 0 {
		t.Fatalf("probe: exit %d\n%s%s", code, stdout, stderr)
	}
	rows := probeRows(stdout)
	if rows["random init"] == "" || rows["random init"] != rows[init] {
		t.Errorf("the --steps 0 encoder probes as %q, its random-init baseline as %q: they are the same weights\n%s", rows[init], rows["random init"], stdout)
	}

	stdout, _, code = runGolem(t, "vision", "probe", "--pixels", "--train", trainDir, "--test", testDir, "--probe-steps", "50")
	m := probeLast.FindStringSubmatch(stdout)
	if code != 0 || m == nil || m[1]+" "+m[2] != first["raw pixels"] {
		t.Errorf("probe --pixels: exit %d, want the last line with the raw-pixel row of the first probe (%s):\n%s", code, first["raw pixels"], stdout)
	}
}

// probeRows reads probe's table: the features' name to "linear knn".
func probeRows(stdout string) map[string]string {
	rows := map[string]string{}
	for _, l := range strings.Split(stdout, "\n") {
		if f := strings.Fields(l); len(f) >= 3 {
			rows[strings.Join(f[:len(f)-2], " ")] = strings.Join(f[len(f)-2:], " ")
		}
	}
	return rows
}

func TestVisionCommandErrors(t *testing.T) {
	dir := t.TempDir()
	data := writeBars(t, filepath.Join(dir, "d"), 2, 1)
	for i, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"vision", "pretrain", "--method", "dino", "--data", data, "--out", dir + "/o"}, 2, `unknown --method "dino"`},
		{[]string{"vision", "pretrain", "--data", data, "--out", dir + "/o"}, 2, "--method is required"},
		{[]string{"vision", "pretrain", "--method", "colorize", "--data", data, "--out", dir + "/o", "--steps", "1"}, 1, "has 1-channel images"},
		{[]string{"vision", "pretrain", "--method", "mae", "--data", dir + "/none", "--out", dir + "/o"}, 1, "none"},
		{[]string{"vision", "probe", "--pixels", "--model", dir, "--train", data, "--test", data}, 2, "--model DIR or --pixels"},
		{[]string{"vision", "probe", "--model", dir + "/nomodel", "--train", data, "--test", data}, 1, "nomodel"},
		{[]string{"vision", "probe", "--model", dir, "--train", data, "--test", data, "--cells", "0"}, 2, "--cells is 0, want 1 to 16"},
	} {
		_, stderr, code := runRefused(t, i == 0, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("golem %s: exit %d, stderr %q; want exit %d and %q", strings.Join(c.args, " "), code, stderr, c.code, c.want)
		}
	}

	// A truncated image met in training (not the first, which opening the
	// data reads): exit 1 naming the file, and no encoder written.
	bad := writeBars(t, filepath.Join(dir, "bad"), 2, 1)
	cut := filepath.Join(bad, "v", "001.png")
	b, err := os.ReadFile(cut)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(cut, b[:len(b)/2], 0o644)
	out := filepath.Join(dir, "bad-out")
	_, stderr, code := runGolem(t, "vision", "pretrain", "--method", "simclr", "--data", bad, "--out", out, "--steps", "2")
	if code != 1 || !strings.Contains(stderr, cut+": corrupt or truncated png") {
		t.Errorf("pretrain over a truncated image: exit %d, stderr %q; want exit 1 naming %s", code, stderr, cut)
	}
	for _, f := range []string{"config.json", "model.safetensors", "report.html"} {
		if _, err := os.Stat(filepath.Join(out, f)); err == nil {
			t.Errorf("pretrain over a truncated image wrote %s", f)
		}
	}
}
