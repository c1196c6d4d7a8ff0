package gpt

import (
	"fmt"
	"math"

	"github.com/golem-ml/golem/backend"
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
	// Rows whose mask is one span of columns ending at Len use the
	// backend's row attention when it has one, which reads only those
	// columns.
	be := m.Embed.Weight.Backend()
	ra, _ := be.(rowAttention)
	var start []int32
	if ra != nil {
		start = maskSpans(keyMask, B, c.Cap, c.Len)
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
		be.Copy2D(c.K[i].Buffer(), c.Len*W, c.Cap*W, k.Buffer(), 0, W, B, W, false)
		be.Copy2D(c.V[i].Buffer(), c.Len*W, c.Cap*W, v.Buffer(), 0, W, B, W, false)
		var a *tensor.Tensor
		if start != nil {
			y := tensor.New(be, B, 1, C)
			ra.AttentionRows(backend.Attention{B: B, T: 1, S: c.Cap, HQ: cfg.Heads, HKV: cfg.KVHeads, D: cfg.HeadDim(),
				Scale: attnScale(cfg)}, start, c.Len+1, y.Buffer(), q.Buffer(), c.K[i].Buffer(), c.V[i].Buffer())
			a = b.O.Forward(y)
			y.Free()
		} else {
			a = b.O.Forward(tensor.Attention(q, c.K[i], c.V[i], attn))
		}
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

// rowAttention is the optional backend kernel for one query per row over
// each row's own span of cache columns (cpu.CPU.AttentionRows).
type rowAttention interface {
	AttentionRows(a backend.Attention, start []int32, end int, o, q, k, v backend.Buffer)
}

// maskSpans returns, for each of the B rows of a key mask with cols
// columns, the first column it attends to, when every row attends to
// exactly one run of columns ending at column last; otherwise nil.
func maskSpans(mask []bool, B, cols, last int) []int32 {
	start := make([]int32, B)
	for b := range B {
		row := mask[b*cols : b*cols+last+1]
		if !row[last] {
			return nil
		}
		j := last
		for j > 0 && row[j-1] {
			j--
		}
		for _, on := range row[:j] {
			if on {
				return nil
			}
		}
		start[b] = int32(j)
	}
	return start
}

// attnScale is the attention's score scale, as tensor.Attention takes it
// by default: 1/sqrt(head dim).
func attnScale(c *Config) float32 { return float32(1 / math.Sqrt(float64(c.HeadDim()))) }
