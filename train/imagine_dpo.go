package train

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"slices"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/model/dalle"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// ImagineDPOOptions configures ImagineDPO.
type ImagineDPOOptions struct {
	Backend backend.Backend
	Model   string // the text-to-image folder: the policy's start and the frozen reference
	VQ      string // the VQ-VAE to read it with when the folder has no vq/ ("" = its own)
	Data    string // image preferences: JSONL {"prompt", "chosen", "rejected"} (vision.ReadImagePrefs)
	// EvalData holds the held-out preferences; "" holds out HeldoutFrac
	// (default 0.1) of Data's prompts.
	EvalData    string
	HeldoutFrac float64
	Beta        float64 // DPO's beta (default 0.1)
	LossType    string  // "sigmoid" (default) or "ipo", as DPOOptions
	RPOAlpha    float64 // as DPOOptions: the chosen images' NLL per token, times RPOAlpha, added
	Batch       int     // pairs per micro-batch (default 8)
	Loop        Config
	Log         io.Writer
}

// imagePair is one preference between two images for a caption: the
// caption's text input, the two images' code grids (chosen, rejected)
// and the reference's log-probabilities of them.
type imagePair struct {
	text  []int32
	codes [2][]int32
	ref   [2]float64
}

type imagineDPOTask struct {
	o          ImagineDPOOptions
	model      *dalle.Model
	train, val []imagePair
	accum      int
	seed       uint64
}

// ImagineDPO tunes a text-to-image transformer (model/dalle) on
// preferences between two images drawn for the same prompt by direct
// preference optimisation: each image is its tokens where the line
// carries them (a sample's own draw: golem imagine prefs), else turned
// into its VQ-VAE code grid once, a pair's log-probabilities are the sums over the grid's
// tokens given the caption, and the reference is the starting model,
// frozen (its log-probabilities computed once, before training). The
// loss is text DPO's (dpoLoss: sigmoid or IPO, beta, RPO's term).
// Result.Eval holds the held-out val_accuracy (pairs the implicit reward
// orders as labelled) and val_margin. Out is a text-to-image folder.
func ImagineDPO(ctx context.Context, o ImagineDPOOptions) (Result, error) {
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if err := dpoSettings("imagine dpo", &o.Beta, &o.LossType, o.RPOAlpha, &o.Batch); err != nil {
		return Result{}, err
	}
	cfg := o.Loop
	switch {
	case cfg.Out == "":
		return Result{}, errors.New("imagine dpo: an output folder is needed (--out)")
	case o.Model == "":
		return Result{}, errors.New("imagine dpo: the text-to-image model to tune is needed (--model)")
	}
	release, from, err := cfg.begin(o.Model)
	if err != nil {
		return Result{}, err
	}
	defer release()
	t := &imagineDPOTask{o: o, accum: max(1, cfg.Accum), seed: cfg.Seed}
	if t.model, err = dalle.LoadWithVQ(o.Backend, from, o.VQ); err != nil {
		return Result{}, err
	}
	ref := t.model // the reference is the start: the policy before its first step
	if from != o.Model {
		if ref, err = dalle.LoadWithVQ(o.Backend, o.Model, o.VQ); err != nil {
			return Result{}, err
		}
	}
	prefs, err := vision.ReadImagePrefs(o.Data)
	if err != nil {
		return Result{}, err
	}
	trainP, valP := prefs, []vision.ImagePref(nil)
	if o.EvalData != "" {
		if valP, err = vision.ReadImagePrefs(o.EvalData); err != nil {
			return Result{}, err
		}
	} else {
		trainP, valP = splitImagePrefs(prefs, o.HeldoutFrac)
	}
	codes := map[string][]int32{}
	if t.train, err = t.pairs(ref, trainP, codes); err != nil {
		return Result{}, err
	}
	if t.val, err = t.pairs(ref, valP, codes); err != nil {
		return Result{}, err
	}
	if len(t.train) == 0 {
		return Result{}, fmt.Errorf("imagine dpo: %s: every preference was held out; none to train on", o.Data)
	}
	own, tokened := "", 0
	for _, p := range slices.Concat(trainP, valP) {
		if p.ChosenTokens != nil || p.RejectedTokens != nil {
			tokened++
		}
	}
	if tokened > 0 {
		own = fmt.Sprintf(", %d pairs' images as the tokens they were drawn as", tokened)
	}
	fmt.Fprintf(o.Log, "imagine dpo: %d pairs to train on, %d held out (%d images as %dx%d code grids%s); loss %s, beta %g; %.2fM parameters trained\n",
		len(t.train), len(t.val), len(codes), t.model.Config.Grid, t.model.Config.Grid, own, o.LossType, o.Beta, float64(nn.Count(t.model.Params()))/1e6)
	if cfg.Progress == nil {
		cfg.Progress = o.Log
	}
	cfg.checkpointModels(t.model.LM)
	return Run(ctx, cfg, t)
}

// splitImagePrefs holds out about frac (default 0.1) of the prompts, by a
// hash of the prompt, so that no prompt is in both parts.
func splitImagePrefs(ps []vision.ImagePref, frac float64) (train, val []vision.ImagePref) {
	if frac == 0 {
		frac = 0.1
	}
	for _, p := range ps {
		h := fnv.New64a()
		io.WriteString(h, p.Prompt)
		if heldOutBy(h.Sum64(), frac) {
			val = append(val, p)
		} else {
			train = append(train, p)
		}
	}
	return train, val
}

// pairs reads the preferences' images (each file once: codes caches its
// grid by path), encodes their captions and scores both images with the
// reference. Errors name the file and line.
func (t *imagineDPOTask) pairs(ref *dalle.Model, ps []vision.ImagePref, codes map[string][]int32) ([]imagePair, error) {
	vc := t.model.VQ.Config
	var paths []string
	var pixels [][]float32
	out := make([]imagePair, len(ps))
	for i, p := range ps {
		x, err := t.model.Text(p.Prompt)
		if err != nil {
			return nil, fmt.Errorf("imagine dpo: %s: %w", p.Source, err)
		}
		out[i].text = x
		for k, f := range []string{p.Chosen, p.Rejected} {
			if tok := [2][]int32{p.ChosenTokens, p.RejectedTokens}[k]; tok != nil {
				if err := t.checkTokens(tok); err != nil {
					return nil, fmt.Errorf("imagine dpo: %s: %q: %w", p.Source, [2]string{"chosen_tokens", "rejected_tokens"}[k], err)
				}
				out[i].codes[k] = tok
				continue
			}
			if _, ok := codes[f]; ok || slices.Contains(paths, f) {
				continue
			}
			m, err := vision.ReadFile(f, vision.Limits{})
			if err != nil {
				return nil, fmt.Errorf("imagine dpo: %s: %w", p.Source, err)
			}
			px, err := vqPixels(m, vc)
			if err != nil {
				return nil, fmt.Errorf("imagine dpo: %s: %s: %w", p.Source, f, err)
			}
			paths, pixels = append(paths, f), append(pixels, px)
		}
	}
	for i, c := range vqCodes(t.model.VQ, pixels) {
		codes[paths[i]] = c
	}
	for i, p := range ps {
		for k, f := range []string{p.Chosen, p.Rejected} {
			if out[i].codes[k] == nil {
				out[i].codes[k] = codes[f]
			}
		}
	}
	for lo := 0; lo < len(out); lo += 16 {
		batch := out[lo:min(lo+16, len(out))]
		var lp []float32
		var err error
		lp = noGradValues(func(s *tensor.Scope) *tensor.Tensor {
			var v *tensor.Tensor
			v, err = t.logps(s, ref, batch)
			return v
		})
		if err != nil {
			return nil, err
		}
		n := len(batch)
		for j := range batch {
			batch[j].ref = [2]float64{float64(lp[j]), float64(lp[n+j])}
		}
	}
	return out, nil
}

// checkTokens says whether tok is an image of the model: Grid x Grid
// code ids, each below the codebook's size.
func (t *imagineDPOTask) checkTokens(tok []int32) error {
	c := t.model.Config
	if len(tok) != c.Tokens() {
		return fmt.Errorf("%d image tokens, want %d (%dx%d)", len(tok), c.Tokens(), c.Grid, c.Grid)
	}
	for _, v := range tok {
		if v < 0 || int(v) >= c.Codes {
			return fmt.Errorf("image token %d, want 0 to %d", v, c.Codes-1)
		}
	}
	return nil
}

// logps returns the log-probability under m of each pair's chosen image,
// then of each rejected one ([2n], in scope s); for IPO the mean per
// image token.
func (t *imagineDPOTask) logps(s *tensor.Scope, m *dalle.Model, ps []imagePair) (*tensor.Tensor, error) {
	n := len(ps)
	var text, codes []int32
	for k := range 2 {
		for _, p := range ps {
			text, codes = append(text, p.text...), append(codes, p.codes[k]...)
		}
	}
	lp, err := m.LogProbs(text, codes, 2*n, gpt.Options{Scope: s})
	if err != nil {
		return nil, err
	}
	if t.o.LossType == "ipo" {
		lp = tensor.Scale(lp, 1/float32(m.Config.Tokens()))
	}
	return lp, nil
}

func (t *imagineDPOTask) Params() []nn.Named { return t.model.Params() }

func (t *imagineDPOTask) Save(dir string) error { return t.model.Save(dir) }

func (t *imagineDPOTask) Loss(s *tensor.Scope, step, micro int) (*tensor.Tensor, int, map[string]float64, error) {
	B := t.o.Batch
	ps := make([]imagePair, B)
	refs, chosen := make([][2]float64, B), make([]int, B)
	N := t.model.Config.Tokens()
	for i := range ps {
		ps[i] = t.train[epochOrder(t.seed, len(t.train), (step*t.accum+micro)*B+i)]
		refs[i], chosen[i] = ps[i].ref, N
		if t.o.LossType == "ipo" {
			chosen[i] = 1
		}
	}
	lp, err := t.logps(s, t.model, ps)
	if err != nil {
		return nil, 0, nil, err
	}
	loss, metrics := dpoLoss(s, lp, refs, chosen, t.o.Beta, t.o.LossType, t.o.RPOAlpha)
	return loss, 2 * B * N, metrics, nil
}

// Eval is the held-out accuracy and margin of the implicit reward
// beta * log(pi / ref).
func (t *imagineDPOTask) Eval() (map[string]float64, error) {
	if len(t.val) == 0 {
		return map[string]float64{}, nil
	}
	var acc, margin float64
	for lo := 0; lo < len(t.val); lo += 16 {
		batch := t.val[lo:min(lo+16, len(t.val))]
		var err error
		lp := noGradValues(func(s *tensor.Scope) *tensor.Tensor {
			var v *tensor.Tensor
			v, err = t.logps(s, t.model, batch)
			return v
		})
		if err != nil {
			return nil, err
		}
		refs := make([][2]float64, len(batch))
		for j, p := range batch {
			refs[j] = p.ref
		}
		a, m := pairStats(lp, refs, t.o.Beta)
		acc, margin = acc+a, margin+m
	}
	n := float64(len(t.val))
	return map[string]float64{"val_accuracy": acc / n, "val_margin": margin / n}, nil
}
