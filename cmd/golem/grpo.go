package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/eval"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/model/load"
	"github.com/golem-ml/golem/train"
)

func init() {
	register("grpo", "GRPO: groups of sampled answers scored by programs (exact answer, format)", runGRPO)
}

func runGRPO(args []string) error {
	fs := newFlags("grpo", `golem grpo --model out/sft --data builtin --out out/grpo
  golem grpo --model vlm-instruct --data shapes --split train --limit 500 --max-tokens 8 --out vlm-grpo`)
	policy := fs.String("model", "", "the SFT model, or a LLaVA folder (golem vlm's --out) with --data a shapes world: the policy's start and the frozen reference (required)")
	tasks := fs.String("data", "builtin", `checkable tasks: "builtin", a JSONL file written by golem's synth.WriteTasks, or a shapes world's folder (golem data shapes' --out; --model a LLaVA folder)`)
	nBuiltin := fs.Int("builtin-n", 2000, "built-in tasks to use")
	split := fs.String("split", "train", "with a shapes world: the split whose scenes' questions are the tasks")
	limit := fs.Int("limit", 0, "with a shapes world: scenes, 0 = all")
	ask := fs.String("ask", "questions", `with a shapes world: what the tasks ask, "questions" (colour, shape, count, position, each after the model's own description, rewarded "correct") or "descriptions" ("Describe the image.", rewarded "description": the annotator's score of it, 0 to 1)`)
	rewards := fs.String("rewards", "correct,format", "reward functions, summed: correct, format, task, description (a shapes world's: correct alone for its questions, description for its descriptions, the defaults there)")
	group := fs.Int("group", 8, "answers sampled per prompt")
	prompts := fs.Int("batch", 4, "prompts per micro-batch (each sampled --group times)")
	beta := fs.Float64("beta", 0.04, "KL weight (negative = off)")
	clipRange := fs.Float64("clip-range", 0.2, "ratio clip")
	maxTok := fs.Int("max-tokens", 64, "new tokens per answer")
	temp := fs.Float64("temperature", 1, "sampling temperature")
	skipUniform := fs.Bool("skip-uniform", false, "keep only groups whose rewards differ (DAPO's dynamic sampling): each micro-batch draws --batch prompts up to 4 times until --batch such groups (short of them, alike ones fill it)")
	trains := fs.String("train", "lm", "with a LLaVA --model: what trains, lm (the language model; the tower and projector stay) or projector,lm (the projector too, as golem vlm's stage instruct; not with --lora-r)")
	lf := addLoopFlags(fs, 100, 1e-6)
	alias(fs, "policy", "model")
	alias(fs, "tasks", "data")
	alias(fs, "prompts", "batch")
	lora := addLoRAFlags(fs)
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if err := required(fs, "model", "out"); err != nil {
		return err
	}
	var proj bool
	switch *trains {
	case "lm":
	case "projector,lm", "lm,projector":
		proj = true
	default:
		return usageError{fmt.Errorf("grpo: --train %q: want lm or projector,lm", *trains)}
	}
	if st, err := os.Stat(*tasks); err == nil && st.IsDir() {
		if *ask != "questions" && *ask != "descriptions" {
			return usageError{fmt.Errorf("grpo: --ask %q: want questions or descriptions", *ask)}
		}
		if !isSet(fs, "rewards") {
			*rewards = map[string]string{"questions": "correct", "descriptions": "description"}[*ask]
		}
		vs, err := shapesTasks(be, *policy, *tasks, *split, *limit, *ask == "descriptions")
		if err != nil {
			return err
		}
		return grpoRun(be, fs, lf, lora, train.GRPOOptions{Policy: *policy, Tasks: vs, Rewards: strings.Split(*rewards, ","), Group: *group, Prompts: *prompts,
			Beta: *beta, ClipRange: *clipRange, MaxTokens: *maxTok, Temperature: *temp, TrainProjector: proj, SkipUniform: *skipUniform})
	}
	if proj {
		return usageError{fmt.Errorf("grpo: --train %s: the projector is a LLaVA model's; --data %s is not a shapes world", *trains, *tasks)}
	}
	if isSet(fs, "ask") {
		return usageError{fmt.Errorf("grpo: --ask is for a shapes world's scenes; --data %s is not a shapes world", *tasks)}
	}
	var ts []synth.Task
	if *tasks == "builtin" {
		ts, err = synth.Tasks(synth.TaskOptions{Seed: int64(*lf.seed), N: *nBuiltin})
	} else {
		var f *os.File
		if f, err = os.Open(*tasks); err == nil {
			ts, err = synth.ReadTasks(f, *tasks)
			f.Close()
		}
	}
	if err != nil {
		return err
	}
	vs := make([]train.Verifiable, len(ts))
	for i, tk := range ts {
		vs[i] = train.Verifiable{Key: tk.Key, Prompt: tk.Prompt, Score: tk.Scores}
	}
	return grpoRun(be, fs, lf, lora, train.GRPOOptions{Policy: *policy, Tasks: vs, Rewards: strings.Split(*rewards, ","), Group: *group, Prompts: *prompts,
		Beta: *beta, ClipRange: *clipRange, MaxTokens: *maxTok, Temperature: *temp, SkipUniform: *skipUniform})
}

// grpoRun runs GRPO with the loop's and LoRA's flags and reports where
// the policy went.
func grpoRun(be backend.Backend, fs *flag.FlagSet, lf loopFlags, lora loraFlags, o train.GRPOOptions) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	o.Backend, o.LoRA, o.Merge, o.Loop = be, lora.config(), *lora.merge, lora.loop(fs, lf.config())
	res, err := train.GRPO(ctx, o)
	if err != nil {
		return err
	}
	fmt.Printf("policy saved to %s (%d steps, %.0fs)\n", *lf.out, res.Step, res.Seconds)
	return interrupted(res.Interrupted, res.Step, *lf.out)
}

// shapesTasks are the questions about a shapes world's scenes as golem
// eval vlm asks them (eval.VLMTasks: after the LLaVA model's own greedy
// description), each scored right or wrong as it marks them; with
// descriptions, "Describe the image." about each scene, each description
// scored by the simulated annotator (eval.VLMDescriptionTasks).
func shapesTasks(be backend.Backend, model, dir, split string, limit int, descriptions bool) ([]train.Verifiable, error) {
	if !llava.IsLLaVA(model) {
		return nil, fmt.Errorf("grpo: --data %s is a shapes world, but --model %s is not a LLaVA folder (golem vlm's --out): its questions are about images", dir, model)
	}
	if descriptions {
		ts, err := eval.VLMDescriptionTasks(dir, split, limit)
		if err != nil {
			return nil, fmt.Errorf("grpo: %w", err)
		}
		fmt.Fprintf(os.Stderr, "grpo: %d descriptions of %s's %s scenes to ask for\n", len(ts), dir, split)
		return verifiableVLM(ts), nil
	}
	l, err := load.Model(be, model, load.Options{})
	if err != nil {
		return nil, err
	}
	describe, end := eval.VLMImage(l.VLM, l.Tok, vlmDescribeTokens)
	ts, skipped, err := eval.VLMTasks(dir, split, limit, describe, end)
	if err != nil {
		return nil, fmt.Errorf("grpo: %w", err)
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("grpo: %s: no questions to ask (the model described %d scenes with nothing)", dir, skipped)
	}
	fmt.Fprintf(os.Stderr, "grpo: %d questions about %s's %s scenes, after the model's own descriptions (%d scenes described with nothing, left out)\n", len(ts), dir, split, skipped)
	return verifiableVLM(ts), nil
}

// verifiableVLM makes GRPO's tasks of a shapes world's: each with its
// image, scored as the task scores.
func verifiableVLM(ts []eval.VLMTask) []train.Verifiable {
	vs := make([]train.Verifiable, len(ts))
	for i, t := range ts {
		vs[i] = train.Verifiable{Key: t.Key, Prompt: t.Prompt, Images: []string{t.Image}, Score: t.Scores}
	}
	return vs
}

// vlmDescribeTokens is golem eval vlm's --max-tokens: the new tokens at
// most of a scene's description.
const vlmDescribeTokens = 48
