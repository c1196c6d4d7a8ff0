package main

import (
	"fmt"
	"os"
	"sort"

	"github.com/golem-ml/golem/data/synth/shapes"
)

func init() {
	register("data shapes", "write golem's shapes world: scene images with captions, questions and instructions (English and Chinese), simulated answer rankings, held-out colour-shape pairs, class folders", runDataShapes)
}

func runDataShapes(args []string) error {
	fs := newFlags("data shapes", `golem data shapes --out shapes --n 2000 --size 32`)
	out := fs.String("out", "", "output folder (required)")
	n := fs.Int("n", 2000, "train scenes")
	nTest := fs.Int("n-test", 200, "test scenes, and as many held-out scenes")
	perClass := fs.Int("per-class", 10, "images per colour-shape class in OUT/classes")
	size := fs.Int("size", 32, "image side in pixels (12 to 1024)")
	seed := fs.Uint64("seed", 1337, "random seed: the same seed writes the same files")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usageError{fmt.Errorf("data shapes: need --out DIR (golem data shapes --help)")}
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"--n", *n}, {"--n-test", *nTest}, {"--per-class", *perClass}} {
		if f.v < 1 {
			return usageError{fmt.Errorf("data shapes: %s %d: want at least 1", f.name, f.v)}
		}
	}
	sum, err := shapes.Write(shapes.Options{Out: *out, Seed: *seed, Size: *size, Train: *n, Test: *nTest, PerClass: *perClass})
	if err != nil {
		return err
	}
	var splits []string
	for s := range sum.Scenes {
		splits = append(splits, s)
	}
	sort.Strings(splits)
	for _, s := range splits {
		fmt.Fprintf(os.Stdout, "%-8s %d scenes: %s/%s.jsonl (%s_zh.jsonl, %s_scenes.jsonl, %s_llava.json, %s_rankings.jsonl, %s_prefs.jsonl)\n", s, sum.Scenes[s], *out, s, s, s, s, s, s)
	}
	fmt.Fprintf(os.Stdout, "classes  %d folders of %d images: %s/classes\n", sum.Classes, *perClass, *out)
	fmt.Fprintf(os.Stdout, "held-out pairs (never in train): %v\n", shapes.HeldOut)
	return nil
}
