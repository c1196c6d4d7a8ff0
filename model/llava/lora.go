package llava

import (
	"fmt"
	"path/filepath"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/weights"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/safetensors"
)

// A LLaVA model trained with LoRA (golem vlm --stage instruct --lora-r)
// is saved as PEFT saves it: a folder with adapter_config.json and
// adapter_model.safetensors over the LLaVA folder it started from
// (base_model_name_or_path). The language model's adapters are named
// "base_model.model.language_model.<module>.lora_A.weight" (and lora_B),
// target_modules is a regular expression on the language model's modules
// alone (CLIP's tower has q_proj and v_proj too), and the projector,
// trained whole, is modules_to_save ["multi_modal_projector"], its tensors
// "base_model.model.multi_modal_projector.linear_1.weight" and so on.

// projectorModule is the projector's module name (modules_to_save).
const projectorModule = "multi_modal_projector"

// SaveLoRA writes m's language-model adapters and its projector into dir
// as a PEFT adapter folder over base (written as base_model_name_or_path);
// the caller saves the tokenizer beside them.
func (m *Model) SaveLoRA(dir string, c gpt.LoRAConfig, base string) error {
	var saved []nn.Named
	for _, p := range m.ProjectorParams() {
		saved = append(saved, nn.Named{Name: ProjectorPrefix + p.Name, Tensor: p.Tensor})
	}
	return m.LM.SaveWrappedLoRA(dir, c, base, LMPrefix, []string{projectorModule}, saved)
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
	c, err := adapterLoRA(a, dir)
	return c, a.Base, err == nil, err
}

func adapterLoRA(a *gpt.Adapter, dir string) (gpt.LoRAConfig, error) {
	path := filepath.Join(dir, gpt.AdapterConfigFile)
	if a.Scorer {
		return gpt.LoRAConfig{}, fmt.Errorf("llava: %s: a reward model's adapter (SEQ_CLS), not a vision-language model's: use it as a reward model", path)
	}
	if a.Type != "LORA" {
		return gpt.LoRAConfig{}, fmt.Errorf("llava: %s: a %s adapter; golem's LLaVA adapters are LoRA on the language model", path, a.Type)
	}
	if len(a.ModulesToSave) != 1 || a.ModulesToSave[0] != projectorModule {
		return gpt.LoRAConfig{}, fmt.Errorf("llava: %s: modules_to_save %q, want [%q] (the projector, trained whole)", path, a.ModulesToSave, projectorModule)
	}
	return wrappedLoRA(a, path)
}

// wrappedLoRA is the LoRA config of an adapter over a LLaVA folder, whose
// target_modules must name the language model's modules (path names its
// adapter_config.json).
func wrappedLoRA(a *gpt.Adapter, path string) (gpt.LoRAConfig, error) {
	c := a.LoRA
	if a.TargetPattern == "" {
		return c, fmt.Errorf("llava: %s: target_modules must name the language model's modules (a regular expression under %q)", path, LMPrefix)
	}
	t, err := gpt.WrappedTargets(a.TargetPattern, LMPrefix)
	if err != nil {
		return c, fmt.Errorf("llava: %s: %w", path, err)
	}
	c.Targets = t
	return c, nil
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
	c, err := adapterLoRA(a, dir)
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
	var ps []nn.Named
	for _, p := range m.LM.LoRAParams() {
		ps = append(ps, nn.Named{Name: "base_model.model." + LMPrefix + p.Name[len("base_model.model."):], Tensor: p.Tensor})
	}
	for _, p := range m.ProjectorParams() {
		ps = append(ps, nn.Named{Name: "base_model.model." + ProjectorPrefix + p.Name, Tensor: p.Tensor})
	}
	if err := weights.Fill(st, ps, path, nil); err != nil {
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
