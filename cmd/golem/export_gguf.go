package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/gguf/export"
)

// exportFormat returns the value of --format among args ("" if absent).
func exportFormat(args []string) string {
	for i, a := range args {
		for _, p := range []string{"--format", "-format"} {
			if a == p && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v
			}
		}
	}
	return ""
}

// runExportGGUF is golem export --format gguf: a model folder as one GGUF
// file for llama.cpp and Ollama.
func runExportGGUF(args []string) error {
	fs := newFlags("export", `golem export --format gguf --model out/sft --out sft.gguf --type q8_0`)
	format := fs.String("format", "gguf", "gguf: a model folder as one GGUF file (llama.cpp, Ollama)")
	model := fs.String("model", "", "model folder: config.json, model.safetensors, tokenizer.json (gpt2, llama or qwen2), or a LoRA adapter folder (merged into its base) (required)")
	out := fs.String("out", "", "the GGUF file to write (required)")
	typ := fs.String("type", "f16", "type of the weight matrices: f32, f16, bf16, q8_0 or q4_0 (norms and biases stay f32)")
	name := fs.String("name", "", "general.name in the file (default: the folder's name)")
	dev := addDeviceFlag(fs) // an adapter folder is merged into its base there
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if *format != "gguf" {
		return fmt.Errorf("export: --format %q: the formats are gguf (a model) and, without --format, the store's labels as JSONL", *format)
	}
	if err := required(fs, "model", "out"); err != nil {
		return err
	}
	t, err := gguf.ParseTensorType(*typ)
	if err != nil {
		return fmt.Errorf("export: --type: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	r, err := export.Folder(*model, *out, export.Options{Type: t, Name: *name, Backend: be})
	if err != nil {
		return err
	}
	fi, err := os.Stat(*out)
	if err != nil {
		return err
	}
	var types []string
	for t, n := range r.Types {
		types = append(types, fmt.Sprintf("%d %s", n, t))
	}
	sort.Strings(types)
	fmt.Printf("export: %s (%s) to %s: %d tensors (%s), %d bytes\n", *model, r.Arch, *out, r.Tensors, strings.Join(types, ", "), fi.Size())
	if len(r.Fallback) > 0 {
		fmt.Printf("export: %d matrices whose rows are not whole blocks of 32 are f16, as llama.cpp's converter writes them: %s\n", len(r.Fallback), strings.Join(r.Fallback, ", "))
	}
	for _, n := range r.Notes {
		fmt.Println("export: note:", n)
	}
	return nil
}
