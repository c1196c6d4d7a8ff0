package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/train"
)

func init() {
	register("ppo", "stage 4: PPO against a reward model with a KL penalty to the SFT model", runPPO)
}

// readPrompts reads prompts from a data file, or "builtin" for the
// built-in tasks' train split.
func readPrompts(path string, n int, seed uint64) ([]data.Example, error) {
	if path == "builtin" {
		tasks, err := synth.Tasks(synth.TaskOptions{Seed: int64(seed), N: n})
		if err != nil {
			return nil, err
		}
		ex := make([]data.Example, len(tasks))
		for i, tk := range tasks {
			ex[i] = data.Example{Prompt: tk.Prompt, Source: "builtin:" + tk.Key}
		}
		return ex, nil
	}
	ex, err := readExamples(path, "")
	if err != nil {
		return nil, err
	}
	for i := range ex {
		if len(ex[i].Prompt) == 0 {
			return nil, fmt.Errorf("%s: no prompt (a %s record); PPO needs prompts", ex[i].Source, ex[i].Kind)
		}
	}
	return ex, nil
}

func runPPO(args []string) error {
	fs := newFlags("ppo", `golem ppo --model out/sft --reward out/rm --data builtin --out out/ppo`)
	policy := fs.String("model", "", "the SFT model: the policy's start and the frozen reference; a LLaVA folder (golem vlm's --out) answers prompts about images (required)")
	reward := fs.String("reward", "", "the reward model (required; for a LLaVA policy, golem reward's on a LLaVA folder)")
	prompts := fs.String("data", "builtin", `prompts: a data file with prompts (or a store: sqlite:FILE, postgres://...), or "builtin"; for a LLaVA policy each with one image ("images")`)
	nBuiltin := fs.Int("builtin-n", 2000, "built-in prompts to use")
	ptx := fs.String("ptx", "", "pretraining text file for PPO-ptx")
	ptxCoef := fs.Float64("ptx-coef", 1, "weight of the pretraining loss (with --ptx)")
	batch := fs.Int("batch", 16, "prompts per rollout")
	mb := fs.Int("minibatches", 2, "optimizer steps per pass over a rollout")
	epochs := fs.Int("epochs", 2, "passes over each rollout")
	maxTok := fs.Int("max-tokens", 64, "new tokens per answer")
	temp := fs.Float64("temperature", 1, "rollout sampling temperature")
	kl := fs.Float64("beta", 0.02, "KL penalty per token")
	target := fs.Float64("target-kl", 0, "adapt --beta toward this KL per answer (0 = fixed --beta)")
	horizon := fs.Int("kl-horizon", 10000, "adaptive KL controller horizon, in samples")
	clipRange := fs.Float64("clip-range", 0.2, "policy ratio clip")
	vclip := fs.Float64("value-clip", 0.2, "value clip")
	vf := fs.Float64("vf-coef", 0.1, "value loss weight")
	gamma := fs.Float64("gamma", 1, "discount")
	lam := fs.Float64("lambda", 0.95, "GAE lambda")
	rclip := fs.Float64("reward-clip", 10, "clip reward-model scores to ±this")
	ema := fs.Float64("ema", 0.99, "EMA decay of the policy, saved in OUT/ema (negative = off; off with --lora-r)")
	lf := addLoopFlags(fs, 100, 1e-5)
	alias(fs, "policy", "model")
	alias(fs, "prompts", "data")
	alias(fs, "kl-coef", "beta")
	lora := addLoRAFlags(fs)
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if err := required(fs, "model", "reward", "out"); err != nil {
		return err
	}
	emaSet := false
	fs.Visit(func(f *flag.Flag) { emaSet = emaSet || f.Name == "ema" })
	if *lora.r > 0 && emaSet && *ema > 0 {
		return fmt.Errorf("ppo: --ema with --lora-r: a LoRA run keeps no EMA (an average of the adapters' A and B is not one of their product); drop --ema")
	}
	ex, err := readPrompts(*prompts, *nBuiltin, *lf.seed)
	if err != nil {
		return err
	}
	var texts []string
	coef := 0.0
	if *ptx != "" {
		b, err := os.ReadFile(*ptx)
		if err != nil {
			return err
		}
		texts = strings.Split(string(b), "\n\n")
		coef = *ptxCoef
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := train.PPO(ctx, train.PPOOptions{Backend: be, Policy: *policy, Reward: *reward, Prompts: ex, PtxTexts: texts, PtxCoef: coef,
		Batch: *batch, MiniBatches: *mb, Epochs: *epochs, MaxTokens: *maxTok, Temperature: *temp, KLCoef: *kl, TargetKL: *target, KLHorizon: *horizon,
		ClipRange: *clipRange, ValueClip: *vclip, VFCoef: *vf, Gamma: *gamma, Lambda: *lam, RewardClip: *rclip, EMADecay: *ema,
		LoRA: lora.config(), Merge: *lora.merge, Loop: lora.loop(fs, lf.config())})
	if err != nil {
		return err
	}
	if *lora.r > 0 {
		fmt.Printf("policy's LoRA adapter saved to %s (the value model's in value/; %d steps, %.0fs)\n", *lf.out, res.Step, res.Seconds)
	} else {
		fmt.Printf("policy saved to %s (value model in value/, EMA in ema/; %d steps, %.0fs)\n", *lf.out, res.Step, res.Seconds)
	}
	// kl is k1 (log pi - log ref summed over an answer, what the penalty
	// and the controller use; it can be negative on a rollout), kl_k3 the
	// same KL by k3, never negative.
	fmt.Printf("reward=%s kl=%s kl_k3=%s\n", metric(res.Eval, "reward"), metric(res.Eval, "kl"), metric(res.Eval, "kl_k3"))
	return interrupted(res.Interrupted, res.Step, *lf.out)
}
