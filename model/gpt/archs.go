package gpt

import (
	"github.com/golem-ml/golem/model/config"
	"github.com/golem-ml/golem/model/gpt2"
	"github.com/golem-ml/golem/model/llama"
	"github.com/golem-ml/golem/nn"
)

// arch is an architecture as the decoder sees it: a folder of its own
// under model/ that builds its layers (its body, whose nn tags name the
// parameters and LoRA's modules) and says what its checkpoints look like.
type arch struct {
	config      *config.Arch // its config.json: names, learned positions or RoPE, biases
	build       func(c *Config, in *nn.Init) *Model
	layerPrefix string     // the blocks' tensor names start with it, then the index
	shapes      [][]string // tensors whose shapes must agree with the config
	loraTargets []string   // PEFT's default target modules
	fanInOut    bool       // Conv1D weights ([in, out]), as PEFT records it
	causalLM    string     // Hugging Face's class names
	classifier  string
}

// archs are the architectures by config.json's model_type. A new one is
// its folder and an entry here.
var archs = map[string]*arch{
	"gpt2": {
		config: gpt2.Config,
		build: func(c *Config, in *nn.Init) *Model {
			g := gpt2.New(in, gpt2.Options{Vocab: c.Vocab, Context: c.Context, Hidden: c.Hidden, Layers: c.Layers,
				Intermediate: c.Intermediate, Eps: c.Eps, Bias: c.Bias, Exact: c.Activation == "gelu"})
			return &Model{Body: g, Embed: g.Embed, Pos: g.Pos, Blocks: blocks(g.Blocks), NormF: g.NormF}
		},
		layerPrefix: gpt2.LayerPrefix, shapes: gpt2.Shapes, loraTargets: gpt2.LoRATargets, fanInOut: gpt2.FanInFanOut,
		causalLM: gpt2.CausalLM, classifier: gpt2.SequenceClassification,
	},
	"llama":   llamaArch("llama"),
	"qwen2":   llamaArch("qwen2"),   // Llama with q/k/v biases (Config.Bias)
	"mistral": llamaArch("mistral"), // Llama with a sliding window (Config.SlidingWindow)
}

func llamaArch(name string) *arch {
	return &arch{
		config: llama.Config(name),
		build: func(c *Config, in *nn.Init) *Model {
			l := llama.New(in, llama.Options{Vocab: c.Vocab, Hidden: c.Hidden, Layers: c.Layers,
				Intermediate: c.Intermediate, KVWidth: c.KVHeads * c.HeadDim(), Eps: c.Eps, Bias: c.Bias,
				OutBias: llama.OutputBias(name, c.Bias)})
			return &Model{Body: l, Embed: l.Embed, Blocks: blocks(l.Blocks), NormF: l.NormF}
		},
		layerPrefix: llama.LayerPrefix, shapes: llama.Shapes, loraTargets: llama.LoRATargets,
		causalLM: llama.CausalLM[name], classifier: llama.SequenceClassification[name],
	}
}

func init() {
	for name, a := range archs {
		config.Register(name, a.config)
	}
}

func blocks[B Block](bs []B) []Block {
	out := make([]Block, len(bs))
	for i, b := range bs {
		out[i] = b
	}
	return out
}
