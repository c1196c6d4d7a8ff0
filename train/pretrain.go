package train

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/data/tokens"
	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// Preset is a named pretraining recipe: a model and the loop's settings.
type Preset struct {
	Model     gpt.Config // Vocab is set from the tokenizer
	Batch     int        // sequences per micro-batch
	Block     int        // tokens per sequence
	Loop      Config
	EvalIters int // batches per evaluation
}

// Presets returns the named recipes. "baby" is exactly nanoGPT's CPU
// shakespeare_char run (4 layers, 4 heads, 128 wide, block 64, batch 12,
// 2,000 iterations, lr 1e-3 decayed to 1e-4, dropout 0); "small" is
// nanoGPT's shakespeare_char model; "gpt2-124m" is GPT-2 small.
func Presets() map[string]Preset {
	gpt2 := func(l, h, c, block int, dropout float32) gpt.Config {
		return gpt.Config{Arch: "gpt2", Context: block, Layers: l, Heads: h, KVHeads: h, Hidden: c,
			Intermediate: 4 * c, Eps: 1e-5, Activation: "gelu", Tied: true, Dropout: dropout, BOS: -1, EOS: -1}
	}
	return map[string]Preset{
		"baby": {Model: gpt2(4, 4, 128, 64, 0), Batch: 12, Block: 64, EvalIters: 20,
			Loop: Config{Steps: 2000, LR: 1e-3, MinLR: 1e-4, Warmup: 100, Beta2: 0.99, WeightDecay: 0.1, Clip: 1, EvalEvery: 250}},
		"small": {Model: gpt2(6, 6, 384, 256, 0.2), Batch: 64, Block: 256, EvalIters: 20,
			Loop: Config{Steps: 5000, LR: 1e-3, MinLR: 1e-4, Warmup: 100, Beta2: 0.99, WeightDecay: 0.1, Clip: 1, EvalEvery: 250}},
		"gpt2-124m": {Model: gpt2(12, 12, 768, 1024, 0), Batch: 12, Block: 1024, EvalIters: 20,
			Loop: Config{Steps: 600000, Accum: 40, LR: 6e-4, MinLR: 6e-5, Warmup: 2000, Beta2: 0.95, WeightDecay: 0.1, Clip: 1, EvalEvery: 2000, SaveEvery: 2000}},
	}
}

// PretrainOptions configures Pretrain.
type PretrainOptions struct {
	Backend backend.Backend
	Data    []string // text files, folders, globs, JSONL; empty = Builtin's corpus
	// Builtin writes the corpus trained on when Data is empty: golem's
	// built-in one (data/synth's; cmd/golem passes it), kept in
	// OUT/builtin_corpus.txt and encoded with SpecialTokens (its dialogues
	// are ChatML).
	Builtin   func(io.Writer) error
	Tokenizer string // "char", a tokenizer path, or "" to train a byte-level BPE on the data
	VocabSize int    // for a trained BPE (default 4096)
	Preset    Preset
	ValFrac   float64 // held-out fraction of the tokens (default 0.1)
	CacheDir  string  // where token files are kept (default: the user cache dir)
	// SpecialTokens encodes the data with the tokenizer's special tokens
	// recognised (<|im_start|> in the text is that token, not its
	// characters), for corpora written in the chat template. It is set for
	// golem's built-in corpus, whose dialogues are ChatML; user data is
	// encoded as plain text unless it is set, so that text which merely
	// contains a special token's spelling cannot inject control tokens.
	SpecialTokens bool
	Log           io.Writer
}

// pretrainTask trains a language model on random windows of a token file.
type pretrainTask struct {
	model      *gpt.Model
	tok        *tokenizer.Tokenizer
	train, val *tokens.File
	batch      int
	block      int
	seed       uint64
	evalIters  int
	ids, tgt   []int32
}

// Pretrain runs stage one: tokenize the corpus once, then train a GPT on
// random windows of it. With Loop.Resume it continues the run in Loop.Out.
func Pretrain(ctx context.Context, o PretrainOptions) (Result, error) {
	if o.Log == nil {
		o.Log = os.Stderr
	}
	p := o.Preset
	cfg := p.Loop
	if cfg.Out == "" {
		return Result{}, errors.New("pretrain: an output folder is needed (--out)")
	}
	release, err := cfg.open() // lock Out; on resume, its files are the checkpoint's
	if err != nil {
		return Result{}, err
	}
	defer release()
	var tok *tokenizer.Tokenizer
	var m *gpt.Model
	if cfg.Resume {
		if m, tok, err = loadLM(o.Backend, cfg.Out, "pretrain: --resume"); err != nil {
			return Result{}, err
		}
	}
	srcs, builtin, err := pretrainSources(o, cfg.Out)
	if err != nil {
		return Result{}, err
	}
	if builtin {
		o.SpecialTokens = true
	}
	if tok == nil {
		if tok, err = pretrainTokenizer(o, srcs); err != nil {
			return Result{}, err
		}
	}
	trainF, valF, err := tokenizeCorpus(o, srcs, tok)
	if err != nil {
		return Result{}, err
	}
	fmt.Fprintf(o.Log, "data: %d train tokens, %d validation tokens (%s), vocabulary %d\n", trainF.Len(), valF.Len(), describe(srcs, builtin), tok.VocabSize())
	if m == nil {
		mc := p.Model
		mc.Vocab = padVocab(tok.VocabSize())
		if mc.Context < p.Block {
			mc.Context = p.Block
		}
		if id, ok := tok.SpecialID(tokenizer.EndOfText); ok {
			mc.BOS, mc.EOS = id, id
		}
		if m, err = gpt.New(o.Backend, mc, cfg.Seed+1); err != nil {
			return Result{}, err
		}
	}
	if trainF.Len() <= p.Block+1 || valF.Len() <= 1 {
		return Result{}, fmt.Errorf("pretrain: corpus too small: %d train and %d validation tokens for blocks of %d", trainF.Len(), valF.Len(), p.Block)
	}
	fmt.Fprintf(o.Log, "model: %s, %d layers, %d heads, width %d, %.2fM parameters\n", m.Config.Arch, m.Config.Layers, m.Config.Heads, m.Config.Hidden, float64(nn.Count(m.Params()))/1e6)
	t := &pretrainTask{model: m, tok: tok, train: trainF, val: valF, batch: p.Batch, block: p.Block, seed: cfg.Seed, evalIters: max(1, p.EvalIters),
		ids: make([]int32, p.Batch*p.Block), tgt: make([]int32, p.Batch*p.Block)}
	if cfg.Progress == nil {
		cfg.Progress = o.Log
	}
	data := o.Data
	if len(data) == 0 {
		data = []string{"golem's built-in corpus"}
	}
	cfg.Card = &ModelCard{Stage: "pretrain", Data: data, What: fmt.Sprintf("pretraining a %s of %d layers, %d heads, width %d, context %d (%.2fM parameters)",
		m.Config.Arch, m.Config.Layers, m.Config.Heads, m.Config.Hidden, m.Config.Context, float64(nn.Count(m.Params()))/1e6)}
	cfg.checkpointModels(t.model)
	return Run(ctx, cfg, t)
}

func padVocab(v int) int {
	if v > 1024 {
		return (v + 63) / 64 * 64
	}
	return v
}

func describe(srcs []tokens.Source, builtin bool) string {
	if builtin {
		return "golem's built-in corpus"
	}
	if len(srcs) == 1 {
		return srcs[0].Path
	}
	return fmt.Sprintf("%d files", len(srcs))
}

// pretrainSources resolves the data; with none, it writes golem's built-in
// corpus into the output folder and uses that.
func pretrainSources(o PretrainOptions, out string) ([]tokens.Source, bool, error) {
	if len(o.Data) > 0 {
		s, err := tokens.Resolve(o.Data)
		return s, false, err
	}
	path := filepath.Join(out, "builtin_corpus.txt")
	if _, err := os.Stat(path); err != nil {
		if o.Builtin == nil {
			return nil, false, errors.New("pretrain: no data (--data PATH)")
		}
		var buf bytes.Buffer
		if err := o.Builtin(&buf); err != nil {
			return nil, false, err
		}
		if err := atomicfile.WriteFile(path, buf.Bytes()); err != nil {
			return nil, false, err
		}
	}
	s, err := tokens.Resolve([]string{path})
	return s, true, err
}

func pretrainTokenizer(o PretrainOptions, srcs []tokens.Source) (*tokenizer.Tokenizer, error) {
	switch o.Tokenizer {
	case "char":
		var all strings.Builder
		if err := tokens.Documents(srcs, func(d string) error { all.WriteString(d); return nil }); err != nil {
			return nil, err
		}
		return tokenizer.NewChar(all.String()), nil
	case "":
		vs := o.VocabSize
		if vs == 0 {
			vs = 4096
		}
		files := make([]string, len(srcs))
		for i, s := range srcs {
			files[i] = s.Path
		}
		fmt.Fprintf(o.Log, "training a byte-level BPE tokenizer of %d tokens\n", vs)
		return tokenizer.Train(tokenizer.TrainOptions{Files: files, VocabSize: vs, Progress: o.Log})
	default:
		return tokenizer.Load(o.Tokenizer)
	}
}

// tokenizeCorpus encodes the sources once into train and validation token
// files in the cache, keyed by the files and the tokenizer.
func tokenizeCorpus(o PretrainOptions, srcs []tokens.Source, tok *tokenizer.Tokenizer) (*tokens.File, *tokens.File, error) {
	var tj bytes.Buffer
	tok.WriteJSON(&tj)
	valFrac := o.ValFrac
	if valFrac == 0 {
		valFrac = 0.1
	}
	fmt.Fprintf(&tj, "\x00%g\x00%t", valFrac, o.SpecialTokens)
	key := tokens.Key(srcs, tj.Bytes())
	dir := o.CacheDir
	if dir == "" {
		if c := os.Getenv("GOLEM_CACHE"); c != "" {
			dir = c
		} else if c, err := os.UserCacheDir(); err == nil {
			dir = filepath.Join(c, "golem")
		} else {
			dir = os.TempDir()
		}
		dir = filepath.Join(dir, "tokens")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	trainPath, valPath := filepath.Join(dir, key+".train.tok"), filepath.Join(dir, key+".val.tok")
	if tr, err := tokens.Open(trainPath); err == nil {
		if va, err := tokens.Open(valPath); err == nil {
			fmt.Fprintf(o.Log, "data: reusing tokenized corpus %s\n", filepath.Join(dir, key+".*.tok"))
			return tr, va, nil
		}
	}
	eot, hasEOT := tok.SpecialID(tokenizer.EndOfText)
	var ids []int32
	var total int64
	for _, s := range srcs {
		total += s.Size
	}
	var done int64
	err := tokens.Documents(srcs, func(doc string) error {
		var enc []int
		if o.SpecialTokens {
			enc = encodeSpecialParallel(tok, doc)
		} else {
			enc = tok.EncodeParallel(doc, 0)
		}
		for _, id := range enc {
			ids = append(ids, int32(id))
		}
		if hasEOT {
			ids = append(ids, int32(eot))
		}
		done += int64(len(doc))
		fmt.Fprintf(o.Log, "\rtokenizing: %3.0f%% (%d tokens)", 100*float64(done)/float64(max(total, 1)), len(ids))
		return nil
	})
	fmt.Fprintln(o.Log)
	if err != nil {
		return nil, nil, err
	}
	n := int(float64(len(ids)) * (1 - valFrac))
	if err := tokens.Write(trainPath, ids[:n], tok.VocabSize()); err != nil {
		return nil, nil, err
	}
	if err := tokens.Write(valPath, ids[n:], tok.VocabSize()); err != nil {
		return nil, nil, err
	}
	tr, err := tokens.Open(trainPath)
	if err != nil {
		return nil, nil, err
	}
	va, err := tokens.Open(valPath)
	return tr, va, err
}

// encodeSpecialParallel is EncodeWithSpecial of a large text, in parallel:
// the text is cut at blank lines into pieces of about a megabyte (a special
// token never holds a blank line, so no token is split) and each piece is
// encoded on its own. With the pre-tokenizers golem uses, a cut after
// "\n\n" falls where the pre-tokenizer cuts anyway, so the ids equal
// EncodeWithSpecial(text).
func encodeSpecialParallel(tok *tokenizer.Tokenizer, text string) []int {
	var pieces []string
	for len(text) > 1<<20 {
		i := strings.Index(text[1<<20:], "\n\n")
		if i < 0 {
			break
		}
		cut := 1<<20 + i + 2
		pieces = append(pieces, text[:cut])
		text = text[cut:]
	}
	pieces = append(pieces, text)
	outs := make([][]int, len(pieces))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, p := range pieces {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			outs[i] = tok.EncodeWithSpecial(p)
			<-sem
		}()
	}
	wg.Wait()
	var ids []int
	for _, o := range outs {
		ids = append(ids, o...)
	}
	return ids
}

func (t *pretrainTask) Params() []nn.Named { return t.model.Params() }

// window fills ids and targets with B random windows of f; the windows are
// a function of (seed, step, micro) alone, which makes resume exact.
func (t *pretrainTask) window(f *tokens.File, seed uint64, step, micro int) {
	r := rand.New(rand.NewPCG(seed, uint64(step)<<16|uint64(micro)))
	T := t.block
	if f.Len() < T+1 {
		T = f.Len() - 1
	}
	buf := make([]int32, T+1)
	for b := 0; b < t.batch; b++ {
		start := r.IntN(f.Len() - T)
		f.Read(buf, start)
		copy(t.ids[b*t.block:b*t.block+T], buf[:T])
		copy(t.tgt[b*t.block:b*t.block+T], buf[1:])
		for i := T; i < t.block; i++ {
			t.ids[b*t.block+i], t.tgt[b*t.block+i] = 0, tensor.IgnoreIndex
		}
	}
}

func (t *pretrainTask) Loss(s *tensor.Scope, step, micro int) (*tensor.Tensor, int, map[string]float64, error) {
	t.window(t.train, t.seed, step, micro)
	loss := t.model.Loss(t.ids, t.tgt, t.batch, t.block, gpt.Options{Train: true, Seed: t.seed ^ uint64(step)<<20 ^ uint64(micro), Scope: s})
	return loss, t.batch * t.block, nil, nil
}

// Eval is the mean loss over fixed random windows of the validation split.
func (t *pretrainTask) Eval() (map[string]float64, error) {
	var sum float64
	tensor.NoGrad(func() {
		for i := 0; i < t.evalIters; i++ {
			t.window(t.val, 0xe7a1, 0, i)
			s := tensor.NewScope()
			sum += float64(t.model.Loss(t.ids, t.tgt, t.batch, t.block, gpt.Options{Scope: s}).Item())
			s.Close()
		}
	})
	return map[string]float64{"val_loss": sum / float64(t.evalIters)}, nil
}

func (t *pretrainTask) Save(dir string) error {
	return saveModel(dir, t.model, t.tok)
}
