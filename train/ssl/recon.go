package ssl

import (
	"math/rand/v2"

	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/train"
)

// recon is what the reconstruction methods (MAE, colorization,
// inpainting) share: the encoder sees a corrupted image, a shallow decoder
// (decoder) maps its features back to an image, and the loss is a
// weighted squared error against a target image. Each method says how it
// corrupts, what the target is and which pixels count (its corrupter).
type recon struct {
	*task
	dec     *decoder
	pipe    []vision.Transform
	corrupt corrupter
}

// corrupter makes one image's training example: the encoder's input, the
// target and each target value's weight (the loss is the weighted sum of
// squared errors divided by the batch's total weight), from the image and
// its generator. show turns a prediction back into a picture (weight
// says which values the loss counted).
type corrupter interface {
	example(m *vision.Image, r *rand.Rand) (in, target *vision.Image, weight []float32)
	show(m, in *vision.Image, weight, pred []float32) *vision.Image
	outChannels(c int) int
}

func newRecon(t *task, c corrupter, inC int) (*recon, error) {
	if err := t.needChannels(inC); err != nil {
		return nil, err
	}
	dec, err := newDecoder(nn.NewInit(t.o.Backend, t.o.Loop.Seed+404), t.enc.Dim(), c.outChannels(t.C), t.H, t.W)
	if err != nil {
		return nil, err
	}
	return &recon{task: t, dec: head(t, "decoder", dec), pipe: []vision.Transform{vision.HFlip{P: 0.5}}, corrupt: c}, nil
}

// examples corrupts each image with its own generator.
func (r *recon) examples(ims []*vision.Image, seed uint64) (in, target []*vision.Image, weight []float32) {
	var sum float64
	for k, m := range ims {
		i, tg, w := r.corrupt.example(m, rand.New(rand.NewPCG(seed, uint64(k))))
		in, target = append(in, i), append(target, tg)
		weight = append(weight, w...)
		for _, v := range w {
			sum += float64(v)
		}
	}
	if sum > 0 {
		for i := range weight {
			weight[i] /= float32(sum)
		}
	}
	return in, target, weight
}

func (r *recon) Loss(s *tensor.Scope, step, micro int) (*tensor.Tensor, int, map[string]float64, error) {
	views, err := r.batch(step, micro, r.pipe)
	if err != nil {
		return nil, 0, nil, err
	}
	in, target, weight := r.examples(views[1], r.stepRand(step, micro, 0xc0).Uint64())
	r.enc.SetTraining(true)
	pred := r.dec.Forward(r.enc.Features(r.tensorOf(s, in)))
	tg := r.tensorOf(s, target)
	w := s.FromHost(r.o.Backend, weight, tg.Shape()...)
	loss := tensor.Sum(tensor.Mul(tensor.Square(tensor.Sub(pred, tg)), w))
	return loss, len(in), nil, nil
}

// pictures shows n images, the encoder's input and the reconstruction
// (the encoder in evaluation mode).
func (r *recon) pictures(n int) (Pictures, error) {
	views, err := r.sampleViews(n)
	if err != nil {
		return Pictures{}, err
	}
	ims := views[0]
	in, _, weight := r.examples(ims, 0x5ee)
	r.enc.SetTraining(false)
	var pred []float32
	var shape []int
	tensor.NoGrad(func() {
		s := tensor.NewScope()
		defer s.Close()
		p := r.dec.Forward(r.enc.Features(r.tensorOf(s, in)))
		pred, shape = p.Host(), p.Shape()
	})
	per := shape[1] * shape[2] * shape[3]
	out := make([]*vision.Image, len(ims))
	for k := range ims {
		out[k] = r.corrupt.show(ims[k], in[k], weight[k*per:(k+1)*per], pred[k*per:(k+1)*per])
	}
	return Pictures{Title: "Reconstructions", Rows: [][]*vision.Image{ims, in, out}, Names: []string{"image", "input", "reconstruction"}}, nil
}

var _ train.Batches = (*recon)(nil)

// clamped returns pred as a c×h×w image with values clamped to [0, 1].
func clamped(pred []float32, c, h, w int) *vision.Image {
	o := vision.NewImage(c, h, w)
	for i, v := range pred {
		o.Pix[i] = min(max(v, 0), 1)
	}
	return o
}
