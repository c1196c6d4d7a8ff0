// Package llama is Llama (attention_bias: q/k/v/o biases), and Qwen2 and
// Mistral as its options (q/k/v biases; a sliding window): RoPE (with
// Llama 3's scaling, InvFreq), RMSNorm, grouped-query attention and a
// SwiGLU MLP, as layers whose nn tags are their Hugging Face checkpoint
// names.
package llama

import (
	"math"

	"github.com/golem-ml/golem/model/config"

	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// Options are Llama's sizes and choices (config.json's hidden_size,
// num_hidden_layers...).
type Options struct {
	Vocab, Hidden, Layers, Intermediate int
	KVWidth                             int // key/value heads x head size
	Eps                                 float32
	Bias                                bool // q/k/v biases (Qwen2, or Llama's attention_bias)
	OutBias                             bool // an o_proj bias (Llama's attention_bias: OutputBias)
}

// OutputBias reports whether arch's attention output projection (o_proj)
// has a bias when its config has biases: transformers' LlamaAttention
// gives all four projections one under attention_bias, Qwen2Attention
// only q, k and v; Mistral has none.
func OutputBias(arch string, bias bool) bool { return bias && arch == "llama" }

// Model is Llama's layers (the LM head, tied or not, is the decoder's).
type Model struct {
	Embed  *nn.Embedding `nn:"model.embed_tokens"`
	Blocks []*Block      `nn:"model.layers"`
	NormF  *nn.RMSNorm   `nn:"model.norm"`
}

// Block is one Llama or Qwen2 block.
type Block struct {
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

// New builds Llama's layers with GPT-2's initialisation: N(0, 0.02),
// residual projections scaled by 1/sqrt(2 layers).
func New(in *nn.Init, c Options) *Model {
	const std = 0.02
	resid := std / math.Sqrt(2*float64(c.Layers))
	C, kv := c.Hidden, c.KVWidth
	l := &Model{Embed: &nn.Embedding{Weight: in.Normal(std, c.Vocab, C)}}
	for range c.Layers {
		l.Blocks = append(l.Blocks, &Block{
			Norm1: nn.NewRMSNorm(in, C, c.Eps),
			Q:     nn.NewLinear(in, C, C, c.Bias, std), K: nn.NewLinear(in, C, kv, c.Bias, std),
			V: nn.NewLinear(in, C, kv, c.Bias, std), O: nn.NewLinear(in, C, C, c.OutBias, resid),
			Norm2: nn.NewRMSNorm(in, C, c.Eps),
			Gate:  nn.NewLinear(in, C, c.Intermediate, false, std), Up: nn.NewLinear(in, C, c.Intermediate, false, std),
			Down: nn.NewLinear(in, c.Intermediate, C, false, resid),
		})
	}
	l.NormF = nn.NewRMSNorm(in, C, c.Eps)
	return l
}

// Attention is the block's attention sublayer on x: its norm, the q, k
// and v projections with RoPE on q and k, and the output projection.
func (b *Block) Attention(x *tensor.Tensor, p *nn.Pass) *tensor.Tensor {
	h := b.Norm1.Forward(x)
	ql, kl := b.Q.Forward(h), b.K.Forward(h)
	q, k, v := tensor.RoPE(ql, p.RoPE), tensor.RoPE(kl, p.RoPEK), b.V.Forward(h)
	y := p.Attend(q, k, v)
	return b.O.Forward(y)
}

// MLP is the block's SwiGLU feed-forward sublayer on x.
func (b *Block) MLP(x *tensor.Tensor) *tensor.Tensor {
	h := b.Norm2.Forward(x)
	return b.Down.Forward(tensor.SwiGLU(b.Gate.Forward(h), b.Up.Forward(h)))
}

// What a decoder needs to know of Llama's checkpoints (as gpt2's): the
// blocks' tensor name prefix, tensors whose shapes must agree with the
// config (KVHeads: key/value heads x head size), PEFT's default LoRA
// targets, and the Hugging Face class names of Llama and Qwen2.
const LayerPrefix = "model.layers."

var (
	Shapes = [][]string{
		{"model.embed_tokens.weight", "Vocab", "Hidden"},
		{"model.layers.0.self_attn.k_proj.weight", "KVHeads", "Hidden"},
		{"model.layers.0.mlp.gate_proj.weight", "Intermediate", "Hidden"},
	}
	LoRATargets            = []string{"q_proj", "v_proj"}
	CausalLM               = map[string]string{"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "mistral": "MistralForCausalLM"}
	SequenceClassification = map[string]string{"llama": "LlamaForSequenceClassification", "qwen2": "Qwen2ForSequenceClassification", "mistral": "MistralForSequenceClassification"}
)

// RopeScaling is Llama 3.1's RoPE scaling (model/config.RopeScaling).
type RopeScaling = config.RopeScaling

// InvFreq returns RoPE's d/2 inverse frequencies theta^(-2i/d), scaled by
// s when it is not nil as transformers' _compute_llama3_parameters does
// (in float32, as torch computes it): wavelengths 2 pi / f shorter than
// OriginalContext / HighFreqFactor are kept, those longer than
// OriginalContext / LowFreqFactor divided by Factor, and those between
// blended, (1 - a) f / Factor + a f with a = (OriginalContext / wavelength
// - LowFreqFactor) / (HighFreqFactor - LowFreqFactor).
func InvFreq(theta float64, d int, s *RopeScaling) []float32 {
	inv := make([]float32, d/2)
	for i := range inv {
		inv[i] = float32(1 / math.Pow(theta, float64(2*i)/float64(d)))
	}
	if s == nil {
		return inv
	}
	old := float64(s.OriginalContext)
	lowWavelen, highWavelen := old/s.LowFreqFactor, old/s.HighFreqFactor
	factor := float32(s.Factor)
	for i, f := range inv {
		wavelen := float32(2*math.Pi) / f
		switch {
		case float64(wavelen) < highWavelen:
		case float64(wavelen) > lowWavelen:
			inv[i] = f / factor
		default:
			a := (float32(old)/wavelen - float32(s.LowFreqFactor)) / float32(s.HighFreqFactor-s.LowFreqFactor)
			inv[i] = (1-a)*f/factor + a*f
		}
	}
	return inv
}
