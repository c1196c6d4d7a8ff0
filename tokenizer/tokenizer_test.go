package tokenizer

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/golem-ml/golem/internal/shared"
)

var roundTripTexts = []string{
	"",
	"hello world",
	"Hello, World! It's 2024... don't      stop\n\n\n  believing\t\r\n",
	"春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。",
	"naïve café — “quotes” and emoji 🎉🎉 and ZWJ 👨‍👩‍👧",
	"\xff\xfe invalid \xc3 utf-8 \xe4\xb8",
	"'s'S'll'LL'RE'ſ  \u00a0\u3000 \u2028x",
	strings.Repeat("a", 1000),
	strings.Repeat("中文", 300),
	strings.Repeat(" ", 200) + "x" + strings.Repeat("\n", 50),
	"CamelCaseWord HTTPServer iPhone ÀÉÎ éàü x̃ỹ",
	"12345678901234567890 ١٢٣٤ ⅣⅤ",
}

func TestRoundTripGPT2(t *testing.T) {
	tok := gpt2(t)
	for _, s := range roundTripTexts {
		if got := tok.Decode(tok.Encode(s)); got != s {
			t.Errorf("Decode(Encode(%q)) = %q", s, got)
		}
	}
	text := sampleText(t, shortSample(400000))
	if got := tok.Decode(tok.Encode(text)); got != text {
		t.Error("corpus sample does not round trip")
	}
}

func TestEncodeParallelEqualsEncode(t *testing.T) {
	tok := gpt2(t)
	text := sampleText(t, shortSample(1<<20)) // 256 KiB: still 4 segments a call
	want := tok.Encode(text)
	for _, w := range []int{1, 2, 3, 7} {
		if got := tok.EncodeParallel(text, w); !slices.Equal(got, want) {
			t.Errorf("EncodeParallel(%d workers) differs from Encode", w)
		}
	}
	parts := strings.SplitAfter(text, "\n")[:500]
	batch := tok.EncodeBatch(parts, 2)
	for i, p := range parts {
		if !slices.Equal(batch[i], tok.Encode(p)) {
			t.Fatalf("EncodeBatch item %d differs", i)
		}
	}
}

func TestLongPieceHeapMatchesScan(t *testing.T) {
	for _, tok := range []*Tokenizer{gpt2(t), smallTrained(t)} {
		for _, s := range []string{strings.Repeat("abc", 100), strings.Repeat("春", 80), strings.Repeat("ab", 333) + "c", sampleText(t, 4000)} {
			e := tok.getEncoder()
			heap := tok.bpeHeap(e, nil, s)
			scan := tok.bpeScan(e, nil, s)
			tok.putEncoder(e)
			if !slices.Equal(heap, scan) {
				t.Errorf("heap and scan merges differ on %q...", s[:20])
			}
		}
	}
}

func TestTiktokenFileMatchesGPT2(t *testing.T) {
	ref := gpt2(t)
	var sb strings.Builder
	for id := 0; id < 50256; id++ {
		tok, _ := ref.Token(id)
		fmt.Fprintf(&sb, "%s %d\n", base64.StdEncoding.EncodeToString([]byte(tok)), id)
	}
	path := filepath.Join(t.TempDir(), "r50k_base.tiktoken")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	tk, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := tk.SpecialID(EndOfText); !ok || id != 50256 {
		t.Fatalf("<|endoftext|> = %d, %v", id, ok)
	}
	checkVectors(t, tk, readVectors(t))
	text := sampleText(t, shortSample(200000))
	if !slices.Equal(tk.Encode(text), ref.Encode(text)) {
		t.Fatal("tiktoken ranks and GPT-2 merges disagree on the corpus sample")
	}
}

var (
	trainedOnce sync.Once
	trained     *Tokenizer
	trainedErr  error
)

// smallTrained trains a 2,000-token vocabulary on part of the shared corpus.
func smallTrained(t testing.TB) *Tokenizer {
	t.Helper()
	text := sampleText(t, 600000)
	trainedOnce.Do(func() {
		trained, trainedErr = Train(TrainOptions{Texts: []string{text}, VocabSize: 2000})
	})
	if trainedErr != nil {
		t.Fatal(trainedErr)
	}
	return trained
}

func TestTrainSaveLoad(t *testing.T) {
	tok := smallTrained(t)
	if tok.VocabSize() != 2000 {
		t.Fatalf("VocabSize = %d, want 2000", tok.VocabSize())
	}
	for _, s := range DefaultSpecial {
		if id, ok := tok.SpecialID(s); !ok || id < 1996 {
			t.Errorf("special %q: id %d, %v; want one of the last four", s, id, ok)
		}
	}
	text := sampleText(t, 300000)
	ids := tok.Encode(text)
	if len(ids) >= len(text)/2 {
		t.Errorf("%d ids for %d bytes: the merges do not compress", len(ids), len(text))
	}
	if tok.Decode(ids) != text {
		t.Fatal("trained tokenizer does not round trip")
	}
	dir := t.TempDir()
	if err := tok.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Encode(text), ids) {
		t.Fatal("the saved and loaded tokenizer gives other ids")
	}
	special := "a<|im_start|>b<|endoftext|>"
	if !slices.Equal(back.EncodeWithSpecial(special), tok.EncodeWithSpecial(special)) {
		t.Fatal("special tokens differ after loading")
	}
	if back.VocabSize() != tok.VocabSize() {
		t.Fatalf("VocabSize %d after loading, want %d", back.VocabSize(), tok.VocabSize())
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil || !strings.Contains(string(cfg), "chat_template") {
		t.Fatalf("tokenizer_config.json lacks the chat template: %v", err)
	}
}

func TestTrainFilesAndJSONL(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte(strings.Repeat("low lower lowest newer wider <|endoftext|> ", 50)), 0o644)
	os.WriteFile(filepath.Join(dir, "b.jsonl"), []byte(`{"text":"newest newest newest"}`+"\n"+`{"text":"widest"}`+"\n"), 0o644)
	tok, err := Train(TrainOptions{Files: []string{dir}, VocabSize: 300, Pattern: "gpt2"})
	if err != nil {
		t.Fatal(err)
	}
	if ids := tok.Encode(" lowest"); len(ids) != 1 {
		t.Errorf(" lowest = %v, want one token", ids)
	}
	for id := 0; id < tok.VocabSize(); id++ {
		if s, _ := tok.Token(id); strings.Contains(s, "<|") && !tok.IsSpecial(id) {
			t.Errorf("learned a piece of a special token: %q", s)
		}
	}
	os.WriteFile(filepath.Join(dir, "c.jsonl"), []byte(`{"text":"ok"}`+"\n"+`{"txt":"bad"}`+"\n"), 0o644)
	_, err = Train(TrainOptions{Files: []string{filepath.Join(dir, "*.jsonl")}, VocabSize: 300})
	if err == nil || !strings.Contains(err.Error(), "c.jsonl line 2") {
		t.Errorf("bad JSONL: err = %v, want one naming c.jsonl line 2", err)
	}
	if _, err := Train(TrainOptions{Texts: []string{"x"}, VocabSize: 100}); err == nil {
		t.Error("a vocabulary smaller than 256 bytes + specials was accepted")
	}
}

func TestTrainDeterministic(t *testing.T) {
	text := sampleText(t, 100000)
	a, err := Train(TrainOptions{Texts: []string{text}, VocabSize: 600, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Train(TrainOptions{Texts: []string{text[:len(text)/2], text[len(text)/2:]}, VocabSize: 600, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Cutting the text in two can change at most the pieces at the cut, so
	// compare the learned tokens as sets with a little slack.
	same := 0
	for id := 256; id < 596; id++ {
		x, _ := a.Token(id)
		y, _ := b.Token(id)
		if x == y {
			same++
		}
	}
	if same < 300 {
		t.Errorf("only %d of 340 learned tokens agree between 1 and 2 workers", same)
	}
}

func TestCharTokenizer(t *testing.T) {
	b, err := os.ReadFile(shared.Path(t, "data/text/tinyshakespeare.txt"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	tok := NewChar(text)
	if tok.VocabSize() != 65 { // nanoGPT's shakespeare_char has 65 characters
		t.Fatalf("VocabSize = %d, want 65", tok.VocabSize())
	}
	ids := tok.Encode("hii there")
	if want := []int{46, 47, 47, 1, 58, 46, 43, 56, 43}; !slices.Equal(ids, want) { // nanoGPT's example
		t.Fatalf("Encode(hii there) = %v, want %v", ids, want)
	}
	if tok.Decode(tok.Encode(text[:10000])) != text[:10000] {
		t.Fatal("char tokenizer does not round trip")
	}
	dir := t.TempDir()
	if err := tok.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Encode(text[:10000]), tok.Encode(text[:10000])) || back.VocabSize() != 65 {
		t.Fatal("char tokenizer changed after Save and Load")
	}
	zh := NewChar("春眠不觉晓")
	if got := zh.Decode(zh.Encode("晓春x")); got != "晓春" {
		t.Errorf("unknown characters: got %q, want them dropped", got)
	}
}

func TestRenderChat(t *testing.T) {
	tok := smallTrained(t)
	msgs := []Message{
		{Role: "system", Content: "You are helpful."},
		{Role: "user", Content: "What is 2+2?\n\n"},
		{Role: "assistant", Content: "\n\n 4, of course."},
		{Role: "user", Content: "春眠不觉晓"},
		{Role: "assistant", Content: "处处闻啼鸟。"},
	}
	for _, gen := range []bool{false, true} {
		ids, mask, err := tok.RenderChat(msgs, gen)
		if err != nil {
			t.Fatal(err)
		}
		text, _ := FormatChat(msgs, gen)
		if want := tok.EncodeWithSpecial(text); !slices.Equal(ids, want) {
			t.Fatalf("RenderChat ids differ from EncodeWithSpecial(FormatChat):\n%v\n%v", ids, want)
		}
		if len(mask) != len(ids) {
			t.Fatalf("mask has %d entries for %d ids", len(mask), len(ids))
		}
		var sb strings.Builder
		for i, m := range mask {
			if m {
				sb.WriteString(tok.Decode(ids[i : i+1]))
			}
		}
		// The masked tokens hold the assistant's words and its <|im_end|>,
		// plus at most the header's newline where a token straddles it.
		got := strings.ReplaceAll(sb.String(), "\n\n\n 4", "\n\n 4")
		if want := "\n\n 4, of course.<|im_end|>处处闻啼鸟。<|im_end|>"; got != want {
			t.Errorf("assistant tokens = %q, want %q", got, want)
		}
		if gen && tok.Decode(ids[len(ids)-3:]) != "<|im_start|>assistant\n" && !strings.HasSuffix(tok.Decode(ids), "<|im_start|>assistant\n") {
			t.Error("generation prompt missing")
		}
	}
	if _, _, err := tok.RenderChat([]Message{{Role: "robot", Content: "x"}}, false); err == nil {
		t.Error("role robot accepted")
	}
	if _, _, err := tok.RenderChat([]Message{{Role: "user", Content: "x"}, {Role: "system", Content: "y"}}, false); err == nil {
		t.Error("system message after the first accepted")
	}
	if _, _, err := gpt2(t).RenderChat([]Message{{Role: "user", Content: "x"}}, false); err == nil {
		t.Error("GPT-2, which has no <|im_start|>, rendered a chat")
	}
}

func TestSpecialTokens(t *testing.T) {
	tok := gpt2(t)
	if got := tok.Encode("<|endoftext|>"); len(got) == 1 {
		t.Errorf("Encode parsed a special token: %v", got)
	}
	got := tok.EncodeWithSpecial("a<|endoftext|><|endoftext|>b")
	if want := []int{64, 50256, 50256, 65}; !slices.Equal(got, want) {
		t.Errorf("EncodeWithSpecial = %v, want %v", got, want)
	}
	if !tok.IsSpecial(50256) || tok.IsSpecial(64) {
		t.Error("IsSpecial wrong")
	}
	if specials := tok.Specials(); !slices.Equal(specials, []string{"<|endoftext|>"}) {
		t.Errorf("Specials = %v", specials)
	}
}

func TestPatternSplits(t *testing.T) {
	cases := []struct {
		p    Pattern
		text string
		want []string
	}{
		{PatternGPT2, "Hello world's   end\n\nx", []string{"Hello", " world", "'s", "  ", " end", "\n", "\n", "x"}},
		{PatternGPT2, "  \t 12345 ...!? a", []string{"  \t", " 12345", " ...!?", " a"}},
		{PatternCL100K, "Hello WORLD'S 12345 \tx\n\n  y!!\n\nz", []string{"Hello", " WORLD", "'S", " ", "123", "45", " ", "\tx", "\n\n", " ", " y", "!!\n\n", "z"}},
		{PatternQwen2, "x 123", []string{"x", " ", "1", "2", "3"}},
		{PatternO200K, "CamelCaseWord HTTPServer iPhone'S a/b//\n", []string{"Camel", "Case", "Word", " HTTPServer", " i", "Phone'S", " a", "/b", "//\n"}},
		{PatternCL100K, "春眠不觉晓，处处闻啼鸟。", []string{"春眠不觉晓", "，处处闻啼鸟", "。"}},
		{PatternGPT2, "春眠不觉晓，处处闻啼鸟。", []string{"春眠不觉晓", "，", "处处闻啼鸟", "。"}},
	}
	for _, c := range cases {
		if got := c.p.Split(c.text); !slices.Equal(got, c.want) {
			t.Errorf("%v.Split(%q) =\n %q\nwant\n %q", c.p, c.text, got, c.want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	cases := map[string]string{
		"bad.json":      `{"model": {"type": "Unigram"}}`,
		"ids.json":      `{"model": {"type": "BPE", "vocab": {"a": 2000000000}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}}`,
		"bytes.json":    `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}}`,
		"merge.json":    `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}, "pre_tokenizer": {"type": "ByteLevel"}}`,
		"pattern.json":  `{"model": {"type": "BPE", "vocab": {}, "merges": []}, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated"}, {"type": "ByteLevel", "use_regex": false}]}}`,
		"trunc.json":    `{"model": {"type": "BPE", "vocab": {`,
		"r.tiktoken":    "IQ== 0\nIg== x\n",
		"dup.tiktoken":  "IQ== 0\nIg== 0\n",
		"huge.tiktoken": "IQ== 99999999999\n",
	}
	for name, body := range cases {
		p := write(name, body)
		if _, err := Load(p); err == nil {
			t.Errorf("%s: loaded a bad file", name)
		} else if !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing path loaded")
	}
}

func TestNormalizerAndIgnoreMerges(t *testing.T) {
	tok := smallTrained(t)
	var buf bytes.Buffer
	tok.WriteJSON(&buf)
	js := buf.String()
	nfc, err := LoadTokenizerJSON([]byte(strings.Replace(js, `"normalizer": null`, `"normalizer": {"type": "NFC"}`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := nfc.Encode("cafe\u0301"), nfc.Encode("café"); !slices.Equal(a, b) {
		t.Errorf("NFC normalizer not applied: %v vs %v", a, b)
	}
	if a, b := tok.Encode("cafe\u0301"), tok.Encode("café"); slices.Equal(a, b) {
		t.Errorf("without a normalizer, e+U+0301 and é should differ")
	}
	im, err := LoadTokenizerJSON([]byte(strings.Replace(js, `"ignore_merges": false`, `"ignore_merges": true`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	text := sampleText(t, 100000)
	if im.Decode(im.Encode(text)) != text {
		t.Error("ignore_merges tokenizer does not round trip")
	}
	if _, err := LoadTokenizerJSON([]byte(strings.Replace(js, `"normalizer": null`, `"normalizer": {"type": "Lowercase"}`, 1))); err == nil {
		t.Error("a Lowercase normalizer was accepted")
	}
}

func TestRenderChatCharTokenizer(t *testing.T) {
	// A character tokenizer with the chat tokens, as a tokenizer.json with
	// added tokens gives.
	js := `{"added_tokens": [{"id": 10, "content": "<|im_start|>", "special": true}, {"id": 11, "content": "<|im_end|>", "special": true}],
	"model": {"type": "WordLevel", "vocab": {"\n": 0, "a": 1, "e": 2, "i": 3, "n": 4, "r": 5, "s": 6, "t": 7, "u": 8, "h": 9}}}`
	tok, err := LoadTokenizerJSON([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	ids, mask, err := tok.RenderChat([]Message{{Role: "user", Content: "hi?"}, {Role: "assistant", Content: "?hat"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for i, m := range mask {
		if m {
			got.WriteString(tok.Decode(ids[i : i+1]))
		}
	}
	if got.String() != "hat<|im_end|>" {
		t.Errorf("assistant tokens %q, want %q", got.String(), "hat<|im_end|>")
	}
}

// EndIDs lists the answer-ending specials the tokenizer has, <|im_end|>
// first.
func TestEndIDs(t *testing.T) {
	tok := smallTrained(t)
	end, ok1 := tok.SpecialID(ImEnd)
	eot, ok2 := tok.SpecialID(EndOfText)
	if !ok1 || !ok2 {
		t.Fatal("the trained tokenizer lacks <|im_end|> or <|endoftext|>")
	}
	if got := tok.EndIDs(); len(got) != 2 || got[0] != end || got[1] != eot {
		t.Fatalf("EndIDs = %v, want [%d %d]", got, end, eot)
	}
	if got := NewChar("ab").EndIDs(); len(got) != 0 {
		t.Fatalf("a tokenizer without specials: EndIDs = %v", got)
	}
}
