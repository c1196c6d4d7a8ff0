// Package testmodels holds the tiny random models and the logit helpers
// that several packages' tests share, so that each is written once. It is
// for tests only: no package's non-test code may import it (the layers
// test checks), and it may import any layer.
package testmodels

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/model/dalle"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/vqvae"
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
