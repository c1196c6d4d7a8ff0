package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/train"
)

func init() {
	register("grpo", "GRPO: groups of sampled answers scored by programs (exact answer, format)", runGRPO)
}

func runGRPO(args []string) error {
	fs := newFlags("grpo", `golem grpo --model out/sft --data builtin --out out/grpo`)
	policy := fs.String("model", "", "the SFT model: the policy's start and the frozen reference (required)")
	tasks := fs.String("data", "builtin", `checkable tasks: "builtin", or a JSONL file written by golem's synth.WriteTasks`)
	nBuiltin := fs.Int("builtin-n", 2000, "built-in tasks to use")
	rewards := fs.String("rewards", "correct,format", "reward functions, summed: correct, format, task")
	group := fs.Int("group", 8, "answers sampled per prompt")
	prompts := fs.Int("batch", 4, "prompts per micro-batch (each sampled --group times)")
	beta := fs.Float64("beta", 0.04, "KL weight (negative = off)")
	clipRange := fs.Float64("clip-range", 0.2, "ratio clip")
	maxTok := fs.Int("max-tokens", 64, "new tokens per answer")
	temp := fs.Float64("temperature", 1, "sampling temperature")
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := train.GRPO(ctx, train.GRPOOptions{Backend: be, Policy: *policy, Tasks: vs, Rewards: strings.Split(*rewards, ","), Group: *group, Prompts: *prompts,
		Beta: *beta, ClipRange: *clipRange, MaxTokens: *maxTok, Temperature: *temp, LoRA: lora.config(), Merge: *lora.merge, Loop: lora.loop(fs, lf.config())})
	if err != nil {
		return err
	}
	fmt.Printf("policy saved to %s (%d steps, %.0fs)\n", *lf.out, res.Step, res.Seconds)
	return interrupted(res.Interrupted, res.Step, *lf.out)
}
