package gpt

import (
	"fmt"
	"math"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/kvcache"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// Norm is LayerNorm (gpt2) or RMSNorm (llama, qwen2).
type Norm interface {
	Forward(x *tensor.Tensor) *tensor.Tensor
}

// Block is one transformer block. GPT-2 uses QKV (fused c_attn), FC and
// Proj; Llama and Qwen2 use Q, K, V, Gate, Up and Down. Both use O.
type Block struct {
	Norm1, Norm2    Norm
	QKV, Q, K, V, O *nn.Linear
	FC, Proj        *nn.Linear
	Gate, Up, Down  *nn.Linear
}

// Model is a decoder-only language model.
type Model struct {
	Config Config
	Embed  *nn.Embedding // token embedding [V, C]
	Pos    *nn.Embedding // gpt2: learned positions [Context, C]
	Blocks []*Block
	NormF  Norm
	Head   *nn.Linear // nil when tied to Embed
}

// New builds a model with random weights (N(0, 0.02), residual projections
// scaled by 1/sqrt(2 layers) as GPT-2 does) from seed.
func New(be backend.Backend, c Config, seed uint64) (*Model, error) {
	return build(be, c, nn.NewInit(be, seed))
}

func build(be backend.Backend, c Config, in *nn.Init) (*Model, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	const std = 0.02
	resid := std / math.Sqrt(2*float64(c.Layers))
	C, D := c.Hidden, c.HeadDim()
	m := &Model{Config: c, Embed: &nn.Embedding{Weight: in.Normal(std, c.Vocab, C)}}
	inout := func(inF, outF int, s float64) *nn.Linear {
		l := &nn.Linear{Weight: in.Normal(s, inF, outF), InOut: true}
		if c.Bias {
			l.Bias = in.Const(0, outF)
		}
		return l
	}
	if c.Arch == "gpt2" {
		m.Pos = &nn.Embedding{Weight: in.Normal(std, c.Context, C)}
		for i := 0; i < c.Layers; i++ {
			m.Blocks = append(m.Blocks, &Block{
				Norm1: nn.NewLayerNorm(in, C, c.Bias, c.Eps), Norm2: nn.NewLayerNorm(in, C, c.Bias, c.Eps),
				QKV: inout(C, 3*C, std), O: inout(C, C, resid),
				FC: inout(C, c.Intermediate, std), Proj: inout(c.Intermediate, C, resid),
			})
		}
		m.NormF = nn.NewLayerNorm(in, C, c.Bias, c.Eps)
	} else {
		kv := c.KVHeads * D
		for i := 0; i < c.Layers; i++ {
			m.Blocks = append(m.Blocks, &Block{
				Norm1: nn.NewRMSNorm(in, C, c.Eps), Norm2: nn.NewRMSNorm(in, C, c.Eps),
				Q: nn.NewLinear(in, C, C, c.Bias, std), K: nn.NewLinear(in, C, kv, c.Bias, std),
				V: nn.NewLinear(in, C, kv, c.Bias, std), O: nn.NewLinear(in, C, C, false, resid),
				Gate: nn.NewLinear(in, C, c.Intermediate, false, std), Up: nn.NewLinear(in, C, c.Intermediate, false, std),
				Down: nn.NewLinear(in, c.Intermediate, C, false, resid),
			})
		}
		m.NormF = nn.NewRMSNorm(in, C, c.Eps)
	}
	if !c.Tied {
		m.Head = nn.NewLinear(in, C, c.Vocab, false, std)
	}
	return m, nil
}

// Params returns the parameters under their Hugging Face names.
func (m *Model) Params() []nn.Named {
	var ps []nn.Named
	add := func(prefix string, module any) {
		for _, p := range nn.Params(module) {
			ps = append(ps, nn.Named{Name: prefix + "." + p.Name, Tensor: p.Tensor})
		}
	}
	if m.Config.Arch == "gpt2" {
		add("transformer.wte", m.Embed)
		add("transformer.wpe", m.Pos)
		for i, b := range m.Blocks {
			p := fmt.Sprintf("transformer.h.%d.", i)
			add(p+"ln_1", b.Norm1)
			add(p+"attn.c_attn", b.QKV)
			add(p+"attn.c_proj", b.O)
			add(p+"ln_2", b.Norm2)
			add(p+"mlp.c_fc", b.FC)
			add(p+"mlp.c_proj", b.Proj)
		}
		add("transformer.ln_f", m.NormF)
	} else {
		add("model.embed_tokens", m.Embed)
		for i, b := range m.Blocks {
			p := fmt.Sprintf("model.layers.%d.", i)
			add(p+"input_layernorm", b.Norm1)
			add(p+"self_attn.q_proj", b.Q)
			add(p+"self_attn.k_proj", b.K)
			add(p+"self_attn.v_proj", b.V)
			add(p+"self_attn.o_proj", b.O)
			add(p+"post_attention_layernorm", b.Norm2)
			add(p+"mlp.gate_proj", b.Gate)
			add(p+"mlp.up_proj", b.Up)
			add(p+"mlp.down_proj", b.Down)
		}
		add("model.norm", m.NormF)
	}
	if m.Head != nil {
		add("lm_head", m.Head)
	}
	return ps
}

// Cache is the growable KV cache of generation (see kvcache.Growable).
type Cache = kvcache.Growable

// NewBatchCache allocates a slotted batch cache (see kvcache.Batch) of
// slots sequences of up to capacity positions each for m, in float16 when
// half is set and the backend supports it.
func (m *Model) NewBatchCache(slots, capacity int, half bool) *kvcache.Batch {
	c := &m.Config
	return kvcache.NewBatch(m.Embed.Weight.Backend(), c.Layers, c.KVHeads, c.HeadDim(), slots, capacity, half)
}

// Options are the optional inputs of Forward.
type Options struct {
	Cache   kvcache.Cache  // keys/values of earlier positions; extended in place
	Pos     []int32        // [B*T] positions (default: Cache.Len() + t)
	KeyMask []bool         // [B*S] false hides a key (left padding); S counts cached keys
	Embeds  *tensor.Tensor // [B, P, C] embeddings put before the tokens' (soft prompts, image features)
	Train   bool           // apply dropout
	Seed    uint64         // dropout seed for this step
}

// Forward runs the model over ids (B rows of T tokens) and returns the final
// hidden states [B, T', C] after the last norm (T' = T plus the length of
// Options.Embeds). It is the one forward pass of training, prefill and
// decoding: with a cache, each layer attends through it (a growable cache
// for a prompt and the tokens after it, a batch cache's rows for one step
// of many sequences).
func (m *Model) Forward(ids []int32, B, T int, o Options) *tensor.Tensor {
	c := &m.Config
	x := m.Embed.Forward(ids, B, T)
	if o.Embeds != nil {
		x = tensor.Concat(1, o.Embeds, x)
		T = x.Dim(1)
	}
	start := 0
	if o.Cache != nil {
		start = o.Cache.Len()
	}
	if start+T > c.Context && c.Arch == "gpt2" {
		panic(fmt.Sprintf("gpt: sequence of %d positions exceeds the context of %d", start+T, c.Context))
	}
	for _, p := range o.Pos {
		if p < 0 || int(p) >= c.Context {
			panic(fmt.Sprintf("gpt: position %d outside the context of %d", p, c.Context))
		}
	}
	drop := func(t *tensor.Tensor, k uint64) *tensor.Tensor {
		if !o.Train || c.Dropout == 0 {
			return t
		}
		return tensor.Dropout(t, c.Dropout, o.Seed*1000003+k)
	}
	if m.Pos != nil {
		pos := o.Pos
		if pos == nil {
			pos = make([]int32, B*T)
			for i := range pos {
				pos[i] = int32(start + i%T)
			}
		}
		x = tensor.Add(x, m.Pos.Forward(pos, B, T))
	}
	x = drop(x, 1)
	attn := kvcache.Attention{AttentionOptions: tensor.AttentionOptions{Heads: c.Heads, KVHeads: c.KVHeads, Causal: true, KeyMask: o.KeyMask}, Context: c.Context}
	rope := tensor.RoPEOptions{Heads: c.Heads, Theta: c.RopeTheta, Start: start, Pos: o.Pos}
	ropeK := rope
	ropeK.Heads = c.KVHeads
	C := c.Hidden
	noGrad := !tensor.GradEnabled()
	var tmp []*tensor.Tensor // a block's tensors no later one links back to
	var leaf *tensor.Tensor  // the last block's output, kept without its graph
	for i, b := range m.Blocks {
		h := b.Norm1.Forward(x)
		tmp = append(tmp[:0], h)
		var y *tensor.Tensor
		if b.QKV != nil && o.Cache == nil {
			// q, k and v read in place from the fused projection.
			qkv := b.QKV.Forward(h)
			y = tensor.AttentionQKV(qkv, attn.AttentionOptions)
			tmp = append(tmp, qkv)
		} else {
			var q, k, v *tensor.Tensor
			if b.QKV != nil {
				qkv := b.QKV.Forward(h)
				q, k, v = tensor.Slice(qkv, 2, 0, C), tensor.Slice(qkv, 2, C, 2*C), tensor.Slice(qkv, 2, 2*C, 3*C)
				tmp = append(tmp, qkv, q, k, v)
			} else {
				ql, kl := b.Q.Forward(h), b.K.Forward(h)
				q, k, v = tensor.RoPE(ql, rope), tensor.RoPE(kl, ropeK), b.V.Forward(h)
				tmp = append(tmp, ql, kl, q, k, v)
			}
			if o.Cache != nil {
				attn.Layer = i
				y = o.Cache.Attend(q, k, v, attn)
			} else {
				y = tensor.Attention(q, k, v, attn.AttentionOptions)
			}
		}
		tmp = append(tmp, y)
		a := b.O.Forward(y)
		x = tensor.Add(x, drop(a, uint64(10+2*i)))
		f := b.mlp(b.Norm2.Forward(x), c.Activation)
		x = tensor.Add(x, drop(f, uint64(11+2*i)))
		if noGrad && o.Embeds == nil {
			// Nothing keeps a gradient: the block's intermediates go
			// back to the pool now, for the next block to reuse, rather
			// than all layers' at the caller's Release (a 2,000-token
			// prefill of 8 x 512 held 0.9 GB instead of ~0.1).
			// x is kept as a leaf (Release stops at leaves), so the
			// previous block's is freed by hand.
			nx := x.Keep()
			tensor.Release(x)
			if leaf != nil {
				leaf.Free()
			}
			x, leaf = nx, nx
		}
		if noGrad {
			// What a cache copied or attended to outside the graph (its
			// keys and values, a kernel's output) no Release reaches.
			for _, t := range tmp {
				t.Free()
			}
		}
	}
	if o.Cache != nil {
		o.Cache.Commit(T)
	}
	out := m.NormF.Forward(x)
	if leaf != nil {
		leaf.Free()
	}
	return out
}

// mlp is a block's feed-forward part on its normalised input h: the GELU
// MLP of GPT-2, or the SwiGLU of Llama and Qwen2.
func (b *Block) mlp(h *tensor.Tensor, activation string) *tensor.Tensor {
	if b.FC == nil {
		return b.Down.Forward(tensor.SwiGLU(b.Gate.Forward(h), b.Up.Forward(h)))
	}
	f := b.FC.Forward(h)
	if activation == "gelu" {
		f = tensor.GELU(f)
	} else {
		f = tensor.GELUTanh(f)
	}
	return b.Proj.Forward(f)
}

// Logits maps hidden states [..., C] to vocabulary logits [..., V].
func (m *Model) Logits(h *tensor.Tensor) *tensor.Tensor {
	if m.Head != nil {
		return m.Head.Forward(h)
	}
	return tensor.Linear(h, m.Embed.Weight, nil)
}

// Loss returns the mean cross-entropy of predicting targets (B*T, with
// tensor.IgnoreIndex for positions that do not count) from ids.
func (m *Model) Loss(ids, targets []int32, B, T int, o Options) *tensor.Tensor {
	h := m.Forward(ids, B, T, o)
	switch {
	case m.Head == nil:
		return tensor.LinearCrossEntropy(h, m.Embed.Weight, targets, nil)
	case m.Head.LoRA == nil && !m.Head.InOut && m.Head.Bias == nil:
		return tensor.LinearCrossEntropy(h, m.Head.Weight, targets, nil)
	}
	return tensor.CrossEntropy(m.Logits(h), targets, nil)
}
