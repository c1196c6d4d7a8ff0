package tokenizer

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/golem-ml/golem/internal/shared"
)

// vocabCases are model.vocab values the fast reader must read as
// encoding/json does, or leave to it.
var vocabCases = []string{
	`{}`, ` { } `, `{"a":0}`, "{\n \"a\" : 1 ,\r\n\t\"b\":22}\n",
	`{"\"":1,"\\":2,"\/":3,"\u00e9":4,"\ud83d\ude00":5,"\ud83d":6,"é":7,"Ġthe":8}`,
	"{\"\xff\":1}", "{\"a\x01\":1}", `{"a":1,"a":2}`, `{"a":01}`, `{"a":1.0}`, `{"a":1e3}`,
	`{"a":-1}`, `{"a":1234567890}`, `{"a":99999999999999999999}`, `{"a":"1"}`, `{"a":1,}`,
	`{"a":1} x`, `{"a":1`, `{"a"`, `{"a:1}`, `["a"]`, `null`, ``, `{"a":null}`, `{"a":true}`,
}

// mergeCases are model.merges values, as strings or as pairs.
var mergeCases = []string{
	`[]`, ` [ ] `, `["a b","c d"]`, `["a  b"]`, `["ab"]`, `["a b c"]`, `[" a"]`, `["a "]`,
	`[["a","b"],["c","d"]]`, `[["a","b","c"]]`, `[["a"]]`, `[["a","b"],"c d"]`, `["c d",["a","b"]]`,
	`[["a b","c"]]`, `["\" \\"]`, `[["\u0120","t"]]`, `["a b",]`, `["a b"] x`, `["a b"`, `{}`, `[1]`,
}

// jsonMerges is what parseMerges made of raw before fastMerges: "a b"
// strings split at their one space, or pairs.
func jsonMerges(raw []byte) ([][2]string, error) {
	var strs []string
	if err := json.Unmarshal(raw, &strs); err == nil {
		out := make([][2]string, len(strs))
		for i, s := range strs {
			var a, b string
			n := 0
			for j := range len(s) {
				if s[j] == ' ' {
					n++
					a, b = s[:j], s[j+1:]
				}
			}
			if n != 1 {
				return nil, os.ErrInvalid
			}
			out[i] = [2]string{a, b}
		}
		return out, nil
	}
	var pairs [][]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, err
	}
	out := make([][2]string, len(pairs))
	for i, p := range pairs {
		if len(p) != 2 {
			return nil, os.ErrInvalid
		}
		out[i] = [2]string{p[0], p[1]}
	}
	return out, nil
}

func checkFastVocab(t *testing.T, raw []byte) {
	t.Helper()
	var want map[string]int
	err := json.Unmarshal(raw, &want)
	got, ok := fastVocab(raw)
	switch {
	case ok && err != nil:
		t.Errorf("fastVocab(%q) = %v; encoding/json: %v", raw, got, err)
	case ok && !maps.Equal(got, want):
		t.Errorf("fastVocab(%q) = %v, encoding/json %v", raw, got, want)
	}
}

func checkFastMerges(t *testing.T, raw []byte) {
	t.Helper()
	want, err := jsonMerges(raw)
	got, ok := fastMerges(raw)
	switch {
	case ok && err != nil:
		t.Errorf("fastMerges(%q) = %v; the slow path: %v", raw, got, err)
	case ok && !slices.Equal(got, want):
		t.Errorf("fastMerges(%q) = %v, the slow path %v", raw, got, want)
	}
}

// The one-pass readers of a tokenizer.json's vocabulary and merges give
// what encoding/json gives, or leave the input to it (escapes, UTF-8 that
// is not valid, numbers JSON writes otherwise, duplicate keys, trailing
// bytes); on GPT-2's tokenizer.json they read every token and merge.
func TestFastVocabMatchesJSON(t *testing.T) {
	for _, c := range vocabCases {
		checkFastVocab(t, []byte(c))
	}
	for _, c := range mergeCases {
		checkFastMerges(t, []byte(c))
	}
	// The usual forms are read, not left to encoding/json.
	if _, ok := fastVocab([]byte(vocabCases[4])); !ok {
		t.Errorf("fastVocab gave up on %s", vocabCases[4])
	}
	for _, c := range []string{`["a b","c d"]`, `[["a","b"],["c","d"]]`} {
		if _, ok := fastMerges([]byte(c)); !ok {
			t.Errorf("fastMerges gave up on %s", c)
		}
	}
	b, err := os.ReadFile(filepath.Join(shared.Path(t, "fixtures/hf/gpt2-tiny"), "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f hfTokenizer
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if v, ok := fastVocab(f.Model.Vocab); !ok || len(v) != 50257 {
		t.Errorf("fastVocab read GPT-2's vocabulary as %d tokens (ok %v), want 50257", len(v), ok)
	}
	if m, ok := fastMerges(f.Model.Merges); !ok || len(m) != 50000 {
		t.Errorf("fastMerges read GPT-2's merges as %d (ok %v), want 50000", len(m), ok)
	}
	checkFastVocab(t, f.Model.Vocab)
	checkFastMerges(t, f.Model.Merges)
}

func FuzzFastVocab(f *testing.F) {
	for _, c := range vocabCases {
		f.Add([]byte(c))
	}
	f.Fuzz(checkFastVocab)
}

func FuzzFastMerges(f *testing.F) {
	for _, c := range mergeCases {
		f.Add([]byte(c))
	}
	f.Fuzz(checkFastMerges)
}
