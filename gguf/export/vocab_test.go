package export

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/internal/testmodels"
	"github.com/golem-ml/golem/safetensors"
)

// The fixtures' vocabulary is GPT-2's 50,257 tokens: reading its
// tokenizer.json, writing and parsing its tokens and merges in a GGUF
// header and a random embedding of 50,257 rows cost most of an export's
// time. Under -short the block models and the fixtures' copies (fixture)
// have the first shortVocab-1 of those tokens and <|endoftext|> last, and
// the merges among them: the same byte-level tokenizer and the same
// code, on a vocabulary of 512. The full run uses the whole vocabulary.
const (
	fullVocab  = 50257
	shortVocab = 512
)

// vocab is the vocabulary of the block models and of fixture's folders.
func vocab() int {
	if testing.Short() {
		return shortVocab
	}
	return fullVocab
}

// inVocab returns prompt with its ids taken modulo vocab() (unchanged
// with the whole vocabulary).
func inVocab(prompt []int) []int {
	out := make([]int, len(prompt))
	for i, id := range prompt {
		out[i] = id % vocab()
	}
	return out
}

var (
	cutOnce   sync.Once
	cutJSON   []byte // the fixtures' tokenizer.json cut to shortVocab tokens
	cutMerges int    // its merges
	cutErr    error
)

// tokenizerJSON returns the tokenizer.json a block model of vocab() tokens
// holds: the fixtures' (src's), or under -short that cut to shortVocab.
func tokenizerJSON(t *testing.T, src string) []byte {
	t.Helper()
	if !testing.Short() {
		b, err := os.ReadFile(filepath.Join(src, "tokenizer.json"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cutOnce.Do(func() { cutJSON, cutMerges, cutErr = cutTokenizer(filepath.Join(src, "tokenizer.json"), shortVocab) })
	if cutErr != nil {
		t.Fatal(cutErr)
	}
	return cutJSON
}

// cutTokenizer returns the GPT-2 tokenizer.json at path with the tokens of
// ids below n-1, <|endoftext|> as token n-1, and the merges of those
// tokens.
func cutTokenizer(path string, n int) ([]byte, int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	var f, model map[string]json.RawMessage
	var vocab map[string]int
	var merges [][2]string
	var added []map[string]any
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, 0, err
	}
	if err := json.Unmarshal(f["model"], &model); err != nil {
		return nil, 0, err
	}
	if err := json.Unmarshal(model["vocab"], &vocab); err != nil {
		return nil, 0, err
	}
	if err := json.Unmarshal(model["merges"], &merges); err != nil {
		return nil, 0, err
	}
	if err := json.Unmarshal(f["added_tokens"], &added); err != nil {
		return nil, 0, err
	}
	const eot = "<|endoftext|>"
	kept := map[string]int{eot: n - 1}
	for tok, id := range vocab {
		if id < n-1 {
			kept[tok] = id
		}
	}
	var keptMerges [][2]string
	for _, m := range merges {
		_, a := kept[m[0]]
		_, b := kept[m[1]]
		_, r := kept[m[0]+m[1]]
		if a && b && r {
			keptMerges = append(keptMerges, m)
		}
	}
	for _, a := range added {
		if a["content"] == eot {
			a["id"] = n - 1
		}
	}
	for k, v := range map[string]any{"vocab": kept, "merges": keptMerges} {
		if model[k], err = json.Marshal(v); err != nil {
			return nil, 0, err
		}
	}
	for k, v := range map[string]any{"model": model, "added_tokens": added} {
		if f[k], err = json.Marshal(v); err != nil {
			return nil, 0, err
		}
	}
	out, err := json.Marshal(f)
	return out, len(keptMerges), err
}

// fixture returns the fixture folder fixtures/hf/name, or under -short a
// copy of it (made once per test binary) with the vocabulary cut to
// shortVocab tokens: tokenizer.json cut (cutTokenizer), the embedding's
// and the head's rows past it dropped, config.json's vocab_size and
// special token ids moved.
func fixture(t *testing.T, name string) string {
	t.Helper()
	src := shared.Path(t, "fixtures/hf/"+name)
	if !testing.Short() {
		return src
	}
	tok := tokenizerJSON(t, src)
	madeMu.Lock()
	defer madeMu.Unlock()
	key := "fixture-" + name
	if d, ok := madeModels[key]; ok {
		return d
	}
	dir := filepath.Join(madeRootLocked(t), key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tok, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(src, "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err = os.ReadFile(filepath.Join(src, "config.json")); err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	c["vocab_size"] = shortVocab
	for _, k := range []string{"bos_token_id", "eos_token_id"} {
		if c[k] == float64(fullVocab-1) {
			c[k] = shortVocab - 1
		}
	}
	b, _ = json.Marshal(c)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	ts := testmodels.Tensors(t, src)
	for i, x := range ts {
		if len(x.Shape) == 2 && x.Shape[0] == fullVocab {
			ts[i].F32, ts[i].Shape = x.F32[:shortVocab*x.Shape[1]], []int{shortVocab, x.Shape[1]}
		}
	}
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	madeModels[key] = dir
	return dir
}

// madeRootLocked returns madeRoot, made first if need be (madeMu held).
func madeRootLocked(t *testing.T) string {
	t.Helper()
	if madeRoot == "" {
		var err error
		if madeRoot, err = os.MkdirTemp("", "golem-export-test-"); err != nil {
			t.Fatal(err)
		}
	}
	return madeRoot
}
