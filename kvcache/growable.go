package kvcache

import "github.com/golem-ml/golem/tensor"

// Growable holds the keys and values of past positions of each layer for
// B rows decoded together (a left-padded batch), [B, N, KVHeads*HeadDim].
// Without gradients they live in buffers with room to grow, [B, room, W],
// so a decoding step appends its keys in place instead of copying the
// whole cache (attention reads the first N positions of each row,
// tensor.AttentionOptions.KVLen). Each layer's memory belongs to a scope of the
// cache's (see tensor.Scope), replaced when the layer's keys move to new
// memory; a step attends to views of no scope, so its results stay in the
// step's scope. The zero value is an empty cache.
type Growable struct {
	layers []grown
	n      int // positions cached
}

// grown is one layer of a Growable: its keys and values (k and v, [B, N,
// W], or, over grown buffers, [B, room, W] of which the first N positions
// of each row are keys), the growable buffers behind them (nil where k and
// v own their memory), and the scope that owns its memory.
type grown struct {
	k, v, kb, vb *tensor.Tensor
	room         int // positions each row of kb and vb holds
	mem          *tensor.Scope
}

// Len returns the number of positions cached.
func (c *Growable) Len() int { return c.n }

// Commit counts T more positions.
func (c *Growable) Commit(T int) { c.n += T }

// Attend appends k and v after the cached positions of layer a.Layer and
// attends q to all of them.
func (c *Growable) Attend(q, k, v *tensor.Tensor, a Attention) *tensor.Tensor {
	if n := a.Layer + 1 - len(c.layers); n > 0 {
		c.layers = append(c.layers, make([]grown, n)...)
	}
	k, v = c.extend(&c.layers[a.Layer], k, v, a.Context)
	o := a.AttentionOptions
	o.KVLen = c.n + q.Dim(1)
	return tensor.Attention(q, k, v, o)
}

// Close gives the cache's memory back to the backend, leaving it empty
// (the zero value, ready for new positions).
func (c *Growable) Close() {
	for _, l := range c.layers {
		l.mem.Close()
	}
	*c = Growable{}
}

// own makes s the owner of the layer's memory, closing the one before.
func (l *grown) own(s *tensor.Scope) {
	l.mem.Close()
	l.mem = s
}

// extend appends k and v ([B, T, W]) of layer l after the cached positions
// and returns the keys and values of all positions: [B, N+T, W], or [B,
// room, W] whose rows' first N+T positions are those.
func (c *Growable) extend(l *grown, k, v *tensor.Tensor, context int) (*tensor.Tensor, *tensor.Tensor) {
	B, T, W := k.Dim(0), k.Dim(1), k.Dim(2)
	S := c.n + T
	if tensor.GradEnabled() && (k.RequiresGrad() || v.RequiresGrad()) {
		// A gradient to keep: concatenate, and keep the result in new
		// memory.
		if l.k != nil {
			pk, pv := l.past(c.n)
			k, v = tensor.Concat(1, pk, k), tensor.Concat(1, pv, v)
		}
		mem := tensor.NewScope()
		l.k, l.v = mem.Keep(k), mem.Keep(v)
		l.own(mem)
		l.kb, l.vb, l.room = nil, nil, 0
		return k, v
	}
	be := k.Backend()
	if l.kb == nil || l.room < S {
		// Grow: room for the whole context, or twice what is needed.
		n := max(S, 2*S, 16)
		if context > 0 {
			n = max(S, min(context, 2*S), 16)
		}
		mem := tensor.NewScope()
		nk, nv := mem.New(be, B*n*W), mem.New(be, B*n*W)
		if c.n > 0 && l.k != nil {
			from := l.k.Dim(1) // l.k's rows' stride, in positions: c.n or the old room
			be.Copy2D(nk.Buffer(), 0, n*W, l.k.Buffer(), 0, from*W, B, c.n*W, false)
			be.Copy2D(nv.Buffer(), 0, n*W, l.v.Buffer(), 0, from*W, B, c.n*W, false)
		}
		l.own(mem)
		l.kb, l.vb, l.room = nk, nv, n
	}
	be.Copy2D(l.kb.Buffer(), c.n*W, l.room*W, k.Buffer(), 0, T*W, B, T*W, false)
	be.Copy2D(l.vb.Buffer(), c.n*W, l.room*W, v.Buffer(), 0, T*W, B, T*W, false)
	l.k, l.v = tensor.Prefix(l.kb, B, l.room, W), tensor.Prefix(l.vb, B, l.room, W)
	return l.k, l.v
}

// past returns the n cached positions' keys and values as [B, n, W]:
// l.k and l.v detached where they are that, else copies of the first n
// positions of the grown buffers' rows.
func (l *grown) past(n int) (*tensor.Tensor, *tensor.Tensor) {
	if l.k.Dim(1) == n {
		return l.k.Detach(), l.v.Detach()
	}
	B, W := l.k.Dim(0), l.k.Dim(2)
	be := l.k.Backend()
	k, v := tensor.New(be, B, n, W), tensor.New(be, B, n, W)
	be.Copy2D(k.Buffer(), 0, n*W, l.k.Buffer(), 0, l.room*W, B, n*W, false)
	be.Copy2D(v.Buffer(), 0, n*W, l.v.Buffer(), 0, l.room*W, B, n*W, false)
	return k, v
}
