package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/golem-ml/golem/demo"
	"github.com/golem-ml/golem/eval"
)

func init() {
	register("demo", "the whole recipe on built-in data: pretrain, SFT, rankings, reward model, PPO, DPO, GRPO, report card (--multimodal: CLIP and a VLM on the shapes world)", runDemo)
}

func runDemo(args []string) error {
	fs := newFlags("demo", `golem demo --quick --out /tmp/golem-demo`)
	out := fs.String("out", "", "folder for the models and the report (default: golem-demo-DATE-TIME)")
	quick := fs.Bool("quick", false, "a few steps of each stage: checks that everything runs, in seconds")
	seed := fs.Uint64("seed", defaultSeed, "random seed (README's numbers are from --seed 1)")
	reuse := fs.Bool("reuse", false, "keep the base and SFT models an earlier run left in --out")
	tools := fs.Bool("tools", false, "only a tiny model that calls the calculator, trained on tool round trips in about a minute (--out/sft; prints tool_use=X on held-out questions)")
	multimodal := fs.Bool("multimodal", false, "the multi-modal recipe on the shapes world instead: CLIP, text to image (a VQ-VAE, a judge, a text-to-image model reranked by CLIP), a language model, LLaVA's align and instruct stages, a reward model and DPO on simulated image rankings, each model scored on test and held-out scenes")
	clipTok := fs.String("clip-tokenizer", "../shared/data/tokenizer/clip/bpe_simple_vocab_16e6.txt.gz", "--multimodal: CLIP's bpe_simple_vocab_16e6.txt[.gz] (openai/CLIP's)")
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
		if *reuse || *multimodal {
			return usageError{fmt.Errorf("demo: --tools takes no --reuse or --multimodal")}
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
	o := demo.Options{NewBackend: newBackend, Out: *out, Quick: *quick, Seed: *seed, Reuse: *reuse, CLIPTokenizer: *clipTok}
	var card *eval.Report
	if *multimodal {
		var res *demo.MMResult
		if res, err = demo.RunMultimodal(ctx, o); err == nil {
			card = demo.MultimodalReport(res)
		}
	} else {
		var res *demo.Result
		if res, err = demo.Run(ctx, o); err == nil {
			card = demo.Report(res)
		}
	}
	if ctx.Err() != nil { // Ctrl-C: each stage saved where it stopped; no report card of half-trained models
		fmt.Fprintf(os.Stderr, "interrupted: the stages' models are in %s (no report card)\n", *out)
		return errInterrupted
	}
	if err != nil {
		return err
	}
	if err := card.Write(*out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "\nreport card: %s/report.html, report.md, report.json\n\n", *out)
	fmt.Print(card.Summary.Text())
	return nil
}
