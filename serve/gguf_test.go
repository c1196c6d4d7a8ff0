package serve

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/gguf/export"
	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tokenizer"
)

// qwenQ8Once holds the qwen2-tiny fixture exported as Q8_0, made once per
// test binary (an export reads the fixture's 50,257-token tokenizer, and
// every load of the file reads its 50,257 tokens): under -short a random
// Qwen2 model of the fixture's sizes with the package's 400-token
// tokenizer instead (tinyQwen2).
var qwenQ8Once struct {
	sync.Once
	data []byte
	err  error
}

// qwenQ8 writes the qwen2-tiny fixture exported as Q8_0 to file.
func qwenQ8(t *testing.T, file string) {
	t.Helper()
	src := filepath.Join(testDir, "tiny-qwen2")
	if !testing.Short() {
		src = shared.Path(t, "fixtures/hf/qwen2-tiny")
	}
	qwenQ8Once.Do(func() {
		if testing.Short() {
			if qwenQ8Once.err = tinyQwen2(src); qwenQ8Once.err != nil {
				return
			}
		}
		tmp := filepath.Join(testDir, "qwen2-q8.gguf")
		if _, qwenQ8Once.err = export.Folder(src, tmp, export.Options{Type: gguf.Q8_0}); qwenQ8Once.err == nil {
			qwenQ8Once.data, qwenQ8Once.err = os.ReadFile(tmp)
		}
	})
	if qwenQ8Once.err != nil {
		t.Fatal(qwenQ8Once.err)
	}
	if err := os.WriteFile(file, qwenQ8Once.data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tinyQwen2 writes a random Qwen2 model of qwen2-tiny's sizes (q/k/v
// biases, a tied head) with tiny-llama's tokenizer to dir.
func tinyQwen2(dir string) error {
	tok, err := tokenizer.Load(modelDirs["llama"])
	if err != nil {
		return err
	}
	m, err := gpt.New(cpu.New(), gpt.Config{Arch: "qwen2", Vocab: tok.VocabSize(), Context: 64, Layers: 2, Heads: 4, KVHeads: 2,
		Hidden: 32, Intermediate: 64, Eps: 1e-6, RopeTheta: 1e6, Bias: true, Tied: true, BOS: -1, EOS: -1}, 5)
	if err != nil {
		return err
	}
	if err := m.Save(dir); err != nil {
		return err
	}
	return tok.Save(dir)
}

// golem serve --model FILE.gguf: the engine serves the file with its
// Q8_0 matrices kept quantized, answers OpenAI and Ollama requests, and
// Ollama's tags say gguf, Q8_0 and the file's size.
func TestServeGGUF(t *testing.T) {
	file := filepath.Join(t.TempDir(), "qwen2-q8.gguf")
	qwenQ8(t, file)
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

// golem serve --models DIR lists a folder holding model.gguf (golem
// quantize's) beside the config.json ones, and describes it from the
// file's metadata before loading it: family, parameters, gguf and Q8_0.
// A request then loads it on first use.
func TestServeGGUFFolderListed(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "tiny-q8"), 0o755)
	file := filepath.Join(dir, "tiny-q8", gguf.FolderFile)
	qwenQ8(t, file)
	old := time.Now().Add(-time.Minute)
	os.Chtimes(file, old, old)
	specs, err := ModelDirs(dir)
	if err != nil || len(specs) != 1 || specs[0].Name != "tiny-q8" {
		t.Fatalf("ModelDirs: %+v %v", specs, err)
	}
	ts, loads := newLazyServer(t, Options{}, specs...)
	status, body := do(t, nil, "GET", ts.URL+"/api/tags", nil, nil)
	var tags struct {
		Models []struct {
			Name    string
			Details struct {
				Format, Family    string
				ParameterSize     string `json:"parameter_size"`
				QuantizationLevel string `json:"quantization_level"`
			}
		}
	}
	if status != 200 || json.Unmarshal(body, &tags) != nil || len(tags.Models) != 1 {
		t.Fatalf("tags: %d %s", status, body)
	}
	d := tags.Models[0].Details
	if d.Format != "gguf" || d.Family != "qwen2" || d.QuantizationLevel != "Q8_0" || d.ParameterSize == "0" || loads.Load() != 0 {
		t.Errorf("tags before loading: %+v (%d loads)", tags.Models[0], loads.Load())
	}
	listed := d.ParameterSize
	status, body = do(t, nil, "POST", ts.URL+"/v1/completions", []byte(`{"model":"tiny-q8","prompt":"Hello","max_tokens":3,"temperature":0}`), nil)
	if status != 200 || loads.Load() != 1 {
		t.Fatalf("completions: %d %s (%d loads)", status, body, loads.Load())
	}
	_, body = do(t, nil, "GET", ts.URL+"/api/tags", nil, nil)
	if json.Unmarshal(body, &tags) != nil || len(tags.Models) != 1 || tags.Models[0].Details != d || tags.Models[0].Details.ParameterSize != listed {
		t.Errorf("tags after loading: %s, before %+v", body, d)
	}
}
