package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/gguf/export"
)

func init() {
	register("quantize", "write a model with Q8_0 or Q4_0 weights: a folder holding model.gguf, which every --model reads", runQuantize)
}

// runQuantize is golem quantize: a model folder's weight matrices as
// llama.cpp's Q8_0 or Q4_0 blocks. The output folder holds one GGUF file,
// model.gguf (with the tokenizer and chat template in its metadata):
// safetensors has no dtype for ggml's blocks, and the same file runs in
// llama.cpp and Ollama.
func runQuantize(args []string) error {
	fs := newFlags("quantize", `golem quantize --model out/sft --type q8_0 --out out/sft-q8`)
	model := fs.String("model", "", "model folder: config.json, model.safetensors, tokenizer.json (gpt2, llama or qwen2) (required)")
	typ := fs.String("type", "q8_0", "q8_0 (8 bits a weight, a scale per 32) or q4_0 (4 bits)")
	out := fs.String("out", "", "output folder; it gets model.gguf (required)")
	dev := addDeviceFlag(fs) // an adapter folder is merged into its base there
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if *model == "" || *out == "" {
		return fmt.Errorf("quantize: --model DIR and --out DIR are required")
	}
	t, err := gguf.ParseTensorType(*typ)
	if err != nil || (t != gguf.Q8_0 && t != gguf.Q4_0) {
		return fmt.Errorf("quantize: --type %q: want q8_0 or q4_0 (golem export --format gguf writes f32, f16 and bf16)", *typ)
	}
	if _, err := os.Stat(filepath.Join(*out, "model.safetensors")); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("quantize: --out %s holds model.safetensors (a float model would be loaded instead): choose another folder", *out)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	file := filepath.Join(*out, gguf.FolderFile)
	r, err := export.Folder(*model, file, export.Options{Type: t, Backend: be})
	if err != nil {
		return err
	}
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	fmt.Printf("quantize: %s (%s) to %s: %d of %d tensors %s, %d bytes\n", *model, r.Arch, file, r.Types[t], r.Tensors, t, fi.Size())
	if len(r.Fallback) > 0 {
		fmt.Printf("quantize: %d matrices whose rows are not whole blocks of 32 are f16\n", len(r.Fallback))
	}
	return nil
}
