package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/golem-ml/golem/internal/shared"
)

// ByteLevelVocab gives back GPT-2's tokenizer.json vocabulary and merges
// exactly (the forms llama.cpp's GGUF files store).
func TestByteLevelVocabIsTokenizerJSON(t *testing.T) {
	dir := shared.Path(t, "fixtures/hf/gpt2-tiny")
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	tokens, merges, ok := tok.ByteLevelVocab()
	if !ok {
		t.Fatal("not byte-level")
	}
	b, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tj struct {
		Model struct {
			Vocab  map[string]int `json:"vocab"`
			Merges [][2]string    `json:"merges"`
		} `json:"model"`
	}
	if err := json.Unmarshal(b, &tj); err != nil {
		t.Fatal(err)
	}
	if len(tokens) != len(tj.Model.Vocab) || len(merges) != len(tj.Model.Merges) {
		t.Fatalf("%d tokens, %d merges; tokenizer.json has %d, %d", len(tokens), len(merges), len(tj.Model.Vocab), len(tj.Model.Merges))
	}
	for s, id := range tj.Model.Vocab {
		if tokens[id] != s {
			t.Fatalf("token %d = %q, tokenizer.json has %q", id, tokens[id], s)
		}
	}
	for i, m := range tj.Model.Merges {
		if merges[i] != m[0]+" "+m[1] {
			t.Fatalf("merge %d = %q, tokenizer.json has %q", i, merges[i], m)
		}
	}
	if _, _, ok := NewChar("abc").ByteLevelVocab(); ok {
		t.Error("a character tokenizer has a byte-level vocabulary")
	}
}
