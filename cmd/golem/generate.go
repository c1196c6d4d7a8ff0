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

// samplingFlags are the sampling flags of generate and chat, with one set
// of defaults: Ollama's (temperature 0.8, top-k 40, top-p 0.9, repetition
// penalty 1.1).
type samplingFlags struct {
	maxTokens, topK     *int
	temp, topP, penalty *float64
	seed                *uint64
}

func addSamplingFlags(fs *flag.FlagSet) samplingFlags {
	return samplingFlags{
		maxTokens: fs.Int("max-tokens", 256, "new tokens at most (per answer)"),
		temp:      fs.Float64("temperature", 0.8, "sampling temperature (0 = greedy)"),
		topK:      fs.Int("top-k", 40, "keep the K most likely tokens (0 = all)"),
		topP:      fs.Float64("top-p", 0.9, "nucleus sampling mass (1 = all)"),
		penalty:   fs.Float64("repetition-penalty", 1.1, "penalty for tokens already present (1 = off)"),
		seed:      fs.Uint64("seed", defaultSeed, "random seed"),
	}
}

func (s samplingFlags) options() generate.Options {
	return generate.Options{MaxTokens: *s.maxTokens, Temperature: *s.temp, TopK: *s.topK, TopP: *s.topP,
		RepetitionPenalty: *s.penalty, Seed: *s.seed}
}

func runGenerate(args []string) error {
	fs := newFlags("generate", `golem generate --model out/shakespeare --prompt "ROMEO:" --max-tokens 200`)
	model := fs.String("model", "", "model folder, FILE.gguf or ollama:NAME[:TAG] (required)")
	prompt := fs.String("prompt", "", "text to continue")
	sampling := addSamplingFlags(fs)
	var stop listFlag
	fs.Var(&stop, "stop", "stop string (repeatable)")
	n := fs.Int("n", 1, "samples to draw (decoded as one batch)")
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if *model == "" {
		return fmt.Errorf("generate: --model DIR is required")
	}
	o := sampling.options()
	o.Stop = stop
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
