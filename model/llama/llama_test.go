package llama

import (
	"math"
	"strings"
	"testing"
)

// TestInvFreqLlama3 checks Llama 3.1's scaled inverse frequencies against
// the formula of transformers' _compute_llama3_parameters worked in
// float64 (theta 500000, head size 128, factor 8, low 1, high 4, original
// context 8192): the high frequencies kept (i < 29), the low ones divided
// by 8 (i > 34), the ones between blended.
func TestInvFreqLlama3(t *testing.T) {
	s := &RopeScaling{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 8192}
	got := InvFreq(500000, 128, s)
	plain := InvFreq(500000, 128, nil)
	if len(got) != 64 {
		t.Fatalf("%d frequencies, want 64", len(got))
	}
	for _, c := range []struct {
		i    int
		want float64
	}{
		{0, 1},
		{20, 0.016560440080994446},
		{29, 0.002166570763503359}, // blended, a = 0.8036
		{31, 0.0008567514129196321},
		{32, 0.0005248461609929547},
		{34, 0.00017850781276799638}, // blended, a = 0.0745
		{35, 9.556212353964683e-05},  // divided by 8
		{40, 3.428102195952591e-05},
		{63, 3.068925988914511e-07},
	} {
		if e := math.Abs(float64(got[c.i])-c.want) / c.want; e > 2e-6 {
			t.Errorf("inv_freq[%d] = %v, want %v (relative error %.2g)", c.i, got[c.i], c.want, e)
		}
	}
	for i := range 29 {
		if got[i] != plain[i] {
			t.Errorf("high frequency %d changed: %v, unscaled %v", i, got[i], plain[i])
		}
	}
	for i := 35; i < 64; i++ {
		if got[i] != plain[i]/8 {
			t.Errorf("low frequency %d: %v, want unscaled/8 = %v", i, got[i], plain[i]/8)
		}
	}
}

func TestRopeScalingValidate(t *testing.T) {
	good := RopeScaling{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 8192}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		edit func(*RopeScaling)
		want string
	}{
		{func(s *RopeScaling) { s.Factor = 0 }, "rope_scaling.factor"},
		{func(s *RopeScaling) { s.Factor = math.NaN() }, "rope_scaling.factor"},
		{func(s *RopeScaling) { s.LowFreqFactor = -1 }, "rope_scaling.low_freq_factor"},
		{func(s *RopeScaling) { s.HighFreqFactor = 1 }, "rope_scaling.high_freq_factor"},
		{func(s *RopeScaling) { s.OriginalContext = 0 }, "rope_scaling.original_max_position_embeddings"},
	} {
		s := good
		c.edit(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %s", s, err, c.want)
		}
	}
}
