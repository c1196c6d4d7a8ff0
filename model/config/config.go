// Package config is the decoder's configuration, read from and written as
// a Hugging Face config.json. What config.json calls each size, the fields
// only one architecture has, and the choices that differ between
// architectures (learned positions or RoPE, biases) are the architecture's
// own: its folder under model/ declares an Arch, and model/gpt's table
// registers it. The checks every config passes are here.
package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Config describes a model. Its JSON form is the Hugging Face config.json of
// the architecture (JSON, Parse).
type Config struct {
	Arch         string  // config.json's model_type: "gpt2", "llama", "qwen2" or "mistral"
	Vocab        int     // vocabulary size
	Context      int     // maximum sequence length
	Layers       int     // transformer blocks
	Heads        int     // query heads
	KVHeads      int     // key/value heads (grouped-query attention)
	Hidden       int     // model width
	Intermediate int     // MLP width
	Eps          float32 // norm epsilon
	RopeTheta    float64 // RoPE base (architectures without learned positions)
	// RopeScaling is Llama 3.1's RoPE scaling (rope_type "llama3"); nil: none.
	RopeScaling *RopeScaling
	// SlidingWindow, if positive, limits attention to the last
	// SlidingWindow positions (Mistral's sliding_window).
	SlidingWindow int
	Bias          bool    // biases (gpt2: in linear layers and LayerNorm; qwen2: q/k/v; llama: attention_bias, q/k/v/o)
	Activation    string  // gpt2: "gelu_new" (tanh) or "gelu" (exact); "" where there is no choice
	Tied          bool    // the LM head shares the token embedding
	Dropout       float32 // residual, embedding and attention-output dropout
	BOS, EOS      int     // special token ids (-1 if none)
}

// HeadDim returns the width of one attention head.
func (c *Config) HeadDim() int { return c.Hidden / c.Heads }

// Arch is what an architecture declares about its config.
type Arch struct {
	// Names are config.json's names of the Config fields Context, Layers,
	// Heads, KVHeads, Hidden, Intermediate, Eps and Dropout (Vocab is
	// "vocab_size" everywhere), for errors that name the field.
	Names map[string]string
	// LearnedPositions: positions are learned embeddings, one per position
	// up to the context, which is then a hard limit (GPT-2). Otherwise
	// positions are rotary (RoPE): the head size must be even and
	// rope_theta positive.
	LearnedPositions bool
	// FixedBias: the checkpoint format has every bias, as GPT-2's config
	// cannot turn them off; a model without biases writes zero ones (and
	// marks its config so) and ignores the file's when it loads.
	FixedBias bool
	// SlidingWindow: the architecture may limit attention to the last
	// positions (Mistral's sliding_window).
	SlidingWindow bool
	// Parse reads a config.json of the architecture (Head and Tail are
	// in it): every field but Arch, with the architecture's defaults.
	Parse func(b []byte) (*Config, error)
	// JSON returns the config.json to write for c: a struct with Head
	// first and Tail last, as transformers orders them.
	JSON func(c *Config) any
}

var archs = map[string]*Arch{}

// Register makes name (config.json's model_type) an architecture. It is
// called by model/gpt's table of architectures.
func Register(name string, a *Arch) { archs[name] = a }

func known() string {
	names := slices.Sorted(maps.Keys(archs))
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Head is the start of every config.json.
type Head struct {
	ModelType     string   `json:"model_type"`
	Architectures []string `json:"architectures,omitempty"`
	VocabSize     int      `json:"vocab_size"`
}

// Tail is the end of every config.json.
type Tail struct {
	Tie          *bool           `json:"tie_word_embeddings,omitempty"`
	BOS          json.RawMessage `json:"bos_token_id,omitempty"`
	EOS          json.RawMessage `json:"eos_token_id,omitempty"`
	TorchDType   string          `json:"torch_dtype,omitempty"`
	Transformers string          `json:"transformers_version,omitempty"`
}

// NewConfig is the config of h and t's fields (Tied from tied, the
// architecture's default when tie_word_embeddings is absent).
func NewConfig(h Head, t Tail, tied bool) *Config {
	if t.Tie != nil {
		tied = *t.Tie
	}
	return &Config{Arch: h.ModelType, Vocab: h.VocabSize, BOS: tokenID(t.BOS), EOS: tokenID(t.EOS), Tied: tied}
}

// Head returns c's config.json head; classes are its transformers class
// names ("architectures").
func (c *Config) Head(classes ...string) Head {
	return Head{ModelType: c.Arch, Architectures: classes, VocabSize: c.Vocab}
}

// Tail returns c's config.json tail.
func (c *Config) Tail() Tail {
	id := func(v int) json.RawMessage {
		if v < 0 {
			return json.RawMessage("null")
		}
		return json.RawMessage(fmt.Sprint(v))
	}
	tied := c.Tied
	return Tail{Tie: &tied, BOS: id(c.BOS), EOS: id(c.EOS), TorchDType: "float32"}
}

func tokenID(raw json.RawMessage) int {
	if len(raw) == 0 || string(raw) == "null" {
		return -1
	}
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return n
	}
	var ns []int
	if json.Unmarshal(raw, &ns) == nil && len(ns) > 0 {
		return ns[0]
	}
	return -1
}

// Parse reads a Hugging Face config.json.
func Parse(b []byte) (*Config, error) {
	var h Head
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, err
	}
	a, ok := archs[h.ModelType]
	if !ok {
		return nil, fmt.Errorf("model_type %q not supported (want %s)", h.ModelType, known())
	}
	c, err := a.Parse(b)
	if err != nil {
		return nil, err
	}
	c.Arch = h.ModelType
	return c, c.validate()
}

// JSON returns the config as Hugging Face's config.json.
func (c *Config) JSON() ([]byte, error) {
	a, ok := archs[c.Arch]
	if !ok {
		return nil, fmt.Errorf("gpt: unknown architecture %q (want %s)", c.Arch, known())
	}
	return json.MarshalIndent(a.JSON(c), "", "  ")
}

// LearnedPositions reports whether c's architecture learns its positions
// (Arch.LearnedPositions).
func (c *Config) LearnedPositions() bool { a := archs[c.Arch]; return a != nil && a.LearnedPositions }

// FixedBias reports whether c's checkpoints have every bias whatever Bias
// says (Arch.FixedBias).
func (c *Config) FixedBias() bool { a := archs[c.Arch]; return a != nil && a.FixedBias }

// Field returns the config.json name of a Config field for c's
// architecture.
func (c *Config) Field(name string) string {
	if name == "Vocab" {
		return "vocab_size"
	}
	if a := archs[c.Arch]; a != nil {
		if n, ok := a.Names[name]; ok {
			return n
		}
	}
	return name
}

// Limits on a config's sizes: far above any released model's, far below
// what would overflow the size arithmetic or exhaust memory before the
// weights file is checked against the config.
const (
	maxVocab        = 1 << 24
	maxContext      = 1 << 22
	MaxLayers       = 1 << 12
	maxHidden       = 1 << 17
	maxIntermediate = 1 << 19
)

// Validate checks the config is a model golem can build, with sizes in
// bounds; errors name the config.json field.
func (c *Config) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("gpt: %w", err)
	}
	return nil
}

func (c *Config) validate() error {
	a, ok := archs[c.Arch]
	if !ok {
		return fmt.Errorf("unknown architecture %q (want %s)", c.Arch, known())
	}
	for _, s := range []struct {
		name string
		v    int
		max  int
	}{
		{"Vocab", c.Vocab, maxVocab}, {"Context", c.Context, maxContext}, {"Layers", c.Layers, MaxLayers},
		{"Hidden", c.Hidden, maxHidden}, {"Heads", c.Heads, maxHidden}, {"KVHeads", c.KVHeads, maxHidden},
		{"Intermediate", c.Intermediate, maxIntermediate},
	} {
		if s.v <= 0 {
			return fmt.Errorf("%q is %d, must be positive", c.Field(s.name), s.v)
		}
		if s.v > s.max {
			return fmt.Errorf("%q is %d, more than golem's limit of %d", c.Field(s.name), s.v, s.max)
		}
	}
	switch {
	case c.Hidden%c.Heads != 0:
		return fmt.Errorf("%q %d is not divisible by %q %d", c.Field("Hidden"), c.Hidden, c.Field("Heads"), c.Heads)
	case c.Heads%c.KVHeads != 0:
		return fmt.Errorf("%q %d is not a multiple of %q %d", c.Field("Heads"), c.Heads, c.Field("KVHeads"), c.KVHeads)
	case !a.LearnedPositions && c.HeadDim()%2 != 0:
		return fmt.Errorf("RoPE needs an even head size, have %d (%q %d / %q %d)", c.HeadDim(), c.Field("Hidden"), c.Hidden, c.Field("Heads"), c.Heads)
	case !(c.Eps > 0 && c.Eps < 1): // also refuses NaN; float32 turns tiny values to 0, huge ones to Inf
		return fmt.Errorf("%q is %g, must be in (0, 1)", c.Field("Eps"), c.Eps)
	case !(c.Dropout >= 0 && c.Dropout < 1):
		return fmt.Errorf("%q is %g, must be in [0, 1)", c.Field("Dropout"), c.Dropout)
	case !a.LearnedPositions && !(c.RopeTheta > 0 && !math.IsInf(c.RopeTheta, 1)):
		return fmt.Errorf("\"rope_theta\" is %g, must be positive and finite", c.RopeTheta)
	case c.SlidingWindow < 0:
		return fmt.Errorf("\"sliding_window\" is %d, must be positive or null", c.SlidingWindow)
	case c.SlidingWindow > 0 && !a.SlidingWindow:
		return fmt.Errorf("model_type %q has no sliding window (Mistral's)", c.Arch)
	case c.RopeScaling != nil && a.LearnedPositions:
		return fmt.Errorf("model_type %q learns its positions: it has no RoPE to scale", c.Arch)
	}
	if c.RopeScaling != nil {
		return c.RopeScaling.Validate()
	}
	return nil
}

// Or returns *p, or d when p is nil (a config.json field left out).
func Or(p *float64, d float64) float64 {
	if p == nil {
		return d
	}
	return *p
}

// Ptr returns a pointer to v.
func Ptr[T any](v T) *T { return &v }

// ShortFloat is x as the float64 with x's shortest decimal form, so that
// JSON says 1e-05 and 0.05, not float32's 0.000009999999747378752 and
// 0.05000000074505806 (either reads back as the same float32).
func ShortFloat(x float32) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
	return v
}

// RopeScaling is config.json's rope_scaling (rope_parameters in
// transformers 5) of rope_type "llama3", Llama 3.1's and 3.2's: the low
// frequencies divided by Factor, the high ones kept, a smooth blend
// between.
type RopeScaling struct {
	Factor          float64 `json:"factor"`
	LowFreqFactor   float64 `json:"low_freq_factor"`
	HighFreqFactor  float64 `json:"high_freq_factor"`
	OriginalContext int     `json:"original_max_position_embeddings"`
}

// Validate checks the scaling's numbers; errors name the config field.
func (s *RopeScaling) Validate() error {
	switch {
	case !(s.Factor > 0 && s.Factor < 1e6):
		return fmt.Errorf("rope_scaling.factor is %g, must be positive", s.Factor)
	case !(s.LowFreqFactor > 0 && s.LowFreqFactor < 1e6):
		return fmt.Errorf("rope_scaling.low_freq_factor is %g, must be positive", s.LowFreqFactor)
	case !(s.HighFreqFactor > s.LowFreqFactor && s.HighFreqFactor < 1e6):
		return fmt.Errorf("rope_scaling.high_freq_factor is %g, must be more than low_freq_factor %g", s.HighFreqFactor, s.LowFreqFactor)
	case s.OriginalContext <= 0:
		return fmt.Errorf("rope_scaling.original_max_position_embeddings is %d, must be positive", s.OriginalContext)
	}
	return nil
}
