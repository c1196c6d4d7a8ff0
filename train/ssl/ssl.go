// Package ssl holds golem's self-supervised methods for images, one file a
// method: MAE (mae.go), SimCLR (simclr.go), MoCo v3 (moco.go), BYOL
// (byol.go), colorization (colorize.go) and inpainting with a context
// encoder (inpaint.go). Each builds a train.Task over an Encoder (a
// network that maps images [B, C, H, W] to features [B, D]) and the heads
// its method trains beside it (projectors, predictors, decoders), and
// train.Run does the rest. losses.go holds the methods' losses (NT-Xent,
// MoCo v3's contrastive loss, BYOL's normalised MSE); features.go turns a
// data set into the frozen features eval/probe classifies; report.go
// writes report.html beside the checkpoint.
//
// Only the encoder is saved: the model folder a run writes is the
// encoder's (config.json, model.safetensors), which is what a linear probe
// or a later stage uses; the heads are dropped, as the papers do.
package ssl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/train"
)

// Encoder is the network a method trains: images in, one feature vector
// per image out.
type Encoder interface {
	// Features maps images [B, C, H, W] to features [B, Dim()].
	Features(x *tensor.Tensor) *tensor.Tensor
	Dim() int
	// InputChannels is the C Features takes.
	InputChannels() int
	// Params returns the parameters saved in a checkpoint.
	Params() []nn.Named
	// SetTraining switches normalisation layers between training and
	// evaluation.
	SetTraining(on bool)
	// Save writes the encoder as a model folder.
	Save(dir string) error
}

// DefaultConfig is the encoder a method trains unless told: the small
// ResNet, MAE's too (as ConvNeXt V2's FCMAE): 150 steps of MAE on it beat
// its random initialisation on MNIST and Fashion-MNIST, where 400 on the
// ViT did not (docs/vision.md's Results).
func DefaultConfig(method string) string { return "tiny" }

// Methods lists the method names Pretrain takes.
func Methods() []string {
	return []string{"mae", "simclr", "moco", "byol", "colorize", "inpaint"}
}

// Options configures Pretrain.
type Options struct {
	Backend backend.Backend
	Method  string         // one of Methods()
	Data    vision.Dataset // the training images (labels unused)
	Spec    string         // Data's spec, for messages and the report
	Encoder Encoder        // the encoder to train; nil: a new one named Config
	Config  string         // the encoder (Configs; default "tiny", "vit-tiny" for mae)
	Batch   int            // images per micro-batch (default 128)
	Loop    train.Config   // Steps 0: write the initialised encoder and stop
	Log     io.Writer
}

// task is what every method's train.Task shares: the encoder and the heads
// it trains, and the data. A micro-batch's tensors belong to the loop's
// scope for it (its inputs are made with s.FromHost, all else joins
// through data flow), so the task frees nothing.
type task struct {
	o       Options
	enc     Encoder
	heads   []nn.Named // trained with the encoder, not saved
	C, H, W int        // the images' shape (of the first image; all must match)
	data    *dataClock // the steps' data: decoded, and waited for
	next    *prefetch  // the next micro-batch's images, on their way
}

// dataClock counts the images decoded and augmented for the training
// steps, the time that took (on other goroutines, beside the steps) and
// the time the steps waited for them, to set beside the training's
// images/s.
type dataClock struct {
	images       int
	busy, waited atomic.Int64 // nanoseconds
}

// prefetch is a micro-batch's images, decoded and augmented while the
// step before it runs.
type prefetch struct {
	step, micro int
	done        chan struct{}
	views       [][]*vision.Image
	err         error
}

// drain waits for the micro-batch on its way, if any, and drops it.
func (t *task) drain() {
	if t.next != nil {
		<-t.next.done
		t.next = nil
	}
}

// newTask checks the data and prepares the shared state.
func newTask(o Options) (*task, error) {
	if o.Data == nil || o.Data.Len() == 0 {
		return nil, fmt.Errorf("ssl: %s: no images", o.Spec)
	}
	if n := min(o.Batch, o.Data.Len()); n < 2 && o.Batch != 0 {
		return nil, fmt.Errorf("ssl: %s: batches of %d image(s) (--batch %d, %d images); the methods compare or normalise over a batch of at least 2", o.Spec, n, o.Batch, o.Data.Len())
	}
	first, err := o.Data.Load(0)
	if err != nil {
		return nil, err
	}
	t := &task{o: o, enc: o.Encoder, C: first.C, H: first.H, W: first.W, data: &dataClock{}}
	return t, nil
}

// needChannels refuses data whose channel count the encoder cannot take.
func (t *task) needChannels(c int) error {
	if got := t.enc.InputChannels(); got != c {
		return fmt.Errorf("ssl: %s: %s's encoder takes %d-channel images, the data has %d", t.o.Spec, t.o.Method, got, c)
	}
	return nil
}

// Params returns the encoder's parameters and the heads' (the loop trains
// those that require gradients).
func (t *task) Params() []nn.Named { return append(t.enc.Params(), t.heads...) }

// Eval reports nothing: the probes (eval/probe) measure an encoder.
func (t *task) Eval() (map[string]float64, error) { return map[string]float64{}, nil }

// Save writes the encoder.
func (t *task) Save(dir string) error { return t.enc.Save(dir) }

// head registers a module's parameters as trained heads and returns it.
func head[M any](t *task, name string, m M) M {
	for _, p := range nn.Params(m) {
		t.heads = append(t.heads, nn.Named{Name: name + "." + p.Name, Tensor: p.Tensor})
	}
	return m
}

// stepRand is the generator of (step, micro, stream): the same for a run
// resumed at step.
func (t *task) stepRand(step, micro int, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(t.o.Loop.Seed^stream, uint64(step)<<20|uint64(micro)))
}

// batch picks the micro-batch's images (with replacement across steps,
// without within one) and returns, for each pipeline, the images
// transformed by it, decoded and transformed on all cores; sample i of
// pipeline v draws from its own generator. It also returns the untouched
// images, for pictures.
//
// A training step's (step >= 0) micro-batch is taken from the prefetch
// the call before started, when it is that one, and the one after it is
// started: the steps wait for their images only when decoding them took
// longer than the step before.
func (t *task) batch(step, micro int, pipes ...[]vision.Transform) ([][]*vision.Image, error) {
	n := min(t.o.Batch, t.o.Data.Len())
	if step < 0 { // the report's pictures
		return t.load(step, micro, n, pipes)
	}
	start := time.Now()
	var views [][]*vision.Image
	var err error
	if p := t.next; p != nil && p.step == step && p.micro == micro {
		<-p.done
		views, err = p.views, p.err
		t.next = nil
	} else {
		t.drain()
		views, err = t.load(step, micro, n, pipes)
	}
	t.data.images += n
	t.data.waited.Add(int64(time.Since(start)))
	if err != nil {
		return nil, err
	}
	ns, nm := step, micro+1
	if nm >= max(t.o.Loop.Accum, 1) {
		ns, nm = step+1, 0
	}
	if ns < t.o.Loop.Steps {
		p := &prefetch{step: ns, micro: nm, done: make(chan struct{})}
		t.next = p
		go func() {
			defer close(p.done)
			p.views, p.err = t.load(ns, nm, n, pipes)
		}()
	}
	return views, nil
}

// load decodes micro-batch (step, micro)'s n images and transforms them.
func (t *task) load(step, micro, n int, pipes [][]vision.Transform) (views [][]*vision.Image, err error) {
	if step >= 0 {
		start := time.Now()
		defer func() { t.data.busy.Add(int64(time.Since(start))) }()
	}
	r := t.stepRand(step, micro, 0xba7c)
	N := t.o.Data.Len()
	var idx []int
	if N <= 4*n {
		idx = r.Perm(N)[:n]
	} else { // a permutation of a large set is wasteful: draw distinct indices
		seen := map[int]bool{}
		for len(idx) < n {
			if i := r.IntN(N); !seen[i] {
				seen[i] = true
				idx = append(idx, i)
			}
		}
	}
	views = make([][]*vision.Image, len(pipes)+1)
	for v := range views {
		views[v] = make([]*vision.Image, n)
	}
	seed := r.Uint64()
	errs := make([]error, n)
	var wg sync.WaitGroup
	jobs := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range jobs {
				errs[k] = t.sample(idx[k], k, seed, views, pipes)
			}
		}()
	}
	for k := range n {
		jobs <- k
	}
	close(jobs)
	wg.Wait()
	return views, errors.Join(errs...)
}

func (t *task) sample(i, k int, seed uint64, views [][]*vision.Image, pipes [][]vision.Transform) error {
	m, err := t.o.Data.Load(i)
	if err != nil {
		return err
	}
	if m.C != t.C || m.H != t.H || m.W != t.W {
		return fmt.Errorf("%s: image is %s, but the first is %dx%dx%d (all images must have one size)", t.o.Data.Name(i), m.Shape(), t.C, t.H, t.W)
	}
	views[0][k] = m
	for v, pipe := range pipes {
		r := rand.New(rand.NewPCG(seed, uint64(k)<<8|uint64(v)))
		x := m
		for _, tr := range pipe {
			if x, err = tr.Apply(x, r); err != nil {
				return fmt.Errorf("%s: %w", t.o.Data.Name(i), err)
			}
		}
		views[v+1][k] = x
	}
	return nil
}

// stack puts images of one shape into NCHW host memory.
func stack(ims []*vision.Image) ([]float32, []int) {
	m := ims[0]
	out := make([]float32, 0, len(ims)*len(m.Pix))
	for _, im := range ims {
		out = append(out, im.Pix...)
	}
	return out, []int{len(ims), m.C, m.H, m.W}
}

// tensorOf stacks images into an input tensor owned by s.
func (t *task) tensorOf(s *tensor.Scope, ims []*vision.Image) *tensor.Tensor {
	x, sh := stack(ims)
	return s.FromHost(t.o.Backend, x, sh...)
}

// mlp is Linear, BatchNorm, ReLU, ..., Linear: SimCLR's, MoCo v3's and
// BYOL's projection and prediction heads (BatchNorm on the hidden layers
// only, with the batch's statistics; the heads are used in training only).
type mlp struct {
	Layers []*nn.Linear      `nn:"layers"`
	Norms  []*nn.BatchNorm2d `nn:"norms"`
}

// newMLP makes an MLP through the widths dims[0] → dims[1] → ... → last.
func newMLP(in *nn.Init, dims ...int) *mlp {
	m := &mlp{}
	for i := 0; i+1 < len(dims); i++ {
		fan := float64(dims[i])
		m.Layers = append(m.Layers, nn.NewLinear(in, dims[i], dims[i+1], true, 1/sqrtf(fan)))
		if i+2 < len(dims) {
			bn := nn.NewBatchNorm2d(in, dims[i+1], 1e-5, true)
			bn.RunningMean, bn.RunningVar = nil, nil
			m.Norms = append(m.Norms, bn)
		}
	}
	return m
}

func (m *mlp) Forward(x *tensor.Tensor) *tensor.Tensor {
	for i, l := range m.Layers {
		x = l.Forward(x)
		if i < len(m.Norms) {
			B, D := x.Dim(0), x.Dim(1)
			x = tensor.ReLU(tensor.Reshape(m.Norms[i].Forward(tensor.Reshape(x, B, D, 1, 1)), B, D))
		}
	}
	return x
}

// decoder maps features [B, D] to images [B, C, H, W] (H and W multiples
// of 4): a linear layer to a 32-channel map at a quarter of the size, then
// two transposed convolutions that double it. The reconstruction methods'
// shallow decoder.
type decoder struct {
	In   *nn.Linear          `nn:"in"`
	Up1  *nn.ConvTranspose2d `nn:"up1"`
	Up2  *nn.ConvTranspose2d `nn:"up2"`
	h, w int
}

func newDecoder(in *nn.Init, d, c, h, w int) (*decoder, error) {
	if h%4 != 0 || w%4 != 0 || h < 4 || w < 4 {
		return nil, fmt.Errorf("ssl: the decoder needs images whose sides are multiples of 4 (these are %dx%d; add a resize or crop)", w, h)
	}
	up := tensor.ConvOptions{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}
	return &decoder{
		In:  nn.NewLinear(in, d, 32*(h/4)*(w/4), true, 1/sqrtf(float64(d))),
		Up1: nn.NewConvTranspose2d(in, 32, 16, 4, 4, true, up),
		Up2: nn.NewConvTranspose2d(in, 16, c, 4, 4, true, up),
		h:   h / 4, w: w / 4,
	}, nil
}

func (d *decoder) Forward(f *tensor.Tensor) *tensor.Tensor {
	x := tensor.ReLU(tensor.Reshape(d.In.Forward(f), f.Dim(0), 32, d.h, d.w))
	return d.Up2.Forward(tensor.ReLU(d.Up1.Forward(x)))
}

// ema sets each target to m*target + (1-m)*online; the values it
// computes on the way belong to s.
func ema(s *tensor.Scope, targets, online []nn.Named, m float32) {
	tensor.NoGrad(func() {
		for i, p := range targets {
			o := online[i].Tensor
			p.Tensor.CopyFrom(s.Adopt(tensor.Add(tensor.Scale(p.Tensor, m), tensor.Scale(o, 1-m))))
		}
	})
}

func sqrtf(x float64) float64 { return math.Sqrt(x) }

// frozen marks parameters as not trained (a momentum or EMA target's).
func frozen(ps []nn.Named) {
	for _, p := range ps {
		p.Tensor.SetRequiresGrad(false)
	}
}

// Pictures is what a method shows in its report: rows of images with
// their captions (originals, views, reconstructions).
type Pictures struct {
	Title string
	Rows  [][]*vision.Image
	Names []string // one a row
}

// pictured is a method that draws pictures for its report.
type pictured interface {
	pictures(n int) (Pictures, error)
}

// Result is what Pretrain reports.
type Result struct {
	train.Result
	Params int // the encoder's parameter count
	// DataImages images were decoded and augmented for the training steps
	// in DataSeconds (on other goroutines, beside the steps), and the steps
	// waited WaitSeconds of the run's Seconds for them.
	DataImages               int
	DataSeconds, WaitSeconds float64
}

// Pretrain trains o.Encoder with o.Method and writes it to o.Loop.Out,
// with report.html. With Loop.Steps 0 it writes the initialised encoder.
func Pretrain(ctx context.Context, o Options) (Result, error) {
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.Loop.Out == "" {
		return Result{}, errors.New("ssl: an output folder is needed (--out)")
	}
	if o.Loop.Progress == nil {
		o.Loop.Progress = o.Log
	}
	mk, ok := methods[o.Method]
	if !ok {
		return Result{}, fmt.Errorf("ssl: unknown method %q (have %s)", o.Method, strings.Join(Methods(), ", "))
	}
	if o.Batch <= 0 {
		o.Batch = 128
	}
	base, err := newTask(o)
	if err != nil {
		return Result{}, err
	}
	if o.Encoder == nil {
		if o.Config == "" {
			o.Config = DefaultConfig(o.Method)
		}
		in := base.C
		if o.Method == "colorize" {
			in = 1 // it sees the gray image
		}
		if o.Encoder, err = NewEncoder(o.Backend, o.Config, o.Method, in, base.H, base.W, o.Loop.Seed); err != nil {
			return Result{}, err
		}
		base.o.Encoder, base.enc = o.Encoder, o.Encoder
	}
	tk, err := mk(base)
	if err != nil {
		return Result{}, err
	}
	res := Result{Params: nn.Count(nn.Trainable(o.Encoder.Params()))}
	fmt.Fprintf(o.Log, "%s: %d images of %dx%dx%d from %s; encoder %d parameters, heads %d\n",
		o.Method, o.Data.Len(), base.C, base.H, base.W, o.Spec, res.Params, nn.Count(base.heads))
	if o.Loop.Steps == 0 {
		if err := os.MkdirAll(o.Loop.Out, 0o755); err != nil {
			return res, err
		}
		if err := o.Encoder.Save(o.Loop.Out); err != nil {
			return res, err
		}
	} else {
		res.Result, err = train.Run(ctx, o.Loop, tk)
		base.drain()
		res.DataImages = base.data.images
		res.DataSeconds = time.Duration(base.data.busy.Load()).Seconds()
		res.WaitSeconds = time.Duration(base.data.waited.Load()).Seconds()
		if err != nil {
			return res, err
		}
		if res.DataSeconds > 0 && res.Seconds > 0 {
			fmt.Fprintf(o.Log, "data: %d images decoded and augmented at %.0f images/s (%d goroutines, beside the steps); training %.0f images/s; %.1f%% of the run waited on data\n",
				res.DataImages, float64(res.DataImages)/res.DataSeconds, runtime.GOMAXPROCS(0), float64(res.DataImages)/res.Seconds, 100*res.WaitSeconds/res.Seconds)
		}
	}
	if err := writeRecord(o.Loop.Out, pretrainRecord{Method: o.Method, Config: o.Config, Data: o.Spec, Steps: res.Step, InitSeed: o.Loop.Seed}); err != nil {
		return res, err
	}
	if err := writeReport(o, base, tk, res); err != nil {
		return res, fmt.Errorf("ssl: report: %w", err)
	}
	return res, nil
}

// methods builds each method's task over the shared one.
var methods = map[string]func(*task) (train.Batches, error){
	"mae":      newMAE,
	"simclr":   newSimCLR,
	"moco":     newMoCo,
	"byol":     newBYOL,
	"colorize": newColorize,
	"inpaint":  newInpaint,
}

// randomApply applies T with probability P (torchvision's RandomApply).
type randomApply struct {
	P float64
	T vision.Transform
}

func (a randomApply) Apply(m *vision.Image, r *rand.Rand) (*vision.Image, error) {
	if r.Float64() >= a.P {
		return m, nil
	}
	return a.T.Apply(m, r)
}

// augmentPictures shows n images and two augmented views of each.
func augmentPictures(t *task, n int, p1, p2 []vision.Transform) (Pictures, error) {
	views, err := t.sampleViews(n, p1, p2)
	if err != nil {
		return Pictures{}, err
	}
	return Pictures{Title: "Augmentations", Rows: views, Names: []string{"image", "view 1", "view 2"}}, nil
}

// sampleViews returns n images of the data (a fixed draw) and each
// pipeline's view of them.
func (t *task) sampleViews(n int, pipes ...[]vision.Transform) ([][]*vision.Image, error) {
	saved := t.o.Batch
	t.o.Batch = n
	defer func() { t.o.Batch = saved }()
	return t.batch(-1, 0, pipes...)
}
