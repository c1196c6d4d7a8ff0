package train

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/model/load"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tokenizer"
)

// This file holds what the stages that train a language model with LoRA
// share (sft, dpo, grpo): loading the model or resuming its adapter,
// the trained parameters, saving a PEFT adapter folder, merging, and the
// frozen reference as the model with its adapters off.

// lmTrainee is the language model a stage trains: the whole model, or,
// with LoRA, adapters over the frozen base, saved as a PEFT adapter folder
// whose base_model_name_or_path is the base's folder relative to Out.
type lmTrainee struct {
	m    *gpt.Model
	tok  *tokenizer.Tokenizer
	lora *gpt.LoRAConfig // nil: the whole model trains
	base string          // the base model's folder (with LoRA)
	out  string
	// vlm is the LLaVA model whose language model m is, when the stage
	// trains a vision-language model (its tower and projector frozen);
	// refVLM the frozen reference's (loadRef).
	vlm, refVLM *llava.Model
}

// loadTrainee loads what a stage trains: Out's model or adapter when
// resuming (an adapter stays attached, unmerged), else model (loadLM: an
// adapter given as the model is merged into its base), with fresh adapters
// attached when lora is set.
func loadTrainee(be backend.Backend, model string, cfg Config, lora *gpt.LoRAConfig, what string) (*lmTrainee, error) {
	t := &lmTrainee{out: cfg.Out}
	if llava.IsLLaVA(model) || (cfg.Resume && llava.IsLLaVA(cfg.Out)) {
		return t, t.loadVLMTrainee(be, model, cfg, lora, what)
	}
	if cfg.Resume {
		l, err := load.Model(be, cfg.Out, load.Options{KeepLoRA: true})
		if err != nil {
			return nil, fmt.Errorf("%s: --resume: %w", what, err)
		}
		t.m, t.tok = l.Model, l.Tok
		switch a := l.Adapter; {
		case a != nil && a.Type == "LORA":
			if lora == nil {
				return nil, fmt.Errorf("%s: --resume: %s holds a LoRA adapter; pass the same --lora-r", what, cfg.Out)
			}
			c := a.LoRA
			c.Dropout = lora.Dropout // PEFT's file says 0 at inference; the run's is the flag's
			t.lora, t.base = &c, a.Base
		case a != nil:
			return nil, fmt.Errorf("%s: --resume: %s holds a %s adapter, which this stage does not train", what, cfg.Out, a.Type)
		case lora != nil:
			return nil, fmt.Errorf("%s: --resume: %s holds a full model, not a LoRA adapter (resume without --lora-r)", what, cfg.Out)
		}
		return t, nil
	}
	var err error
	if t.m, t.tok, err = loadLM(be, model, what); err != nil {
		return nil, err
	}
	if lora != nil {
		c := *lora
		if t.base, err = filepath.Abs(model); err != nil {
			return nil, err
		}
		if _, err := t.m.AttachLoRA(c, cfg.Seed+7); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		t.lora = &c
	}
	return t, nil
}

// method names what trains, for logs and model cards.
func (t *lmTrainee) method() string {
	if t.lora != nil {
		return fmt.Sprintf("LoRA, rank %d", t.lora.R)
	}
	return "full"
}

// params returns what the optimizer trains and a checkpoint holds: the
// adapters alone with LoRA, else the whole model.
func (t *lmTrainee) params() []nn.Named {
	if t.lora != nil {
		return t.m.LoRAParams()
	}
	return t.m.Params()
}

// setSeed sets the adapters' dropout seed for a micro-batch (a function
// of the step, so that a resumed run draws the same masks).
func (t *lmTrainee) setSeed(seed uint64) {
	if t.lora != nil {
		t.m.SetLoRASeed(seed)
	}
}

// save writes the model folder, or with LoRA the PEFT adapter folder and
// the tokenizer.
func (t *lmTrainee) save(dir string) error {
	if t.vlm != nil && t.lora != nil {
		if err := t.vlm.SaveLoRA(dir, *t.lora, relBase(t.out, t.base)); err != nil {
			return err
		}
		return llava.SaveTokenizer(t.tok, dir, &t.vlm.Config)
	}
	if t.vlm != nil {
		if err := t.vlm.Save(dir); err != nil {
			return err
		}
		return llava.SaveTokenizer(t.tok, dir, &t.vlm.Config)
	}
	if t.lora == nil {
		return saveModel(dir, t.m, t.tok)
	}
	if err := t.m.SaveLoRA(dir, *t.lora, relBase(t.out, t.base)); err != nil {
		return err
	}
	return t.tok.SaveForModel(dir, t.m.Config.Context)
}

// reference runs fn on the frozen reference: with LoRA, the trainee with
// its adapters off (no second copy of the weights, as TRL does it); else
// full, a frozen copy of the starting model loaded once (loadRef).
func (t *lmTrainee) reference(full *gpt.Model, fn func(ref *gpt.Model)) {
	if t.lora != nil {
		t.m.WithoutLoRA(func() { fn(t.m) })
		return
	}
	fn(full)
}

// refVision is the LLaVA model around the reference (loadRef's, or with
// LoRA the policy's: its adapters off); nil for a text model.
func (t *lmTrainee) refVision() *llava.Model {
	if t.refVLM != nil {
		return t.refVLM
	}
	return t.vlm
}

// loadRef loads the frozen reference a full run needs (nil with LoRA)
// and the tokenizer, checked for chat tokens.
func (t *lmTrainee) loadRef(be backend.Backend, model, what string) (*gpt.Model, *tokenizer.Tokenizer, error) {
	if t.vlm != nil && t.lora != nil { // the reference: the adapters off
		return nil, t.tok, nil
	}
	if t.vlm != nil {
		ref, _, err := loadVLM(be, model, what)
		if err != nil {
			return nil, nil, err
		}
		freeze(ref.Params())
		t.refVLM = ref
		return ref.LM, t.tok, nil
	}
	if t.lora != nil {
		if err := checkChatTokenizer(t.tok, t.m.Config.Vocab, model); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", what, err)
		}
		return nil, t.tok, nil
	}
	ref, tok, err := loadPolicy(be, model, what)
	if err != nil {
		return nil, nil, err
	}
	freeze(ref.Params())
	return ref, tok, nil
}

// mergeAfter writes the model with its adapters merged into Out/merged,
// when merge is asked and the run finished; it returns the folder.
func (t *lmTrainee) mergeAfter(merge bool, res Result, log io.Writer) (string, error) {
	if !merge || t.lora == nil || res.Interrupted {
		return "", nil
	}
	if t.vlm != nil {
		dir := filepath.Join(t.out, "merged")
		t.m.MergeLoRA()
		if err := t.vlm.Save(dir); err != nil {
			return "", err
		}
		if err := llava.SaveTokenizer(t.tok, dir, &t.vlm.Config); err != nil {
			return "", err
		}
		fmt.Fprintf(log, "merged model written to %s\n", dir)
		return dir, nil
	}
	return saveMerged(t.out, t.m, t.tok, log)
}

// saveMerged merges m's adapters into its weights and writes the model
// to out/merged.
func saveMerged(out string, m *gpt.Model, tok *tokenizer.Tokenizer, log io.Writer) (string, error) {
	dir := filepath.Join(out, "merged")
	m.MergeLoRA()
	if err := saveModel(dir, m, tok); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "merged model written to %s\n", dir)
	return dir, nil
}

// relBase is the base model's folder relative to the adapter's, out
// (gpt.ReadAdapterConfig resolves it against the adapter folder), so that
// the pair can move together; the absolute path when that fails.
func relBase(out, base string) string {
	o, err1 := filepath.Abs(out)
	b, err2 := filepath.Abs(base)
	if err1 != nil || err2 != nil {
		return base
	}
	if rel, err := filepath.Rel(o, b); err == nil {
		return filepath.ToSlash(rel)
	}
	return b
}

// loadVLMTrainee loads a LLaVA model to train (vlm): its language model
// whole, or with lora, adapters on it (the reference is the model with
// them off), saved as a PEFT adapter folder over model (llava.SaveLoRA);
// on resume, Out's model or adapter.
func (t *lmTrainee) loadVLMTrainee(be backend.Backend, model string, cfg Config, lora *gpt.LoRAConfig, what string) error {
	var err error
	if cfg.Resume {
		c, base, ok, err := llava.LoRA(cfg.Out)
		switch {
		case err != nil:
			return fmt.Errorf("%s: --resume: %w", what, err)
		case ok && lora == nil:
			return fmt.Errorf("%s: --resume: %s holds a LoRA adapter; pass the same --lora-r", what, cfg.Out)
		case !ok && lora != nil:
			return fmt.Errorf("%s: --resume: %s holds a full model, not a LoRA adapter (resume without --lora-r)", what, cfg.Out)
		case ok:
			if t.vlm, _, err = llava.LoadLoRA(be, cfg.Out); err != nil {
				return fmt.Errorf("%s: --resume: %w", what, err)
			}
			if t.tok, err = llava.LoadTokenizer(cfg.Out, &t.vlm.Config); err != nil {
				return fmt.Errorf("%s: --resume: %w", what, err)
			}
			c.Dropout = lora.Dropout // PEFT's file says 0 at inference; the run's is the flag's
			t.m, t.lora, t.base = t.vlm.LM, &c, base
			return nil
		}
		model = cfg.Out
	}
	if lora != nil && gpt.IsAdapter(model) {
		return fmt.Errorf("%s: %s is a LoRA adapter; LoRA on it needs its merged LLaVA folder (golem vlm --merge writes OUT/merged)", what, model)
	}
	if t.vlm, t.tok, err = loadVLM(be, model, what); err != nil {
		return err
	}
	t.m = t.vlm.LM
	if lora != nil {
		c := *lora
		if t.base, err = filepath.Abs(model); err != nil {
			return err
		}
		if _, err := t.m.AttachLoRA(c, cfg.Seed+7); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		t.lora = &c
	}
	return nil
}

// loadVLM loads a LLaVA folder (or a LoRA adapter over one, merged) and
// its tokenizer for a preference stage, through model/load as every
// command does: the language model trains, the vision tower and projector
// stay as they are (what the labels compare is the language model's
// answers).
func loadVLM(be backend.Backend, dir, what string) (*llava.Model, *tokenizer.Tokenizer, error) {
	l, err := load.Model(be, dir, load.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	if l.VLM == nil {
		return nil, nil, fmt.Errorf("%s: %s is not a LLaVA model", what, dir)
	}
	v, tok := l.VLM, l.Tok
	freeze(v.ProjectorParams())
	for _, p := range v.LM.Params() {
		p.Tensor.SetRequiresGrad(true)
	}
	return v, tok, nil
}
