package ssl

import (
	"fmt"
	"math/rand/v2"

	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/train"
)

// Colorization (Zhang, Isola and Efros 2016): the encoder sees the gray
// (luma) image and a decoder predicts its colours. The encoder takes one
// channel; a probe feeds it the gray image too (features.go).
//
// Settings: the target is the RGB image and the loss its mean squared
// error (the paper classifies Lab's ab channels into 313 bins, which needs
// a wider decoder than the shallow one here); flips are the only
// augmentation. Grayscale data sets (MNIST) have no colour to predict and
// are refused.
type colorize struct{}

func newColorize(t *task) (train.Batches, error) {
	if t.C != 3 {
		return nil, fmt.Errorf("ssl: colorize predicts colour from gray, but %s has %d-channel images (use a colour data set)", t.o.Spec, t.C)
	}
	return newRecon(t, colorize{}, 1)
}

func (colorize) outChannels(c int) int { return c }

func (colorize) example(m *vision.Image, _ *rand.Rand) (in, target *vision.Image, weight []float32) {
	w := make([]float32, len(m.Pix))
	for i := range w {
		w[i] = 1
	}
	return vision.Gray(m), m, w
}

func (colorize) show(m, _ *vision.Image, _, pred []float32) *vision.Image {
	return clamped(pred, m.C, m.H, m.W)
}
