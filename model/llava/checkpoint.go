package llava

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/vit"
	"github.com/golem-ml/golem/model/weights"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/safetensors"
	"github.com/golem-ml/golem/tensor"
)

// ModelType is config.json's model_type of a LLaVA folder.
const ModelType = "llava"

// jsonConfig is config.json's fields (transformers' LlavaConfig).
type jsonConfig struct {
	ModelType          string          `json:"model_type"`
	Architectures      []string        `json:"architectures,omitempty"`
	VisionConfig       json.RawMessage `json:"vision_config"`
	TextConfig         json.RawMessage `json:"text_config"`
	ImageTokenIndex    int             `json:"image_token_index"`
	ProjectorHiddenAct string          `json:"projector_hidden_act"`
	FeatureLayer       *int            `json:"vision_feature_layer,omitempty"` // transformers' default: -2
	FeatureStrategy    string          `json:"vision_feature_select_strategy"`
	ProjectorBias      *bool           `json:"multimodal_projector_bias,omitempty"`
	// Tie is text_config's tie_word_embeddings again: transformers 4.52+
	// ties lm_head to the embedding by the top-level config's.
	Tie *bool `json:"tie_word_embeddings,omitempty"`
}

// IsLLaVA reports whether dir holds a LLaVA model: a config.json of
// model_type "llava", or a LoRA adapter over such a folder (SaveLoRA).
func IsLLaVA(dir string) bool { return isFolder(dir) || adapterOf(dir) != nil }

// isFolder reports whether dir holds a config.json of model_type "llava".
func isFolder(dir string) bool {
	t, err := weights.ModelType(filepath.Join(dir, weights.ConfigFile))
	return err == nil && t == ModelType
}

// LoadConfig reads dir's config.json, bounded; errors name the file and
// field (weights.LoadConfig).
func LoadConfig(dir string) (*Config, error) {
	return weights.LoadConfig(filepath.Join(dir, weights.ConfigFile), ParseConfig)
}

// ParseConfig reads a LLaVA config.json. golem runs what it writes: one
// layer's patch tokens (vision_feature_layer, one layer; strategy
// "default") through a GELU projector.
func ParseConfig(b []byte) (*Config, error) {
	var j jsonConfig
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("llava: %w", err)
	}
	switch {
	case j.ModelType != ModelType:
		return nil, fmt.Errorf("llava: model_type %q, want %q", j.ModelType, ModelType)
	case len(j.VisionConfig) == 0 || len(j.TextConfig) == 0:
		return nil, fmt.Errorf("llava: \"vision_config\" and \"text_config\" are needed")
	case j.ProjectorHiddenAct != "gelu":
		return nil, fmt.Errorf("llava: \"projector_hidden_act\" %q not supported (want \"gelu\")", j.ProjectorHiddenAct)
	case j.FeatureStrategy != "default":
		return nil, fmt.Errorf("llava: \"vision_feature_select_strategy\" %q not supported (want \"default\": the patch tokens)", j.FeatureStrategy)
	case j.ProjectorBias != nil && !*j.ProjectorBias:
		return nil, fmt.Errorf("llava: \"multimodal_projector_bias\" false not supported")
	}
	v, err := vit.ParseConfig(j.VisionConfig, vit.CLIP)
	if err != nil {
		return nil, fmt.Errorf("vision_config: %w", err)
	}
	t, err := gpt.ParseConfig(j.TextConfig)
	if err != nil {
		return nil, fmt.Errorf("text_config: %w", err)
	}
	c := &Config{Vision: *v, Text: *t, ImageToken: j.ImageTokenIndex, FeatureLayer: -2}
	if c.ImageToken == c.Text.Vocab-1 { // the image token's row, the last, is no token of golem's language model
		c.Text.Vocab--
		c.imageRow = true
	}
	if j.FeatureLayer != nil {
		c.FeatureLayer = *j.FeatureLayer
	}
	return c, c.Validate()
}

// JSON returns config.json: with an image token past the vocabulary
// (ImageToken == Text.Vocab), text_config's vocab_size counts its row
// (Save writes it).
func (c *Config) JSON() ([]byte, error) {
	v, err := c.Vision.JSON()
	if err != nil {
		return nil, err
	}
	text := c.Text
	if c.ImageToken == text.Vocab {
		text.Vocab++
	}
	t, err := text.JSON()
	if err != nil {
		return nil, err
	}
	bias := true
	return json.MarshalIndent(jsonConfig{ModelType: ModelType, Architectures: []string{"LlavaForConditionalGeneration"},
		VisionConfig: v, TextConfig: t, ImageTokenIndex: c.ImageToken, ProjectorHiddenAct: "gelu",
		FeatureLayer: &c.FeatureLayer, FeatureStrategy: "default", ProjectorBias: &bias, Tie: &c.Text.Tied}, "", "  ")
}

// Load reads a LLaVA folder (config.json, model.safetensors) onto be, in
// either layout, or a LoRA adapter folder over one (SaveLoRA; merged into
// the weights): every parameter present with its shape and no other
// tensor (lm_head.weight, a tied head's copy of the embedding, aside), the vision
// tower's sizes checked against the checkpoint's header before anything
// is allocated, NaN or infinite weights refused. The vision tower is
// frozen. The tokenizer is the caller's (LoadTokenizer).
func Load(be backend.Backend, dir string) (*Model, error) {
	if adapterOf(dir) != nil { // a LoRA adapter: merged into its base
		m, _, err := loadAdapter(be, dir, false)
		return m, err
	}
	c, err := LoadConfig(dir)
	if err != nil {
		return nil, err
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
	if err := fillFolder(st, c, named(m.Vision.Params(), nn.Params(m.Projector), m.LM.Params(), legacy), dir, tiedHead(m.LM, legacy)); err != nil {
		return nil, err
	}
	m.FreezeVision()
	return m, st.Changed()
}

// vocabRows reports whether a tensor of a folder's language model has one
// row per token (the embedding, the LM head).
func vocabRows(name string) bool {
	for _, n := range []string{"transformer.wte.weight", "model.embed_tokens.weight", "lm_head.weight"} {
		if name == gpt.WrappedName(LMPrefix, n) || name == legacyLM+n {
			return true
		}
	}
	return false
}

// fillFolder reads ps (named as in the folder) from st, as weights.Fill does;
// when the folder's vocabulary holds the image token's row (c.imageRow),
// the embedding and the LM head are read whole and the row dropped: golem
// never looks it up.
func fillFolder(st *safetensors.Model, c *Config, ps []nn.Named, dir string, extra func(string) bool) error {
	var grown []nn.Named
	if c.imageRow {
		ps = slices.Clone(ps)
		for i, p := range ps {
			if vocabRows(p.Name) {
				sh := slices.Clone(p.Tensor.Shape())
				sh[0]++
				ps[i].Tensor = tensor.New(p.Tensor.Backend(), sh...)
				grown = append(grown, nn.Named{Name: p.Name, Tensor: p.Tensor})
			}
		}
	}
	if err := weights.Fill(st, ps, dir, extra); err != nil {
		return fmt.Errorf("llava: %w", err)
	}
	for _, g := range grown {
		for _, p := range ps {
			if p.Name == g.Name {
				g.Tensor.Set(p.Tensor.Host()[:g.Tensor.Len()])
			}
		}
	}
	return nil
}

// withImageRow returns ps (a folder's names and the model's tensors) for
// a folder whose vocabulary holds the image token (c.ImageToken ==
// c.Text.Vocab): the embedding and the LM head one row longer, the row
// the mean of the others, as LLaVA's recipe initialises the rows of the
// tokens it adds (llava/train/train.py's smart_tokenizer_and_embedding_resize).
func withImageRow(c *Config, ps []nn.Named) []nn.Named {
	if c.ImageToken != c.Text.Vocab {
		return ps
	}
	ps = slices.Clone(ps)
	for i, p := range ps {
		if !vocabRows(p.Name) {
			continue
		}
		w, C := p.Tensor.Host(), p.Tensor.Dim(1)
		mean := make([]float64, C)
		for r := 0; r < len(w); r += C {
			for j := range C {
				mean[j] += float64(w[r+j])
			}
		}
		for j := range C {
			w = append(w, float32(mean[j]/float64(len(w)/C)))
		}
		ps[i].Tensor = tensor.FromHost(p.Tensor.Backend(), w, p.Tensor.Dim(0)+1, C)
	}
	return ps
}

// isLegacy reports whether st holds a folder in transformers' layout up
// to 4.51 (the language model under "language_model.").
func isLegacy(st *safetensors.Model) bool {
	return slices.ContainsFunc(st.Names(), func(n string) bool { return strings.HasPrefix(n, legacyLM) })
}

// tiedHead is Fill's extra tensors of a folder in the current layout over
// a language model whose head is its embedding: lm_head.weight (Save
// writes it, as transformers' state dict holds it; the embedding is read).
func tiedHead(lm *gpt.Model, legacy bool) func(string) bool {
	return func(n string) bool { return !legacy && lm.Head == nil && n == "lm_head.weight" }
}

// build checks config c against the checkpoint's header (legacy: in
// transformers' layout up to 4.51), then allocates the model (weights not
// read yet).
func build(be backend.Backend, c *Config, st *safetensors.Model, dir string, legacy bool) (*Model, error) {
	vision, proj, embed := VisionPrefix, ProjectorPrefix, gpt.WrappedName(LMPrefix, lmEmbedName(c))
	if legacy {
		vision, proj, embed = legacyVision, legacyProjector, legacyLM+lmEmbedName(c)
	}
	if err := vit.CheckHeader(&c.Vision, st, safetensors.ModelFile, vision); err != nil {
		return nil, fmt.Errorf("llava: %s: vision_config: %w", filepath.Join(dir, "config.json"), err)
	}
	rows := c.Text.Vocab
	if c.imageRow {
		rows++
	}
	if err := weights.CheckHeader(st, safetensors.ModelFile, []weights.Expect{
		{Name: embed, Shape: []int{rows, c.Text.Hidden}, Fields: "text_config \"vocab_size\" and \"hidden_size\""},
		{Name: proj + "linear_1.weight", Shape: []int{c.Text.Hidden, c.Vision.Hidden}, Fields: "text_config and vision_config \"hidden_size\""},
	}); err != nil {
		return nil, fmt.Errorf("llava: %s: %w", filepath.Join(dir, "config.json"), err)
	}
	vis, err := vit.New(be, c.Vision, 0)
	if err != nil {
		return nil, err
	}
	lm, err := gpt.New(be, c.Text, 0)
	if err != nil {
		return nil, err
	}
	return &Model{Config: *c, Vision: vis, LM: lm, Projector: newProjector(nn.NewInit(be, 0), *c)}, nil
}

// lmEmbedName is the language model's token embedding's name (GPT-2's,
// or the Llama family's).
func lmEmbedName(c *Config) string {
	if c.Text.Arch == "gpt2" {
		return "transformer.wte.weight"
	}
	return "model.embed_tokens.weight"
}

// Save writes config.json and model.safetensors into dir (created if
// needed), each atomically, in the current layout: Params, and
// lm_head.weight where the language model ties its head to the
// embedding (transformers' state dict names it too; 5.x ties by names a
// GPT-2 body lacks, so the head is in the file); both one row longer for
// an image token past the vocabulary (withImageRow). The caller saves the
// tokenizer beside them.
func (m *Model) Save(dir string) error {
	cj, err := m.Config.JSON()
	if err != nil {
		return err
	}
	ps := m.Params()
	if m.LM.Head == nil {
		ps = append(ps, nn.Named{Name: "lm_head.weight", Tensor: m.LM.Embed.Weight})
	}
	return weights.SaveFolder(dir, json.RawMessage(cj), withImageRow(&m.Config, ps))
}
