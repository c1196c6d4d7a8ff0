package train

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tokenizer"
)

// saveModel writes a language model and its tokenizer as a Hugging Face
// model folder: generation_config.json's eos_token_id lists the tokens
// that end an answer (<|im_end|> as well as the model's EOS, so that
// transformers' generate stops a chat answer where golem does), and
// tokenizer_config.json's model_max_length is the model's context.
func saveModel(dir string, m *gpt.Model, tok *tokenizer.Tokenizer) error {
	if err := m.Save(dir, tok.EndIDs()...); err != nil {
		return err
	}
	return tok.SaveForModel(dir, m.Config.Context)
}

// checkpointModels sets the trained models' CheckpointActivations from
// the config (every stage that trains a gpt.Model calls it before Run).
func (c Config) checkpointModels(ms ...*gpt.Model) {
	for _, m := range ms {
		if m != nil {
			m.CheckpointActivations = c.CheckpointActivations
		}
	}
}

// saveScorer writes a reward or value model and its tokenizer.
func saveScorer(dir string, s *gpt.Scorer, tok *tokenizer.Tokenizer) error {
	if err := s.Save(dir); err != nil {
		return err
	}
	return tok.SaveForModel(dir, s.Config.Context)
}

// ModelCard says how a model was trained, for the README.md model card
// each checkpoint writes beside the model files (Config.Card).
type ModelCard struct {
	Stage string   // the golem command: "pretrain", "sft", "reward", "dpo", "ppo", "grpo"
	What  string   // what the stage does, a phrase: "instruction tuning (LoRA, rank 8)"
	Base  string   // the model it started from ("" for pretraining)
	Data  []string // what it trained on
}

// writeCard writes dir/README.md, a Hugging Face model card: how the model
// in dir was trained, from the card, the loop's settings and the step's
// result.
func writeCard(dir string, c *ModelCard, cfg Config, res Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "---\nlibrary_name: golem\ntags:\n- golem\n- %s\n---\n\n", c.Stage)
	fmt.Fprintf(&b, "# %s\n\n", filepath.Base(filepath.Clean(cfg.Out)))
	fmt.Fprintf(&b, "Trained by golem's `golem %s`: %s.\n\n", c.Stage, c.What)
	fmt.Fprintf(&b, "| | |\n| --- | --- |\n")
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, strings.ReplaceAll(v, "|", `\|`)) }
	if c.Base != "" {
		row("started from", "`"+c.Base+"`")
	}
	if len(c.Data) > 0 {
		row("data", strings.Join(c.Data, ", "))
	}
	row("steps", fmt.Sprintf("%d of %d (%d micro-batches per step)", res.Step, cfg.Steps, max(cfg.Accum, 1)))
	row("learning rate", fmt.Sprintf("%g peak, %d warmup steps, cosine to %g", cfg.LR, cfg.Warmup, cfg.MinLR))
	row("weight decay, gradient clip", fmt.Sprintf("%g, %g", cfg.WeightDecay, cfg.Clip))
	row("seed", fmt.Sprint(cfg.Seed))
	row("last training loss", fmt.Sprintf("%.4f", res.Loss))
	keys := make([]string, 0, len(res.Eval))
	for k := range res.Eval {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		row(k, fmt.Sprintf("%.4f", res.Eval[k]))
	}
	b.WriteString("\nThe folder is a Hugging Face model folder (transformers and golem load it as it is); " +
		"`metrics.jsonl` has the run's losses, `trainer/step-N` the state `--resume` continues from.\n")
	return atomicfile.WriteFile(filepath.Join(dir, "README.md"), []byte(b.String()))
}
