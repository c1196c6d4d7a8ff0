package ssl

import (
	"math/rand/v2"

	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/train"
)

// Inpainting with a context encoder (Pathak et al. 2016): a square region
// of the image is blanked out and a decoder predicts it from the encoder's
// features of the rest.
//
// Settings: the region is half the image's side (a quarter of its area,
// as the paper's central region) at a random place (the paper's "random
// block" variant), filled with 0; the loss is the mean squared error over
// the region's pixels (the paper's reconstruction loss, without its
// adversarial one); flips are the only augmentation.
type inpaint struct{}

func newInpaint(t *task) (train.Batches, error) { return newRecon(t, inpaint{}, t.C) }

func (inpaint) outChannels(c int) int { return c }

func (inpaint) example(m *vision.Image, r *rand.Rand) (in, target *vision.Image, weight []float32) {
	h, w := m.H/2, m.W/2
	top, left := r.IntN(m.H-h+1), r.IntN(m.W-w+1)
	in = vision.NewImage(m.C, m.H, m.W)
	copy(in.Pix, m.Pix)
	weight = make([]float32, len(m.Pix))
	for c := 0; c < m.C; c++ {
		for y := top; y < top+h; y++ {
			for x := left; x < left+w; x++ {
				i := c*m.H*m.W + y*m.W + x
				in.Pix[i], weight[i] = 0, 1
			}
		}
	}
	return in, m, weight
}

// show pastes the predicted region into the input.
func (inpaint) show(m, in *vision.Image, weight, pred []float32) *vision.Image {
	o := clamped(pred, m.C, m.H, m.W)
	for i, w := range weight {
		if w == 0 {
			o.Pix[i] = in.Pix[i]
		}
	}
	return o
}
