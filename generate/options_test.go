package generate

import (
	"math"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/model/gpt"
)

func tinyModel(t *testing.T) *gpt.Model {
	t.Helper()
	m, err := gpt.New(cpu.New(), gpt.Config{Arch: "llama", Vocab: 50, Context: 32, Layers: 1, Heads: 2, KVHeads: 2, Hidden: 16,
		Intermediate: 32, Eps: 1e-5, RopeTheta: 10000, BOS: -1, EOS: -1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Sampling options out of range are refused with an error naming the
// option, before any decoding; NaN and infinite values were accepted.
func TestOptionsOutOfRange(t *testing.T) {
	m := tinyModel(t)
	nan, inf := math.NaN(), math.Inf(1)
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Temperature: nan}, "temperature NaN"},
		{Options{Temperature: inf}, "temperature +Inf"},
		{Options{Temperature: -0.5}, "temperature -0.5"},
		{Options{Temperature: 1, TopP: 1.5}, "top-p 1.5"},
		{Options{Temperature: 1, TopP: nan}, "top-p NaN"},
		{Options{Temperature: 1, TopP: -0.1}, "top-p -0.1"},
		{Options{Temperature: 1, TopK: -3}, "top-k -3"},
		{Options{RepetitionPenalty: nan}, "repetition penalty NaN"},
		{Options{RepetitionPenalty: -inf}, "repetition penalty -Inf"},
		{Options{MaxTokens: -1}, "max tokens -1"},
	} {
		_, err := Tokens(m, [][]int{{1, 2}}, c.o, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
}

// A positive temperature too small to scale by (1e-308, the smallest
// subnormal) samples the most likely token, as greedy decoding does; the
// scaled logits overflowed to Inf-Inf = NaN and the sampler returned token
// 0 (a NUL byte in byte-level vocabularies).
func TestTinyTemperatureIsGreedy(t *testing.T) {
	logits := []float32{0.5, -2, 3, 1, 2.9, float32(math.NaN())}
	for _, temp := range []float64{1e-308, 5e-324, 1e-30} {
		for _, o := range []Options{{Temperature: temp}, {Temperature: temp, TopK: 3}, {Temperature: temp, TopP: 0.9}} {
			s := NewSampler(o, 1, nil)
			for range 50 {
				if got := s.Next(logits, nil); got != 2 {
					t.Fatalf("%+v: token %d, want the most likely, 2", o, got)
				}
			}
		}
	}
	// Infinite logits are the only possible tokens; no finite one is -1.
	inf := float32(math.Inf(1))
	s := NewSampler(Options{Temperature: 0.7}, 1, nil)
	for range 50 {
		if got := s.Next([]float32{1, inf, 2, inf}, nil); got != 1 && got != 3 {
			t.Fatalf("+Inf logits at 1 and 3: token %d", got)
		}
	}
	nan := float32(math.NaN())
	for _, o := range []Options{{}, {Temperature: 0.7}} {
		if got := NewSampler(o, 1, nil).Next([]float32{nan, nan, float32(math.Inf(-1))}, nil); got != -1 {
			t.Fatalf("%+v: no finite logit: token %d, want -1", o, got)
		}
	}
}

// A model whose logits are all NaN is an error, not a stream of token 0.
func TestNaNLogitsError(t *testing.T) {
	m := tinyModel(t)
	w := m.Params()[0].Tensor // the token embedding
	v := w.Host()
	for i := range v {
		v[i] = float32(math.NaN())
	}
	w.Set(v)
	for _, temp := range []float64{0, 0.8} {
		out, err := Tokens(m, [][]int{{1, 2}}, Options{MaxTokens: 4, Temperature: temp}, nil)
		if err == nil || !strings.Contains(err.Error(), "NaN") {
			t.Errorf("temperature %g: %v, %v; want an error about NaN logits", temp, out, err)
		}
	}
}
