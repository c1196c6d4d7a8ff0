package ssl

import (
	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/train"
)

// MoCo v3 (Chen, Xie and He 2021): the online encoder, a projector and a
// predictor map each view to a query; a momentum encoder and projector
// (a moving average of the online ones, no gradient) map the other view to
// keys; InfoNCE over the batch makes each query find its own image's key
// among the batch's keys (no queue, as in v3), in both directions.
//
// Settings: projector D → 256 → 256 → 64 and predictor 64 → 256 → 64
// with BatchNorm and ReLU inside (the paper's 4096-wide, 256-out heads
// narrowed); temperature 0.2; momentum from 0.99 up to 1 on a cosine over
// the run (the paper's schedule); BYOL's augmentations, as the paper uses;
// AdamW (the paper's optimiser for ViT; LARS for ResNet).
type moco struct {
	*task
	proj, pred   *mlp
	mEnc         Encoder
	mProj        *mlp
	online, targ []nn.Named
	pipe1, pipe2 []vision.Transform
}

const (
	mocoTemp = 0.2
	mocoM0   = 0.99
)

func newMoCo(t *task) (train.Batches, error) {
	if err := t.needChannels(t.C); err != nil {
		return nil, err
	}
	m := &moco{task: t}
	m.pipe1, m.pipe2 = BYOLAugment(t.H, t.W)
	seed := t.o.Loop.Seed + 303
	m.proj = head(t, "projector", newMLP(nn.NewInit(t.o.Backend, seed), t.enc.Dim(), 256, 256, 64))
	m.pred = head(t, "predictor", newMLP(nn.NewInit(t.o.Backend, seed+1), 64, 256, 64))
	m.mEnc, m.mProj = cloneEncoder(t.enc), newMLP(nn.NewInit(t.o.Backend, seed), t.enc.Dim(), 256, 256, 64)
	m.online, m.targ = targetPairs(t.enc, m.proj, m.mEnc, m.mProj)
	return m, nil
}

func (m *moco) Loss(s *tensor.Scope, step, micro int) (*tensor.Tensor, int, map[string]float64, error) {
	if micro == 0 && step > 0 {
		ema(s, m.targ, m.online, targetDecay(mocoM0, step, m.o.Loop.Steps))
	}
	views, err := m.batch(step, micro, m.pipe1, m.pipe2)
	if err != nil {
		return nil, 0, nil, err
	}
	x1, x2 := m.tensorOf(s, views[1]), m.tensorOf(s, views[2])
	m.enc.SetTraining(true)
	m.mEnc.SetTraining(true)
	q1 := m.pred.Forward(m.proj.Forward(m.enc.Features(x1)))
	q2 := m.pred.Forward(m.proj.Forward(m.enc.Features(x2)))
	var k1, k2 *tensor.Tensor
	tensor.NoGrad(func() {
		k1 = m.mProj.Forward(m.mEnc.Features(x1))
		k2 = m.mProj.Forward(m.mEnc.Features(x2))
	})
	return MoCoLoss(q1, q2, k1, k2, mocoTemp), 2 * len(views[0]), nil, nil
}

func (m *moco) pictures(n int) (Pictures, error) {
	return augmentPictures(m.task, n, m.pipe1, m.pipe2)
}
