// Package optim holds AdamW with global gradient-norm clipping, and the
// learning-rate schedule of the training loop.
package optim

import (
	"fmt"
	"math"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/nn"
)

// AdamW is Adam with decoupled weight decay, applied only to parameters of
// two or more dimensions (matrices and embeddings), as nanoGPT and
// InstructGPT's trainers do.
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float32
	Step                           int

	params []nn.Named
	m, v   []backend.Buffer

	// scratch for Update, kept to avoid allocating every step
	hs     []backend.AdamW
	ps, gs []backend.Buffer
}

// NewAdamW makes an optimizer over the trainable params.
func NewAdamW(params []nn.Named, beta1, beta2, eps, weightDecay float32) *AdamW {
	o := &AdamW{Beta1: beta1, Beta2: beta2, Eps: eps, WeightDecay: weightDecay}
	for _, p := range params {
		if !p.Tensor.RequiresGrad() {
			continue
		}
		be := p.Tensor.Backend()
		o.params = append(o.params, p)
		o.m = append(o.m, be.Alloc(p.Tensor.Len(), true))
		o.v = append(o.v, be.Alloc(p.Tensor.Len(), true))
	}
	return o
}

// Params returns the parameters the optimizer updates.
func (o *AdamW) Params() []nn.Named { return o.params }

// GradNorm returns the global L2 norm of the gradients.
func (o *AdamW) GradNorm() float64 {
	var s float64
	for _, p := range o.params {
		if p.Tensor.HasGrad() {
			s += p.Tensor.Backend().SumSquares(p.Tensor.GradBuffer())
		}
	}
	return math.Sqrt(s)
}

// ClipGradNorm scales the gradients so their global norm is at most
// maxNorm (if maxNorm > 0) and returns the norm before clipping.
func (o *AdamW) ClipGradNorm(maxNorm float64) float64 {
	n := o.GradNorm()
	if maxNorm > 0 && n > maxNorm {
		s := float32(maxNorm / (n + 1e-6))
		for _, p := range o.params {
			if p.Tensor.HasGrad() {
				g := p.Tensor.GradBuffer()
				p.Tensor.Backend().Map(backend.Scale, s, g, g)
			}
		}
	}
	return n
}

// Update applies one step at learning rate lr, in one pass over all
// parameters where the backend can.
func (o *AdamW) Update(lr float32) {
	o.Step++
	o.hs = o.hs[:0]
	o.ps, o.gs = o.ps[:0], o.gs[:0]
	for _, p := range o.params {
		wd := float32(0)
		if len(p.Tensor.Shape()) >= 2 {
			wd = o.WeightDecay
		}
		o.hs = append(o.hs, backend.AdamW{LR: lr, Beta1: o.Beta1, Beta2: o.Beta2, Eps: o.Eps, WeightDecay: wd, Step: o.Step})
		o.ps = append(o.ps, p.Tensor.Buffer())
		o.gs = append(o.gs, p.Tensor.GradBuffer())
	}
	if len(o.params) == 0 {
		return
	}
	if ms, ok := o.params[0].Tensor.Backend().(backend.MultiAdamW); ok && o.sameBackend() {
		ms.AdamWSteps(o.hs, o.ps, o.gs, o.m, o.v)
		return
	}
	for i, p := range o.params {
		p.Tensor.Backend().AdamWStep(o.hs[i], o.ps[i], o.gs[i], o.m[i], o.v[i])
	}
}

// sameBackend reports whether every parameter lives on the first one's
// backend.
func (o *AdamW) sameBackend() bool {
	be := o.params[0].Tensor.Backend()
	for _, p := range o.params[1:] {
		if p.Tensor.Backend() != be {
			return false
		}
	}
	return true
}

// ZeroGrad zeroes the gradients of the parameters.
func (o *AdamW) ZeroGrad() {
	for _, p := range o.params {
		p.Tensor.ZeroGrad()
	}
}

// State returns the moments as host tensors named "exp_avg.NAME" and
// "exp_avg_sq.NAME", for checkpoints.
func (o *AdamW) State() map[string][]float32 {
	st := map[string][]float32{}
	for i, p := range o.params {
		be := p.Tensor.Backend()
		m, v := make([]float32, p.Tensor.Len()), make([]float32, p.Tensor.Len())
		be.Download(m, o.m[i], 0)
		be.Download(v, o.v[i], 0)
		st["exp_avg."+p.Name], st["exp_avg_sq."+p.Name] = m, v
	}
	return st
}

// LoadState restores moments saved by State.
func (o *AdamW) LoadState(st map[string][]float32) error {
	for i, p := range o.params {
		m, ok1 := st["exp_avg."+p.Name]
		v, ok2 := st["exp_avg_sq."+p.Name]
		if !ok1 || !ok2 || len(m) != p.Tensor.Len() || len(v) != p.Tensor.Len() {
			return fmt.Errorf("optim: state for %s missing or of the wrong size", p.Name)
		}
		be := p.Tensor.Backend()
		be.Upload(o.m[i], 0, m)
		be.Upload(o.v[i], 0, v)
	}
	return nil
}

// Cosine is linear warmup then cosine decay from Max to Min over Decay steps
// (nanoGPT's schedule). Steps count from 0.
type Cosine struct {
	Max, Min      float64
	Warmup, Decay int
}

// At returns the learning rate at step.
func (c Cosine) At(step int) float64 {
	if step < c.Warmup {
		return c.Max * float64(step+1) / float64(c.Warmup+1)
	}
	if step >= c.Decay || c.Decay <= c.Warmup {
		return c.Min
	}
	r := float64(step-c.Warmup) / float64(c.Decay-c.Warmup)
	return c.Min + 0.5*(1+math.Cos(math.Pi*r))*(c.Max-c.Min)
}
