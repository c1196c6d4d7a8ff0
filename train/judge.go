package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/model/resnet"
	"github.com/golem-ml/golem/model/vqvae"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// CellExample is an image with a label for each cell of a grid over it:
// Labels[cell][head], cells row-major, -1 where a head does not apply (the
// colour of an empty cell).
type CellExample struct {
	Image  string // an image file
	Labels [][]int32
}

// JudgeOptions configures Judge.
type JudgeOptions struct {
	Backend backend.Backend
	Train   []CellExample
	Eval    []CellExample     // optional: each head's cell accuracy at each evaluation
	Init    string            // a Grid folder to start from; "" = a new model
	Model   resnet.GridConfig // the new model (Init == ""): its backbone, grid, image size and heads
	Batch   int               // images per micro-batch (default 64)
	// VQ is an optional VQ-VAE folder (golem vq train): each training
	// image is also reconstructed by it once, and half the images of a
	// batch are drawn as their reconstructions, which look like what an
	// image generator over its tokens draws.
	VQ string
	// Recolour, when set, changes a training image and its labels before
	// the augmentations (the shapes world's shapes.Recolour gives objects
	// other colours, so the judge sees every colour on every shape); px is
	// CHW of side size.
	Recolour func(px []float32, size int, labels [][]int32, r *rand.Rand) ([]float32, [][]int32)
	Loop     Config
	Log      io.Writer
}

type judgeTask struct {
	model        *resnet.Grid
	train, recon [][]float32 // pixels (vision.Fit), recon[i] the VQ reconstruction of train[i] (or nil)
	labels       [][][]int32
	val          [][]float32
	valLabels    [][][]int32
	batch        int
	seed         uint64
	recolour     func(px []float32, size int, labels [][]int32, r *rand.Rand) ([]float32, [][]int32)
}

// Judge trains an attribute judge: a resnet.Grid that reads, in each cell
// of a grid over an image, every head's class (for the shapes world:
// whether the cell holds an object, its colour, shape and size). The loss
// is the sum over heads of the cross-entropy over the cells each applies
// to. Each micro-batch is Batch random training images, a function of
// (seed, step, micro), lightly augmented as generated images differ from
// drawn ones: a shift of up to a pixel each way, a gaussian blur (sigma
// 0.3 to 0.9) half the time, brightness times 0.9 to 1.1, and gaussian
// noise of std up to 0.04; with VQ, half are its reconstructions; with
// Recolour, that first. Each
// step logs the batch's accuracy per head (acc_NAME, over the cells it
// applies to); each evaluation the same over Eval (val_acc_NAME, on the
// images as they are). Images are decoded once and held in memory at the
// model's image_size (vision.Fit).
func Judge(ctx context.Context, o JudgeOptions) (Result, error) {
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.Batch == 0 {
		o.Batch = 64
	}
	cfg := o.Loop
	if cfg.Out == "" {
		return Result{}, errors.New("judge train: an output folder is needed (--out)")
	}
	if o.Batch < 1 {
		return Result{}, fmt.Errorf("judge train: batch %d, want 1 or more", o.Batch)
	}
	if len(o.Train) == 0 {
		return Result{}, errors.New("judge train: no training images")
	}
	release, from, err := cfg.begin(o.Init)
	if err != nil {
		return Result{}, err
	}
	defer release()
	t := &judgeTask{batch: o.Batch, seed: cfg.Seed, recolour: o.Recolour}
	if from != "" {
		t.model, err = resnet.LoadGrid(o.Backend, from)
	} else {
		t.model, err = resnet.NewGrid(o.Backend, o.Model, cfg.Seed+1)
	}
	if err != nil {
		return Result{}, err
	}
	mc := t.model.Config
	if t.train, t.labels, err = loadCells(o.Train, mc); err != nil {
		return Result{}, err
	}
	if t.val, t.valLabels, err = loadCells(o.Eval, mc); err != nil {
		return Result{}, err
	}
	if o.VQ != "" {
		if t.recon, err = vqRecon(o.Backend, o.VQ, o.Train, mc); err != nil {
			return Result{}, err
		}
	}
	t.batch = min(t.batch, len(t.train))
	fmt.Fprintf(o.Log, "data: %d training images (%d held out), %dx%d cells, %d heads; model: %.2fM parameters\n",
		len(t.train), len(t.val), mc.Grid, mc.Grid, len(mc.Heads), float64(nn.Count(t.model.Params()))/1e6)
	if cfg.Progress == nil {
		cfg.Progress = o.Log
	}
	return Run(ctx, cfg, t)
}

// JudgePixels is an image as a judge takes it: fit to the model's
// image_size in three channels (vision.Fit), values in [0, 1], CHW.
func JudgePixels(m *vision.Image, c resnet.GridConfig) ([]float32, error) {
	f, err := vision.Fit(m, c.ImageSize, c.Backbone.Channels)
	if err != nil {
		return nil, err
	}
	return f.Pix, nil
}

// loadCells decodes the examples' images and checks their labels against
// the model's grid and heads; errors name the image.
func loadCells(ex []CellExample, c resnet.GridConfig) ([][]float32, [][][]int32, error) {
	px := make([][]float32, len(ex))
	labels := make([][][]int32, len(ex))
	for i, e := range ex {
		if len(e.Labels) != c.Grid*c.Grid {
			return nil, nil, fmt.Errorf("%s: %d cell labels, want %d", e.Image, len(e.Labels), c.Grid*c.Grid)
		}
		for j, l := range e.Labels {
			if len(l) != len(c.Heads) {
				return nil, nil, fmt.Errorf("%s: cell %d has %d labels, want one a head (%d)", e.Image, j, len(l), len(c.Heads))
			}
			for h, v := range l {
				if v < -1 || int(v) >= len(c.Heads[h].Classes) {
					return nil, nil, fmt.Errorf("%s: cell %d: %s class %d, want -1 to %d", e.Image, j, c.Heads[h].Name, v, len(c.Heads[h].Classes)-1)
				}
			}
		}
		m, err := vision.ReadFile(e.Image, vision.Limits{})
		if err != nil {
			return nil, nil, err
		}
		if px[i], err = JudgePixels(m, c); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", e.Image, err)
		}
		labels[i] = e.Labels
	}
	return px, labels, nil
}

// vqRecon returns each training image as the VQ-VAE at dir reconstructs
// it, fit to the judge's input.
func vqRecon(be backend.Backend, dir string, ex []CellExample, c resnet.GridConfig) ([][]float32, error) {
	vq, err := vqvae.Load(be, dir)
	if err != nil {
		return nil, err
	}
	out := make([][]float32, len(ex))
	for i, e := range ex {
		m, err := vision.ReadFile(e.Image, vision.Limits{})
		if err != nil {
			return nil, err
		}
		grid, err := VQTokens(vq, m)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Image, err)
		}
		rec, err := VQImage(vq, grid)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Image, err)
		}
		if out[i], err = JudgePixels(rec, c); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Image, err)
		}
	}
	return out, nil
}

func (t *judgeTask) Params() []nn.Named { return t.model.Params() }

func (t *judgeTask) Save(dir string) error { return t.model.Save(dir) }

// augment returns a copy of the CHW image px (side s) shifted by up to a
// pixel each way (black fill), blurred half the time, brightened by 0.9
// to 1.1 and with gaussian noise of std up to 0.04, clamped to [0, 1].
func augment(px []float32, ch, s int, r *rand.Rand) []float32 {
	dy, dx := r.IntN(3)-1, r.IntN(3)-1
	m := vision.NewImage(ch, s, s)
	for c := range ch {
		for y := range s {
			for x := range s {
				if sy, sx := y-dy, x-dx; sy >= 0 && sy < s && sx >= 0 && sx < s {
					m.Set(c, y, x, px[(c*s+sy)*s+sx])
				}
			}
		}
	}
	if r.IntN(2) == 0 {
		m = vision.Blur(m, 3, 0.3+0.6*r.Float64())
	}
	gain := float32(0.9 + 0.2*r.Float64())
	std := 0.04 * r.Float64()
	for i, v := range m.Pix {
		m.Pix[i] = min(max(v*gain+float32(std*r.NormFloat64()), 0), 1)
	}
	return m.Pix
}

// input stacks images into a [B, C, S, S] tensor of s.
func (t *judgeTask) input(s *tensor.Scope, ims [][]float32) *tensor.Tensor {
	c := t.model.Config
	px := make([]float32, 0, len(ims)*len(ims[0]))
	for _, im := range ims {
		px = append(px, im...)
	}
	return s.FromHost(t.model.Backend(), px, len(ims), c.Backbone.Channels, c.ImageSize, c.ImageSize)
}

func (t *judgeTask) Loss(s *tensor.Scope, step, micro int) (*tensor.Tensor, int, map[string]float64, error) {
	r := rand.New(rand.NewPCG(t.seed, uint64(step)<<16|uint64(micro)))
	c := t.model.Config
	ims := make([][]float32, t.batch)
	labels := make([][][]int32, t.batch)
	for i, j := range r.Perm(len(t.train))[:t.batch] {
		src, lab := t.train[j], t.labels[j]
		if t.recon != nil && r.IntN(2) == 0 {
			src = t.recon[j]
		}
		if t.recolour != nil {
			src, lab = t.recolour(src, c.ImageSize, lab, r)
		}
		ims[i], labels[i] = augment(src, c.Backbone.Channels, c.ImageSize, r), lab
	}
	t.model.SetTraining(true)
	logits := t.model.Forward(t.input(s, ims))
	var loss *tensor.Tensor
	metrics := map[string]float64{}
	for h, l := range logits {
		tg := headTargets(labels, h)
		ce := tensor.CrossEntropy(l, tg, nil)
		if loss == nil {
			loss = ce
		} else {
			loss = tensor.Add(loss, ce)
		}
		right, n := cellAccuracy(l.Host(), l.Dim(1), tg)
		if n > 0 {
			metrics["acc_"+c.Heads[h].Name] = float64(right) / float64(n)
		}
	}
	return loss, len(ims), metrics, nil
}

// headTargets is head h's class of every cell of every image, in Forward's
// row order, -1 (ignored) where the head does not apply.
func headTargets(labels [][][]int32, h int) []int32 {
	var tg []int32
	for _, im := range labels {
		for _, cell := range im {
			tg = append(tg, cell[h])
		}
	}
	return tg
}

// cellAccuracy counts the rows of logits [N, k] whose largest entry is
// their target, over the rows with a target.
func cellAccuracy(logits []float32, k int, targets []int32) (right, n int) {
	for i, got := range resnet.Argmax(logits, k) {
		if targets[i] >= 0 {
			if got == targets[i] {
				right++
			}
			n++
		}
	}
	return right, n
}

// Eval is each head's cell accuracy over the held-out images, when there
// are any.
func (t *judgeTask) Eval() (map[string]float64, error) {
	if len(t.val) == 0 {
		return map[string]float64{}, nil
	}
	t.model.SetTraining(false)
	defer t.model.SetTraining(true)
	heads := t.model.Config.Heads
	right, n := make([]int, len(heads)), make([]int, len(heads))
	for i := 0; i < len(t.val); i += 64 {
		end := min(i+64, len(t.val))
		s := tensor.NewScope()
		pred := t.model.Predict(t.input(s, t.val[i:end]))
		s.Close()
		for h := range heads {
			tg := headTargets(t.valLabels[i:end], h)
			for j, want := range tg {
				if want >= 0 {
					if pred[j][h] == want {
						right[h]++
					}
					n[h]++
				}
			}
		}
	}
	out := map[string]float64{}
	for h, hd := range heads {
		if n[h] > 0 {
			out["val_acc_"+hd.Name] = float64(right[h]) / float64(n[h])
		}
	}
	return out, nil
}
