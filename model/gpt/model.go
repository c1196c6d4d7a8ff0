package gpt

import (
	"fmt"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/kvcache"
	"github.com/golem-ml/golem/model/llama"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// Norm is LayerNorm (gpt2) or RMSNorm (llama, qwen2).
type Norm interface {
	Forward(x *tensor.Tensor) *tensor.Tensor
}

// Block is one transformer block of an architecture: its two residual
// sublayers, each with its own norm. The forward pass adds each to the
// residual stream (with dropout when training).
type Block interface {
	Attention(x *tensor.Tensor, p *nn.Pass) *tensor.Tensor
	MLP(x *tensor.Tensor) *tensor.Tensor
}

// Model is a decoder-only language model: an architecture's body (GPT2 or
// Llama) and an LM head, run by one forward pass.
type Model struct {
	Config Config
	Body   any           // the architecture's layers (*gpt2.Model, *llama.Model): their nn tags name the parameters
	Embed  *nn.Embedding // token embedding [V, C] (the body's)
	Pos    *nn.Embedding // gpt2: learned positions [Context, C] (the body's)
	Blocks []Block       // the body's blocks
	NormF  Norm          // the body's final norm
	Head   *nn.Linear    // nil when tied to Embed
	// CheckpointActivations recomputes each block's activations in
	// backward instead of keeping them (tensor.Checkpoint): training
	// holds one block's input per layer, for about a third more compute.
	CheckpointActivations bool

	invFreq []float32 // RoPE's scaled inverse frequencies (Config.RopeScaling); nil: theta's
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
	m := archs[c.Arch].build(&c, in)
	m.Config = c
	if c.RopeScaling != nil {
		m.invFreq = llama.InvFreq(c.RopeTheta, c.HeadDim(), c.RopeScaling)
	}
	if !c.Tied {
		m.Head = nn.NewLinear(in, c.Hidden, c.Vocab, false, 0.02)
	}
	return m, nil
}

// Params returns the parameters under their Hugging Face names (the
// body's tags, then "lm_head.weight" when the head is not tied).
func (m *Model) Params() []nn.Named {
	ps := nn.Params(m.Body)
	if m.Head != nil {
		ps = append(ps, nn.Named{Name: "lm_head.weight", Tensor: m.Head.Weight})
	}
	return ps
}

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
	Embeds  *tensor.Tensor // [B, P, C] embeddings put before the tokens' (soft prompts, image features); with no tokens (T = 0), the whole input
	Train   bool           // apply dropout
	Seed    uint64         // dropout seed for this step
	// Scope owns the pass's tensors (see tensor.Scope): the caller's step
	// closes it. Nil leaves them to the garbage collector.
	Scope *tensor.Scope
}

// Forward runs the model over ids (B rows of T tokens) and returns the final
// hidden states [B, T', C] after the last norm (T' = T plus the length of
// Options.Embeds). It is the one forward pass of training, prefill and
// decoding: with a cache, each layer attends through it (a growable cache
// for a prompt and the tokens after it, a batch cache's rows for one step
// of many sequences). The result and everything computed on the way
// belong to o.Scope.
func (m *Model) Forward(ids []int32, B, T int, o Options) *tensor.Tensor {
	c := &m.Config
	// Without gradients nothing links a block back to the one before, so
	// each block computes in a scope of its own (cur), closed when the next
	// begins: its intermediates go back to the pool for the next block to
	// reuse, rather than all layers' at the end of the caller's step (a
	// 2,000-token prefill of 8 x 512 held 0.9 GB instead of ~0.1). With
	// gradients every tensor stays in o.Scope for backward.
	noGrad := !tensor.GradEnabled()
	cur := o.Scope
	if noGrad {
		cur = o.Scope.Child()
	}
	var x *tensor.Tensor
	switch {
	case T == 0 && o.Embeds != nil: // the embeddings alone (model/dalle's text and image tokens)
		x = o.Embeds
		T = x.Dim(1)
	case o.Embeds != nil:
		x = tensor.Concat(1, o.Embeds, cur.Adopt(m.Embed.Forward(ids, B, T)))
		T = x.Dim(1)
	default:
		x = cur.Adopt(m.Embed.Forward(ids, B, T))
	}
	start := 0
	if o.Cache != nil {
		start = o.Cache.Len()
	}
	if start+T > c.Context && c.LearnedPositions() {
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
	p := &nn.Pass{Cache: o.Cache,
		Attn: kvcache.Attention{AttentionOptions: tensor.AttentionOptions{Heads: c.Heads, KVHeads: c.KVHeads, Causal: true,
			KeyMask: o.KeyMask, Window: c.SlidingWindow}, Context: c.Context},
		RoPE:  tensor.RoPEOptions{Heads: c.Heads, Theta: c.RopeTheta, Start: start, Pos: o.Pos, InvFreq: m.invFreq},
		RoPEK: tensor.RoPEOptions{Heads: c.KVHeads, Theta: c.RopeTheta, Start: start, Pos: o.Pos, InvFreq: m.invFreq}}
	for i, b := range m.Blocks {
		if noGrad && i > 0 {
			next := o.Scope.Child()
			x = next.Keep(x)
			cur.Close()
			cur = next
		}
		block := func(x *tensor.Tensor) *tensor.Tensor {
			p.Attn.Layer = i
			x = tensor.Add(x, drop(b.Attention(x, p), uint64(10+2*i)))
			return tensor.Add(x, drop(b.MLP(x), uint64(11+2*i)))
		}
		if m.CheckpointActivations && !noGrad && o.Cache == nil {
			x = tensor.Checkpoint(x, block)
		} else {
			x = block(x)
		}
	}
	if noGrad {
		x = cur.Escape(x)
		cur.Close()
	}
	if o.Cache != nil {
		o.Cache.Commit(T)
	}
	return m.NormF.Forward(x)
}

// Logits maps hidden states [..., C] to vocabulary logits [..., V].
func (m *Model) Logits(h *tensor.Tensor) *tensor.Tensor {
	if m.Head != nil {
		return m.Head.Forward(h)
	}
	return tensor.Linear(h, m.Embed.Weight, nil)
}

// Loss returns the mean cross-entropy of predicting targets (B*T, with
// tensor.IgnoreIndex for positions that do not count) from ids, after
// Options.Embeds if any (a soft prompt's positions predict nothing).
func (m *Model) Loss(ids, targets []int32, B, T int, o Options) *tensor.Tensor {
	h := m.Forward(ids, B, T, o)
	if o.Embeds != nil { // the embeddings predict nothing: score the tokens' positions
		P := o.Embeds.Dim(1)
		return tensor.CrossEntropy(m.Logits(tensor.Slice(h, 1, P, P+T)), targets, nil)
	}
	switch {
	case m.Head == nil:
		return tensor.LinearCrossEntropy(h, m.Embed.Weight, targets, nil)
	case m.Head.LoRA == nil && !m.Head.InOut && m.Head.Bias == nil:
		return tensor.LinearCrossEntropy(h, m.Head.Weight, targets, nil)
	}
	return tensor.CrossEntropy(m.Logits(h), targets, nil)
}
