package tensor

// Checkpoint returns fn(x) without keeping fn's intermediate tensors for
// backward (gradient checkpointing, Chen et al. 2016): fn runs in a scope
// of its own, closed as soon as its result is copied out, so that only
// x and the result stay; backward runs fn again, with gradients, on a copy
// of x, backpropagates the result's gradient through it (the parameters fn
// uses get theirs there) and adds the copy's gradient into x's. fn must
// compute the same function both times: its ops over x and parameters,
// with any dropout seeded, never drawn from a clock. Without gradients
// it is fn(x).
//
// The result joins x's scope, as any op's; fn's tensors in between belong
// to child scopes of x's, closed before Checkpoint or its backward returns.
func Checkpoint(x *Tensor, fn func(x *Tensor) *Tensor) *Tensor {
	if !GradEnabled() {
		return fn(x)
	}
	x.live()
	// run computes fn on a copy of x in a child scope of x's.
	run := func(grad bool) (*Scope, *Tensor, *Tensor) {
		s := x.scope.Child()
		in := s.New(x.be, x.shape...)
		in.CopyFrom(x)
		in.SetRequiresGrad(grad && x.requiresGrad)
		return s, in, fn(in)
	}
	s, _, y := run(false)
	out := result(y.shape, x)
	out.be.Copy2D(out.buf, 0, 0, y.buf, 0, 0, 1, y.Len(), false)
	// The parameters fn uses may need gradients when x does not (LoRA
	// on frozen embeddings).
	out.requiresGrad = y.requiresGrad || out.requiresGrad
	s.Close()
	if !out.requiresGrad {
		return out
	}
	out.back = func() {
		if !GradEnabled() {
			panic("tensor: backward through a Checkpoint with gradients off")
		}
		s, in, y := run(true)
		defer s.Close()
		if y.requiresGrad {
			backward(y, out)
		}
		if x.requiresGrad && in.grad != nil {
			x.addGrad(in)
		}
	}
	return out
}
