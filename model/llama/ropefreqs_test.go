package llama

import (
	"math"
	"strings"
	"testing"
)

// TestFreqFactors checks rope_freqs.weight's factors against
// convert_hf_to_gguf.py's LlamaModel run on torch (values printed by it):
// Llama 3.1's (theta 500000, heads of 128, factor 8, low 1, high 4,
// original context 8192) and a tiny model's.
func TestFreqFactors(t *testing.T) {
	got := FreqFactors(500000, 128, &RopeScaling{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 8192})
	for i, want := range map[int]float64{0: 1, 28: 1, 29: 1.2074838876724243, 30: 1.5534145832061768, 31: 2.026313066482544,
		32: 2.6945300102233887, 33: 3.684253215789795, 34: 5.257327079772949, 35: 8, 63: 8} {
		if math.Abs(float64(got[i])-want) > 1e-6*want {
			t.Errorf("Llama 3.1: factor %d is %v, convert_hf_to_gguf.py's %v", i, got[i], want)
		}
	}
	got = FreqFactors(10000, 16, &RopeScaling{Factor: 8, LowFreqFactor: 0.5, HighFreqFactor: 4, OriginalContext: 32})
	for i, want := range []float64{1, 2.483647346496582, 7.8539814949035645, 8, 8, 8, 8, 8} {
		if math.Abs(float64(got[i])-want) > 1e-6*want {
			t.Errorf("tiny: factor %d is %v, convert_hf_to_gguf.py's %v", i, got[i], want)
		}
	}
}

// TestScalingFromFactors: the scaling read back from a file's factors
// gives the same factors and the same inverse frequencies, whether the
// blend covers many dims (Llama 3.1), two, one or none; factors of
// another shape are errors.
func TestScalingFromFactors(t *testing.T) {
	for _, c := range []struct {
		theta float64
		d     int
		s     RopeScaling
	}{
		{500000, 128, RopeScaling{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 8192}},
		{500000, 64, RopeScaling{Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 8192}}, // Llama 3.2 1B's
		{10000, 16, RopeScaling{Factor: 8, LowFreqFactor: 0.5, HighFreqFactor: 4, OriginalContext: 32}},
		{10000, 16, RopeScaling{Factor: 4, LowFreqFactor: 1, HighFreqFactor: 2, OriginalContext: 100}},
		{10000, 16, RopeScaling{Factor: 4, LowFreqFactor: 1, HighFreqFactor: 1.5, OriginalContext: 150}},
	} {
		f := FreqFactors(c.theta, c.d, &c.s)
		s, err := ScalingFromFactors(c.theta, c.d, f)
		if err != nil || s == nil {
			t.Fatalf("%+v: %v, %v", c.s, s, err)
		}
		if err := s.Validate(); err != nil {
			t.Errorf("%+v read back as %+v: %v", c.s, s, err)
		}
		back, want, got := FreqFactors(c.theta, c.d, s), InvFreq(c.theta, c.d, &c.s), InvFreq(c.theta, c.d, s)
		for i := range f {
			if math.Abs(float64(back[i]-f[i])) > 1e-5*float64(f[i]) || math.Abs(float64(got[i]-want[i])) > 1e-5*float64(want[i]) {
				t.Errorf("%+v read back as %+v: factor %d %v -> %v, inverse frequency %v -> %v", c.s, *s, i, f[i], back[i], want[i], got[i])
			}
		}
	}
	if s, err := ScalingFromFactors(10000, 8, []float32{1, 1, 1, 1}); s != nil || err != nil {
		t.Errorf("factors of 1: %v, %v (want no scaling)", s, err)
	}
	for _, c := range []struct {
		f    []float32
		want string
	}{
		{[]float32{1, 2, 4}, "3 factors"},
		{[]float32{1, 4, 2, 8}, "below factor 1"},
		{[]float32{4, 4, 4, 4}, "linear scaling"},
		{[]float32{1, 0, 8, 8}, "factor 1 is 0"},
		{[]float32{1, 1.1, 1.2, 7.9, 8}, "Llama 3's scaling that fits the others gives"},
	} {
		d := 2 * len(c.f)
		if c.want == "3 factors" {
			d = 8
		}
		_, err := ScalingFromFactors(10000, d, c.f)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("factors %v: %v, want an error saying %q", c.f, err, c.want)
		}
	}
}
