package eval

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// MCOptions configure MultipleChoice.
type MCOptions struct {
	// Shots is k: solved examples put before each question, drawn from
	// Pool as lm-evaluation-harness draws them (see Sampler).
	Shots int
	// Pool holds the examples to draw from: the task's few-shot split
	// (ARC's, OpenBookQA's and HellaSwag's train split, CMMLU's dev
	// split). A question of a Subject draws only from that subject's.
	Pool []Question
	// FirstN takes each question's first k examples of the pool
	// (lm-eval's first_n sampler, CMMLU's); otherwise they are drawn as
	// lm-eval's default sampler does: Python's
	// random.Random(Seed).sample(pool, k), one draw per question in order.
	FirstN bool
	// Seed seeds the draws (lm-eval's default: 1234).
	Seed uint64
	// SameSplit says the pool is the evaluated split itself: lm-eval then
	// draws k+1 and drops the question if it was drawn.
	SameSplit bool
	// Tokens bounds the tokens of one forward pass (default 4096).
	Tokens int
	// Details keeps each question's requests and scores in the result.
	Details bool
}

// DefaultFewshotSeed is lm-evaluation-harness's few-shot seed.
const DefaultFewshotSeed = 1234

// MCResult is the outcome of a multiple-choice evaluation, under
// lm-evaluation-harness's metric names.
type MCResult struct {
	N        int      `json:"n"`
	Correct  int      `json:"correct"`   // questions right by acc
	Acc      float64  `json:"acc"`       // the choice of the highest summed log-likelihood
	AccNorm  float64  `json:"acc_norm"`  // of the highest log-likelihood per character of the choice
	AccBytes float64  `json:"acc_bytes"` // of the highest log-likelihood per UTF-8 byte of the choice
	Chance   float64  `json:"chance"`    // the mean of 1/choices: what guessing scores
	Items    []MCItem `json:"-"`         // per question, with MCOptions.Details
}

// MCItem is one question's requests and scores, as lm-eval's logged
// samples: the context (description, k-shot examples, question), each
// choice's continuation (the target delimiter " " and the choice), the
// log-probability of each continuation token, and the picks.
type MCItem struct {
	ID            string      `json:"id"`
	Context       string      `json:"context"`
	Continuations []string    `json:"continuations"`
	LogProbs      [][]float64 `json:"logprobs"`
	LLs           []float64   `json:"lls"`
	Gold          int         `json:"gold"`
	Pred          int         `json:"pred"`
	PredNorm      int         `json:"pred_norm"`
	PredBytes     int         `json:"pred_bytes"`
}

// String formats the result with lm-eval's names:
// "acc=0.262 (131/500) acc_norm=0.250 acc_bytes=0.248 chance=0.250".
func (r MCResult) String() string {
	return fmt.Sprintf("acc=%.3f (%d/%d) acc_norm=%.3f acc_bytes=%.3f chance=%.3f", r.Acc, r.Correct, r.N, r.AccNorm, r.AccBytes, r.Chance)
}

// targetDelimiter is what lm-eval puts between a context and a choice.
const targetDelimiter = " "

// fewshotDelimiter ends each k-shot example.
const fewshotDelimiter = "\n\n"

// ShotPrefix renders solved questions as a k-shot prefix: each its context,
// the target delimiter, its right choice, and a blank line.
func ShotPrefix(shots []Question) string {
	var sb strings.Builder
	for _, s := range shots {
		sb.WriteString(s.Context + targetDelimiter + s.Choices[s.Answer] + fewshotDelimiter)
	}
	return sb.String()
}

// shots picks the k-shot examples of each question as lm-eval does.
func (o *MCOptions) shots(qs []Question) ([][]Question, error) {
	out := make([][]Question, len(qs))
	if o.Shots <= 0 {
		return out, nil
	}
	bySubject := map[string][]Question{}
	for _, p := range o.Pool {
		bySubject[p.Subject] = append(bySubject[p.Subject], p)
	}
	rnd := newPyRandom(o.Seed)
	for i, q := range qs {
		pool := bySubject[q.Subject]
		n := o.Shots
		if o.SameSplit {
			n++
		}
		if len(pool) < n {
			what := "the few-shot split"
			if q.Subject != "" {
				what += " of " + q.Subject
			}
			return nil, fmt.Errorf("eval: %s: %d shots, but %s has %d examples", q.ID, o.Shots, what, len(pool))
		}
		var drawn []Question
		if o.FirstN {
			drawn = pool[:n]
		} else {
			for _, j := range rnd.sample(len(pool), n) {
				drawn = append(drawn, pool[j])
			}
		}
		for _, d := range drawn {
			if len(out[i]) < o.Shots && !(o.SameSplit && sameQuestion(d, q)) {
				out[i] = append(out[i], d)
			}
		}
	}
	return out, nil
}

func sameQuestion(a, b Question) bool {
	return a.Context == b.Context && a.Answer == b.Answer && slices.Equal(a.Choices, b.Choices)
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

// encodePair returns the tokens of a request as lm-eval's Hugging Face
// model makes them: spaces that end the context move to the continuation,
// the context and the whole are encoded, and the continuation is what the
// whole has past the context's tokens. An empty context is the prefix
// token (BOS, else EOS) alone, before the continuation encoded by itself.
func encodePair(tok *tokenizer.Tokenizer, prefix int, ctx, cont string) (ctxIDs, contIDs []int) {
	if ctx == "" {
		return []int{prefix}, tok.Encode(cont)
	}
	if n := len(ctx) - len(strings.TrimRight(ctx, " \t\n\r\v\f")); n > 0 {
		ctx, cont = ctx[:len(ctx)-n], ctx[len(ctx)-n:]+cont
	}
	whole := tok.Encode(ctx + cont)
	ctxIDs = tok.Encode(ctx)
	if len(ctxIDs) > len(whole) {
		return ctxIDs, nil
	}
	return ctxIDs, whole[len(ctxIDs):]
}

// prefixToken is what an empty context starts with, as lm-eval's
// prefix_token_id: the model's BOS, else its EOS, else <|endoftext|>.
func prefixToken(m *gpt.Model, tok *tokenizer.Tokenizer) int {
	switch {
	case m.Config.BOS >= 0:
		return m.Config.BOS
	case m.Config.EOS >= 0:
		return m.Config.EOS
	}
	if id, ok := tok.SpecialID(tokenizer.EndOfText); ok {
		return id
	}
	return -1
}

// MultipleChoice scores every choice of every question as
// lm-evaluation-harness's multiple_choice tasks do: the request is the
// context (description, k-shot examples, question) and the continuation
// " "+choice, tokenized as lm-eval's Hugging Face model tokenizes it
// (encodePair), truncated from the left to the model's context; a
// choice's score is the sum of its tokens' log-probabilities. acc counts
// the questions whose highest score is the right choice, acc_norm divides
// each score by the choice's length in characters (without the delimiter),
// acc_bytes by its length in UTF-8 bytes; ties go to the first choice.
func MultipleChoice(m *gpt.Model, tok *tokenizer.Tokenizer, qs []Question, o MCOptions) (MCResult, error) {
	if len(qs) == 0 {
		return MCResult{}, errors.New("eval: no questions")
	}
	if o.Tokens <= 0 {
		o.Tokens = 4096
	}
	shots, err := o.shots(qs)
	if err != nil {
		return MCResult{}, err
	}
	prefixTok := prefixToken(m, tok)
	ctxLen := m.Config.Context
	var rows []mcRow
	items := make([]MCItem, len(qs))
	for qi, q := range qs {
		if len(q.Choices) == 0 || q.Answer < 0 || q.Answer >= len(q.Choices) {
			return MCResult{}, fmt.Errorf("eval: %s: answer %d of %d choices", q.ID, q.Answer, len(q.Choices))
		}
		ctx := q.Description + ShotPrefix(shots[qi]) + q.Context
		if ctx == "" && prefixTok < 0 {
			return MCResult{}, fmt.Errorf("eval: %s: empty context, and the model has no BOS or EOS token to start it", q.ID)
		}
		it := &items[qi]
		it.ID, it.Context, it.Gold = q.ID, ctx, q.Answer
		var ctxIDs []int
		conts := make([][]int, len(q.Choices))
		for ci, c := range q.Choices {
			cont := targetDelimiter + c
			it.Continuations = append(it.Continuations, cont)
			ctxIDs, conts[ci] = encodePair(tok, prefixTok, ctx, cont)
			if len(conts[ci]) == 0 {
				return MCResult{}, fmt.Errorf("eval: %s: choice %d %q has no tokens of its own after the context", q.ID, ci, c)
			}
		}
		single := true
		for _, c := range conts {
			single = single && len(c) == 1
		}
		if single {
			ids := ctxIDs[max(0, len(ctxIDs)-ctxLen):]
			var toks []int
			for _, c := range conts {
				toks = append(toks, c[0])
			}
			rows = append(rows, mcRow{q: qi, ids: append(slices.Clone(ids), toks[0]), start: len(ids), single: toks})
			continue
		}
		for ci, cont := range conts {
			// lm-eval: (context + continuation)[-(max_length+1):].
			ids := append(slices.Clone(ctxIDs), cont...)
			ids = ids[max(0, len(ids)-ctxLen-1):]
			rows = append(rows, mcRow{q: qi, c: ci, ids: ids, start: len(ids) - min(len(cont), len(ids)-1)})
		}
	}
	logprobs := make([][][]float64, len(qs))
	for i, q := range qs {
		logprobs[i] = make([][]float64, len(q.Choices))
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
		if err := scoreRows(m, rows[s:e], T, logprobs); err != nil {
			return MCResult{}, err
		}
		s = e
	}
	var r MCResult
	var norm, byBytes int
	for i, q := range qs {
		it := &items[i]
		it.LogProbs = logprobs[i]
		it.LLs = make([]float64, len(q.Choices))
		for c, lp := range logprobs[i] {
			for _, v := range lp {
				it.LLs[c] += v
			}
		}
		lls := it.LLs
		it.Pred = argmax(len(lls), func(c int) float64 { return lls[c] })
		it.PredNorm = argmax(len(lls), func(c int) float64 { return lls[c] / float64(utf8.RuneCountInString(q.Choices[c])) })
		it.PredBytes = argmax(len(lls), func(c int) float64 { return lls[c] / float64(len(q.Choices[c])) })
		if it.Pred == q.Answer {
			r.Correct++
		}
		if it.PredNorm == q.Answer {
			norm++
		}
		if it.PredBytes == q.Answer {
			byBytes++
		}
		r.Chance += 1 / float64(len(q.Choices))
	}
	r.N = len(qs)
	r.Acc = float64(r.Correct) / float64(r.N)
	r.AccNorm = float64(norm) / float64(r.N)
	r.AccBytes = float64(byBytes) / float64(r.N)
	r.Chance /= float64(r.N)
	if o.Details {
		r.Items = items
	}
	return r, nil
}

// argmax returns the first index of the largest f(i), as numpy's argmax
// (a NaN, from an empty choice's 0/0, is the largest).
func argmax(n int, f func(int) float64) int {
	best, bv := 0, f(0)
	for i := 1; i < n; i++ {
		if math.IsNaN(bv) {
			break
		}
		if v := f(i); v > bv || math.IsNaN(v) {
			best, bv = i, v
		}
	}
	return best
}

// scoreRows runs one batch and appends the log-probability of each of a
// row's choice tokens to logprobs[question][choice]. Only the hidden states that predict a choice token go through
// the LM head.
func scoreRows(m *gpt.Model, rows []mcRow, T int, logprobs [][][]float64) error {
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
		q := rows[owner[i]].q
		logprobs[q][choice[i]] = append(logprobs[q][choice[i]], float64(v))
	}
	return nil
}
