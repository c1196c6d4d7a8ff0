// Package dalle is a text-to-image transformer after DALL-E (Ramesh et al.
// 2021) and CogView: one decoder over the sequence [text tokens; image
// tokens], where an image is the grid of code ids a VQ-VAE (model/vqvae)
// turns it into, read row by row. The decoder is model/gpt's GPT-2 body;
// the text tokens are embedded by its token table (wte) and the image
// tokens by a table of their own (image_embed, one row per code) plus
// learned row and column embeddings (image_row_embed, image_col_embed:
// DALL-E's 2-D positions). Every position also carries the body's 1-D
// learned position (wpe), the text's positions and the image's place in
// the sequence. One output head (image_head) maps each hidden state to
// the codebook: the last text position predicts the first image token,
// each image token the next; the loss is on the image tokens only.
//
// The text is always TextLength tokens: a caption's tokens, then the
// tokenizer's padding token up to TextLength. An empty caption (all
// padding) is the unconditional input that caption dropout trains and
// classifier-free guidance samples from (generate/imagine).
//
// A model folder holds config.json (model_type golem_dalle, the body's
// GPT-2 config.json as text_config), model.safetensors (the body's
// transformer.* tensors and the image_* ones), the text tokenizer
// (tokenizer.json) and the VQ-VAE that decodes the grids (vq/, a
// model/vqvae folder), so a folder is all that sampling needs.
package dalle

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/kvcache"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/vqvae"
	"github.com/golem-ml/golem/model/weights"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// ModelType is config.json's model_type.
const ModelType = "golem_dalle"

// VQFolder is the VQ-VAE's folder inside a model folder.
const VQFolder = "vq"

// Config is a text-to-image model's configuration.
type Config struct {
	Text       gpt.Config // the GPT-2 body: Vocab is the text vocabulary, Context TextLength + Grid*Grid
	TextLength int        // text tokens of every sequence (a caption, then padding)
	Grid       int        // the image is Grid x Grid tokens
	Codes      int        // image token ids: the VQ-VAE's codebook size
	Pad        int        // the text's padding token id
}

// Tokens returns the number of image tokens, Grid*Grid.
func (c *Config) Tokens() int { return c.Grid * c.Grid }

// NewConfig is the config of a model of the given width, depth and heads
// over text of textLength tokens from a vocabulary of vocab (pad its
// padding id) and images of grid x grid codes of a codebook of codes.
func NewConfig(vocab, pad, textLength, grid, codes, hidden, layers, heads int) Config {
	return Config{
		Text: gpt.Config{Arch: "gpt2", Vocab: vocab, Context: textLength + grid*grid, Layers: layers, Heads: heads, KVHeads: heads,
			Hidden: hidden, Intermediate: 4 * hidden, Eps: 1e-5, Bias: true, Activation: "gelu_new", Tied: true, BOS: -1, EOS: -1},
		TextLength: textLength, Grid: grid, Codes: codes, Pad: pad,
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.Text.Arch != "gpt2" {
		return fmt.Errorf("dalle: text_config model_type %q, want \"gpt2\"", c.Text.Arch)
	}
	if err := c.Text.Validate(); err != nil {
		return fmt.Errorf("dalle: text_config: %w", err)
	}
	switch {
	case c.TextLength < 1:
		return fmt.Errorf("dalle: \"text_length\" is %d, want 1 or more", c.TextLength)
	case c.Grid < 1 || c.Grid > 64:
		return fmt.Errorf("dalle: \"image_grid\" is %d, want 1 to 64", c.Grid)
	case c.Codes < 1 || c.Codes > 1<<16:
		return fmt.Errorf("dalle: \"image_vocab_size\" is %d, want 1 to 65536", c.Codes)
	case c.Pad < 0 || c.Pad >= c.Text.Vocab:
		return fmt.Errorf("dalle: \"pad_token_id\" is %d, outside the text vocabulary of %d", c.Pad, c.Text.Vocab)
	case c.Text.Context != c.TextLength+c.Tokens():
		return fmt.Errorf("dalle: text_config's %q is %d, want text_length %d + image_grid^2 %d", c.Text.Field("Context"), c.Text.Context, c.TextLength, c.Tokens())
	}
	return nil
}

// jsonConfig is config.json.
type jsonConfig struct {
	ModelType  string          `json:"model_type"`
	TextLength int             `json:"text_length"`
	Grid       int             `json:"image_grid"`
	Codes      int             `json:"image_vocab_size"`
	Pad        int             `json:"pad_token_id"`
	Text       json.RawMessage `json:"text_config"`
}

// Model is a text-to-image transformer with its tokenizer and VQ-VAE.
type Model struct {
	Config Config
	LM     *gpt.Model    // the body; its token table embeds the text
	Image  *nn.Embedding `nn:"image_embed"`     // [Codes, C]
	Row    *nn.Embedding `nn:"image_row_embed"` // [Grid, C]
	Col    *nn.Embedding `nn:"image_col_embed"` // [Grid, C]
	Head   *nn.Linear    `nn:"image_head"`      // [Codes, C], no bias
	Tok    *tokenizer.Tokenizer
	VQ     *vqvae.Model
}

// New builds a model with random weights (N(0, 0.02), GPT-2's) from seed
// over a tokenizer and a VQ-VAE, which must agree with c.
func New(be backend.Backend, c Config, tok *tokenizer.Tokenizer, vq *vqvae.Model, seed uint64) (*Model, error) {
	return build(be, c, tok, vq, seed, nn.NewInit(be, seed+1))
}

// build makes the body from seed and the image layers from in.
func build(be backend.Backend, c Config, tok *tokenizer.Tokenizer, vq *vqvae.Model, seed uint64, in *nn.Init) (*Model, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if tok == nil || vq == nil {
		return nil, errors.New("dalle: a model needs its tokenizer and VQ-VAE")
	}
	if n := tok.VocabSize(); n > c.Text.Vocab {
		return nil, fmt.Errorf("dalle: the tokenizer has %d tokens, the text vocabulary (vocab_size) %d", n, c.Text.Vocab)
	}
	vc := vq.Config
	if g := vc.Grid(vc.ImageSize); g != c.Grid || vc.Codes != c.Codes {
		return nil, fmt.Errorf("dalle: the VQ-VAE makes %dx%d grids of %d codes, the model takes %dx%d of %d (image_grid, image_vocab_size)", g, g, vc.Codes, c.Grid, c.Grid, c.Codes)
	}
	lm, err := gpt.New(be, c.Text, seed)
	if err != nil {
		return nil, err
	}
	C := c.Text.Hidden
	return &Model{Config: c, LM: lm, Tok: tok, VQ: vq,
		Image: &nn.Embedding{Weight: in.Normal(0.02, c.Codes, C)},
		Row:   &nn.Embedding{Weight: in.Normal(0.02, c.Grid, C)},
		Col:   &nn.Embedding{Weight: in.Normal(0.02, c.Grid, C)},
		Head:  nn.NewLinear(in, C, c.Codes, false, 0.02)}, nil
}

// Params returns every trained parameter under its checkpoint name: the
// body's (transformer.*), then the image embeddings and head.
func (m *Model) Params() []nn.Named {
	return append(m.LM.Params(), nn.Params(m)...) // m's tagged fields: the image layers
}

// ErrPromptTooLong is the error of a text longer than the model's text
// context.
var ErrPromptTooLong = errors.New("dalle: the prompt is longer than the model's text context")

// Text returns the model's text input for a caption: its tokens, then
// padding up to TextLength ("" gives the unconditional input, all
// padding). A caption of more tokens is ErrPromptTooLong.
func (m *Model) Text(caption string) ([]int32, error) {
	ids := m.Tok.Encode(caption)
	L := m.Config.TextLength
	if len(ids) > L {
		return nil, fmt.Errorf("%w: %d tokens, the context holds %d", ErrPromptTooLong, len(ids), L)
	}
	out := make([]int32, L)
	for i := range out {
		out[i] = int32(m.Config.Pad)
		if i < len(ids) {
			out[i] = int32(ids[i])
		}
	}
	return out, nil
}

// Embeds returns the input embeddings [B, T, C] of B rows of text (B x
// TextLength ids, or nil for none) followed by image tokens codes (B x n
// ids, n may be 0), the first of which is image token first of the grid
// (row first/Grid, column first%Grid): the text by the body's token
// table, each image token by image_embed plus its row's and column's
// embeddings. The body adds the 1-D positions. The result belongs to s.
func (m *Model) Embeds(s *tensor.Scope, text, codes []int32, B, first int) *tensor.Tensor {
	c := &m.Config
	var parts []*tensor.Tensor
	if text != nil {
		parts = append(parts, s.Adopt(m.LM.Embed.Forward(text, B, c.TextLength)))
	}
	if n := len(codes) / B; n > 0 {
		rows, cols := make([]int32, B*n), make([]int32, B*n)
		for i := range rows {
			j := first + i%n
			rows[i], cols[i] = int32(j/c.Grid), int32(j%c.Grid)
		}
		e := tensor.Add(tensor.Add(m.Image.Forward(codes, B, n), m.Row.Forward(rows, B, n)), m.Col.Forward(cols, B, n))
		parts = append(parts, s.Adopt(e))
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return tensor.Concat(1, parts...)
}

// checkCodes refuses an image token outside the codebook.
func (m *Model) checkCodes(codes []int32) error {
	for i, id := range codes {
		if id < 0 || int(id) >= m.Config.Codes {
			return fmt.Errorf("dalle: image token %d is %d, want 0 to %d", i, id, m.Config.Codes-1)
		}
	}
	return nil
}

// Loss returns the mean cross-entropy of the image tokens codes (B whole
// grids, B x Grid*Grid ids) given text (B x TextLength ids, Text's): the
// sequence [text; codes but the last], each position from the last text
// one on predicting the next image token. o carries the scope and, for
// training, dropout (its Cache, Pos, KeyMask and Embeds must be unset).
func (m *Model) Loss(text, codes []int32, B int, o gpt.Options) (*tensor.Tensor, error) {
	h, err := m.imageHidden(text, codes, B, o)
	if err != nil {
		return nil, err
	}
	return tensor.LinearCrossEntropy(h, m.Head.Weight, codes, nil), nil
}

// LogProbs returns each row's log-probability of its image tokens given
// its text, [B] (the sum over the grid's tokens of what Loss averages the
// negatives of): a sequence log-probability for preference tuning. Text,
// codes and o as for Loss.
func (m *Model) LogProbs(text, codes []int32, B int, o gpt.Options) (*tensor.Tensor, error) {
	h, err := m.imageHidden(text, codes, B, o)
	if err != nil {
		return nil, err
	}
	N := m.Config.Tokens()
	lp := tensor.TokenLogProbs(tensor.Reshape(m.Head.Forward(h), B*N, m.Config.Codes), codes)
	return tensor.SumLast(tensor.Reshape(lp, B, N)), nil
}

// imageHidden runs [text; codes but the last] through the body and
// returns the hidden states of the positions that predict the image
// tokens, [B, N, C]: the last text position's and every image token's
// but the last.
func (m *Model) imageHidden(text, codes []int32, B int, o gpt.Options) (*tensor.Tensor, error) {
	c := &m.Config
	N, L := c.Tokens(), c.TextLength
	if B < 1 || len(text) != B*L || len(codes) != B*N {
		return nil, fmt.Errorf("dalle: %d text and %d image ids for %d rows of %d and %d", len(text), len(codes), B, L, N)
	}
	if err := m.checkCodes(codes); err != nil {
		return nil, err
	}
	in := make([]int32, 0, B*(N-1))
	for b := range B {
		in = append(in, codes[b*N:b*N+N-1]...)
	}
	o.Embeds = m.Embeds(o.Scope, text, in, B, 0)
	h := m.LM.Forward(nil, B, 0, o)
	return tensor.Slice(h, 1, L-1, L-1+N), nil
}

// Prefill runs B rows of text (B x TextLength ids) into the empty cache
// and returns the logits over the codebook of the first image token,
// [B*Codes]. Call it under tensor.NoGrad.
func (m *Model) Prefill(cache kvcache.Cache, text []int32, B int) []float32 {
	s := tensor.NewScope()
	defer s.Close()
	h := m.LM.Forward(nil, B, 0, gpt.Options{Cache: cache, Embeds: m.Embeds(s, text, nil, B, 0), Scope: s})
	L := m.Config.TextLength
	return m.Head.Forward(tensor.Slice(h, 1, L-1, L)).Host()
}

// Step runs image token j of each of the B rows (codes, B ids) through
// the cache after the text and tokens 0..j-1, and returns the logits of
// token j+1, [B*Codes], in into's memory when it has room. Call it under
// tensor.NoGrad.
func (m *Model) Step(cache kvcache.Cache, codes []int32, j int, into []float32) ([]float32, error) {
	if err := m.checkCodes(codes); err != nil {
		return nil, err
	}
	if j < 0 || j >= m.Config.Tokens()-1 || cache.Len() != m.Config.TextLength+j {
		return nil, fmt.Errorf("dalle: image token %d after %d cached positions (text %d, grid %d tokens)", j, cache.Len(), m.Config.TextLength, m.Config.Tokens())
	}
	s := tensor.NewScope()
	defer s.Close()
	B := len(codes)
	h := m.LM.Forward(nil, B, 0, gpt.Options{Cache: cache, Embeds: m.Embeds(s, nil, codes, B, j), Scope: s})
	return m.Head.Forward(h).HostInto(into), nil
}

// Save writes the model folder: config.json, model.safetensors, the
// tokenizer and the VQ-VAE (vq/).
func (m *Model) Save(dir string) error {
	c := &m.Config
	tj, err := c.Text.JSON()
	if err != nil {
		return err
	}
	jc := jsonConfig{ModelType: ModelType, TextLength: c.TextLength, Grid: c.Grid, Codes: c.Codes, Pad: c.Pad, Text: tj}
	if err := weights.SaveFolder(dir, jc, m.Params()); err != nil {
		return err
	}
	if err := m.Tok.SaveForModel(dir, c.TextLength); err != nil {
		return err
	}
	return m.VQ.Save(filepath.Join(dir, VQFolder))
}

// IsDalle reports whether dir is a text-to-image model folder (its
// config.json's model_type is golem_dalle).
func IsDalle(dir string) bool {
	t, err := weights.ModelType(filepath.Join(dir, weights.ConfigFile))
	return err == nil && t == ModelType
}

// LoadConfig reads and validates dir/config.json; unknown fields are
// errors.
func LoadConfig(dir string) (Config, error) {
	// Another model's folder is told by its model_type before its fields.
	if t, err := weights.ModelType(filepath.Join(dir, weights.ConfigFile)); err == nil && t != ModelType {
		return Config{}, fmt.Errorf("dalle: %s: model_type %q, want %q (a golem imagine train folder)", filepath.Join(dir, "config.json"), t, ModelType)
	}
	var jc jsonConfig
	var c Config
	err := weights.ReadConfig(dir, &jc, func() error {
		if len(jc.Text) == 0 {
			return errors.New("no text_config")
		}
		tc, err := gpt.ParseConfig(jc.Text)
		if err != nil {
			return fmt.Errorf("text_config: %w", err)
		}
		c = Config{Text: *tc, TextLength: jc.TextLength, Grid: jc.Grid, Codes: jc.Codes, Pad: jc.Pad}
		return c.Validate()
	})
	if err != nil {
		return Config{}, fmt.Errorf("dalle: %w", err)
	}
	return c, nil
}

// Load reads a model folder written by Save: the config, the tokenizer,
// the VQ-VAE of vq/ and the weights (every tensor with its shape, none
// more, nothing NaN or infinite).
func Load(be backend.Backend, dir string) (*Model, error) {
	return LoadWithVQ(be, dir, "")
}

// LoadWithVQ is Load with the VQ-VAE read from vqDir ("" = the folder's
// vq/): a folder whose vq/ was left out.
func LoadWithVQ(be backend.Backend, dir, vqDir string) (*Model, error) {
	c, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("dalle: %s: %w", dir, err)
	}
	vdir := vqDir
	if vdir == "" {
		vdir = filepath.Join(dir, VQFolder)
		if fi, err := os.Stat(vdir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("dalle: %s: no VQ-VAE folder %s/ (golem imagine train writes it; or name one: --vq)", dir, VQFolder)
		}
	}
	vq, err := vqvae.Load(be, vdir)
	if err != nil {
		return nil, err
	}
	in := nn.NewInit(be, 0)
	in.Zero = true
	m, err := build(be, c, tok, vq, 0, in)
	if err != nil {
		return nil, fmt.Errorf("dalle: %s: %w", dir, err)
	}
	if err := weights.FillFolder(dir, m.Params()); err != nil {
		return nil, fmt.Errorf("dalle: %w", err)
	}
	return m, nil
}
