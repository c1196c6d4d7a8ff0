// Package gpt holds decoder-only transformer language models: GPT-2
// (learned positions, LayerNorm, GELU, Conv1D weights) and Llama/Qwen2 (RoPE,
// RMSNorm, SwiGLU, grouped-query attention; Qwen2 adds q/k/v biases). They
// are configured from, loaded from and saved to Hugging Face model folders.
package gpt

import (
	"fmt"

	"github.com/golem-ml/golem/model/config"
	"github.com/golem-ml/golem/model/weights"
)

// Config describes a model (model/config; each architecture's folder reads
// and writes its config.json fields).
type Config = config.Config

// LoadConfig reads dir/config.json (or a config.json path), bounded;
// errors name the file (weights.LoadConfig).
func LoadConfig(path string) (*Config, error) {
	c, err := weights.LoadConfig(path, ParseConfig)
	if err != nil {
		return nil, fmt.Errorf("gpt: %w", err)
	}
	return c, nil
}

// ParseConfig reads a Hugging Face config.json.
func ParseConfig(b []byte) (*Config, error) { return config.Parse(b) }
