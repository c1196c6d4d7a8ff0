// Package tensor holds golem's Tensor: a shape and float32 storage on a
// backend, with reverse-mode automatic differentiation.
//
// Every op records its inputs. When an input requires a gradient (and
// no-grad mode is off), the op also records a backward function that adds
// the gradient of its output into its inputs' gradients. Backward runs them
// in reverse topological order.
//
// Memory is owned by scope (see Scope): a step opens one, the tensors it
// computes join it through data flow, and Close gives all their memory
// (values, gradients, saved buffers) back to the backend's pool, so a loop
// whose shapes repeat allocates no new tensor memory and model and stage
// code never free a tensor. Parameters and other leaves of no scope belong
// to their holder. Release and Free, the manual way, remain for code that
// does not use scopes.
package tensor

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/golem-ml/golem/backend"
)

// Tensor is an n-dimensional float32 array on a backend.
type Tensor struct {
	shape []int
	buf   backend.Buffer
	be    backend.Backend

	requiresGrad bool
	grad         backend.Buffer

	// Graph: the inputs of the op that made this tensor, its backward
	// function, and buffers it saved for backward (freed with the graph).
	parents []*Tensor
	back    func()
	saved   []backend.Buffer
	view    bool // buf belongs to parents[0] (or to a Keep's leaf)
	freed   bool
	scope   *Scope // frees t when it closes (nil: t's holder or the GC)
	visit   uint64 // epoch of the last graph walk that reached this node
}

var noGrad atomic.Int32

// NoGrad runs fn with gradient recording off (for evaluation and sampling).
// It nests, and applies to every goroutine while fn runs.
func NoGrad(fn func()) {
	noGrad.Add(1)
	defer noGrad.Add(-1)
	fn()
}

// GradEnabled reports whether ops record gradients.
func GradEnabled() bool { return noGrad.Load() == 0 }

func numel(shape []int) int {
	n := 1
	for _, s := range shape {
		if s < 0 {
			panic(fmt.Sprintf("tensor: negative dimension in %v", shape))
		}
		n *= s
	}
	return n
}

// New returns a zero tensor that is a leaf of the graph.
func New(be backend.Backend, shape ...int) *Tensor {
	sh := append([]int(nil), shape...)
	return &Tensor{shape: sh, buf: be.Alloc(numel(sh), true), be: be}
}

// Placeholder returns a leaf tensor of the shape that holds no memory
// until Set gives it its values (or nn.Replace puts another tensor in its
// place): the parameters of a model about to be loaded tensor by tensor,
// so that loading holds only what it has read. Any other use before Set
// panics.
func Placeholder(be backend.Backend, shape ...int) *Tensor {
	return &Tensor{shape: append([]int(nil), shape...), be: be}
}

// FromHost returns a leaf tensor holding a copy of data.
func FromHost(be backend.Backend, data []float32, shape ...int) *Tensor {
	if numel(shape) != len(data) {
		panic(fmt.Sprintf("tensor: %d values for shape %v", len(data), shape))
	}
	t := &Tensor{shape: append([]int(nil), shape...), buf: be.Alloc(len(data), false), be: be}
	be.Upload(t.buf, 0, data)
	return t
}

// FromBuffer returns a leaf tensor over buf, a buffer of be's holding
// numel(shape) values, which the tensor now owns: a weight matrix a
// backend keeps in its own form (backend.Quantized), which the ops read
// where the backend's contract allows it (Linear's weight, Embedding's
// table) and Host dequantizes. It does not require a gradient (a
// quantized buffer cannot be written: train adapters beside it).
func FromBuffer(be backend.Backend, buf backend.Buffer, shape ...int) *Tensor {
	if numel(shape) != buf.Len() {
		panic(fmt.Sprintf("tensor: a buffer of %d values as shape %v", buf.Len(), shape))
	}
	return &Tensor{shape: append([]int(nil), shape...), buf: buf, be: be}
}

// Scalar returns a 0-dim leaf tensor.
func Scalar(be backend.Backend, v float32) *Tensor { return FromHost(be, []float32{v}) }

// Shape returns the tensor's shape (do not modify it).
func (t *Tensor) Shape() []int { return t.shape }

// Dim returns the size of dimension i (negative i counts from the end).
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.shape)
	}
	return t.shape[i]
}

// Len returns the number of elements.
func (t *Tensor) Len() int { return numel(t.shape) }

// Backend returns the backend holding the tensor.
func (t *Tensor) Backend() backend.Backend { return t.be }

// Buffer returns the backend buffer (for backends and tests).
func (t *Tensor) Buffer() backend.Buffer { t.live(); return t.buf }

// Host copies the values to a new Go slice.
func (t *Tensor) Host() []float32 {
	return t.HostInto(nil)
}

// HostInto is Host into dst's memory when it has room (a loop that reads
// a tensor every step reuses one slice instead of allocating): it returns
// dst[:t.Len()] holding t's values, or a new slice when dst is too small.
func (t *Tensor) HostInto(dst []float32) []float32 {
	t.live()
	n := t.Len()
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	t.be.Download(dst, t.buf, 0)
	return dst
}

// Item returns the single value of a one-element tensor.
func (t *Tensor) Item() float32 {
	t.live()
	if t.Len() != 1 {
		panic(fmt.Sprintf("tensor: Item of shape %v", t.shape))
	}
	var v [1]float32
	t.be.Download(v[:], t.buf, 0)
	return v[0]
}

// Set overwrites the values from host data.
func (t *Tensor) Set(data []float32) {
	t.live()
	if len(data) != t.Len() {
		panic(fmt.Sprintf("tensor: Set %d values into shape %v", len(data), t.shape))
	}
	if t.buf == nil { // a Placeholder
		t.buf = t.be.Alloc(len(data), false)
	}
	t.be.Upload(t.buf, 0, data)
}

// RequiresGrad reports whether gradients flow to this tensor.
func (t *Tensor) RequiresGrad() bool { return t.requiresGrad }

// SetRequiresGrad marks a leaf as trainable (true) or frozen (false).
func (t *Tensor) SetRequiresGrad(b bool) *Tensor {
	t.requiresGrad = b
	return t
}

// Grad returns the accumulated gradient as a tensor sharing its memory, or
// nil if there is none yet.
func (t *Tensor) Grad() *Tensor {
	if t.grad == nil {
		return nil
	}
	return &Tensor{shape: t.shape, buf: t.grad, be: t.be}
}

// HasGrad reports whether t has a gradient yet (Grad() != nil, without
// making a tensor).
func (t *Tensor) HasGrad() bool { return t.grad != nil }

// GradBuffer returns the gradient's buffer, allocating a zero one if needed.
func (t *Tensor) GradBuffer() backend.Buffer {
	if t.grad == nil {
		t.grad = t.be.Alloc(t.Len(), true)
	}
	return t.grad
}

// outGrad returns t's gradient buffer for an op to write into, and
// whether it holds a gradient to add to: a new buffer's contents are
// undefined, so the op writes it whole without reading or zeroing it first.
func (t *Tensor) outGrad() (backend.Buffer, bool) {
	if t.grad == nil {
		t.grad = t.be.Alloc(t.Len(), false)
		return t.grad, false
	}
	return t.grad, true
}

// gemmGrad is outGrad for a GEMM: the beta it should use, 0 for a new
// buffer, 1 to add into an existing gradient.
func (t *Tensor) gemmGrad() (backend.Buffer, float32) {
	g, acc := t.outGrad()
	if acc {
		return g, 1
	}
	return g, 0
}

// addGrad adds out's gradient (of t's size) into t's: a copy when t has
// none yet.
func (t *Tensor) addGrad(out *Tensor) {
	if t.grad == nil {
		t.grad = t.be.Alloc(t.Len(), false)
		t.be.Copy2D(t.grad, 0, 0, out.grad, 0, 0, 1, t.Len(), false)
		return
	}
	t.be.Copy2D(t.grad, 0, 0, out.grad, 0, 0, 1, t.Len(), true)
}

// takeGrad gives out's gradient to t when t has none yet, instead of
// copying it: out's backward is its gradient's last use. Otherwise it adds.
func (t *Tensor) takeGrad(out *Tensor) {
	if t.grad == nil && out.grad != nil && !t.freed {
		t.grad, out.grad = out.grad, nil
		return
	}
	t.addGrad(out)
}

// ZeroGrad sets the gradient to zero (keeping its memory).
func (t *Tensor) ZeroGrad() {
	if t.grad != nil {
		t.be.Fill(t.grad, 0)
	}
}

// Detach returns a leaf sharing t's memory, cut from the graph.
func (t *Tensor) Detach() *Tensor {
	return &Tensor{shape: t.shape, buf: t.buf, be: t.be}
}

// Clone returns a leaf copy of t in new memory.
func (t *Tensor) Clone() *Tensor {
	t.live()
	c := &Tensor{shape: append([]int(nil), t.shape...), buf: t.be.Alloc(t.Len(), false), be: t.be}
	t.be.Copy2D(c.buf, 0, 0, t.buf, 0, 0, 1, t.Len(), false)
	return c
}

// CopyFrom overwrites t's values with src's (same number of elements).
func (t *Tensor) CopyFrom(src *Tensor) {
	t.live()
	src.live()
	if src.Len() != t.Len() {
		panic(fmt.Sprintf("tensor: CopyFrom %v into %v", src.shape, t.shape))
	}
	t.be.Copy2D(t.buf, 0, 0, src.buf, 0, 0, 1, t.Len(), false)
}

// Free gives a leaf's memory (and its gradient's) back to the backend.
func (t *Tensor) Free() {
	if t.freed {
		return
	}
	t.freed = true
	if !t.view {
		t.be.Free(t.buf)
	}
	if t.grad != nil {
		t.be.Free(t.grad)
	}
	for _, s := range t.saved {
		t.be.Free(s)
	}
	t.buf, t.grad, t.saved, t.back, t.parents = nil, nil, nil, nil, nil
}

func (t *Tensor) live() {
	if t.freed {
		panic("tensor: use of a released tensor (its scope was closed, or it was released)")
	}
}

func (t *Tensor) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Tensor%v", t.shape)
	if t.freed {
		return b.String() + "(released)"
	}
	h := t.Host()
	if len(h) > 8 {
		fmt.Fprintf(&b, "%v...", h[:8])
	} else {
		fmt.Fprintf(&b, "%v", h)
	}
	return b.String()
}

// result makes the output tensor of an op over inputs, recording the graph.
// The backward function is kept only if some input needs a gradient.
func result(shape []int, inputs ...*Tensor) *Tensor {
	be := inputs[0].be
	for _, in := range inputs {
		in.live()
	}
	out := &Tensor{shape: shape, be: be, buf: be.Alloc(numel(shape), false), parents: inputs}
	if GradEnabled() {
		for _, in := range inputs {
			if in.requiresGrad {
				out.requiresGrad = true
			}
		}
	}
	joinScope(out, inputs)
	return out
}

// saveBuf allocates a buffer that lives as long as t's graph node.
func (t *Tensor) saveBuf(n int, zero bool) backend.Buffer {
	b := t.be.Alloc(n, zero)
	t.saved = append(t.saved, b)
	return b
}

// Backward computes the gradient of loss (a one-element tensor) with
// respect to every tensor in its graph that requires one, adding into the
// leaves' gradients.
func Backward(loss *Tensor) {
	loss.live()
	if loss.Len() != 1 {
		panic(fmt.Sprintf("tensor: Backward of shape %v (want one element)", loss.shape))
	}
	if !loss.requiresGrad {
		panic("tensor: Backward of a tensor that does not require grad")
	}
	backward(loss, nil)
}

// backward runs the backward functions of the graph below root, root's
// gradient being seed's (1 when seed is nil).
func backward(root, seed *Tensor) {
	sc := walkPool.Get().(*walkScratch)
	order := topo(root, sc)
	if seed == nil {
		root.be.Fill(root.GradBuffer(), 1)
	} else {
		root.addGrad(seed)
	}
	for i := len(order) - 1; i >= 0; i-- {
		t := order[i]
		if t.back != nil && t.grad != nil {
			t.back()
		}
	}
	sc.put()
}

// walkScratch holds the slices of a graph walk, reused across steps so a
// training step does not allocate them.
type walkScratch struct {
	order []*Tensor
	stack []topoFrame
	nodes []*Tensor
}

type topoFrame struct {
	t *Tensor
	i int
}

var (
	walkPool  = sync.Pool{New: func() any { return new(walkScratch) }}
	walkEpoch atomic.Uint64
)

func (s *walkScratch) put() {
	clear(s.order)
	clear(s.stack)
	clear(s.nodes)
	s.order, s.stack, s.nodes = s.order[:0], s.stack[:0], s.nodes[:0]
	walkPool.Put(s)
}

// topo returns the ops of the graph below root in topological order
// (inputs first). Leaves are left out: they have no backward function. A
// node is marked visited with this walk's epoch, so no set is allocated;
// only nodes of this graph (never shared leaves) are marked.
func topo(root *Tensor, sc *walkScratch) []*Tensor {
	epoch := walkEpoch.Add(1)
	order, stack := sc.order[:0], sc.stack[:0]
	stack = append(stack, topoFrame{root, 0})
	root.visit = epoch
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		if f.i < len(f.t.parents) {
			p := f.t.parents[f.i]
			f.i++
			if p != nil && len(p.parents) > 0 && p.visit != epoch {
				p.visit = epoch
				stack = append(stack, topoFrame{p, 0})
			}
			continue
		}
		order = append(order, f.t)
		stack = stack[:len(stack)-1]
	}
	sc.order, sc.stack = order, stack
	return order
}

// Release frees every intermediate tensor of the graph below root (root
// included): their values, gradients and saved buffers go back to the
// backend's pool. Leaves (parameters, inputs) are kept. Using a released
// tensor panics. Code that opens a Scope never needs it.
func Release(root *Tensor) {
	sc := walkPool.Get().(*walkScratch)
	stack := append(sc.nodes[:0], root)
	for len(stack) > 0 {
		t := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if t == nil || t.freed || len(t.parents) == 0 {
			continue
		}
		stack = append(stack, t.parents...)
		t.Free()
	}
	sc.nodes = stack
	sc.put()
}
