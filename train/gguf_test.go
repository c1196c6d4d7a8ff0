package train

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/gguf/export"
	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/model/gpt"
)

// The RL stages and the reward model start from a policy they train: a
// GGUF model whose matrices are quantized is refused, naming it (they
// would otherwise train its norms and biases only), and a GGUF file is no
// reward or value model.
func TestQuantizedPolicyRefused(t *testing.T) {
	file := filepath.Join(t.TempDir(), "q8.gguf")
	if _, err := export.Folder(shared.Path(t, "fixtures/hf/qwen2-tiny"), file, export.Options{Type: gguf.Q8_0}); err != nil {
		t.Fatal(err)
	}
	_, _, err := loadPolicy(cpu.New(), file, "dpo: --model")
	if err == nil || !strings.Contains(err.Error(), "dpo: --model: "+file+": 15 of its weight matrices are kept as GGUF stores them") {
		t.Errorf("loadPolicy: %v", err)
	}
	if _, err := gpt.LoadScorer(cpu.New(), file); err == nil || !strings.Contains(err.Error(), "a GGUF file holds a language model, not a reward or value model") {
		t.Errorf("LoadScorer: %v", err)
	}
}
