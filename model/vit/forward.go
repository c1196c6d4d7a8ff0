package vit

import (
	"fmt"

	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// Params returns the parameters under their Hugging Face names. MAE's
// position tables are among them (checkpoints hold them) but do not
// require gradients; nn.Trainable leaves them out.
func (m *Model) Params() []nn.Named { return nn.Params(m.Body) }

// Patchify cuts images [B, C, H, W] into patches [B, N, C*p*p], each
// patch's values channel by channel, row by row (the order of a patch
// convolution's weight [out, C, p, p], so the convolution is one Linear
// over the patches).
func Patchify(pixels *tensor.Tensor, p int) *tensor.Tensor {
	B, C, H, W := pixels.Dim(0), pixels.Dim(1), pixels.Dim(2), pixels.Dim(3)
	x := tensor.Reshape(pixels, B, C, H/p, p, W/p, p)
	x = tensor.Permute(x, 0, 2, 4, 1, 3, 5) // [B, H/p, W/p, C, p, p]
	return tensor.Reshape(x, B, (H/p)*(W/p), C*p*p)
}

// checkPixels panics unless pixels are [B, channels, image, image].
func (m *Model) checkPixels(pixels *tensor.Tensor) {
	c := &m.Config
	s := pixels.Shape()
	if len(s) != 4 || s[1] != c.Channels || s[2] != c.Image || s[3] != c.Image {
		panic(fmt.Sprintf("vit: pixels of shape %v, the model takes [B, %d, %d, %d]", s, c.Channels, c.Image, c.Image))
	}
}

// positions returns the position table as [1, 1+N, C].
func (m *Model) positions() *tensor.Tensor {
	if len(m.Pos.Shape()) == 3 {
		return m.Pos
	}
	return tensor.Reshape(m.Pos, 1, m.Pos.Dim(0), m.Pos.Dim(1))
}

// patchTokens returns the patches' embeddings with their positions,
// [B, N, C]. The patch convolution (stride = patch) is computed as one
// Linear over the patches: the same arithmetic, without im2col.
func (m *Model) patchTokens(pixels *tensor.Tensor) *tensor.Tensor {
	m.checkPixels(pixels)
	c := &m.Config
	w := tensor.Reshape(m.Patch.Weight, c.Hidden, c.PatchDim())
	x := tensor.Linear(Patchify(pixels, c.Patch), w, m.Patch.Bias)
	pos := m.positions()
	return tensor.Add(x, tensor.Slice(pos, 1, 1, pos.Dim(1)))
}

// classTokens returns the class token plus its position for B images,
// [B, 1, C].
func (m *Model) classTokens(B int) *tensor.Tensor {
	C := m.Config.Hidden
	cls := tensor.Add(tensor.Reshape(m.CLS, 1, C), tensor.Reshape(tensor.Slice(m.positions(), 1, 0, 1), 1, C))
	return tensor.Reshape(tensor.Embedding(cls, make([]int32, B)), B, 1, C)
}

// encode runs the blocks over the class token and patch tokens x [B, N', C]
// (all patches, or MAE's visible ones), before the final norm.
func (m *Model) encode(x *tensor.Tensor) *tensor.Tensor { return m.encodeN(x, len(m.Blocks)) }

// encodeN is encode through the first n blocks.
func (m *Model) encodeN(x *tensor.Tensor, n int) *tensor.Tensor {
	x = tensor.Concat(1, m.classTokens(x.Dim(0)), x)
	if m.PreNorm != nil {
		x = m.PreNorm.Forward(x)
	}
	return Encode(x, m.Blocks[:n], m.Config.Heads, false)
}

// Hidden returns transformers' hidden_states[layer] of images pixels
// [B, C, H, W]: the tokens [B, 1+N, C] after the first layer blocks (0:
// the embeddings, after CLIP's pre-norm), counted from the end when
// negative (-1: after the last block, Forward's tokens for CLIP; -2: the
// penultimate block's, LLaVA 1.5's vision_feature_layer). No final norm.
// It panics when layer is out of range (Config.Layers counts them).
func (m *Model) Hidden(pixels *tensor.Tensor, layer int) *tensor.Tensor {
	n := layer
	if layer < 0 {
		n = len(m.Blocks) + 1 + layer
	}
	if n < 0 || n > len(m.Blocks) {
		panic(fmt.Sprintf("vit: hidden state %d of a tower of %d layers", layer, len(m.Blocks)))
	}
	return m.encodeN(m.patchTokens(pixels), n)
}

// Forward runs the model over images pixels [B, C, H, W] and returns its
// tokens [B, 1+N, C], the class token first: transformers'
// last_hidden_state (after the final LayerNorm for ViT and MAE; CLIP's
// post_layernorm is for the class token only, in Features).
func (m *Model) Forward(pixels *tensor.Tensor) *tensor.Tensor {
	x := m.encode(m.patchTokens(pixels))
	if m.Config.Arch == CLIP {
		return x
	}
	return m.Norm.Forward(x)
}

// Features returns each image's pooled feature [B, C]: the class token
// after the final norm (CLIP's pooler_output; for ViT, the class token of
// last_hidden_state, before the optional pooler).
func (m *Model) Features(pixels *tensor.Tensor) *tensor.Tensor {
	x := m.encode(m.patchTokens(pixels))
	cls := tensor.Reshape(tensor.Slice(x, 1, 0, 1), x.Dim(0), x.Dim(2))
	return m.Norm.Forward(cls)
}

// Pool is ViTModel's pooler on tokens [B, 1+N, C] from Forward: tanh of
// a dense layer over the class token, [B, C] (transformers'
// pooler_output). It panics for a model without a pooler.
func (m *Model) Pool(tokens *tensor.Tensor) *tensor.Tensor {
	if m.Pooler == nil {
		panic("vit: the model has no pooler")
	}
	cls := tensor.Reshape(tensor.Slice(tokens, 1, 0, 1), tokens.Dim(0), tokens.Dim(2))
	return tensor.Tanh(m.Pooler.Forward(cls))
}
