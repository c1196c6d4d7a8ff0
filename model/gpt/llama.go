package gpt

import (
	"math"

	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// Llama is the body of Llama and Qwen2 (Qwen2 is Llama with q/k/v biases)
// under their Hugging Face names: RoPE, RMSNorm, grouped-query attention
// and a SwiGLU MLP.
type Llama struct {
	Embed  *nn.Embedding `nn:"model.embed_tokens"`
	Blocks []*LlamaBlock `nn:"model.layers"`
	NormF  *nn.RMSNorm   `nn:"model.norm"`
}

// LlamaBlock is one Llama or Qwen2 block.
type LlamaBlock struct {
	Norm1 *nn.RMSNorm `nn:"input_layernorm"`
	Q     *nn.Linear  `nn:"self_attn.q_proj"`
	K     *nn.Linear  `nn:"self_attn.k_proj"`
	V     *nn.Linear  `nn:"self_attn.v_proj"`
	O     *nn.Linear  `nn:"self_attn.o_proj"`
	Norm2 *nn.RMSNorm `nn:"post_attention_layernorm"`
	Gate  *nn.Linear  `nn:"mlp.gate_proj"`
	Up    *nn.Linear  `nn:"mlp.up_proj"`
	Down  *nn.Linear  `nn:"mlp.down_proj"`
}

func newLlama(c *Config, in *nn.Init) *Llama {
	const std = 0.02
	resid := std / math.Sqrt(2*float64(c.Layers))
	C, kv := c.Hidden, c.KVHeads*c.HeadDim()
	l := &Llama{Embed: &nn.Embedding{Weight: in.Normal(std, c.Vocab, C)}}
	for range c.Layers {
		l.Blocks = append(l.Blocks, &LlamaBlock{
			Norm1: nn.NewRMSNorm(in, C, c.Eps),
			Q:     nn.NewLinear(in, C, C, c.Bias, std), K: nn.NewLinear(in, C, kv, c.Bias, std),
			V: nn.NewLinear(in, C, kv, c.Bias, std), O: nn.NewLinear(in, C, C, false, resid),
			Norm2: nn.NewRMSNorm(in, C, c.Eps),
			Gate:  nn.NewLinear(in, C, c.Intermediate, false, std), Up: nn.NewLinear(in, C, c.Intermediate, false, std),
			Down: nn.NewLinear(in, c.Intermediate, C, false, resid),
		})
	}
	l.NormF = nn.NewRMSNorm(in, C, c.Eps)
	return l
}

func (l *Llama) parts() (*nn.Embedding, *nn.Embedding, []Block, Norm) {
	bs := make([]Block, len(l.Blocks))
	for i, b := range l.Blocks {
		bs[i] = b
	}
	return l.Embed, nil, bs, l.NormF
}

// Attention is the block's attention sublayer on x: its norm, the q, k
// and v projections with RoPE on q and k, and the output projection.
func (b *LlamaBlock) Attention(x *tensor.Tensor, p *Pass) *tensor.Tensor {
	h := b.Norm1.Forward(x)
	ql, kl := b.Q.Forward(h), b.K.Forward(h)
	q, k, v := tensor.RoPE(ql, p.RoPE), tensor.RoPE(kl, p.RoPEK), b.V.Forward(h)
	p.Temp(h, ql, kl, q, k, v)
	y := p.Attend(q, k, v)
	p.Temp(y)
	return b.O.Forward(y)
}

// MLP is the block's SwiGLU feed-forward sublayer on x.
func (b *LlamaBlock) MLP(x *tensor.Tensor) *tensor.Tensor {
	h := b.Norm2.Forward(x)
	return b.Down.Forward(tensor.SwiGLU(b.Gate.Forward(h), b.Up.Forward(h)))
}
