package ssl

import (
	"math"

	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/train"
)

// BYOL (Grill et al. 2020): an online network (encoder, projector,
// predictor) predicts, for one view of an image, the target network's
// projection of the other view; the target (encoder and projector) is an
// exponential moving average of the online one and gets no gradient. The
// loss is the normalised MSE (2 - 2 cos), summed over both directions.
//
// Settings: projector D → 256 → 64, predictor 64 → 256 → 64 (BatchNorm
// and ReLU inside; the paper's 4096 → 256 narrowed); the target's decay
// rises from 0.95 to 1 on a cosine over the run (the paper's 0.996 is for
// runs of 100k+ steps, 0.99 its short-run value; over 150 steps 0.99's
// schedule leaves the target exp(-150 * 0.005), about half, its random
// initialisation, and on Fashion-MNIST the online network learnt to
// predict that: features below the random encoder's. From 0.95 the target
// keeps exp(-3.75), 2%); AdamW instead of LARS.
type byol struct {
	*task
	proj, pred   *mlp
	tEnc         Encoder
	tProj        *mlp
	online, targ []nn.Named
	pipe1, pipe2 []vision.Transform
}

// byolTau0 is the target's starting decay.
const byolTau0 = 0.95

func newBYOL(t *task) (train.Batches, error) {
	if err := t.needChannels(t.C); err != nil {
		return nil, err
	}
	b := &byol{task: t}
	b.pipe1, b.pipe2 = BYOLAugment(t.H, t.W)
	seed := t.o.Loop.Seed + 202
	b.proj = head(t, "projector", newMLP(nn.NewInit(t.o.Backend, seed), t.enc.Dim(), 256, 64))
	b.pred = head(t, "predictor", newMLP(nn.NewInit(t.o.Backend, seed+1), 64, 256, 64))
	b.tEnc, b.tProj = cloneEncoder(t.enc), newMLP(nn.NewInit(t.o.Backend, seed), t.enc.Dim(), 256, 64)
	b.online, b.targ = targetPairs(t.enc, b.proj, b.tEnc, b.tProj)
	return b, nil
}

// targetPairs lists an online encoder's and projector's parameters beside
// their target copies', and freezes the copies.
func targetPairs(enc Encoder, proj *mlp, tEnc Encoder, tProj *mlp) (online, targ []nn.Named) {
	online = append(enc.Params(), nn.Params(proj)...)
	targ = append(tEnc.Params(), nn.Params(tProj)...)
	frozen(targ)
	return online, targ
}

// BYOLAugment is BYOL's pair of pipelines for h×w images: both crop
// (scale 0.2 to 1 for small images), flip, jitter colour (0.4, 0.4, 0.2,
// 0.1) with probability 0.8 and turn gray with probability 0.2; the first
// always blurs, the second blurs with probability 0.1 and solarizes with
// probability 0.2 (the asymmetry of the paper). The blur's kernel is about
// a tenth of the image, sigma 0.1 to 2.
func BYOLAugment(h, w int) (p1, p2 []vision.Transform) {
	k := max(3, min(h, w)/10|1)
	blur := vision.GaussianBlur{Kernel: k, Sigma: [2]float64{0.1, 2}}
	common := func() []vision.Transform {
		return []vision.Transform{
			vision.RandomResizedCrop{H: h, W: w, Scale: [2]float64{0.2, 1}},
			vision.HFlip{P: 0.5},
			randomApply{P: 0.8, T: vision.ColorJitter{Brightness: 0.4, Contrast: 0.4, Saturation: 0.2, Hue: 0.1}},
			vision.RandomGrayscale{P: 0.2},
		}
	}
	p1 = append(common(), blur)
	p2 = append(common(), randomApply{P: 0.1, T: blur}, vision.Solarize{Threshold: 0.5, P: 0.2})
	return p1, p2
}

// targetDecay is the EMA decay after optimizer step k of K: BYOL's
// 1 - (1 - tau0) (cos(pi k / K) + 1) / 2.
func targetDecay(tau0 float64, k, K int) float32 {
	return float32(1 - (1-tau0)*(math.Cos(math.Pi*float64(k)/float64(max(K, 1)))+1)/2)
}

func (b *byol) Loss(s *tensor.Scope, step, micro int) (*tensor.Tensor, int, map[string]float64, error) {
	if micro == 0 && step > 0 { // the target follows the online network after each step
		ema(s, b.targ, b.online, targetDecay(byolTau0, step, b.o.Loop.Steps))
	}
	views, err := b.batch(step, micro, b.pipe1, b.pipe2)
	if err != nil {
		return nil, 0, nil, err
	}
	x1, x2 := b.tensorOf(s, views[1]), b.tensorOf(s, views[2])
	b.enc.SetTraining(true)
	b.tEnc.SetTraining(true)
	p1 := b.pred.Forward(b.proj.Forward(b.enc.Features(x1)))
	p2 := b.pred.Forward(b.proj.Forward(b.enc.Features(x2)))
	var z1, z2 *tensor.Tensor
	tensor.NoGrad(func() {
		z1 = b.tProj.Forward(b.tEnc.Features(x1))
		z2 = b.tProj.Forward(b.tEnc.Features(x2))
	})
	loss := tensor.Add(BYOLLoss(p1, z2), BYOLLoss(p2, z1))
	return loss, 2 * len(views[0]), nil, nil
}

func (b *byol) pictures(n int) (Pictures, error) {
	return augmentPictures(b.task, n, b.pipe1, b.pipe2)
}
