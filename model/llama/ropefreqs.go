package llama

import (
	"fmt"
	"math"
)

// Llama 3's RoPE scaling in GGUF files: llama.cpp keeps no rope_scaling
// parameters for it but a tensor, rope_freqs.weight, of one factor per
// frequency that each inverse frequency is divided by (ggml_rope_ext's
// freq_factors). FreqFactors writes it as convert_hf_to_gguf.py does,
// ScalingFromFactors reads it back.

// FreqFactors returns the d/2 factors of rope_freqs.weight for Llama 3's
// scaling s of RoPE with base theta over heads of size d, computed as
// convert_hf_to_gguf.py's LlamaModel does (in float32, as its torch
// scalars are): 1 for wavelengths shorter than OriginalContext /
// HighFreqFactor, Factor for those longer than OriginalContext /
// LowFreqFactor, 1 / ((1 - a) / Factor + a) between, a the blend of
// InvFreq. (The script reads original_max_position_embeddings from the top
// level of config.json, 8192 when absent, where transformers reads
// rope_scaling's; golem writes rope_scaling's, the model transformers
// computes. The two agree for Llama 3.1 and 3.2, whose are both 8192.)
func FreqFactors(theta float64, d int, s *RopeScaling) []float32 {
	base := InvFreq(theta, d, nil)
	out := make([]float32, len(base))
	old := float32(s.OriginalContext)
	low, high := float32(s.LowFreqFactor), float32(s.HighFreqFactor)
	lowWavelen, highWavelen := old/low, old/high
	factor := float32(s.Factor)
	for i, f := range base {
		wavelen := float32(2*math.Pi) / f
		switch {
		case wavelen < highWavelen:
			out[i] = 1
		case wavelen > lowWavelen:
			out[i] = factor
		default:
			a := (old/wavelen - low) / (high - low)
			out[i] = 1 / ((1-a)/factor + a)
		}
	}
	return out
}

// ScalingFromFactors returns a Llama 3 scaling whose factors (FreqFactors)
// are the given ones, within float32 rounding: the same RoPE, so the same
// model. The factors fix Factor (the longest wavelengths') and where the
// blend begins and ends (OriginalContext / HighFreqFactor and
// OriginalContext / LowFreqFactor) to within the wavelengths between which
// they change, so the scaling returned is one of those that give them;
// OriginalContext is the blend's end rounded. nil means every factor is 1:
// no scaling. Factors of another shape (not rising from 1 to Factor along
// the wavelengths, or a blend not of Llama 3's form) are an error.
func ScalingFromFactors(theta float64, d int, factors []float32) (*RopeScaling, error) {
	base := InvFreq(theta, d, nil)
	if len(factors) != len(base) {
		return nil, fmt.Errorf("%d factors for heads of %d (want %d)", len(factors), d, len(base))
	}
	const tol = 1e-5
	F := float64(factors[len(factors)-1])
	for i, f := range factors {
		if !(f > 0) || math.IsInf(float64(f), 0) {
			return nil, fmt.Errorf("factor %d is %v, want a positive number", i, f)
		}
		if i > 0 && float64(f) < float64(factors[i-1])*(1-tol) {
			return nil, fmt.Errorf("factor %d (%v) is below factor %d (%v): Llama 3's factors rise with the wavelength", i, f, i-1, factors[i-1])
		}
	}
	if math.Abs(F-1) < tol {
		for i, f := range factors {
			if math.Abs(float64(f)-1) >= tol {
				return nil, fmt.Errorf("factor %d is %v but the last is 1", i, f)
			}
		}
		return nil, nil
	}
	if float64(factors[0]) > 1+tol && len(factors) > 1 && math.Abs(float64(factors[0])-F) < tol*F {
		return nil, fmt.Errorf("every factor is %v: a linear scaling, not Llama 3's", F)
	}
	w := make([]float64, len(base))
	for i, f := range base {
		w[i] = float64(float32(2*math.Pi) / f)
	}
	// The dims kept (factor 1), blended, and divided by F.
	lastOne, firstFull := -1, len(factors)
	var mid []int
	for i, f := range factors {
		switch x := float64(f); {
		case math.Abs(x-1) < tol:
			lastOne = i
		case math.Abs(x-F) < tol*F:
			firstFull = min(firstFull, i)
		default:
			mid = append(mid, i)
		}
	}
	// The blend a at wavelength x is (L/x - 1) / (L/H - 1), H and L where
	// it begins and ends; a dim's a follows from its factor.
	blend := func(i int) float64 { return (1/float64(factors[i]) - 1/F) / (1 - 1/F) }
	lo := w[0] / 2 // the wavelengths H and L lie between
	if lastOne >= 0 {
		lo = w[lastOne]
	}
	hi := 2 * w[len(w)-1]
	if firstFull < len(w) {
		hi = w[firstFull]
	}
	var H, L float64
	switch len(mid) {
	case 0:
		H, L = lo+(hi-lo)/3, lo+2*(hi-lo)/3
	case 1:
		// L between the blended dim and the first divided one, H from the
		// blend; the nearer L is to the blended dim, the nearer H is too,
		// so move L toward it until H is above the last kept dim.
		i, a := mid[0], blend(mid[0])
		for k := 0; k < 60; k++ {
			L = math.Sqrt(w[i] * hi)
			H = L / (1 + (L/w[i]-1)/a)
			if H > lo {
				break
			}
			hi = L
		}
	default:
		// a is linear in 1/x: a = p/x + q, with p = L H / (L - H) and
		// q = -H / (L - H); a = 0 at x = L, a = 1 at x = H.
		i, j := mid[0], mid[len(mid)-1]
		p := (blend(j) - blend(i)) / (1/w[j] - 1/w[i])
		q := blend(i) - p/w[i]
		L, H = -p/q, p/(1-q)
	}
	if !(H > 0 && L > H) || math.IsInf(L, 0) {
		return nil, fmt.Errorf("the blended factors are not Llama 3's (blend from wavelength %g to %g)", H, L)
	}
	orig := max(1, int(math.Round(L)))
	s := &RopeScaling{Factor: F, OriginalContext: orig, LowFreqFactor: float64(orig) / L, HighFreqFactor: float64(orig) / H}
	for i, f := range FreqFactors(theta, d, s) {
		if math.Abs(float64(f)-float64(factors[i])) > 1e-4*float64(factors[i]) {
			return nil, fmt.Errorf("factor %d is %v, but Llama 3's scaling that fits the others gives %v", i, factors[i], f)
		}
	}
	return s, nil
}
