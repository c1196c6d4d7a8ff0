package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/load"
	"github.com/golem-ml/golem/tokenizer"
	"github.com/golem-ml/golem/train"
)

// chatModel writes a small Qwen2 model golem builds (random weights, every
// matrix whole blocks of 32) with a GPT-2 tokenizer that has the chat
// tokens, so that LoRA can train on it.
func chatModel(t *testing.T) string {
	t.Helper()
	tok, err := tokenizer.Load(shared.Path(t, "fixtures/hf/qwen2-tiny"))
	if err != nil {
		t.Fatal(err)
	}
	if tok, _, err = train.AddChatTokens(tok); err != nil {
		t.Fatal(err)
	}
	c := gpt.Config{Arch: "qwen2", Vocab: 50304, Context: 128, Layers: 2, Heads: 4, KVHeads: 2, Hidden: 64,
		Intermediate: 128, Eps: 1e-6, RopeTheta: 1e6, Bias: true, Tied: true, BOS: -1, EOS: -1}
	return saveRandomModel(t, c, 1, tok)
}

// golem quantize writes a folder holding model.gguf that generate, eval
// and sft take as --model, as they take the file itself and the same file
// in an Ollama models folder (ollama:NAME:TAG); sft trains LoRA on it and
// refuses full fine-tuning and --merge, naming the quantized weights.
func TestQuantizeCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("full tier: quantize, generate, eval and sft through the golem binary on a 50k-vocabulary model; TestExportGGUF and gguf/export's load tests cover the GGUF path in the short tier")
	}
	src := chatModel(t)
	dir := t.TempDir()
	q := filepath.Join(dir, "q4")
	stdout, stderr, code := runGolem(t, "quantize", "--model", src, "--type", "q4_0", "--out", q)
	if code != 0 || !strings.Contains(stdout, "15 of 26 tensors Q4_0") {
		t.Fatalf("quantize: exit %d\n%s%s", code, stdout, stderr)
	}
	file := filepath.Join(q, "model.gguf")

	// The file as an Ollama model: blob named by its sha256, a manifest.
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	models := filepath.Join(dir, "ollama")
	blob := filepath.Join(models, "blobs", "sha256-"+hex.EncodeToString(sum[:]))
	mani := filepath.Join(models, "manifests", "registry.ollama.ai", "library", "tiny", "q4")
	os.MkdirAll(filepath.Dir(blob), 0o755)
	os.MkdirAll(filepath.Dir(mani), 0o755)
	os.WriteFile(blob, b, 0o644)
	mb, _ := json.Marshal(map[string]any{"schemaVersion": 2, "layers": []map[string]any{
		{"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:" + hex.EncodeToString(sum[:]), "size": len(b)}}})
	os.WriteFile(mani, mb, 0o644)
	t.Setenv("OLLAMA_MODELS", models)

	gen := func(model string) string {
		out, stderr, code := runGolem(t, "generate", "--model", model, "--prompt", "Hello, my dog", "--max-tokens", "8", "--temperature", "0")
		if code != 0 {
			t.Fatalf("generate --model %s: exit %d: %s", model, code, stderr)
		}
		return out
	}
	want := gen(q)
	for _, m := range []string{file, "ollama:tiny:q4"} {
		if got := gen(m); got != want {
			t.Errorf("generate --model %s: %q, the folder's %q", m, got, want)
		}
	}
	data := filepath.Join(dir, "text.txt")
	os.WriteFile(data, []byte(strings.Repeat("the cat sat on the mat. ", 40)), 0o644)
	if out, stderr, code := runGolem(t, "eval", "ppl", "--model", "ollama:tiny:q4", "--data", data); code != 0 || !strings.Contains(out, "ppl=") {
		t.Errorf("eval ppl: exit %d: %s%s", code, out, stderr)
	}

	sft := []string{"sft", "--model", q, "--data", "builtin", "--builtin-n", "16", "--steps", "2", "--batch", "2", "--max-len", "64"}
	_, stderr, code = runGolem(t, append(sft, "--out", filepath.Join(dir, "full"))...)
	if code != 1 || !strings.Contains(stderr, "15 of its weight matrices are kept as GGUF stores them (Q8_0, Q4_0 or F16) and cannot be trained") {
		t.Errorf("full sft of a quantized model: exit %d: %s", code, stderr)
	}
	_, stderr, code = runGolem(t, append(sft, "--lora-r", "4", "--merge", "--out", filepath.Join(dir, "merge"))...)
	if code != 1 || !strings.Contains(stderr, "LoRA cannot be merged into them") {
		t.Errorf("sft --merge on a quantized model: exit %d: %s", code, stderr)
	}
	lora := filepath.Join(dir, "lora")
	if out, stderr, code := runGolem(t, append(sft, "--lora-r", "4", "--out", lora)...); code != 0 {
		t.Fatalf("sft --lora-r on a quantized model: exit %d: %s%s", code, out, stderr)
	}
	// The one loader reads the adapter over its quantized base, its LoRA
	// kept unmerged (the matrices cannot be written), and generate runs it.
	l, err := load.Model(cpu.New(), lora, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := l.Adapter
	if a.Base != q || len(l.Model.Quantized()) != 15 || len(a.Params) == 0 {
		t.Errorf("adapter: base %q (want %q), %d quantized matrices, %d LoRA tensors", a.Base, q, len(l.Model.Quantized()), len(a.Params))
	}
	if out, stderr, code := runGolem(t, "generate", "--model", lora, "--prompt", "the cat", "--max-tokens", "4", "--temperature", "0"); code != 0 || out == "" {
		t.Errorf("generate --model ADAPTER over a quantized base: exit %d: %s%s", code, out, stderr)
	}
}
