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
	RopeScaling   *ropeParams `json:"rope_scaling,omitempty"`
	SlidingWindow *int        `json:"sliding_window,omitempty"`
	UseSliding    *bool       `json:"use_sliding_window,omitempty"`
	AttentionBias *bool       `json:"attention_bias,omitempty"`
	MLPBias       *bool       `json:"mlp_bias,omitempty"`
	config.Tail
}

// ropeParams is rope_parameters (transformers 5: the theta and the
// scaling) or rope_scaling (transformers 4: the scaling, "type" in older
// files).
type ropeParams struct {
	RopeTheta float64 `json:"rope_theta,omitempty"`
	RopeType  string  `json:"rope_type,omitempty"`
	Type      string  `json:"type,omitempty"`
	config.RopeScaling
}

// Config returns what the config.json of name ("llama"; "qwen2": Llama
// with q/k/v biases, which its config does not mention; "mistral": Llama
// with a sliding window) looks like.
func Config(name string) *config.Arch {
	qwen2 := name == "qwen2"
	return &config.Arch{SlidingWindow: name == "mistral",
		Names: map[string]string{"Context": "max_position_embeddings", "Layers": "num_hidden_layers", "Heads": "num_attention_heads",
			"KVHeads": "num_key_value_heads", "Hidden": "hidden_size", "Intermediate": "intermediate_size", "Eps": "rms_norm_eps", "Dropout": "resid_pdrop"},
		Parse: func(b []byte) (*config.Config, error) { return parseConfig(b, qwen2) },
		JSON:  func(c *config.Config) any { return configJSON(c, name == "llama") },
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
	c.Bias = qwen2 || (h.AttentionBias != nil && *h.AttentionBias)
	if h.MLPBias != nil && *h.MLPBias {
		return nil, fmt.Errorf("mlp_bias not supported")
	}
	return c, nil
}

func configJSON(c *config.Config, biasFields bool) any {
	h := hfConfig{Head: c.Head(CausalLM[c.Arch]), Tail: c.Tail()}
	h.MaxPos, h.HiddenSize, h.Intermediate = c.Context, c.Hidden, c.Intermediate
	h.NumLayers, h.NumHeads, h.NumKVHeads, h.HeadDim = c.Layers, c.Heads, c.KVHeads, c.HeadDim()
	h.HiddenAct = "silu"
	h.RMSEps = config.Ptr(config.ShortFloat(c.Eps))
	h.RopeTheta = c.RopeTheta
	if c.RopeScaling != nil {
		h.RopeScaling = &ropeParams{RopeType: "llama3", RopeScaling: *c.RopeScaling}
	}
	if w := c.SlidingWindow; w > 0 {
		h.SlidingWindow = &w
	}
	if biasFields { // Llama's config says whether it has biases; Qwen2's and Mistral's do not
		h.AttentionBias = config.Ptr(c.Bias)
		h.MLPBias = config.Ptr(false)
	}
	return h
}
