package nn

import (
	"github.com/golem-ml/golem/kvcache"
	"github.com/golem-ml/golem/tensor"
)

// Pass is what a transformer block's attention needs of the forward pass
// it runs in: the KV cache (if any), the attention's options (heads,
// causality, key mask, the layer's index) and RoPE's for queries and
// keys. A block hands it its new queries, keys and values (Attend) and
// the tensors no later one links back to (Temp), which a pass without
// gradients frees after the block.
type Pass struct {
	Cache       kvcache.Cache // nil: the block attends over its own keys only
	Attn        kvcache.Attention
	RoPE, RoPEK tensor.RoPEOptions
	tmp         []*tensor.Tensor
}

// Attend attends q to k and v ([B, T, H*D]), through the cache if any.
func (p *Pass) Attend(q, k, v *tensor.Tensor) *tensor.Tensor {
	if p.Cache != nil {
		return p.Cache.Attend(q, k, v, p.Attn)
	}
	return tensor.Attention(q, k, v, p.Attn.AttentionOptions)
}

// Temp records tensors of the current block that no later one links back
// to.
func (p *Pass) Temp(ts ...*tensor.Tensor) { p.tmp = append(p.tmp, ts...) }

// FreeTemps frees the recorded tensors (after a block, without gradients)
// and forgets them.
func (p *Pass) FreeTemps() {
	for _, t := range p.tmp {
		t.Free()
	}
	p.tmp = p.tmp[:0]
}

// ClearTemps forgets the recorded tensors (a pass that keeps gradients).
func (p *Pass) ClearTemps() { p.tmp = p.tmp[:0] }
