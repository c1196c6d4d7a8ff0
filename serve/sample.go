package serve

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Sampling controls how one sequence picks its tokens.
type Sampling struct {
	MaxTokens   int     // new tokens at most (> 0)
	Temperature float64 // 0 = greedy
	TopP        float64 // nucleus mass; 0 or 1 = all
	TopK        int     // keep the K most likely tokens; 0 = all
	Seed        uint64  // the sequence's random seed
	// MinTokens hides the stop tokens until this many tokens have been
	// generated (the annotation workspace asks for non-empty answers).
	MinTokens int
}

// sampler draws one sequence's tokens from logits.
type sampler struct {
	s     Sampling
	rng   *rand.Rand
	probs []float64
	idx   []int
}

func newSampler(s Sampling) *sampler {
	return &sampler{s: s, rng: rand.New(rand.NewPCG(s.Seed, 0x601e3))}
}

// next picks a token; stop holds the ids hidden while generated < MinTokens.
func (s *sampler) next(logits []float32, generated int, stop []int) int {
	V := len(logits)
	if cap(s.probs) < V {
		s.probs, s.idx = make([]float64, V), make([]int, V)
	}
	p := s.probs[:V]
	for i, v := range logits {
		p[i] = float64(v)
		if math.IsNaN(p[i]) {
			p[i] = math.Inf(-1)
		}
	}
	if generated < s.s.MinTokens {
		for _, id := range stop {
			if id >= 0 && id < V {
				p[id] = math.Inf(-1)
			}
		}
	}
	if s.s.Temperature <= 0 {
		best := 0
		for i, v := range p {
			if v > p[best] {
				best = i
			}
		}
		return best
	}
	idx := s.idx[:V]
	for i := range idx {
		idx[i] = i
		p[i] /= s.s.Temperature
	}
	topP := s.s.TopP > 0 && s.s.TopP < 1
	if k := s.s.TopK; (k > 0 && k < V) || topP {
		sort.Slice(idx, func(a, b int) bool { return p[idx[a]] > p[idx[b]] })
		if k > 0 && k < V {
			idx = idx[:k]
		}
	}
	mx := math.Inf(-1)
	for _, i := range idx {
		mx = math.Max(mx, p[i])
	}
	var z float64
	for _, i := range idx {
		p[i] = math.Exp(p[i] - mx)
		z += p[i]
	}
	if topP {
		var c float64
		for n, i := range idx {
			c += p[i] / z
			if c >= s.s.TopP {
				idx = idx[:n+1]
				break
			}
		}
		z = 0
		for _, i := range idx {
			z += p[i]
		}
	}
	u := s.rng.Float64() * z
	for _, i := range idx {
		u -= p[i]
		if u <= 0 {
			return i
		}
	}
	return idx[len(idx)-1]
}
