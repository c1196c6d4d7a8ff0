package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tokenizer"
)

func init() {
	register("generate", "sample a continuation of a prompt, streamed to stdout", runGenerate)
}

// loadModel reads a golem / Hugging Face model folder and its tokenizer,
// the model onto be.
func loadModel(be backend.Backend, dir string) (*gpt.Model, *tokenizer.Tokenizer, error) {
	m, err := gpt.Load(be, dir)
	if err != nil {
		return nil, nil, err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, nil, err
	}
	if tok.VocabSize() > m.Config.Vocab {
		return nil, nil, fmt.Errorf("%s: tokenizer has %d tokens but the model only %d", dir, tok.VocabSize(), m.Config.Vocab)
	}
	return m, tok, nil
}

func runGenerate(args []string) error {
	fs := flag.NewFlagSet("generate", flag.ExitOnError)
	model := fs.String("model", "", "model folder (required)")
	prompt := fs.String("prompt", "", "text to continue")
	maxTokens := fs.Int("max-tokens", 256, "new tokens at most")
	temp := fs.Float64("temperature", 0.8, "sampling temperature (0 = greedy)")
	topK := fs.Int("top-k", 0, "keep the K most likely tokens (0 = all)")
	topP := fs.Float64("top-p", 1, "nucleus sampling mass (1 = all)")
	rep := fs.Float64("repetition-penalty", 1, "penalty for tokens already present (1 = off)")
	var stop listFlag
	fs.Var(&stop, "stop", "stop string (repeatable)")
	seed := fs.Uint64("seed", 0, "random seed")
	n := fs.Int("n", 1, "samples to draw (decoded as one batch)")
	dev := addDeviceFlag(fs)
	fs.Parse(args)
	be, err := dev.open()
	if err != nil {
		return err
	}
	if *model == "" {
		return fmt.Errorf("generate: --model DIR is required")
	}
	o := generate.Options{MaxTokens: *maxTokens, Temperature: *temp, TopK: *topK, TopP: *topP, RepetitionPenalty: *rep, Stop: stop, Seed: *seed}
	if err := o.Validate(); err != nil {
		return err
	}
	if *n < 1 {
		return fmt.Errorf("generate: --n %d: want at least 1 sample", *n)
	}
	m, tok, err := loadModel(be, *model)
	if err != nil {
		return err
	}
	prompts := make([]string, *n)
	for i := range prompts {
		prompts[i] = *prompt
	}
	if *n == 1 {
		_, err = generate.Text(m, tok, prompts, o, func(_ int, d string) { os.Stdout.WriteString(d) })
		fmt.Println()
		return err
	}
	out, err := generate.Text(m, tok, prompts, o, nil)
	for i, s := range out {
		fmt.Printf("--- sample %d ---\n%s\n", i+1, s)
	}
	return err
}
