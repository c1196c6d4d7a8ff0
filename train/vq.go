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
	"github.com/golem-ml/golem/model/vqvae"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// VQOptions configures VQ.
type VQOptions struct {
	Backend  backend.Backend
	Data     string       // training images (any data/vision source)
	EvalData string       // optional held-out images: reconstruction PSNR and codebook usage at each evaluation
	Init     string       // a VQ-VAE folder to start from; "" = a new model
	Model    vqvae.Config // the new model (Init == "")
	Batch    int          // images per micro-batch (default 64)
	Loop     Config
	Log      io.Writer
}

type vqTask struct {
	model      *vqvae.Model
	train, val [][]float32
	batch      int
	seed       uint64
}

// VQ trains a VQ-VAE image tokenizer (model/vqvae) on images: each
// micro-batch is Batch random images, a function of (seed, step, micro),
// their pixels shifted from [0, 1] to [-0.5, 0.5]; the loss is the
// reconstruction's mean squared error plus beta times the commitment
// loss, and after each micro-batch's forward pass the codebook takes its
// EMA update and restarts its dead codes. Each step logs recon_mse, psnr
// (of the batch's MSE, on the [0, 1] scale), commit, perplexity and
// codes_used (the fraction of the codebook the batch picked) and
// restarts; each evaluation the same over EvalData (val_*), with the
// reconstruction clamped to the image range as a user sees it. The
// images are decoded once and held in memory at the model's image_size
// (the shorter side resized, the centre cut).
func VQ(ctx context.Context, o VQOptions) (Result, error) {
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.Batch == 0 {
		o.Batch = 64
	}
	cfg := o.Loop
	if cfg.Out == "" {
		return Result{}, errors.New("vq train: an output folder is needed (--out)")
	}
	if o.Batch < 1 {
		return Result{}, fmt.Errorf("vq train: batch %d, want 1 or more", o.Batch)
	}
	release, from, err := cfg.begin(o.Init)
	if err != nil {
		return Result{}, err
	}
	defer release()
	t := &vqTask{batch: o.Batch, seed: cfg.Seed}
	if from != "" {
		t.model, err = vqvae.Load(o.Backend, from)
	} else {
		t.model, err = vqvae.New(o.Backend, o.Model, cfg.Seed+1)
	}
	if err != nil {
		return Result{}, err
	}
	mc := t.model.Config
	if t.train, err = LoadVQImages(o.Data, mc); err != nil {
		return Result{}, err
	}
	if len(t.train) == 0 {
		return Result{}, fmt.Errorf("vq train: %s has no images", o.Data)
	}
	if o.EvalData != "" {
		if t.val, err = LoadVQImages(o.EvalData, mc); err != nil {
			return Result{}, err
		}
	}
	t.batch = min(t.batch, len(t.train))
	g := mc.Grid(mc.ImageSize)
	fmt.Fprintf(o.Log, "data: %d images (%s), %dx%d to %dx%d tokens of %d codes; model: %.2fM parameters\n",
		len(t.train), o.Data, mc.ImageSize, mc.ImageSize, g, g, mc.Codes, float64(nn.Count(t.model.Params()))/1e6)
	if cfg.Progress == nil {
		cfg.Progress = o.Log
	}
	return Run(ctx, cfg, t)
}

// LoadVQImages decodes the images of a source at a VQ-VAE's image_size
// and channels (vision.Fit), as the model takes them: CHW values in
// [-0.5, 0.5].
func LoadVQImages(spec string, c vqvae.Config) ([][]float32, error) {
	set, _, err := loadVQSet(spec, c)
	if err != nil {
		return nil, err
	}
	return set.Pixels, nil
}

// loadVQSet decodes a source as LoadVQImages does, keeping each image's
// texts, and returns its samples' names (for errors).
func loadVQSet(spec string, c vqvae.Config) (*vision.CLIPSet, []string, error) {
	ds, err := vision.Open(spec, vision.Limits{})
	if err != nil {
		return nil, nil, err
	}
	defer ds.Close()
	set, err := vision.LoadSet(ds, func(m *vision.Image) ([]float32, error) { return vqPixels(m, c) })
	if err != nil {
		return nil, nil, err
	}
	names := make([]string, ds.Len())
	for i := range names {
		names[i] = ds.Name(i)
	}
	return set, names, nil
}

// vqPixels fits an image to a VQ-VAE's size and channels (vision.Fit)
// and shifts it to the [-0.5, 0.5] the model takes.
func vqPixels(m *vision.Image, c vqvae.Config) ([]float32, error) {
	f, err := vision.Fit(m, c.ImageSize, c.Channels)
	if err != nil {
		return nil, err
	}
	px := make([]float32, len(f.Pix))
	for i, v := range f.Pix {
		px[i] = v - 0.5
	}
	return px, nil
}

func (t *vqTask) Params() []nn.Named { return t.model.Params() }

func (t *vqTask) Save(dir string) error { return t.model.Save(dir) }

func (t *vqTask) input(s *tensor.Scope, ims [][]float32) *tensor.Tensor {
	c := t.model.Config
	px := make([]float32, 0, len(ims)*len(ims[0]))
	for _, im := range ims {
		px = append(px, im...)
	}
	return s.FromHost(t.model.Quantizer.Codebook.Backend(), px, len(ims), c.Channels, c.ImageSize, c.ImageSize)
}

func (t *vqTask) Loss(s *tensor.Scope, step, micro int) (*tensor.Tensor, int, map[string]float64, error) {
	r := rand.New(rand.NewPCG(t.seed, uint64(step)<<16|uint64(micro)))
	ims := make([][]float32, t.batch)
	for i, j := range r.Perm(len(t.train))[:t.batch] {
		ims[i] = t.train[j]
	}
	out := t.model.Forward(t.input(s, ims))
	restarts := t.model.Quantizer.Update(out.Z.Host(), out.Codes, r)
	perp, used := vqvae.Usage(out.Codes, t.model.Config.Codes)
	mse := float64(out.MSE.Item())
	return out.Loss, len(ims), map[string]float64{"recon_mse": mse, "psnr": vqvae.PSNR(mse), "commit": float64(out.Commit.Item()),
		"perplexity": perp, "codes_used": used, "restarts": float64(restarts)}, nil
}

// Eval reconstructs the held-out images, when there are any.
func (t *vqTask) Eval() (map[string]float64, error) {
	if len(t.val) == 0 {
		return map[string]float64{}, nil
	}
	r := EvalVQ(t.model, t.val, 64)
	return map[string]float64{"val_mse": r.MSE, "val_psnr": r.PSNR, "val_perplexity": r.Perplexity, "val_codes_used": r.CodesUsed}, nil
}

// VQReport is a VQ-VAE's reconstruction of an image set.
type VQReport struct {
	MSE        float64 // mean squared error per value, reconstructions clamped to the image range, [0, 1] scale
	PSNR       float64 // of MSE, in dB
	Perplexity float64 // of the codes' histogram over the whole set
	CodesUsed  float64 // fraction of the codebook picked at least once
}

// EvalVQ encodes, quantizes and decodes images (LoadVQImages' pixels) in
// batches without gradients.
func EvalVQ(m *vqvae.Model, images [][]float32, batch int) VQReport {
	var sq float64
	var n int
	var codes []int32
	t := &vqTask{model: m}
	for i := 0; i < len(images); i += batch {
		ims := images[i:min(i+batch, len(images))]
		s := tensor.NewScope()
		tensor.NoGrad(func() {
			x := t.input(s, ims)
			out := m.Forward(x)
			rec, px := out.Recon.Host(), x.Host()
			for j, v := range rec {
				d := float64(min(max(v, -0.5), 0.5) - px[j])
				sq += d * d
			}
			n += len(rec)
			codes = append(codes, out.Codes...)
		})
		s.Close()
	}
	rep := VQReport{MSE: sq / float64(max(n, 1))}
	rep.PSNR = vqvae.PSNR(rep.MSE)
	rep.Perplexity, rep.CodesUsed = vqvae.Usage(codes, m.Config.Codes)
	return rep
}

// VQTokens returns an image's token grid under a VQ-VAE: the image is fit
// to the model's image_size and channels (vision.Fit), and its grid is h
// rows of w code ids.
func VQTokens(m *vqvae.Model, img *vision.Image) ([][]int32, error) {
	c := m.Config
	f, err := vision.Fit(img, c.ImageSize, c.Channels)
	if err != nil {
		return nil, err
	}
	px := make([]float32, len(f.Pix))
	for i, v := range f.Pix {
		px[i] = v - 0.5
	}
	s := tensor.NewScope()
	defer s.Close()
	ids, h, w := m.Tokens(s.FromHost(m.Quantizer.Codebook.Backend(), px, 1, c.Channels, c.ImageSize, c.ImageSize))
	grid := make([][]int32, h)
	for y := range grid {
		grid[y] = ids[y*w : (y+1)*w]
	}
	return grid, nil
}

// VQImage decodes a token grid (rows of code ids, all of one length) into
// an image with values in [0, 1]; a ragged grid or an id outside the
// codebook is an error naming its row and column.
func VQImage(m *vqvae.Model, grid [][]int32) (*vision.Image, error) {
	if len(grid) == 0 || len(grid[0]) == 0 {
		return nil, errors.New("an empty token grid")
	}
	h, w := len(grid), len(grid[0])
	ids := make([]int32, 0, h*w)
	for y, row := range grid {
		if len(row) != w {
			return nil, fmt.Errorf("row %d has %d tokens, row 0 has %d: want a rectangular grid", y, len(row), w)
		}
		ids = append(ids, row...)
	}
	s := tensor.NewScope()
	defer s.Close()
	out, err := m.FromTokens(s, ids, 1, h, w)
	if err != nil {
		return nil, err
	}
	img := vision.NewImage(out.Dim(1), out.Dim(2), out.Dim(3))
	for i, v := range out.Host() {
		img.Pix[i] = min(max(v+0.5, 0), 1)
	}
	return img, nil
}
