package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/golem-ml/golem/train"
)

func init() {
	register("dpo", "direct preference optimisation (DPO or IPO) on preference pairs", runDPO)
}

func runDPO(args []string) error {
	fs := newFlags("dpo", `golem dpo --model out/sft --data preferences.jsonl --out out/dpo`)
	policy := fs.String("model", "", "the SFT model: the policy's start and the frozen reference; a LLaVA folder (golem vlm's --out) trains on labels with images (required)")
	dataPath := fs.String("data", "", "preference pairs or rankings (required)")
	heldout := fs.String("heldout", "", "held-out pairs (default: --heldout-frac of the prompts of --data)")
	frac := fs.Float64("heldout-frac", 0.1, "share of prompts held out when --heldout is not given")
	format := fs.String("format", "", "force the data format")
	beta := fs.Float64("beta", 0.1, "strength of the KL constraint")
	loss := fs.String("loss-type", "sigmoid", "sigmoid (DPO) or ipo")
	rpo := fs.Float64("rpo-alpha", 0, "add this times the chosen answers' negative log-likelihood per token to the loss (RPO; TRL's rpo_alpha): keeps the preferred answers likely")
	batch := fs.Int("batch", 8, "pairs per micro-batch")
	truncate := fs.Bool("truncate", false, "keep the end of conversations longer than the context instead of failing")
	lf := addLoopFlags(fs, 200, 5e-7)
	alias(fs, "policy", "model")
	lora := addLoRAFlags(fs)
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if err := required(fs, "model", "data", "out"); err != nil {
		return err
	}
	ex, err := readExamples(*dataPath, *format)
	if err != nil {
		return err
	}
	hv, err := readExamples(*heldout, *format)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := train.DPO(ctx, train.DPOOptions{Backend: be, Policy: *policy, Data: ex, Heldout: hv, HeldoutFrac: *frac, Beta: *beta, LossType: *loss, RPOAlpha: *rpo,
		Batch: *batch, Truncate: *truncate, LoRA: lora.config(), Merge: *lora.merge, Loop: lora.loop(fs, lf.config())})
	if err != nil {
		return err
	}
	fmt.Printf("policy saved to %s (%d steps, %.0fs)\n", *lf.out, res.Step, res.Seconds)
	fmt.Printf("loss=%.4f val_accuracy=%s val_margin=%s\n", res.Loss, metric(res.Eval, "val_accuracy"), metric(res.Eval, "val_margin"))
	return interrupted(res.Interrupted, res.Step, *lf.out)
}
