package vit

import (
	"encoding/json"
	"fmt"

	"github.com/golem-ml/golem/model/config"
	"github.com/golem-ml/golem/model/weights"
)

// The layouts a Config builds, by config.json's model_type.
const (
	ViT  = "vit"               // transformers' ViTModel (modeling_vit.py)
	MAE  = "vit_mae"           // ViTMAEForPreTraining (modeling_vit_mae.py): encoder and decoder
	CLIP = "clip_vision_model" // CLIP's vision tower, CLIPVisionModel (modeling_clip.py)
)

// Config describes a ViT. Its JSON form is the Hugging Face config.json of
// the layout (Save writes it, LoadConfig reads it); fields a config.json
// leaves out take transformers' defaults for its model_type.
type Config struct {
	Arch         string  // ViT, MAE or CLIP
	Image        int     // image_size: images are Image x Image
	Patch        int     // patch_size
	Channels     int     // num_channels
	Hidden       int     // hidden_size
	Layers       int     // num_hidden_layers
	Heads        int     // num_attention_heads
	Intermediate int     // intermediate_size (the MLP's width)
	Activation   string  // hidden_act: "gelu" (exact), "gelu_new" / "gelu_pytorch_tanh" (tanh form), "quick_gelu"
	Eps          float32 // layer_norm_eps
	QKVBias      bool    // qkv_bias (ViT, MAE; CLIP's projections always have biases)
	Pooler       bool    // ViT: ViTModel's pooler (dense and tanh over the class token); Load takes it from the checkpoint

	// MAE's decoder and loss.
	DecoderHidden, DecoderLayers, DecoderHeads, DecoderIntermediate int
	MaskRatio                                                       float64 // mask_ratio: the share of patches hidden
	NormPixLoss                                                     bool    // norm_pix_loss: targets normalised per patch
}

// Patches returns the number of patches of an image.
func (c *Config) Patches() int { g := c.Image / c.Patch; return g * g }

// PatchDim returns the values of one patch (channels x patch x patch).
func (c *Config) PatchDim() int { return c.Channels * c.Patch * c.Patch }

// Limits on a config's sizes: far above any released ViT's, far below
// what would overflow the size arithmetic before the weights file is
// checked against the config.
const (
	maxImage  = 1 << 14
	maxLayers = 1 << 10
	maxHidden = 1 << 16
)

// Validate checks the config is a model golem can build, with sizes in
// bounds; errors name the config.json field.
func (c *Config) Validate() error {
	sizes := []struct {
		name string
		v    int
		max  int
	}{
		{"image_size", c.Image, maxImage}, {"patch_size", c.Patch, maxImage}, {"num_channels", c.Channels, 1 << 10},
		{"hidden_size", c.Hidden, maxHidden}, {"num_hidden_layers", c.Layers, maxLayers},
		{"num_attention_heads", c.Heads, maxHidden}, {"intermediate_size", c.Intermediate, 1 << 18},
	}
	if c.Arch == MAE {
		sizes = append(sizes, []struct {
			name string
			v    int
			max  int
		}{
			{"decoder_hidden_size", c.DecoderHidden, maxHidden}, {"decoder_num_hidden_layers", c.DecoderLayers, maxLayers},
			{"decoder_num_attention_heads", c.DecoderHeads, maxHidden}, {"decoder_intermediate_size", c.DecoderIntermediate, 1 << 18},
		}...)
	}
	switch c.Arch {
	case ViT, MAE, CLIP:
	default:
		return fmt.Errorf("vit: model_type %q not supported (want %s, %s or %s)", c.Arch, ViT, MAE, CLIP)
	}
	for _, s := range sizes {
		if s.v <= 0 {
			return fmt.Errorf("vit: %q is %d, must be positive", s.name, s.v)
		}
		if s.v > s.max {
			return fmt.Errorf("vit: %q is %d, more than golem's limit of %d", s.name, s.v, s.max)
		}
	}
	switch {
	case c.Image%c.Patch != 0:
		return fmt.Errorf("vit: \"image_size\" %d is not a multiple of \"patch_size\" %d", c.Image, c.Patch)
	case c.Hidden%c.Heads != 0:
		return fmt.Errorf("vit: \"hidden_size\" %d is not divisible by \"num_attention_heads\" %d", c.Hidden, c.Heads)
	case c.Arch == MAE && c.DecoderHidden%c.DecoderHeads != 0:
		return fmt.Errorf("vit: \"decoder_hidden_size\" %d is not divisible by \"decoder_num_attention_heads\" %d", c.DecoderHidden, c.DecoderHeads)
	case c.Arch == MAE && (c.Hidden%4 != 0 || c.DecoderHidden%4 != 0):
		return fmt.Errorf("vit: MAE's 2-D sin-cos positions need \"hidden_size\" %d and \"decoder_hidden_size\" %d to be multiples of 4", c.Hidden, c.DecoderHidden)
	case c.Arch == MAE && !(c.MaskRatio >= 0 && c.MaskRatio < 1):
		return fmt.Errorf("vit: \"mask_ratio\" is %g, must be in [0, 1)", c.MaskRatio)
	case !(c.Eps > 0 && c.Eps < 1):
		return fmt.Errorf("vit: \"layer_norm_eps\" is %g, must be in (0, 1)", c.Eps)
	}
	if _, err := ActivationByName(c.Activation); err != nil {
		return err
	}
	if c.Patches() > maxImage*4 {
		return fmt.Errorf("vit: %d patches (\"image_size\" %d / \"patch_size\" %d, squared), more than golem's limit of %d", c.Patches(), c.Image, c.Patch, maxImage*4)
	}
	return nil
}

// JSONConfig is a config.json of one of the layouts, as transformers
// writes it (the fields golem reads and writes).
type JSONConfig struct {
	ModelType                string   `json:"model_type"`
	Architectures            []string `json:"architectures,omitempty"`
	HiddenSize               int      `json:"hidden_size"`
	NumHiddenLayers          int      `json:"num_hidden_layers"`
	NumAttentionHeads        int      `json:"num_attention_heads"`
	IntermediateSize         int      `json:"intermediate_size"`
	HiddenAct                string   `json:"hidden_act"`
	LayerNormEps             float64  `json:"layer_norm_eps"`
	ImageSize                int      `json:"image_size"`
	PatchSize                int      `json:"patch_size"`
	NumChannels              int      `json:"num_channels"`
	QKVBias                  *bool    `json:"qkv_bias,omitempty"`
	HiddenDropout            *float64 `json:"hidden_dropout_prob,omitempty"`
	AttentionDropout         *float64 `json:"attention_probs_dropout_prob,omitempty"`
	EncoderStride            int      `json:"encoder_stride,omitempty"`
	DecoderHiddenSize        int      `json:"decoder_hidden_size,omitempty"`
	DecoderNumHiddenLayers   int      `json:"decoder_num_hidden_layers,omitempty"`
	DecoderNumAttentionHeads int      `json:"decoder_num_attention_heads,omitempty"`
	DecoderIntermediateSize  int      `json:"decoder_intermediate_size,omitempty"`
	MaskRatio                *float64 `json:"mask_ratio,omitempty"`
	NormPixLoss              *bool    `json:"norm_pix_loss,omitempty"`
	TorchDType               string   `json:"torch_dtype,omitempty"`
	Transformers             string   `json:"transformers_version,omitempty"`
}

// defaults returns transformers' defaults for model_type arch
// (ViTConfig, ViTMAEConfig, CLIPVisionConfig).
func defaults(arch string) JSONConfig {
	t, f := true, false
	r, z := 0.75, 0.0
	switch arch {
	case CLIP:
		return JSONConfig{ModelType: arch, HiddenSize: 768, NumHiddenLayers: 12, NumAttentionHeads: 12, IntermediateSize: 3072,
			HiddenAct: "quick_gelu", LayerNormEps: 1e-5, ImageSize: 224, PatchSize: 32, NumChannels: 3}
	case MAE:
		return JSONConfig{ModelType: arch, HiddenSize: 768, NumHiddenLayers: 12, NumAttentionHeads: 12, IntermediateSize: 3072,
			HiddenAct: "gelu", LayerNormEps: 1e-12, ImageSize: 224, PatchSize: 16, NumChannels: 3, QKVBias: &t,
			DecoderHiddenSize: 512, DecoderNumHiddenLayers: 8, DecoderNumAttentionHeads: 16, DecoderIntermediateSize: 2048,
			MaskRatio: &r, NormPixLoss: &f, HiddenDropout: &z, AttentionDropout: &z}
	}
	return JSONConfig{ModelType: arch, HiddenSize: 768, NumHiddenLayers: 12, NumAttentionHeads: 12, IntermediateSize: 3072,
		HiddenAct: "gelu", LayerNormEps: 1e-12, ImageSize: 224, PatchSize: 16, NumChannels: 3, QKVBias: &t,
		HiddenDropout: &z, AttentionDropout: &z}
}

// LoadConfig reads dir/config.json (or a config.json path), bounded;
// errors name the file (weights.LoadConfig).
func LoadConfig(path string) (*Config, error) {
	return weights.LoadConfig(path, func(b []byte) (*Config, error) { return ParseConfig(b, "") })
}

// ParseConfig reads a config.json of one of the layouts; arch is the
// model_type to assume when the JSON has none (CLIPModel's vision_config),
// "" for none.
func ParseConfig(b []byte, arch string) (*Config, error) {
	var probe struct {
		ModelType string `json:"model_type"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("vit: %w", err)
	}
	if probe.ModelType == "" {
		probe.ModelType = arch
	}
	switch probe.ModelType {
	case ViT, MAE, CLIP:
	default:
		return nil, fmt.Errorf("vit: model_type %q not supported (want %s, %s or %s)", probe.ModelType, ViT, MAE, CLIP)
	}
	h := defaults(probe.ModelType)
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("vit: %w", err)
	}
	h.ModelType = probe.ModelType
	if h.HiddenDropout != nil && *h.HiddenDropout != 0 || h.AttentionDropout != nil && *h.AttentionDropout != 0 {
		return nil, fmt.Errorf("vit: dropout (\"hidden_dropout_prob\", \"attention_probs_dropout_prob\") not supported; set them to 0")
	}
	c := &Config{Arch: h.ModelType, Image: h.ImageSize, Patch: h.PatchSize, Channels: h.NumChannels,
		Hidden: h.HiddenSize, Layers: h.NumHiddenLayers, Heads: h.NumAttentionHeads, Intermediate: h.IntermediateSize,
		Activation: h.HiddenAct, Eps: float32(h.LayerNormEps), QKVBias: h.QKVBias == nil || *h.QKVBias}
	if c.Arch == CLIP {
		c.QKVBias = true
	}
	if c.Arch == MAE {
		c.DecoderHidden, c.DecoderLayers, c.DecoderHeads, c.DecoderIntermediate = h.DecoderHiddenSize, h.DecoderNumHiddenLayers, h.DecoderNumAttentionHeads, h.DecoderIntermediateSize
		c.MaskRatio = *h.MaskRatio
		c.NormPixLoss = *h.NormPixLoss
	}
	return c, c.Validate()
}

// HF returns the config as transformers' config.json fields.
func (c *Config) HF() JSONConfig {
	z := 0.0
	h := JSONConfig{ModelType: c.Arch, HiddenSize: c.Hidden, NumHiddenLayers: c.Layers, NumAttentionHeads: c.Heads,
		IntermediateSize: c.Intermediate, HiddenAct: c.Activation, LayerNormEps: config.ShortFloat(c.Eps),
		ImageSize: c.Image, PatchSize: c.Patch, NumChannels: c.Channels, TorchDType: "float32"}
	switch c.Arch {
	case CLIP:
		h.Architectures = []string{"CLIPVisionModel"}
	case ViT:
		h.Architectures = []string{"ViTModel"}
	case MAE:
		h.Architectures = []string{"ViTMAEForPreTraining"}
		h.DecoderHiddenSize, h.DecoderNumHiddenLayers, h.DecoderNumAttentionHeads, h.DecoderIntermediateSize = c.DecoderHidden, c.DecoderLayers, c.DecoderHeads, c.DecoderIntermediate
		r, n := c.MaskRatio, c.NormPixLoss
		h.MaskRatio, h.NormPixLoss = &r, &n
	}
	if c.Arch != CLIP {
		b := c.QKVBias
		h.QKVBias, h.HiddenDropout, h.AttentionDropout = &b, &z, &z
		h.EncoderStride = c.Patch
	}
	return h
}

// JSON returns the config as Hugging Face's config.json.
func (c *Config) JSON() ([]byte, error) { return json.MarshalIndent(c.HF(), "", "  ") }
