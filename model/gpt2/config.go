package gpt2

import (
	"encoding/json"
	"fmt"

	"github.com/golem-ml/golem/model/config"
)

// hfConfig is GPT-2's config.json.
type hfConfig struct {
	config.Head
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
	GolemNoBias bool     `json:"golem_no_bias,omitempty"` // GPT-2's config has no switch for biases; golem's marks a model without
	config.Tail
}

// Config is what GPT-2's config.json looks like: its names, learned
// positions, and biases the format always has.
var Config = &config.Arch{
	Names: map[string]string{"Context": "n_positions", "Layers": "n_layer", "Heads": "n_head", "KVHeads": "n_head",
		"Hidden": "n_embd", "Intermediate": "n_inner", "Eps": "layer_norm_epsilon", "Dropout": "resid_pdrop"},
	LearnedPositions: true,
	FixedBias:        true,
	Parse:            parseConfig,
	JSON:             configJSON,
}

func parseConfig(b []byte) (*config.Config, error) {
	var h hfConfig
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, err
	}
	c := config.NewConfig(h.Head, h.Tail, true)
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
	c.Eps = float32(config.Or(h.LNEps, 1e-5))
	c.Bias = !h.GolemNoBias
	c.Dropout = float32(config.Or(h.ResidPdrop, 0))
	return c, nil
}

func configJSON(c *config.Config) any {
	h := hfConfig{Head: c.Head(CausalLM), Tail: c.Tail()}
	h.NPositions, h.NEmbd, h.NLayer, h.NHead = c.Context, c.Hidden, c.Layers, c.Heads
	if c.Intermediate != 4*c.Hidden {
		h.NInner = config.Ptr(c.Intermediate)
	}
	h.Activation = c.Activation
	h.LNEps = config.Ptr(config.ShortFloat(c.Eps))
	h.ResidPdrop, h.EmbdPdrop, h.AttnPdrop = config.Ptr(config.ShortFloat(c.Dropout)), config.Ptr(config.ShortFloat(c.Dropout)), config.Ptr(0.0)
	h.GolemNoBias = !c.Bias
	return h
}
