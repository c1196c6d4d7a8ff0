package clip

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/golem-ml/golem/model/config"
	"github.com/golem-ml/golem/model/vit"
	"github.com/golem-ml/golem/model/weights"
)

// Config describes a CLIP model: its towers, the width of the shared
// embedding space and the learned temperature's start. Its JSON form is
// transformers' CLIPConfig (config.json of a CLIPModel folder).
type Config struct {
	Vision         vit.Config // Arch vit.CLIP
	Text           TextConfig
	Projection     int     // projection_dim
	LogitScaleInit float64 // logit_scale_init_value: log of the inverse temperature at initialisation
}

// TextConfig is CLIP's text tower (transformers' CLIPTextConfig).
type TextConfig struct {
	Vocab        int     // vocab_size
	Context      int     // max_position_embeddings
	Hidden       int     // hidden_size
	Layers       int     // num_hidden_layers
	Heads        int     // num_attention_heads
	Intermediate int     // intermediate_size
	Activation   string  // hidden_act
	Eps          float32 // layer_norm_eps
	BOS, EOS     int     // bos_token_id, eos_token_id: a text is pooled at its EOS (see Model.TextFeatures)
	Pad          int     // pad_token_id
}

// Limits on a config's sizes, as model/vit's.
const (
	maxVocab   = 1 << 24
	maxContext = 1 << 16
	maxLayers  = 1 << 10
	maxHidden  = 1 << 16
)

// Validate checks the config is a model golem can build; errors name the
// config.json field.
func (c *Config) Validate() error {
	if c.Vision.Arch != vit.CLIP {
		return fmt.Errorf("clip: vision_config's model_type is %q, want %q", c.Vision.Arch, vit.CLIP)
	}
	if err := c.Vision.Validate(); err != nil {
		return fmt.Errorf("vision_config: %w", err)
	}
	t := &c.Text
	for _, s := range []struct {
		name string
		v    int
		max  int
	}{
		{"vocab_size", t.Vocab, maxVocab}, {"max_position_embeddings", t.Context, maxContext},
		{"hidden_size", t.Hidden, maxHidden}, {"num_hidden_layers", t.Layers, maxLayers},
		{"num_attention_heads", t.Heads, maxHidden}, {"intermediate_size", t.Intermediate, 1 << 18},
	} {
		if s.v <= 0 || s.v > s.max {
			return fmt.Errorf("clip: text_config %q is %d, must be in [1, %d]", s.name, s.v, s.max)
		}
	}
	switch {
	case c.Projection <= 0 || c.Projection > maxHidden:
		return fmt.Errorf("clip: \"projection_dim\" is %d, must be in [1, %d]", c.Projection, maxHidden)
	case t.Hidden%t.Heads != 0:
		return fmt.Errorf("clip: text_config \"hidden_size\" %d is not divisible by \"num_attention_heads\" %d", t.Hidden, t.Heads)
	case !(t.Eps > 0 && t.Eps < 1):
		return fmt.Errorf("clip: text_config \"layer_norm_eps\" is %g, must be in (0, 1)", t.Eps)
	case t.EOS < 0 || t.EOS >= t.Vocab:
		return fmt.Errorf("clip: text_config \"eos_token_id\" %d is not in the vocabulary of %d", t.EOS, t.Vocab)
	case c.LogitScaleInit != c.LogitScaleInit || c.LogitScaleInit > 100 || c.LogitScaleInit < -100:
		return fmt.Errorf("clip: \"logit_scale_init_value\" is %g, must be in [-100, 100]", c.LogitScaleInit)
	}
	if _, err := vit.ActivationByName(t.Activation); err != nil {
		return fmt.Errorf("clip: text_config: %w", err)
	}
	return nil
}

// jsonConfig is a CLIPModel's config.json.
type jsonConfig struct {
	ModelType      string          `json:"model_type"`
	Architectures  []string        `json:"architectures,omitempty"`
	Projection     int             `json:"projection_dim"`
	LogitScaleInit float64         `json:"logit_scale_init_value"`
	Text           json.RawMessage `json:"text_config"`
	Vision         json.RawMessage `json:"vision_config"`
	TorchDType     string          `json:"torch_dtype,omitempty"`
	Transformers   string          `json:"transformers_version,omitempty"`
}

type jsonText struct {
	ModelType    string  `json:"model_type"`
	Vocab        int     `json:"vocab_size"`
	Context      int     `json:"max_position_embeddings"`
	Hidden       int     `json:"hidden_size"`
	Layers       int     `json:"num_hidden_layers"`
	Heads        int     `json:"num_attention_heads"`
	Intermediate int     `json:"intermediate_size"`
	Activation   string  `json:"hidden_act"`
	Eps          float64 `json:"layer_norm_eps"`
	BOS          int     `json:"bos_token_id"`
	EOS          int     `json:"eos_token_id"`
	Pad          int     `json:"pad_token_id"`
	Dropout      float64 `json:"attention_dropout"`
}

// IsCLIP reports whether dir holds a config.json of model_type "clip" (a
// CLIPModel folder).
func IsCLIP(dir string) bool {
	t, err := weights.ModelType(filepath.Join(dir, weights.ConfigFile))
	return err == nil && t == "clip"
}

// LoadConfig reads dir/config.json (or a config.json path), bounded;
// errors name the file (weights.LoadConfig).
func LoadConfig(path string) (*Config, error) { return weights.LoadConfig(path, ParseConfig) }

// ParseConfig reads a CLIPModel's config.json; fields it leaves out take
// transformers' defaults (CLIPConfig, CLIPTextConfig, CLIPVisionConfig).
func ParseConfig(b []byte) (*Config, error) {
	h := jsonConfig{Projection: 512, LogitScaleInit: 2.6592}
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	if h.ModelType != "clip" {
		return nil, fmt.Errorf("clip: model_type %q not supported (want clip: a CLIPModel)", h.ModelType)
	}
	t := jsonText{Vocab: 49408, Context: 77, Hidden: 512, Layers: 12, Heads: 8, Intermediate: 2048,
		Activation: "quick_gelu", Eps: 1e-5, BOS: 49406, EOS: 49407, Pad: 1}
	if len(h.Text) > 0 {
		if err := json.Unmarshal(h.Text, &t); err != nil {
			return nil, fmt.Errorf("clip: text_config: %w", err)
		}
	}
	if t.Dropout != 0 {
		return nil, fmt.Errorf("clip: text_config \"attention_dropout\" %g not supported; set it to 0", t.Dropout)
	}
	vision := h.Vision
	if len(vision) == 0 {
		vision = []byte("{}")
	}
	v, err := vit.ParseConfig(vision, vit.CLIP)
	if err != nil {
		return nil, fmt.Errorf("clip: vision_config: %w", err)
	}
	c := &Config{Vision: *v, Projection: h.Projection, LogitScaleInit: h.LogitScaleInit, Text: TextConfig{
		Vocab: t.Vocab, Context: t.Context, Hidden: t.Hidden, Layers: t.Layers, Heads: t.Heads, Intermediate: t.Intermediate,
		Activation: t.Activation, Eps: float32(t.Eps), BOS: t.BOS, EOS: t.EOS, Pad: t.Pad}}
	return c, c.Validate()
}

// JSON returns the config as transformers' config.json of a CLIPModel.
func (c *Config) JSON() ([]byte, error) {
	v := c.Vision.HF()
	v.Architectures, v.TorchDType = nil, ""
	vj, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	t := &c.Text
	tj, err := json.Marshal(jsonText{ModelType: "clip_text_model", Vocab: t.Vocab, Context: t.Context, Hidden: t.Hidden,
		Layers: t.Layers, Heads: t.Heads, Intermediate: t.Intermediate, Activation: t.Activation,
		Eps: config.ShortFloat(t.Eps), BOS: t.BOS, EOS: t.EOS, Pad: t.Pad})
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(jsonConfig{ModelType: "clip", Architectures: []string{"CLIPModel"}, Projection: c.Projection,
		LogitScaleInit: c.LogitScaleInit, Text: tj, Vision: vj, TorchDType: "float32"}, "", "  ")
}
