package generate

import (
	"slices"

	"github.com/golem-ml/golem/kvcache"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tensor"
)

// Layout is a batch of prompts as Prefill laid it out in a cache: each row
// is P input embeddings (a soft prompt, image features; P may be 0), then
// Pad[b] columns of left padding, then the prompt, L columns in all after
// the embeddings. Padding is hidden from attention and skipped by the
// positions, so each row decodes as it would alone.
type Layout struct {
	P, L int
	Pad  []int
}

// Mask returns the key mask of a pass whose keys are the cache's first S
// columns: false at each row's padding. It is nil when no row is padded.
func (l *Layout) Mask(S int) []bool {
	if !slices.ContainsFunc(l.Pad, func(p int) bool { return p > 0 }) {
		return nil
	}
	B := len(l.Pad)
	mask := make([]bool, B*S)
	for b, p := range l.Pad {
		for j := range S {
			mask[b*S+j] = j < l.P || j >= l.P+p
		}
	}
	return mask
}

// Prefill runs prompts (none empty) through m into the empty cache c as
// one left-padded batch (see Layout), after the input embeddings embeds
// ([B, P, C], or nil), and returns the layout and the logits of each row's
// last position, [B*V]. Call it under tensor.NoGrad. Generation, the
// evaluations' greedy decoding and the server's prefill all go through it.
// Its tensors (and embeds, if of no scope) are freed when it returns.
func Prefill(m *gpt.Model, c kvcache.Cache, prompts [][]int, embeds *tensor.Tensor) (*Layout, []float32) {
	B := len(prompts)
	lay := &Layout{Pad: make([]int, B)}
	if embeds != nil {
		lay.P = embeds.Dim(1)
	}
	for _, p := range prompts {
		lay.L = max(lay.L, len(p))
	}
	P, L := lay.P, lay.L
	S := P + L
	ids, pos := make([]int32, B*L), make([]int32, B*S)
	for b, p := range prompts {
		pad := L - len(p)
		lay.Pad[b] = pad
		for j := range P {
			pos[b*S+j] = int32(j)
		}
		for j := pad; j < L; j++ {
			ids[b*L+j], pos[b*S+P+j] = int32(p[j-pad]), int32(P+j-pad)
		}
	}
	s := tensor.NewScope()
	defer s.Close()
	h := m.Forward(ids, B, L, gpt.Options{Cache: c, Pos: pos, KeyMask: lay.Mask(S), Embeds: embeds, Scope: s})
	return lay, m.Logits(tensor.Slice(h, 1, S-1, S)).Host()
}

// Step runs one token per row, ids[b] at position pos[b], through m and
// the cache c (a growable cache after Prefill, with the layout's mask; or
// a batch cache's rows, with none) and returns the logits [B*V], in into's
// memory when it has room. Call it under tensor.NoGrad.
func Step(m *gpt.Model, c kvcache.Cache, ids, pos []int32, mask []bool, into []float32) []float32 {
	s := tensor.NewScope()
	defer s.Close()
	h := m.Forward(ids, len(ids), 1, gpt.Options{Cache: c, Pos: pos, KeyMask: mask, Scope: s})
	return m.Logits(h).HostInto(into)
}
