package gpt

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/safetensors"
	"github.com/golem-ml/golem/tensor"
)

// saveBF16 saves m as a model folder whose checkpoint holds its values
// rounded to bfloat16 (a BF16 safetensors file, as Qwen2.5 and Llama 3.2
// ship), or, with dtype F32, as they are.
func saveBF16(t *testing.T, m *Model, dtype string) string {
	t.Helper()
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, p := range m.hfParams() {
		ts = append(ts, safetensors.Tensor{Name: p.Name, DType: dtype, Shape: p.Tensor.Shape(), F32: p.Tensor.Host()})
	}
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// bf16Logits is a forward pass's values without gradients.
func bf16Logits(m *Model, ids []int32) []float32 {
	var out []float32
	tensor.NoGrad(func() {
		s := tensor.NewScope()
		defer s.Close()
		out = m.Logits(m.Forward(ids, 1, len(ids), Options{Scope: s})).Host()
	})
	return out
}

// LoadBF16 reads a BF16 (or float32) checkpoint's matrices straight into
// bfloat16 buffers: the backend never holds a float32 copy of one (its
// peak live bytes while loading are the float32 embeddings, norms and
// biases the model keeps, where Load then KeepBF16 peaks at the whole
// float32 model), and the model is Load's then KeepBF16's, bit for bit:
// the same matrices kept, the same logits (GPT-2's Conv1D weights
// transposed as bytes, an untied head, a tied one).
func TestLoadBF16(t *testing.T) {
	for _, arch := range []string{"gpt2", "llama"} {
		for _, dtype := range []string{safetensors.BF16, safetensors.F32} {
			c := tinyConfig(arch)
			c.Hidden, c.Intermediate, c.Vocab = 32, 64, 48
			src, err := New(cpu.New(), c, 5)
			if err != nil {
				t.Fatal(err)
			}
			dir := saveBF16(t, src, dtype)
			old := cpu.New()
			ref, err := Load(old, dir)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ref.KeepBF16(); err != nil {
				t.Fatal(err)
			}
			be := cpu.New()
			m, err := LoadBF16(be, dir)
			if err != nil {
				t.Fatal(err)
			}
			what := arch + " " + dtype
			st := be.MemStats()
			if st.Peak != st.Live {
				t.Errorf("%s: loading peaked at %d float32 bytes on the backend, holds %d after: a float32 matrix was allocated", what, st.Peak, st.Live)
			}
			if o := old.MemStats(); o.Peak <= st.Peak {
				t.Errorf("%s: Load then KeepBF16 peaked at %d bytes, LoadBF16 at %d: the check cannot tell them apart", what, o.Peak, st.Peak)
			}
			if got, want := m.Quantized(), ref.Quantized(); len(got) == 0 || !slices.Equal(got, want) {
				t.Errorf("%s: bfloat16 matrices %v, KeepBF16 keeps %v", what, got, want)
			}
			ids := []int32{1, 7, 3, 30, 2, 11}
			for _, n := range []int{len(ids), 1} { // a prefill (the bf16 GEMM) and one token
				if got, want := bf16Logits(m, ids[:n]), bf16Logits(ref, ids[:n]); !slices.Equal(got, want) {
					t.Errorf("%s, %d tokens: logits differ from Load then KeepBF16's", what, n)
				}
			}
		}
	}
}

// A BF16 matrix holding NaN is refused, naming the folder, the tensor and
// the value.
func TestLoadBF16NaN(t *testing.T) {
	src, err := New(cpu.New(), tinyConfig("llama"), 5)
	if err != nil {
		t.Fatal(err)
	}
	const bad = "model.layers.0.mlp.down_proj.weight"
	for _, p := range src.Params() {
		if p.Name == bad {
			v := p.Tensor.Host()
			v[3] = float32(math.NaN())
			p.Tensor.Set(v)
		}
	}
	dir := saveBF16(t, src, safetensors.BF16)
	_, err = LoadBF16(cpu.New(), dir)
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "NaN") {
		t.Fatalf("LoadBF16 of a NaN weight: %v; want an error naming %s, %s and the NaN", err, dir, bad)
	}
}
