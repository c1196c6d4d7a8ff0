package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tokenizer"
)

// Record is one evaluation's result as the report card reads it.
type Record struct {
	Eval     string             `json:"eval"`  // "mc", "gen", "tasks", "ppl"
	Model    string             `json:"model"` // the model folder
	Data     string             `json:"data"`  // the data set
	Shots    int                `json:"shots,omitempty"`
	CoT      bool               `json:"cot,omitempty"`
	N        int                `json:"n"`
	Correct  int                `json:"correct"`
	Accuracy float64            `json:"accuracy"`
	Metrics  map[string]float64 `json:"metrics,omitempty"`
}

// AppendJSON adds records to the JSON array in path (created if missing),
// so that several evaluations can fill one report file.
func AppendJSON(path string, recs ...Record) error {
	var all []json.RawMessage
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		if err := json.Unmarshal(b, &all); err != nil {
			return fmt.Errorf("eval: %s is not a JSON array of results: %w", path, err)
		}
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("eval: %w", err)
	}
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		all = append(all, b)
	}
	b, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "" {
		os.MkdirAll(dir, 0o755)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	return os.Rename(tmp, path)
}

// LoadModel reads a model folder for evaluation or chat: a full model, or
// a PEFT adapter (LoRA is attached to its base model; prompt tuning returns
// its soft prompt). The tokenizer comes from the folder itself, else from
// the adapter's base model.
func LoadModel(be backend.Backend, dir string) (*gpt.Model, *tokenizer.Tokenizer, *nn.SoftPrompt, error) {
	var m *gpt.Model
	var sp *nn.SoftPrompt
	tokDir := dir
	if gpt.IsAdapter(dir) {
		mm, a, err := gpt.LoadAdapter(be, dir)
		if err != nil {
			return nil, nil, nil, err
		}
		m, sp = mm, a.SoftPrompt
		if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err != nil {
			tokDir = a.Base
		}
	} else {
		var err error
		if m, err = gpt.Load(be, dir); err != nil {
			return nil, nil, nil, err
		}
	}
	tok, err := tokenizer.Load(tokDir)
	if err != nil {
		return nil, nil, nil, err
	}
	if tok.VocabSize() > m.Config.Vocab {
		return nil, nil, nil, fmt.Errorf("eval: %s: tokenizer has %d tokens but the model only %d", dir, tok.VocabSize(), m.Config.Vocab)
	}
	return m, tok, sp, nil
}
