package nn

import (
	"github.com/golem-ml/golem/kvcache"
	"github.com/golem-ml/golem/tensor"
)

// Pass is what a transformer block's attention needs of the forward pass
// it runs in: the KV cache (if any), the attention's options (heads,
// causality, key mask, the layer's index) and RoPE's for queries and
// keys. A block hands it its new queries, keys and values (Attend). The
// block's tensors belong to the scope of its input (see tensor.Scope): a
// block frees nothing itself.
type Pass struct {
	Cache       kvcache.Cache // nil: the block attends over its own keys only
	Attn        kvcache.Attention
	RoPE, RoPEK tensor.RoPEOptions
}

// Attend attends q to k and v ([B, T, H*D]), through the cache if any.
func (p *Pass) Attend(q, k, v *tensor.Tensor) *tensor.Tensor {
	if p.Cache != nil {
		return p.Cache.Attend(q, k, v, p.Attn)
	}
	return tensor.Attention(q, k, v, p.Attn.AttentionOptions)
}
