package gpt

import (
	"github.com/golem-ml/golem/model/gpt2"
	"github.com/golem-ml/golem/model/llama"
	"github.com/golem-ml/golem/nn"
)

// archs builds each architecture's layers (a folder of its own under
// model/) from a config: its body, whose nn tags name the parameters and
// LoRA's modules, and the parts the decoder runs. A new architecture is
// its folder and a line here.
var archs = map[string]func(c *Config, in *nn.Init) *Model{
	"gpt2": func(c *Config, in *nn.Init) *Model {
		g := gpt2.New(in, gpt2.Options{Vocab: c.Vocab, Context: c.Context, Hidden: c.Hidden, Layers: c.Layers,
			Intermediate: c.Intermediate, Eps: c.Eps, Bias: c.Bias, Exact: c.Activation == "gelu"})
		return &Model{Body: g, Embed: g.Embed, Pos: g.Pos, Blocks: blocks(g.Blocks), NormF: g.NormF}
	},
	"llama": newLlama,
	"qwen2": newLlama, // Llama with q/k/v biases (Config.Bias)
}

func newLlama(c *Config, in *nn.Init) *Model {
	l := llama.New(in, llama.Options{Vocab: c.Vocab, Hidden: c.Hidden, Layers: c.Layers,
		Intermediate: c.Intermediate, KVWidth: c.KVHeads * c.HeadDim(), Eps: c.Eps, Bias: c.Bias})
	return &Model{Body: l, Embed: l.Embed, Blocks: blocks(l.Blocks), NormF: l.NormF}
}

func blocks[B Block](bs []B) []Block {
	out := make([]Block, len(bs))
	for i, b := range bs {
		out[i] = b
	}
	return out
}
