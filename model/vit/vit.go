// Package vit is the Vision Transformer: images cut into patches, each
// patch a token (a linear map of its pixels), a class token before them,
// learned positions, pre-LayerNorm transformer blocks attending over all
// tokens, and a final LayerNorm. Its layers are tagged structs whose nn
// tags are the Hugging Face checkpoint names of three layouts:
// transformers' ViTModel (modeling_vit.py), ViTMAEForPreTraining
// (modeling_vit_mae.py: the encoder over the visible patches and its
// decoder) and CLIP's vision tower (modeling_clip.py's CLIPVisionModel,
// also the vision_model of a CLIPModel). Load and Save read and write
// their model folders.
package vit

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/kvcache"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// Block is one pre-LN transformer block: its two residual sublayers, each
// with its own norm (as model/gpt's blocks).
type Block interface {
	Attention(x *tensor.Tensor, p *nn.Pass) *tensor.Tensor
	MLP(x *tensor.Tensor) *tensor.Tensor
}

// Layer is one block of ViTModel and ViTMAE (transformers' ViTLayer).
type Layer struct {
	Norm1 *nn.LayerNorm `nn:"layernorm_before"`
	Q     *nn.Linear    `nn:"attention.attention.query"`
	K     *nn.Linear    `nn:"attention.attention.key"`
	V     *nn.Linear    `nn:"attention.attention.value"`
	O     *nn.Linear    `nn:"attention.output.dense"`
	Norm2 *nn.LayerNorm `nn:"layernorm_after"`
	FC    *nn.Linear    `nn:"intermediate.dense"`
	Proj  *nn.Linear    `nn:"output.dense"`
	Act   Activation
}

// CLIPLayer is one block of CLIP's vision and text towers (transformers'
// CLIPEncoderLayer).
type CLIPLayer struct {
	Norm1 *nn.LayerNorm `nn:"layer_norm1"`
	Q     *nn.Linear    `nn:"self_attn.q_proj"`
	K     *nn.Linear    `nn:"self_attn.k_proj"`
	V     *nn.Linear    `nn:"self_attn.v_proj"`
	O     *nn.Linear    `nn:"self_attn.out_proj"`
	Norm2 *nn.LayerNorm `nn:"layer_norm2"`
	FC    *nn.Linear    `nn:"mlp.fc1"`
	Proj  *nn.Linear    `nn:"mlp.fc2"`
	Act   Activation
}

// Attention is the block's attention sublayer on x.
func (b *Layer) Attention(x *tensor.Tensor, p *nn.Pass) *tensor.Tensor {
	return attention(x, p, b.Norm1, b.Q, b.K, b.V, b.O)
}

// MLP is the block's feed-forward sublayer on x.
func (b *Layer) MLP(x *tensor.Tensor) *tensor.Tensor { return mlp(x, b.Norm2, b.FC, b.Proj, b.Act) }

// Attention is the block's attention sublayer on x.
func (b *CLIPLayer) Attention(x *tensor.Tensor, p *nn.Pass) *tensor.Tensor {
	return attention(x, p, b.Norm1, b.Q, b.K, b.V, b.O)
}

// MLP is the block's feed-forward sublayer on x.
func (b *CLIPLayer) MLP(x *tensor.Tensor) *tensor.Tensor { return mlp(x, b.Norm2, b.FC, b.Proj, b.Act) }

// attention is a block's attention sublayer. Without a cache or LoRA,
// q, k and v are one GEMM over their weights side by side, read in place
// by the packed attention (10% less CPU time than three projections for
// vit-mnist's blocks, forward and backward).
func attention(x *tensor.Tensor, p *nn.Pass, norm *nn.LayerNorm, q, k, v, o *nn.Linear) *tensor.Tensor {
	h := norm.Forward(x)
	plain := func(l *nn.Linear) bool { return l.LoRA == nil && !l.InOut && (l.Bias == nil) == (q.Bias == nil) }
	if p.Cache == nil && plain(q) && plain(k) && plain(v) {
		w := tensor.Concat(0, q.Weight, k.Weight, v.Weight)
		var b *tensor.Tensor
		if q.Bias != nil {
			b = tensor.Concat(0, q.Bias, k.Bias, v.Bias)
		}
		return o.Forward(tensor.AttentionQKV(tensor.Linear(h, w, b), p.Attn.AttentionOptions))
	}
	return o.Forward(p.Attend(q.Forward(h), k.Forward(h), v.Forward(h)))
}

func mlp(x *tensor.Tensor, norm *nn.LayerNorm, fc, proj *nn.Linear, act Activation) *tensor.Tensor {
	return proj.Forward(act(fc.Forward(norm.Forward(x))))
}

// Activation is an MLP's nonlinearity.
type Activation func(*tensor.Tensor) *tensor.Tensor

// QuickGELU is CLIP's x * sigmoid(1.702 x).
func QuickGELU(x *tensor.Tensor) *tensor.Tensor {
	return tensor.Mul(x, tensor.Sigmoid(tensor.Scale(x, 1.702)))
}

// ActivationByName returns the function of config.json's hidden_act.
func ActivationByName(name string) (Activation, error) {
	switch name {
	case "gelu":
		return tensor.GELU, nil
	case "gelu_new", "gelu_pytorch_tanh":
		return tensor.GELUTanh, nil
	case "quick_gelu":
		return QuickGELU, nil
	}
	return nil, fmt.Errorf("vit: \"hidden_act\" %q not supported (want gelu, gelu_new, gelu_pytorch_tanh or quick_gelu)", name)
}

// Encode runs blocks over x [B, T, C] with heads attention heads, every
// token attending to all (or, causal, to those before it and itself:
// CLIP's text tower), and returns the last block's output, which joins x's
// scope. Without gradients, each block computes in a scope of its own (a
// child of x's), closed when the next block ends, so an evaluation holds
// one block's intermediates, not every block's (as model/gpt's Forward
// does); x itself is left alone.
func Encode(x *tensor.Tensor, blocks []Block, heads int, causal bool) *tensor.Tensor {
	p := &nn.Pass{Attn: kvcache.Attention{AttentionOptions: tensor.AttentionOptions{Heads: heads, Causal: causal}}}
	block := func(i int, x *tensor.Tensor) *tensor.Tensor {
		p.Attn.Layer = i
		y := tensor.Add(x, blocks[i].Attention(x, p))
		return tensor.Add(y, blocks[i].MLP(y))
	}
	if tensor.GradEnabled() || len(blocks) == 0 {
		for i := range blocks {
			x = block(i, x)
		}
		return x
	}
	s := x.Scope()
	cur := s.Child()
	x = x.Detach() // a leaf: the first block's results have no scope until cur adopts them
	for i := range blocks {
		if i > 0 {
			next := s.Child()
			x = next.Keep(x) // the previous block's output, without its graph
			cur.Close()
			cur = next
		}
		x = cur.Adopt(block(i, x))
	}
	out := s.Keep(x)
	cur.Close()
	return out
}

// ViTModel is transformers' ViTModel: its embeddings, blocks, final
// LayerNorm and optional pooler.
type ViTModel struct {
	Embeddings *Embeddings   `nn:"embeddings"`
	Layers     []*Layer      `nn:"encoder.layer"`
	Norm       *nn.LayerNorm `nn:"layernorm"`
	Pooler     *nn.Linear    `nn:"pooler.dense"` // nil: none (ViTMAE, or ViTModel(add_pooling_layer=False))
}

// Embeddings are ViT's class token [1, 1, C], positions [1, 1+N, C]
// (ViTMAE's are fixed 2-D sin-cos, not trained) and patch projection.
type Embeddings struct {
	CLS   *tensor.Tensor `nn:"cls_token"`
	Pos   *tensor.Tensor `nn:"position_embeddings"`
	Patch *nn.Conv2d     `nn:"patch_embeddings.projection"`
}

// MAEModel is ViTMAEForPreTraining: the encoder (a ViTModel without
// pooler) and the decoder.
type MAEModel struct {
	ViT     *ViTModel `nn:"vit"`
	Decoder *Decoder  `nn:"decoder"`
}

// Decoder is ViTMAE's decoder: the encoder's tokens mapped to its width,
// a mask token for each hidden patch, fixed sin-cos positions, its blocks,
// a LayerNorm and the pixel prediction of each patch.
type Decoder struct {
	Embed     *nn.Linear     `nn:"decoder_embed"`
	MaskToken *tensor.Tensor `nn:"mask_token"`
	Pos       *tensor.Tensor `nn:"decoder_pos_embed"`
	Layers    []*Layer       `nn:"decoder_layers"`
	Norm      *nn.LayerNorm  `nn:"decoder_norm"`
	Pred      *nn.Linear     `nn:"decoder_pred"`
}

// CLIPVision is CLIPVisionModel: its vision_model.
type CLIPVision struct {
	Model *CLIPVisionTransformer `nn:"vision_model"`
}

// CLIPVisionTransformer is CLIP's vision tower: embeddings, a LayerNorm
// before the blocks, the blocks, and a LayerNorm of the class token.
type CLIPVisionTransformer struct {
	Embeddings *CLIPEmbeddings `nn:"embeddings"`
	PreNorm    *nn.LayerNorm   `nn:"pre_layrnorm"` // sic: transformers' name
	Layers     []*CLIPLayer    `nn:"encoder.layers"`
	PostNorm   *nn.LayerNorm   `nn:"post_layernorm"`
}

// CLIPEmbeddings are CLIP's class token [C], patch projection (no bias)
// and positions [1+N, C].
type CLIPEmbeddings struct {
	CLS   *tensor.Tensor `nn:"class_embedding"`
	Patch *nn.Conv2d     `nn:"patch_embedding"`
	Pos   *nn.Embedding  `nn:"position_embedding"`
}

// Model is a ViT of any layout: its tagged layers (Body) and the pieces
// the forward pass reads from them.
type Model struct {
	Config  Config
	Body    any            // *ViTModel, *MAEModel or *CLIPVision: their nn tags name the parameters
	Patch   *nn.Conv2d     // the patch projection [C, channels, patch, patch]
	CLS     *tensor.Tensor // the class token ([1, 1, C] or CLIP's [C])
	Pos     *tensor.Tensor // the positions ([1, 1+N, C] or CLIP's [1+N, C])
	PreNorm *nn.LayerNorm  // CLIP: before the blocks; nil otherwise
	Blocks  []Block
	Norm    *nn.LayerNorm // ViT, MAE: over every token; CLIP: over the class token (post_layernorm)
	Pooler  *nn.Linear    // ViTModel's pooler, or nil
	Decoder *Decoder      // MAE only
	rand    *rand.Rand    // MAE's masks when no noise is given
}

// New builds a model with random weights from seed: N(0, 0.02) weights
// and tokens, zero biases, LayerNorms at one; MAE's positions are its
// fixed 2-D sin-cos table.
func New(be backend.Backend, c Config, seed uint64) (*Model, error) {
	return Build(be, c, nn.NewInit(be, seed), seed)
}

// Build builds a model with its parameters from in (in.Zero: zeros, for
// a model about to be loaded); seed seeds MAE's masks.
func Build(be backend.Backend, c Config, in *nn.Init, seed uint64) (*Model, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	act, _ := ActivationByName(c.Activation)
	const std = 0.02
	C, N := c.Hidden, c.Patches()
	ln := func(w int) *nn.LayerNorm { return nn.NewLayerNorm(in, w, true, c.Eps) }
	patch := &nn.Conv2d{Weight: in.Normal(std, C, c.Channels, c.Patch, c.Patch),
		Opts: tensor.ConvOptions{Stride: [2]int{c.Patch, c.Patch}}}
	m := &Model{Config: c, Patch: patch, rand: rand.New(rand.NewPCG(seed, 0x6d6165))}
	switch c.Arch {
	case CLIP:
		e := &CLIPEmbeddings{CLS: in.Normal(std, C), Patch: patch, Pos: &nn.Embedding{Weight: in.Normal(std, N+1, C)}}
		t := &CLIPVisionTransformer{Embeddings: e, PreNorm: ln(C), PostNorm: ln(C)}
		t.Layers = NewCLIPLayers(in, C, c.Intermediate, c.Layers, c.Eps, act)
		m.Body, m.CLS, m.Pos, m.PreNorm, m.Norm = &CLIPVision{Model: t}, e.CLS, e.Pos.Weight, t.PreNorm, t.PostNorm
		m.Blocks = Blocks(t.Layers)
	case ViT, MAE:
		patch.Bias = in.Const(0, C)
		e := &Embeddings{CLS: in.Normal(std, 1, 1, C), Patch: patch}
		if c.Arch == MAE {
			e.Pos = sinCos(in, C, c.Image/c.Patch)
		} else {
			e.Pos = in.Normal(std, 1, N+1, C)
		}
		v := &ViTModel{Embeddings: e, Layers: layers(in, C, c.Intermediate, c.Layers, c.QKVBias, c.Eps, act), Norm: ln(C)}
		if c.Pooler && c.Arch == ViT {
			v.Pooler = nn.NewLinear(in, C, C, true, std)
		}
		m.Body, m.CLS, m.Pos, m.Norm, m.Pooler = v, e.CLS, e.Pos, v.Norm, v.Pooler
		m.Blocks = Blocks(v.Layers)
		if c.Arch == MAE {
			D := c.DecoderHidden
			m.Decoder = &Decoder{
				Embed: nn.NewLinear(in, C, D, true, std), MaskToken: in.Normal(std, 1, 1, D), Pos: sinCos(in, D, c.Image/c.Patch),
				Layers: layers(in, D, c.DecoderIntermediate, c.DecoderLayers, c.QKVBias, c.Eps, act), Norm: ln(D),
				Pred: nn.NewLinear(in, D, c.PatchDim(), true, std),
			}
			m.Body = &MAEModel{ViT: v, Decoder: m.Decoder}
		}
	}
	return m, nil
}

// newLayer makes one block's layers: the norms, the q, k, v and output
// projections, and the MLP's two linears.
func newLayer(in *nn.Init, C, I int, qkvBias bool, eps float32, act Activation) *Layer {
	const std = 0.02
	return &Layer{
		Norm1: nn.NewLayerNorm(in, C, true, eps),
		Q:     nn.NewLinear(in, C, C, qkvBias, std), K: nn.NewLinear(in, C, C, qkvBias, std), V: nn.NewLinear(in, C, C, qkvBias, std),
		O:     nn.NewLinear(in, C, C, true, std),
		Norm2: nn.NewLayerNorm(in, C, true, eps),
		FC:    nn.NewLinear(in, C, I, true, std), Proj: nn.NewLinear(in, I, C, true, std),
		Act: act,
	}
}

func layers(in *nn.Init, C, I, n int, qkvBias bool, eps float32, act Activation) []*Layer {
	out := make([]*Layer, n)
	for i := range out {
		out[i] = newLayer(in, C, I, qkvBias, eps, act)
	}
	return out
}

// NewCLIPLayers makes n CLIP blocks of width C and MLP width I.
func NewCLIPLayers(in *nn.Init, C, I, n int, eps float32, act Activation) []*CLIPLayer {
	out := make([]*CLIPLayer, n)
	for i := range out {
		l := CLIPLayer(*newLayer(in, C, I, true, eps, act)) // the same layers under CLIP's names
		out[i] = &l
	}
	return out
}

// Blocks returns bs as Blocks.
func Blocks[B Block](bs []B) []Block {
	out := make([]Block, len(bs))
	for i, b := range bs {
		out[i] = b
	}
	return out
}

// sinCos is MAE's fixed position table [1, 1+g*g, C] (the class token's
// row zero), as transformers' get_2d_sincos_pos_embed: the first half of
// the channels encodes a patch's column, the second its row, each half
// sines then cosines of the position times 1/10000^(i/(C/4)). Not trained.
func sinCos(in *nn.Init, C, g int) *tensor.Tensor {
	d := make([]float32, (1+g*g)*C)
	q := C / 4
	for r := range g {
		for col := range g {
			row := d[(1+r*g+col)*C:]
			for half, pos := range []float64{float64(col), float64(r)} { // transformers' meshgrid puts the column first
				for i := range q {
					a := pos / math.Pow(10000, float64(i)/float64(q))
					row[half*2*q+i] = float32(math.Sin(a))
					row[half*2*q+q+i] = float32(math.Cos(a))
				}
			}
		}
	}
	return tensor.FromHost(in.Backend, d, 1, 1+g*g, C)
}
