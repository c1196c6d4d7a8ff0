package serve

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/gguf/export"
	"github.com/golem-ml/golem/internal/shared"
)

// golem serve --model FILE.gguf: the engine serves the file with its
// Q8_0 matrices kept quantized, answers OpenAI and Ollama requests, and
// Ollama's tags say gguf, Q8_0 and the file's size.
func TestServeGGUF(t *testing.T) {
	file := filepath.Join(t.TempDir(), "qwen2-q8.gguf")
	if _, err := export.Folder(shared.Path(t, "fixtures/hf/qwen2-tiny"), file, export.Options{Type: gguf.Q8_0}); err != nil {
		t.Fatal(err)
	}
	w, err := LoadWeights(cpu.New(), file)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Model.Quantized()) == 0 {
		t.Fatal("no matrix kept quantized")
	}
	e := NewEngine("tiny-q8", file, w, EngineOptions{})
	t.Cleanup(e.Close)
	ts := serveEngines(t, "sqlite:"+filepath.Join(t.TempDir(), "o.db"), Options{}, e)
	status, body := do(t, nil, "POST", ts.URL+"/v1/completions", []byte(`{"model":"tiny-q8","prompt":"Hello, my dog","max_tokens":6,"temperature":0}`), nil)
	var res struct{ Choices []struct{ Text string } }
	if status != 200 || json.Unmarshal(body, &res) != nil || len(res.Choices) != 1 || res.Choices[0].Text == "" {
		t.Fatalf("completions: %d %s", status, body)
	}
	status, body = do(t, nil, "GET", ts.URL+"/api/tags", nil, nil)
	fi, _ := os.Stat(file)
	var tags struct {
		Models []struct {
			Size    int64
			Details struct {
				Format            string
				QuantizationLevel string `json:"quantization_level"`
			}
		}
	}
	if status != 200 || json.Unmarshal(body, &tags) != nil || len(tags.Models) != 1 {
		t.Fatalf("tags: %d %s", status, body)
	}
	if m := tags.Models[0]; m.Size != fi.Size() || m.Details.Format != "gguf" || m.Details.QuantizationLevel != "Q8_0" {
		t.Errorf("tags: %+v, want size %d, gguf, Q8_0", m, fi.Size())
	}
	if _, err := LoadWeights(cpu.New(), strings.TrimSuffix(file, ".gguf")+"-missing.gguf"); err == nil || !strings.Contains(err.Error(), "missing.gguf") {
		t.Errorf("a missing file: %v", err)
	}
}
