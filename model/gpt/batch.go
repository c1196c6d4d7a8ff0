package gpt

import (
	"fmt"
	"math"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/tensor"
)

// BatchCache is the KV cache of a continuously batched decode loop: a fixed
// number of slots, one sequence per slot, each holding its positions
// left-aligned (position p at column p). K[l] and V[l] are buffers
// [Slots, KVHeads, Cap, HeadDim]: head-major, so that one head's keys of
// one sequence are one contiguous run of memory that attention streams. A
// sequence that joins takes a free slot (Load copies its prefilled keys
// in), one that ends frees it, and no other sequence's keys move: nothing
// is ever re-packed. Grow makes room for more or longer sequences.
//
// On a backend with backend.HalfCache (the CPU's) the cache can hold
// float16 values (Half): half the memory and half the reading per
// step, at float16's rounding of the keys and values (about 3 significant
// digits), as llama.cpp's default cache; attention still computes in
// float32.
type BatchCache struct {
	K, V  []backend.Buffer // per layer [Slots, KVHeads, Cap, HeadDim]
	Slots int              // sequences it can hold
	Cap   int              // positions per slot
	Half  bool             // float16 values
	h, d  int              // KV heads, head dim
	be    backend.Backend
}

// NewBatchCache allocates a cache of slots sequences of up to capacity
// positions each for m, in float16 when half is set and the backend
// supports it (see BatchCache), else in float32.
func (m *Model) NewBatchCache(slots, capacity int, half bool) *BatchCache {
	be := m.Embed.Weight.Backend()
	_, ok := be.(backend.HalfCache)
	c := &BatchCache{Slots: slots, Half: half && ok, h: m.Config.KVHeads, d: m.Config.HeadDim(), be: be}
	c.alloc(m.Config.Layers, capacity)
	return c
}

func (c *BatchCache) alloc(layers, capacity int) {
	c.K, c.V, c.Cap = make([]backend.Buffer, layers), make([]backend.Buffer, layers), capacity
	n := c.Slots * c.h * capacity * c.d
	for l := range layers {
		if c.Half {
			hb := c.be.(backend.HalfCache)
			c.K[l], c.V[l] = hb.AllocHalf(n), hb.AllocHalf(n)
		} else {
			c.K[l], c.V[l] = c.be.Alloc(n, true), c.be.Alloc(n, true)
		}
	}
}

// copy2D copies rows x cols values into the cache buffer dst from src (a
// float32 buffer, or one of a cache like dst), converting to float16 for
// a half cache.
func (c *BatchCache) copy2D(dst backend.Buffer, dOff, dStride int, src backend.Buffer, sOff, sStride, rows, cols int) {
	if c.Half {
		c.be.(backend.HalfCache).CopyHalf(dst, dOff, dStride, src, sOff, sStride, rows, cols)
		return
	}
	c.be.Copy2D(dst, dOff, dStride, src, sOff, sStride, rows, cols, false)
}

// Grow makes room for slots sequences of capacity positions each (at
// least what the cache has), keeping the first used positions of every
// slot; it does nothing when the cache is that big already.
func (c *BatchCache) Grow(slots, capacity, used int) {
	slots, capacity = max(slots, c.Slots), max(capacity, c.Cap)
	if slots == c.Slots && capacity == c.Cap {
		return
	}
	oldK, oldV, oldSlots, oldCap := c.K, c.V, c.Slots, c.Cap
	c.Slots = slots
	c.alloc(len(oldK), capacity)
	used = min(used, oldCap)
	for l := range oldK {
		if used > 0 {
			c.copy2D(c.K[l], 0, capacity*c.d, oldK[l], 0, oldCap*c.d, oldSlots*c.h, used*c.d)
			c.copy2D(c.V[l], 0, capacity*c.d, oldV[l], 0, oldCap*c.d, oldSlots*c.h, used*c.d)
		}
		c.be.Free(oldK[l])
		c.be.Free(oldV[l])
	}
}

// Load copies prefilled sequences into their slots: row b of the prefill
// cache pc (a left-padded batch: the row's positions are its last lens[b]
// columns) goes to slot slots[b]; a negative slot skips the row. With the
// backend's StoreRows it is two calls per layer for the whole batch.
func (c *BatchCache) Load(pc *Cache, slots []int32, lens []int) {
	if len(slots) != len(lens) || len(pc.K) != len(c.K) {
		panic(fmt.Sprintf("gpt: batch cache: %d slots and %d lengths, a prefill of %d layers into %d", len(slots), len(lens), len(pc.K), len(c.K)))
	}
	L := pc.Len
	for b, s := range slots {
		if s >= 0 && (int(s) >= c.Slots || lens[b] > c.Cap || lens[b] > L) {
			panic(fmt.Sprintf("gpt: batch cache: %d positions into slot %d of %d x %d from a prefill of %d", lens[b], s, c.Slots, c.Cap, L))
		}
	}
	// One row per prefill position: its slot (-1 for padding and skipped
	// rows) and its position there.
	slot, pos := make([]int32, len(slots)*L), make([]int32, len(slots)*L)
	for b, s := range slots {
		for j := range L {
			slot[b*L+j] = -1
			if p := j - (L - lens[b]); s >= 0 && p >= 0 {
				slot[b*L+j], pos[b*L+j] = s, int32(p)
			}
		}
	}
	for l := range c.K {
		c.storeRows(c.K[l], slot, pos, pc.K[l].Buffer())
		c.storeRows(c.V[l], slot, pos, pc.V[l].Buffer())
	}
}

// storeRows writes row r of src ([rows, KVHeads*HeadDim], float32) at
// position pos[r] of slot slot[r] of the cache buffer dst, skipping rows
// of slot -1: in one call with the backend's StoreRows, else row by row.
func (c *BatchCache) storeRows(dst backend.Buffer, slot, pos []int32, src backend.Buffer) {
	if sr, ok := c.be.(backend.RowStore); ok {
		sr.StoreRows(dst, c.Cap, c.h, c.d, slot, pos, src)
		return
	}
	for r, s := range slot {
		if s >= 0 {
			off := (int(s)*c.h*c.Cap + int(pos[r])) * c.d
			c.copy2D(dst, off, c.Cap*c.d, src, r*c.h*c.d, c.d, c.h, c.d)
		}
	}
}

// Free releases the cache's memory.
func (c *BatchCache) Free() {
	for i := range c.K {
		c.be.Free(c.K[i])
		c.be.Free(c.V[i])
	}
	c.K, c.V, c.Slots, c.Cap = nil, nil, 0, 0
}

// DecodeStep runs one token for each of B sequences: ids[b] at position
// pos[b] of the sequence in slot slot[b], whose first pos[b] positions are
// cached. Its key and value are written at column pos[b] of the slot, which
// must be below c.Cap, and it attends to columns [0, pos[b]]. It returns
// the final hidden states [B, 1, C]. It keeps no gradient; call it under
// tensor.NoGrad.
func (m *Model) DecodeStep(ids, slot, pos []int32, c *BatchCache) *tensor.Tensor {
	cfg := &m.Config
	B := len(ids)
	if len(slot) != B || len(pos) != B || len(c.K) != cfg.Layers {
		panic(fmt.Sprintf("gpt: decode step: %d ids, %d slots, %d positions, a cache of %d layers", B, len(slot), len(pos), len(c.K)))
	}
	seen := make(map[int32]bool, B)
	for b, p := range pos {
		if p < 0 || int(p) >= cfg.Context || int(p) >= c.Cap {
			panic(fmt.Sprintf("gpt: decode step: position %d outside the context of %d or the cache's %d columns", p, cfg.Context, c.Cap))
		}
		if s := slot[b]; s < 0 || int(s) >= c.Slots || seen[s] {
			panic(fmt.Sprintf("gpt: decode step: slot %d of %d (each once)", s, c.Slots))
		}
		seen[slot[b]] = true
	}
	be := m.Embed.Weight.Backend()
	ra, _ := be.(backend.RowAttention)
	n := make([]int32, B)
	for b := range B {
		n[b] = pos[b] + 1
	}
	x := m.Embed.Forward(ids, B, 1)
	if m.Pos != nil {
		x = tensor.Add(x, m.Pos.Forward(pos, B, 1))
	}
	rope := tensor.RoPEOptions{Heads: cfg.Heads, Theta: cfg.RopeTheta, Pos: pos}
	ropeK := rope
	ropeK.Heads = cfg.KVHeads
	C := cfg.Hidden
	// The attention's inputs feed the backend's kernel, not a tensor op,
	// so nothing after them links back to them: they are freed by hand at
	// the end of each layer (the caller's Release of the result frees the
	// rest).
	var tmp []*tensor.Tensor
	for i, b := range m.Blocks {
		h := b.Norm1.Forward(x)
		var q, k, v *tensor.Tensor
		if b.QKV != nil {
			qkv := b.QKV.Forward(h)
			q, k, v = tensor.Slice(qkv, 2, 0, C), tensor.Slice(qkv, 2, C, 2*C), tensor.Slice(qkv, 2, 2*C, 3*C)
			tmp = append(tmp, h, qkv, q, k, v)
		} else {
			ql, kl := b.Q.Forward(h), b.K.Forward(h)
			q, k, v = tensor.RoPE(ql, rope), tensor.RoPE(kl, ropeK), b.V.Forward(h)
			tmp = append(tmp, h, ql, kl, q, k, v)
		}
		kc, vc := c.K[i], c.V[i]
		// Each row's key and value, head by head, at its position.
		c.storeRows(kc, slot, pos, k.Buffer())
		c.storeRows(vc, slot, pos, v.Buffer())
		var y *tensor.Tensor
		if ra != nil {
			y = tensor.New(be, B, 1, C)
			ra.AttentionRows(backend.Attention{B: B, T: 1, S: c.Cap, HQ: cfg.Heads, HKV: cfg.KVHeads, D: cfg.HeadDim(),
				Scale: attnScale(cfg)}, slot, n, y.Buffer(), q.Buffer(), kc, vc)
		} else {
			y = m.gatherAttention(q, c, i, slot, n)
		}
		x = tensor.Add(x, b.O.Forward(y))
		for _, t := range append(tmp, y) {
			t.Free()
		}
		tmp = tmp[:0]
		x = tensor.Add(x, b.mlp(b.Norm2.Forward(x), cfg.Activation))
	}
	return m.NormF.Forward(x)
}

// gatherAttention is DecodeStep's attention on a backend without row
// attention: the rows' keys and values are copied out of their slots into
// [B, S, KVHeads*HeadDim] (S the longest row) and attended with a key mask.
func (m *Model) gatherAttention(q *tensor.Tensor, c *BatchCache, l int, slot, n []int32) *tensor.Tensor {
	cfg := &m.Config
	be := q.Backend()
	B, S, W := len(slot), 0, c.h*c.d
	for _, v := range n {
		S = max(S, int(v))
	}
	k, v := tensor.New(be, B, S, W), tensor.New(be, B, S, W)
	mask := make([]bool, B*S)
	for b := range B {
		for h := range c.h {
			src := (int(slot[b])*c.h + h) * c.Cap * c.d
			be.Copy2D(k.Buffer(), b*S*W+h*c.d, W, c.K[l], src, c.d, int(n[b]), c.d, false)
			be.Copy2D(v.Buffer(), b*S*W+h*c.d, W, c.V[l], src, c.d, int(n[b]), c.d, false)
		}
		for j := range int(n[b]) {
			mask[b*S+j] = true
		}
	}
	// The caller frees the result with the layer's other temporaries.
	y := tensor.Attention(q, k, v, tensor.AttentionOptions{Heads: cfg.Heads, KVHeads: cfg.KVHeads, KeyMask: mask})
	k.Free()
	v.Free()
	return y
}

// attnScale is the attention's score scale, as tensor.Attention takes it
// by default: 1/sqrt(head dim).
func attnScale(c *Config) float32 { return float32(1 / math.Sqrt(float64(c.HeadDim()))) }
