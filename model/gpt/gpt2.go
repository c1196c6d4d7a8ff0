package gpt

import (
	"math"

	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// GPT2 is GPT-2's body under its Hugging Face names: learned positions,
// LayerNorm, the fused c_attn projection and a GELU MLP, Conv1D ([in, out])
// weights.
type GPT2 struct {
	Embed  *nn.Embedding `nn:"transformer.wte"`
	Pos    *nn.Embedding `nn:"transformer.wpe"`
	Blocks []*GPT2Block  `nn:"transformer.h"`
	NormF  *nn.LayerNorm `nn:"transformer.ln_f"`
}

// GPT2Block is one GPT-2 block.
type GPT2Block struct {
	Norm1 *nn.LayerNorm `nn:"ln_1"`
	QKV   *nn.Linear    `nn:"attn.c_attn"`
	O     *nn.Linear    `nn:"attn.c_proj"`
	Norm2 *nn.LayerNorm `nn:"ln_2"`
	FC    *nn.Linear    `nn:"mlp.c_fc"`
	Proj  *nn.Linear    `nn:"mlp.c_proj"`
	Exact bool          // exact GELU ("gelu"), else its tanh form
}

func newGPT2(c *Config, in *nn.Init) *GPT2 {
	const std = 0.02
	resid := std / math.Sqrt(2*float64(c.Layers))
	C := c.Hidden
	conv := func(inF, outF int, s float64) *nn.Linear {
		l := &nn.Linear{Weight: in.Normal(s, inF, outF), InOut: true}
		if c.Bias {
			l.Bias = in.Const(0, outF)
		}
		return l
	}
	g := &GPT2{Embed: &nn.Embedding{Weight: in.Normal(std, c.Vocab, C)}, Pos: &nn.Embedding{Weight: in.Normal(std, c.Context, C)}}
	for range c.Layers {
		g.Blocks = append(g.Blocks, &GPT2Block{
			Norm1: nn.NewLayerNorm(in, C, c.Bias, c.Eps), QKV: conv(C, 3*C, std), O: conv(C, C, resid),
			Norm2: nn.NewLayerNorm(in, C, c.Bias, c.Eps), FC: conv(C, c.Intermediate, std), Proj: conv(c.Intermediate, C, resid),
			Exact: c.Activation == "gelu",
		})
	}
	g.NormF = nn.NewLayerNorm(in, C, c.Bias, c.Eps)
	return g
}

func (g *GPT2) parts() (*nn.Embedding, *nn.Embedding, []Block, Norm) {
	bs := make([]Block, len(g.Blocks))
	for i, b := range g.Blocks {
		bs[i] = b
	}
	return g.Embed, g.Pos, bs, g.NormF
}

// Attention is the block's attention sublayer on x (its norm, fused
// projection and output projection). Without a cache q, k and v are read
// in place from the fused projection.
func (b *GPT2Block) Attention(x *tensor.Tensor, p *Pass) *tensor.Tensor {
	h := b.Norm1.Forward(x)
	qkv := b.QKV.Forward(h)
	p.Temp(h, qkv)
	var y *tensor.Tensor
	if p.Cache == nil {
		y = tensor.AttentionQKV(qkv, p.Attn.AttentionOptions)
	} else {
		C := qkv.Dim(2) / 3
		q, k, v := tensor.Slice(qkv, 2, 0, C), tensor.Slice(qkv, 2, C, 2*C), tensor.Slice(qkv, 2, 2*C, 3*C)
		p.Temp(q, k, v)
		y = p.Attend(q, k, v)
	}
	p.Temp(y)
	return b.O.Forward(y)
}

// MLP is the block's feed-forward sublayer on x: GELU between c_fc and
// c_proj.
func (b *GPT2Block) MLP(x *tensor.Tensor) *tensor.Tensor {
	f := b.FC.Forward(b.Norm2.Forward(x))
	if b.Exact {
		f = tensor.GELU(f)
	} else {
		f = tensor.GELUTanh(f)
	}
	return b.Proj.Forward(f)
}
