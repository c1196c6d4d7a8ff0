package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/golem-ml/golem/data/synth/shapes"
)

// judgeLast reads eval judge's last line into its four accuracies.
func judgeLast(t *testing.T, stdout string) map[string]float64 {
	t.Helper()
	m := regexp.MustCompile(`^colour_acc=([0-9.]+) shape_acc=([0-9.]+) count_acc=([0-9.]+) position_acc=([0-9.]+)$`).FindStringSubmatch(lastLine(stdout))
	if m == nil {
		t.Fatalf("eval judge printed\n%s", stdout)
	}
	out := map[string]float64{}
	for i, k := range []string{"colour", "shape", "count", "position"} {
		out[k], _ = strconv.ParseFloat(m[i+1], 64)
	}
	return out
}

// TestJudgeCommands trains a small judge on a small shapes world through
// the real binary (120 steps of 32 images at 24 x 24) and checks that it
// can be believed: on the real test and heldout images (captions of every
// kind) it reads colour and count at 0.9 or more, position at 0.8 and
// shape at 0.7 (the relations' positions need both shapes right; the
// docs' longer run at 32 x 32 reads more), while the
// same images scored against other scenes' captions score low: the judge
// is not saying yes to everything. The short tier runs the same commands
// with a judge of 2 steps of 8 of 16 images, checking what they print and
// write and the errors, not the accuracies (train's TestJudgeLearnsCells
// checks in the short tier that the judge learns, eval's TestScoreScene
// how a scene is scored against a caption).
func TestJudgeCommands(t *testing.T) {
	steps, batch, images := "120", "32", 400
	if testing.Short() {
		steps, batch, images = "2", "8", 16
	}
	dir := t.TempDir()
	world := filepath.Join(dir, "shapes")
	if _, err := shapes.Write(shapes.Options{Out: world, Seed: 1337, Size: 24, Train: images, Test: 40, PerClass: 1}); err != nil {
		t.Fatal(err)
	}
	judge := filepath.Join(dir, "judge")
	stdout, stderr, code := runGolem(t, "vision", "judge", "train", "--data", world, "--out", judge, "--steps", steps, "--batch", batch,
		"--image-size", "24", "--eval-every", "0", "--threads", "2")
	if code != 0 {
		t.Fatalf("vision judge train: exit %d\n%s%s", code, stdout, stderr)
	}
	if !regexp.MustCompile(`test cells: val_acc_occupied=[0-9.]+ val_acc_colour=[0-9.]+ val_acc_shape=[0-9.]+ val_acc_size=[0-9.]+`).MatchString(stdout) ||
		!regexp.MustCompile(`^loss=[0-9.]+$`).MatchString(lastLine(stdout)) {
		t.Fatalf("vision judge train printed\n%s", stdout)
	}
	report := filepath.Join(dir, "report.json")
	for _, split := range []string{"test", "heldout"} {
		stdout, stderr, code = runGolem(t, "eval", "judge", "--judge", judge, "--data", filepath.Join(world, split+".jsonl"), "--json", report)
		if code != 0 {
			t.Fatalf("eval judge %s: exit %d\n%s%s", split, code, stdout, stderr)
		}
		acc := judgeLast(t, stdout)
		group := map[string]string{"test": "seen", "heldout": "heldout"}[split]
		if !regexp.MustCompile(`(?m)^` + group + ` +40 `).MatchString(stdout) {
			t.Errorf("%s: the 40 images are not reported as %s\n%s", split, group, stdout)
		}
		if testing.Short() {
			continue
		}
		for k, min := range map[string]float64{"colour": 0.9, "count": 0.9, "position": 0.8, "shape": 0.7} {
			if acc[k] < min {
				t.Errorf("%s: the judge reads %s at %.3f on real images, want %.2f or more\n%s", split, k, acc[k], min, stdout)
			}
		}

		// Each image against the next scene's caption and scene, in the
		// generator's format.
		recs, _, err := shapes.ReadScenes(filepath.Join(world, split+"_scenes.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for i, r := range recs {
			o := recs[(i+1)%len(recs)]
			b, _ := json.Marshal(map[string]any{"image": r.Image, "caption": o.Captions[i%len(o.Captions)].EN, "scene": map[string]any{"objects": o.Objects}})
			lines = append(lines, string(b))
		}
		wrong := filepath.Join(world, split+"-mismatched.jsonl")
		os.WriteFile(wrong, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
		stdout, stderr, code = runGolem(t, "eval", "judge", "--judge", judge, "--data", wrong)
		if code != 0 {
			t.Fatalf("eval judge (mismatched) %s: exit %d\n%s%s", split, code, stdout, stderr)
		}
		bad := judgeLast(t, stdout)
		for k, max := range map[string]float64{"colour": 0.5, "count": 0.5, "position": 0.5, "shape": 0.7} {
			if bad[k] > max || bad[k] > acc[k]-0.25 {
				t.Errorf("%s: scored against other scenes' captions, %s is %.3f (%.3f against their own): want at most %.2f and 0.25 less\n%s", split, k, bad[k], acc[k], max, stdout)
			}
		}
	}
	var recs []struct {
		Eval    string             `json:"eval"`
		Metrics map[string]float64 `json:"metrics"`
	}
	b, _ := os.ReadFile(report)
	if err := json.Unmarshal(b, &recs); err != nil || len(recs) != 2 || recs[0].Eval != "judge" ||
		recs[0].Metrics["seen_colour_acc"] == 0 || recs[1].Metrics["heldout_position_acc"] == 0 {
		t.Errorf("--json wrote %s (%v)", b, err)
	}
	if _, stderr, code = runGolem(t, "eval", "judge", "--judge", judge, "--data", filepath.Join(world, "train_llava.json")); code == 0 || !strings.Contains(stderr, "train_llava.json:1: ") {
		t.Errorf("eval judge on LLaVA JSON: exit %d, stderr %q; want an error naming the file and line", code, stderr)
	}
	checkJudgeBaseline(t, judge, world)
}

// checkJudgeBaseline runs eval judge --baseline on the test split's images
// against the same captions over the next scene's images: the printed
// differences are the two runs' accuracies' differences, with standard
// errors, and so is their mean over colour, shape, count and position; a baseline of other captions, or fewer, is refused naming the
// file and line.
func checkJudgeBaseline(t *testing.T, judge, world string) {
	recs, _, err := shapes.ReadScenes(filepath.Join(world, "test_scenes.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, image func(i int) string, n int) string {
		var lines []string
		for i, r := range recs[:n] {
			b, _ := json.Marshal(map[string]any{"image": image(i), "caption": r.Captions[i%len(r.Captions)].EN, "scene": map[string]any{"objects": r.Objects}})
			lines = append(lines, string(b))
		}
		f := filepath.Join(world, name)
		os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
		return f
	}
	own := write("own.jsonl", func(i int) string { return recs[i].Image }, len(recs))
	swapped := write("swapped.jsonl", func(i int) string { return recs[(i+1)%len(recs)].Image }, len(recs))
	stdout, stderr, code := runGolem(t, "eval", "judge", "--judge", judge, "--data", swapped)
	if code != 0 {
		t.Fatalf("eval judge %s: exit %d\n%s%s", swapped, code, stdout, stderr)
	}
	base := judgeLast(t, stdout)
	stdout, stderr, code = runGolem(t, "eval", "judge", "--judge", judge, "--data", own, "--baseline", swapped)
	if code != 0 {
		t.Fatalf("eval judge --baseline: exit %d\n%s%s", code, stdout, stderr)
	}
	acc := judgeLast(t, stdout)
	line := regexp.MustCompile(`(?m)^against --baseline .*swapped.jsonl, paired over 40 captions .*$`).FindString(stdout)
	for _, k := range []string{"colour", "shape", "count", "position"} {
		m := regexp.MustCompile(k + ` ([-+][0-9.]+) \(SE ([0-9.]+)\)`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("eval judge --baseline printed no %s difference:\n%s", k, stdout)
		}
		d, _ := strconv.ParseFloat(m[1], 64)
		se, _ := strconv.ParseFloat(m[2], 64)
		if math.Abs(d-(acc[k]-base[k])) > 2e-4 || (d != 0 && se <= 0) {
			t.Errorf("%s: difference %s (SE %s), want %.4f - %.4f with a standard error\n%s", k, m[1], m[2], acc[k], base[k], stdout)
		}
	}
	m := regexp.MustCompile(`mean\(colour,shape,count,position\) ([-+][0-9.]+) \(SE ([0-9.]+)\)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("eval judge --baseline printed no mean difference:\n%s", stdout)
	}
	d, _ := strconv.ParseFloat(m[1], 64)
	se, _ := strconv.ParseFloat(m[2], 64)
	if want := (acc["colour"] - base["colour"] + acc["shape"] - base["shape"] + acc["count"] - base["count"] + acc["position"] - base["position"]) / 4; math.Abs(d-want) > 2e-4 || (d != 0 && se <= 0) {
		t.Errorf("mean: difference %s (SE %s), want %.4f with a standard error\n%s", m[1], m[2], want, stdout)
	}
	checkJudgeDraws(t, judge, own, swapped, line)
	short := write("short.jsonl", func(i int) string { return recs[i].Image }, 10)
	if _, stderr, code := runGolem(t, "eval", "judge", "--judge", judge, "--data", own+","+short); code != 1 || !strings.Contains(stderr, short+" 10") {
		t.Errorf("eval judge --data %s,%s: exit %d, stderr %q; want an error naming the shorter draw", own, short, code, stderr)
	}
	for _, c := range []struct{ baseline, want string }{
		{filepath.Join(world, "heldout.jsonl"), "own.jsonl:1 is drawn for"},
		{short, "own.jsonl has 40 images, --baseline " + short + " 10"},
	} {
		if _, stderr, code := runGolem(t, "eval", "judge", "--judge", judge, "--data", own, "--baseline", c.baseline); code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("eval judge --baseline %s: exit %d, stderr %q; want %q", c.baseline, code, stderr, c.want)
		}
	}
}

// checkJudgeDraws runs eval judge on two draws of the same captions at
// once (--data and --baseline naming each file twice): the differences
// are the one draw's, and so are their standard errors, since a caption's
// images in both draws are one cluster (counted as 80 independent
// captions they would be about 0.71 of line's); fewer baseline files than
// data files are refused.
func checkJudgeDraws(t *testing.T, judge, own, swapped, line string) {
	stdout, stderr, code := runGolem(t, "eval", "judge", "--judge", judge, "--data", own+","+own, "--baseline", swapped+","+swapped)
	if code != 0 {
		t.Fatalf("eval judge, two draws: exit %d\n%s%s", code, stdout, stderr)
	}
	two := regexp.MustCompile(`(?m)^against --baseline .*swapped.jsonl, paired over 40 captions .*$`).FindString(stdout)
	if two == "" || !regexp.MustCompile(`(?m)^all +80 `).MatchString(stdout) {
		t.Fatalf("eval judge, two draws of 40 captions printed\n%s", stdout)
	}
	terms := regexp.MustCompile(`[a-z(),]+ [-+][0-9.]+ \(SE [0-9.]+\)`)
	if a, b := terms.FindAllString(line, -1), terms.FindAllString(two, -1); len(a) != 6 || !reflect.DeepEqual(a, b) {
		t.Errorf("two draws of the same images: %q, want one draw's %q", b, a)
	}
	if _, stderr, code := runGolem(t, "eval", "judge", "--judge", judge, "--data", own+","+own, "--baseline", swapped); code != 2 || !strings.Contains(stderr, "--data names 2 files, --baseline 1") {
		t.Errorf("eval judge, two draws against one baseline: exit %d, stderr %q", code, stderr)
	}
}
