package kvcache

import "github.com/golem-ml/golem/tensor"

// Growable holds the keys and values of past positions of each layer for
// B rows decoded together (a left-padded batch), [B, N, KVHeads*HeadDim].
// For one row (B = 1) without gradients, they are views of buffers with
// room to grow, so a decoding step appends its keys in place instead of
// copying the whole cache. Each layer's memory belongs to a scope of the
// cache's (see tensor.Scope), replaced when the layer's keys move to new
// memory; a step attends to views of no scope, so its results stay in the
// step's scope. The zero value is an empty cache.
type Growable struct {
	layers []grown
	n      int // positions cached
}

// grown is one layer of a Growable: its keys and values, the growable
// buffers behind them (nil where k and v own their memory), and the scope
// that owns its memory.
type grown struct {
	k, v, kb, vb *tensor.Tensor
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
	return tensor.Attention(q, k, v, a.AttentionOptions)
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
// and returns the keys and values of all positions, [B, N+T, W].
func (c *Growable) extend(l *grown, k, v *tensor.Tensor, context int) (*tensor.Tensor, *tensor.Tensor) {
	B, T, W := k.Dim(0), k.Dim(1), k.Dim(2)
	S := c.n + T
	if B != 1 || (tensor.GradEnabled() && (k.RequiresGrad() || v.RequiresGrad())) {
		// Several rows (each row's positions must stay contiguous), or a
		// gradient to keep: concatenate, and keep the result in new memory.
		if l.k != nil {
			k, v = tensor.Concat(1, l.k.Detach(), k), tensor.Concat(1, l.v.Detach(), v)
		}
		mem := tensor.NewScope()
		l.k, l.v = mem.Keep(k), mem.Keep(v)
		l.own(mem)
		l.kb, l.vb = nil, nil
		return k, v
	}
	be := k.Backend()
	if l.kb == nil || l.kb.Len() < S*W {
		// Grow: room for the whole context, or twice what is needed.
		n := max(S, 2*S, 16)
		if context > 0 {
			n = max(S, min(context, 2*S), 16)
		}
		mem := tensor.NewScope()
		nk, nv := mem.New(be, n*W), mem.New(be, n*W)
		if c.n > 0 && l.k != nil {
			be.Copy2D(nk.Buffer(), 0, 0, l.k.Buffer(), 0, 0, 1, c.n*W, false)
			be.Copy2D(nv.Buffer(), 0, 0, l.v.Buffer(), 0, 0, 1, c.n*W, false)
		}
		l.own(mem)
		l.kb, l.vb = nk, nv
	}
	be.Copy2D(l.kb.Buffer(), c.n*W, 0, k.Buffer(), 0, 0, 1, T*W, false)
	be.Copy2D(l.vb.Buffer(), c.n*W, 0, v.Buffer(), 0, 0, 1, T*W, false)
	l.k, l.v = tensor.Prefix(l.kb, 1, S, W), tensor.Prefix(l.vb, 1, S, W)
	return l.k, l.v
}
