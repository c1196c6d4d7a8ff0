// Package clip is CLIP: an image tower (model/vit's CLIP layout) and a
// causal text tower, each pooled to one vector (the image's class token,
// the text's end-of-text token) and projected without bias into a shared
// space where a learned temperature scales their cosine similarities;
// trained with the symmetric InfoNCE loss. Its layers are tagged structs
// under transformers' CLIPModel names (modeling_clip.py); Load and Save
// read and write CLIPModel folders.
package clip

import (
	"fmt"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/model/vit"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// Model is a CLIPModel.
type Model struct {
	Config Config
	Vision *vit.Model // its parameters are named vision_model.*
	Heads  *Heads     // the text tower, projections and temperature
}

// Heads are CLIPModel's layers beside its vision tower.
type Heads struct {
	Text       *TextTransformer `nn:"text_model"`
	VisualProj *nn.Linear       `nn:"visual_projection"`
	TextProj   *nn.Linear       `nn:"text_projection"`
	LogitScale *tensor.Tensor   `nn:"logit_scale"` // a scalar: log of the inverse temperature
}

// TextTransformer is CLIP's text tower: token and position embeddings,
// causal pre-LN blocks, a final LayerNorm.
type TextTransformer struct {
	Embeddings *TextEmbeddings  `nn:"embeddings"`
	Layers     []*vit.CLIPLayer `nn:"encoder.layers"`
	Norm       *nn.LayerNorm    `nn:"final_layer_norm"`
}

// TextEmbeddings are the token table [V, C] and positions [Context, C].
type TextEmbeddings struct {
	Token *nn.Embedding `nn:"token_embedding"`
	Pos   *nn.Embedding `nn:"position_embedding"`
}

// New builds a model with random weights from seed: N(0, 0.02) weights
// and embeddings, the temperature at LogitScaleInit.
func New(be backend.Backend, c Config, seed uint64) (*Model, error) {
	return build(be, c, nn.NewInit(be, seed), seed)
}

func build(be backend.Backend, c Config, in *nn.Init, seed uint64) (*Model, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	v, err := vit.Build(be, c.Vision, in, seed)
	if err != nil {
		return nil, err
	}
	t := &c.Text
	act, _ := vit.ActivationByName(t.Activation)
	const std = 0.02
	h := &Heads{
		Text: &TextTransformer{
			Embeddings: &TextEmbeddings{Token: &nn.Embedding{Weight: in.Normal(std, t.Vocab, t.Hidden)}, Pos: &nn.Embedding{Weight: in.Normal(std, t.Context, t.Hidden)}},
			Layers:     vit.NewCLIPLayers(in, t.Hidden, t.Intermediate, t.Layers, t.Eps, act),
			Norm:       nn.NewLayerNorm(in, t.Hidden, true, t.Eps),
		},
		VisualProj: nn.NewLinear(in, c.Vision.Hidden, c.Projection, false, std),
		TextProj:   nn.NewLinear(in, t.Hidden, c.Projection, false, std),
		LogitScale: in.Const(float32(c.LogitScaleInit)),
	}
	return &Model{Config: c, Vision: v, Heads: h}, nil
}

// Params returns the parameters under their Hugging Face names (the
// vision tower's, then the text tower's, the projections' and
// logit_scale).
func (m *Model) Params() []nn.Named { return append(m.Vision.Params(), nn.Params(m.Heads)...) }

// ImageEmbeds returns the images' projected features [B, Projection]
// (not normalised) for pixels [B, C, H, W].
func (m *Model) ImageEmbeds(pixels *tensor.Tensor) *tensor.Tensor {
	return m.Heads.VisualProj.Forward(m.Vision.Features(pixels))
}

// TextFeatures returns each text's pooled feature [B, C] for ids (B rows
// of T tokens): the final LayerNorm's output at the text's end-of-text
// token. As transformers does, that is the first eos_token_id of the row
// (the largest id when eos_token_id is 2, the convention of old configs);
// a row without one (cut at the context) is pooled at its last token,
// where transformers would take its first. Tokens after the end-of-text
// token (padding) do not change it: the attention is causal.
func (m *Model) TextFeatures(ids []int32, B, T int) *tensor.Tensor {
	t := m.Heads.Text
	c := &m.Config.Text
	if len(ids) != B*T || T > c.Context {
		panic(fmt.Sprintf("clip: %d ids as %d texts of %d tokens (context %d)", len(ids), B, T, c.Context))
	}
	pos := make([]int32, B*T)
	for i := range pos {
		pos[i] = int32(i % T)
	}
	x := tensor.Add(t.Embeddings.Token.Forward(ids, B, T), t.Embeddings.Pos.Forward(pos, B, T))
	x = vit.Encode(x, vit.Blocks(t.Layers), c.Heads, true)
	rows := PoolPositions(ids, B, T, c.EOS)
	for b := range rows {
		rows[b] += int32(b * T)
	}
	return t.Norm.Forward(tensor.Embedding(tensor.Reshape(x, B*T, c.Hidden), rows))
}

// PoolPositions returns the position each row of ids (B rows of T) is
// pooled at: its first eos (its largest id when eos is 2), or its last
// token if it has none.
func PoolPositions(ids []int32, B, T, eos int) []int32 {
	out := make([]int32, B)
	for b := range B {
		row := ids[b*T : (b+1)*T]
		out[b] = int32(T - 1)
		if eos == 2 {
			best := 0
			for i, id := range row {
				if id > row[best] {
					best = i
				}
			}
			out[b] = int32(best)
			continue
		}
		for i, id := range row {
			if int(id) == eos {
				out[b] = int32(i)
				break
			}
		}
	}
	return out
}

// TextEmbeds returns the texts' projected features [B, Projection] (not
// normalised).
func (m *Model) TextEmbeds(ids []int32, B, T int) *tensor.Tensor {
	return m.Heads.TextProj.Forward(m.TextFeatures(ids, B, T))
}

// Output is a forward pass over B image-text pairs.
type Output struct {
	ImageEmbeds, TextEmbeds *tensor.Tensor // [B, Projection], normalised (transformers' image_embeds, text_embeds)
	LogitsPerImage          *tensor.Tensor // [B, B]: exp(logit_scale) x cosine similarity of image i and text j
	LogitsPerText           *tensor.Tensor // [B, B]: its transpose
	Loss                    *tensor.Tensor // the symmetric InfoNCE loss (pair i is the match of row i), a scalar
}

// Forward runs both towers over B pairs (pixels [B, C, H, W], ids B rows
// of T tokens) and returns transformers' CLIPModel outputs and loss.
func (m *Model) Forward(pixels *tensor.Tensor, ids []int32, B, T int) Output {
	if pixels.Dim(0) != B {
		panic(fmt.Sprintf("clip: %d images for %d texts", pixels.Dim(0), B))
	}
	img := tensor.L2Normalize(m.ImageEmbeds(pixels), 0)
	txt := tensor.L2Normalize(m.TextEmbeds(ids, B, T), 0)
	perText := tensor.Mul(tensor.MatMul(txt, img, false, true), tensor.Exp(m.Heads.LogitScale))
	perImage := tensor.Transpose(perText, 0, 1)
	return Output{ImageEmbeds: img, TextEmbeds: txt, LogitsPerImage: perImage, LogitsPerText: perText, Loss: ContrastiveLoss(perText)}
}

// ContrastiveLoss is the symmetric InfoNCE loss of a square matrix of
// logits whose diagonal holds the matching pairs: the mean of the
// cross-entropies of its rows and of its columns (transformers'
// clip_loss).
func ContrastiveLoss(logits *tensor.Tensor) *tensor.Tensor {
	n := logits.Dim(0)
	if len(logits.Shape()) != 2 || logits.Dim(1) != n {
		panic(fmt.Sprintf("clip: contrastive loss of %v logits, want a square matrix", logits.Shape()))
	}
	diag := make([]int32, n)
	for i := range diag {
		diag[i] = int32(i)
	}
	rows := tensor.CrossEntropy(logits, diag, nil)
	cols := tensor.CrossEntropy(tensor.Transpose(logits, 0, 1), diag, nil)
	return tensor.Scale(tensor.Add(rows, cols), 0.5)
}
