package llava

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/weights"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/safetensors"
)

// A LLaVA model trained with LoRA (golem vlm --stage instruct --lora-r)
// is saved as PEFT saves it: a folder with adapter_config.json and
// adapter_model.safetensors over the LLaVA folder it started from
// (base_model_name_or_path). PEFT names an adapter's tensors
// "base_model.model." + the module's name in the model it wraps, here
// transformers' LlavaForConditionalGeneration from 4.52 (5.x too): the
// language model's adapters are
// "base_model.model.model.language_model.<module of its base model>.lora_A.weight"
// (and lora_B; "layers.0.self_attn.q_proj", GPT-2's "h.0.attn.c_attn"),
// target_modules is a regular expression on the language model's modules
// alone (CLIP's tower has q_proj and v_proj too), and the projector,
// trained whole, is modules_to_save ["multi_modal_projector"], its tensors
// "base_model.model.model.multi_modal_projector.linear_1.weight" and so
// on. Adapters golem wrote before, under the names of transformers up to
// 4.51 ("base_model.model.language_model.<the causal LM's module>",
// "base_model.model.multi_modal_projector.*"), load too.

// projectorModule is the projector's module name (modules_to_save).
const projectorModule = "multi_modal_projector"

// SaveLoRA writes m's language-model adapters and its projector into dir
// as a PEFT adapter folder over base (written as base_model_name_or_path);
// the caller saves the tokenizer beside them.
func (m *Model) SaveLoRA(dir string, c gpt.LoRAConfig, base string) error {
	saved := named(nil, m.ProjectorParams(), nil, false)
	return m.LM.SaveWrappedLoRA(dir, c, base, LMPrefix, []string{projectorModule}, saved)
}

// adapterParams names an adapter's tensors as SaveLoRA and
// Scorer.SaveLoRA write them, or (legacy) as golem wrote them before:
// lora, the language model's adapters (gpt's names,
// "base_model.model.<module>.lora_A.weight"), heads the language model's
// heads kept whole (a scorer's), proj the projector's.
func adapterParams(lora, heads, proj []nn.Named, legacy bool) []nn.Named {
	var lm []nn.Named
	for _, p := range lora {
		lm = append(lm, nn.Named{Name: strings.TrimPrefix(p.Name, "base_model.model."), Tensor: p.Tensor})
	}
	ps := named(nil, proj, append(lm, heads...), legacy)
	for i := range ps {
		ps[i].Name = "base_model.model." + ps[i].Name
	}
	return ps
}

// adapterOf reads dir's adapter_config.json when it is a LoRA adapter over
// a LLaVA folder, or a reward or value model's adapter over a LLaVA
// reward model's adapter (PPO's value model over a reward model trained
// with LoRA); nil when dir is not an adapter folder or its base is not a
// LLaVA model.
func adapterOf(dir string) *gpt.Adapter { return adapterAt(dir, 0) }

// maxAdapterDepth bounds a chain of adapters over adapters (a loop of
// base_model_name_or_path is no LLaVA adapter).
const maxAdapterDepth = 8

func adapterAt(dir string, depth int) *gpt.Adapter {
	if !gpt.IsAdapter(dir) {
		return nil
	}
	a, err := gpt.ReadAdapterConfig(dir)
	if err != nil {
		return nil
	}
	if isFolder(a.Base) {
		return a
	}
	if a.Scorer && depth < maxAdapterDepth {
		if b := adapterAt(a.Base, depth+1); b != nil && b.Scorer {
			return a
		}
	}
	return nil
}

// LoRA returns the adapter config of dir when it is a LoRA adapter over a
// LLaVA folder (to resume training it), and whether it is one.
func LoRA(dir string) (gpt.LoRAConfig, string, bool, error) {
	a := adapterOf(dir)
	if a == nil {
		return gpt.LoRAConfig{}, "", false, nil
	}
	c, _, err := adapterLoRA(a, dir)
	return c, a.Base, err == nil, err
}

// adapterLoRA is the LoRA config of a LLaVA model's adapter over a LLaVA
// folder, and whether it is in the legacy layout (wrappedLoRA).
func adapterLoRA(a *gpt.Adapter, dir string) (gpt.LoRAConfig, bool, error) {
	path := filepath.Join(dir, gpt.AdapterConfigFile)
	if a.Scorer {
		return gpt.LoRAConfig{}, false, fmt.Errorf("llava: %s: a reward model's adapter (SEQ_CLS), not a vision-language model's: use it as a reward model", path)
	}
	if a.Type != "LORA" {
		return gpt.LoRAConfig{}, false, fmt.Errorf("llava: %s: a %s adapter; golem's LLaVA adapters are LoRA on the language model", path, a.Type)
	}
	if len(a.ModulesToSave) != 1 || a.ModulesToSave[0] != projectorModule {
		return gpt.LoRAConfig{}, false, fmt.Errorf("llava: %s: modules_to_save %q, want [%q] (the projector, trained whole)", path, a.ModulesToSave, projectorModule)
	}
	return wrappedLoRA(a, path)
}

// wrappedLoRA is the LoRA config of an adapter over a LLaVA folder, whose
// target_modules must name the language model's modules (path names its
// adapter_config.json), and whether it names them in the legacy layout
// (under "language_model.", as golem wrote adapters before).
func wrappedLoRA(a *gpt.Adapter, path string) (gpt.LoRAConfig, bool, error) {
	c := a.LoRA
	if a.TargetPattern == "" {
		return c, false, fmt.Errorf("llava: %s: target_modules must name the language model's modules (a regular expression under %q)", path, LMPrefix)
	}
	t, err := gpt.WrappedTargets(a.TargetPattern, LMPrefix)
	legacy := false
	if err != nil {
		if lt, lerr := gpt.WrappedTargets(a.TargetPattern, legacyLM); lerr == nil {
			t, err, legacy = lt, nil, true
		}
	}
	if err != nil {
		return c, false, fmt.Errorf("llava: %s: %w", path, err)
	}
	c.Targets = t
	return c, legacy, nil
}

// loadAdapter reads the LoRA adapter folder dir over its LLaVA base: the
// adapters attached to the language model (which is then frozen) and the
// projector's tensors the adapter's; with keep the adapters stay
// attached, to train on, else they are merged into the weights.
func loadAdapter(be backend.Backend, dir string, keep bool) (*Model, gpt.LoRAConfig, error) {
	a := adapterOf(dir)
	if a == nil {
		return nil, gpt.LoRAConfig{}, fmt.Errorf("llava: %s is not a LoRA adapter over a LLaVA folder", dir)
	}
	c, legacy, err := adapterLoRA(a, dir)
	if err != nil {
		return nil, c, err
	}
	if gpt.IsAdapter(a.Base) {
		return nil, c, fmt.Errorf("llava: %s: the base %s is an adapter too; want a LLaVA model folder", filepath.Join(dir, gpt.AdapterConfigFile), a.Base)
	}
	m, err := Load(be, a.Base)
	if err != nil {
		return nil, c, fmt.Errorf("llava: adapter %s: base model: %w", dir, err)
	}
	if _, err := m.LM.AttachLoRA(c, 0); err != nil {
		return nil, c, fmt.Errorf("llava: %s: %w", dir, err)
	}
	path := filepath.Join(dir, gpt.AdapterModelFile)
	st, err := safetensors.Open(path)
	if err != nil {
		return nil, c, err
	}
	defer st.Close()
	if err := weights.Fill(st, adapterParams(m.LM.LoRAParams(), nil, m.ProjectorParams(), legacy), path, nil); err != nil {
		return nil, c, fmt.Errorf("llava: %w", err)
	}
	if !keep {
		m.LM.MergeLoRA()
		for _, p := range m.LM.Params() {
			p.Tensor.SetRequiresGrad(true)
		}
	}
	return m, c, nil
}

// LoadLoRA reads a LoRA adapter folder over a LLaVA folder with its
// adapters attached, unmerged (to resume training them), and their
// config.
func LoadLoRA(be backend.Backend, dir string) (*Model, gpt.LoRAConfig, error) {
	return loadAdapter(be, dir, true)
}
