package tensor

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
)

// block is a residual two-layer MLP with a seeded dropout: what a
// transformer block computes, in small.
func block(w1, w2 *Tensor) func(x *Tensor) *Tensor {
	return func(x *Tensor) *Tensor {
		h := GELU(Linear(x, w1, nil))
		return Add(x, Dropout(Linear(h, w2, nil), 0.2, 7))
	}
}

// TestCheckpointGradient: the gradients through a checkpointed function
// match finite differences, and equal those without checkpointing bit
// for bit (same ops, same dropout seed), for the input and the
// parameters, also when the input needs none (LoRA on frozen
// embeddings), all in a scope that gives everything back.
func TestCheckpointGradient(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x, w1, w2 := randT(r, 1, 2, 3, 4), randT(r, 0.5, 8, 4), randT(r, 0.5, 4, 8)
	gradCheck(t, "checkpoint", r, []*Tensor{x, w1, w2}, func(in []*Tensor) *Tensor {
		f := block(in[1], in[2])
		return Checkpoint(Checkpoint(in[0], f), f)
	})
	for _, xGrad := range []bool{true, false} {
		grads := func(ck bool) [][]float32 {
			c := cpu.New()
			r := rand.New(rand.NewPCG(3, 4))
			mk := func(scale float32, shape ...int) *Tensor {
				d := make([]float32, numel(shape))
				for i := range d {
					d[i] = float32(r.NormFloat64()) * scale
				}
				return FromHost(c, d, shape...).SetRequiresGrad(true)
			}
			x, w1, w2, w3, w4 := mk(1, 2, 5, 4), mk(0.5, 8, 4), mk(0.5, 4, 8), mk(0.5, 8, 4), mk(0.5, 4, 8)
			x.SetRequiresGrad(xGrad)
			s := NewScope()
			h := s.Adopt(Scale(x, 1)) // x's first op joins the step's scope
			for _, f := range []func(*Tensor) *Tensor{block(w1, w2), block(w3, w4)} {
				if ck {
					h = Checkpoint(h, f)
				} else {
					h = f(h)
				}
			}
			Backward(Sum(Square(h)))
			var out [][]float32
			for _, p := range []*Tensor{x, w1, w2, w3, w4} {
				if p.HasGrad() {
					out = append(out, p.Grad().Host())
				} else {
					out = append(out, nil)
				}
			}
			s.Close()
			return out
		}
		a, b := grads(false), grads(true)
		for i := range a {
			if !slices.Equal(a[i], b[i]) {
				t.Errorf("x needs grad %v: tensor %d: gradient %v with checkpointing, %v without", xGrad, i, b[i], a[i])
			}
		}
		if xGrad == (a[0] == nil) || a[1] == nil {
			t.Fatalf("x needs grad %v: gradients %v", xGrad, a)
		}
	}
}

// TestCheckpointMemory: checkpointing each of 8 blocks keeps less memory
// between forward and backward, and peaks lower, than keeping every
// block's activations; the scope gives it all back.
func TestCheckpointMemory(t *testing.T) {
	peak := func(ck bool) (held, peak int64) {
		c := cpu.New()
		r := rand.New(rand.NewPCG(5, 6))
		mk := func(shape ...int) *Tensor {
			d := make([]float32, numel(shape))
			for i := range d {
				d[i] = float32(r.NormFloat64()) * 0.1
			}
			return FromHost(c, d, shape...).SetRequiresGrad(true)
		}
		var fs []func(*Tensor) *Tensor
		for range 8 {
			fs = append(fs, block(mk(256, 64), mk(64, 256)))
		}
		x := mk(4, 32, 64)
		base := c.MemStats().Live
		c.ResetPeak()
		s := NewScope()
		h := s.Adopt(Scale(x, 1))
		for _, f := range fs {
			if ck {
				h = Checkpoint(h, f)
			} else {
				h = f(h)
			}
		}
		loss := Sum(Square(h))
		held = c.MemStats().Live - base
		Backward(loss)
		s.Close()
		x.Free()
		m := c.MemStats()
		return held, m.Peak - base
	}
	heldOff, peakOff := peak(false)
	heldOn, peakOn := peak(true)
	t.Logf("held after forward %d -> %d bytes, peak %d -> %d bytes", heldOff, heldOn, peakOff, peakOn)
	if heldOn*4 > heldOff {
		t.Errorf("checkpointing holds %d bytes after forward, without %d: want under a quarter", heldOn, heldOff)
	}
	if peakOn >= peakOff*3/4 {
		t.Errorf("checkpointing peaks at %d bytes, without %d: want under three quarters", peakOn, peakOff)
	}
}
