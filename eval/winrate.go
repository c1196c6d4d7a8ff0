package eval

import (
	"fmt"
	"math"

	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// renderAnswer renders a prompt and an assistant answer with the chat
// template and returns the tokens up to the <|im_end|> closing the answer
// (cut to ctx tokens) and where the answer starts.
func renderAnswer(tok *tokenizer.Tokenizer, prompt []tokenizer.Message, answer string, ctx int) ([]int, int, error) {
	p, _, err := tok.RenderChat(prompt, true)
	if err != nil {
		return nil, 0, err
	}
	msgs := append(append([]tokenizer.Message{}, prompt...), tokenizer.Message{Role: "assistant", Content: answer})
	ids, _, err := tok.RenderChat(msgs, false)
	if err != nil {
		return nil, 0, err
	}
	end, _ := tok.TurnEnd()
	for len(ids) > 0 && ids[len(ids)-1] != end {
		ids = ids[:len(ids)-1]
	}
	if len(ids) > ctx {
		ids = ids[:ctx]
	}
	return ids, min(len(p), len(ids)-1), nil
}

// Rewards scores each answer to its prompt with a reward model (read at
// the answer's closing <|im_end|>).
func Rewards(rm *gpt.Scorer, tok *tokenizer.Tokenizer, prompts [][]tokenizer.Message, answers []string) ([]float64, error) {
	if len(prompts) != len(answers) {
		return nil, fmt.Errorf("eval: %d prompts, %d answers", len(prompts), len(answers))
	}
	seqs := make([][]int, len(prompts))
	for i := range prompts {
		ids, _, err := renderAnswer(tok, prompts[i], answers[i], rm.Config.Context)
		if err != nil {
			return nil, fmt.Errorf("eval: answer %d: %w", i+1, err)
		}
		seqs[i] = ids
	}
	return rm.ScoreSequences(seqs, 16)
}

// WinRate is the share of prompts on which the reward model scores answer
// a above answer b (a tie counts half): the reward-model win rate of one
// policy against another.
func WinRate(rm *gpt.Scorer, tok *tokenizer.Tokenizer, prompts [][]tokenizer.Message, a, b []string) (float64, error) {
	ra, err := Rewards(rm, tok, prompts, a)
	if err != nil {
		return 0, err
	}
	rb, err := Rewards(rm, tok, prompts, b)
	if err != nil {
		return 0, err
	}
	if len(ra) == 0 {
		return 0, fmt.Errorf("eval: no answers to compare")
	}
	w := 0.0
	for i := range ra {
		switch {
		case a[i] == b[i]:
			// The same answer is a tie, whatever rounding the batches
			// it was scored in brought.
			w += 0.5
		case ra[i] > rb[i]:
			w++
		case ra[i] == rb[i]:
			w += 0.5
		}
	}
	return w / float64(len(ra)), nil
}

// KL estimates KL(policy || ref) per answer, in nats: the mean over
// answers sampled from the policy of the sum over their positions of the
// exact KL between the two models' next-token distributions,
// sum_v p(v) (log p(v) - log ref(v)). Its expectation is the KL between
// the answer distributions, as for the plain estimate (the sum of
// log policy - log ref of the sampled tokens, k1), but unlike k1 it is
// never negative and it varies less.
func KL(policy, ref *gpt.Model, tok *tokenizer.Tokenizer, prompts [][]tokenizer.Message, answers []string) (float64, error) {
	if len(prompts) != len(answers) || len(answers) == 0 {
		return 0, fmt.Errorf("eval: %d prompts, %d answers", len(prompts), len(answers))
	}
	if policy.Config.Vocab != ref.Config.Vocab {
		return 0, fmt.Errorf("eval: KL between vocabularies of %d and %d tokens", policy.Config.Vocab, ref.Config.Vocab)
	}
	ctx := min(policy.Config.Context, ref.Config.Context)
	V := policy.Config.Vocab
	var sum float64
	for i := range prompts {
		ids, start, err := renderAnswer(tok, prompts[i], answers[i], ctx)
		if err != nil {
			return 0, fmt.Errorf("eval: answer %d: %w", i+1, err)
		}
		T := len(ids)
		in := make([]int32, T)
		for t := range ids {
			in[t] = int32(ids[t])
		}
		var logits [2][]float32
		tensor.NoGrad(func() {
			s := tensor.NewScope()
			defer s.Close()
			for k, m := range []*gpt.Model{policy, ref} {
				logits[k] = m.Logits(m.Forward(in, 1, T, gpt.Options{Scope: s})).Host()
			}
		})
		// Position t predicts token t+1: the answer's tokens and its end.
		for t := start - 1; t < T-1; t++ {
			if t < 0 {
				continue
			}
			sum += klRow(logits[0][t*V:(t+1)*V], logits[1][t*V:(t+1)*V])
		}
	}
	return sum / float64(len(answers)), nil
}

// klRow is KL(softmax(p) || softmax(q)) for two rows of logits, in
// float64; it is never negative (rounding aside, clamped to 0).
func klRow(p, q []float32) float64 {
	lp, lq := logSumExp(p), logSumExp(q)
	kl := 0.0
	for v := range p {
		a, b := float64(p[v])-lp, float64(q[v])-lq
		kl += math.Exp(a) * (a - b)
	}
	return max(kl, 0)
}

func logSumExp(x []float32) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, float64(v))
	}
	s := 0.0
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	return m + math.Log(s)
}
