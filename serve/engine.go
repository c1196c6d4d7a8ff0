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
	Fills     int64 // new sequences placed in the row of a finished one
	Repacks   int64 // times the batch's KV cache was re-packed
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

	steps, tokens, prefills, maxActive, reloads, active, cancelled, fills, repacks atomic.Int64
	reloadMu                                                                       sync.Mutex
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
		MaxActive: e.maxActive.Load(), Reloads: e.reloads.Load(), Active: e.active.Load(), Cancelled: e.cancelled.Load(),
		Fills: e.fills.Load(), Repacks: e.repacks.Load()}
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
	done   bool
	last   int // the token fed at the next step
	next   int // the token just sampled
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
		cache  *gpt.BatchCache
	)
	fail := func(seqs []*seq, err error) {
		for _, s := range seqs {
			if s != nil {
				s.out <- Event{Done: true, Reason: "error", Err: err}
			}
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
			running := len(live(active))
			for running+len(fresh) < e.opts.MaxBatch {
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
func (e *Engine) step(w *Weights, rows, fresh []*seq, cache *gpt.BatchCache) ([]*seq, *gpt.BatchCache) {
	m := w.Model
	tensor.NoGrad(func() {
		if cache != nil {
			rows, cache = e.decode(w, rows, cache)
		}
		for len(fresh) > 0 {
			// As many as fit the prefill budget, at least one.
			n, L := 0, 0
			for n < len(fresh) {
				l := max(L, len(fresh[n].prompt))
				if n > 0 && (n+1)*l > e.opts.PrefillTokens {
					break
				}
				n, L = n+1, l
			}
			alive, pc := e.prefill(w, fresh[:n])
			fresh = fresh[n:]
			// New sequences take the rows of finished ones when they fit;
			// the cache is re-packed only for the rest.
			rest := fill(m, rows, cache, alive, pc)
			e.fills.Add(int64(len(alive) - len(rest)))
			if len(rest) > 0 {
				rows, cache = merge(m, live(rows), cache, rest, pc)
				e.repacks.Add(1)
			}
			pc.Free()
		}
	})
	n := int64(len(live(rows)))
	e.active.Store(n)
	if n > e.maxActive.Load() {
		e.maxActive.Store(n)
	}
	return rows, cache
}

// live returns the sequences of rows, without the holes.
func live(rows []*seq) []*seq {
	out := make([]*seq, 0, len(rows))
	for _, s := range rows {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// fill copies the prefilled sequences fresh (rows of fb) into the holes of
// the batch cache c whose columns can hold them, and returns the ones that
// found no place.
func fill(m *gpt.Model, rows []*seq, c *gpt.BatchCache, fresh []*seq, fb *gpt.Cache) []*seq {
	if c == nil {
		return fresh
	}
	W := m.Config.KVHeads * m.Config.HeadDim()
	be := m.Embed.Weight.Backend()
	var rest []*seq
	hole := 0
	for _, s := range fresh {
		for hole < len(rows) && rows[hole] != nil {
			hole++
		}
		if hole == len(rows) || s.n > c.Len {
			rest = append(rest, s)
			continue
		}
		for l := range c.K {
			for _, kv := range [][2]*tensor.Tensor{{c.K[l], fb.K[l]}, {c.V[l], fb.V[l]}} {
				be.Copy2D(kv[0].Buffer(), (hole*c.Cap+c.Len-s.n)*W, 0, kv[1].Buffer(), (s.rowIdx*fb.Len+fb.Len-s.n)*W, 0, 1, s.n*W, false)
			}
		}
		rows[hole], s.rowIdx = s, hole
	}
	return rest
}

// prefill runs the prompts of seqs as one left-padded batch, samples each
// one's first token, and returns those still running with their cache.
// The caller frees the returned cache.
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
	return e.advance(w, seqs, host), cache
}

// decode feeds every sequence of rows its last token in one batched step.
// Rows of finished sequences (nil) ride along, masked, until a new sequence
// takes them or the cache is re-packed.
func (e *Engine) decode(w *Weights, rows []*seq, cache *gpt.BatchCache) ([]*seq, *gpt.BatchCache) {
	m := w.Model
	if cache.Len == cache.Cap {
		// Out of columns: re-pack, which drops the columns no row needs.
		rows, cache = merge(m, live(rows), cache, nil, nil)
		e.repacks.Add(1)
	}
	B, L, Cap := cache.B, cache.Len, cache.Cap
	ids := make([]int32, B)
	pos := make([]int32, B)
	mask := make([]bool, B*Cap)
	var seqs []*seq
	for b, s := range rows {
		if s == nil {
			mask[b*Cap+L] = true // attends to its own key only
			continue
		}
		ids[b] = int32(s.last)
		pos[b] = int32(s.n)
		for j := L - s.n; j <= L; j++ {
			mask[b*Cap+j] = true
		}
		s.n++
		seqs = append(seqs, s)
	}
	h := m.DecodeStep(ids, pos, cache, mask)
	logits := m.Logits(h)
	host := logits.Host()
	tensor.Release(logits)
	tensor.Release(h)
	e.steps.Add(1)
	keep := e.advance(w, seqs, host)
	if len(keep) == len(seqs) {
		return rows, cache
	}
	for _, s := range seqs {
		if s.done {
			rows[s.rowIdx] = nil
		}
	}
	if 2*len(keep) <= B {
		// Mostly holes: re-pack smaller.
		e.repacks.Add(1)
		return merge(m, keep, cache, nil, nil)
	}
	return rows, cache
}

// advance samples each sequence's next token from its row (rowIdx) of
// logits, sends it, and returns the sequences still running; the others
// are marked done.
func (e *Engine) advance(w *Weights, seqs []*seq, logits []float32) []*seq {
	V := w.Model.Config.Vocab
	ctxLen := w.Model.Config.Context
	keep := seqs[:0:0]
	// Each sequence samples from its own row with its own random stream,
	// so the rows are drawn in parallel with the same results.
	cpu.Parallel(len(seqs), 4, func(lo, hi int) {
		for _, s := range seqs[lo:hi] {
			b := s.rowIdx
			s.next = s.samp.next(logits[b*V:(b+1)*V], s.gen, w.Stop)
		}
	})
	for _, s := range seqs {
		s.done = true
		if s.ctx.Err() != nil {
			e.cancelled.Add(1)
			s.out <- Event{Done: true, Reason: "cancel"}
			continue
		}
		id := s.next
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
		s.done = false
		s.last = id
		keep = append(keep, s)
	}
	return keep
}

func isStop(id int, stop []int) bool {
	for _, s := range stop {
		if id == s {
			return true
		}
	}
	return false
}

// merge packs the rows of the sequences keep (rows of the batch cache a)
// and fresh (rows of the prefill cache fb), found by their rowIdx, into a
// new batch cache whose rows end at one column with room to grow; it frees
// a (not fb) and renumbers the rows.
func merge(m *gpt.Model, keep []*seq, a *gpt.BatchCache, fresh []*seq, fb *gpt.Cache) ([]*seq, *gpt.BatchCache) {
	all := append(append(make([]*seq, 0, len(keep)+len(fresh)), keep...), fresh...)
	if len(all) == 0 {
		if a != nil {
			a.Free()
		}
		return nil, nil
	}
	S := 0
	for _, s := range all {
		S = max(S, s.n)
	}
	layers := m.Config.Layers
	W := m.Config.KVHeads * m.Config.HeadDim()
	be := m.Embed.Weight.Backend()
	out := &gpt.BatchCache{B: len(all), Cap: S + max(64, S/2), Len: S,
		K: make([]*tensor.Tensor, layers), V: make([]*tensor.Tensor, layers)}
	for l := 0; l < layers; l++ {
		for _, kv := range []struct {
			dst      **tensor.Tensor
			old, pre *tensor.Tensor
		}{{&out.K[l], layer(a, l, true), prefillLayer(fb, l, true)}, {&out.V[l], layer(a, l, false), prefillLayer(fb, l, false)}} {
			dst := tensor.New(be, out.B, out.Cap, W)
			for i, s := range all {
				// Source row: its n positions end at column end of a
				// buffer whose rows have cols columns.
				src, cols, end := kv.old, 0, 0
				if i < len(keep) {
					cols, end = a.Cap, a.Len
				} else {
					src = kv.pre
					cols, end = fb.Len, fb.Len
				}
				be.Copy2D(dst.Buffer(), (i*out.Cap+S-s.n)*W, 0, src.Buffer(), (s.rowIdx*cols+end-s.n)*W, 0, 1, s.n*W, false)
			}
			*kv.dst = dst
		}
	}
	if a != nil {
		a.Free()
	}
	for i, s := range all {
		s.rowIdx = i
	}
	return all, out
}

func layer(c *gpt.BatchCache, l int, keys bool) *tensor.Tensor {
	switch {
	case c == nil:
		return nil
	case keys:
		return c.K[l]
	}
	return c.V[l]
}

func prefillLayer(c *gpt.Cache, l int, keys bool) *tensor.Tensor {
	switch {
	case c == nil:
		return nil
	case keys:
		return c.K[l]
	}
	return c.V[l]
}
