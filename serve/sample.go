package serve

import (
	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/generate/constrain"
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
	// Logprobs sends each token's log-probability under the model's raw
	// distribution (see generate.Logprobs) with its event, and the
	// TopLogprobs most likely tokens.
	Logprobs    bool
	TopLogprobs int
	// Guide, if set, constrains the answer to a JSON schema's values
	// (structured output, forced tool calls).
	Guide *constrain.Guide
}

// sampler draws one sequence's tokens with generate's sampler.
type sampler struct {
	s Sampling
	g *generate.Sampler
}

func newSampler(s Sampling) *sampler {
	o := generate.Options{Temperature: s.Temperature, TopP: s.TopP, TopK: s.TopK}
	g := generate.NewSampler(o, s.Seed, nil)
	if s.Guide != nil {
		g.Constrain(s.Guide.Start())
	}
	return &sampler{s: s, g: g}
}

// next picks a token; stop holds the ids hidden while generated < MinTokens.
func (s *sampler) next(logits []float32, generated int, stop []int) int {
	if generated < s.s.MinTokens {
		return s.g.Next(logits, stop)
	}
	return s.g.Next(logits, nil)
}
