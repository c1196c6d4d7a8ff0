package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/golem-ml/golem/eval"
	"github.com/golem-ml/golem/generate"
)

func init() {
	register("chat", "chat with a model in the terminal (reads lines from stdin; /reset, /exit)", runChat)
}

func runChat(args []string) error {
	fs := flag.NewFlagSet("chat", flag.ExitOnError)
	model := fs.String("model", "", "model folder or adapter folder (required)")
	system := fs.String("system", "", "system message")
	maxTokens := fs.Int("max-tokens", 256, "new tokens per answer at most")
	temp := fs.Float64("temperature", 0.7, "sampling temperature (0 = greedy)")
	topP := fs.Float64("top-p", 0.9, "nucleus sampling mass")
	topK := fs.Int("top-k", 0, "keep the K most likely tokens (0 = all)")
	rep := fs.Float64("repetition-penalty", 1.1, "penalty for tokens already present (1 = off)")
	seed := fs.Uint64("seed", 0, "random seed")
	dev := addDeviceFlag(fs)
	fs.Parse(args)
	be, err := dev.open()
	if err != nil {
		return err
	}
	if *model == "" {
		return fmt.Errorf("chat: --model DIR is required")
	}
	gen := generate.Options{MaxTokens: *maxTokens, Temperature: *temp, TopP: *topP, TopK: *topK, RepetitionPenalty: *rep, Seed: *seed}
	if err := gen.Validate(); err != nil {
		return fmt.Errorf("chat: %w", err)
	}
	m, tok, soft, err := eval.LoadModel(be, *model)
	if err != nil {
		return err
	}
	prompt := ""
	if fi, err := os.Stdin.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		prompt = "> "
		fmt.Fprintln(os.Stderr, "chatting with", *model, "(/reset clears the history, /exit or Ctrl-D ends)")
	}
	return eval.Chat(m, tok, os.Stdin, os.Stdout, eval.ChatOptions{System: *system, Soft: soft, Prompt: prompt,
		Gen: gen})
}
