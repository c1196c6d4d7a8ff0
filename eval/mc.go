package eval

import (
	"errors"
	"fmt"
	"strings"

	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// MCOptions configure MultipleChoice.
type MCOptions struct {
	// Shots are solved questions put before each question (k-shot), each
	// as its context and right choice followed by a blank line.
	Shots []Question
	// Tokens bounds the tokens of one forward pass (default 4096).
	Tokens int
}

// MCResult is the accuracy of a multiple-choice evaluation.
type MCResult struct {
	N       int     `json:"n"`
	Correct int     `json:"correct"`       // by the summed log-likelihood of the choice
	Acc     float64 `json:"accuracy"`      // Correct / N
	AccNorm float64 `json:"accuracy_norm"` // by log-likelihood per byte of the choice
	Chance  float64 `json:"chance"`        // the mean of 1/choices: what guessing scores
}

// String formats the result as "accuracy=0.262 (131/500) acc_norm=0.250 chance=0.250".
func (r MCResult) String() string {
	return fmt.Sprintf("accuracy=%.3f (%d/%d) acc_norm=%.3f chance=%.3f", r.Acc, r.Correct, r.N, r.AccNorm, r.Chance)
}

// ShotPrefix renders solved questions as a k-shot prefix.
func ShotPrefix(shots []Question) string {
	var sb strings.Builder
	for _, s := range shots {
		sb.WriteString(s.Context + s.Choices[s.Answer] + "\n\n")
	}
	return sb.String()
}

// mcRow is one (question, choice) sequence: ids, and the positions whose
// next token belongs to the choice. When every choice of a question is one
// token (CMMLU's letters), one row holds the context alone and single lists
// the choices' tokens, all scored at its last position.
type mcRow struct {
	q, c   int
	ids    []int
	start  int // first index of the choice's tokens in ids
	single []int
}

// MultipleChoice scores every choice of every question by the
// log-likelihood the model gives its tokens after the context (truncated
// from the left to fit the context window), and counts the questions whose
// most likely choice is the right one.
func MultipleChoice(m *gpt.Model, tok *tokenizer.Tokenizer, qs []Question, o MCOptions) (MCResult, error) {
	if len(qs) == 0 {
		return MCResult{}, errors.New("eval: no questions")
	}
	if o.Tokens <= 0 {
		o.Tokens = 4096
	}
	prefix := ShotPrefix(o.Shots)
	ctxLen := m.Config.Context
	var rows []mcRow
	for qi, q := range qs {
		if len(q.Choices) == 0 || q.Answer < 0 || q.Answer >= len(q.Choices) {
			return MCResult{}, fmt.Errorf("eval: %s: answer %d of %d choices", q.ID, q.Answer, len(q.Choices))
		}
		ctx := tok.Encode(prefix + q.Context)
		var single []int
		for _, c := range q.Choices {
			if t := tok.Encode(c); len(t) == 1 {
				single = append(single, t[0])
			}
		}
		if len(single) == len(q.Choices) && len(ctx) > 0 {
			ids := ctx[max(0, len(ctx)-ctxLen):]
			rows = append(rows, mcRow{q: qi, ids: append(ids, single[0]), start: len(ids), single: single})
			continue
		}
		for ci, c := range q.Choices {
			cont := tok.Encode(c)
			if len(cont) == 0 {
				return MCResult{}, fmt.Errorf("eval: %s: choice %d is empty", q.ID, ci)
			}
			if len(cont) >= ctxLen {
				cont = cont[:ctxLen-1]
			}
			keep := min(len(ctx), ctxLen+1-len(cont))
			ids := append(append([]int(nil), ctx[len(ctx)-keep:]...), cont...)
			if len(ids) > ctxLen+1 {
				ids = ids[len(ids)-ctxLen-1:]
			}
			rows = append(rows, mcRow{q: qi, c: ci, ids: ids, start: len(ids) - len(cont)})
		}
	}
	scores := make([][]float64, len(qs))
	for i, q := range qs {
		scores[i] = make([]float64, len(q.Choices))
	}
	// Batches of rows in order, up to o.Tokens padded tokens each.
	for s := 0; s < len(rows); {
		e, T := s, 0
		for e < len(rows) {
			t := max(T, len(rows[e].ids)-1)
			if e > s && t*(e-s+1) > o.Tokens {
				break
			}
			T = t
			e++
		}
		if err := scoreRows(m, rows[s:e], T, scores); err != nil {
			return MCResult{}, err
		}
		s = e
	}
	var r MCResult
	var norm int
	for i, q := range qs {
		best, bestNorm := 0, 0
		per := func(c int) float64 { return scores[i][c] / float64(max(1, len(q.Choices[c]))) }
		for c := range q.Choices {
			if scores[i][c] > scores[i][best] {
				best = c
			}
			if per(c) > per(bestNorm) {
				bestNorm = c
			}
		}
		if best == q.Answer {
			r.Correct++
		}
		if bestNorm == q.Answer {
			norm++
		}
		r.Chance += 1 / float64(len(q.Choices))
	}
	r.N = len(qs)
	r.Acc = float64(r.Correct) / float64(r.N)
	r.AccNorm = float64(norm) / float64(r.N)
	r.Chance /= float64(r.N)
	return r, nil
}

// scoreRows runs one batch and adds each row's choice log-likelihood into
// scores. Only the hidden states that predict a choice token go through
// the LM head.
func scoreRows(m *gpt.Model, rows []mcRow, T int, scores [][]float64) error {
	B := len(rows)
	ids := make([]int32, B*T)
	var at []int32   // rows of the flattened hidden states to score
	var tgt []int32  // the token each predicts
	var owner []int  // which row
	var choice []int // which choice
	for b, r := range rows {
		for i := 0; i < T && i < len(r.ids)-1; i++ {
			ids[b*T+i] = int32(r.ids[i])
			if r.single != nil {
				if i+1 == r.start {
					for c, id := range r.single {
						at = append(at, int32(b*T+i))
						tgt = append(tgt, int32(id))
						owner = append(owner, b)
						choice = append(choice, c)
					}
				}
				continue
			}
			if i+1 >= r.start {
				choice = append(choice, r.c)
				at = append(at, int32(b*T+i))
				tgt = append(tgt, int32(r.ids[i+1]))
				owner = append(owner, b)
			}
		}
	}
	var lp []float32
	tensor.NoGrad(func() {
		s := tensor.NewScope()
		defer s.Close()
		h := m.Forward(ids, B, T, gpt.Options{Scope: s})
		sel := tensor.Embedding(tensor.Reshape(h, B*T, -1), at)
		lp = tensor.TokenLogProbs(m.Logits(sel), tgt).Host()
	})
	for i, v := range lp {
		scores[rows[owner[i]].q][choice[i]] += float64(v)
	}
	return nil
}
