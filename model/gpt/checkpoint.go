package gpt

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/model/config"
	"github.com/golem-ml/golem/model/weights"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/safetensors"
)

// Load reads a Hugging Face model folder (config.json and model.safetensors
// or a sharded index). Every parameter must be present with its shape;
// extra tensors are an error too, so a mismatched checkpoint never loads
// half-way. The config's sizes are checked against the checkpoint's header
// before anything is allocated, so memory stays bounded by the weights'
// size whatever config.json says; NaN or infinite weights are refused; and
// a checkpoint rewritten while it was read is an error, not a mix of two.
// dir may also name a GGUF model (a .gguf file, "ollama:NAME[:TAG]", or a
// folder whose weights are model.gguf; see gguf.Locate), read by LoadGGUF.
func Load(be backend.Backend, dir string) (*Model, error) { return loadModel(be, dir, false) }

// loadModel is Load, or LoadBF16 with bf16: a GGUF model or a model folder.
func loadModel(be backend.Backend, dir string, bf16 bool) (*Model, error) {
	if file, ok, err := gguf.Locate(dir); ok || err != nil {
		if err != nil {
			return nil, fmt.Errorf("gpt: %w", err)
		}
		return loadGGUF(be, file, bf16)
	}
	m, _, err := load(be, dir, false, bf16)
	return m, err
}

// load reads the model folder dir as Load says; with score, as a scorer's
// backbone (no LM head) and its head, "score.weight" [1, hidden]; with
// bf16, as LoadBF16 says. The parameters take memory as they are read.
func load(be backend.Backend, dir string, score, bf16 bool) (*Model, *nn.Linear, error) {
	c, err := LoadConfig(dir)
	if err != nil {
		return nil, nil, err
	}
	st, err := safetensors.OpenModel(dir)
	if err != nil {
		return nil, nil, err
	}
	defer st.Close()
	hc := *c
	if score {
		if _, ok := st.Info("score.weight"); !ok {
			return nil, nil, fmt.Errorf("gpt: %s: tensor \"score.weight\" missing: this is a language model, not a reward or value model", dir)
		}
		hc.Tied = true // a scorer's checkpoint has no LM head
	}
	if err := checkHeader(&hc, st); err != nil {
		return nil, nil, fmt.Errorf("gpt: %s: %w", filepath.Join(dir, "config.json"), err)
	}
	in := nn.NewInit(be, 0)
	in.Placeholders = true
	m, err := build(be, *c, in)
	if err != nil {
		return nil, nil, fmt.Errorf("gpt: %s: %w", dir, err)
	}
	var head *nn.Linear
	ps := m.Params()
	if score {
		m.Head, head = nil, nn.NewLinear(in, c.Hidden, 1, false, 0)
		ps = append(m.Params(), nn.Named{Name: "score.weight", Tensor: head.Weight})
	}
	noBias := c.FixedBias() && !c.Bias
	var kept map[string]bool // the matrices read as bfloat16
	if bf16 {
		if kept, err = m.readBF16(st, dir); err != nil {
			return nil, nil, err
		}
		ps = slices.DeleteFunc(ps, func(p nn.Named) bool { return kept[p.Name] })
	}
	// A tied "lm_head.weight" in the file is accepted and ignored, as are
	// the buffers some checkpoints carry, the biases of a model without and
	// the matrices read already.
	if err := fillParams(st, ps, dir, func(n string) bool {
		return kept[n] || n == "lm_head.weight" || IsBuffer(n) || (noBias && strings.HasSuffix(n, ".bias"))
	}); err != nil {
		return nil, nil, err
	}
	if err := st.Changed(); err != nil {
		return nil, nil, err
	}
	return m, head, nil
}

// checkHeader checks each size of c against the shapes of the checkpoint's
// header (its tensors' data is not read). Every size that scales the
// model's memory is either seen in a tensor or bounded by Validate, so a
// config that passes allocates no more than the weights file holds.
func checkHeader(c *Config, st *safetensors.Model) error {
	ckpt := st.Name()
	// Layers: the highest block index in the tensor names.
	prefix := archs[c.Arch].layerPrefix
	layers := weights.Layers(st, prefix, config.MaxLayers)
	if layers != c.Layers {
		return fmt.Errorf("%q is %d, but %s has %d layers", c.Field("Layers"), c.Layers, ckpt, layers)
	}
	// dims checks the sizes of config fields (by Config name, -1 for a
	// dimension not checked) against the named tensor's shape.
	dims := func(tensor string, fields ...string) error {
		info, ok := st.Info(tensor)
		if !ok {
			return fmt.Errorf("%s has no tensor %q (another architecture?)", ckpt, tensor)
		}
		if len(info.Shape) != len(fields) {
			return fmt.Errorf("%s: tensor %q has shape %v, want %d dimensions", ckpt, tensor, info.Shape, len(fields))
		}
		for i, f := range fields {
			want := map[string]int{"Vocab": c.Vocab, "Hidden": c.Hidden, "Context": c.Context,
				"Intermediate": c.Intermediate, "KVHeads": c.KVHeads * c.HeadDim()}[f]
			if f != "" && info.Shape[i] != want {
				what := fmt.Sprintf("%q is %d", c.Field(f), want)
				if f == "KVHeads" {
					what = fmt.Sprintf("%q %d x head size %d is %d", c.Field(f), c.KVHeads, c.HeadDim(), want)
				}
				return fmt.Errorf("%s, but %s has %q of shape %v", what, ckpt, tensor, info.Shape)
			}
		}
		return nil
	}
	checks := archs[c.Arch].shapes
	if !c.Tied {
		checks = append(checks[:len(checks):len(checks)], []string{"lm_head.weight", "Vocab", "Hidden"})
	}
	for _, ch := range checks {
		if err := dims(ch[0], ch[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// hfParams returns the parameters as transformers expects them: a model
// without biases whose format always has them (GPT-2's config cannot turn
// them off: config.Arch.FixedBias) gets zero biases, and config.json marks
// them so golem loads the model without them again.
func (m *Model) hfParams() []nn.Named {
	ps := m.Params()
	if !m.Config.FixedBias() || m.Config.Bias {
		return ps
	}
	in := nn.NewInit(m.Embed.Weight.Backend(), 0)
	full := m.Config
	full.Bias = true
	in.Zero = true
	z, _ := build(m.Embed.Weight.Backend(), full, in)
	have := map[string]nn.Named{}
	for _, p := range ps {
		have[p.Name] = p
	}
	out := z.Params() // the model's tensors, the zero biases where it has none
	for i, p := range out {
		if h, ok := have[p.Name]; ok {
			out[i] = h
		}
	}
	return out
}

// fillParams is weights.Fill with errors that start "gpt: ".
func fillParams(st weights.Source, params []nn.Named, where string, extra func(name string) bool) error {
	if err := weights.Fill(st, params, where, extra); err != nil {
		return fmt.Errorf("gpt: %w", err)
	}
	return nil
}

// IsBuffer reports non-parameter tensors some checkpoints carry (GPT-2's
// attention masks, RoPE's inverse frequencies): Load and gguf/export pass
// them over.
func IsBuffer(name string) bool {
	return filepath.Ext(name) == ".masked_bias" || filepath.Ext(name) == ".inv_freq" || (len(name) > 10 && name[len(name)-10:] == ".attn.bias")
}

// Save writes config.json, generation_config.json and model.safetensors
// into dir (created if needed); each file is written atomically. eos adds
// token ids that end an answer (a chat model's <|im_end|>) to
// generation_config.json's eos_token_id, after the config's EOS: a list
// when there are several, as transformers' generate takes it.
func (m *Model) Save(dir string, eos ...int) error {
	cj, err := m.Config.JSON()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	gen := map[string]any{"_from_model_config": true}
	if m.Config.BOS >= 0 {
		gen["bos_token_id"] = m.Config.BOS
	}
	var ends []int
	if m.Config.EOS >= 0 {
		ends = append(ends, m.Config.EOS)
	}
	for _, id := range eos {
		if !slices.Contains(ends, id) {
			ends = append(ends, id)
		}
	}
	switch len(ends) {
	case 0:
	case 1:
		gen["eos_token_id"] = ends[0]
	default:
		gen["eos_token_id"] = ends
	}
	gj, _ := json.MarshalIndent(gen, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(dir, "generation_config.json"), append(gj, '\n')); err != nil {
		return err
	}
	return weights.SaveFolder(dir, json.RawMessage(cj), m.hfParams())
}
