package llama

import (
	"encoding/json"
	"fmt"

	"github.com/golem-ml/golem/model/config"
)

// hfConfig is Llama's and Qwen2's config.json.
type hfConfig struct {
	config.Head
	MaxPos        int         `json:"max_position_embeddings,omitempty"`
	HiddenSize    int         `json:"hidden_size,omitempty"`
	Intermediate  int         `json:"intermediate_size,omitempty"`
	NumLayers     int         `json:"num_hidden_layers,omitempty"`
	NumHeads      int         `json:"num_attention_heads,omitempty"`
	NumKVHeads    int         `json:"num_key_value_heads,omitempty"`
	HeadDim       int         `json:"head_dim,omitempty"`
	HiddenAct     string      `json:"hidden_act,omitempty"`
	RMSEps        *float64    `json:"rms_norm_eps,omitempty"`
	RopeTheta     float64     `json:"rope_theta,omitempty"`
	RopeParams    *ropeParams `json:"rope_parameters,omitempty"`
	AttentionBias *bool       `json:"attention_bias,omitempty"`
	MLPBias       *bool       `json:"mlp_bias,omitempty"`
	config.Tail
}

type ropeParams struct {
	RopeTheta float64 `json:"rope_theta"`
	RopeType  string  `json:"rope_type"`
}

// Config returns what the config.json of name ("llama", or "qwen2":
// Llama with q/k/v biases, which its config does not mention) looks like.
func Config(name string) *config.Arch {
	qwen2 := name == "qwen2"
	return &config.Arch{
		Names: map[string]string{"Context": "max_position_embeddings", "Layers": "num_hidden_layers", "Heads": "num_attention_heads",
			"KVHeads": "num_key_value_heads", "Hidden": "hidden_size", "Intermediate": "intermediate_size", "Eps": "rms_norm_eps", "Dropout": "resid_pdrop"},
		Parse: func(b []byte) (*config.Config, error) { return parseConfig(b, qwen2) },
		JSON:  func(c *config.Config) any { return configJSON(c, qwen2) },
	}
}

func parseConfig(b []byte, qwen2 bool) (*config.Config, error) {
	var h hfConfig
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, err
	}
	c := config.NewConfig(h.Head, h.Tail, false)
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
	c.Eps = float32(config.Or(h.RMSEps, 1e-6))
	c.RopeTheta = h.RopeTheta
	if h.RopeParams != nil {
		if h.RopeParams.RopeType != "" && h.RopeParams.RopeType != "default" {
			return nil, fmt.Errorf("rope_type %q not supported", h.RopeParams.RopeType)
		}
		c.RopeTheta = h.RopeParams.RopeTheta
	}
	if c.RopeTheta == 0 {
		c.RopeTheta = 10000
	}
	c.Bias = qwen2 || (h.AttentionBias != nil && *h.AttentionBias)
	if h.MLPBias != nil && *h.MLPBias {
		return nil, fmt.Errorf("mlp_bias not supported")
	}
	return c, nil
}

func configJSON(c *config.Config, qwen2 bool) any {
	h := hfConfig{Head: c.Head(CausalLM[c.Arch]), Tail: c.Tail()}
	h.MaxPos, h.HiddenSize, h.Intermediate = c.Context, c.Hidden, c.Intermediate
	h.NumLayers, h.NumHeads, h.NumKVHeads, h.HeadDim = c.Layers, c.Heads, c.KVHeads, c.HeadDim()
	h.HiddenAct = "silu"
	h.RMSEps = config.Ptr(config.ShortFloat(c.Eps))
	h.RopeTheta = c.RopeTheta
	if !qwen2 {
		h.AttentionBias = config.Ptr(c.Bias)
		h.MLPBias = config.Ptr(false)
	}
	return h
}
