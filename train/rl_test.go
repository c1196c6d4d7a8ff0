package train

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tokenizer"
)

var (
	tinyTokOnce sync.Once
	tinyTok     *tokenizer.Tokenizer
)

// tinyTokenizer is a small byte-level BPE with golem's chat tokens, trained
// once on a slice of the built-in corpus.
func tinyTokenizer(t *testing.T) *tokenizer.Tokenizer {
	tinyTokOnce.Do(func() {
		text := synth.Corpus(synth.CorpusOptions{Seed: 1, Bytes: 205_000})
		if len(text) > 200_000 {
			text = text[:200_000]
		}
		tok, err := tokenizer.Train(tokenizer.TrainOptions{Texts: []string{text}, VocabSize: 320, Progress: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		tinyTok = tok
	})
	if tinyTok == nil {
		t.Fatal("no tokenizer")
	}
	return tinyTok
}

// tinyLM writes a randomly initialised tiny chat model into a folder and
// returns the folder: the "SFT model" of the stage tests.
func tinyLM(t *testing.T, seed uint64, ctx int) string { return tinyLMWidth(t, seed, ctx, 32) }

// tinyLMWidth is tinyLM of hidden width w (MLP 2w).
func tinyLMWidth(t *testing.T, seed uint64, ctx, w int) string {
	tok := tinyTokenizer(t)
	eot, _ := tok.SpecialID(tokenizer.EndOfText)
	c := gpt.Config{Arch: "gpt2", Vocab: tok.VocabSize(), Context: ctx, Layers: 1, Heads: 2, KVHeads: 2, Hidden: w, Intermediate: 2 * w,
		Eps: 1e-5, Activation: "gelu", Tied: true, BOS: eot, EOS: eot}
	m, err := gpt.New(cpu.New(), c, seed)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := tok.Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// readHead reads the first n examples of a data file (data.Reader: the
// rest of a JSON lines file is never read, a JSON array's other elements
// never decoded). data's TestRealFiles reads the shared files whole.
func readHead(t *testing.T, path string, n int) []data.Example {
	t.Helper()
	r, err := data.Open(path, data.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []data.Example
	for len(out) < n {
		ex, err := r.Next()
		if err != nil {
			t.Fatalf("%s: %d examples read, want %d: %v", path, len(out), n, err)
		}
		out = append(out, ex)
	}
	return out
}

func wantErr(t *testing.T, err error, sub string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), sub) {
		t.Errorf("error %v, want one containing %q", err, sub)
	}
}

// metricRecords reads OUT/metrics.jsonl, one map per step.
func metricRecords(t *testing.T, dir string) []map[string]float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]float64
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]float64
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}
