package ssl

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/model/vit"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/train"
)

// MAE (He et al. 2021): 75% of an image's patches are masked, the encoder
// sees the rest, a shallow decoder predicts the pixels, and the loss is
// the mean squared error over the masked patches only, against each
// patch's normalised pixels ((x - mean) / sqrt(var + 1e-6) over the
// patch's values, the paper's norm_pix_loss, which it finds gives better
// features).
//
// With a ViT encoder ("vit-tiny", the default) this is the paper's model,
// model/vit's ViTMAE: the encoder runs over the visible patches alone and
// a 2-block transformer decoder predicts every patch (vit.ForwardMAE).
// With a convolutional encoder (model/resnet), masked patches are zeroed
// in its input (as ConvNeXt V2's FCMAE does, without its sparse
// convolutions) and the decoder is recon's shallow one, from the pooled
// features. Patches are 4×4 (a 28×28 image is 7×7 of them); each image
// masks its own random 75% (ranked by noise, as the paper's shuffle).
// Flips are the only augmentation.
type mae struct{}

const (
	maeRatio = 0.75
	maePatch = 4
)

func newMAE(t *task) (train.Batches, error) {
	if t.H%maePatch != 0 || t.W%maePatch != 0 {
		return nil, fmt.Errorf("ssl: mae: %s has %dx%d images; their sides must be multiples of the %d-pixel patch (add a resize or crop)", t.o.Spec, t.W, t.H, maePatch)
	}
	if v, ok := t.enc.(*vitEncoder); ok {
		if v.Decoder == nil {
			return nil, fmt.Errorf("ssl: mae: the ViT has no MAE decoder (model_type %q, want %q)", v.Config.Arch, vit.MAE)
		}
		if err := t.needChannels(t.C); err != nil {
			return nil, err
		}
		return &vitMAE{task: t, m: v, pipe: []vision.Transform{vision.HFlip{P: 0.5}}}, nil
	}
	return newRecon(t, mae{}, t.C)
}

// vitMAE is MAE with model/vit's ViTMAE: masking, encoder, decoder and
// loss are its ForwardMAE.
type vitMAE struct {
	*task
	m    *vitEncoder
	pipe []vision.Transform
}

// noise is ForwardMAE's per-patch noise for n images: the patches of
// lowest noise stay visible.
func (v *vitMAE) noise(n int, r *rand.Rand) []float32 {
	out := make([]float32, n*v.m.Config.Patches())
	for i := range out {
		out[i] = r.Float32()
	}
	return out
}

func (v *vitMAE) Loss(s *tensor.Scope, step, micro int) (*tensor.Tensor, int, map[string]float64, error) {
	views, err := v.batch(step, micro, v.pipe)
	if err != nil {
		return nil, 0, nil, err
	}
	x := v.tensorOf(s, views[1])
	loss, _, _ := v.m.ForwardMAE(x, maeRatio, v.noise(len(views[1]), v.stepRand(step, micro, 0xc0)))
	return loss, len(views[1]), nil, nil
}

// pictures shows n images, their visible patches and the reconstruction
// (visible patches as they are, hidden ones predicted, in pixel units).
func (v *vitMAE) pictures(n int) (Pictures, error) {
	views, err := v.sampleViews(n)
	if err != nil {
		return Pictures{}, err
	}
	ims := views[0]
	c := v.m.Config
	p, g, P := c.Patch, c.Image/c.Patch, c.PatchDim()
	var pred, mask []float32
	tensor.NoGrad(func() {
		s := tensor.NewScope()
		defer s.Close()
		_, pr, m := v.m.ForwardMAE(v.tensorOf(s, ims), maeRatio, v.noise(len(ims), rand.New(rand.NewPCG(0x5ee, 1))))
		pred, mask = pr.Host(), m
	})
	in, out := make([]*vision.Image, len(ims)), make([]*vision.Image, len(ims))
	for k, m := range ims {
		in[k], out[k] = vision.NewImage(m.C, m.H, m.W), vision.NewImage(m.C, m.H, m.W)
		patches(m, func(pn int, idx []int) {
			mean, std := patchStats(m, idx)
			hidden := mask[k*g*g+pn] == 1
			for j, i := range idx {
				// idx runs channel, row, column; the prediction row, column, channel.
				ch, y, x := j/(p*p), j/p%p, j%p
				pv := pred[(k*g*g+pn)*P+(y*p+x)*c.Channels+ch]
				if hidden {
					out[k].Pix[i] = min(max(float32(float64(pv)*std+mean), 0), 1)
				} else {
					in[k].Pix[i], out[k].Pix[i] = m.Pix[i], m.Pix[i]
				}
			}
		})
	}
	return Pictures{Title: "Reconstructions", Rows: [][]*vision.Image{ims, in, out}, Names: []string{"image", "visible patches", "reconstruction"}}, nil
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

// patchStats returns a patch's mean and sqrt(var + 1e-6), the variance
// unbiased as the paper's code (and model/vit) computes it.
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
	return mean, math.Sqrt(v/float64(max(len(idx)-1, 1)) + 1e-6)
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
