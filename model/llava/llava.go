// Package llava is a vision-language model after LLaVA's recipe: a
// frozen CLIP vision tower (model/vit's CLIP layout), a two-layer MLP
// projector (Linear, GELU, Linear) from the tower's width to the language
// model's, and a decoder (model/gpt). A prompt holds one "<image>"
// placeholder; the image's projected patch tokens take its place in the
// sequence of input embeddings. The features are the tower's last layer's
// patch tokens of one of the tower's layers (Config.FeatureLayer, config.json's
// vision_feature_layer: -1 the last, LLaVA 1's; -2 the penultimate,
// LLaVA 1.5's), the class token dropped (LLaVA's "default" feature
// strategy).
//
// The text before the placeholder and the image's tokens enter the
// decoder as gpt.Options.Embeds (the embeddings put before the tokens':
// the same path as prompt tuning's soft prompts and generate's prefill),
// the text after it as tokens, so no second forward pass exists.
//
// Load and Save read and write a folder in the layout of transformers'
// LlavaForConditionalGeneration from 4.52 (5.x too): its state dict's
// names, model.vision_tower.vision_model.*, model.multi_modal_projector.*,
// model.language_model.* (the language model's base model, AutoModel's
// names: GPT2Model's wte, h.N..., LlamaModel's embed_tokens, layers.N...)
// and lm_head.weight (written even when tied, as the state dict holds it).
// Load reads the legacy layout too (transformers up to 4.51, llava-hf's
// folders on the Hub, and golem's before: vision_tower.*,
// multi_modal_projector.*, language_model.<the causal LM's names>). The
// caller writes the language model's tokenizer beside them with
// SaveTokenizer and reads it with LoadTokenizer. The folder's vocabulary
// holds the image token's row (Config.ImageToken, Save), and its
// tokenizer "<image>" at that id, which Load and LoadTokenizer drop
// again: golem never looks it up (docs/multimodal.md).
package llava

import (
	"errors"
	"fmt"
	"strings"

	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/vit"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// Placeholder is the text that marks where a prompt's image goes.
const Placeholder = "<image>"

// Prefixes of the parameters' names in a LLaVA checkpoint (transformers'
// from 4.52): the language model's base model is under LMPrefix
// (gpt.WrappedName), its head is lm_head.weight.
const (
	VisionPrefix    = "model.vision_tower."
	ProjectorPrefix = "model.multi_modal_projector."
	LMPrefix        = "model.language_model."
)

// The legacy layout's prefixes (transformers up to 4.51): the causal
// language model whole under "language_model.".
const (
	legacyVision    = "vision_tower."
	legacyProjector = "multi_modal_projector."
	legacyLM        = "language_model."
)

// named returns a LLaVA model's parts' parameters under their names in a
// folder: the current layout's, or with legacy transformers' up to 4.51.
// lm holds the language model's own names (gpt.Model.Params, or
// gpt.Scorer's).
func named(vision, proj, lm []nn.Named, legacy bool) []nn.Named {
	var ps []nn.Named
	add := func(xs []nn.Named, name func(string) string) {
		for _, p := range xs {
			ps = append(ps, nn.Named{Name: name(p.Name), Tensor: p.Tensor})
		}
	}
	if legacy {
		add(vision, func(n string) string { return legacyVision + n })
		add(proj, func(n string) string { return legacyProjector + n })
		add(lm, func(n string) string { return legacyLM + n })
		return ps
	}
	add(vision, func(n string) string { return VisionPrefix + n })
	add(proj, func(n string) string { return ProjectorPrefix + n })
	add(lm, func(n string) string { return gpt.WrappedName(LMPrefix, n) })
	return ps
}

// Config is a LLaVA model's config.json.
type Config struct {
	Vision vit.Config // a CLIP vision tower (vit.CLIP)
	Text   gpt.Config
	// ImageToken is image_token_index: the id transformers' processor
	// expands into the image's tokens and LlavaModel replaces by the
	// image's features. golem splits prompts on the placeholder's text
	// instead and never looks it up: the language model's vocabulary size
	// (New's), an id past Text.Vocab that a folder's vocabulary holds as
	// one more row (Save), or an id inside the vocabulary (llava-hf's
	// folders: 32000 of 32064).
	ImageToken int
	// imageRow is whether the folder read held the image token's row past
	// Text.Vocab (ImageToken == Text.Vocab, text_config's vocab_size one
	// more); golem's folders before did not.
	imageRow bool
	// FeatureLayer is vision_feature_layer: the tower's hidden state
	// whose patch tokens are the image's features (vit.Model.Hidden's
	// layer: -1 the last block's output, -2 the penultimate's).
	FeatureLayer int
}

// Validate checks the two towers' configs.
func (c *Config) Validate() error {
	if c.Vision.Arch != vit.CLIP {
		return fmt.Errorf("llava: vision_config model_type %q, want %q (CLIP's vision tower)", c.Vision.Arch, vit.CLIP)
	}
	if err := c.Vision.Validate(); err != nil {
		return fmt.Errorf("llava: vision_config: %w", err)
	}
	if l := c.FeatureLayer; l < -(c.Vision.Layers+1) || l > c.Vision.Layers {
		return fmt.Errorf("llava: \"vision_feature_layer\" %d: the vision tower has %d layers (hidden states %d..%d, or %d..-1 from the end)", l, c.Vision.Layers, 0, c.Vision.Layers, -(c.Vision.Layers + 1))
	}
	if err := c.Text.Validate(); err != nil {
		return fmt.Errorf("llava: text_config: %w", err)
	}
	return nil
}

// Projector is LLaVA's multi_modal_projector: Linear, GELU, Linear.
type Projector struct {
	Linear1 *nn.Linear `nn:"linear_1"`
	Linear2 *nn.Linear `nn:"linear_2"`
}

// Forward maps vision features [..., Dv] to the language model's width.
func (p *Projector) Forward(x *tensor.Tensor) *tensor.Tensor {
	return p.Linear2.Forward(tensor.GELU(p.Linear1.Forward(x)))
}

// Model is a LLaVA model.
type Model struct {
	Config    Config
	Vision    *vit.Model // frozen; its parameters are named vision_model.*
	Projector *Projector
	LM        *gpt.Model
}

// New builds a model from a vision tower and a language model (their
// weights are kept, not copied) with a new projector (seeded N(0, 0.02))
// that takes the tower's hidden state featureLayer (Config.FeatureLayer;
// 0 means -1, the last). The vision tower is frozen.
func New(vision *vit.Model, lm *gpt.Model, featureLayer int, seed uint64) (*Model, error) {
	if featureLayer == 0 {
		featureLayer = -1
	}
	c := Config{Vision: vision.Config, Text: lm.Config, ImageToken: lm.Config.Vocab, FeatureLayer: featureLayer}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	in := nn.NewInit(lm.Embed.Weight.Backend(), seed)
	m := &Model{Config: c, Vision: vision, LM: lm, Projector: newProjector(in, c)}
	m.FreezeVision()
	return m, nil
}

func newProjector(in *nn.Init, c Config) *Projector {
	return &Projector{
		Linear1: nn.NewLinear(in, c.Vision.Hidden, c.Text.Hidden, true, 0.02),
		Linear2: nn.NewLinear(in, c.Text.Hidden, c.Text.Hidden, true, 0.02),
	}
}

// FreezeVision marks the vision tower's parameters as not trainable (LLaVA
// trains the projector, then the projector and the language model).
func (m *Model) FreezeVision() { nn.Freeze(m.Vision.Body) }

// Params returns every parameter under its LLaVA name: the vision tower's,
// the projector's, the language model's.
func (m *Model) Params() []nn.Named {
	return named(m.Vision.Params(), nn.Params(m.Projector), m.LM.Params(), false)
}

// ProjectorParams returns the projector's parameters (LLaVA's stage 1
// trains these alone).
func (m *Model) ProjectorParams() []nn.Named { return nn.Params(m.Projector) }

// Tokens is the number of tokens an image takes in the sequence (the
// tower's patches).
func (m *Model) Tokens() int { return m.Config.Vision.Patches() }

// PixelSize is the length of one image's preprocessed pixels
// (data/vision.CLIPPixels at the tower's size and channels).
func (m *Model) PixelSize() int {
	v := &m.Config.Vision
	return v.Channels * v.Image * v.Image
}

// ImageFeatures returns B images' projected patch tokens [B, N, C] from
// their pixels (B x PixelSize floats, CLIPPixels' layout) in scope s. The
// tower is frozen; the projector trains.
func (m *Model) ImageFeatures(s *tensor.Scope, pixels []float32, B int) (*tensor.Tensor, error) {
	v := &m.Config.Vision
	if B <= 0 || len(pixels) != B*m.PixelSize() {
		return nil, fmt.Errorf("llava: %d pixel values for %d images; the vision tower takes %d x %d x %d each", len(pixels), B, v.Channels, v.Image, v.Image)
	}
	x := s.FromHost(m.LM.Embed.Weight.Backend(), pixels, B, v.Channels, v.Image, v.Image)
	t := m.Vision.Hidden(x, m.Config.FeatureLayer) // the tower is frozen: no gradient flows into it
	return m.Projector.Forward(tensor.Slice(t, 1, 1, t.Dim(1))), nil
}

// Split tokenizes a prompt around its one placeholder: the ids before it
// and after it.
func Split(prompt string, encode func(string) []int) (before, after []int, err error) {
	switch n := strings.Count(prompt, Placeholder); n {
	case 1:
	case 0:
		return nil, nil, errors.New("llava: the prompt has no \"<image>\" placeholder")
	default:
		return nil, nil, fmt.Errorf("llava: the prompt holds \"<image>\" %d times, want once", n)
	}
	i := strings.Index(prompt, Placeholder)
	return encode(prompt[:i]), encode(prompt[i+len(Placeholder):]), nil
}

// Prefix returns the input embeddings that go before the tokens after the
// placeholder: the token embeddings of before (the same for every row)
// followed by the image features [B, N, C], as [B, len(before)+N, C]
// (gpt.Options.Embeds).
func (m *Model) Prefix(before []int, img *tensor.Tensor) *tensor.Tensor {
	if len(before) == 0 {
		return img
	}
	B := img.Dim(0)
	ids := make([]int32, B*len(before))
	for i := range ids {
		ids[i] = int32(before[i%len(before)])
	}
	emb := img.Scope().Adopt(m.LM.Embed.Forward(ids, B, len(before)))
	return tensor.Concat(1, emb, img)
}

// The conversation format golem's LLaVA models train and answer in (as
// LLaVA v1's, without its system line): each human turn is
// UserTurn(text), each answer " text" followed by the tokenizer's end
// token, or "\n" when it has none. The first human turn holds the
// placeholder.
func UserTurn(text string) string { return "USER: " + text + "\nASSISTANT:" }

// Render writes a conversation in that format: a system message's text
// first (followed by a space, as LLaVA v1's system line), each user turn
// as UserTurn, each answer as " " + its text + end (end is the
// tokenizer's end token's text, or "\n"). An answer that is the last
// message is left open (no end): the model continues it. The image's
// placeholder is wherever the caller put it in a user turn.
func Render(msgs []tokenizer.Message, end string) (string, error) {
	var b strings.Builder
	for i, m := range msgs {
		switch m.Role {
		case "system":
			if i != 0 {
				return "", fmt.Errorf("llava: messages[%d]: a system message must come first", i)
			}
			b.WriteString(m.Content + " ")
		case "user":
			b.WriteString(UserTurn(m.Content))
		case "assistant":
			b.WriteString(" " + strings.TrimSpace(m.Content))
			if i < len(msgs)-1 {
				b.WriteString(end)
			}
		default:
			return "", fmt.Errorf("llava: messages[%d]: role %q is not \"system\", \"user\" or \"assistant\"", i, m.Role)
		}
	}
	return b.String(), nil
}

// AlignPrompt is stage 1's human turn: captions answer it.
const AlignPrompt = Placeholder + "\nDescribe the image."

// Prompt renders turns, alternately the user's and the assistant's, as
// Render does, each answer closed by end (the tokenizer's end token's
// text, or "\n"): eval's prompts end with a user turn for the model to
// answer; demo's corpus, whole conversations, with a closed answer. With
// image the first user turn opens with the placeholder and a newline, as
// golem data shapes' conversations and AlignPrompt do; a text-only model
// (image false) gets the same text without it.
func Prompt(end string, image bool, turns ...string) string {
	msgs := make([]tokenizer.Message, len(turns))
	for i, t := range turns {
		msgs[i] = tokenizer.Message{Role: "user", Content: t}
		if i%2 == 1 {
			msgs[i].Role = "assistant"
		}
	}
	if image && len(msgs) > 0 {
		msgs[0].Content = Placeholder + "\n" + msgs[0].Content
	}
	text, _ := Render(msgs, end) // only user and assistant messages: no error
	if len(turns)%2 == 0 && len(turns) > 0 {
		text += end // Render leaves a last answer open
	}
	return text
}

// PromptEmbeds returns what goes before the text after a prompt's
// placeholder when generating: the embeddings of the text before it and
// the image's tokens (one image, pixels of PixelSize), as the virtual
// tokens generate.Options.SoftPrompt puts before the prompt's tokens.
// It holds no gradient and belongs to no scope (the caller's).
func (m *Model) PromptEmbeds(before []int, pixels []float32) (*nn.SoftPrompt, error) {
	var w *tensor.Tensor
	var err error
	tensor.NoGrad(func() {
		s := tensor.NewScope()
		defer s.Close()
		var img *tensor.Tensor
		if img, err = m.ImageFeatures(s, pixels, 1); err != nil {
			return
		}
		p := m.Prefix(before, img)
		w = tensor.Reshape(p, p.Dim(1), p.Dim(2)).Clone()
	})
	if err != nil {
		return nil, err
	}
	return &nn.SoftPrompt{Weight: w}, nil
}
