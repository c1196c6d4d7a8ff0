package train

import (
	"context"
	"io"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/model/gpt"
)

// checkTracks checks that a bf16 run's losses (b) stay within 2% of the
// float32 run's (f) at every step, yet differ from them (the products
// really ran in bfloat16), and went down.
func checkTracks(t *testing.T, f, b map[int]float64, steps int) {
	t.Helper()
	differ := 0
	for s := 1; s <= steps; s++ {
		if math.IsNaN(b[s]) || math.Abs(b[s]-f[s]) > 0.02*f[s] {
			t.Errorf("step %d: loss %v in bf16, %v in float32", s, b[s], f[s])
		}
		if b[s] != f[s] {
			differ++
		}
	}
	if differ == 0 {
		t.Error("bf16 losses equal float32's at every step: the products were not rounded")
	}
	if b[steps] >= b[1] {
		t.Errorf("bf16 loss did not go down: %v -> %v", b[1], b[steps])
	}
	t.Logf("float32 %.4f -> %.4f, bf16 %.4f -> %.4f", f[1], f[steps], b[1], b[steps])
}

// checkMasters checks that a model trained in bf16 keeps float32 weights:
// most values are not bfloat16 numbers (their low 16 bits are not zero).
func checkMasters(t *testing.T, dir string) {
	t.Helper()
	m, err := gpt.Load(cpu.New(), dir)
	if err != nil {
		t.Fatal(err)
	}
	n, low := 0, 0
	for _, p := range m.Params() {
		for _, v := range p.Tensor.Host() {
			n++
			if math.Float32bits(v)&0xffff != 0 {
				low++
			}
		}
	}
	if low < n/2 {
		t.Errorf("only %d of %d weights have float32 precision after bf16 training", low, n)
	}
}

// Pretraining with DType bf16 tracks the float32 run closely over its
// steps, with float32 master weights.
func TestPretrainBF16TracksFloat32(t *testing.T) {
	cache := t.TempDir()
	run := func(dtype string) string {
		p := tinyPreset()
		p.Model.Dropout = 0
		p.Loop.Out, p.Loop.DType, p.Loop.Quiet = filepath.Join(t.TempDir(), "m"), dtype, true
		if _, err := Pretrain(context.Background(), PretrainOptions{Backend: cpu.New(), Tokenizer: "char", Preset: p, CacheDir: cache, Log: io.Discard,
			Builtin: func(w io.Writer) error { return synth.WriteCorpus(w, builtinCorpus(0)) }}); err != nil {
			t.Fatal(err)
		}
		return p.Loop.Out
	}
	f, b := run("float32"), run("bf16")
	checkTracks(t, losses(t, f), losses(t, b), tinyPreset().Loop.Steps)
	checkMasters(t, b)
}

// Full fine-tuning with DType bf16 tracks the float32 run too.
func TestSFTBF16TracksFloat32(t *testing.T) {
	base := tinyBase(t, "llama")
	run := func(dtype string) string {
		out := t.TempDir()
		o := SFTOptions{Model: base, Examples: builtinSFT(t, 5, 40), Batch: 4, Packing: true,
			Loop: Config{Steps: 6, LR: 1e-2, Warmup: 1, Out: out, Seed: 5, Quiet: true, DType: dtype}}
		o.Backend, o.Log = cpu.New(), io.Discard
		if _, err := SFT(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		return out
	}
	f, b := run(""), run("bf16")
	checkTracks(t, losses(t, f), losses(t, b), 6)
	checkMasters(t, b)
}

// An unknown dtype is refused, naming it.
func TestDTypeRefused(t *testing.T) {
	o := SFTOptions{Model: tinyBase(t, "llama"), Examples: builtinSFT(t, 5, 8), Batch: 4,
		Loop: Config{Steps: 1, LR: 1e-2, Out: t.TempDir(), Quiet: true, DType: "fp8"}}
	o.Backend, o.Log = cpu.New(), io.Discard
	_, err := SFT(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), `dtype "fp8"`) {
		t.Fatalf("SFT with dtype fp8: %v, want an error naming it", err)
	}
}
