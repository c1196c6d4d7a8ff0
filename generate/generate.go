// Package generate samples continuations from a language model: greedy,
// temperature, top-k, top-p and repetition penalty, batched over several
// prompts with a KV cache, with stop tokens and stop strings, streaming.
package generate

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"unicode/utf8"

	"github.com/golem-ml/golem/kvcache"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// Options control sampling. The zero value is greedy decoding of up to 256
// tokens.
type Options struct {
	MaxTokens         int      // new tokens per sequence (default 256)
	Temperature       float64  // 0 = greedy
	TopK              int      // keep the K most likely tokens (0 = all)
	TopP              float64  // keep the smallest set with this much probability (0 or 1 = all)
	RepetitionPenalty float64  // > 1 discourages tokens already in the sequence (1 or 0 = off)
	Stop              []string // stop strings (text API)
	StopIDs           []int    // stop tokens, e.g. end of text (not included in the output)
	Seed              uint64   // sampling seed; sequence i uses Seed+i
	// SoftPrompt, if set, puts its virtual tokens before every prompt
	// (prompt tuning): input embeddings through the same prefill.
	SoftPrompt *nn.SoftPrompt
	// RowPrompts, if set, put row b's own input embeddings before prompt
	// b: one per prompt, all of one length (a LLaVA model's image tokens
	// and the text before them, llava.Model.PromptEmbeds), so that each
	// row of a batch sees its own image. The same prefill as SoftPrompt,
	// which is the same embeddings for every row; set one or the other.
	RowPrompts []*nn.SoftPrompt
	// Constrain, if set, gives each sequence a constraint on its tokens
	// (constrained decoding: a JSON schema, see generate/constrain).
	Constrain func() Constraint
}

// Constraint restricts the tokens of one sequence: constrained decoding
// (generate/constrain compiles JSON schemas to one). The sampler gives
// every token it did not allow probability 0.
type Constraint interface {
	// Allowed returns the tokens that may come next, bit id%64 of word
	// id/64 set for each; nil allows any token. The sampler does not
	// change it.
	Allowed() []uint64
	// Accept records the token picked; false if it was not allowed.
	Accept(id int) bool
}

// Validate checks the options: a temperature, top-p and repetition penalty
// that are finite numbers in range, and no negative count. (A positive
// temperature however small is valid: the sampler subtracts the largest
// logit before dividing, so a tiny one draws from the most likely tokens
// only, as greedy decoding does, instead of overflowing.)
func (o *Options) Validate() error {
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case o.MaxTokens < 0:
		return fmt.Errorf("generate: max tokens %d is negative", o.MaxTokens)
	case !finite(o.Temperature) || o.Temperature < 0:
		return fmt.Errorf("generate: temperature %g is not a finite number >= 0 (0 = greedy)", o.Temperature)
	case !finite(o.TopP) || o.TopP < 0 || o.TopP > 1:
		return fmt.Errorf("generate: top-p %g is not between 0 and 1 (0 or 1 = all tokens)", o.TopP)
	case o.TopK < 0:
		return fmt.Errorf("generate: top-k %d is negative (0 = all tokens)", o.TopK)
	case !finite(o.RepetitionPenalty) || o.RepetitionPenalty < 0:
		return fmt.Errorf("generate: repetition penalty %g is not a finite number >= 0 (0 or 1 = off)", o.RepetitionPenalty)
	}
	return nil
}

// ErrPromptTooLong is returned when a prompt does not fit the context.
var ErrPromptTooLong = errors.New("generate: prompt longer than the model's context")

// Tokens continues each prompt. onToken, if not nil, is called with each
// new token of each sequence as it is produced; returning false stops that
// sequence. It returns the new tokens of each sequence (stop tokens
// excluded).
func Tokens(m *gpt.Model, prompts [][]int, o Options, onToken func(seq, id int) bool) ([][]int, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	B := len(prompts)
	if B == 0 {
		return nil, nil
	}
	if o.MaxTokens <= 0 {
		o.MaxTokens = 256
	}
	sps, P, err := o.prefixes(m.Config.Hidden, B)
	if err != nil {
		return nil, err
	}
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("generate: prompt %d is empty", i)
		}
		if len(p)+P > m.Config.Context {
			return nil, fmt.Errorf("%w: prompt %d has %d tokens, context is %d", ErrPromptTooLong, i, len(p)+P, m.Config.Context)
		}
	}
	samplers := make([]*Sampler, B)
	hist := make([][]int, B) // prompt and new tokens of each sequence
	for b := range samplers {
		samplers[b] = NewSampler(o, o.Seed+uint64(b), prompts[b])
		if o.Constrain != nil {
			samplers[b].Constrain(o.Constrain())
		}
		hist[b] = append([]int(nil), prompts[b]...)
	}
	out := make([][]int, B)
	done := make([]bool, B)
	cache := &kvcache.Growable{}
	defer cache.Close()
	var lay *Layout
	// prefill runs the last keep tokens of each history (after the soft
	// prompt, if any) into an emptied cache.
	prefill := func(keep int) []float32 {
		cache.Close()
		rows := make([][]int, B)
		for b, h := range hist {
			rows[b] = h[len(h)-min(len(h), keep):]
		}
		var host []float32
		lay, host = Prefill(m, cache, rows, embeds(sps))
		return host
	}
	ids, pos := make([]int32, B), make([]int32, B)
	tensor.NoGrad(func() {
		host := prefill(m.Config.Context - P)
		V := m.Config.Vocab
		for step := 0; ; step++ {
			alive := false
			for b := 0; b < B; b++ {
				next := 0
				if !done[b] {
					next = samplers[b].Next(host[b*V:(b+1)*V], nil)
					if next == Blocked {
						err = fmt.Errorf("sequence %d, new token %d: %w", b, len(out[b])+1, ErrBlocked)
						return
					}
					if next < 0 {
						err = fmt.Errorf("generate: sequence %d, new token %d: every logit is NaN or -Inf (the model overflowed)", b, len(out[b])+1)
						return
					}
					if slices.Contains(o.StopIDs, next) {
						done[b] = true
					} else {
						out[b] = append(out[b], next)
						hist[b] = append(hist[b], next)
						samplers[b].Seen(next)
						if onToken != nil && !onToken(b, next) {
							done[b] = true
						}
					}
				}
				ids[b] = int32(next)
				pos[b] = int32(cache.Len() - lay.Pad[b])
				alive = alive || !done[b]
			}
			if !alive || step+1 >= o.MaxTokens {
				break
			}
			if cache.Len()+1 > m.Config.Context {
				// The context is full: like nanoGPT, go on from the last
				// half context of each sequence.
				host = prefill((m.Config.Context - P) / 2)
				continue
			}
			host = Step(m, cache, ids, pos, lay.Mask(cache.Len()+1), host)
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// prefixes checks the soft prompt or the B rows' prompts against the
// model's width and returns each row's (the soft prompt repeated; nil for
// none) and their length, the positions before each prompt.
func (o *Options) prefixes(hidden, B int) ([]*nn.SoftPrompt, int, error) {
	sps := o.RowPrompts
	switch {
	case o.SoftPrompt != nil && sps != nil:
		return nil, 0, errors.New("generate: a soft prompt and rows' prompts together; set one")
	case o.SoftPrompt != nil:
		sps = slices.Repeat([]*nn.SoftPrompt{o.SoftPrompt}, B)
	case sps != nil && len(sps) != B:
		return nil, 0, fmt.Errorf("generate: %d rows' prompts for %d prompts", len(sps), B)
	}
	P := 0
	for b, sp := range sps {
		if w := sp.Weight.Dim(1); w != hidden {
			return nil, 0, fmt.Errorf("generate: the soft prompt's virtual tokens are %d wide, the model's embeddings %d", w, hidden)
		}
		if b > 0 && sp.Weight.Dim(0) != P {
			return nil, 0, fmt.Errorf("generate: row %d's prompt has %d embeddings, row 0's %d: one batch's rows take prompts of one length", b, sp.Weight.Dim(0), P)
		}
		P = sp.Weight.Dim(0)
	}
	return sps, P, nil
}

// embeds returns the rows' prompts as the embeddings before them,
// [B, P, C], or nil for none.
func embeds(sps []*nn.SoftPrompt) *tensor.Tensor {
	if sps == nil {
		return nil
	}
	rows := make([]*tensor.Tensor, len(sps))
	for b, sp := range sps {
		rows[b] = tensor.Reshape(sp.Weight, 1, sp.Weight.Dim(0), sp.Weight.Dim(1))
	}
	if len(rows) == 1 {
		return rows[0]
	}
	return tensor.Concat(0, rows...)
}

// Sampler picks the tokens of one sequence from its logits. It is what
// Tokens uses, exported for the server's batched decode loop.
type Sampler struct {
	o       Options
	c       Constraint
	rng     *rand.Rand
	count   map[int]bool
	probs   []float64
	idx     []int
	nucleus []int
	allowed []int
}

// NewSampler returns a sampler for one sequence with its own seed; prompt
// seeds the repetition penalty.
func NewSampler(o Options, seed uint64, prompt []int) *Sampler {
	s := &Sampler{o: o, rng: rand.New(rand.NewPCG(seed, 0x5eed)), count: map[int]bool{}}
	for _, id := range prompt {
		s.Seen(id)
	}
	return s
}

// Seen records a token of the sequence (for the repetition penalty).
func (s *Sampler) Seen(id int) {
	if s.o.RepetitionPenalty > 0 && s.o.RepetitionPenalty != 1 {
		s.count[id] = true
	}
}

// Blocked is what Sampler.Next returns when its constraint allows no token
// at all: the vocabulary cannot write what the constraint asks for (a
// tokenizer without '{' asked for JSON).
const Blocked = -2

// ErrBlocked is the error of a sequence whose constraint allows no token.
var ErrBlocked = errors.New("generate: the constraint allows no token of the vocabulary here (the tokenizer cannot write what it asks for, e.g. JSON's punctuation)")

// Constrain makes c decide which tokens the sequence may take from now
// on (nil: any).
func (s *Sampler) Constrain(c Constraint) { s.c = c }

// Next picks a token. Tokens in hide (e.g. end-of-text before a minimum
// length) are never picked, nor those the sampler's constraint does not
// allow (a constraint that allows only hidden tokens wins over hide);
// NaN logits count as impossible, +Inf ones as certain. It returns -1
// when no token is possible (every logit NaN, -Inf or hidden, or the
// constraint allows none of the finite ones), and Blocked when the
// constraint allows no token of the vocabulary at all.
func (s *Sampler) Next(logits []float32, hide []int) int {
	var mask []uint64
	if s.c != nil {
		if mask = s.c.Allowed(); mask != nil && !slices.ContainsFunc(mask, func(w uint64) bool { return w != 0 }) {
			return Blocked
		}
	}
	id := s.next(logits, hide, mask)
	if id < 0 && s.c != nil && len(hide) > 0 {
		id = s.next(logits, nil, mask)
	}
	if id >= 0 && s.c != nil && !s.c.Accept(id) {
		return -1
	}
	return id
}

// next is Next's draw, with the constraint's mask (nil: none).
func (s *Sampler) next(logits []float32, hide []int, mask []uint64) int {
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
	for _, id := range hide {
		if id >= 0 && id < V {
			p[id] = math.Inf(-1)
		}
	}
	var sparse []int // the allowed tokens, when the constraint allows few
	if mask != nil {
		n := 0
		for _, w := range mask {
			n += bits.OnesCount64(w)
		}
		if n <= V/16 {
			sparse = s.allowed[:0]
			for w, word := range mask {
				for ; word != 0; word &= word - 1 {
					if id := w*64 + bits.TrailingZeros64(word); id < V {
						sparse = append(sparse, id)
					}
				}
			}
			s.allowed = sparse
		}
		// By words of 64 tokens: a word all allowed (inside a
		// string) is skipped, one of none is 64 stores.
		for lo := 0; lo < V; lo += 64 {
			var word uint64
			if lo>>6 < len(mask) {
				word = mask[lo>>6]
			}
			if word == ^uint64(0) {
				continue
			}
			for i := lo; i < min(V, lo+64); i++ {
				if word>>(i-lo)&1 == 0 {
					p[i] = math.Inf(-1)
				}
			}
		}
	}
	if rp := s.o.RepetitionPenalty; rp > 0 && rp != 1 {
		// As in transformers: divide positive logits, multiply negative ones.
		for id := range s.count {
			if id < V {
				if p[id] > 0 {
					p[id] /= rp
				} else {
					p[id] *= rp
				}
			}
		}
	}
	// The largest logit: the greedy choice, and the shift that keeps
	// the scaled logits <= 0 for any temperature.
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	mx := p[best]
	switch {
	case math.IsInf(mx, -1):
		return -1
	case s.o.Temperature <= 0:
		return best
	case math.IsInf(mx, 1):
		// Only the infinite logits are possible, equally.
		for i, v := range p {
			if math.IsInf(v, 1) {
				p[i] = 0
			} else {
				p[i] = math.Inf(-1)
			}
		}
		mx = 0
	}
	// Only the candidates that top-k and top-p can keep are sorted (most
	// probable first, ties by id): a quickselect for the k best, and for
	// top-p the tokens of at least (1-TopP)/n of the probability, which
	// hold the nucleus (the others weigh less than 1-TopP together). A
	// vocabulary of 150,000 is not sorted at every token, and without
	// top-k or top-p nothing is. Logits are shifted by the largest before
	// they are scaled, so that a tiny temperature gives -Inf (probability
	// 0) for all but the largest, not an overflow.
	invT := 1 / s.o.Temperature // +Inf below 1/MaxFloat64
	for i, v := range p {
		if d := v - mx; d < 0 {
			p[i] = d * invT
		} else {
			p[i] = 0 // not 0 * +Inf
		}
	}
	mx = 0
	byProb := func(a, b int) int { // more probable first, then by id
		if c := cmp.Compare(p[b], p[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	}
	var idx []int // the candidates in order; nil: all, by id
	if sparse != nil {
		// Only the few allowed tokens are candidates.
		idx = sparse
		if k := s.o.TopK; k > 0 && k < len(idx) {
			selectTop(idx, k, p)
			idx = idx[:k]
		}
		slices.SortFunc(idx, byProb)
	} else if k := s.o.TopK; k > 0 && k < V {
		idx = s.idx[:V]
		for i := range idx {
			idx[i] = i
		}
		selectTop(idx, k, p)
		idx = idx[:k]
		slices.SortFunc(idx, byProb)
	}
	var z float64
	if idx == nil {
		for i, v := range p {
			p[i] = expNeg(v - mx)
			z += p[i]
		}
	} else {
		for _, i := range idx {
			p[i] = expNeg(p[i] - mx)
			z += p[i]
		}
	}
	if s.o.TopP > 0 && s.o.TopP < 1 {
		n := len(idx)
		if idx == nil {
			n = V
		}
		least := z * (1 - s.o.TopP) / float64(n)
		nucleus := s.nucleus[:0]
		if idx == nil {
			for i, v := range p {
				if v >= least {
					nucleus = append(nucleus, i)
				}
			}
			slices.SortFunc(nucleus, byProb)
		} else {
			for _, i := range idx {
				if p[i] >= least {
					nucleus = append(nucleus, i)
				}
			}
		}
		s.nucleus = nucleus
		idx = nucleus
		var c float64
		for n, i := range idx {
			c += p[i] / z
			if c >= s.o.TopP {
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
	if idx == nil {
		for i, v := range p {
			u -= v
			if u <= 0 {
				return i
			}
		}
		return V - 1
	}
	for _, i := range idx {
		u -= p[i]
		if u <= 0 {
			return i
		}
	}
	return idx[len(idx)-1]
}

// expNeg is e^x for x <= 0 (and 0 for NaN) to about 1e-7 relative: a
// Cody-Waite reduction to |r| <= ln2/2 and a degree-7 Taylor polynomial.
// The sampler takes one per vocabulary entry per token; math.Exp costs
// several times more.
func expNeg(x float64) float64 {
	if !(x >= -708) {
		return 0
	}
	const (
		log2e = 1.4426950408889634
		ln2hi = 6.93147180369123816490e-01
		ln2lo = 1.90821492927058770002e-10
	)
	k := math.Floor(x*log2e + 0.5)
	r := x - k*ln2hi - k*ln2lo
	e := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720+r*(1.0/5040)))))))
	return e * math.Float64frombits(uint64(int64(k)+1023)<<52)
}

// selectTop reorders idx so that its first k entries are the k most
// probable by p (ties by id), in no particular order: a quickselect with
// median-of-three pivots, linear on average.
func selectTop(idx []int, k int, p []float64) {
	before := func(a, b int) bool { return p[a] > p[b] || p[a] == p[b] && a < b }
	lo, hi := 0, len(idx)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		// Median of three to idx[hi], then Lomuto partition around it.
		if before(idx[mid], idx[lo]) {
			idx[mid], idx[lo] = idx[lo], idx[mid]
		}
		if before(idx[hi], idx[lo]) {
			idx[hi], idx[lo] = idx[lo], idx[hi]
		}
		if before(idx[mid], idx[hi]) {
			idx[mid], idx[hi] = idx[hi], idx[mid]
		}
		pivot, store := idx[hi], lo
		pv := p[pivot]
		for i := lo; i < hi; i++ {
			if v := p[idx[i]]; v > pv || v == pv && idx[i] < pivot {
				idx[i], idx[store] = idx[store], idx[i]
				store++
			}
		}
		idx[store], idx[hi] = idx[hi], idx[store]
		switch {
		case store == k-1 || store == k:
			return
		case store < k:
			lo = store + 1
		default:
			hi = store - 1
		}
	}
}

// Stream turns a growing token sequence into text deltas: it holds back an
// unfinished UTF-8 character and any text that may be the start of a stop
// string, and reports when a stop string appears (the text before it is
// the output). Each token costs the work of its own bytes and the text
// held back, not of the whole text so far.
type Stream struct {
	tok     *tokenizer.Tokenizer
	stop    []string
	buf     []byte // the text so far (up to a stop string)
	emitted int
	Stopped bool
}

// NewStream starts a stream.
func NewStream(tok *tokenizer.Tokenizer, stop []string) *Stream {
	return &Stream{tok: tok, stop: stop}
}

// Text returns the whole text so far (up to a stop string).
func (s *Stream) Text() string { return string(s.buf) }

// Add appends a token and returns the text that is now safe to show.
func (s *Stream) Add(id int) string {
	if s.Stopped {
		return ""
	}
	old := len(s.buf)
	if t, ok := s.tok.Token(id); ok {
		s.buf = append(s.buf, t...)
	}
	for _, st := range s.stop {
		if st == "" {
			continue
		}
		// A new match ends in the new bytes.
		from := min(max(0, old-len(st)+1), len(s.buf))
		if i := bytes.Index(s.buf[from:], []byte(st)); i >= 0 {
			s.buf = s.buf[:from+i]
			s.Stopped = true
		}
	}
	text := s.buf
	safe := len(text)
	if !s.Stopped && s.emitted <= len(text) {
		// Hold back an incomplete character at the end (unless the text
		// is not UTF-8 before it: then it all goes)...
		if pending := text[s.emitted:]; !utf8.Valid(pending) {
			for k := 1; k <= utf8.UTFMax && k <= len(pending); k++ {
				if utf8.Valid(pending[:len(pending)-k]) {
					safe = len(text) - k
					break
				}
			}
		}
		// ...and a suffix that could begin a stop string.
		for _, st := range s.stop {
			for n := min(len(st)-1, safe); n > 0; n-- {
				if bytes.HasSuffix(text[:safe], []byte(st[:n])) {
					safe -= n
					break
				}
			}
		}
	}
	if safe < s.emitted {
		return ""
	}
	d := string(text[s.emitted:safe])
	s.emitted = safe
	return d
}

// Flush returns what was held back once the sequence has ended.
func (s *Stream) Flush() string {
	d := string(s.buf[min(s.emitted, len(s.buf)):])
	s.emitted = len(s.buf)
	return d
}

// Text continues each prompt string and returns the new text of each,
// calling onText with each sequence's text deltas as they are produced.
func Text(m *gpt.Model, tok *tokenizer.Tokenizer, prompts []string, o Options, onText func(seq int, delta string)) ([]string, error) {
	enc := make([][]int, len(prompts))
	for i, p := range prompts {
		enc[i] = tok.EncodeWithSpecial(p)
		if len(enc[i]) == 0 {
			if id, ok := tok.SpecialID(tokenizer.EndOfText); ok {
				enc[i] = []int{id}
			} else {
				return nil, fmt.Errorf("generate: prompt %d is empty and the tokenizer has no %s to start from", i, tokenizer.EndOfText)
			}
		}
	}
	streams := make([]*Stream, len(prompts))
	for i := range streams {
		streams[i] = NewStream(tok, o.Stop)
	}
	if len(o.StopIDs) == 0 {
		if id, ok := tok.SpecialID(tokenizer.EndOfText); ok {
			o.StopIDs = append(o.StopIDs, id)
		}
	}
	_, err := Tokens(m, enc, o, func(seq, id int) bool {
		d := streams[seq].Add(id)
		if d != "" && onText != nil {
			onText(seq, d)
		}
		return !streams[seq].Stopped
	})
	if err != nil {
		return nil, err
	}
	out := make([]string, len(prompts))
	for i, s := range streams {
		if d := s.Flush(); d != "" && onText != nil {
			onText(i, d)
		}
		out[i] = s.Text()
	}
	return out, nil
}
