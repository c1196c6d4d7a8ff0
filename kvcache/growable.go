package kvcache

import "github.com/golem-ml/golem/tensor"

// Growable holds the keys and values of past positions of each layer for
// B rows decoded together (a left-padded batch). K[l] and V[l] are
// [B, N, KVHeads*HeadDim]. For one row (B = 1) without gradients, they are
// views of buffers with room to grow, so a decoding step appends its keys
// in place instead of copying the whole cache. Each layer's memory belongs
// to a scope of the cache's (see tensor.Scope), replaced when the layer's
// keys move to new memory; a step attends to views of no scope, so its
// results stay in the step's scope. The zero value is an empty cache.
type Growable struct {
	K, V []*tensor.Tensor // per layer [B, N, KVHeads*HeadDim]
	N    int              // positions cached

	// kb and vb are the growable buffers behind K and V (nil where K and V
	// own their memory); mem owns each layer's memory.
	kb, vb []*tensor.Tensor
	mem    []*tensor.Scope
}

// Len returns the number of positions cached.
func (c *Growable) Len() int { return c.N }

// Commit counts T more positions.
func (c *Growable) Commit(T int) { c.N += T }

// Attend appends k and v after the cached positions of layer a.Layer and
// attends q to all of them.
func (c *Growable) Attend(q, k, v *tensor.Tensor, a Attention) *tensor.Tensor {
	if n := a.Layer + 1 - len(c.K); n > 0 {
		c.K = append(c.K, make([]*tensor.Tensor, n)...)
		c.V = append(c.V, make([]*tensor.Tensor, n)...)
		c.kb = append(c.kb, make([]*tensor.Tensor, n)...)
		c.vb = append(c.vb, make([]*tensor.Tensor, n)...)
		c.mem = append(c.mem, make([]*tensor.Scope, n)...)
	}
	k, v = c.extend(a.Layer, k, v, a.Context)
	return tensor.Attention(q, k, v, a.AttentionOptions)
}

// Close gives the cache's memory back to the backend, leaving it empty
// (the zero value, ready for new positions).
func (c *Growable) Close() {
	for _, s := range c.mem {
		s.Close()
	}
	c.K, c.V, c.kb, c.vb, c.mem = nil, nil, nil, nil, nil
	c.N = 0
}

// replace makes s the owner of layer l's memory, closing the one before.
func (c *Growable) replace(l int, s *tensor.Scope) {
	c.mem[l].Close()
	c.mem[l] = s
}

// extend appends k and v ([B, T, W]) of layer l after the cached positions
// and returns the keys and values of all positions, [B, N+T, W].
func (c *Growable) extend(l int, k, v *tensor.Tensor, context int) (*tensor.Tensor, *tensor.Tensor) {
	B, T, W := k.Dim(0), k.Dim(1), k.Dim(2)
	S := c.N + T
	if B != 1 || (tensor.GradEnabled() && (k.RequiresGrad() || v.RequiresGrad())) {
		// Several rows (each row's positions must stay contiguous), or a
		// gradient to keep: concatenate, and keep the result in new memory.
		if prev := c.K[l]; prev != nil {
			k, v = tensor.Concat(1, prev.Detach(), k), tensor.Concat(1, c.V[l].Detach(), v)
		}
		mem := tensor.NewScope()
		c.K[l], c.V[l] = mem.Keep(k), mem.Keep(v)
		c.replace(l, mem)
		c.kb[l], c.vb[l] = nil, nil
		return k, v
	}
	be := k.Backend()
	if kb := c.kb[l]; kb == nil || kb.Len() < S*W {
		// Grow: room for the whole context, or twice what is needed.
		n := max(S, 2*S, 16)
		if context > 0 {
			n = max(S, min(context, 2*S), 16)
		}
		mem := tensor.NewScope()
		nk, nv := mem.New(be, n*W), mem.New(be, n*W)
		if c.N > 0 && c.K[l] != nil {
			be.Copy2D(nk.Buffer(), 0, 0, c.K[l].Buffer(), 0, 0, 1, c.N*W, false)
			be.Copy2D(nv.Buffer(), 0, 0, c.V[l].Buffer(), 0, 0, 1, c.N*W, false)
		}
		c.replace(l, mem)
		c.kb[l], c.vb[l] = nk, nv
	}
	kb, vb := c.kb[l], c.vb[l]
	be.Copy2D(kb.Buffer(), c.N*W, 0, k.Buffer(), 0, 0, 1, T*W, false)
	be.Copy2D(vb.Buffer(), c.N*W, 0, v.Buffer(), 0, 0, 1, T*W, false)
	c.K[l], c.V[l] = tensor.Prefix(kb, 1, S, W), tensor.Prefix(vb, 1, S, W)
	return c.K[l], c.V[l]
}
