package tokenizer

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Save replaces each file whole: a folder whose tokenizer files link to
// another folder's (a test's copy of a fixture, a user's folder of links
// to a download cache) gets files of its own, and the linked files are
// left as they were.
func TestSaveNeverWritesThroughLinks(t *testing.T) {
	src, out := t.TempDir(), t.TempDir()
	names := []string{"tokenizer.json", "tokenizer_config.json"}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(src, n), []byte("the original "+n), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(src, n), filepath.Join(out, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := NewChar("abc").Save(out); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil || string(b) != "the original "+n {
			t.Errorf("%s behind the link now holds %q (%v)", n, b, err)
		}
		fi, err := os.Lstat(filepath.Join(out, n))
		if err != nil || !fi.Mode().IsRegular() {
			t.Errorf("saved %s is not a file of its own: %v %v", n, fi, err)
		}
	}
	tok, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Decode(tok.Encode("cab")); got != "cab" {
		t.Errorf("the saved tokenizer decodes %q", got)
	}
}

// SaveForModel writes extra special tokens past the vocabulary (a LLaVA
// folder's "<image>"), which Load reads as special tokens at their ids
// and RemoveSpecial drops again: the tokenizer is then the one saved,
// its tokenizer.json byte for byte, and the token's text encodes as
// text. Ids inside the vocabulary and tokens it has are refused.
func TestSaveForModelAddedTokens(t *testing.T) {
	bpe, err := Train(TrainOptions{Texts: []string{"USER: <image>\nWhat is it?\nASSISTANT: a red circle"}, VocabSize: 280, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]*Tokenizer{"bpe": bpe, "char": NewChar("USER: <image>?\n")} {
		t.Run(name, func(t *testing.T) {
			V := tok.VocabSize()
			var want bytes.Buffer
			tok.WriteJSON(&want)
			text := "USER: <image>\n<|endoftext|>"
			ids := tok.EncodeWithSpecial(text)
			for _, gap := range []int{0, 3} { // right past the vocabulary, or with unused ids before it
				dir := t.TempDir()
				if err := tok.SaveForModel(dir, 64, AddedToken{Content: "<image>", ID: V + gap}); err != nil {
					t.Fatal(err)
				}
				got, err := Load(dir)
				if err != nil {
					t.Fatal(err)
				}
				if id, ok := got.SpecialID("<image>"); !ok || id != V+gap || got.VocabSize() != V+gap+1 {
					t.Fatalf("gap %d: <image> at %d (%v) of %d tokens, want %d of %d", gap, id, ok, got.VocabSize(), V+gap, V+gap+1)
				}
				if e := got.EncodeWithSpecial("<image>"); !slices.Equal(e, []int{V + gap}) {
					t.Errorf("gap %d: <image> encodes to %v", gap, e)
				}
				if got.RemoveSpecial("<|endoftext|>") && name == "bpe" {
					t.Fatal("RemoveSpecial removed a special token that is not the last id")
				}
				if !got.RemoveSpecial("<image>") || got.VocabSize() != V {
					t.Fatalf("gap %d: RemoveSpecial left %d tokens, want %d", gap, got.VocabSize(), V)
				}
				var b bytes.Buffer
				got.WriteJSON(&b)
				if !bytes.Equal(b.Bytes(), want.Bytes()) {
					t.Errorf("gap %d: the tokenizer read back and trimmed differs from the one saved", gap)
				}
				if e := got.EncodeWithSpecial(text); !slices.Equal(e, ids) {
					t.Errorf("gap %d: %q encodes to %v, want %v", gap, text, e, ids)
				}
			}
			dir := t.TempDir()
			for _, a := range []AddedToken{{Content: "<image>", ID: V - 1}, {Content: "<image>", ID: 1 << 30}, {Content: "", ID: V}, {Content: "U", ID: V}} {
				if err := tok.SaveForModel(dir, 64, a); err == nil || a.Content != "" && !strings.Contains(err.Error(), a.Content) {
					t.Errorf("added token %+v: %v, want a refusal naming it", a, err)
				}
			}
			if err := tok.SaveForModel(dir, 64, AddedToken{Content: "<a>", ID: V}, AddedToken{Content: "<b>", ID: V}); err == nil {
				t.Error("two added tokens at one id: no error")
			}
		})
	}
}
