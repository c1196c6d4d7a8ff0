package gpt

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/model/weights"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/safetensors"
	"github.com/golem-ml/golem/tensor"
)

// Scorer is a language model's backbone with a scalar head: a reward model
// (one score per sequence, read at its last token) or a value model (one
// score per position). It is saved as Hugging Face saves
// GPT2ForSequenceClassification, LlamaForSequenceClassification or
// Qwen2ForSequenceClassification with num_labels 1: the backbone's tensors
// under their usual names (no lm_head) and the head as "score.weight"
// [1, hidden], without a bias. config.json says so in "architectures" and
// "num_labels", and carries golem's reward offset as "golem_reward_bias":
// transformers ignores that key, so its logits are golem's scores minus the
// offset.
type Scorer struct {
	*Model            // the backbone; Head is nil (the LM head is not part of a scorer)
	Score  *nn.Linear // [1, hidden], PyTorch layout
	// Bias is added to every score; a reward model sets it so that
	// demonstrations score 0 on average.
	Bias float32
}

// NewScorer puts a fresh scalar head, N(0, 0.02) as transformers
// initialises it, on lm's backbone. The scorer shares lm's tensors; lm's
// LM head, if it has its own, is dropped from the scorer.
func NewScorer(lm *Model, seed uint64) *Scorer {
	in := nn.NewInit(lm.Embed.Weight.Backend(), seed)
	back := *lm
	back.Head = nil
	return &Scorer{Model: &back, Score: nn.NewLinear(in, lm.Config.Hidden, 1, false, 0.02)}
}

// Params returns the backbone's parameters and "score.weight".
func (s *Scorer) Params() []nn.Named {
	return append(s.Model.Params(), nn.Named{Name: "score.weight", Tensor: s.Score.Weight})
}

// Values returns the head's output at every position of ids, [B, T],
// plus Bias (Options.Embeds' positions, before the tokens, get none).
func (s *Scorer) Values(ids []int32, B, T int, o Options) *tensor.Tensor {
	h := s.Forward(ids, B, T, o)
	if o.Embeds != nil {
		P := o.Embeds.Dim(1)
		h = tensor.Slice(h, 1, P, P+T)
	}
	v := tensor.Reshape(s.Score.Forward(h), B, T)
	if s.Bias != 0 {
		v = tensor.AddScalar(v, s.Bias)
	}
	return v
}

// Scores returns one score per row of ids [B, T]: the head's output at
// position last[b] of row b, plus Bias ([B]).
func (s *Scorer) Scores(ids []int32, B, T int, last []int, o Options) *tensor.Tensor {
	if len(last) != B {
		panic(fmt.Sprintf("gpt: %d last positions for %d rows", len(last), B))
	}
	pick := make([]bool, B*T)
	for b, p := range last {
		if p < 0 || p >= T {
			panic(fmt.Sprintf("gpt: last position %d of row %d outside 0..%d", p, b, T-1))
		}
		pick[b*T+p] = true
	}
	v := s.Values(ids, B, T, o)
	return tensor.SumLast(tensor.Where(pick, v, v.Scope().New(v.Backend(), v.Shape()...)))
}

// ScoreSequences scores token sequences in batches of up to batch rows
// (right-padded; each is read at its last token) without gradients.
func (s *Scorer) ScoreSequences(seqs [][]int, batch int) ([]float64, error) {
	if batch <= 0 {
		batch = 8
	}
	out := make([]float64, 0, len(seqs))
	for i := 0; i < len(seqs); i += batch {
		rows := seqs[i:min(i+batch, len(seqs))]
		T := 0
		for j, r := range rows {
			if len(r) == 0 {
				return nil, fmt.Errorf("gpt: sequence %d is empty", i+j)
			}
			if len(r) > s.Config.Context {
				return nil, fmt.Errorf("gpt: sequence %d has %d tokens, the context is %d", i+j, len(r), s.Config.Context)
			}
			T = max(T, len(r))
		}
		// A few distinct shapes: the CPU backend reuses buffers by size.
		T = max(T, min(s.Config.Context, (T+15)/16*16))
		ids := make([]int32, len(rows)*T)
		last := make([]int, len(rows))
		for b, r := range rows {
			for t, id := range r {
				ids[b*T+t] = int32(id)
			}
			last[b] = len(r) - 1
		}
		tensor.NoGrad(func() {
			step := tensor.NewScope()
			defer step.Close()
			for _, v := range s.Scores(ids, len(rows), T, last, Options{Scope: step}).Host() {
				out = append(out, float64(v))
			}
		})
	}
	return out, nil
}

// ConfigJSON returns the scorer's config.json (see [Scorer]).
func (s *Scorer) ConfigJSON() ([]byte, error) {
	cj, err := s.Config.JSON()
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(cj, &m); err != nil {
		return nil, err
	}
	m["architectures"] = []string{archs[s.Config.Arch].classifier}
	m["num_labels"] = 1
	m["id2label"] = map[string]string{"0": "LABEL_0"}
	m["label2id"] = map[string]int{"LABEL_0": 0}
	m["golem_reward_bias"] = s.Bias
	if s.Config.EOS >= 0 {
		m["pad_token_id"] = s.Config.EOS
	}
	return json.MarshalIndent(m, "", "  ")
}

// Save writes config.json and model.safetensors (see [Scorer]).
func (s *Scorer) Save(dir string) error {
	b, err := s.ConfigJSON()
	if err != nil {
		return err
	}
	return weights.SaveFolder(dir, json.RawMessage(b), append(s.Model.hfParams(), nn.Named{Name: "score.weight", Tensor: s.Score.Weight}))
}

// IsScorer reports whether the model folder dir holds a scorer (its
// config.json has num_labels, as a reward or value model's does).
func IsScorer(dir string) bool {
	var h struct {
		NumLabels *int `json:"num_labels"`
	}
	return weights.PeekConfig(filepath.Join(dir, weights.ConfigFile), &h) == nil && h.NumLabels != nil
}

// LoadScorer reads a scorer saved by [Scorer.Save] or by transformers'
// *ForSequenceClassification with num_labels 1. A language model's folder
// is an error naming the missing "score.weight".
func LoadScorer(be backend.Backend, dir string) (*Scorer, error) {
	if _, ok, _ := gguf.Locate(dir); ok {
		return nil, fmt.Errorf("gpt: %s: a GGUF file holds a language model, not a reward or value model", dir)
	}
	if IsAdapter(dir) {
		return loadScorerAdapter(be, dir, 0)
	}
	if _, err := LoadConfig(dir); err != nil {
		return nil, err
	}
	var h struct {
		NumLabels *int    `json:"num_labels"`
		Bias      float32 `json:"golem_reward_bias"`
	}
	if err := weights.PeekConfig(filepath.Join(dir, weights.ConfigFile), &h); err != nil {
		return nil, fmt.Errorf("gpt: %w", err)
	}
	if h.NumLabels != nil && *h.NumLabels != 1 {
		return nil, fmt.Errorf("gpt: %s: num_labels is %d, a reward or value model has 1", dir, *h.NumLabels)
	}
	m, score, err := load(be, dir, true, false)
	if err != nil {
		return nil, err
	}
	s := &Scorer{Model: m, Score: score, Bias: h.Bias}
	return s, nil
}

// loadScorerAdapter loads a reward or value model's LoRA adapter (Scorer.SaveLoRA)
// over its base: a language model (the head is the adapter's), a scorer
// folder, or a scorer's adapter (merged into its base first: a value
// model's adapter over a reward model trained with LoRA). The adapters
// stay attached, unmerged, trainable as the head.
func loadScorerAdapter(be backend.Backend, dir string, depth int) (*Scorer, error) {
	a, err := readScorerAdapter(dir)
	if err != nil {
		return nil, err
	}
	var s *Scorer
	switch {
	case IsAdapter(a.Base) && depth >= 8:
		return nil, fmt.Errorf("gpt: %s: more than 8 adapters over one another (a loop of base_model_name_or_path?)", filepath.Join(dir, AdapterConfigFile))
	case IsAdapter(a.Base):
		if s, err = loadScorerAdapter(be, a.Base, depth+1); err == nil {
			s.MergeLoRA()
		}
	case IsScorer(a.Base):
		s, err = LoadScorer(be, a.Base)
	default:
		var lm *Model
		if lm, err = Load(be, a.Base); err == nil {
			s = NewScorer(lm, 0)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("gpt: %s: base model: %w", dir, err)
	}
	return s, s.apply(a, dir)
}

// readScorerAdapter is ReadAdapterConfig for a reward or value model's
// LoRA adapter: any other adapter is an error.
func readScorerAdapter(dir string) (*Adapter, error) {
	a, err := ReadAdapterConfig(dir)
	if err == nil && (a.Type != "LORA" || !a.Scorer) {
		err = fmt.Errorf("gpt: %s: a %s adapter of a language model, not of a reward or value model (SEQ_CLS with modules_to_save [\"score\"])", filepath.Join(dir, AdapterConfigFile), a.Type)
	}
	return a, err
}

// ApplyAdapter attaches the reward or value model's LoRA adapter in dir
// (Scorer.SaveLoRA) to s, whose backbone must be the adapter's base
// without adapters: the LoRA matrices, the head and the offset are the
// adapter's. PPO's value model over its reward model's backbone uses it:
// two heads, one copy of the weights.
func (s *Scorer) ApplyAdapter(dir string) error {
	a, err := readScorerAdapter(dir)
	if err != nil {
		return err
	}
	return s.apply(a, dir)
}

func (s *Scorer) apply(a *Adapter, dir string) error {
	path := filepath.Join(dir, AdapterModelFile)
	st, err := safetensors.Open(path)
	if err != nil {
		return err
	}
	defer st.Close()
	ps, err := s.AttachLoRA(a.LoRA, 0)
	if err != nil {
		return fmt.Errorf("gpt: %s: %w", path, err)
	}
	s.Score.Weight.SetRequiresGrad(true)
	ps = append(ps, nn.Named{Name: "base_model.model." + scoreModule + ".weight", Tensor: s.Score.Weight})
	if err := fillParams(st, ps, path, nil); err != nil {
		return err
	}
	s.Bias = 0
	if v, ok := st.Metadata()["golem_reward_bias"]; ok {
		b, err := strconv.ParseFloat(v, 32)
		if err != nil {
			return fmt.Errorf("gpt: %s: metadata golem_reward_bias %q: %w", path, v, err)
		}
		s.Bias = float32(b)
	}
	return nil
}
