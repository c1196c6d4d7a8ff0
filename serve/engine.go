package serve

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// Errors Submit returns.
var (
	// ErrQueueFull: more requests wait than EngineOptions.Queue allows.
	ErrQueueFull = errors.New("serve: too many requests waiting; try again later")
	// ErrClosed: the engine has been closed.
	ErrClosed = errors.New("serve: the model is shutting down")
)

// Weights are one loaded checkpoint of a model with its tokenizer.
type Weights struct {
	Model   *gpt.Model
	Tok     *tokenizer.Tokenizer
	ModTime time.Time // of the weights file when it was read
	Stop    []int     // token ids that end an answer: <|im_end|>, <|endoftext|>, EOS
}

// LoadWeights reads a model folder (config.json, model.safetensors and a
// tokenizer) onto a CPU backend.
func LoadWeights(dir string) (*Weights, error) {
	mt, err := weightsModTime(dir)
	if err != nil {
		return nil, err
	}
	m, err := gpt.Load(cpu.New(), dir)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, err
	}
	return NewWeights(m, tok, mt)
}

// NewWeights checks that tok fits m and finds the stop tokens.
func NewWeights(m *gpt.Model, tok *tokenizer.Tokenizer, modTime time.Time) (*Weights, error) {
	if tok.VocabSize() > m.Config.Vocab {
		return nil, fmt.Errorf("serve: the tokenizer has %d tokens but the model only %d", tok.VocabSize(), m.Config.Vocab)
	}
	w := &Weights{Model: m, Tok: tok, ModTime: modTime}
	for _, name := range []string{tokenizer.ImEnd, tokenizer.EndOfText} {
		if id, ok := tok.SpecialID(name); ok {
			w.Stop = append(w.Stop, id)
		}
	}
	if eos := m.Config.EOS; eos >= 0 && eos < m.Config.Vocab {
		seen := false
		for _, id := range w.Stop {
			seen = seen || id == eos
		}
		if !seen {
			w.Stop = append(w.Stop, eos)
		}
	}
	return w, nil
}

// weightsModTime returns the modification time of dir's weights file.
func weightsModTime(dir string) (time.Time, error) {
	for _, name := range []string{"model.safetensors", "model.safetensors.index.json"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err == nil {
			return fi.ModTime(), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return time.Time{}, err
		}
	}
	return time.Time{}, fmt.Errorf("serve: %s: no model.safetensors", dir)
}

// EngineOptions size an Engine. Zero values take the defaults.
type EngineOptions struct {
	MaxBatch      int // sequences decoded together (default 64)
	Queue         int // requests waiting for a place in the batch (default 256)
	PrefillTokens int // padded prompt tokens prefilled in one pass (default 4096)
}

func (o *EngineOptions) defaults() {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 64
	}
	if o.Queue <= 0 {
		o.Queue = 256
	}
	if o.PrefillTokens <= 0 {
		o.PrefillTokens = 4096
	}
}

// Event is what a sequence's channel carries: a token, or the end.
type Event struct {
	Token  int
	Done   bool
	Reason string // when Done: "stop" (a stop token), "length" (max tokens or the context), "cancel", "error"
	Err    error  // when Reason is "error"
}

// Stats count an engine's work since it started.
type Stats struct {
	Steps     int64 // batched decode steps
	Tokens    int64 // tokens generated
	Prefills  int64 // prefill passes
	MaxActive int64 // most sequences decoded in one step
	Reloads   int64 // checkpoints swapped in
	Active    int64 // sequences being decoded now
	Cancelled int64 // sequences ended because their request was cancelled
}

// Engine runs one model: a scheduler goroutine admits new sequences between
// decode steps, prefills them, and advances every active sequence by one
// token per step in a single batched forward pass (continuous batching).
// Each sequence keeps its keys and values in one row of the batch's KV
// cache, right-aligned, with the columns before it masked out; the cache is
// re-packed only when sequences join or leave.
type Engine struct {
	Name string // the model's id in the APIs
	Dir  string // the folder it was loaded from; "" if none

	opts    EngineOptions
	queue   chan *seq
	wake    chan struct{}
	quit    chan struct{}
	done    chan struct{}
	cur     atomic.Pointer[Weights]
	pending atomic.Pointer[Weights]
	closed  atomic.Bool
	queued  atomic.Int64

	steps, tokens, prefills, maxActive, reloads, active, cancelled atomic.Int64
	reloadMu                                                       sync.Mutex
}

// NewEngine starts an engine serving w under name.
func NewEngine(name, dir string, w *Weights, o EngineOptions) *Engine {
	o.defaults()
	e := &Engine{Name: name, Dir: dir, opts: o,
		queue: make(chan *seq, o.Queue), wake: make(chan struct{}, 1),
		quit: make(chan struct{}), done: make(chan struct{})}
	e.cur.Store(w)
	go e.loop()
	return e
}

// Weights returns the checkpoint new requests are tokenized for.
func (e *Engine) Weights() *Weights {
	if p := e.pending.Load(); p != nil {
		return p
	}
	return e.cur.Load()
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	return Stats{Steps: e.steps.Load(), Tokens: e.tokens.Load(), Prefills: e.prefills.Load(),
		MaxActive: e.maxActive.Load(), Reloads: e.reloads.Load(), Active: e.active.Load(), Cancelled: e.cancelled.Load()}
}

// Swap makes w the model for every request admitted from now on. The
// sequences being decoded finish on the old weights; new ones wait until
// they have, so no open connection is dropped.
func (e *Engine) Swap(w *Weights) {
	e.pending.Store(w)
	e.poke()
}

// Reload reads Dir again and swaps the new checkpoint in when its weights
// file changed since the current one was read (or always, with force).
func (e *Engine) Reload(force bool) (bool, error) {
	if e.Dir == "" {
		return false, nil
	}
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	mt, err := weightsModTime(e.Dir)
	if err != nil {
		return false, err
	}
	if !force && mt.Equal(e.Weights().ModTime) {
		return false, nil
	}
	w, err := LoadWeights(e.Dir)
	if err != nil {
		return false, fmt.Errorf("serve: reload %s: %w", e.Name, err)
	}
	e.Swap(w)
	return true, nil
}

// Watch polls Dir's weights file every interval until ctx ends and reloads
// the model when it changes. Errors (a checkpoint being written) are logged
// and retried at the next tick.
func (e *Engine) Watch(ctx context.Context, interval time.Duration, logf func(string, ...any)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ok, err := e.Reload(false)
			if err != nil {
				logf("%v", err)
			} else if ok {
				logf("serve: %s: loaded the new checkpoint of %s", e.Name, e.Dir)
			}
		}
	}
}

// Close stops the engine; sequences in flight end with ErrClosed.
func (e *Engine) Close() {
	if e.closed.CompareAndSwap(false, true) {
		close(e.quit)
	}
	<-e.done
}

func (e *Engine) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// seq is one sequence being generated.
type seq struct {
	ctx    context.Context
	prompt []int
	s      Sampling
	samp   *sampler
	out    chan Event
	n      int // positions in the cache
	rowIdx int // the sequence's row in the batch cache
	last   int // the token fed at the next step
	gen    int // tokens generated
}

// Submit queues a prompt for generation. The returned channel carries the
// new tokens (stop tokens excluded) and then one Done event; it is never
// blocked on, so a slow reader does not stall the batch. Cancelling ctx
// (a client that went away) ends the sequence at the next step.
func (e *Engine) Submit(ctx context.Context, prompt []int, s Sampling) (<-chan Event, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	if len(prompt) == 0 {
		return nil, errors.New("serve: empty prompt")
	}
	if s.MaxTokens <= 0 {
		return nil, errors.New("serve: max tokens must be positive")
	}
	sq := &seq{ctx: ctx, prompt: prompt, s: s, samp: newSampler(s), out: make(chan Event, s.MaxTokens+2)}
	select {
	case e.queue <- sq:
		e.queued.Add(1)
		e.poke()
		return sq.out, nil
	default:
		return nil, ErrQueueFull
	}
}

// loop is the scheduler goroutine.
func (e *Engine) loop() {
	defer close(e.done)
	var (
		active []*seq
		cache  *gpt.Cache
	)
	fail := func(seqs []*seq, err error) {
		for _, s := range seqs {
			s.out <- Event{Done: true, Reason: "error", Err: err}
		}
	}
	defer func() {
		fail(active, ErrClosed)
		for {
			select {
			case s := <-e.queue:
				fail([]*seq{s}, ErrClosed)
			default:
				if cache != nil {
					cache.Free()
				}
				return
			}
		}
	}()
	for {
		if len(active) == 0 {
			if w := e.pending.Swap(nil); w != nil {
				e.cur.Store(w)
				e.reloads.Add(1)
			}
			if len(e.queue) == 0 {
				select {
				case <-e.quit:
					return
				case <-e.wake:
				}
				continue
			}
		}
		select {
		case <-e.quit:
			return
		default:
		}
		// Admit waiting sequences while there is room, unless a new
		// checkpoint waits for the batch to drain.
		var fresh []*seq
		if e.pending.Load() == nil {
			for len(active)+len(fresh) < e.opts.MaxBatch {
				var s *seq
				select {
				case s = <-e.queue:
				default:
				}
				if s == nil {
					break
				}
				e.queued.Add(-1)
				if s.ctx.Err() != nil {
					s.out <- Event{Done: true, Reason: "cancel"}
					continue
				}
				fresh = append(fresh, s)
			}
		}
		if len(fresh) == 0 && len(active) == 0 {
			continue
		}
		w := e.cur.Load()
		err := guard(func() {
			active, cache = e.step(w, active, fresh, cache)
		})
		if err != nil {
			log.Printf("serve: %s: %v", e.Name, err)
			fail(active, err)
			fail(fresh, err)
			active = nil
			e.active.Store(0)
			if cache != nil {
				cache.Free()
				cache = nil
			}
		}
		if len(e.queue) > 0 {
			e.poke()
		}
	}
}

// guard runs fn and turns a panic into an error, so that a bug hit by one
// request fails the batch instead of the server.
func guard(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error: %v\n%s", r, debug.Stack())
		}
	}()
	fn()
	return nil
}

// step prefills fresh, decodes active by one token, and returns the
// sequences still running with their packed cache.
func (e *Engine) step(w *Weights, active, fresh []*seq, cache *gpt.Cache) ([]*seq, *gpt.Cache) {
	var err error
	tensor.NoGrad(func() {
		if len(active) > 0 {
			active, cache = e.decode(w, active, cache)
		}
		for len(fresh) > 0 && err == nil {
			// As many as fit the prefill budget, at least one.
			n, L := 0, 0
			for n < len(fresh) {
				l := max(L, len(fresh[n].prompt))
				if n > 0 && (n+1)*l > e.opts.PrefillTokens {
					break
				}
				n, L = n+1, l
			}
			var pc *gpt.Cache
			var alive []*seq
			alive, pc = e.prefill(w, fresh[:n])
			fresh = fresh[n:]
			active, cache = merge(w.Model, active, cache, alive, pc)
		}
	})
	e.active.Store(int64(len(active)))
	if n := int64(len(active)); n > e.maxActive.Load() {
		e.maxActive.Store(n)
	}
	return active, cache
}

// prefill runs the prompts of seqs as one left-padded batch, samples each
// one's first token, and returns those still running with their cache.
func (e *Engine) prefill(w *Weights, seqs []*seq) ([]*seq, *gpt.Cache) {
	m := w.Model
	B, L := len(seqs), 0
	for _, s := range seqs {
		L = max(L, len(s.prompt))
	}
	ids := make([]int32, B*L)
	pos := make([]int32, B*L)
	var mask []bool
	for b, s := range seqs {
		pad := L - len(s.prompt)
		if pad > 0 && mask == nil {
			mask = make([]bool, B*L)
			for i := 0; i < b*L; i++ {
				mask[i] = true
			}
		}
		for j := 0; j < L; j++ {
			if j >= pad {
				ids[b*L+j] = int32(s.prompt[j-pad])
				pos[b*L+j] = int32(j - pad)
			}
			if mask != nil {
				mask[b*L+j] = j >= pad
			}
		}
		s.n = len(s.prompt)
		s.rowIdx = b
	}
	cache := &gpt.Cache{}
	h := m.Forward(ids, B, L, gpt.Options{Cache: cache, Pos: pos, KeyMask: mask})
	logits := m.Logits(tensor.Slice(h, 1, L-1, L))
	host := logits.Host()
	tensor.Release(logits)
	tensor.Release(h)
	e.prefills.Add(1)
	return e.advance(w, seqs, host, cache)
}

// decode feeds every active sequence its last token in one batched step.
func (e *Engine) decode(w *Weights, active []*seq, cache *gpt.Cache) ([]*seq, *gpt.Cache) {
	m := w.Model
	B := len(active)
	S := cache.Len + 1
	ids := make([]int32, B)
	pos := make([]int32, B)
	mask := make([]bool, B*S)
	for b, s := range active {
		ids[b] = int32(s.last)
		pos[b] = int32(s.n)
		for j := S - 1 - s.n; j < S; j++ {
			mask[b*S+j] = true
		}
		s.n++
	}
	h := m.Forward(ids, B, 1, gpt.Options{Cache: cache, Pos: pos, KeyMask: mask})
	logits := m.Logits(h)
	host := logits.Host()
	tensor.Release(logits)
	tensor.Release(h)
	e.steps.Add(1)
	return e.advance(w, active, host, cache)
}

// advance samples each sequence's next token from its row of logits, sends
// it, and drops the sequences that ended (re-packing the cache if any did).
func (e *Engine) advance(w *Weights, seqs []*seq, logits []float32, cache *gpt.Cache) ([]*seq, *gpt.Cache) {
	V := w.Model.Config.Vocab
	ctxLen := w.Model.Config.Context
	keep := seqs[:0:0]
	for b, s := range seqs {
		if s.ctx.Err() != nil {
			e.cancelled.Add(1)
			s.out <- Event{Done: true, Reason: "cancel"}
			continue
		}
		id := s.samp.next(logits[b*V:(b+1)*V], s.gen, w.Stop)
		if isStop(id, w.Stop) {
			s.out <- Event{Done: true, Reason: "stop"}
			continue
		}
		s.gen++
		e.tokens.Add(1)
		s.out <- Event{Token: id}
		if s.gen >= s.s.MaxTokens || s.n+1 > ctxLen {
			s.out <- Event{Done: true, Reason: "length"}
			continue
		}
		s.last = id
		keep = append(keep, s)
	}
	if len(keep) == len(seqs) {
		return keep, cache
	}
	return merge(w.Model, keep, cache, nil, nil)
}

func isStop(id int, stop []int) bool {
	for _, s := range stop {
		if id == s {
			return true
		}
	}
	return false
}

// merge packs the rows of the sequences keep (in cache a) and fresh (in
// cache fb), found by their rowIdx, into one new cache, each row
// right-aligned to the longest, frees a and fb, and renumbers the rows.
func merge(m *gpt.Model, keep []*seq, a *gpt.Cache, fresh []*seq, fb *gpt.Cache) ([]*seq, *gpt.Cache) {
	type src struct {
		c   *gpt.Cache
		row int
		n   int
	}
	var rows []src
	all := make([]*seq, 0, len(keep)+len(fresh))
	if a != nil {
		for _, s := range keep {
			rows = append(rows, src{a, s.rowIdx, s.n})
			all = append(all, s)
		}
	}
	for _, s := range fresh {
		rows = append(rows, src{fb, s.rowIdx, s.n})
		all = append(all, s)
	}
	S := 0
	for _, r := range rows {
		S = max(S, r.n)
	}
	var out *gpt.Cache
	if len(rows) > 0 {
		layers := m.Config.Layers
		kvw := m.Config.KVHeads * m.Config.HeadDim()
		be := m.Embed.Weight.Backend()
		out = &gpt.Cache{K: make([]*tensor.Tensor, layers), V: make([]*tensor.Tensor, layers), Len: S}
		for l := 0; l < layers; l++ {
			out.K[l] = packRows(be, len(rows), S, kvw, func(i int) (*tensor.Tensor, int, int) { r := rows[i]; return r.c.K[l], r.row, r.n })
			out.V[l] = packRows(be, len(rows), S, kvw, func(i int) (*tensor.Tensor, int, int) { r := rows[i]; return r.c.V[l], r.row, r.n })
		}
	}
	if a != nil {
		a.Free()
	}
	if fb != nil {
		fb.Free()
	}
	for i, s := range all {
		s.rowIdx = i
	}
	return all, out
}

// packRows builds a [B, S, kvw] tensor whose row i holds the last n
// positions of row r of t (given by at(i)), right-aligned; the rest is zero.
func packRows(be backend.Backend, B, S, kvw int, at func(i int) (t *tensor.Tensor, r, n int)) *tensor.Tensor {
	dst := tensor.New(be, B, S, kvw)
	for i := 0; i < B; i++ {
		t, r, n := at(i)
		srcS := t.Dim(1)
		be.Copy2D(dst.Buffer(), (i*S+S-n)*kvw, 0, t.Buffer(), (r*srcS+srcS-n)*kvw, 0, 1, n*kvw, false)
	}
	return dst
}
