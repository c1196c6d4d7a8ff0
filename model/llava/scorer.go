package llava

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/weights"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/safetensors"
)

// A reward model that sees: a LLaVA model whose language model carries a
// scalar head (gpt.Scorer) in place of its LM head. Its folder is a LLaVA
// folder whose text_config is the scorer's (num_labels 1 and
// golem_reward_bias, as gpt.Scorer.Save writes them) and whose language
// model's tensors are named as a LLaVA folder's (model.language_model.*),
// the head score.weight where lm_head.weight would be (no lm_head); its
// adapters' head is "base_model.model.score.weight". transformers has no
// LLaVA sequence classifier: golem reads what it writes, and the legacy
// layout's folders and adapters (language_model.score.weight) too.

// Scorer is a LLaVA model with a scalar head on its language model.
type Scorer struct {
	*Model // Model.LM is Score.Model's backbone with its LM head
	Score  *gpt.Scorer
}

// NewScorer puts a fresh scalar head (seeded) on m's language model; the
// scorer shares m's tensors.
func NewScorer(m *Model, seed uint64) *Scorer {
	return &Scorer{Model: m, Score: gpt.NewScorer(m.LM, seed)}
}

// Params returns every parameter under its name in the folder.
func (s *Scorer) Params() []nn.Named {
	return named(s.Vision.Params(), nn.Params(s.Projector), s.Score.Params(), false)
}

// IsScorer reports whether dir holds a LLaVA reward model (its
// text_config has num_labels), or a reward model's adapter over a LLaVA
// folder (SaveLoRA).
func IsScorer(dir string) bool {
	if a := adapterOf(dir); a != nil {
		return a.Scorer
	}
	var probe struct {
		ModelType string `json:"model_type"`
		Text      struct {
			NumLabels *int `json:"num_labels"`
		} `json:"text_config"`
	}
	return weights.PeekConfig(filepath.Join(dir, weights.ConfigFile), &probe) == nil && probe.ModelType == ModelType && probe.Text.NumLabels != nil
}

// SaveLoRA writes the scorer's language-model adapters and its score head
// as a PEFT SEQ_CLS adapter folder over base, a LLaVA folder (written as
// base_model_name_or_path): "base_model.model.model.language_model.<module>
// .lora_A.weight" and so on, "base_model.model.score.weight"
// (modules_to_save ["score"]), the offset in the file's metadata. The
// tower and the projector are the base's. The caller saves the
// tokenizer beside them.
func (s *Scorer) SaveLoRA(dir string, c gpt.LoRAConfig, base string) error {
	return s.Score.SaveWrappedLoRA(dir, c, base, LMPrefix)
}

// LoadScorerLoRA reads a reward model's LoRA adapter folder (SaveLoRA)
// over its LLaVA base with the adapters attached, unmerged (to resume
// training them), and their config.
func LoadScorerLoRA(be backend.Backend, dir string) (*Scorer, gpt.LoRAConfig, error) {
	return loadScorerAdapter(be, dir, true)
}

// loadScorerAdapter reads a reward or value model's adapter folder over
// its base: a LLaVA model (with a score head, the adapter's), a LLaVA
// reward model, or a reward model's adapter (merged into its base first:
// PPO's value model's adapter over a reward model trained with LoRA). The
// adapters are attached to the language model and the head is the
// adapter's; with keep they stay attached, else they are merged into the
// weights.
func loadScorerAdapter(be backend.Backend, dir string, keep bool) (*Scorer, gpt.LoRAConfig, error) {
	a := adapterOf(dir)
	if a == nil || !a.Scorer {
		return nil, gpt.LoRAConfig{}, fmt.Errorf("llava: %s is not a reward model's LoRA adapter (SEQ_CLS) over a LLaVA folder", dir)
	}
	var s *Scorer
	var err error
	if IsScorer(a.Base) {
		s, err = LoadScorer(be, a.Base)
	} else {
		var m *Model
		if m, err = Load(be, a.Base); err == nil {
			s = NewScorer(m, 0)
		}
	}
	if err != nil {
		return nil, gpt.LoRAConfig{}, fmt.Errorf("llava: adapter %s: base model: %w", dir, err)
	}
	c, err := s.apply(a, dir)
	if err != nil {
		return nil, c, err
	}
	if !keep {
		s.Score.MergeLoRA()
	}
	s.FreezeVision()
	return s, c, nil
}

// ApplyAdapter attaches the reward or value model's LoRA adapter in dir
// (SaveLoRA) to s, whose language model must be the adapter's base's
// without adapters: the adapters (trainable), the head and the offset
// are the adapter's. PPO's value model over its LLaVA reward model's
// backbone uses it: two heads, one copy of the weights.
func (s *Scorer) ApplyAdapter(dir string) error {
	a, err := gpt.ReadAdapterConfig(dir)
	if err != nil {
		return fmt.Errorf("llava: %w", err)
	}
	if a.Type != "LORA" || !a.Scorer {
		return fmt.Errorf("llava: %s: a %s adapter, not a reward or value model's LoRA (SEQ_CLS with modules_to_save [\"score\"])", filepath.Join(dir, gpt.AdapterConfigFile), a.Type)
	}
	_, err = s.apply(a, dir)
	return err
}

// apply attaches the LoRA adapter a, read from dir, to the scorer's
// language model: its adapters, its head and its offset (0 when the file
// has none).
func (s *Scorer) apply(a *gpt.Adapter, dir string) (gpt.LoRAConfig, error) {
	c, legacy, err := wrappedLoRA(a, filepath.Join(dir, gpt.AdapterConfigFile))
	if err != nil {
		return c, err
	}
	if _, err := s.Score.AttachLoRA(c, 0); err != nil {
		return c, fmt.Errorf("llava: %s: %w", dir, err)
	}
	file := filepath.Join(dir, gpt.AdapterModelFile)
	st, err := safetensors.Open(file)
	if err != nil {
		return c, err
	}
	defer st.Close()
	s.Score.Score.Weight.SetRequiresGrad(true)
	head := []nn.Named{{Name: "score.weight", Tensor: s.Score.Score.Weight}}
	if err := weights.Fill(st, adapterParams(s.Score.LoRAParams(), head, nil, legacy), file, nil); err != nil {
		return c, fmt.Errorf("llava: %w", err)
	}
	s.Score.Bias = 0
	if v, ok := st.Metadata()["golem_reward_bias"]; ok {
		b, err := strconv.ParseFloat(v, 32)
		if err != nil {
			return c, fmt.Errorf("llava: %s: metadata golem_reward_bias %q: %w", file, v, err)
		}
		s.Score.Bias = float32(b)
	}
	return c, nil
}

// Save writes config.json and model.safetensors into dir, each
// atomically; the caller saves the tokenizer beside them.
func (s *Scorer) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cj, err := s.Config.JSON()
	if err != nil {
		return err
	}
	// text_config: the scorer's config.json, as gpt.Scorer.Save writes it.
	tc, err := s.Score.ConfigJSON()
	if err != nil {
		return err
	}
	var c map[string]json.RawMessage
	if err := json.Unmarshal(cj, &c); err != nil {
		return err
	}
	if s.Config.ImageToken == s.Config.Text.Vocab { // the image token's row (withImageRow)
		var t map[string]json.RawMessage
		if err := json.Unmarshal(tc, &t); err != nil {
			return err
		}
		t["vocab_size"] = json.RawMessage(strconv.Itoa(s.Config.Text.Vocab + 1))
		if tc, err = json.Marshal(t); err != nil {
			return err
		}
	}
	c["text_config"] = tc
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "config.json"), append(b, '\n')); err != nil {
		return err
	}
	return weights.Save(filepath.Join(dir, safetensors.ModelFile), withImageRow(&s.Config, s.Params()), map[string]string{"format": "pt"})
}

// LoadScorer reads a folder Scorer.Save wrote, or an adapter folder
// SaveLoRA wrote (merged into its base); the vision tower is frozen.
// Errors name the file.
func LoadScorer(be backend.Backend, dir string) (*Scorer, error) {
	if a := adapterOf(dir); a != nil && a.Scorer {
		s, _, err := loadScorerAdapter(be, dir, false)
		return s, err
	}
	if !IsScorer(dir) {
		return nil, fmt.Errorf("llava: %s is not a LLaVA reward model (config.json's text_config has no num_labels)", dir)
	}
	c, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	var h struct {
		Text struct {
			NumLabels int     `json:"num_labels"`
			Bias      float32 `json:"golem_reward_bias"`
		} `json:"text_config"`
	}
	if err := weights.PeekConfig(filepath.Join(dir, weights.ConfigFile), &h); err != nil || h.Text.NumLabels != 1 {
		return nil, fmt.Errorf("llava: %s: text_config's num_labels is %d, a reward model has 1", filepath.Join(dir, "config.json"), h.Text.NumLabels)
	}
	st, err := safetensors.OpenModel(dir)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	legacy := isLegacy(st)
	m, err := build(be, c, st, dir, legacy)
	if err != nil {
		return nil, err
	}
	s := NewScorer(m, 0)
	s.Score.Bias = h.Text.Bias
	if err := fillFolder(st, c, named(m.Vision.Params(), nn.Params(m.Projector), s.Score.Params(), legacy), dir, nil); err != nil {
		return nil, err
	}
	m.FreezeVision()
	return s, st.Changed()
}
