package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/golem-ml/golem/demo"
)

func init() {
	register("demo", "the whole recipe on built-in data: pretrain, SFT, rankings, reward model, PPO, DPO, GRPO, report card", runDemo)
}

func runDemo(args []string) error {
	fs := newFlags("demo", `golem demo --quick --out /tmp/golem-demo`)
	out := fs.String("out", "", "folder for the models and the report (default: golem-demo-DATE-TIME)")
	quick := fs.Bool("quick", false, "a few steps of each stage: checks that everything runs, in seconds")
	seed := fs.Uint64("seed", defaultSeed, "random seed (README's numbers are from --seed 1)")
	reuse := fs.Bool("reuse", false, "keep the base and SFT models an earlier run left in --out")
	tools := fs.Bool("tools", false, "only a tiny model that calls the calculator, trained on tool round trips in about a minute (--out/sft; prints tool_use=X on held-out questions)")
	dev := addDeviceFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	newBackend, err := dev.perStage()
	if err != nil {
		return err
	}
	if *out == "" {
		*out = "golem-demo-" + time.Now().Format("20060102-150405")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *tools {
		if *reuse {
			return usageError{fmt.Errorf("demo: --tools takes no --reuse")}
		}
		tu, err := demo.ToolModel(ctx, demo.ToolModelOptions{NewBackend: newBackend, Out: *out, Quick: *quick, Seed: *seed})
		if ctx.Err() != nil {
			return errInterrupted
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "the model: %s\n", filepath.Join(*out, "sft"))
		fmt.Printf("tool_use=%.3f right_calls=%.3f heldout=%d\n", tu.Success, tu.Calls, tu.Tasks)
		return nil
	}
	res, err := demo.Run(ctx, demo.Options{NewBackend: newBackend, Out: *out, Quick: *quick, Seed: *seed, Reuse: *reuse})
	if ctx.Err() != nil { // Ctrl-C: each stage saved where it stopped; no report card of half-trained models
		fmt.Fprintf(os.Stderr, "interrupted: the stages' models are in %s (no report card)\n", *out)
		return errInterrupted
	}
	if err != nil {
		return err
	}
	card := demo.Report(res)
	if err := card.Write(*out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "\nreport card: %s/report.html, report.md, report.json\n\n", *out)
	fmt.Print(card.Summary.Text())
	return nil
}
