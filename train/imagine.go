package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"sort"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/model/dalle"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/vqvae"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// ImaginePreset is the size of a new text-to-image transformer.
type ImaginePreset struct {
	Hidden, Layers, Heads int
	TextLength            int // text tokens (a caption and its padding)
	Vocab                 int // the caption BPE's vocabulary, its special tokens included
}

// ImaginePresets are named model sizes. "tiny" is 4 blocks of width 128
// with 4 heads over 48 text tokens of a byte-level BPE of up to 512
// tokens (0.87M parameters on the shapes world, whose captions' BPE
// stops at 378 tokens), for the shapes world in minutes of two cores.
func ImaginePresets() map[string]ImaginePreset {
	return map[string]ImaginePreset{"tiny": {Hidden: 128, Layers: 4, Heads: 4, TextLength: 48, Vocab: 512}}
}

// ImaginePresetNames lists ImaginePresets' names, sorted.
func ImaginePresetNames() []string {
	var n []string
	for k := range ImaginePresets() {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// ImagineOptions configures Imagine.
type ImagineOptions struct {
	Backend  backend.Backend
	VQ       string        // the VQ-VAE folder (golem vq train's); a new model only
	Data     string        // image-caption source (data/vision: JSONL {"image", "caption"}, COCO captions, tar shards)
	EvalData string        // optional held-out pairs: val_loss (image tokens given the caption) and val_loss_uncond (given none)
	Init     string        // a text-to-image folder to start from; "" = a new model
	Model    ImaginePreset // the new model (Init == "")
	Batch    int           // image-caption pairs per micro-batch (default 32)
	// CaptionDropout is the chance a training caption is replaced by the
	// empty one (all padding), so the model also learns the unconditional
	// distribution classifier-free guidance needs (default 0.1; negative: 0).
	CaptionDropout float64
	Loop           Config
	Log            io.Writer
}

type imagineTask struct {
	model      *dalle.Model
	train, val imagineSet
	batch      int
	drop       float64
	seed       uint64
	empty      []int32 // the unconditional text
}

// imagineSet is a data set as the model reads it: each image's code grid
// and its captions' text inputs.
type imagineSet struct {
	codes [][]int32
	texts [][][]int32
}

// Imagine trains a text-to-image transformer (model/dalle) on
// image-caption pairs: the images are turned into code grids once, at
// the start, by the VQ-VAE (held in memory), the captions into text
// inputs by a byte-level BPE trained on the training captions (a new
// model) or the model's own. Each micro-batch is Batch random images,
// each with one of its captions at random or, with CaptionDropout's
// chance, none, as a function of (seed, step, micro); the loss is the
// mean cross-entropy of the image tokens. The model folder holds the
// tokenizer and a copy of the VQ-VAE (vq/).
func Imagine(ctx context.Context, o ImagineOptions) (Result, error) {
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.Batch == 0 {
		o.Batch = 32
	}
	if o.CaptionDropout == 0 {
		o.CaptionDropout = 0.1
	}
	cfg := o.Loop
	switch {
	case cfg.Out == "":
		return Result{}, errors.New("imagine train: an output folder is needed (--out)")
	case o.Batch < 1:
		return Result{}, fmt.Errorf("imagine train: batch %d, want 1 or more", o.Batch)
	case o.CaptionDropout >= 1:
		return Result{}, fmt.Errorf("imagine train: caption dropout %g, want below 1", o.CaptionDropout)
	case o.Init == "" && !cfg.Resume && o.VQ == "":
		return Result{}, errors.New("imagine train: a new model needs the VQ-VAE folder that tokenizes its images (--vq)")
	}
	release, from, err := cfg.begin(o.Init)
	if err != nil {
		return Result{}, err
	}
	defer release()
	t := &imagineTask{batch: o.Batch, drop: max(o.CaptionDropout, 0), seed: cfg.Seed}
	var vq *vqvae.Model
	if from != "" {
		if t.model, err = dalle.Load(o.Backend, from); err != nil {
			return Result{}, err
		}
		vq = t.model.VQ
	} else if vq, err = vqvae.Load(o.Backend, o.VQ); err != nil {
		return Result{}, fmt.Errorf("imagine train: --vq: %w", err)
	}
	images, names, err := loadVQSet(o.Data, vq.Config)
	if err != nil {
		return Result{}, err
	}
	if len(images.Pixels) == 0 {
		return Result{}, fmt.Errorf("imagine train: %s has no images", o.Data)
	}
	if t.model == nil {
		p := o.Model
		var all []string
		for _, cs := range images.Texts {
			all = append(all, cs...)
		}
		tok, err := tokenizer.Train(tokenizer.TrainOptions{Texts: all, VocabSize: p.Vocab, Workers: 1})
		if err != nil {
			return Result{}, fmt.Errorf("imagine train: the captions' tokenizer: %w", err)
		}
		pad, _ := tok.SpecialID(tokenizer.Pad)
		vc := vq.Config
		mc := dalle.NewConfig(tok.VocabSize(), pad, p.TextLength, vc.Grid(vc.ImageSize), vc.Codes, p.Hidden, p.Layers, p.Heads)
		if t.model, err = dalle.New(o.Backend, mc, tok, vq, cfg.Seed+1); err != nil {
			return Result{}, fmt.Errorf("imagine train: %w", err)
		}
	}
	if t.train, err = t.prepare(images, names); err != nil {
		return Result{}, err
	}
	if o.EvalData != "" {
		ev, evNames, err := loadVQSet(o.EvalData, vq.Config)
		if err != nil {
			return Result{}, err
		}
		if t.val, err = t.prepare(ev, evNames); err != nil {
			return Result{}, err
		}
	}
	t.empty, _ = t.model.Text("")
	t.batch = min(t.batch, len(t.train.codes))
	mc := t.model.Config
	longest := 0
	for _, ts := range t.train.texts {
		for _, x := range ts {
			longest = max(longest, len(x)-countPad(x, mc.Pad))
		}
	}
	fmt.Fprintf(o.Log, "data: %d images (%s) as %dx%d grids of %d codes, captions up to %d of %d text tokens (a %d-token BPE); model: %.2fM parameters\n",
		len(t.train.codes), o.Data, mc.Grid, mc.Grid, mc.Codes, longest, mc.TextLength, t.model.Tok.VocabSize(), float64(nn.Count(t.model.Params()))/1e6)
	if cfg.Progress == nil {
		cfg.Progress = o.Log
	}
	cfg.checkpointModels(t.model.LM)
	return Run(ctx, cfg, t)
}

func countPad(x []int32, pad int) int {
	n := 0
	for len(x) > 0 && x[len(x)-1] == int32(pad) {
		x, n = x[:len(x)-1], n+1
	}
	return n
}

// prepare turns a data set (loadVQSet's) into code grids by the
// model's VQ-VAE, 64 images at a time, and each caption into its text
// input. An image without a caption, or a caption longer than the text
// context, is an error naming the image.
func (t *imagineTask) prepare(set *vision.CLIPSet, names []string) (imagineSet, error) {
	m := t.model
	var out imagineSet
	for i, cs := range set.Texts {
		if len(cs) == 0 {
			return out, fmt.Errorf("imagine train: %s: no caption (want image-caption pairs: JSONL {\"image\", \"caption\"}, COCO captions, tar shards with .txt)", names[i])
		}
		var xs [][]int32
		for _, c := range cs {
			x, err := m.Text(c)
			if err != nil {
				return out, fmt.Errorf("imagine train: %s: caption %q: %w (a longer --text-length?)", names[i], c, err)
			}
			xs = append(xs, x)
		}
		out.texts = append(out.texts, xs)
	}
	out.codes = vqCodes(m.VQ, set.Pixels)
	return out, nil
}

// vqCodes turns images (vqPixels') into the VQ-VAE's code grids, 64 at
// a time.
func vqCodes(vq *vqvae.Model, pixels [][]float32) [][]int32 {
	vc := vq.Config
	var out [][]int32
	for lo := 0; lo < len(pixels); lo += 64 {
		hi := min(lo+64, len(pixels))
		flat := slices.Concat(pixels[lo:hi]...)
		s := tensor.NewScope()
		ids, h, w := vq.Tokens(s.FromHost(vq.Quantizer.Codebook.Backend(), flat, hi-lo, vc.Channels, vc.ImageSize, vc.ImageSize))
		s.Close()
		for i := range hi - lo {
			out = append(out, ids[i*h*w:(i+1)*h*w:(i+1)*h*w])
		}
	}
	return out
}

func (t *imagineTask) Params() []nn.Named { return t.model.Params() }

func (t *imagineTask) Save(dir string) error { return t.model.Save(dir) }

func (t *imagineTask) Loss(s *tensor.Scope, step, micro int) (*tensor.Tensor, int, map[string]float64, error) {
	r := rand.New(rand.NewPCG(t.seed, uint64(step)<<16|uint64(micro)))
	B := t.batch
	var text, codes []int32
	dropped := 0
	for _, i := range r.Perm(len(t.train.codes))[:B] {
		ts := t.train.texts[i]
		x := ts[r.IntN(len(ts))]
		if r.Float64() < t.drop {
			x, dropped = t.empty, dropped+1
		}
		text = append(text, x...)
		codes = append(codes, t.train.codes[i]...)
	}
	loss, err := t.model.Loss(text, codes, B, gpt.Options{Scope: s, Train: true, Seed: t.seed ^ uint64(step)<<20 ^ uint64(micro)})
	if err != nil {
		return nil, 0, nil, err
	}
	return loss, B * t.model.Config.Tokens(), map[string]float64{"captions_dropped": float64(dropped) / float64(B)}, nil
}

// Eval is the held-out image tokens' loss given each image's first
// caption (val_loss) and given the empty one (val_loss_uncond), when
// there is a held-out set.
func (t *imagineTask) Eval() (map[string]float64, error) {
	if len(t.val.codes) == 0 {
		return map[string]float64{}, nil
	}
	cond, err := ImagineLoss(t.model, t.val.codes, func(i int) []int32 { return t.val.texts[i][0] }, 64)
	if err != nil {
		return nil, err
	}
	uncond, err := ImagineLoss(t.model, t.val.codes, func(int) []int32 { return t.empty }, 64)
	if err != nil {
		return nil, err
	}
	return map[string]float64{"val_loss": cond, "val_loss_uncond": uncond}, nil
}

// ImagineLoss is the mean cross-entropy per image token of code grids
// given text inputs (text(i): image i's, dalle.Model.Text's), batch
// images at a time, without gradients.
func ImagineLoss(m *dalle.Model, codes [][]int32, text func(i int) []int32, batch int) (float64, error) {
	var sum float64
	var err error
	tensor.NoGrad(func() {
		for lo := 0; lo < len(codes) && err == nil; lo += batch {
			hi := min(lo+batch, len(codes))
			var tx, cs []int32
			for i := lo; i < hi; i++ {
				tx, cs = append(tx, text(i)...), append(cs, codes[i]...)
			}
			s := tensor.NewScope()
			var l *tensor.Tensor
			if l, err = m.Loss(tx, cs, hi-lo, gpt.Options{Scope: s}); err == nil {
				sum += float64(l.Item()) * float64(hi-lo)
			}
			s.Close()
		}
	})
	return sum / float64(max(len(codes), 1)), err
}
