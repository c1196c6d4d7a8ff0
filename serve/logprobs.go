package serve

import (
	"context"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/tokenizer"
)

// Log-probabilities in the OpenAI API: chat's "logprobs": true with
// "top_logprobs": N, completions' "logprobs": N (the legacy shape) and
// "echo". Each is the token's log-probability under the model's own
// distribution, log softmax of its raw logits, before temperature, top-k
// and top-p (as OpenAI reports them), whatever the sampling settings.

// maxTopLogprobs is the most alternatives a token may list (OpenAI's 20).
const maxTopLogprobs = 20

// lpFloor stands for a log-probability of -Inf (a token the model rules
// out), which JSON cannot carry; OpenAI writes -9999 too.
const lpFloor = -9999.0

// logprobsRequest is what log-probabilities an answer carries.
type logprobsRequest struct {
	on   bool // each token's log-probability
	top  int  // and its top alternatives
	echo bool // completions: the prompt comes back first (scored when on)
}

// tokenLP is one token of an answer (or an echoed prompt) with its
// log-probability and the most likely tokens at its position.
type tokenLP struct {
	id   int
	lp   float64
	top  []generate.TokenProb
	none bool // nothing predicts it: an echoed prompt's first token
}

// chatLogprobs checks chat's "logprobs" and "top_logprobs".
func chatLogprobs(on bool, top *int) (logprobsRequest, error) {
	lp := logprobsRequest{on: on}
	if top != nil {
		if *top < 0 || *top > maxTopLogprobs {
			return lp, badRequest(`"top_logprobs" %d is not between 0 and %d`, *top, maxTopLogprobs)
		}
		if *top > 0 && !on {
			return lp, badRequest(`"top_logprobs" needs "logprobs": true`)
		}
		lp.top = *top
	}
	return lp, nil
}

// completionLogprobs checks completions' "logprobs" (the number of
// alternatives per token; null for none) and "echo".
func completionLogprobs(n *int, echo bool) (logprobsRequest, error) {
	lp := logprobsRequest{echo: echo}
	if n != nil {
		if *n < 0 || *n > maxTopLogprobs {
			return lp, badRequest(`"logprobs" %d is not between 0 and %d`, *n, maxTopLogprobs)
		}
		lp.on, lp.top = true, *n
	}
	return lp, nil
}

// setLogprobs makes the request's tokens carry lp's log-probabilities.
func (g *genRequest) setLogprobs(lp logprobsRequest) {
	g.lp = lp
	g.s.Logprobs, g.s.TopLogprobs = lp.on, lp.top
}

// echoed is what an echo puts before the answer: the prompt's text and,
// when logprobs are asked for, its tokens scored by one forward pass on
// the engine's scheduler (between decode steps). Without echo it is empty.
func (g *genRequest) echoed(ctx context.Context) (string, []tokenLP, error) {
	if !g.lp.echo {
		return "", nil, nil
	}
	text := g.w.Tok.Decode(g.prompt)
	if !g.lp.on {
		return text, nil, nil
	}
	out := make([]tokenLP, len(g.prompt))
	err := g.e.Do(ctx, func(*Weights) {
		// The weights the answer is generated with (a reload may have
		// come since).
		lps, tops := generate.PromptLogprobs(g.w.Model, g.prompt, g.lp.top)
		for i, id := range g.prompt {
			out[i] = tokenLP{id: id, lp: lps[i], top: tops[i], none: i == 0}
		}
	})
	if err != nil {
		return "", nil, engineErr(err)
	}
	return text, out, nil
}

// lpWriter writes tokens' log-probabilities in the shape of OpenAI's chat
// ({"content": [{token, logprob, bytes, top_logprobs}]}) or completions
// ({tokens, token_logprobs, top_logprobs, text_offset}); off counts each
// choice's text so far in bytes, for text_offset.
type lpWriter struct {
	tok  *tokenizer.Tokenizer
	chat bool
	off  []int
}

func newLPWriter(tok *tokenizer.Tokenizer, chat bool, n int) *lpWriter {
	return &lpWriter{tok: tok, chat: chat, off: make([]int, n)}
}

// jsonLP is a log-probability as JSON can carry it.
func jsonLP(v float64) float64 {
	if math.IsInf(v, -1) || math.IsNaN(v) || v < lpFloor {
		return lpFloor
	}
	return v
}

// json is choice i's "logprobs" for lps, the tokens after those already
// written.
func (l *lpWriter) json(i int, lps []tokenLP) map[string]any {
	if l.chat {
		content := make([]map[string]any, len(lps))
		for k, t := range lps {
			e := l.entry(t.id, t.lp)
			alts := make([]map[string]any, len(t.top))
			for a, tp := range t.top {
				alts[a] = l.entry(tp.ID, tp.Logprob)
			}
			e["top_logprobs"] = alts
			content[k] = e
		}
		return map[string]any{"content": content, "refusal": nil}
	}
	tokens, lpv, tops, offs := make([]string, len(lps)), make([]any, len(lps)), make([]any, len(lps)), make([]int, len(lps))
	for k, t := range lps {
		text := l.tok.Decode([]int{t.id})
		tokens[k], offs[k] = shownToken(text), l.off[i]
		l.off[i] += len(text)
		if t.none {
			continue // null, as OpenAI's first echoed token
		}
		lpv[k] = jsonLP(t.lp)
		alts := make(map[string]float64, len(t.top))
		for _, tp := range t.top {
			s := shownToken(l.tok.Decode([]int{tp.ID}))
			if _, ok := alts[s]; !ok { // two ids of one text: the likelier
				alts[s] = jsonLP(tp.Logprob)
			}
		}
		tops[k] = alts
	}
	return map[string]any{"tokens": tokens, "token_logprobs": lpv, "top_logprobs": tops, "text_offset": offs}
}

// entry is chat's {token, logprob, bytes} of one token.
func (l *lpWriter) entry(id int, lp float64) map[string]any {
	text := l.tok.Decode([]int{id})
	b := make([]int, len(text))
	for i := range len(text) {
		b[i] = int(text[i])
	}
	return map[string]any{"token": shownToken(text), "logprob": jsonLP(lp), "bytes": b}
}

// shownToken is a token's text as OpenAI shows it: itself when it is
// valid UTF-8, else "bytes:" and each byte as \xNN (a piece of a
// character; "bytes" has them exactly), so that two such tokens stay
// apart.
func shownToken(text string) string {
	if utf8.ValidString(text) {
		return text
	}
	var b strings.Builder
	b.WriteString("bytes:")
	for i := range len(text) {
		fmt.Fprintf(&b, "\\x%02x", text[i])
	}
	return b.String()
}
