package nn

import (
	"math"

	"github.com/golem-ml/golem/tensor"
)

// Uniform returns a trainable tensor drawn from U(-bound, bound).
func (in *Init) Uniform(bound float64, shape ...int) *tensor.Tensor {
	t := tensor.New(in.Backend, shape...)
	if !in.Zero {
		d := make([]float32, t.Len())
		for i := range d {
			d[i] = float32((in.Rand.Float64()*2 - 1) * bound)
		}
		t.Set(d)
	}
	return t.SetRequiresGrad(true)
}

// Conv2d is a 2-D convolution over NCHW images with Weight [out,
// in/groups, kh, kw] and Bias [out] (or nil), PyTorch's layout, so a
// Hugging Face ViT patch embedding or a ResNet loads as it is.
type Conv2d struct {
	Weight *tensor.Tensor `nn:"weight"`
	Bias   *tensor.Tensor `nn:"bias"`
	Opts   tensor.ConvOptions
}

// NewConv2d makes a Conv2d initialised as PyTorch does: weight and bias
// from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in/groups*kh*kw.
func NewConv2d(in *Init, inC, outC, kh, kw int, bias bool, o tensor.ConvOptions) *Conv2d {
	g := max(o.Groups, 1)
	bound := 1 / math.Sqrt(float64(inC/g*kh*kw))
	c := &Conv2d{Weight: in.Uniform(bound, outC, inC/g, kh, kw), Opts: o}
	if bias {
		c.Bias = in.Uniform(bound, outC)
	}
	return c
}

// Forward convolves x [N, in, H, W].
func (c *Conv2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return tensor.Conv2d(x, c.Weight, c.Bias, c.Opts)
}

// ConvTranspose2d is the adjoint of a Conv2d (a learned upsampling), with
// Weight [in, out/groups, kh, kw] and Bias [out] as PyTorch stores them;
// Opts.OutputPadding picks among the output sizes a strided Conv2d maps
// to the same input size.
type ConvTranspose2d struct {
	Weight *tensor.Tensor `nn:"weight"`
	Bias   *tensor.Tensor `nn:"bias"`
	Opts   tensor.ConvOptions
}

// NewConvTranspose2d makes a ConvTranspose2d initialised as PyTorch does
// (fan_in there is out/groups*kh*kw, from the weight's second dim).
func NewConvTranspose2d(in *Init, inC, outC, kh, kw int, bias bool, o tensor.ConvOptions) *ConvTranspose2d {
	g := max(o.Groups, 1)
	bound := 1 / math.Sqrt(float64(outC/g*kh*kw))
	c := &ConvTranspose2d{Weight: in.Uniform(bound, inC, outC/g, kh, kw), Opts: o}
	if bias {
		c.Bias = in.Uniform(bound, outC)
	}
	return c
}

// Forward applies the transposed convolution to x [N, in, H, W].
func (c *ConvTranspose2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return tensor.ConvTranspose2d(x, c.Weight, c.Bias, c.Opts)
}

// MaxPool2d takes window maxima; a zero Stride means the kernel size.
type MaxPool2d struct{ Kernel, Stride, Padding [2]int }

// Forward pools x [N, C, H, W].
func (p MaxPool2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return tensor.MaxPool2d(x, p.Kernel, p.Stride, p.Padding)
}

// AvgPool2d averages windows, padding counted as zeros (PyTorch's
// count_include_pad=True); a zero Stride means the kernel size.
type AvgPool2d struct{ Kernel, Stride, Padding [2]int }

// Forward pools x [N, C, H, W].
func (p AvgPool2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return tensor.AvgPool2d(x, p.Kernel, p.Stride, p.Padding)
}

// GlobalAvgPool2d is AdaptiveAvgPool2d((1, 1)): [N, C, H, W] to [N, C, 1, 1].
type GlobalAvgPool2d struct{}

// Forward pools x.
func (GlobalAvgPool2d) Forward(x *tensor.Tensor) *tensor.Tensor { return tensor.GlobalAvgPool2d(x) }

// GroupNorm normalises groups of channels; Weight and Bias [C] are nil
// without affine.
type GroupNorm struct {
	Weight *tensor.Tensor `nn:"weight"`
	Bias   *tensor.Tensor `nn:"bias"`
	Groups int
	Eps    float32
}

// NewGroupNorm makes a GroupNorm with weight 1 and bias 0 (if affine).
func NewGroupNorm(in *Init, groups, channels int, eps float32, affine bool) *GroupNorm {
	g := &GroupNorm{Groups: groups, Eps: eps}
	if affine {
		g.Weight, g.Bias = in.Const(1, channels), in.Const(0, channels)
	}
	return g
}

// Forward normalises x [N, C, ...].
func (g *GroupNorm) Forward(x *tensor.Tensor) *tensor.Tensor {
	return tensor.GroupNorm(x, g.Groups, g.Weight, g.Bias, g.Eps)
}

// BatchNorm2d normalises each channel by the batch's statistics while
// Training, updating RunningMean and RunningVar (momentum 0.1, unbiased
// variance, as PyTorch), and by those running statistics otherwise. The
// running statistics are named parameters (saved and loaded with the
// checkpoint as running_mean and running_var) that do not require
// gradients, so Trainable leaves them out and no optimiser changes them.
// PyTorch's num_batches_tracked counter is not kept.
type BatchNorm2d struct {
	Weight      *tensor.Tensor `nn:"weight"`
	Bias        *tensor.Tensor `nn:"bias"`
	RunningMean *tensor.Tensor `nn:"running_mean"`
	RunningVar  *tensor.Tensor `nn:"running_var"`
	Momentum    float32
	Eps         float32
	Training    bool
}

// NewBatchNorm2d makes a BatchNorm2d in training mode with weight 1, bias
// 0 (if affine), running mean 0 and running variance 1.
func NewBatchNorm2d(in *Init, channels int, eps float32, affine bool) *BatchNorm2d {
	b := &BatchNorm2d{
		RunningMean: tensor.New(in.Backend, channels),
		RunningVar:  in.Const(1, channels).SetRequiresGrad(false),
		Momentum:    0.1, Eps: eps, Training: true,
	}
	if affine {
		b.Weight, b.Bias = in.Const(1, channels), in.Const(0, channels)
	}
	return b
}

// Forward normalises x [N, C, H, W]; in Training it also updates the
// running statistics (under tensor.NoGrad too, as PyTorch).
func (b *BatchNorm2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return tensor.BatchNorm2d(x, b.Weight, b.Bias, b.RunningMean, b.RunningVar, b.Training, b.Momentum, b.Eps)
}
