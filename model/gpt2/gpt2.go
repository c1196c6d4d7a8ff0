// Package gpt2 is GPT-2: learned positions, LayerNorm, the fused c_attn
// projection and a GELU MLP, with Conv1D ([in, out]) weights, as layers
// whose nn tags are its Hugging Face checkpoint names.
package gpt2

import (
	"math"

	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// Options are GPT-2's sizes and choices (config.json's n_embd, n_layer...).
type Options struct {
	Vocab, Context, Hidden, Layers, Intermediate int
	Eps                                          float32
	Bias                                         bool // biases in linear layers and LayerNorm
	Exact                                        bool // exact GELU ("gelu"), else its tanh form
}

// Model is GPT-2's layers (the LM head, tied or not, is the decoder's).
type Model struct {
	Embed  *nn.Embedding `nn:"transformer.wte"`
	Pos    *nn.Embedding `nn:"transformer.wpe"`
	Blocks []*Block      `nn:"transformer.h"`
	NormF  *nn.LayerNorm `nn:"transformer.ln_f"`
}

// Block is one GPT-2 block.
type Block struct {
	Norm1 *nn.LayerNorm `nn:"ln_1"`
	QKV   *nn.Linear    `nn:"attn.c_attn"`
	O     *nn.Linear    `nn:"attn.c_proj"`
	Norm2 *nn.LayerNorm `nn:"ln_2"`
	FC    *nn.Linear    `nn:"mlp.c_fc"`
	Proj  *nn.Linear    `nn:"mlp.c_proj"`
	Exact bool          // exact GELU ("gelu"), else its tanh form
}

// New builds GPT-2's layers with GPT-2's initialisation: N(0, 0.02),
// residual projections scaled by 1/sqrt(2 layers).
func New(in *nn.Init, c Options) *Model {
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
	g := &Model{Embed: &nn.Embedding{Weight: in.Normal(std, c.Vocab, C)}, Pos: &nn.Embedding{Weight: in.Normal(std, c.Context, C)}}
	for range c.Layers {
		g.Blocks = append(g.Blocks, &Block{
			Norm1: nn.NewLayerNorm(in, C, c.Bias, c.Eps), QKV: conv(C, 3*C, std), O: conv(C, C, resid),
			Norm2: nn.NewLayerNorm(in, C, c.Bias, c.Eps), FC: conv(C, c.Intermediate, std), Proj: conv(c.Intermediate, C, resid),
			Exact: c.Exact,
		})
	}
	g.NormF = nn.NewLayerNorm(in, C, c.Bias, c.Eps)
	return g
}

// Attention is the block's attention sublayer on x (its norm, fused
// projection and output projection). Without a cache q, k and v are read
// in place from the fused projection.
func (b *Block) Attention(x *tensor.Tensor, p *nn.Pass) *tensor.Tensor {
	h := b.Norm1.Forward(x)
	qkv := b.QKV.Forward(h)
	var y *tensor.Tensor
	if p.Cache == nil {
		y = tensor.AttentionQKV(qkv, p.Attn.AttentionOptions)
	} else {
		C := qkv.Dim(2) / 3
		q, k, v := tensor.Slice(qkv, 2, 0, C), tensor.Slice(qkv, 2, C, 2*C), tensor.Slice(qkv, 2, 2*C, 3*C)
		y = p.Attend(q, k, v)
	}
	return b.O.Forward(y)
}

// MLP is the block's feed-forward sublayer on x: GELU between c_fc and
// c_proj.
func (b *Block) MLP(x *tensor.Tensor) *tensor.Tensor {
	f := b.FC.Forward(b.Norm2.Forward(x))
	if b.Exact {
		f = tensor.GELU(f)
	} else {
		f = tensor.GELUTanh(f)
	}
	return b.Proj.Forward(f)
}

// What a decoder needs to know of GPT-2's checkpoints: the blocks' tensor
// names start with LayerPrefix and the block's index; Shapes lists tensors
// whose shapes must agree with the config (by the decoder's Config field
// names: Vocab, Hidden, Context, Intermediate); LoRATargets are PEFT's
// default target modules; the Hugging Face class names; and FanInFanOut,
// the Conv1D layout PEFT records for its adapters.
const (
	LayerPrefix            = "transformer.h."
	CausalLM               = "GPT2LMHeadModel"
	SequenceClassification = "GPT2ForSequenceClassification"
	FanInFanOut            = true
)

var (
	Shapes = [][]string{
		{"transformer.wte.weight", "Vocab", "Hidden"},
		{"transformer.wpe.weight", "Context", "Hidden"},
		{"transformer.h.0.mlp.c_fc.weight", "Hidden", "Intermediate"},
	}
	LoRATargets = []string{"c_attn"}
)
