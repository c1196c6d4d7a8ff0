package eval

import (
	"errors"
	"fmt"

	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// Greedy decodes up to maxNew tokens after each prompt, all prompts as one
// batch with a KV cache, and returns the new tokens of each (a stop token
// ends a sequence and is left out). With a soft prompt (prompt tuning) its
// virtual tokens come before every prompt. Rows are laid out as
// [virtual tokens][left padding][prompt]; the padding is hidden from
// attention and positions skip it, so each row decodes as it would alone.
func Greedy(m *gpt.Model, sp *nn.SoftPrompt, prompts [][]int, maxNew int, stop []int) ([][]int, error) {
	B := len(prompts)
	if B == 0 {
		return nil, nil
	}
	P := 0
	if sp != nil {
		P = sp.Weight.Dim(0)
	}
	L := 0
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("eval: prompt %d is empty", i)
		}
		L = max(L, len(p))
	}
	maxNew = min(maxNew, m.Config.Context-P-L)
	if maxNew <= 0 {
		return nil, errors.New("eval: prompt too long for the model's context")
	}
	isStop := map[int]bool{}
	for _, s := range stop {
		isStop[s] = true
	}
	pad := make([]int, B)
	ids := make([]int32, B*L)
	pos := make([]int32, B*(P+L))
	for b, p := range prompts {
		pad[b] = L - len(p)
		for j := 0; j < P; j++ {
			pos[b*(P+L)+j] = int32(j)
		}
		for j := pad[b]; j < L; j++ {
			ids[b*L+j] = int32(p[j-pad[b]])
			pos[b*(P+L)+P+j] = int32(P + j - pad[b])
		}
	}
	next := make([]int32, B) // the next position of each row
	for b := range next {
		next[b] = int32(P + len(prompts[b]))
	}
	out := make([][]int, B)
	done := make([]bool, B)
	cache := &gpt.Cache{}
	defer cache.Free()
	tensor.NoGrad(func() {
		T := L
		var embeds *tensor.Tensor
		if sp != nil {
			embeds = sp.Batch(B)
		}
		for step := 0; step < maxNew; step++ {
			Tfull := T
			if step == 0 {
				Tfull = P + L
			}
			S := cache.Len() + Tfull
			mask := make([]bool, B*S)
			for b := 0; b < B; b++ {
				for j := 0; j < S; j++ {
					mask[b*S+j] = j < P || j >= P+pad[b]
				}
			}
			h := m.Forward(ids, B, T, gpt.Options{Cache: cache, Pos: pos, KeyMask: mask, Embeds: embeds})
			embeds = nil
			logits := m.Logits(tensor.Slice(h, 1, Tfull-1, Tfull))
			host := logits.Host()
			tensor.Release(logits)
			V := m.Config.Vocab
			ids, pos, T = ids[:B], pos[:B], 1
			alive := false
			for b := 0; b < B; b++ {
				best := 0
				row := host[b*V : (b+1)*V]
				for j, v := range row {
					if v > row[best] {
						best = j
					}
				}
				if !done[b] {
					if isStop[best] {
						done[b] = true
					} else {
						out[b] = append(out[b], best)
					}
				}
				alive = alive || !done[b]
				ids[b], pos[b] = int32(best), next[b]
				next[b]++
			}
			if !alive {
				break
			}
		}
	})
	return out, nil
}
