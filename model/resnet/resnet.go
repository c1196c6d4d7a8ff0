// Package resnet is a small ResNet for images: a 3x3 stem, stages of basic
// blocks (two 3x3 convolutions and a shortcut; the first block of every
// stage after the first halves the resolution), global average pooling.
// Its parameters are tagged with the names Hugging Face's ResNetModel uses
// (embedder.embedder.convolution.weight, encoder.stages.0.layers.0...), but
// the stem is a 3x3 convolution at full resolution without max pooling,
// for small images (28x28 MNIST, 32x32 CIFAR): config.json's model_type is
// "golem_resnet", so transformers does not mistake it for its own.
//
// A model folder is config.json and model.safetensors; BatchNorm's running
// statistics are saved with the weights.
package resnet

import (
	"fmt"
	"sort"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/model/weights"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// ModelType is config.json's model_type for this architecture.
const ModelType = "golem_resnet"

// Config is a ResNet's config.json.
type Config struct {
	ModelType string `json:"model_type"`
	Channels  int    `json:"num_channels"`   // input channels (1 gray, 3 RGB)
	Stem      int    `json:"embedding_size"` // the stem's width
	Widths    []int  `json:"hidden_sizes"`   // each stage's width
	Depths    []int  `json:"depths"`         // basic blocks per stage
	Norm      string `json:"norm"`           // "batch" (BatchNorm2d) or "group" (GroupNorm, 8 groups or fewer)
	ImageSize int    `json:"image_size"`     // the size it was trained at (informative; any size runs)
	Seed      uint64 `json:"init_seed"`      // the seed of its initialisation (the random-init baseline)
}

// Presets returns the named configs: "tiny" (16/32/64 wide, one block a
// stage, 0.08M parameters) and "small" (32/64/128, two blocks a stage,
// ResNet-18's layout at a quarter of its width and half its depth, 0.7M).
func Presets() map[string]Config {
	return map[string]Config{
		"tiny":  {ModelType: ModelType, Stem: 16, Widths: []int{16, 32, 64}, Depths: []int{1, 1, 1}, Norm: "batch"},
		"small": {ModelType: ModelType, Stem: 32, Widths: []int{32, 64, 128}, Depths: []int{2, 2, 2}, Norm: "batch"},
	}
}

// PresetNames lists Presets' names, sorted.
func PresetNames() []string {
	var n []string
	for k := range Presets() {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Validate checks the config, naming the config.json field at fault.
func (c *Config) Validate() error {
	if c.ModelType != ModelType {
		return fmt.Errorf("\"model_type\" is %q, want %q", c.ModelType, ModelType)
	}
	if c.Channels < 1 || c.Channels > 4 {
		return fmt.Errorf("\"num_channels\" is %d, want 1 to 4", c.Channels)
	}
	if c.Stem < 1 || c.Stem > 4096 {
		return fmt.Errorf("\"embedding_size\" is %d, want 1 to 4096", c.Stem)
	}
	if len(c.Widths) == 0 || len(c.Widths) > 8 || len(c.Depths) != len(c.Widths) {
		return fmt.Errorf("\"hidden_sizes\" (%d) and \"depths\" (%d) need the same length, 1 to 8", len(c.Widths), len(c.Depths))
	}
	for i := range c.Widths {
		if c.Widths[i] < 1 || c.Widths[i] > 4096 || c.Depths[i] < 1 || c.Depths[i] > 64 {
			return fmt.Errorf("stage %d: \"hidden_sizes\" %d (1 to 4096) or \"depths\" %d (1 to 64) out of range", i, c.Widths[i], c.Depths[i])
		}
	}
	switch c.Norm {
	case "batch", "group":
	default:
		return fmt.Errorf("\"norm\" is %q, want \"batch\" or \"group\"", c.Norm)
	}
	return nil
}

// ConvNorm is a bias-free convolution followed by its normalisation
// (Hugging Face's ResNetConvLayer without the activation).
type ConvNorm struct {
	Conv  *nn.Conv2d `nn:"convolution"`
	Norms norms      `nn:"normalization"`
}

// norms holds whichever normalisation the config picks, under one name.
type norms struct {
	BN *nn.BatchNorm2d `nn:""`
	GN *nn.GroupNorm   `nn:""`
}

func newConvNorm(in *nn.Init, c Config, inC, outC, k, stride int) *ConvNorm {
	o := tensor.ConvOptions{Stride: [2]int{stride, stride}, Padding: [2]int{k / 2, k / 2}}
	l := &ConvNorm{Conv: nn.NewConv2d(in, inC, outC, k, k, false, o)}
	if c.Norm == "group" {
		l.Norms.GN = nn.NewGroupNorm(in, groupsFor(outC), outC, 1e-5, true)
	} else {
		l.Norms.BN = nn.NewBatchNorm2d(in, outC, 1e-5, true)
	}
	return l
}

// groupsFor is GroupNorm's group count for c channels: the largest of 8,
// 4, 2, 1 that divides c.
func groupsFor(c int) int {
	for _, g := range []int{8, 4, 2} {
		if c%g == 0 {
			return g
		}
	}
	return 1
}

// Forward convolves and normalises x.
func (l *ConvNorm) Forward(x *tensor.Tensor) *tensor.Tensor {
	y := l.Conv.Forward(x)
	if l.Norms.GN != nil {
		return l.Norms.GN.Forward(y)
	}
	return l.Norms.BN.Forward(y)
}

// Block is a basic block: relu(norm(conv(relu(norm(conv(x))))) + shortcut(x)).
type Block struct {
	Shortcut *Shortcut   `nn:"shortcut"`
	Layers   []*ConvNorm `nn:"layer"`
}

// Shortcut projects the input when the block changes width or resolution.
type Shortcut struct {
	*ConvNorm `nn:""`
}

// Stage is a run of blocks at one width.
type Stage struct {
	Blocks []*Block `nn:"layers"`
}

// Model is the ResNet: stem, stages, global average pooling.
type Model struct {
	Config Config    `nn:"-"`
	Stem   *ConvNorm `nn:"embedder.embedder"`
	Stages []*Stage  `nn:"encoder.stages"`
	be     backend.Backend
}

// New returns a ResNet initialised from seed as PyTorch's default
// (uniform by fan-in for convolutions, normalisations at identity).
func New(be backend.Backend, c Config, seed uint64) (*Model, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("resnet: %w", err)
	}
	c.Seed = seed
	return build(be, c, nn.NewInit(be, seed)), nil
}

func build(be backend.Backend, c Config, in *nn.Init) *Model {
	m := &Model{Config: c, be: be, Stem: newConvNorm(in, c, c.Channels, c.Stem, 3, 1)}
	prev := c.Stem
	for s, w := range c.Widths {
		st := &Stage{}
		for b := 0; b < c.Depths[s]; b++ {
			stride := 1
			if b == 0 && s > 0 {
				stride = 2
			}
			blk := &Block{Layers: []*ConvNorm{newConvNorm(in, c, prev, w, 3, stride), newConvNorm(in, c, w, w, 3, 1)}}
			if stride != 1 || prev != w {
				blk.Shortcut = &Shortcut{newConvNorm(in, c, prev, w, 1, stride)}
			}
			st.Blocks = append(st.Blocks, blk)
			prev = w
		}
		m.Stages = append(m.Stages, st)
	}
	return m
}

// Params returns the parameters (and BatchNorm's running statistics, which
// do not require gradients) under their checkpoint names.
func (m *Model) Params() []nn.Named { return nn.Params(m) }

// Dim is the width of Features: the last stage's.
func (m *Model) Dim() int { return m.Config.Widths[len(m.Config.Widths)-1] }

// InputChannels is the number of channels Features takes.
func (m *Model) InputChannels() int { return m.Config.Channels }

// SetTraining switches BatchNorm between batch statistics (training,
// updating the running ones) and the running statistics (evaluation).
func (m *Model) SetTraining(on bool) {
	for _, p := range m.convNorms() {
		if p.Norms.BN != nil {
			p.Norms.BN.Training = on
		}
	}
}

func (m *Model) convNorms() []*ConvNorm {
	out := []*ConvNorm{m.Stem}
	for _, st := range m.Stages {
		for _, b := range st.Blocks {
			out = append(out, b.Layers...)
			if b.Shortcut != nil {
				out = append(out, b.Shortcut.ConvNorm)
			}
		}
	}
	return out
}

// FeatureMap returns the last stage's output, [B, Dim, H/2^(stages-1), W/...].
func (m *Model) FeatureMap(x *tensor.Tensor) *tensor.Tensor {
	if len(x.Shape()) != 4 || x.Dim(1) != m.Config.Channels {
		panic(fmt.Sprintf("resnet: input of shape %v, want [B, %d, H, W]", x.Shape(), m.Config.Channels))
	}
	h := tensor.ReLU(m.Stem.Forward(x))
	for _, st := range m.Stages {
		for _, b := range st.Blocks {
			y := tensor.ReLU(b.Layers[0].Forward(h))
			y = b.Layers[1].Forward(y)
			sc := h
			if b.Shortcut != nil {
				sc = b.Shortcut.Forward(h)
			}
			h = tensor.ReLU(tensor.Add(y, sc))
		}
	}
	return h
}

// Features returns the pooled features of images x [B, C, H, W]: [B, Dim].
func (m *Model) Features(x *tensor.Tensor) *tensor.Tensor {
	return tensor.Reshape(tensor.GlobalAvgPool2d(m.FeatureMap(x)), x.Dim(0), m.Dim())
}

// CellFeatures returns the last feature map of images x [B, C, H, W]
// averaged over each of n x n equal cells (CellPool) instead of over the
// whole map: [B, Dim*n*n], each channel's n*n cells in turn, row-major.
// n = 1 is Features. It is the spatially pooled probe of colorization's
// and split-brain's papers: a linear probe there reads where a feature
// fires as well as whether it does.
func (m *Model) CellFeatures(x *tensor.Tensor, n int) *tensor.Tensor {
	if n < 1 {
		panic(fmt.Sprintf("resnet: %d x %d cells, want at least 1", n, n))
	}
	c := cells(m.FeatureMap(x), n, m.be)
	return tensor.Reshape(c, x.Dim(0), m.Dim()*n*n)
}

// cells averages a feature map fm [B, D, h, w] over n x n equal cells:
// [B, D, n*n].
func cells(fm *tensor.Tensor, n int, be backend.Backend) *tensor.Tensor {
	B, D, h, w := fm.Dim(0), fm.Dim(1), fm.Dim(2), fm.Dim(3)
	pool := fm.Scope().FromHost(be, CellPool(h, w, n), h*w, n*n)
	return tensor.MatMul(tensor.Reshape(fm, B, D, h*w), pool, false, false)
}

// Clone returns a copy with its own parameters (a momentum or EMA target).
func (m *Model) Clone() *Model {
	in := nn.NewInit(m.be, 0)
	in.Zero = true
	c := build(m.be, m.Config, in)
	dst := c.Params()
	for i, p := range m.Params() {
		dst[i].Tensor.CopyFrom(p.Tensor)
		dst[i].Tensor.SetRequiresGrad(p.Tensor.RequiresGrad())
	}
	c.SetTraining(m.training())
	return c
}

func (m *Model) training() bool {
	bn := m.Stem.Norms.BN
	return bn != nil && bn.Training
}

// Save writes config.json and model.safetensors into dir.
func (m *Model) Save(dir string) error { return weights.SaveFolder(dir, m.Config, m.Params()) }

// LoadConfig reads and validates dir/config.json; unknown fields are errors.
func LoadConfig(dir string) (Config, error) {
	var c Config
	if err := weights.ReadConfig(dir, &c, func() error { return c.Validate() }); err != nil {
		return Config{}, fmt.Errorf("resnet: %w", err)
	}
	return c, nil
}

// Load reads a model folder written by Save. Every tensor must be there
// with the config's shape, and none more; NaN or infinite weights are
// refused.
func Load(be backend.Backend, dir string) (*Model, error) {
	c, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	in := nn.NewInit(be, 0)
	in.Zero = true
	m := build(be, c, in)
	if err := weights.FillFolder(dir, m.Params()); err != nil {
		return nil, fmt.Errorf("resnet: %w", err)
	}
	m.SetTraining(false)
	return m, nil
}
