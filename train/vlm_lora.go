package train

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/llava"
)

// vlmLoRA is a VLM stage's LoRA: the adapters' config and the base LLaVA
// folder, relative to Out (base_model_name_or_path).
type vlmLoRA struct {
	c    gpt.LoRAConfig
	base string
}

// loadLoRA sets up LoRA in stage 2 (o.LoRA set) or resumes a run: a
// fresh run loads o.Model and attaches new adapters to its language model;
// a resumed run whose Out holds a LoRA adapter loads it with its adapters
// attached. It returns nil, and leaves t.model unset, when Out holds a
// whole LLaVA folder to resume.
func (t *vlmTask) loadLoRA(o VLMOptions, cfg Config) (*vlmLoRA, error) {
	if cfg.Resume {
		c, base, ok, err := llava.LoRA(cfg.Out)
		switch {
		case err != nil:
			return nil, fmt.Errorf("vlm: --resume: %w", err)
		case ok && o.LoRA == nil:
			return nil, fmt.Errorf("vlm: --resume: %s holds a LoRA adapter; pass the same --lora-r", cfg.Out)
		case !ok && o.LoRA != nil:
			return nil, fmt.Errorf("vlm: --resume: %s holds a whole model, not a LoRA adapter (resume without --lora-r)", cfg.Out)
		case !ok:
			return nil, nil
		}
		if t.model, _, err = llava.LoadLoRA(o.Backend, cfg.Out); err != nil {
			return nil, fmt.Errorf("vlm: --resume: %w", err)
		}
		if t.tok, err = llava.LoadTokenizer(cfg.Out, &t.model.Config); err != nil {
			return nil, fmt.Errorf("vlm: --resume: %w", err)
		}
		c.Dropout = o.LoRA.Dropout // PEFT's file says 0 at inference; the run's is the flag's
		return &vlmLoRA{c: c, base: relBase(cfg.Out, base)}, nil
	}
	switch {
	case o.Stage != StageInstruct:
		return nil, fmt.Errorf("vlm: LoRA (--lora-r) is for stage %q; stage %q trains the projector alone", StageInstruct, o.Stage)
	case o.Model == "" || !llava.IsLLaVA(o.Model) || gpt.IsAdapter(o.Model):
		return nil, errors.New("vlm: LoRA in stage instruct starts from a LLaVA model folder (--model: stage align's --out), the adapter's base")
	}
	var err error
	if t.model, err = llava.Load(o.Backend, o.Model); err != nil {
		return nil, err
	}
	if t.tok, err = llava.LoadTokenizer(o.Model, &t.model.Config); err != nil {
		return nil, err
	}
	if _, err := t.model.LM.AttachLoRA(*o.LoRA, cfg.Seed+7); err != nil {
		return nil, fmt.Errorf("vlm: %w", err)
	}
	base, err := filepath.Abs(o.Model)
	if err != nil {
		return nil, err
	}
	return &vlmLoRA{c: *o.LoRA, base: relBase(cfg.Out, base)}, nil
}

// saveMerged merges the adapters into the language model and writes the
// LLaVA folder, with the tokenizer, to dir.
func (t *vlmTask) saveMerged(dir string, log io.Writer) error {
	t.model.LM.MergeLoRA()
	if err := t.model.Save(dir); err != nil {
		return err
	}
	if err := llava.SaveTokenizer(t.tok, dir, &t.model.Config); err != nil {
		return err
	}
	fmt.Fprintf(log, "merged model written to %s\n", dir)
	return nil
}
