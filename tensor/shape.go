package tensor

import (
	"fmt"
	"slices"
)

// Reshape returns a view of t with a new shape of the same size; one
// dimension may be -1 and is inferred.
func Reshape(t *Tensor, shape ...int) *Tensor {
	sh := slices.Clone(shape)
	infer, known := -1, 1
	for i, s := range sh {
		if s == -1 {
			if infer >= 0 {
				panic(fmt.Sprintf("tensor: reshape %v to %v: two -1", t.shape, shape))
			}
			infer = i
		} else {
			known *= s
		}
	}
	if infer >= 0 && known > 0 {
		sh[infer] = t.Len() / known
	}
	if numel(sh) != t.Len() {
		panic(fmt.Sprintf("tensor: reshape %v to %v", t.shape, shape))
	}
	t.live()
	out := &Tensor{shape: sh, be: t.be, buf: t.buf, parents: []*Tensor{t}, view: true}
	joinScope(out, out.parents)
	if GradEnabled() && t.requiresGrad {
		out.requiresGrad = true
		// The view's gradient has the same layout: pass it on.
		out.back = func() { t.takeGrad(out) }
	}
	return out
}

// Permute reorders dimensions: output dimension i is input dimension perm[i].
func Permute(t *Tensor, perm ...int) *Tensor {
	if len(perm) != len(t.shape) {
		panic(fmt.Sprintf("tensor: permute %v of shape %v", perm, t.shape))
	}
	shape := make([]int, len(perm))
	inv := make([]int, len(perm))
	for i, p := range perm {
		shape[i] = t.shape[p]
		inv[p] = i
	}
	out := result(shape, t)
	in := slices.Clone(t.shape)
	t.be.Permute(out.buf, t.buf, in, perm, false)
	if out.requiresGrad {
		out.back = func() { t.be.Permute(t.GradBuffer(), out.grad, shape, inv, true) }
	}
	return out
}

// Transpose swaps two dimensions.
func Transpose(t *Tensor, d0, d1 int) *Tensor {
	n := len(t.shape)
	if d0 < 0 {
		d0 += n
	}
	if d1 < 0 {
		d1 += n
	}
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	perm[d0], perm[d1] = d1, d0
	return Permute(t, perm...)
}

// outerInner splits a shape around axis: the product of the dims before it
// and after it.
func outerInner(shape []int, axis int) (outer, inner int) {
	outer, inner = 1, 1
	for _, s := range shape[:axis] {
		outer *= s
	}
	for _, s := range shape[axis+1:] {
		inner *= s
	}
	return
}

func normAxis(axis, n int) int {
	if axis < 0 {
		axis += n
	}
	if axis < 0 || axis >= n {
		panic(fmt.Sprintf("tensor: axis %d of %d dims", axis, n))
	}
	return axis
}

// Slice returns t[..., start:end, ...] along axis (a copy).
func Slice(t *Tensor, axis, start, end int) *Tensor {
	axis = normAxis(axis, len(t.shape))
	if start < 0 || end > t.shape[axis] || start > end {
		panic(fmt.Sprintf("tensor: slice [%d:%d] of dim %d in %v", start, end, axis, t.shape))
	}
	shape := slices.Clone(t.shape)
	shape[axis] = end - start
	out := result(shape, t)
	outer, inner := outerInner(t.shape, axis)
	src, w := t.shape[axis]*inner, (end-start)*inner
	t.be.Copy2D(out.buf, 0, w, t.buf, start*inner, src, outer, w, false)
	if out.requiresGrad {
		out.back = func() { t.be.Copy2D(t.GradBuffer(), start*inner, src, out.grad, 0, w, outer, w, true) }
	}
	return out
}

// Concat joins tensors along axis; their other dimensions must agree.
func Concat(axis int, ts ...*Tensor) *Tensor {
	if len(ts) == 0 {
		panic("tensor: Concat of nothing")
	}
	axis = normAxis(axis, len(ts[0].shape))
	shape := slices.Clone(ts[0].shape)
	total := 0
	for _, t := range ts {
		if len(t.shape) != len(shape) {
			panic(fmt.Sprintf("tensor: concat %v with %v", ts[0].shape, t.shape))
		}
		for i := range shape {
			if i != axis && t.shape[i] != shape[i] {
				panic(fmt.Sprintf("tensor: concat %v with %v on axis %d", ts[0].shape, t.shape, axis))
			}
		}
		total += t.shape[axis]
	}
	shape[axis] = total
	out := result(shape, ts...)
	outer, inner := outerInner(shape, axis)
	dst := total * inner
	off := 0
	offs := make([]int, len(ts))
	for i, t := range ts {
		w := t.shape[axis] * inner
		offs[i] = off
		t.be.Copy2D(out.buf, off, dst, t.buf, 0, w, outer, w, false)
		off += w
	}
	if out.requiresGrad {
		out.back = func() {
			for i, t := range ts {
				if t.requiresGrad {
					w := t.shape[axis] * inner
					t.be.Copy2D(t.GradBuffer(), 0, w, out.grad, offs[i], dst, outer, w, true)
				}
			}
		}
	}
	return out
}

// Prefix returns a tensor of the given shape over the first values of t's
// memory, without a copy: a leaf cut from the graph, valid while t's memory
// is. Freeing it does not free that memory. It lets a buffer with room to
// grow (a KV cache) be used at its current length.
func Prefix(t *Tensor, shape ...int) *Tensor {
	t.live()
	if numel(shape) > t.Len() {
		panic(fmt.Sprintf("tensor: prefix %v of %v", shape, t.shape))
	}
	return &Tensor{shape: slices.Clone(shape), buf: t.buf, be: t.be, view: true}
}
