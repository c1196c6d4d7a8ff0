// Package gpt holds decoder-only transformer language models: GPT-2
// (learned positions, LayerNorm, GELU, Conv1D weights) and Llama/Qwen2 (RoPE,
// RMSNorm, SwiGLU, grouped-query attention; Qwen2 adds q/k/v biases). They
// are configured from, loaded from and saved to Hugging Face model folders.
package gpt

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/golem-ml/golem/internal/regfile"
	"github.com/golem-ml/golem/model/config"
)

// Config describes a model (model/config; each architecture's folder reads
// and writes its config.json fields).
type Config = config.Config

// maxConfigBytes bounds config.json.
const maxConfigBytes = 16 << 20

// LoadConfig reads dir/config.json (or a config.json path).
func LoadConfig(path string) (*Config, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "config.json")
	}
	b, err := regfile.ReadFile(path, maxConfigBytes)
	if err != nil {
		return nil, fmt.Errorf("gpt: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("gpt: %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig reads a Hugging Face config.json.
func ParseConfig(b []byte) (*Config, error) { return config.Parse(b) }
