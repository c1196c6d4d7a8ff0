package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"

	"github.com/golem-ml/golem/train"
)

func init() {
	register("pretrain", "stage 1: train a GPT on raw text (default: golem's built-in corpus)", runPretrain)
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func presetNames() string {
	var n []string
	for k := range train.Presets() {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

func runPretrain(args []string) error {
	fs := flag.NewFlagSet("pretrain", flag.ExitOnError)
	var data listFlag
	fs.Var(&data, "data", "text file, folder, glob or JSONL with \"text\" (repeatable; default: golem's built-in corpus)")
	config := fs.String("config", "baby", "named recipe: "+presetNames())
	tok := fs.String("tokenizer", "", `"char", a tokenizer (folder, tokenizer.json, encoder.json+vocab.bpe folder), or empty to train a BPE on the data`)
	vocab := fs.Int("vocab-size", 4096, "vocabulary size when training a BPE")
	out := fs.String("out", "", "model folder to write (required)")
	resume := fs.Bool("resume", false, resumeHelp)
	// Every field of the recipe can be overridden.
	arch := fs.String("arch", "", "gpt2 or llama (default: the recipe's)")
	layers := fs.Int("layers", 0, "transformer blocks")
	heads := fs.Int("heads", 0, "attention heads")
	kvHeads := fs.Int("kv-heads", 0, "key/value heads (llama)")
	hidden := fs.Int("hidden", 0, "model width")
	block := fs.Int("block", 0, "tokens per sequence")
	batch := fs.Int("batch", 0, "sequences per micro-batch")
	steps := fs.Int("steps", 0, "optimizer steps")
	accum := fs.Int("accum", 0, "micro-batches per step")
	lr := fs.Float64("lr", 0, "peak learning rate")
	minLR := fs.Float64("min-lr", 0, "final learning rate")
	warmup := fs.Int("warmup", -1, "warmup steps")
	wd := fs.Float64("weight-decay", -1, "weight decay (matrices only)")
	clip := fs.Float64("clip", -1, "gradient-norm clip (0 = off)")
	dropout := fs.Float64("dropout", -1, "dropout")
	evalEvery := fs.Int("eval-every", -1, "evaluate every N steps")
	evalIters := fs.Int("eval-iters", 0, "batches per evaluation")
	saveEvery := fs.Int("save-every", -1, saveEveryHelp+" (default: the recipe's)")
	seed := fs.Uint64("seed", 1337, "random seed")
	dev := addDeviceFlag(fs)
	fs.Parse(args)
	be, err := dev.open()
	if err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("pretrain: --out DIR is required")
	}
	p, ok := train.Presets()[*config]
	if !ok {
		return fmt.Errorf("pretrain: unknown --config %q (have %s)", *config, presetNames())
	}
	m := &p.Model
	setS := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	setI := func(dst *int, v int) {
		if v > 0 {
			*dst = v
		}
	}
	setS(&m.Arch, *arch)
	if m.Arch == "llama" {
		m.Tied, m.RopeTheta, m.Activation = false, 10000, ""
	}
	setI(&m.Layers, *layers)
	setI(&m.Heads, *heads)
	m.KVHeads = m.Heads
	setI(&m.KVHeads, *kvHeads)
	if *hidden > 0 {
		m.Hidden, m.Intermediate = *hidden, 4**hidden
		if m.Arch == "llama" {
			m.Intermediate = (8**hidden/3 + 63) / 64 * 64
		}
	}
	setI(&p.Block, *block)
	m.Context = p.Block
	setI(&p.Batch, *batch)
	setI(&p.Loop.Steps, *steps)
	setI(&p.Loop.Accum, *accum)
	setI(&p.EvalIters, *evalIters)
	if *lr > 0 {
		p.Loop.LR = *lr
	}
	if *minLR > 0 {
		p.Loop.MinLR = *minLR
	}
	if *warmup >= 0 {
		p.Loop.Warmup = *warmup
	}
	if *wd >= 0 {
		p.Loop.WeightDecay = *wd
	}
	if *clip >= 0 {
		p.Loop.Clip = *clip
	}
	if *dropout >= 0 {
		m.Dropout = float32(*dropout)
	}
	if *evalEvery >= 0 {
		p.Loop.EvalEvery = *evalEvery
	}
	if *saveEvery >= 0 {
		p.Loop.SaveEvery = *saveEvery
	}
	p.Loop.Seed, p.Loop.Out, p.Loop.Resume = *seed, *out, *resume
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := train.Pretrain(ctx, train.PretrainOptions{Backend: be, Data: data, Tokenizer: *tok, VocabSize: *vocab, Preset: p})
	if err != nil {
		return err
	}
	if res.Interrupted {
		fmt.Fprintf(os.Stderr, "interrupted at step %d: saved to %s (continue with --resume)\n", res.Step, *out)
	}
	fmt.Printf("model saved to %s (%d steps, %.0fs)\n", *out, res.Step, res.Seconds)
	fmt.Printf("val_loss=%.4f\n", res.Eval["val_loss"])
	return nil
}
