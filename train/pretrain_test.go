package train

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/data/tokens"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tokenizer"
)

func tinyPreset() Preset {
	p := Presets()["baby"]
	p.Model.Layers, p.Model.Heads, p.Model.KVHeads, p.Model.Hidden, p.Model.Intermediate = 2, 2, 2, 32, 128
	p.Model.Dropout = 0.1 // dropout on, so resume must restore its seeds too
	p.Block, p.Batch, p.EvalIters = 16, 4, 2
	p.Model.Context = 16
	p.Loop.Steps, p.Loop.Warmup, p.Loop.EvalEvery = 8, 2, 4
	return p
}

// builtinCorpus is the built-in corpus (seed 1) the pretraining tests'
// runs read: 4 MB as golem pretrain writes it, 256 KB under -short (the
// runs take 8 steps of 4 x 16 tokens; resume and bf16 are checked the same).
func builtinCorpus(chinese float64) synth.CorpusOptions {
	o := synth.CorpusOptions{Seed: 1, Chinese: chinese}
	if testing.Short() {
		o.Bytes = 256 << 10
	}
	return o
}

func losses(t *testing.T, dir string) map[int]float64 {
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[int]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec struct {
			Step int     `json:"step"`
			Loss float64 `json:"loss"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		out[rec.Step] = rec.Loss
	}
	return out
}

// TestPretrainResumeIsExact interrupts a run half-way, resumes it, and
// checks the losses and final weights equal those of an uninterrupted run.
func TestPretrainResumeIsExact(t *testing.T) {
	cache := t.TempDir()
	run := func(out string, resume bool, stopAt int) Result {
		p := tinyPreset()
		p.Loop.Out, p.Loop.Resume = out, resume
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if stopAt > 0 {
			p.Loop.OnStep = func(step int, _ float64) {
				if step == stopAt {
					cancel()
				}
			}
		}
		res, err := Pretrain(ctx, PretrainOptions{Backend: cpu.New(), Tokenizer: "char", Preset: p, CacheDir: cache, Log: io.Discard,
			Builtin: func(w io.Writer) error { return synth.WriteCorpus(w, builtinCorpus(0.15)) }})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a, b := filepath.Join(t.TempDir(), "new", "folder"), t.TempDir() // a does not exist yet
	full := run(a, false, 0)
	part := run(b, false, 3)
	if !part.Interrupted || part.Step != 3 {
		t.Fatalf("interrupted run: %+v", part)
	}
	rest := run(b, true, 0)
	if rest.Step != 8 || full.Step != 8 {
		t.Fatalf("steps: full %d, resumed %d", full.Step, rest.Step)
	}
	la, lb := losses(t, a), losses(t, b)
	for s := 1; s <= 8; s++ {
		if math.Float64bits(la[s]) != math.Float64bits(lb[s]) {
			t.Errorf("step %d: loss %v uninterrupted, %v resumed", s, la[s], lb[s])
		}
	}
	if full.Eval["val_loss"] != rest.Eval["val_loss"] {
		t.Errorf("val_loss %v uninterrupted, %v resumed", full.Eval["val_loss"], rest.Eval["val_loss"])
	}
	be := cpu.New()
	ma, err := gpt.Load(be, a)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := gpt.Load(be, b)
	if err != nil {
		t.Fatal(err)
	}
	pb := mb.Params()
	for i, p := range ma.Params() {
		x, y := p.Tensor.Host(), pb[i].Tensor.Host()
		for j := range x {
			if math.Float32bits(x[j]) != math.Float32bits(y[j]) {
				t.Fatalf("%s differs after resume", p.Name)
			}
		}
	}
	if la[8] >= la[1] {
		t.Errorf("loss did not go down: %v -> %v", la[1], la[8])
	}
}

func TestPretrainErrors(t *testing.T) {
	p := tinyPreset()
	if _, err := Pretrain(context.Background(), PretrainOptions{Backend: cpu.New(), Preset: p, Log: io.Discard}); err == nil {
		t.Error("no --out accepted")
	}
	p.Loop.Out = t.TempDir()
	p.Loop.Resume = true
	if _, err := Pretrain(context.Background(), PretrainOptions{Backend: cpu.New(), Tokenizer: "char", Preset: p, Log: io.Discard}); err == nil {
		t.Error("resume from an empty folder accepted")
	}
	p.Loop.Resume = false
	if _, err := Pretrain(context.Background(), PretrainOptions{Backend: cpu.New(), Data: []string{"/nonexistent/file.txt"}, Preset: p, Log: io.Discard}); err == nil {
		t.Error("missing data file accepted")
	}
}

// The built-in corpus's dialogues are ChatML: encoded with special tokens
// recognised, <|im_start|> and <|im_end|> are one token each; plain data is
// encoded as text, and the two encodings are cached apart. The full run
// encodes 2.5 MB (three of encodeSpecialParallel's 1 MiB pieces), the short
// tier 1.3 MB (two pieces: one cut between them).
func TestPretrainSpecialTokens(t *testing.T) {
	size := 2500000
	if testing.Short() {
		size = 1300000
	}
	corpus := synth.Corpus(synth.CorpusOptions{Seed: 1, Bytes: size, Chinese: 0.15})
	tok, err := tokenizer.Train(tokenizer.TrainOptions{Texts: []string{corpus[:300000]}, VocabSize: 400, Progress: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	start, _ := tok.SpecialID(tokenizer.ImStart)
	end, _ := tok.SpecialID(tokenizer.ImEnd)

	par := encodeSpecialParallel(tok, corpus)
	if want := tok.EncodeWithSpecial(corpus); !slices.Equal(par, want) {
		t.Fatalf("encodeSpecialParallel: %d ids differ from EncodeWithSpecial's %d", len(par), len(want))
	}
	dialogues := strings.Count(corpus, tokenizer.ImStart+"assistant\n")
	if n := strings.Count(corpus, tokenizer.ImStart); dialogues == 0 || countID(par, start) != n || countID(par, end) != strings.Count(corpus, tokenizer.ImEnd) {
		t.Fatalf("%d <|im_start|> in the text, %d tokens", n, countID(par, start))
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "corpus.txt")
	if err := os.WriteFile(path, []byte(corpus[:200000]), 0o644); err != nil {
		t.Fatal(err)
	}
	srcs, err := tokens.Resolve([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	starts := func(special bool) int {
		o := PretrainOptions{CacheDir: dir, SpecialTokens: special, Log: io.Discard}
		tr, va, err := tokenizeCorpus(o, srcs, tok)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, f := range []*tokens.File{tr, va} {
			buf := make([]int32, f.Len())
			f.Read(buf, 0)
			for _, id := range buf {
				if int(id) == start {
					n++
				}
			}
		}
		return n
	}
	want := strings.Count(corpus[:200000], tokenizer.ImStart)
	if got := starts(true); got != want {
		t.Errorf("SpecialTokens: %d <|im_start|> tokens, want %d", got, want)
	}
	if got := starts(false); got != 0 {
		t.Errorf("plain data: %d <|im_start|> tokens, want none", got)
	}
}

func countID(ids []int, id int) int {
	n := 0
	for _, x := range ids {
		if x == id {
			n++
		}
	}
	return n
}
