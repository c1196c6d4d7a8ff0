package tokenizer

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var (
	fuzzOnce sync.Once
	fuzzToks []*Tokenizer
)

// fuzzTokenizers returns small tokenizers that need no shared data: one
// trained with each pattern, and a character tokenizer.
func fuzzTokenizers(t testing.TB) []*Tokenizer {
	fuzzOnce.Do(func() {
		text := strings.Repeat(strings.Join(roundTripTexts, "\n"), 3)
		for _, p := range []string{"gpt2", "cl100k", "qwen2", "o200k"} {
			tok, err := Train(TrainOptions{Texts: []string{text}, VocabSize: 600, Pattern: p})
			if err != nil {
				panic(err)
			}
			fuzzToks = append(fuzzToks, tok)
		}
	})
	return fuzzToks
}

// FuzzRoundTrip checks Decode(Encode(s)) == s for any bytes, valid UTF-8
// or not, with every pattern, and EncodeWithSpecial likewise.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range roundTripTexts {
		f.Add(s)
	}
	f.Add("<|im_start|>user\n<|im_end|><|endoftext|><|im_")
	toks := fuzzTokenizers(f)
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range toks {
			if got := tok.Decode(tok.Encode(s)); got != s {
				t.Fatalf("%v: Decode(Encode(%q)) = %q", tok.Pattern(), s, got)
			}
			if got := tok.Decode(tok.EncodeWithSpecial(s)); got != s {
				t.Fatalf("%v: Decode(EncodeWithSpecial(%q)) = %q", tok.Pattern(), s, got)
			}
			var sb strings.Builder
			for _, piece := range tok.Pattern().Split(s) {
				if piece == "" {
					t.Fatalf("%v: empty piece in %q", tok.Pattern(), s)
				}
				sb.WriteString(piece)
			}
			if sb.String() != s {
				t.Fatalf("%v: pieces of %q do not join to it", tok.Pattern(), s)
			}
		}
	})
}

// useLoaded exercises a tokenizer that loaded from a hostile file: nothing
// may panic.
func useLoaded(tok *Tokenizer) {
	for _, s := range []string{"hello world", "\xff\x00 中文 <|endoftext|>", ""} {
		tok.Decode(tok.Encode(s))
		tok.Decode(tok.EncodeWithSpecial(s))
	}
	tok.Decode([]int{-1, 0, 1, 1 << 40})
	tok.RenderChat([]Message{{Role: "user", Content: "hi"}}, true)
	var buf bytes.Buffer
	tok.WriteJSON(&buf)
}

// FuzzLoadTokenizerJSON feeds hostile tokenizer.json files to the loader:
// it must fail cleanly or give a usable tokenizer, never panic or allocate
// beyond the file's size.
func FuzzLoadTokenizerJSON(f *testing.F) {
	for _, tok := range fuzzTokenizers(f)[:2] {
		var buf bytes.Buffer
		tok.WriteJSON(&buf)
		f.Add(buf.Bytes())
	}
	var buf bytes.Buffer
	NewChar("hello").WriteJSON(&buf)
	f.Add(buf.Bytes())
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"a": 1000000000}, "merges": [["a", "a"]]}, "pre_tokenizer": {"type": "ByteLevel"}}`))
	f.Add([]byte(`{"added_tokens": [{"id": 5, "content": "x"}], "model": {"type": "WordLevel", "vocab": {"ab": 0}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if tok, err := LoadTokenizerJSON(data); err == nil {
			useLoaded(tok)
		}
	})
}

// FuzzLoadTiktoken feeds hostile rank files to the tiktoken loader.
func FuzzLoadTiktoken(f *testing.F) {
	var sb strings.Builder
	for b := 0; b < 256; b++ {
		sb.WriteString(encodeB64([]byte{byte(b)}))
		sb.WriteString(" ")
		sb.WriteString(itoa(b))
		sb.WriteString("\n")
	}
	sb.WriteString(encodeB64([]byte("ab")) + " 256\n")
	f.Add([]byte(sb.String()))
	f.Add([]byte("IQ== 0\nIg== 99999999999999999999\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range []Pattern{PatternGPT2, PatternO200K} {
			if tok, err := LoadTiktoken(data, p, nil); err == nil {
				useLoaded(tok)
			}
		}
	})
}

// minimalGPT2 is an encoder.json with the 256 bytes, "ab" and <|endoftext|>.
func minimalGPT2() []byte {
	var enc strings.Builder
	enc.WriteString("{")
	for b := 0; b < 256; b++ {
		enc.WriteString(string(jsonString(string(byteToRune[b]))) + ":" + itoa(b) + ",")
	}
	enc.WriteString(`"ab": 256, "<|endoftext|>": 257}`)
	return []byte(enc.String())
}

func TestLoadGPT2Minimal(t *testing.T) {
	tok, err := LoadGPT2(minimalGPT2(), []byte("#version: 0.2\na b\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.EncodeWithSpecial("xab<|endoftext|>"); len(got) != 3 || got[0] != 'x' || got[1] != 256 || got[2] != 257 {
		t.Fatalf("got %v, want [120 256 257]", got)
	}
}

// FuzzLoadGPT2 feeds hostile encoder.json and vocab.bpe pairs to LoadGPT2.
func FuzzLoadGPT2(f *testing.F) {
	f.Add(minimalGPT2(), []byte("#version: 0.2\na b\n"))
	f.Add([]byte(`{"a": 0}`), []byte("a a a\n"))
	f.Fuzz(func(t *testing.T, encoder, merges []byte) {
		if tok, err := LoadGPT2(encoder, merges); err == nil {
			useLoaded(tok)
		}
	})
}

func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func itoa(i int) string { return strconv.Itoa(i) }
