// Package kvcache holds the keys and values a decoder keeps of earlier
// positions, behind one interface a model's forward pass attends through:
// Growable, the cache of one left-padded batch of sequences that grows as
// they do (generation, evaluation, a server's prefill), and Batch, the
// slotted float16/float32 cache of a continuously batched decode loop (a
// server's), whose Rows are the sequences of one step.
package kvcache

import (
	"math"

	"github.com/golem-ml/golem/tensor"
)

// Cache is what a model's forward pass attends through. Each layer hands
// its new keys and values to Attend, which stores them and returns the
// attention of the queries over every cached position; after the last
// layer, Commit counts the new positions.
type Cache interface {
	// Len is the number of positions cached before this pass: where its
	// tokens' positions start unless the caller gives them.
	Len() int
	// Attend stores the new keys and values k, v ([B, T, KVHeads*HeadDim],
	// after RoPE) of layer a.Layer and returns the attention of q
	// ([B, T, Heads*HeadDim]) over the cached and new positions.
	Attend(q, k, v *tensor.Tensor, a Attention) *tensor.Tensor
	// Commit records that the pass's T positions are cached.
	Commit(T int)
}

// Attention is one layer's attention as a model asks it of a cache.
type Attention struct {
	tensor.AttentionOptions
	Layer   int // the layer's index
	Context int // the model's context: no sequence needs more positions
}

// scale is the attention's score scale: a.Scale, or 1/sqrt(head dim) as
// tensor.Attention takes it by default.
func (a *Attention) scale(headDim int) float32 {
	if a.Scale != 0 {
		return a.Scale
	}
	return float32(1 / math.Sqrt(float64(headDim)))
}
