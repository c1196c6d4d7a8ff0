package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Record is one evaluation's result as the report card reads it.
type Record struct {
	Eval     string             `json:"eval"`           // "mc", "gen", "tasks", "ppl"
	Model    string             `json:"model"`          // the model folder
	Data     string             `json:"data"`           // the data set
	Task     string             `json:"task,omitempty"` // the lm-eval task and version followed (eval mc)
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
