// Package gpt holds decoder-only transformer language models: GPT-2
// (learned positions, LayerNorm, GELU, Conv1D weights) and Llama/Qwen2 (RoPE,
// RMSNorm, SwiGLU, grouped-query attention; Qwen2 adds q/k/v biases). They
// are configured from, loaded from and saved to Hugging Face model folders.
package gpt

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/golem-ml/golem/internal/regfile"
	"github.com/golem-ml/golem/model/llama"
)

// Config describes a model. Its JSON form is the Hugging Face config.json of
// the architecture (written by Save, read by LoadConfig).
type Config struct {
	Arch         string  // "gpt2", "llama", "qwen2" or "mistral"
	Vocab        int     // vocabulary size
	Context      int     // maximum sequence length
	Layers       int     // transformer blocks
	Heads        int     // query heads
	KVHeads      int     // key/value heads (grouped-query attention)
	Hidden       int     // model width
	Intermediate int     // MLP width
	Eps          float32 // norm epsilon
	RopeTheta    float64 // RoPE base (llama, qwen2, mistral)
	// RopeScaling is Llama 3.1's RoPE scaling (rope_type "llama3"); nil: none.
	RopeScaling *llama.RopeScaling
	// SlidingWindow, if positive, limits attention to the last
	// SlidingWindow positions (Mistral's sliding_window).
	SlidingWindow int
	Bias          bool    // gpt2: biases in linear layers and LayerNorm
	Activation    string  // gpt2: "gelu_new" (tanh) or "gelu" (exact)
	Tied          bool    // the LM head shares the token embedding
	Dropout       float32 // residual, embedding and attention-output dropout
	BOS, EOS      int     // special token ids (-1 if none)
}

// HeadDim returns the width of one attention head.
func (c *Config) HeadDim() int { return c.Hidden / c.Heads }

// Limits on a config's sizes: far above any released model's, far below
// what would overflow the size arithmetic or exhaust memory before the
// weights file is checked against the config.
const (
	maxVocab        = 1 << 24
	maxContext      = 1 << 22
	maxLayers       = 1 << 12
	maxHidden       = 1 << 17
	maxIntermediate = 1 << 19
)

// field returns the config.json name of a Config field for c's architecture.
func (c *Config) field(name string) string {
	gpt2 := c.Arch == "gpt2"
	pick := func(g, l string) string {
		if gpt2 {
			return g
		}
		return l
	}
	switch name {
	case "Vocab":
		return "vocab_size"
	case "Context":
		return pick("n_positions", "max_position_embeddings")
	case "Layers":
		return pick("n_layer", "num_hidden_layers")
	case "Heads":
		return pick("n_head", "num_attention_heads")
	case "KVHeads":
		return pick("n_head", "num_key_value_heads")
	case "Hidden":
		return pick("n_embd", "hidden_size")
	case "Intermediate":
		return pick("n_inner", "intermediate_size")
	case "Eps":
		return pick("layer_norm_epsilon", "rms_norm_eps")
	case "Dropout":
		return "resid_pdrop"
	}
	return name
}

// Validate checks the config is a model golem can build, with sizes in
// bounds; errors name the config.json field.
func (c *Config) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("gpt: %w", err)
	}
	return nil
}

func (c *Config) validate() error {
	if _, ok := archs[c.Arch]; !ok {
		return fmt.Errorf("unknown architecture %q (want gpt2, llama, qwen2 or mistral)", c.Arch)
	}
	for _, s := range []struct {
		name string
		v    int
		max  int
	}{
		{"Vocab", c.Vocab, maxVocab}, {"Context", c.Context, maxContext}, {"Layers", c.Layers, maxLayers},
		{"Hidden", c.Hidden, maxHidden}, {"Heads", c.Heads, maxHidden}, {"KVHeads", c.KVHeads, maxHidden},
		{"Intermediate", c.Intermediate, maxIntermediate},
	} {
		if s.v <= 0 {
			return fmt.Errorf("%q is %d, must be positive", c.field(s.name), s.v)
		}
		if s.v > s.max {
			return fmt.Errorf("%q is %d, more than golem's limit of %d", c.field(s.name), s.v, s.max)
		}
	}
	switch {
	case c.Hidden%c.Heads != 0:
		return fmt.Errorf("%q %d is not divisible by %q %d", c.field("Hidden"), c.Hidden, c.field("Heads"), c.Heads)
	case c.Heads%c.KVHeads != 0:
		return fmt.Errorf("%q %d is not a multiple of %q %d", c.field("Heads"), c.Heads, c.field("KVHeads"), c.KVHeads)
	case c.Arch != "gpt2" && c.HeadDim()%2 != 0:
		return fmt.Errorf("RoPE needs an even head size, have %d (%q %d / %q %d)", c.HeadDim(), c.field("Hidden"), c.Hidden, c.field("Heads"), c.Heads)
	case !(c.Eps > 0 && c.Eps < 1): // also refuses NaN; float32 turns tiny values to 0, huge ones to Inf
		return fmt.Errorf("%q is %g, must be in (0, 1)", c.field("Eps"), c.Eps)
	case !(c.Dropout >= 0 && c.Dropout < 1):
		return fmt.Errorf("%q is %g, must be in [0, 1)", c.field("Dropout"), c.Dropout)
	case c.Arch != "gpt2" && !(c.RopeTheta > 0 && !math.IsInf(c.RopeTheta, 1)):
		return fmt.Errorf("\"rope_theta\" is %g, must be positive and finite", c.RopeTheta)
	case c.SlidingWindow < 0:
		return fmt.Errorf("\"sliding_window\" is %d, must be positive or null", c.SlidingWindow)
	case c.SlidingWindow > 0 && c.Arch != "mistral":
		return fmt.Errorf("a sliding window is Mistral's (model_type %q has none)", c.Arch)
	case c.RopeScaling != nil && c.Arch == "gpt2":
		return fmt.Errorf("gpt2 has no RoPE to scale")
	}
	if c.RopeScaling != nil {
		return c.RopeScaling.Validate()
	}
	return nil
}

// hfConfig is the union of the config.json fields golem reads.
type hfConfig struct {
	ModelType     string   `json:"model_type"`
	Architectures []string `json:"architectures,omitempty"`
	VocabSize     int      `json:"vocab_size"`
	// GPT-2 names.
	NPositions  int      `json:"n_positions,omitempty"`
	NEmbd       int      `json:"n_embd,omitempty"`
	NLayer      int      `json:"n_layer,omitempty"`
	NHead       int      `json:"n_head,omitempty"`
	NInner      *int     `json:"n_inner,omitempty"`
	Activation  string   `json:"activation_function,omitempty"`
	LNEps       *float64 `json:"layer_norm_epsilon,omitempty"`
	ResidPdrop  *float64 `json:"resid_pdrop,omitempty"`
	EmbdPdrop   *float64 `json:"embd_pdrop,omitempty"`
	AttnPdrop   *float64 `json:"attn_pdrop,omitempty"`
	GolemNoBias bool     `json:"golem_no_bias,omitempty"`
	// Llama / Qwen2 names.
	MaxPos        int             `json:"max_position_embeddings,omitempty"`
	HiddenSize    int             `json:"hidden_size,omitempty"`
	Intermediate  int             `json:"intermediate_size,omitempty"`
	NumLayers     int             `json:"num_hidden_layers,omitempty"`
	NumHeads      int             `json:"num_attention_heads,omitempty"`
	NumKVHeads    int             `json:"num_key_value_heads,omitempty"`
	HeadDim       int             `json:"head_dim,omitempty"`
	HiddenAct     string          `json:"hidden_act,omitempty"`
	RMSEps        *float64        `json:"rms_norm_eps,omitempty"`
	RopeTheta     float64         `json:"rope_theta,omitempty"`
	RopeParams    *ropeParams     `json:"rope_parameters,omitempty"`
	RopeScaling   *ropeParams     `json:"rope_scaling,omitempty"`
	SlidingWindow *int            `json:"sliding_window,omitempty"`
	UseSliding    *bool           `json:"use_sliding_window,omitempty"`
	AttentionBias *bool           `json:"attention_bias,omitempty"`
	MLPBias       *bool           `json:"mlp_bias,omitempty"`
	Tie           *bool           `json:"tie_word_embeddings,omitempty"`
	BOS           json.RawMessage `json:"bos_token_id,omitempty"`
	EOS           json.RawMessage `json:"eos_token_id,omitempty"`
	TorchDType    string          `json:"torch_dtype,omitempty"`
	Transformers  string          `json:"transformers_version,omitempty"`
}

// ropeParams is rope_parameters (transformers 5: the theta and the
// scaling) or rope_scaling (transformers 4: the scaling, "type" in older
// files).
type ropeParams struct {
	RopeTheta float64 `json:"rope_theta,omitempty"`
	RopeType  string  `json:"rope_type,omitempty"`
	Type      string  `json:"type,omitempty"`
	llama.RopeScaling
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

// maxConfigBytes bounds config.json.
const maxConfigBytes = 16 << 20

// LoadConfig reads dir/config.json (or a config.json path).
func LoadConfig(path string) (*Config, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "config.json")
	}
	b, err := regfile.ReadFile(path, maxConfigBytes)
	if err != nil {
		return nil, fmt.Errorf("gpt: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("gpt: %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig reads a Hugging Face config.json.
func ParseConfig(b []byte) (*Config, error) {
	var h hfConfig
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, err
	}
	c := &Config{Arch: h.ModelType, Vocab: h.VocabSize, BOS: tokenID(h.BOS), EOS: tokenID(h.EOS)}
	f := func(p *float64, d float64) float64 {
		if p == nil {
			return d
		}
		return *p
	}
	switch h.ModelType {
	case "gpt2":
		c.Context, c.Hidden, c.Layers, c.Heads = h.NPositions, h.NEmbd, h.NLayer, h.NHead
		c.KVHeads = c.Heads
		c.Intermediate = 4 * c.Hidden
		if h.NInner != nil {
			c.Intermediate = *h.NInner
		}
		c.Activation = h.Activation
		if c.Activation == "" {
			c.Activation = "gelu_new"
		}
		if c.Activation != "gelu_new" && c.Activation != "gelu" && c.Activation != "gelu_pytorch_tanh" {
			return nil, fmt.Errorf("activation_function %q not supported", c.Activation)
		}
		c.Eps = float32(f(h.LNEps, 1e-5))
		c.Bias = !h.GolemNoBias
		c.Tied = h.Tie == nil || *h.Tie
		c.Dropout = float32(f(h.ResidPdrop, 0))
	case "llama", "qwen2", "mistral":
		c.Context, c.Hidden, c.Layers, c.Heads = h.MaxPos, h.HiddenSize, h.NumLayers, h.NumHeads
		c.KVHeads = h.NumKVHeads
		if c.KVHeads == 0 {
			c.KVHeads = c.Heads
		}
		c.Intermediate = h.Intermediate
		if h.HiddenAct != "" && h.HiddenAct != "silu" {
			return nil, fmt.Errorf("hidden_act %q not supported", h.HiddenAct)
		}
		if h.HeadDim != 0 && c.Heads != 0 && h.HeadDim*c.Heads != c.Hidden {
			return nil, fmt.Errorf("head_dim %d x %d heads != hidden_size %d: not supported", h.HeadDim, c.Heads, c.Hidden)
		}
		c.Eps = float32(f(h.RMSEps, 1e-6))
		c.RopeTheta = h.RopeTheta
		for _, r := range []*ropeParams{h.RopeScaling, h.RopeParams} {
			if r == nil {
				continue
			}
			if r.RopeTheta != 0 {
				c.RopeTheta = r.RopeTheta
			}
			typ := r.RopeType
			if typ == "" {
				typ = r.Type
			}
			switch typ {
			case "", "default":
			case "llama3":
				s := r.RopeScaling
				c.RopeScaling = &s
			default:
				return nil, fmt.Errorf("rope_type %q not supported (golem reads default and llama3)", typ)
			}
		}
		if c.RopeTheta == 0 {
			c.RopeTheta = 10000
		}
		if h.SlidingWindow != nil && h.ModelType == "mistral" {
			c.SlidingWindow = *h.SlidingWindow
		}
		if h.UseSliding != nil && *h.UseSliding {
			return nil, fmt.Errorf("use_sliding_window not supported (Qwen2's per-layer sliding window)")
		}
		c.Bias = h.ModelType == "qwen2" || (h.AttentionBias != nil && *h.AttentionBias)
		if h.MLPBias != nil && *h.MLPBias {
			return nil, fmt.Errorf("mlp_bias not supported")
		}
		c.Tied = h.Tie != nil && *h.Tie
	default:
		return nil, fmt.Errorf("model_type %q not supported (want gpt2, llama, qwen2 or mistral)", h.ModelType)
	}
	return c, c.validate()
}

// JSON returns the config as Hugging Face's config.json.
func (c *Config) JSON() ([]byte, error) {
	ptr := func(v float64) *float64 { return &v }
	b := func(v bool) *bool { return &v }
	id := func(v int) json.RawMessage {
		if v < 0 {
			return json.RawMessage("null")
		}
		return json.RawMessage(fmt.Sprint(v))
	}
	h := hfConfig{ModelType: c.Arch, VocabSize: c.Vocab, Tie: b(c.Tied), BOS: id(c.BOS), EOS: id(c.EOS), TorchDType: "float32"}
	switch c.Arch {
	case "gpt2":
		h.Architectures = []string{archs[c.Arch].causalLM}
		h.NPositions, h.NEmbd, h.NLayer, h.NHead = c.Context, c.Hidden, c.Layers, c.Heads
		if c.Intermediate != 4*c.Hidden {
			n := c.Intermediate
			h.NInner = &n
		}
		h.Activation = c.Activation
		h.LNEps = ptr(shortFloat(c.Eps))
		h.ResidPdrop, h.EmbdPdrop, h.AttnPdrop = ptr(shortFloat(c.Dropout)), ptr(shortFloat(c.Dropout)), ptr(0)
		h.GolemNoBias = !c.Bias
	default:
		h.Architectures = []string{archs[c.Arch].causalLM}
		h.MaxPos, h.HiddenSize, h.Intermediate = c.Context, c.Hidden, c.Intermediate
		h.NumLayers, h.NumHeads, h.NumKVHeads, h.HeadDim = c.Layers, c.Heads, c.KVHeads, c.HeadDim()
		h.HiddenAct = "silu"
		h.RMSEps = ptr(shortFloat(c.Eps))
		h.RopeTheta = c.RopeTheta
		if c.RopeScaling != nil {
			h.RopeScaling = &ropeParams{RopeType: "llama3", RopeScaling: *c.RopeScaling}
		}
		if c.Arch == "mistral" {
			w := c.SlidingWindow
			if w > 0 {
				h.SlidingWindow = &w
			}
		}
		if c.Arch == "llama" {
			h.AttentionBias = b(c.Bias)
			h.MLPBias = b(false)
		}
	}
	return json.MarshalIndent(h, "", "  ")
}

// shortFloat is x as the float64 with x's shortest decimal form, so that
// JSON says 1e-05 and 0.05, not float32's 0.000009999999747378752 and
// 0.05000000074505806 (either reads back as the same float32).
func shortFloat(x float32) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
	return v
}
