package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/golem-ml/golem/model/gpt"
)

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// float32Noise is a float32 written as a float64: 0.05000000074505806,
// 0.000009999999747378752.
var float32Noise = regexp.MustCompile(`\d\.\d*(0000000|9999999)\d+`)

// The model folder golem sft writes is what transformers expects:
// generation_config.json stops at <|im_end|> too, tokenizer_config.json's
// model_max_length is the model's context, numbers are written as short
// as they read back, a README.md model card says how the model was
// trained, and a LoRA adapter names its base model relative to itself.
func TestModelFolderFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real training processes")
	}
	f := fixtures(t)
	full := reference(t, f, stageNamed("sft")).out
	lora := reference(t, f, stageNamed("sft-lora")).out

	tok := readJSON(t, filepath.Join(full, "tokenizer.json"))
	imEnd := -1.0
	for _, a := range tok["added_tokens"].([]any) {
		if a := a.(map[string]any); a["content"] == "<|im_end|>" {
			imEnd = a["id"].(float64)
		}
	}
	if imEnd < 0 {
		t.Fatal("the SFT model's tokenizer has no <|im_end|>")
	}
	gen := readJSON(t, filepath.Join(full, "generation_config.json"))
	eos, _ := gen["eos_token_id"].([]any)
	found := false
	for _, id := range eos {
		found = found || id == imEnd
	}
	if !found {
		t.Errorf("generation_config.json: eos_token_id %v lacks <|im_end|> (%v)", gen["eos_token_id"], imEnd)
	}
	cfg := readJSON(t, filepath.Join(full, "config.json"))
	for _, dir := range []string{full, lora} {
		tc := readJSON(t, filepath.Join(dir, "tokenizer_config.json"))
		if tc["model_max_length"] != cfg["n_positions"] {
			t.Errorf("%s/tokenizer_config.json: model_max_length %v, the model's context is %v", dir, tc["model_max_length"], cfg["n_positions"])
		}
	}
	for _, p := range []string{filepath.Join(full, "config.json"), filepath.Join(lora, "adapter_config.json")} {
		b, _ := os.ReadFile(p)
		if m := float32Noise.Find(b); m != nil {
			t.Errorf("%s: %s is a float32 written as a float64", p, m)
		}
	}
	ac := readJSON(t, filepath.Join(lora, "adapter_config.json"))
	base, _ := ac["base_model_name_or_path"].(string)
	if filepath.IsAbs(base) || filepath.Clean(filepath.Join(lora, base)) != filepath.Clean(f.base) {
		t.Errorf("adapter_config.json: base_model_name_or_path %q, want %s relative to %s", base, f.base, lora)
	}
	// A checkpoint's copy, OUT/trainer/step-N, finds the base too.
	steps, _ := filepath.Glob(filepath.Join(lora, "trainer", "step-*"))
	if len(steps) != 1 {
		t.Fatalf("%s/trainer holds %v", lora, steps)
	}
	if a, err := gpt.ReadAdapterConfig(steps[0]); err != nil || filepath.Clean(a.Base) != filepath.Clean(f.base) {
		t.Errorf("gpt.ReadAdapterConfig(%s): base %v, %v; want %s", steps[0], a, err, f.base)
	}
	for dir, want := range map[string][]string{
		full: {"library_name: golem", "`golem sft`", "instruction tuning (full", "| seed | 1337 |", "| steps | 6 of 6", "| val_loss |"},
		lora: {"instruction tuning (lora", "| started from |"},
	} {
		b, err := os.ReadFile(filepath.Join(dir, "README.md"))
		if err != nil {
			t.Fatalf("no model card: %v", err)
		}
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s/README.md lacks %q:\n%s", dir, w, b)
			}
		}
	}
}
