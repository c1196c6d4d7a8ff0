// Package eval measures models: perplexity, multiple-choice and
// exact-match tasks, reward win rates, and the report card.
package eval

import (
	"fmt"
	"math"

	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// PPL is the result of Perplexity.
type PPL struct {
	Loss      float64 // mean next-token cross-entropy (nats)
	PPL       float64 // exp(Loss)
	Tokens    int     // predictions scored
	Sequences int
}

// Perplexity scores ids in consecutive windows of the model's context (a
// text shorter than the context is one sequence); every token after the
// first of a window is predicted once. A soft prompt (prompt tuning), if
// not nil, goes before every window, which is that much shorter.
func Perplexity(m *gpt.Model, sp *nn.SoftPrompt, ids []int, batch int) (PPL, error) {
	if len(ids) < 2 {
		return PPL{}, fmt.Errorf("eval: need at least 2 tokens, have %d", len(ids))
	}
	if batch <= 0 {
		batch = 8
	}
	T := m.Config.Context
	if sp != nil {
		if T -= sp.Weight.Dim(0); T < 1 {
			return PPL{}, fmt.Errorf("eval: the soft prompt's %d virtual tokens fill the model's context of %d", sp.Weight.Dim(0), m.Config.Context)
		}
	}
	var windows [][]int
	for s := 0; s+1 < len(ids); s += T {
		windows = append(windows, ids[s:min(s+T+1, len(ids))])
	}
	var sum float64
	n := 0
	tensor.NoGrad(func() {
		for w := 0; w < len(windows); w += batch {
			group := windows[w:min(w+batch, len(windows))]
			L := 0
			for _, g := range group {
				L = max(L, len(g)-1)
			}
			B := len(group)
			in, tgt := make([]int32, B*L), make([]int32, B*L)
			count := 0
			for b, g := range group {
				for i := 0; i < L; i++ {
					tgt[b*L+i] = tensor.IgnoreIndex
					if i+1 < len(g) {
						in[b*L+i], tgt[b*L+i] = int32(g[i]), int32(g[i+1])
						count++
					}
				}
			}
			s := tensor.NewScope()
			o := gpt.Options{Scope: s}
			if sp != nil {
				o.Embeds = sp.Batch(B)
			}
			sum += float64(m.Loss(in, tgt, B, L, o).Item()) * float64(count)
			n += count
			s.Close()
		}
	})
	mean := sum / float64(n)
	return PPL{Loss: mean, PPL: math.Exp(mean), Tokens: n, Sequences: len(windows)}, nil
}
