package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/model/clip"
	"github.com/golem-ml/golem/model/vit"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// CLIPPresets are named CLIP models. "tiny" trains on the shapes world
// (32 x 32 images, captions of under 32 tokens) in a few minutes of two
// cores: both towers 2 blocks of width 64 with 2 heads, 64-wide
// projections; CLIP's 49,408-token vocabulary.
func CLIPPresets() map[string]clip.Config {
	tower := func(hidden, layers, heads int) (int, int, int, int) { return hidden, layers, heads, 4 * hidden }
	vc := vit.Config{Arch: vit.CLIP, Image: 32, Patch: 4, Channels: 3, Activation: "gelu", Eps: 1e-5}
	vc.Hidden, vc.Layers, vc.Heads, vc.Intermediate = tower(64, 2, 2)
	tc := clip.TextConfig{Vocab: 49408, Context: 32, Activation: "gelu", Eps: 1e-5, BOS: 49406, EOS: 49407, Pad: 49407}
	tc.Hidden, tc.Layers, tc.Heads, tc.Intermediate = tower(64, 2, 2)
	return map[string]clip.Config{"tiny": {Vision: vc, Text: tc, Projection: 64, LogitScaleInit: 2.6592}}
}

// CLIPOptions configures CLIP.
type CLIPOptions struct {
	Backend   backend.Backend
	Data      string      // image-caption source (data/vision: JSONL, COCO captions, tar shards)
	EvalData  string      // optional: retrieval Recall@1 on it at each evaluation
	Init      string      // a CLIPModel folder to start from; "" = a new Model
	Model     clip.Config // the new model (Init == "")
	Tokenizer string      // bpe_simple_vocab_16e6.txt[.gz]; "" = Init's
	Batch     int         // image-text pairs per micro-batch (default 64)
	Loop      Config
	Log       io.Writer
	// Evaluate scores the model on the EvalData set at each evaluation
	// (golem clip train: eval's retrieval Recall@1 both ways); nil: none.
	Evaluate func(m *clip.Model, tok *tokenizer.CLIP, set *vision.CLIPSet) (map[string]float64, error)
}

type clipTask struct {
	model     *clip.Model
	tok       *tokenizer.CLIP
	tokPath   string
	train     *vision.CLIPSet
	val       *vision.CLIPSet
	batch     int
	seed      uint64
	pixelSize int
	evaluate  func(m *clip.Model, tok *tokenizer.CLIP, set *vision.CLIPSet) (map[string]float64, error)
}

// CLIP trains a CLIP model on image-caption pairs with the symmetric
// InfoNCE loss (model/clip's Forward): each micro-batch is Batch random
// images, each with one of its captions drawn at random, as a function of
// (seed, step, micro). The images are decoded once and held prepared in
// memory (vision.CLIPPixels: channels x size x size floats each).
func CLIP(ctx context.Context, o CLIPOptions) (Result, error) {
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.Batch == 0 {
		o.Batch = 64
	}
	cfg := o.Loop
	if cfg.Out == "" {
		return Result{}, errors.New("clip train: an output folder is needed (--out)")
	}
	if o.Batch < 2 {
		return Result{}, fmt.Errorf("clip train: a batch of %d pairs has no negatives (want 2 or more)", o.Batch)
	}
	release, from, err := cfg.begin(o.Init)
	if err != nil {
		return Result{}, err
	}
	defer release()
	t := &clipTask{batch: o.Batch, seed: cfg.Seed, evaluate: o.Evaluate}
	tokDir := from
	switch {
	case o.Tokenizer != "" && !cfg.Resume:
		t.tokPath = o.Tokenizer
		t.tok, err = tokenizer.LoadCLIP(o.Tokenizer)
	case tokDir != "":
		t.tok, err = tokenizer.LoadCLIPDir(tokDir)
		for _, n := range tokenizer.CLIPFiles {
			if p := filepath.Join(tokDir, n); t.tokPath == "" && regularFile(p) {
				t.tokPath = p
			}
		}
	default:
		err = errors.New("clip train: a new model needs --tokenizer (CLIP's bpe_simple_vocab_16e6.txt.gz)")
	}
	if err != nil {
		return Result{}, err
	}
	if from != "" {
		t.model, err = clip.Load(o.Backend, from)
	} else {
		t.model, err = clip.New(o.Backend, o.Model, cfg.Seed+1)
	}
	if err != nil {
		return Result{}, err
	}
	tc := t.model.Config.Text
	if tc.Vocab < t.tok.Vocab() || tc.EOS != t.tok.EOS {
		return Result{}, fmt.Errorf("clip train: the text tower (vocab_size %d, eos_token_id %d) does not fit the tokenizer (%d tokens, <|endoftext|> %d)", tc.Vocab, tc.EOS, t.tok.Vocab(), t.tok.EOS)
	}
	vc := t.model.Config.Vision
	if t.train, err = loadCLIPSet(o.Data, vc); err != nil {
		return Result{}, err
	}
	if o.EvalData != "" {
		if t.val, err = loadCLIPSet(o.EvalData, vc); err != nil {
			return Result{}, err
		}
	}
	t.batch = min(t.batch, len(t.train.Pixels))
	if t.batch < 2 {
		return Result{}, fmt.Errorf("clip train: %s has %d image: contrastive training needs 2 or more", o.Data, len(t.train.Pixels))
	}
	fmt.Fprintf(o.Log, "data: %d images (%s), %dx%d; model: %.2fM parameters\n", len(t.train.Pixels), o.Data, vc.Image, vc.Image, float64(nn.Count(t.model.Params()))/1e6)
	if cfg.Progress == nil {
		cfg.Progress = o.Log
	}
	return Run(ctx, cfg, t)
}

func regularFile(p string) bool { fi, err := os.Stat(p); return err == nil && fi.Mode().IsRegular() }

// loadCLIPSet decodes and prepares a source whose every image has a
// caption.
func loadCLIPSet(spec string, vc vit.Config) (*vision.CLIPSet, error) {
	ds, err := vision.Open(spec, vision.Limits{})
	if err != nil {
		return nil, err
	}
	defer ds.Close()
	set, err := vision.LoadCLIPSet(ds, vc.Image, vc.Channels)
	if err != nil {
		return nil, err
	}
	for i, ts := range set.Texts {
		if len(ts) == 0 {
			return nil, fmt.Errorf("clip train: %s: no caption (want image-caption pairs: JSONL {\"image\", \"caption\"}, COCO captions, tar shards with .txt)", ds.Name(i))
		}
	}
	return set, nil
}

func (t *clipTask) Params() []nn.Named { return t.model.Params() }

// pairs returns micro-batch micro of step: distinct random images, each
// with one of its captions.
func (t *clipTask) pairs(set *vision.CLIPSet, r *rand.Rand, idx []int) ([]float32, []int32, int, error) {
	per := len(set.Pixels[0])
	pix := make([]float32, 0, len(idx)*per)
	texts := make([]string, len(idx))
	for j, i := range idx {
		pix = append(pix, set.Pixels[i]...)
		texts[j] = set.Texts[i][r.IntN(len(set.Texts[i]))]
	}
	T := t.model.Config.Text.Context
	ids, err := t.tok.Batch(texts, T, t.model.Config.Text.Pad)
	return pix, ids, T, err
}

func (t *clipTask) Loss(s *tensor.Scope, step, micro int) (*tensor.Tensor, int, map[string]float64, error) {
	r := rand.New(rand.NewPCG(t.seed, uint64(step)<<16|uint64(micro)))
	idx := r.Perm(len(t.train.Pixels))[:t.batch]
	pix, ids, T, err := t.pairs(t.train, r, idx)
	if err != nil {
		return nil, 0, nil, err
	}
	vc := t.model.Config.Vision
	B := len(idx)
	out := t.model.Forward(s.FromHost(t.model.Heads.LogitScale.Backend(), pix, B, vc.Channels, vc.Image, vc.Image), ids, B, T)
	return out.Loss, B, map[string]float64{"logit_scale": math.Exp(float64(t.model.Heads.LogitScale.Item()))}, nil
}

// Eval scores the model on the evaluation set (CLIPOptions.Evaluate),
// when there is one.
func (t *clipTask) Eval() (map[string]float64, error) {
	if t.val == nil || t.evaluate == nil {
		return map[string]float64{}, nil
	}
	return t.evaluate(t.model, t.tok, t.val)
}

// Save writes the CLIPModel folder and the tokenizer's merges file.
func (t *clipTask) Save(dir string) error {
	if err := t.model.Save(dir); err != nil {
		return err
	}
	dst := filepath.Join(dir, tokenizer.CLIPFiles[1])
	if filepath.Ext(t.tokPath) == ".gz" {
		dst = filepath.Join(dir, tokenizer.CLIPFiles[0])
	}
	return atomicfile.LinkOrCopy(t.tokPath, dst)
}
