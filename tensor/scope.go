package tensor

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/golem-ml/golem/backend"
)

// A Scope owns the tensors of one step of work (a training micro-batch, a
// prefill, a decode step, an evaluation batch) and gives all their memory
// back to the backend's pool at once when it closes: values, gradients and
// the buffers ops saved for backward. Model and stage code then never frees
// a tensor by hand.
//
// A tensor joins a scope through data flow, never through a global "current
// scope" (goroutines each run their own steps):
//
//   - a scope makes its own leaves (s.New, s.FromHost, s.Scalar) and
//     adopts a result made from parameters and host ids alone, such as
//     an embedding lookup (s.Adopt);
//   - an op's output joins the scope of its inputs, the most recently
//     opened one when they are in several (for nested scopes, the
//     innermost); an input with no scope that is itself an op's output (a
//     parameter's transpose, a soft prompt broadcast) joins the output's
//     scope too, so nothing a step computed is left to the garbage
//     collector;
//   - an op over tensors of no scope (parameters, leaves their holder owns)
//     makes a tensor of no scope, which the garbage collector reclaims.
//
// s.Keep(t) moves t's values into s (a KV cache keeping a step's keys in
// its own long-lived scope); s.Escape(t) moves them to s's parent (the
// result a child scope returns to its caller; with no parent, to the
// caller and the garbage collector). Scopes nest: s.Child() closes no later
// than s. A holder that keeps tensors across steps hands steps views of no
// scope (Detach, Prefix), so that a step's ops join the step's scope, not
// the holder's.
//
// Using a tensor of a closed scope panics. A nil *Scope is valid and means
// "no scope": its New and FromHost make tensors of no scope, Adopt does
// nothing, Keep and Escape return a leaf the caller owns, Close does
// nothing. Opening children, adding to and closing a scope are safe from
// several goroutines; the ops over one step's tensors run on one at a
// time, as ever.
type Scope struct {
	id     uint64 // order of opening
	parent *Scope

	mu     sync.Mutex
	owned  *[]*Tensor // from ownedPool
	kids   []*Scope
	closed bool
	bf16   bool // matrix products in bfloat16 (SetBF16)
}

var scopeIDs atomic.Uint64

// ownedPool recycles the owned lists of closed scopes, so that a loop
// opening a scope per step does not allocate a new list each time.
var ownedPool = sync.Pool{New: func() any { return new([]*Tensor) }}

// NewScope opens a scope with no parent.
func NewScope() *Scope { return &Scope{id: scopeIDs.Add(1)} }

// Child opens a scope inside s: closing s closes it too, and its tensors
// join it rather than s when ops mix them. A nil s gives a scope with no
// parent.
func (s *Scope) Child() *Scope {
	c := NewScope()
	if s == nil {
		return c
	}
	c.parent = s
	c.bf16 = s.bf16
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		panic("tensor: Child of a closed scope")
	}
	s.kids = append(s.kids, c)
	return c
}

// SetBF16 makes the matrix products of the ops whose outputs join s, and
// of the children it opens afterwards, run in bfloat16 with float32
// accumulation where the backend has the backend.BF16Products ability (the CPU
// does): MatMul, Linear and LinearInOut, LinearCrossEntropy's logits and
// Attention's two products, forward and backward. Everything else stays
// float32: values, gradients, norms, softmax, losses, bias gradients and
// other reductions. This is mixed-precision training (train's --dtype
// bf16): the parameters, and the optimizer's state, are float32 masters,
// rounded to bfloat16 only as a product reads them. Call it before the
// scope's first op.
func (s *Scope) SetBF16(on bool) {
	if s == nil {
		panic("tensor: SetBF16 on no scope")
	}
	s.bf16 = on
}

// BF16 reports whether s runs matrix products in bfloat16 (SetBF16); false
// for no scope.
func (s *Scope) BF16() bool { return s != nil && s.bf16 }

// Parent returns the scope s was opened in (nil for none).
func (s *Scope) Parent() *Scope {
	if s == nil {
		return nil
	}
	return s.parent
}

// Close frees every tensor of s and of its open children: their values,
// gradients and saved buffers go back to the backend's pool. Closing twice
// does nothing.
func (s *Scope) Close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	kids, owned := s.kids, s.owned
	s.kids, s.owned = nil, nil
	s.mu.Unlock()
	for i := len(kids) - 1; i >= 0; i-- {
		kids[i].Close()
	}
	if p := s.parent; p != nil {
		p.mu.Lock()
		for i, k := range p.kids {
			if k == s {
				last := len(p.kids) - 1
				p.kids[i], p.kids[last] = p.kids[last], nil
				p.kids = p.kids[:last]
				break
			}
		}
		p.mu.Unlock()
	}
	if owned == nil {
		return
	}
	// Later tensors first: a view goes before the tensor it views.
	l := *owned
	for i := len(l) - 1; i >= 0; i-- {
		l[i].Free()
		l[i] = nil
	}
	*owned = l[:0]
	ownedPool.Put(owned)
}

// Closed reports whether s has been closed.
func (s *Scope) Closed() bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// add makes s own t.
func (s *Scope) add(t *Tensor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		panic("tensor: a tensor made in a closed scope")
	}
	if s.owned == nil {
		s.owned = ownedPool.Get().(*[]*Tensor)
	}
	t.scope = s
	*s.owned = append(*s.owned, t)
}

// New returns a zero leaf owned by s.
func (s *Scope) New(be backend.Backend, shape ...int) *Tensor {
	t := New(be, shape...)
	if s != nil {
		s.add(t)
	}
	return t
}

// FromHost returns a leaf owned by s holding a copy of data.
func (s *Scope) FromHost(be backend.Backend, data []float32, shape ...int) *Tensor {
	t := FromHost(be, data, shape...)
	if s != nil {
		s.add(t)
	}
	return t
}

// FromBuffer returns a leaf owned by s over buf, memory the backend
// allocated in whatever form it keeps (a float16 KV cache's buffer,
// quantized weights): closing s gives it back.
func (s *Scope) FromBuffer(be backend.Backend, buf backend.Buffer, shape ...int) *Tensor {
	t := FromBuffer(be, buf, shape...)
	if s != nil {
		s.add(t)
	}
	return t
}

// Scalar returns a 0-dim leaf owned by s.
func (s *Scope) Scalar(be backend.Backend, v float32) *Tensor {
	return s.FromHost(be, []float32{v})
}

// Adopt makes s own t, an op's result of no scope, and the results of no
// scope it was computed from. It is for a step's first result, one
// computed from parameters and host data alone (an embedding lookup). It
// never takes a leaf (parameters stay their holder's; s.New and
// s.FromHost make a step's leaves) nor a tensor that has a scope already.
// It returns t.
func (s *Scope) Adopt(t *Tensor) *Tensor {
	if s == nil || t.scope != nil || len(t.parents) == 0 {
		return t
	}
	t.live()
	s.adoptGraph(t)
	return t
}

// adoptGraph makes s own t and, below it, every op result of no scope.
func (s *Scope) adoptGraph(t *Tensor) {
	stack := []*Tensor{t}
	s.add(t)
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, p := range n.parents {
			if p != nil && p.scope == nil && len(p.parents) > 0 && !p.freed {
				s.add(p)
				stack = append(stack, p)
			}
		}
	}
}

// Keep returns a leaf owned by s holding t's values, cut from t's graph:
// t's memory moves to s (a view's values are copied), and t's own scope
// frees the rest of t's node (its gradient, saved buffers) when it closes.
// A nil s returns a leaf of no scope: the caller's.
func (s *Scope) Keep(t *Tensor) *Tensor {
	t.live()
	var k *Tensor
	if t.view {
		k = t.Clone()
	} else {
		t.view = true // t no longer owns its memory
		k = &Tensor{shape: t.shape, buf: t.buf, be: t.be}
	}
	if s != nil {
		s.add(k)
	}
	return k
}

// Escape moves t's values to s's parent (see Keep): the result a child
// scope hands to the code that opened it.
func (s *Scope) Escape(t *Tensor) *Tensor { return s.Parent().Keep(t) }

// Scope returns the scope that owns t (nil for none).
func (t *Tensor) Scope() *Scope { return t.scope }

// joinScope makes out join the most recently opened scope among its
// inputs, with the inputs of no scope that are op results (see Scope).
func joinScope(out *Tensor, inputs []*Tensor) {
	var s *Scope
	for _, in := range inputs {
		if in.scope != nil && (s == nil || in.scope.id > s.id) {
			s = in.scope
		}
	}
	if s == nil {
		return
	}
	for _, in := range inputs {
		if in.scope == nil && len(in.parents) > 0 {
			s.adoptGraph(in)
		}
	}
	s.add(out)
}

// String names the scope for panics and debugging.
func (s *Scope) String() string {
	if s == nil {
		return "scope(none)"
	}
	return fmt.Sprintf("scope#%d", s.id)
}
