package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"

	"github.com/golem-ml/golem/data/synth"
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
	fs := newFlags("pretrain", `golem pretrain --config baby --out out/base`)
	var data listFlag
	fs.Var(&data, "data", "text file, folder, glob or JSONL with \"text\" (repeatable; default: golem's built-in corpus)")
	config := fs.String("config", "baby", "named recipe: "+presetNames())
	tok := fs.String("tokenizer", "", `"char", a tokenizer (folder, tokenizer.json, encoder.json+vocab.bpe folder), or empty to train a BPE on the data`)
	vocab := fs.Int("vocab-size", 4096, "vocabulary size when training a BPE")
	out := fs.String("out", "", "model folder to write (required)")
	resume := fs.Bool("resume", false, resumeHelp)
	// Every field of the recipe can be overridden; the help shows the
	// default recipe's value.
	baby := train.Presets()["baby"]
	rd := func(v any) string { return fmt.Sprintf(" (default: the --config recipe's; baby: %v)", v) }
	arch := fs.String("arch", "", "gpt2 or llama"+rd(baby.Model.Arch))
	layers := fs.Int("layers", 0, "transformer blocks"+rd(baby.Model.Layers))
	heads := fs.Int("heads", 0, "attention heads"+rd(baby.Model.Heads))
	kvHeads := fs.Int("kv-heads", 0, "key/value heads, llama (default: --heads)")
	hidden := fs.Int("hidden", 0, "model width"+rd(baby.Model.Hidden))
	block := fs.Int("block", 0, "tokens per sequence"+rd(baby.Block))
	batch := fs.Int("batch", 0, "sequences per micro-batch"+rd(baby.Batch))
	steps := fs.Int("steps", 0, "optimizer steps"+rd(baby.Loop.Steps))
	accum := fs.Int("accum", 0, "micro-batches per step (default: the --config recipe's; baby: 1)")
	lr := fs.Float64("lr", 0, "peak learning rate"+rd(baby.Loop.LR))
	minLR := fs.Float64("min-lr", 0, "final learning rate"+rd(baby.Loop.MinLR))
	warmup := fs.Int("warmup", 0, "warmup steps"+rd(baby.Loop.Warmup))
	wd := fs.Float64("weight-decay", 0, "weight decay, matrices only"+rd(baby.Loop.WeightDecay))
	clip := fs.Float64("clip", 0, "gradient-norm clip, 0 = off"+rd(baby.Loop.Clip))
	dropout := fs.Float64("dropout", 0, "dropout"+rd(baby.Model.Dropout))
	evalEvery := fs.Int("eval-every", 0, "evaluate every N steps, 0 = at the end"+rd(baby.Loop.EvalEvery))
	evalIters := fs.Int("eval-iters", 0, "batches per evaluation"+rd(baby.EvalIters))
	saveEvery := fs.Int("save-every", 0, "also checkpoint every N steps into OUT/trainer/step-N, 0 = at the end and on Ctrl-C"+rd(baby.Loop.SaveEvery))
	seed := fs.Uint64("seed", defaultSeed, "random seed")
	special := fs.Bool("special-tokens", false, "read the tokenizer's special tokens in --data as those tokens (a corpus written in a chat format: <|im_end|>, <|endoftext|>), not as their characters")
	ckptAct := addCheckpointActivationsFlag(fs)
	dtype := addDTypeFlag(fs)
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if err := required(fs, "out"); err != nil {
		return err
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
	// These may be set to 0, so the recipe's value stays unless the flag
	// is given.
	if isSet(fs, "warmup") {
		p.Loop.Warmup = *warmup
	}
	if isSet(fs, "weight-decay") {
		p.Loop.WeightDecay = *wd
	}
	if isSet(fs, "clip") {
		p.Loop.Clip = *clip
	}
	if isSet(fs, "dropout") {
		m.Dropout = float32(*dropout)
	}
	if isSet(fs, "eval-every") {
		p.Loop.EvalEvery = *evalEvery
	}
	if isSet(fs, "save-every") {
		p.Loop.SaveEvery = *saveEvery
	}
	p.Loop.Seed, p.Loop.Out, p.Loop.Resume, p.Loop.CheckpointActivations = *seed, *out, *resume, *ckptAct
	p.Loop.DType = *dtype
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := train.Pretrain(ctx, train.PretrainOptions{Backend: be, Data: data, Tokenizer: *tok, VocabSize: *vocab, Preset: p, SpecialTokens: *special,
		Builtin: func(w io.Writer) error { return synth.WriteCorpus(w, synth.CorpusOptions{Seed: 1, Chinese: 0.15}) }})
	if err != nil {
		return err
	}
	fmt.Printf("model saved to %s (%d steps, %.0fs)\n", *out, res.Step, res.Seconds)
	fmt.Printf("val_loss=%.4f\n", res.Eval["val_loss"])
	return interrupted(res.Interrupted, res.Step, *out)
}
