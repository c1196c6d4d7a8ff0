package gpt

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/internal/regfile"
	"github.com/golem-ml/golem/model/config"
	"github.com/golem-ml/golem/model/weights"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/safetensors"
	"github.com/golem-ml/golem/tensor"
)

// Parameter-efficient adapters, saved as PEFT saves them: a folder with
// adapter_config.json and adapter_model.safetensors. LoRA tensors are named
// "base_model.model." + the module's Hugging Face name + ".lora_A.weight"
// (and lora_B), A [r, in] and B [out, r], for GPT-2's Conv1D layers too
// (PEFT's fan_in_fan_out only changes how the update is merged). A prompt
// tuning adapter is one tensor "prompt_embeddings" [N, C].

// Adapter file names, as PEFT writes them.
const (
	AdapterConfigFile = "adapter_config.json"
	AdapterModelFile  = "adapter_model.safetensors"
)

// LoRAConfig says where and how LoRA attaches.
type LoRAConfig struct {
	R       int      // rank
	Alpha   float64  // the update is scaled by Alpha/R
	Dropout float32  // dropout on the adapter's input while training
	Targets []string // module names or name suffixes ("q_proj", "attn.c_attn"), or "all-linear"
}

// DefaultLoRATargets returns PEFT's default target modules for the
// architecture: the query and value projections (GPT-2's fused c_attn).
func DefaultLoRATargets(arch string) []string {
	if a := archs[arch]; a != nil {
		return slices.Clone(a.loraTargets)
	}
	return nil
}

// Modules returns the model's linear layers by name (from the body's
// tags), blocks in order; the LM head is left out (PEFT's "all-linear"
// leaves it out too).
func (m *Model) Modules() []nn.NamedLinear { return nn.Linears(m.Body) }

// matchTarget reports whether module name is targeted, by PEFT's rule for a
// list of targets: the name equals a target or ends with "." + target.
func matchTarget(name string, targets []string) bool {
	for _, t := range targets {
		if t == "all-linear" || name == t || strings.HasSuffix(name, "."+t) {
			return true
		}
	}
	return false
}

func (c *LoRAConfig) check(arch string) error {
	if c.R <= 0 {
		return fmt.Errorf("gpt: LoRA rank %d (want > 0)", c.R)
	}
	if c.Alpha <= 0 {
		return fmt.Errorf("gpt: LoRA alpha %g (want > 0)", c.Alpha)
	}
	if c.Dropout < 0 || c.Dropout >= 1 {
		return fmt.Errorf("gpt: LoRA dropout %g (want 0 <= p < 1)", c.Dropout)
	}
	if len(c.Targets) == 0 {
		c.Targets = DefaultLoRATargets(arch)
	}
	return nil
}

// AttachLoRA puts a fresh LoRA (A random, B zero) on every targeted linear
// layer, freezes the rest of the model, and returns the adapter parameters
// under their PEFT names. A target that matches no module is an error.
func (m *Model) AttachLoRA(c LoRAConfig, seed uint64) ([]nn.Named, error) {
	if err := c.check(m.Config.Arch); err != nil {
		return nil, err
	}
	mods := m.Modules()
	for _, t := range c.Targets {
		if t == "all-linear" {
			continue
		}
		if !slices.ContainsFunc(mods, func(md nn.NamedLinear) bool { return matchTarget(md.Name, []string{t}) }) {
			have := m.moduleKinds()
			slices.Sort(have)
			return nil, fmt.Errorf("gpt: LoRA target %q matches no module of this %s model (have %s)", t, m.Config.Arch, strings.Join(have, ", "))
		}
	}
	// A module holds one adapter: a second would silently take the first's
	// place (an adapter left unmerged over a quantized or bfloat16 base,
	// then another attached over it).
	for _, md := range mods {
		if md.Linear.LoRA != nil && matchTarget(md.Name, c.Targets) {
			return nil, fmt.Errorf("gpt: %s already has a LoRA adapter attached (unmerged, as over a quantized or bfloat16 base); merge it into a model folder first (golem sft --merge, or load its base in float32)", md.Name)
		}
	}
	m.Freeze()
	in := nn.NewInit(m.Embed.Weight.Backend(), seed)
	for _, md := range mods {
		if matchTarget(md.Name, c.Targets) {
			md.Linear.LoRA = nn.NewLoRA(in, md.Linear.InFeatures(), md.Linear.OutFeatures(), c.R, c.Alpha, c.Dropout)
		}
	}
	return m.LoRAParams(), nil
}

// Freeze marks every parameter of the base model as not trainable. A
// frozen one is left untouched (not even written), so that freezing a
// model whose tensors others share (Share) while they run is no race.
func (m *Model) Freeze() {
	for _, p := range m.Params() {
		if p.Tensor.RequiresGrad() {
			p.Tensor.SetRequiresGrad(false)
		}
	}
}

// LoRAParams returns the attached adapters' parameters under their PEFT
// names ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").
func (m *Model) LoRAParams() []nn.Named {
	var ps []nn.Named
	for _, md := range m.Modules() {
		if md.Linear.LoRA == nil {
			continue
		}
		for _, p := range nn.Params(md.Linear.LoRA) {
			ps = append(ps, nn.Named{Name: "base_model.model." + md.Name + "." + p.Name, Tensor: p.Tensor})
		}
	}
	return ps
}

// SetLoRASeed sets the dropout seed of every attached adapter (a function of
// the training step, so that resumed runs draw the same masks).
func (m *Model) SetLoRASeed(seed uint64) {
	for i, md := range m.Modules() {
		if md.Linear.LoRA != nil {
			md.Linear.LoRA.Seed = seed*7919 + uint64(i)
		}
	}
}

// WithoutLoRA runs fn with every attached adapter switched off, so that
// the model computes its base's function (the frozen reference of DPO,
// GRPO and PPO with LoRA, as TRL does it: no second copy of the weights),
// and switches them back on, also when fn panics.
func (m *Model) WithoutLoRA(fn func()) {
	var off []*nn.LoRA
	for _, md := range m.Modules() {
		if l := md.Linear.LoRA; l != nil && !l.Off {
			l.Off = true
			off = append(off, l)
		}
	}
	defer func() {
		for _, l := range off {
			l.Off = false
		}
	}()
	fn()
}

// MergeLoRA adds each adapter's update (Alpha/R) B A into its layer's
// weight and removes the adapter, leaving a plain model that computes the
// same function.
func (m *Model) MergeLoRA() {
	for _, md := range m.Modules() {
		l := md.Linear
		if l.LoRA == nil {
			continue
		}
		a, b := l.LoRA.A.Host(), l.LoRA.B.Host()
		r, in, out := l.LoRA.A.Dim(0), l.InFeatures(), l.OutFeatures()
		w := l.Weight.Host()
		s := l.LoRA.Scale
		for o := 0; o < out; o++ {
			for i := 0; i < in; i++ {
				var d float32
				for k := 0; k < r; k++ {
					d += b[o*r+k] * a[k*in+i]
				}
				if l.InOut {
					w[i*out+o] += s * d
				} else {
					w[o*in+i] += s * d
				}
			}
		}
		l.Weight.Set(w)
		l.LoRA = nil
	}
}

// adapterConfig is PEFT's adapter_config.json, for LoRA and prompt tuning.
type adapterConfig struct {
	PeftType      string  `json:"peft_type"`
	TaskType      string  `json:"task_type"`
	BaseModel     string  `json:"base_model_name_or_path"`
	InferenceMode bool    `json:"inference_mode"`
	Revision      *string `json:"revision"`

	// LORA
	R              int            `json:"r,omitempty"`
	LoRAAlpha      float64        `json:"lora_alpha,omitempty"`
	LoRADropout    float64        `json:"lora_dropout"`
	TargetModules  any            `json:"target_modules,omitempty"` // []string or a regex string
	FanInFanOut    bool           `json:"fan_in_fan_out"`
	Bias           string         `json:"bias,omitempty"`
	ModulesToSave  []string       `json:"modules_to_save"`
	InitLoRA       bool           `json:"init_lora_weights,omitempty"`
	UseRSLoRA      bool           `json:"use_rslora"`
	UseDoRA        bool           `json:"use_dora"`
	LayersToXform  any            `json:"layers_to_transform"`
	LayersPattern  any            `json:"layers_pattern"`
	RankPattern    map[string]any `json:"rank_pattern,omitempty"`
	AlphaPattern   map[string]any `json:"alpha_pattern,omitempty"`
	LoraBiasEnable bool           `json:"lora_bias,omitempty"`

	// PROMPT_TUNING
	NumVirtualTokens  int     `json:"num_virtual_tokens,omitempty"`
	TokenDim          int     `json:"token_dim,omitempty"`
	NumSubmodules     int     `json:"num_transformer_submodules,omitempty"`
	NumAttentionHeads int     `json:"num_attention_heads,omitempty"`
	NumLayers         int     `json:"num_layers,omitempty"`
	PromptInit        string  `json:"prompt_tuning_init,omitempty"`
	PromptInitText    *string `json:"prompt_tuning_init_text,omitempty"`
	TokenizerName     *string `json:"tokenizer_name_or_path,omitempty"`
}

// SaveLoRA writes the attached adapters into dir in PEFT's layout; base
// names the base model (written as base_model_name_or_path).
func (m *Model) SaveLoRA(dir string, c LoRAConfig, base string) error {
	ac, ps, err := m.loraAdapter(c, base, "", false)
	if err != nil {
		return err
	}
	return saveAdapter(dir, ac, ps, nil)
}

// loraAdapter is adapter_config.json and the tensors of m's adapters,
// named "base_model.model." + the module's name; with wrapped, the
// module's WrappedName under prefix, and target_modules is the
// WrappedPattern of prefix (SaveWrappedLoRA).
func (m *Model) loraAdapter(c LoRAConfig, base, prefix string, wrapped bool) (adapterConfig, []nn.Named, error) {
	var ps []nn.Named
	for _, p := range m.LoRAParams() {
		n := strings.TrimPrefix(p.Name, "base_model.model.")
		if wrapped {
			n = WrappedName(prefix, n)
		}
		ps = append(ps, nn.Named{Name: "base_model.model." + n, Tensor: p.Tensor})
	}
	if len(ps) == 0 {
		return adapterConfig{}, nil, errors.New("gpt: SaveLoRA: no LoRA attached")
	}
	if err := c.check(m.Config.Arch); err != nil {
		return adapterConfig{}, nil, err
	}
	ac := adapterConfig{
		PeftType: "LORA", TaskType: "CAUSAL_LM", BaseModel: base, InferenceMode: true,
		R: c.R, LoRAAlpha: c.Alpha, LoRADropout: config.ShortFloat(c.Dropout), TargetModules: c.Targets,
		FanInFanOut: archs[m.Config.Arch].fanInOut, Bias: "none", InitLoRA: true,
		RankPattern: map[string]any{}, AlphaPattern: map[string]any{},
	}
	switch {
	case wrapped:
		ac.TargetModules = WrappedPattern(prefix, m.loraTargetNames(c.Targets))
	case len(c.Targets) == 1 && c.Targets[0] == "all-linear":
		ac.TargetModules = "all-linear"
	}
	return ac, ps, nil
}

// SaveLoRA writes a reward or value model trained with LoRA into dir as
// PEFT saves a SEQ_CLS adapter: the backbone's adapters, and the score
// head trained whole as PEFT's modules_to_save ("base_model.model.score.weight");
// the reward offset is the file's metadata "golem_reward_bias" (PEFT reads
// neither it nor the base's config, so the head is the adapter's).
func (s *Scorer) SaveLoRA(dir string, c LoRAConfig, base string) error {
	return s.saveClassifier(dir, c, base, "", false)
}

// saveClassifier writes the scorer's adapters as loraAdapter names them, and
// its head, as PEFT's SEQ_CLS (modules_to_save ["score"]).
func (s *Scorer) saveClassifier(dir string, c LoRAConfig, base, prefix string, wrapped bool) error {
	ac, ps, err := s.Model.loraAdapter(c, base, prefix, wrapped)
	if err != nil {
		return err
	}
	ac.TaskType, ac.ModulesToSave = "SEQ_CLS", []string{scoreModule}
	ps = append(ps, nn.Named{Name: "base_model.model." + scoreModule + ".weight", Tensor: s.Score.Weight})
	return saveAdapter(dir, ac, ps, map[string]string{"golem_reward_bias": strconv.FormatFloat(float64(s.Bias), 'g', -1, 32)})
}

// scoreModule is the score head's module name (PEFT's modules_to_save).
const scoreModule = "score"

func saveAdapter(dir string, ac adapterConfig, ps []nn.Named, meta map[string]string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(ac, "", "  ")
	if err != nil {
		return err
	}
	md := map[string]string{"format": "pt"}
	maps.Copy(md, meta)
	if err := weights.Save(filepath.Join(dir, AdapterModelFile), ps, md); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, AdapterConfigFile), append(b, '\n'))
}

// SavePromptTuning writes a soft prompt into dir as PEFT's prompt-tuning
// adapter; base names the base model.
func (m *Model) SavePromptTuning(dir string, sp *nn.SoftPrompt, base string) error {
	ac := adapterConfig{
		PeftType: "PROMPT_TUNING", TaskType: "CAUSAL_LM", BaseModel: base, InferenceMode: true,
		NumVirtualTokens: sp.Weight.Dim(0), TokenDim: sp.Weight.Dim(1), NumSubmodules: 1,
		NumAttentionHeads: m.Config.Heads, NumLayers: m.Config.Layers, PromptInit: "RANDOM",
	}
	return saveAdapter(dir, ac, []nn.Named{{Name: "prompt_embeddings", Tensor: sp.Weight}}, nil)
}

// IsAdapter reports whether dir holds a PEFT adapter (adapter_config.json).
func IsAdapter(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, AdapterConfigFile))
	return err == nil
}

// Adapter is what ReadAdapterConfig found in an adapter folder (model/load
// reads the folder and its base model).
type Adapter struct {
	Type       string         // "LORA" or "PROMPT_TUNING"
	Base       string         // the base model folder, resolved against the adapter folder
	LoRA       LoRAConfig     // for LORA
	SoftPrompt *nn.SoftPrompt // for PROMPT_TUNING
	Params     []nn.Named     // the adapter's tensors under their PEFT names
	// Scorer marks a reward or value model's adapter (PEFT's SEQ_CLS with
	// the score head in modules_to_save): LoadScorer reads it, not Apply.
	Scorer bool
	// ModulesToSave (other than a scorer's head) and TargetPattern (a
	// regular expression target_modules) are read for a model that
	// wraps a language model (model/llava); Apply refuses them.
	ModulesToSave []string
	TargetPattern string
	tokens, width int // PROMPT_TUNING's num_virtual_tokens and token_dim
}

// ReadAdapterConfig reads dir/adapter_config.json and resolves its base
// model path: a relative path is taken relative to dir, or, in a training
// checkpoint OUT/trainer/step-N (whose files are OUT's), relative to OUT.
func ReadAdapterConfig(dir string) (*Adapter, error) {
	path := filepath.Join(dir, AdapterConfigFile)
	b, err := regfile.ReadFile(path, weights.MaxConfigBytes)
	if err != nil {
		return nil, fmt.Errorf("gpt: %w", err)
	}
	var ac adapterConfig
	if err := json.Unmarshal(b, &ac); err != nil {
		return nil, fmt.Errorf("gpt: %w", weights.JSONError(path, b, err))
	}
	a := &Adapter{Type: ac.PeftType, Base: ac.BaseModel, tokens: ac.NumVirtualTokens, width: ac.TokenDim}
	if a.Base == "" {
		return nil, fmt.Errorf("gpt: %s: base_model_name_or_path is empty (golem needs the base model's folder)", path)
	}
	if !filepath.IsAbs(a.Base) {
		if _, err := os.Stat(filepath.Join(dir, a.Base)); err == nil {
			a.Base = filepath.Join(dir, a.Base)
		} else if out := filepath.Dir(filepath.Dir(dir)); filepath.Base(filepath.Dir(dir)) == "trainer" {
			if _, err := os.Stat(filepath.Join(out, a.Base)); err == nil {
				a.Base = filepath.Join(out, a.Base)
			}
		}
	}
	switch ac.PeftType {
	case "LORA":
		if ac.UseDoRA {
			return nil, fmt.Errorf("gpt: %s: use_dora is not supported", path)
		}
		switch {
		case ac.TaskType == "SEQ_CLS" && slices.Equal(ac.ModulesToSave, []string{scoreModule}):
			a.Scorer = true
		case ac.TaskType == "SEQ_CLS":
			return nil, fmt.Errorf("gpt: %s: a SEQ_CLS adapter needs modules_to_save [\"score\"] (its trained head)", path)
		case len(ac.ModulesToSave) > 0:
			a.ModulesToSave = ac.ModulesToSave
		}
		if len(ac.RankPattern) > 0 || len(ac.AlphaPattern) > 0 {
			return nil, fmt.Errorf("gpt: %s: rank_pattern and alpha_pattern are not supported", path)
		}
		if ac.Bias != "" && ac.Bias != "none" {
			return nil, fmt.Errorf("gpt: %s: bias %q is not supported (want none)", path, ac.Bias)
		}
		a.LoRA = LoRAConfig{R: ac.R, Alpha: ac.LoRAAlpha, Dropout: float32(ac.LoRADropout)}
		switch t := ac.TargetModules.(type) {
		case string:
			if t != "all-linear" {
				a.TargetPattern = t
				break
			}
			a.LoRA.Targets = []string{t}
		case []any:
			for i, x := range t {
				s, ok := x.(string)
				if !ok {
					return nil, fmt.Errorf("gpt: %s: target_modules[%d] is not a string", path, i)
				}
				a.LoRA.Targets = append(a.LoRA.Targets, s)
			}
		default:
			return nil, fmt.Errorf("gpt: %s: target_modules missing", path)
		}
		if ac.UseRSLoRA && ac.R > 0 {
			// rsLoRA scales by alpha/sqrt(r); express it as alpha/r.
			a.LoRA.Alpha = ac.LoRAAlpha * float64(ac.R) / math.Sqrt(float64(ac.R))
		}
	case "PROMPT_TUNING":
		if ac.NumVirtualTokens <= 0 || ac.TokenDim <= 0 {
			return nil, fmt.Errorf("gpt: %s: num_virtual_tokens and token_dim must be positive", path)
		}
		if ac.NumSubmodules > 1 {
			return nil, fmt.Errorf("gpt: %s: num_transformer_submodules %d (a decoder-only model has 1)", path, ac.NumSubmodules)
		}
	default:
		return nil, fmt.Errorf("gpt: %s: peft_type %q not supported (want LORA or PROMPT_TUNING)", path, ac.PeftType)
	}
	return a, nil
}

// Apply attaches the adapter's tensors, read from dir/adapter_model.safetensors,
// to m (LoRA) or to a.SoftPrompt (prompt tuning).
func (a *Adapter) Apply(m *Model, dir string) error {
	path := filepath.Join(dir, AdapterModelFile)
	st, err := safetensors.Open(path)
	if err != nil {
		return err
	}
	defer st.Close()
	switch a.Type {
	case "LORA":
		switch {
		case len(a.ModulesToSave) > 0:
			return fmt.Errorf("gpt: %s: modules_to_save %q is not supported for a language model", filepath.Join(dir, AdapterConfigFile), a.ModulesToSave)
		case a.TargetPattern != "":
			return fmt.Errorf("gpt: %s: target_modules as a regular expression (%q) is not supported for a language model", filepath.Join(dir, AdapterConfigFile), a.TargetPattern)
		}
		if a.Scorer {
			return fmt.Errorf("gpt: %s: a reward or value model's adapter (SEQ_CLS, with its score head): give it where a reward or value model goes", filepath.Join(dir, AdapterConfigFile))
		}
		ps, err := m.AttachLoRA(a.LoRA, 0)
		if err != nil {
			return fmt.Errorf("gpt: %s: %w", path, err)
		}
		a.Params = ps
	case "PROMPT_TUNING":
		if a.width != m.Config.Hidden {
			return fmt.Errorf("gpt: %s: token_dim %d but the base model is %d wide", path, a.width, m.Config.Hidden)
		}
		// Check the file before allocating what the config asks for.
		if err := weights.Check(st, "prompt_embeddings", []int{a.tokens, a.width}, path); err != nil {
			return fmt.Errorf("gpt: %w (num_virtual_tokens, token_dim)", err)
		}
		m.Freeze()
		w := tensor.New(m.Embed.Weight.Backend(), a.tokens, a.width).SetRequiresGrad(true)
		a.SoftPrompt = &nn.SoftPrompt{Weight: w}
		a.Params = []nn.Named{{Name: "prompt_embeddings", Tensor: w}}
	}
	return fillParams(st, a.Params, path, nil)
}

// WrappedName is the name of m's parameter or module name (a causal LM's
// or a scorer's: "transformer.h.0.attn.c_attn", "model.layers.0.mlp.up_proj",
// "lm_head.weight", "score.weight") in a model that holds m's base model
// (transformers' AutoModel: GPT2Model, LlamaModel, Qwen2Model) under
// prefix and its head beside it, as transformers' LlavaForConditionalGeneration
// does from 4.52 ("model.language_model." + "h.0.attn.c_attn", and
// "lm_head.weight" at the top): prefix + the name without its first part
// ("transformer.", "model."); the heads keep their names.
func WrappedName(prefix, name string) string {
	if name == "lm_head.weight" || name == scoreModule+".weight" {
		return name
	}
	return prefix + name[strings.IndexByte(name, '.')+1:]
}

// SaveWrappedLoRA writes m's adapters as PEFT saves the LoRA of a model
// that holds m's base model under prefix (model/llava's
// "model.language_model."): the adapters' tensors named
// "base_model.model." + the module's WrappedName, target_modules a regular expression PEFT matches on the whole
// model's module names (WrappedPattern: m's modules alone, not those of
// the model's other parts with the same names), and saved, the modules
// trained whole, as modules_to_save with their tensors (named
// "base_model.model." + their name in the whole model).
func (m *Model) SaveWrappedLoRA(dir string, c LoRAConfig, base, prefix string, modules []string, saved []nn.Named) error {
	ac, ps, err := m.loraAdapter(c, base, prefix, true)
	if err != nil {
		return err
	}
	ac.ModulesToSave = modules
	for _, p := range saved {
		ps = append(ps, nn.Named{Name: "base_model.model." + p.Name, Tensor: p.Tensor})
	}
	return saveAdapter(dir, ac, ps, nil)
}

// SaveWrappedLoRA writes a reward or value model's adapters as
// Model.SaveWrappedLoRA does for a language model under prefix, as
// PEFT's SEQ_CLS: the score head (modules_to_save ["score"]) saved as
// "base_model.model.score.weight" (beside the holder's base model, as a
// head), the offset in the metadata.
func (s *Scorer) SaveWrappedLoRA(dir string, c LoRAConfig, base, prefix string) error {
	return s.saveClassifier(dir, c, base, prefix, true)
}

// loraTargetNames is targets with "all-linear" spelled out as m's
// moduleKinds.
func (m *Model) loraTargetNames(targets []string) []string {
	if !slices.Contains(targets, "all-linear") {
		return targets
	}
	return m.moduleKinds()
}

// moduleKinds are the last parts of m's linear layers' names ("q_proj"),
// each once, in the order of the modules.
func (m *Model) moduleKinds() []string {
	var out []string
	for _, md := range m.Modules() {
		if n := md.Name[strings.LastIndex(md.Name, ".")+1:]; !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// WrappedPattern is the target_modules regular expression of a LoRA on
// the language model held under prefix: PEFT full-matches it against
// module names, so it reads prefix, anything, then one of the targets.
func WrappedPattern(prefix string, targets []string) string {
	q := make([]string, len(targets))
	for i, t := range targets {
		q[i] = regexp.QuoteMeta(t)
	}
	return regexp.QuoteMeta(prefix) + `.*\.(?:` + strings.Join(q, "|") + `)`
}

// WrappedTargets reads back the targets of a WrappedPattern for prefix;
// any other expression is an error.
func WrappedTargets(pattern, prefix string) ([]string, error) {
	head := regexp.QuoteMeta(prefix) + `.*\.(?:`
	inner, ok := strings.CutPrefix(pattern, head)
	if inner, ok2 := strings.CutSuffix(inner, ")"); ok && ok2 && inner != "" {
		var out []string
		for _, t := range strings.Split(inner, "|") {
			out = append(out, strings.ReplaceAll(t, `\`, ""))
		}
		return out, nil
	}
	return nil, fmt.Errorf("target_modules %q: golem reads the form %s...) only", pattern, head)
}

// Share returns a model that computes what m computes from the same
// weight tensors (in memory once) through layers of its own, without m's
// adapters: a LoRA attached to it is not m's. golem serve runs several
// adapters over one base so.
func (m *Model) Share() *Model {
	seen := map[any]any{}
	c := nn.Share(m, seen)
	for _, md := range c.Modules() {
		md.Linear.LoRA = nil
	}
	return c
}
