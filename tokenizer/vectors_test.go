package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/golem-ml/golem/internal/shared"
)

var (
	gpt2Once sync.Once
	gpt2Tok  *Tokenizer
	gpt2Err  error
)

// gpt2 loads GPT-2's encoder.json + vocab.bpe from the shared folder.
func gpt2(t testing.TB) *Tokenizer {
	t.Helper()
	dir := filepath.Dir(shared.Path(t, "data/tokenizer/gpt2/encoder.json"))
	gpt2Once.Do(func() { gpt2Tok, gpt2Err = Load(dir) })
	if gpt2Err != nil {
		t.Fatal(gpt2Err)
	}
	return gpt2Tok
}

type vector struct {
	Text    string `json:"text"`
	IDs     []int  `json:"ids"`
	Source  string `json:"source"`
	Special bool   `json:"special"`
}

func readVectors(t *testing.T) []vector {
	f, err := os.Open(shared.Path(t, "data/tokenizer/gpt2/test_vectors.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []vector
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for n := 1; sc.Scan(); n++ {
		var v vector
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("test_vectors.jsonl line %d: %v", n, err)
		}
		vs = append(vs, v)
	}
	if len(vs) < 100 {
		t.Fatalf("only %d vectors", len(vs))
	}
	return vs
}

func checkVectors(t *testing.T, tok *Tokenizer, vs []vector) {
	t.Helper()
	for i, v := range vs {
		var got []int
		if v.Special {
			got = tok.EncodeWithSpecial(v.Text)
		} else {
			got = tok.Encode(v.Text)
		}
		if !slices.Equal(got, v.IDs) && !(len(got) == 0 && len(v.IDs) == 0) {
			t.Errorf("vector %d (%s) %q:\n got %v\nwant %v", i+1, v.Source, v.Text, got, v.IDs)
		}
		if d := tok.Decode(v.IDs); d != v.Text {
			t.Errorf("vector %d: Decode = %q, want %q", i+1, d, v.Text)
		}
	}
}

func TestGPT2Vectors(t *testing.T) {
	checkVectors(t, gpt2(t), readVectors(t))
}

func TestLlamaCppVectors(t *testing.T) {
	tok := gpt2(t)
	inp, err := os.ReadFile(shared.Path(t, "data/tokenizer/gpt2/llamacpp-ggml-vocab-gpt-2.gguf.inp"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(shared.Path(t, "data/tokenizer/gpt2/llamacpp-ggml-vocab-gpt-2.gguf.out"))
	if err != nil {
		t.Fatal(err)
	}
	texts := strings.Split(string(inp), "\n__ggml_vocab_test__\n")
	if texts[len(texts)-1] == "" {
		texts = texts[:len(texts)-1]
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(texts) != len(lines) || len(texts) < 40 {
		t.Fatalf("%d texts, %d answers", len(texts), len(lines))
	}
	for i, text := range texts {
		var want []int
		for _, f := range strings.Fields(lines[i]) {
			id, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf(".out line %d: %v", i+1, err)
			}
			want = append(want, id)
		}
		if got := tok.Encode(text); !slices.Equal(got, want) && len(got)+len(want) > 0 {
			t.Errorf("text %d %q:\n got %v\nwant %v", i+1, text, got, want)
		}
	}
}

func TestHFGPT2MatchesEncoderJSON(t *testing.T) {
	hf, err := Load(shared.Path(t, "fixtures/hf/gpt2-tiny/tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	ref := gpt2(t)
	if hf.VocabSize() != ref.VocabSize() || hf.VocabSize() != 50257 {
		t.Fatalf("vocab sizes %d and %d, want 50257", hf.VocabSize(), ref.VocabSize())
	}
	if id, ok := hf.SpecialID("<|endoftext|>"); !ok || id != 50256 {
		t.Fatalf("SpecialID(<|endoftext|>) = %d, %v", id, ok)
	}
	vs := readVectors(t)
	checkVectors(t, hf, vs)
	text := sampleText(t, shortSample(200000))
	if a, b := hf.Encode(text), ref.Encode(text); !slices.Equal(a, b) {
		t.Fatalf("tokenizer.json and encoder.json disagree on the corpus sample")
	}
}

// shortSample is n, or a quarter of it under -short: the size of a corpus
// sample that a test only encodes and compares (the full run the whole).
func shortSample(n int) int {
	if testing.Short() {
		return n / 4
	}
	return n
}

// sampleText returns about n bytes of English and Chinese text from the
// shared corpus.
func sampleText(t testing.TB, n int) string {
	var sb strings.Builder
	for _, rel := range []string{"data/text/tinyshakespeare.txt", "data/text/llamafactory_wiki_demo.txt", "data/text/zh/tangshi300.txt", "data/text/zh/songci.txt"} {
		b, err := os.ReadFile(shared.Path(t, rel))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > n/4 {
			b = b[:n/4]
		}
		sb.Write(b)
	}
	return sb.String()
}
