package main

import (
	"fmt"
	"os"
	"sort"

	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/eval"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/model/load"
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

func init() {
	register("data shapes-prefs", "on-policy preference pairs about a shapes world's images: a LLaVA model's own sampled answers, marked right or wrong by a simulated annotator who knows each scene (golem eval vlm's scoring), for golem dpo", runDataShapesPrefs)
}

func runDataShapesPrefs(args []string) error {
	fs := newFlags("data shapes-prefs", `golem data shapes-prefs --model vlm-instruct --data shapes --split train --limit 400 --k 4 --out onpolicy_prefs.jsonl`)
	model := fs.String("model", "", "a LLaVA folder (golem vlm's --out): the model whose answers are sampled (required)")
	dataDir := fs.String("data", "", "a shapes world folder (golem data shapes' --out) (required)")
	split := fs.String("split", "train", "the split whose scenes are asked about")
	limit := fs.Int("limit", 0, "scenes, 0 = all")
	k := fs.Int("k", 4, "answers sampled for each question (descriptions for each scene with --on descriptions or corrections, besides the greedy one; corrections take 0)")
	temp := fs.Float64("temperature", 1, "sampling temperature of the answers (the description is greedy)")
	seed := fs.Uint64("seed", 1337, "sampling seed: the same seed writes the same file")
	maxTokens := fs.Int("max-tokens", 48, "new tokens at most per answer")
	greedyWrong := fs.Bool("greedy-wrong", false, "pairs only for the questions whose greedy answer is wrong, that answer among the rejected")
	on := fs.String("on", "answers", "what the pairs are on: answers (each question's answers after the model's own description), descriptions (the model's own descriptions, scored by what they get right of the scene) or corrections (each of the model's own descriptions against itself with its wrong attribute words replaced by the true ones)")
	out := fs.String("out", "", "the preference JSONL to write: {\"prompt\", \"chosen\", \"rejected\", \"images\"} (required)")
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if err := required(fs, "model", "data", "out"); err != nil {
		return err
	}
	if *on != "answers" && *on != "descriptions" && *on != "corrections" {
		return usageError{fmt.Errorf("data shapes-prefs: --on %q: want answers, descriptions or corrections", *on)}
	}
	if *greedyWrong && *on != "answers" {
		return usageError{fmt.Errorf("data shapes-prefs: --greedy-wrong is for --on answers")}
	}
	minK := 2
	if *on == "corrections" {
		minK = 0 // each wrong description makes a pair: the greedy one alone is enough
	}
	if *k < minK || *temp <= 0 {
		return usageError{fmt.Errorf("data shapes-prefs: --k %d --temperature %g: want at least %d samples at a temperature above 0", *k, *temp, minK)}
	}
	if !llava.IsLLaVA(*model) {
		return fmt.Errorf("data shapes-prefs: %s: not a LLaVA folder (golem vlm's --out)", *model)
	}
	l, err := load.Model(be, *model, load.Options{})
	if err != nil {
		return err
	}
	m, tok := l.VLM, l.Tok
	describe, end := eval.VLMImage(m, tok, *maxTokens)
	sample, _ := eval.VLMImageSampled(m, tok, *maxTokens, *temp, *seed)
	res, err := eval.WriteVLMPrefs(*out, *dataDir, func(emit func(shapes.PreferenceRecord) error) (eval.VLMPrefsResult, error) {
		switch *on {
		case "descriptions":
			return eval.VLMDescriptionPrefs(*dataDir, *split, *limit, *k, describe, sample, end, emit)
		case "corrections":
			return eval.VLMCorrectionPrefs(*dataDir, *split, *limit, *k, describe, sample, end, emit)
		}
		return eval.VLMPrefs(*dataDir, *split, *limit, *k, *greedyWrong, describe, sample, end, emit)
	})
	if err != nil {
		return err
	}
	switch *on {
	case "descriptions":
		fmt.Printf("%d scenes of %s, %d descriptions sampled: mean score %.4f (greedy %.4f), %d scored 1; %d scenes' descriptions all alike (no pair)\n",
			res.Scenes, *split, res.Samples, res.ScoreSum/float64(max(res.Samples, 1)), res.GreedyScoreSum/float64(max(res.Questions, 1)), res.Right, res.AllRight)
		fmt.Printf("pairs=%d %s\n", res.Pairs, *out)
		return nil
	case "corrections":
		fmt.Printf("%d scenes of %s, greedy descriptions' mean score %.4f, %d descriptions sampled besides; %d corrected descriptions, %d of them with an object dropped or added; %d scenes described right (no pair)\n",
			res.Scenes, *split, res.GreedyScoreSum/float64(max(res.Questions, 1)), res.Samples, res.Pairs, res.Rewritten, res.AllRight)
		fmt.Printf("pairs=%d %s\n", res.Pairs, *out)
		return nil
	}
	fmt.Printf("%d scenes of %s, %d questions, %d answers sampled: %d right (%.4f); %d questions all right (no pair), %d none right (the true answer chosen)\n",
		res.Scenes, *split, res.Questions, res.Samples, res.Right, float64(res.Right)/float64(max(res.Samples, 1)), res.AllRight, res.NoneRight)
	if *greedyWrong {
		fmt.Printf("%d questions' greedy answer right (no pair)\n", res.GreedyRight)
	}
	if res.NoDescription > 0 {
		fmt.Printf("%d scenes described with nothing: not asked\n", res.NoDescription)
	}
	fmt.Printf("pairs=%d %s\n", res.Pairs, *out)
	return nil
}
