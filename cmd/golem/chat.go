package main

import (
	"fmt"
	"os"

	"github.com/golem-ml/golem/eval"
)

func init() {
	register("chat", "chat with a model in the terminal (reads lines from stdin; /reset, /exit)", runChat)
}

func runChat(args []string) error {
	fs := newFlags("chat", `printf "What is 12 + 7?\n" | golem chat --model out/sft --temperature 0`)
	model := fs.String("model", "", "model folder, adapter folder, FILE.gguf or ollama:NAME[:TAG] (required)")
	system := fs.String("system", "", "system message")
	sampling := addSamplingFlags(fs)
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if *model == "" {
		return fmt.Errorf("chat: --model DIR is required")
	}
	gen := sampling.options()
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
