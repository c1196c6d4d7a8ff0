package serve

import (
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
)

// With Config.BF16 (golem serve --dtype bf16) a model's matrices are kept
// as bfloat16, answers are decoded from them, and a reload keeps them so.
func TestServeBF16(t *testing.T) {
	dir := tinyDir(t, "llama")
	be := cpu.New()
	postCompletion(t, Config{Models: []string{"tiny=" + dir}, Backend: be, BF16: true}, nil)
	reloaded(t, be, dir, true, func(w *Weights, when string) {
		if n := len(w.Model.Quantized()); n == 0 || !w.BF16 {
			t.Fatalf("%s: %d matrices kept as bfloat16, BF16 %v", when, n, w.BF16)
		}
	})
	f32, err := LoadWeights(be, dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f32.Model.Quantized()); n != 0 {
		t.Fatalf("LoadWeights: %d matrices kept as bfloat16 without asking", n)
	}
}
