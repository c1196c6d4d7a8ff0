// Package testmodels holds the tiny random models and the logit helpers
// that several packages' tests share, so that each is written once. It is
// for tests only: no package's non-test code may import it (the layers
// test checks), and it may import any layer.
package testmodels

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/model/dalle"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/vqvae"
	"github.com/golem-ml/golem/safetensors"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// VQVAE is the "tiny" preset VQ-VAE for images of size pixels, with
// random weights from seed, on be.
func VQVAE(t testing.TB, be backend.Backend, size int, seed uint64) *vqvae.Model {
	t.Helper()
	c := vqvae.Presets()["tiny"]
	c.ImageSize = size
	vq, err := vqvae.New(be, c, seed)
	if err != nil {
		t.Fatal(err)
	}
	return vq
}

// VQVAEDir saves VQVAE(size, seed) in a folder "vq" of a new temporary
// folder and returns it.
func VQVAEDir(t testing.TB, size int, seed uint64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "vq")
	if err := VQVAE(t, cpu.New(), size, seed).Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Dalle is a random text-to-image model on be: 16 text tokens of a BPE
// tokenizer trained on three shape captions, a side/4 x side/4 grid of
// 64 codes decoded by a random tiny VQ-VAE to side x side pixels, a
// 2-layer body of width 32; its weights from seed.
func Dalle(t testing.TB, be backend.Backend, side int, seed uint64) *dalle.Model {
	t.Helper()
	tok, err := tokenizer.Train(tokenizer.TrainOptions{Texts: []string{"a red circle", "a blue square", "two shapes: a red circle and a blue square"}, VocabSize: 280})
	if err != nil {
		t.Fatal(err)
	}
	pad, _ := tok.SpecialID(tokenizer.Pad)
	m, err := dalle.New(be, dalle.NewConfig(tok.VocabSize(), pad, 16, side/4, 64, 32, 2, 2), tok, VQVAE(t, be, side, 3), seed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Logits is m's logits over ids, [len(ids), vocabulary], without
// gradients.
func Logits(m *gpt.Model, ids []int) []float32 {
	var out []float32
	tensor.NoGrad(func() {
		x := make([]int32, len(ids))
		for i, id := range ids {
			x[i] = int32(id)
		}
		s := tensor.NewScope()
		defer s.Close()
		out = m.Logits(m.Forward(x, 1, len(ids), gpt.Options{Scope: s})).Host()
	})
	return out
}

// RelDiff is the largest difference between got and want relative to
// want's largest magnitude.
func RelDiff(got, want []float32) float64 {
	var d, s float64
	for i := range want {
		d = math.Max(d, math.Abs(float64(got[i]-want[i])))
		s = math.Max(s, math.Abs(float64(want[i])))
	}
	return d / s
}

// AttentionBiasLlama writes a copy of the Llama folder src (a fixture of
// transformers') into a temporary folder as a checkpoint with
// attention_bias true would be: config.json saying so, and a bias on
// every layer's q, k, v and o projections (LlamaAttention's), values
// away from 0; the o_proj biases are scaled by oScale (0: zero ones). It
// returns the folder.
func AttentionBiasLlama(t testing.TB, src string, oScale float32) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c["model_type"] != "llama" {
		t.Fatalf("%s: model_type %v, want llama", src, c["model_type"])
	}
	c["attention_bias"] = true
	b, _ = json.MarshalIndent(c, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		if err := os.Symlink(filepath.Join(src, f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	var ts []safetensors.Tensor
	for _, x := range Tensors(t, src) {
		n, shape := x.Name, x.Shape
		ts = append(ts, x)
		proj, ok := strings.CutSuffix(n, "_proj.weight")
		if !ok || !strings.Contains(n, ".self_attn.") {
			continue
		}
		bias := make([]float32, shape[0])
		for i := range bias {
			bias[i] = 0.3 * float32(math.Sin(float64(len(ts)*97+i)*0.71))
			if strings.HasSuffix(proj, ".o") {
				bias[i] *= oScale
			}
		}
		ts = append(ts, safetensors.Tensor{Name: proj + "_proj.bias", Shape: []int{shape[0]}, F32: bias})
	}
	if err := safetensors.Write(filepath.Join(dir, safetensors.ModelFile), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Tensors reads every tensor of the folder src's model.safetensors as
// float32, in the file's order.
func Tensors(t testing.TB, src string) []safetensors.Tensor {
	t.Helper()
	st, err := safetensors.OpenModel(src)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var ts []safetensors.Tensor
	for _, n := range st.Names() {
		x, shape, err := st.Float32(n)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, safetensors.Tensor{Name: n, Shape: shape, F32: x})
	}
	return ts
}
