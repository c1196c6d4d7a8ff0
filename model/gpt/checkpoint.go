package gpt

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/safetensors"
)

// Load reads a Hugging Face model folder (config.json and model.safetensors
// or a sharded index). Every parameter must be present with its shape;
// extra tensors are an error too, so a mismatched checkpoint never loads
// half-way.
func Load(be backend.Backend, dir string) (*Model, error) {
	c, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	in := nn.NewInit(be, 0)
	in.Zero = true
	m, err := build(be, *c, in)
	if err != nil {
		return nil, fmt.Errorf("gpt: %s: %w", dir, err)
	}
	st, err := safetensors.OpenModel(dir)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	noBias := c.Arch == "gpt2" && !c.Bias
	if err := loadParams(st, m.Params(), dir, noBias); err != nil {
		return nil, err
	}
	return m, nil
}

// hfParams returns the parameters as transformers expects them: a GPT-2
// without biases gets zero biases (GPT-2's config cannot turn them off), and
// config.json marks them so golem loads the model without them again.
func (m *Model) hfParams() []nn.Named {
	ps := m.Params()
	if m.Config.Arch != "gpt2" || m.Config.Bias {
		return ps
	}
	in := nn.NewInit(m.Embed.Weight.Backend(), 0)
	full := m.Config
	full.Bias = true
	in.Zero = true
	z, _ := build(m.Embed.Weight.Backend(), full, in)
	have := map[string]*nn.Named{}
	for i := range ps {
		have[ps[i].Name] = &ps[i]
	}
	var out []nn.Named
	for _, p := range z.Params() {
		if h, ok := have[p.Name]; ok {
			out = append(out, *h)
		} else {
			out = append(out, p)
		}
	}
	return out
}

// LoadParams fills params from a checkpoint by name, checking shapes. A
// tied "lm_head.weight" in the file is accepted and ignored.
func LoadParams(st *safetensors.Model, params []nn.Named, where string) error {
	return loadParams(st, params, where, false)
}

func loadParams(st *safetensors.Model, params []nn.Named, where string, noBias bool) error {
	return fillParams(st, params, where, func(n string) bool {
		return n == "lm_head.weight" || isBuffer(n) || (noBias && strings.HasSuffix(n, ".bias"))
	})
}

// tensorSource is a safetensors file or a (possibly sharded) model.
type tensorSource interface {
	Names() []string
	Info(name string) (safetensors.TensorInfo, bool)
	Float32(name string) ([]float32, []int, error)
}

// fillParams sets every parameter from st by name, checking shapes, and
// refuses tensors of st that no parameter takes unless extra accepts them.
func fillParams(st tensorSource, params []nn.Named, where string, extra func(name string) bool) error {
	want := map[string]bool{}
	for _, p := range params {
		want[p.Name] = true
		info, ok := st.Info(p.Name)
		if !ok {
			return fmt.Errorf("gpt: %s: tensor %q missing", where, p.Name)
		}
		if !slices.Equal(info.Shape, p.Tensor.Shape()) {
			return fmt.Errorf("gpt: %s: tensor %q has shape %v, model wants %v", where, p.Name, info.Shape, p.Tensor.Shape())
		}
		data, _, err := st.Float32(p.Name)
		if err != nil {
			return err
		}
		p.Tensor.Set(data)
	}
	for _, n := range st.Names() {
		if !want[n] && (extra == nil || !extra(n)) {
			return fmt.Errorf("gpt: %s: unexpected tensor %q (another architecture or an adapter?)", where, n)
		}
	}
	return nil
}

// isBuffer reports non-parameter tensors some checkpoints carry.
func isBuffer(name string) bool {
	return filepath.Ext(name) == ".masked_bias" || filepath.Ext(name) == ".inv_freq" || (len(name) > 10 && name[len(name)-10:] == ".attn.bias")
}

// Save writes config.json, generation_config.json and model.safetensors
// into dir (created if needed); each file is written atomically.
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cj, err := m.Config.JSON()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "config.json"), append(cj, '\n')); err != nil {
		return err
	}
	gen := map[string]any{"_from_model_config": true}
	if m.Config.BOS >= 0 {
		gen["bos_token_id"] = m.Config.BOS
	}
	if m.Config.EOS >= 0 {
		gen["eos_token_id"] = m.Config.EOS
	}
	gj, _ := json.MarshalIndent(gen, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(dir, "generation_config.json"), append(gj, '\n')); err != nil {
		return err
	}
	return SaveParams(filepath.Join(dir, "model.safetensors"), m.hfParams(), map[string]string{"format": "pt"})
}

// SaveParams writes named tensors as one safetensors file.
func SaveParams(path string, params []nn.Named, meta map[string]string) error {
	ts := make([]safetensors.Tensor, 0, len(params))
	for _, p := range params {
		ts = append(ts, safetensors.Tensor{Name: p.Name, Shape: slices.Clone(p.Tensor.Shape()), F32: p.Tensor.Host()})
	}
	return safetensors.Write(path, ts, meta)
}
