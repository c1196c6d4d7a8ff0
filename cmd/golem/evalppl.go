package main

import (
	"fmt"
	"os"

	"github.com/golem-ml/golem/eval"
	"github.com/golem-ml/golem/model/load"
)

func init() {
	register("eval ppl", "perplexity of a model on a text file", runEvalPPL)
}

func runEvalPPL(args []string) error {
	fs := newFlags("eval ppl", `golem eval ppl --model out/base --data valid.txt`)
	model := fs.String("model", "", "model folder, adapter folder, FILE.gguf or ollama:NAME[:TAG] (required)")
	data := fs.String("data", "", "text file (required)")
	batch := fs.Int("batch", 8, "sequences per forward pass")
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if err := required(fs, "model", "data"); err != nil {
		return err
	}
	l, err := load.Model(be, *model, load.Options{})
	if err != nil {
		return err
	}
	defer l.Freeze()()
	b, err := os.ReadFile(*data)
	if err != nil {
		return err
	}
	r, err := eval.Perplexity(l.Model, l.SoftPrompt, l.Tok.Encode(string(b)), *batch)
	if err != nil {
		return fmt.Errorf("eval ppl: %s: %w", *data, err)
	}
	fmt.Printf("tokens=%d sequences=%d\n", r.Tokens, r.Sequences)
	fmt.Printf("loss=%.4f ppl=%.3f\n", r.Loss, r.PPL)
	return nil
}
