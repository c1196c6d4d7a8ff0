package generate

import (
	"math"
	"testing"
)

// Logprobs is log softmax of the raw logits at the token, and the k best
// in order (ties by id); NaN and -Inf logits are impossible tokens.
func TestLogprobs(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(-1))
	logits := []float32{1, 3, nan, 3, inf, -2}
	z := math.Exp(1) + 2*math.Exp(3) + math.Exp(-2)
	lp, top := Logprobs(logits, 0, 4)
	if want := 1 - math.Log(z); math.Abs(lp-want) > 1e-12 {
		t.Errorf("logprob %v, want %v", lp, want)
	}
	wantIDs := []int{1, 3, 0, 5}
	if len(top) != 4 {
		t.Fatalf("top %v", top)
	}
	for i, tp := range top {
		if tp.ID != wantIDs[i] || math.Abs(tp.Logprob-(float64(logits[tp.ID])-math.Log(z))) > 1e-12 {
			t.Errorf("top[%d] = %+v, want id %d", i, tp, wantIDs[i])
		}
	}
	if lp, _ := Logprobs(logits, 2, 0); !math.IsInf(lp, -1) {
		t.Errorf("a NaN logit's logprob %v, want -Inf", lp)
	}
	if lp, top := Logprobs(logits, 4, 20); !math.IsInf(lp, -1) || len(top) != len(logits) {
		t.Errorf("-Inf logit: %v, %d alternatives (k past the vocabulary: all)", lp, len(top))
	}
}
