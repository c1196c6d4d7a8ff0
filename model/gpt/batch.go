package gpt

import (
	"fmt"

	"github.com/golem-ml/golem/tensor"
)

// BatchCache is the KV cache of a continuously batched decode loop: one
// sequence per row, each row's positions right-aligned so that every row
// appends its next key at the same column, Len. K[l] and V[l] are buffers
// [B, Cap, W] (W = KVHeads*HeadDim) with room for Cap-Len more steps; a
// row's keys are the columns [Len-n, Len) for its n positions, and the
// caller's key mask hides the rest. A server packs the rows itself when
// sequences join or leave (see serve.Engine).
type BatchCache struct {
	K, V []*tensor.Tensor // per layer [B, Cap, W]
	B    int              // rows
	Cap  int              // columns allocated
	Len  int              // columns written
}

// Free releases the cache's memory.
func (c *BatchCache) Free() {
	for i := range c.K {
		if c.K[i] != nil {
			c.K[i].Free()
			c.V[i].Free()
		}
	}
	c.K, c.V, c.B, c.Cap, c.Len = nil, nil, 0, 0, 0
}

// DecodeStep runs one token for each row of c: ids[b] at position pos[b]
// (the row's own position, for RoPE or learned positions). Its keys and
// values are written at column c.Len, which must be below c.Cap.
// keyMask[b*Cap+j] says whether row b attends to column j (its cached
// positions and the new one); the columns from c.Len+1 on are ignored. It
// returns the final hidden states [B, 1, C] and advances c.Len. It keeps no
// gradient; call it under tensor.NoGrad.
func (m *Model) DecodeStep(ids, pos []int32, c *BatchCache, keyMask []bool) *tensor.Tensor {
	cfg := &m.Config
	B := c.B
	if len(ids) != B || len(pos) != B || len(keyMask) != B*c.Cap || c.Len >= c.Cap || len(c.K) != cfg.Layers {
		panic(fmt.Sprintf("gpt: decode step: %d ids, %d positions, mask %d for a cache of %d rows x %d columns (%d used), %d layers",
			len(ids), len(pos), len(keyMask), B, c.Cap, c.Len, len(c.K)))
	}
	for _, p := range pos {
		if p < 0 || int(p) >= cfg.Context {
			panic(fmt.Sprintf("gpt: decode step: position %d outside the context of %d", p, cfg.Context))
		}
	}
	x := m.Embed.Forward(ids, B, 1)
	if m.Pos != nil {
		x = tensor.Add(x, m.Pos.Forward(pos, B, 1))
	}
	attn := tensor.AttentionOptions{Heads: cfg.Heads, KVHeads: cfg.KVHeads, KeyMask: keyMask}
	rope := tensor.RoPEOptions{Heads: cfg.Heads, Theta: cfg.RopeTheta, Pos: pos}
	ropeK := rope
	ropeK.Heads = cfg.KVHeads
	C, W := cfg.Hidden, cfg.KVHeads*cfg.HeadDim()
	for i, b := range m.Blocks {
		h := b.Norm1.Forward(x)
		var q, k, v *tensor.Tensor
		if b.QKV != nil {
			qkv := b.QKV.Forward(h)
			q, k, v = tensor.Slice(qkv, 2, 0, C), tensor.Slice(qkv, 2, C, 2*C), tensor.Slice(qkv, 2, 2*C, 3*C)
		} else {
			q = tensor.RoPE(b.Q.Forward(h), rope)
			k = tensor.RoPE(b.K.Forward(h), ropeK)
			v = b.V.Forward(h)
		}
		// Column Len of every row: a strided copy of B vectors.
		be := k.Backend()
		be.Copy2D(c.K[i].Buffer(), c.Len*W, c.Cap*W, k.Buffer(), 0, W, B, W, false)
		be.Copy2D(c.V[i].Buffer(), c.Len*W, c.Cap*W, v.Buffer(), 0, W, B, W, false)
		a := b.O.Forward(tensor.Attention(q, c.K[i], c.V[i], attn))
		x = tensor.Add(x, a)
		h = b.Norm2.Forward(x)
		var f *tensor.Tensor
		if b.FC != nil {
			if cfg.Activation == "gelu" {
				f = tensor.GELU(b.FC.Forward(h))
			} else {
				f = tensor.GELUTanh(b.FC.Forward(h))
			}
			f = b.Proj.Forward(f)
		} else {
			f = b.Down.Forward(tensor.SwiGLU(b.Gate.Forward(h), b.Up.Forward(h)))
		}
		x = tensor.Add(x, f)
	}
	c.Len++
	return m.NormF.Forward(x)
}
