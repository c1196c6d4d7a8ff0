package kvcache

import (
	"fmt"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/tensor"
)

// Batch is the KV cache of a continuously batched decode loop: a fixed
// number of slots, one sequence per slot, each holding its positions
// left-aligned (position p at column p). K[l] and V[l] are buffers
// [Slots, KVHeads, Cap, HeadDim]: head-major, so that one head's keys of
// one sequence are one contiguous run of memory that attention streams. A
// sequence that joins takes a free slot (its prefill writes its keys
// there), one that ends frees it, and no other sequence's keys move: nothing
// is ever re-packed. Grow makes room for more or longer sequences. A
// decode step attends through Rows, its sequences' slots and positions.
//
// On a backend with backend.HalfCache (the CPU's) the cache can hold
// float16 values (Half): half the memory and half the reading per
// step, at float16's rounding of the keys and values (about 3 significant
// digits), as llama.cpp's default cache; attention still computes in
// float32.
type Batch struct {
	K, V  []backend.Buffer // per layer [Slots, KVHeads, Cap, HeadDim]
	Slots int              // sequences it can hold
	Cap   int              // positions per slot
	Half  bool             // float16 values
	h, d  int              // KV heads, head dim
	be    backend.Backend
	mem   *tensor.Scope // owns K and V
}

// NewBatch allocates a cache of layers layers of slots sequences of up to
// capacity positions each, with kvHeads heads of headDim values, in
// float16 when half is set and the backend supports it (see Batch), else
// in float32.
func NewBatch(be backend.Backend, layers, kvHeads, headDim, slots, capacity int, half bool) *Batch {
	_, ok := be.(backend.HalfCache)
	c := &Batch{Slots: slots, Half: half && ok, h: kvHeads, d: headDim, be: be}
	c.alloc(layers, capacity)
	return c
}

// alloc gives the cache new buffers of capacity positions per slot, owned
// by a new scope, and returns the scope that owned the old ones.
func (c *Batch) alloc(layers, capacity int) (old *tensor.Scope) {
	old, c.mem = c.mem, tensor.NewScope()
	c.K, c.V, c.Cap = make([]backend.Buffer, layers), make([]backend.Buffer, layers), capacity
	n := c.Slots * c.h * capacity * c.d
	buf := func() backend.Buffer {
		var b backend.Buffer
		if c.Half {
			b = c.be.(backend.HalfCache).AllocHalf(n)
		} else {
			b = c.be.Alloc(n, true)
		}
		return c.mem.FromBuffer(c.be, b, n).Buffer()
	}
	for l := range layers {
		c.K[l], c.V[l] = buf(), buf()
	}
	return old
}

// copy2D copies rows x cols values into the cache buffer dst from src (a
// float32 buffer, or one of a cache like dst), converting to float16 for
// a half cache.
func (c *Batch) copy2D(dst backend.Buffer, dOff, dStride int, src backend.Buffer, sOff, sStride, rows, cols int) {
	if c.Half {
		c.be.(backend.HalfCache).CopyHalf(dst, dOff, dStride, src, sOff, sStride, rows, cols)
		return
	}
	c.be.Copy2D(dst, dOff, dStride, src, sOff, sStride, rows, cols, false)
}

// Grow makes room for slots sequences of capacity positions each (at
// least what the cache has), keeping the first used positions of every
// slot; it does nothing when the cache is that big already.
func (c *Batch) Grow(slots, capacity, used int) {
	slots, capacity = max(slots, c.Slots), max(capacity, c.Cap)
	if slots == c.Slots && capacity == c.Cap {
		return
	}
	oldK, oldV, oldSlots, oldCap := c.K, c.V, c.Slots, c.Cap
	c.Slots = slots
	old := c.alloc(len(oldK), capacity)
	defer old.Close()
	used = min(used, oldCap)
	for l := range oldK {
		if used > 0 {
			c.copy2D(c.K[l], 0, capacity*c.d, oldK[l], 0, oldCap*c.d, oldSlots*c.h, used*c.d)
			c.copy2D(c.V[l], 0, capacity*c.d, oldV[l], 0, oldCap*c.d, oldSlots*c.h, used*c.d)
		}
	}
}

// storeRows writes row r of src ([rows, KVHeads*HeadDim], float32) at
// position pos[r] of slot slot[r] of the cache buffer dst, skipping rows
// of slot -1: in one call with the backend's StoreRows, else row by row.
func (c *Batch) storeRows(dst backend.Buffer, slot, pos []int32, src backend.Buffer) {
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

// Close gives the cache's memory back to the backend.
func (c *Batch) Close() {
	c.mem.Close()
	c.K, c.V, c.Slots, c.Cap, c.mem = nil, nil, 0, 0, nil
}

// Prefill returns the cache of a prefill straight into the batch: row b
// of the pass goes to the empty slot slots[b] (a negative slot keeps
// nothing of the row). The columns the pass's key mask keeps (all, with
// none: a left-padded batch hides its padding) are the row's positions
// 0, 1, ... in order. It attends each row to the pass's own keys, all
// the row has.
func (c *Batch) Prefill(slots []int32) *Rows {
	c.checkSlots(slots, true)
	return &Rows{c: c, rows: slots}
}

// Rows returns the cache of one decode step: one token for each of B
// sequences, row b at position pos[b] of the sequence in slot slot[b],
// whose first pos[b] positions are cached. Its key and value are written
// at column pos[b] of the slot, which must be below Cap, and it attends
// to columns [0, pos[b]].
func (c *Batch) Rows(slot, pos []int32) *Rows {
	if len(pos) != len(slot) {
		panic(fmt.Sprintf("kvcache: batch: %d slots and %d positions", len(slot), len(pos)))
	}
	c.checkSlots(slot, false)
	n := make([]int32, len(pos))
	for b, p := range pos {
		if p < 0 || int(p) >= c.Cap {
			panic(fmt.Sprintf("kvcache: batch: position %d outside the cache's %d columns", p, c.Cap))
		}
		n[b] = p + 1
	}
	return &Rows{c: c, rows: slot, n: n, slot: slot, pos: pos}
}

// checkSlots panics unless each slot is a distinct one of the cache, or
// negative where skip allows.
func (c *Batch) checkSlots(slots []int32, skip bool) {
	seen := make(map[int32]bool, len(slots))
	for _, s := range slots {
		if s < 0 && skip {
			continue
		}
		if s < 0 || int(s) >= c.Slots || seen[s] {
			panic(fmt.Sprintf("kvcache: batch: slot %d of %d (each once)", s, c.Slots))
		}
		seen[s] = true
	}
}

// Rows is one forward pass's view of a Batch: a prefill's (Batch.Prefill)
// or a decode step's (Batch.Rows). Its Len is 0, as the pass is given its
// rows' positions; the caller keeps each sequence's length. It keeps no
// gradient.
type Rows struct {
	c         *Batch
	rows      []int32 // each row's slot (negative: kept nowhere)
	n         []int32 // a decode step's: the columns each row attends to (nil in a prefill)
	slot, pos []int32 // per new position: its slot (-1: none) and position there
}

// Len is 0: a pass's positions are given with its rows.
func (r *Rows) Len() int { return 0 }

// Commit does nothing: the caller keeps each sequence's length.
func (r *Rows) Commit(int) {}

// Attend writes each new key and value, head by head, at its position of
// its slot (one StoreRows per buffer for the whole pass). A prefill
// attends to its own keys; a decode step attends each row's query to its
// slot's first pos+1 columns, with the backend's row attention, else by
// gathering the rows' keys.
func (r *Rows) Attend(q, k, v *tensor.Tensor, a Attention) *tensor.Tensor {
	c := r.c
	B, T := k.Dim(0), k.Dim(1)
	if B != len(r.rows) || (r.n != nil && T != 1) || a.Layer >= len(c.K) {
		panic(fmt.Sprintf("kvcache: batch: keys %v for %d rows, layer %d of %d", k.Shape(), len(r.rows), a.Layer, len(c.K)))
	}
	if r.slot == nil { // a prefill: each row's columns the key mask keeps, in order
		r.slot, r.pos = make([]int32, B*T), make([]int32, B*T)
		for b, s := range r.rows {
			p := 0
			for j := range T {
				r.slot[b*T+j] = -1
				if s >= 0 && (a.KeyMask == nil || a.KeyMask[b*T+j]) {
					if p >= c.Cap {
						panic(fmt.Sprintf("kvcache: batch: a prefill of more than %d positions into slots of %d", p, c.Cap))
					}
					r.slot[b*T+j], r.pos[b*T+j] = s, int32(p)
					p++
				}
			}
		}
	}
	kc, vc := c.K[a.Layer], c.V[a.Layer]
	c.storeRows(kc, r.slot, r.pos, k.Buffer())
	c.storeRows(vc, r.slot, r.pos, v.Buffer())
	if r.n == nil {
		return tensor.Attention(q, k, v, a.AttentionOptions)
	}
	be := q.Backend()
	if ra, ok := be.(backend.RowAttention); ok {
		y := q.Scope().New(be, B, 1, q.Dim(2))
		ra.AttentionRows(backend.Attention{B: B, T: 1, S: c.Cap, HQ: a.Heads, HKV: a.KVHeads, D: c.d,
			Scale: a.scale(c.d), Window: a.Window}, r.rows, r.n, y.Buffer(), q.Buffer(), kc, vc)
		return y
	}
	return r.gather(q, a)
}

// gather is Attend's attention on a backend without row attention: the
// rows' keys and values are copied out of their slots into
// [B, S, KVHeads*HeadDim] (S the longest row) and attended with a key mask.
func (r *Rows) gather(q *tensor.Tensor, a Attention) *tensor.Tensor {
	c := r.c
	be := q.Backend()
	B, S, W := len(r.rows), 0, c.h*c.d
	for _, v := range r.n {
		S = max(S, int(v))
	}
	k, v := q.Scope().New(be, B, S, W), q.Scope().New(be, B, S, W)
	mask := make([]bool, B*S)
	for b := range B {
		for h := range c.h {
			src := (int(r.rows[b])*c.h + h) * c.Cap * c.d
			be.Copy2D(k.Buffer(), b*S*W+h*c.d, W, c.K[a.Layer], src, c.d, int(r.n[b]), c.d, false)
			be.Copy2D(v.Buffer(), b*S*W+h*c.d, W, c.V[a.Layer], src, c.d, int(r.n[b]), c.d, false)
		}
		for j := range int(r.n[b]) {
			// A sliding window hides all but the last a.Window positions.
			mask[b*S+j] = a.Window <= 0 || j >= int(r.n[b])-a.Window
		}
	}
	return tensor.Attention(q, k, v, tensor.AttentionOptions{Heads: a.Heads, KVHeads: a.KVHeads, KeyMask: mask})
}
