package generate

import (
	"math"

	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tensor"
)

// TokenProb is a token and its log-probability.
type TokenProb struct {
	ID      int
	Logprob float64
}

// Logprobs returns the log-probability of token id under the model's own
// distribution, log softmax(logits)[id] (the raw logits: no temperature,
// top-k or top-p, as OpenAI's logprobs report), and the k most likely
// tokens, most likely first (ties by id). NaN logits count as impossible
// (-Inf).
func Logprobs(logits []float32, id, k int) (float64, []TokenProb) {
	mx := math.Inf(-1)
	for _, v := range logits {
		if f := float64(v); f > mx {
			mx = f
		}
	}
	lse := mx
	if !math.IsInf(mx, 0) {
		var z float64
		for _, v := range logits {
			if f := float64(v); f > math.Inf(-1) { // not -Inf, not NaN
				z += math.Exp(f - mx)
			}
		}
		lse = mx + math.Log(z)
	}
	lp := func(i int) float64 {
		v := float64(logits[i])
		if math.IsNaN(v) {
			return math.Inf(-1)
		}
		return v - lse
	}
	var chosen float64
	if id >= 0 && id < len(logits) {
		chosen = lp(id)
	}
	k = min(k, len(logits))
	if k <= 0 {
		return chosen, nil
	}
	// The k best by insertion into a short sorted list: k is at most 20.
	top := make([]TokenProb, 0, k)
	for i := range logits {
		v := lp(i)
		if len(top) == k && !(v > top[k-1].Logprob) {
			continue
		}
		if len(top) < k {
			top = append(top, TokenProb{})
		}
		j := len(top) - 1
		for j > 0 && v > top[j-1].Logprob {
			top[j] = top[j-1]
			j--
		}
		top[j] = TokenProb{i, v}
	}
	return chosen, top
}

// PromptLogprobs scores ids (at least one token, within the context) with
// one forward pass of m: entry i is ids[i]'s log-probability given the
// tokens before it, with the k most likely tokens at that position; entry
// 0, which nothing predicts, is the zero TokenProb with no alternatives.
// It is what an evaluation harness reads to score a text (OpenAI's echo).
// Call it under tensor.NoGrad.
func PromptLogprobs(m *gpt.Model, ids []int, k int) ([]float64, [][]TokenProb) {
	T := len(ids)
	in := make([]int32, T)
	for i, id := range ids {
		in[i] = int32(id)
	}
	lps, tops := make([]float64, T), make([][]TokenProb, T)
	s := tensor.NewScope()
	defer s.Close()
	h := m.Forward(in, 1, T, gpt.Options{Scope: s}).Detach() // a view of no scope: each block's logits join blk
	// The logits of a block of positions at a time: a long prompt of a
	// large vocabulary is not held whole.
	const block = 64
	var host []float32
	V := m.Config.Vocab
	for lo := 0; lo < T-1; lo += block {
		hi := min(lo+block, T-1)
		blk := s.Child() // each block's logits go back to the pool before the next
		logits := m.Logits(tensor.Slice(h, 1, lo, hi))
		host = blk.Adopt(logits).HostInto(host)
		blk.Close()
		for i := lo; i < hi; i++ {
			row := host[(i-lo)*V : (i-lo+1)*V]
			lps[i+1], tops[i+1] = Logprobs(row, ids[i+1], k)
		}
	}
	return lps, tops
}
