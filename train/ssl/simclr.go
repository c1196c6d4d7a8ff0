package ssl

import (
	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/train"
)

// SimCLR (Chen et al. 2020): two random views of each image go through the
// encoder and a projection MLP; NT-Xent pulls each view towards its
// partner and away from the batch's other 2B-2 views.
//
// Settings: the projector is D → 256 → 64 with BatchNorm and ReLU between
// (the paper's 2048 → 2048 → 128, narrowed for a small encoder); the
// temperature is 0.5 (the paper's CIFAR-10 value); the optimiser is the
// loop's AdamW instead of LARS.
type simclr struct {
	*task
	proj *mlp
	pipe []vision.Transform
}

// simclrTemp is NT-Xent's temperature.
const simclrTemp = 0.5

func newSimCLR(t *task) (train.Batches, error) {
	if err := t.needChannels(t.C); err != nil {
		return nil, err
	}
	in := nn.NewInit(t.o.Backend, t.o.Loop.Seed+101)
	s := &simclr{task: t, pipe: SimCLRAugment(t.H, t.W, t.C)}
	s.proj = head(t, "projector", newMLP(in, t.enc.Dim(), 256, 64))
	return s, nil
}

// SimCLRAugment is SimCLR's augmentation pipeline for h×w images of c
// channels: a random resized crop (scale 0.2 to 1, as for small images in
// the MoCo/SimCLR CIFAR recipes, instead of ImageNet's 0.08), a horizontal
// flip, colour jitter (0.4, 0.4, 0.4, 0.1; hue and saturation only touch
// colour images) with probability 0.8 and grayscale with probability 0.2.
// The paper's Gaussian blur is left out, as in its CIFAR-10 runs.
func SimCLRAugment(h, w, c int) []vision.Transform {
	return []vision.Transform{
		vision.RandomResizedCrop{H: h, W: w, Scale: [2]float64{0.2, 1}},
		vision.HFlip{P: 0.5},
		randomApply{P: 0.8, T: vision.ColorJitter{Brightness: 0.4, Contrast: 0.4, Saturation: 0.4, Hue: 0.1}},
		vision.RandomGrayscale{P: 0.2},
	}
}

func (c *simclr) Loss(s *tensor.Scope, step, micro int) (*tensor.Tensor, int, map[string]float64, error) {
	views, err := c.batch(step, micro, c.pipe, c.pipe)
	if err != nil {
		return nil, 0, nil, err
	}
	c.enc.SetTraining(true)
	z1 := c.proj.Forward(c.enc.Features(c.tensorOf(s, views[1])))
	z2 := c.proj.Forward(c.enc.Features(c.tensorOf(s, views[2])))
	return NTXent(z1, z2, simclrTemp), 2 * len(views[0]), nil, nil
}

func (c *simclr) pictures(n int) (Pictures, error) {
	return augmentPictures(c.task, n, c.pipe, c.pipe)
}
