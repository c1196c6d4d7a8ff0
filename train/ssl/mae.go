package ssl

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/train"
)

// MAE (He et al. 2021): 75% of an image's patches are masked, the encoder
// sees the rest, a shallow decoder predicts the pixels, and the loss is
// the mean squared error over the masked patches only, against each
// patch's normalised pixels ((x - mean) / sqrt(var + 1e-6) over the
// patch's values, the paper's norm_pix_loss, which it finds gives better
// features).
//
// The encoder here is a convolutional one (model/resnet): masked patches
// are zeroed in its input (as ConvNeXt V2's FCMAE does, without its sparse
// convolutions), and the decoder is recon's shallow one, from the pooled
// features. Patches are 4×4 (a 28×28 image is 7×7 of them); each image
// masks its own random 75% (ranked by noise, as the paper's shuffle).
type mae struct{}

const (
	maeRatio = 0.75
	maePatch = 4
)

func newMAE(t *task) (train.Batches, error) {
	if t.H%maePatch != 0 || t.W%maePatch != 0 {
		return nil, fmt.Errorf("ssl: mae: %s has %dx%d images; their sides must be multiples of the %d-pixel patch (add a resize or crop)", t.o.Spec, t.W, t.H, maePatch)
	}
	return newRecon(t, mae{}, t.C)
}

func (mae) outChannels(c int) int { return c }

// maeMask returns, for each patch of an image of gh×gw patches, whether it
// is masked: the patches of the lowest noise are kept.
func maeMask(gh, gw int, r *rand.Rand) []bool {
	n := gh * gw
	keep := n - int(math.Round(maeRatio*float64(n)))
	masked := make([]bool, n)
	for i := range masked {
		masked[i] = true
	}
	for _, p := range r.Perm(n)[:keep] {
		masked[p] = false
	}
	return masked
}

// patches calls fn with the indices into an image's Pix of each patch's
// values (all channels), and the patch's number.
func patches(m *vision.Image, fn func(p int, idx []int)) {
	gw := m.W / maePatch
	idx := make([]int, 0, m.C*maePatch*maePatch)
	for py := 0; py < m.H/maePatch; py++ {
		for px := 0; px < gw; px++ {
			idx = idx[:0]
			for c := 0; c < m.C; c++ {
				for y := py * maePatch; y < (py+1)*maePatch; y++ {
					for x := px * maePatch; x < (px+1)*maePatch; x++ {
						idx = append(idx, c*m.H*m.W+y*m.W+x)
					}
				}
			}
			fn(py*gw+px, idx)
		}
	}
}

// patchStats returns a patch's mean and sqrt(var + 1e-6) (biased var).
func patchStats(m *vision.Image, idx []int) (mean, std float64) {
	for _, i := range idx {
		mean += float64(m.Pix[i])
	}
	mean /= float64(len(idx))
	var v float64
	for _, i := range idx {
		d := float64(m.Pix[i]) - mean
		v += d * d
	}
	return mean, math.Sqrt(v/float64(len(idx)) + 1e-6)
}

func (mae) example(m *vision.Image, r *rand.Rand) (in, target *vision.Image, weight []float32) {
	masked := maeMask(m.H/maePatch, m.W/maePatch, r)
	in, target = vision.NewImage(m.C, m.H, m.W), vision.NewImage(m.C, m.H, m.W)
	copy(in.Pix, m.Pix)
	weight = make([]float32, len(m.Pix))
	patches(m, func(p int, idx []int) {
		mean, std := patchStats(m, idx)
		for _, i := range idx {
			target.Pix[i] = float32((float64(m.Pix[i]) - mean) / std)
			if masked[p] {
				in.Pix[i], weight[i] = 0, 1
			}
		}
	})
	return in, target, weight
}

// show puts the masked patches' predictions back in pixel units (with the
// true patch's mean and deviation, as the paper's figures do) beside the
// visible patches.
func (mae) show(m, in *vision.Image, weight, pred []float32) *vision.Image {
	o := vision.NewImage(m.C, m.H, m.W)
	patches(m, func(p int, idx []int) {
		mean, std := patchStats(m, idx)
		for _, i := range idx {
			v := in.Pix[i]
			if weight[i] > 0 {
				v = float32(float64(pred[i])*std + mean)
			}
			o.Pix[i] = min(max(v, 0), 1)
		}
	})
	return o
}
