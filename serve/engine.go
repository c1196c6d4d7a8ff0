package serve

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/kvcache"
	"github.com/golem-ml/golem/model/clip"
	"github.com/golem-ml/golem/model/dalle"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/model/load"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// Errors Submit returns.
var (
	// ErrQueueFull: more requests wait than EngineOptions.Queue allows.
	ErrQueueFull = errors.New("serve: too many requests waiting; try again later")
	// ErrClosed: the engine has been closed.
	ErrClosed = errors.New("serve: the model is shutting down")
	// errNoLogits: the model gave no token a finite logit (it overflowed).
	errNoLogits = errors.New("serve: every logit of the model is NaN or -Inf (the model overflowed)")
)

// Weights are one loaded checkpoint of a model with its tokenizer: a
// language model (Model and Tok; a vision-language model's too, with VLM),
// a CLIP model, which only embeds (CLIP and CLIPTok; Model and Tok nil),
// or a text-to-image model, which only makes images (Dalle; Model and Tok
// nil).
type Weights struct {
	Model   *gpt.Model
	Tok     *tokenizer.Tokenizer
	ModTime time.Time // of the weights file (or config.json) when it was read
	Stop    []int     // token ids that end an answer: <|im_end|>, <|endoftext|>, EOS
	// SoftPrompt is a prompt-tuning adapter's virtual tokens, put before
	// every prompt; nil otherwise.
	SoftPrompt *nn.SoftPrompt
	// Context is the tokens a prompt and its answer may take: the model's
	// context less the soft prompt's.
	Context int
	// GGUF: the model was read from a GGUF file (Ollama's lists say so).
	GGUF bool
	// BF16: the language model's matrices are kept as bfloat16
	// (LoadWeightsAs, Config.BF16); a reload keeps them so.
	BF16 bool
	// VLM is a LLaVA folder's vision-language model (Model is its
	// language model): its prompts are rendered in llava's conversation
	// format and may hold an image. nil for a text-only model.
	VLM *llava.Model
	// CLIP is a CLIPModel folder's model and CLIPTok its tokenizer: its
	// text and image embeddings are served (embed.go), nothing else.
	CLIP    *clip.Model
	CLIPTok *tokenizer.CLIP
	// Dalle is a text-to-image model folder's model (golem imagine
	// train's --out): /v1/images/generations samples it (imagegen.go).
	Dalle *dalle.Model

	stamp string // the folder's files as they were read (see folderStamp)
	// base is the shared base model under Model (bases.go), held while
	// these weights are: nil for a model loaded on its own.
	base *load.Loaded
}

// LoadWeights reads a model folder (config.json, model.safetensors and a
// tokenizer) or an adapter folder over its base model (model/load: the
// base is shared with every other model over it on be, bases.go; a LoRA
// stays attached, unmerged; a prompt-tuning adapter's soft prompt goes
// before every prompt), a CLIPModel folder (golem clip train's --out, with
// its CLIP tokenizer) or a text-to-image model folder (its tokenizer and
// its VQ-VAE in vq/) onto the backend be. A folder whose files change
// while they are read is an error, as is anything that would panic.
func LoadWeights(be backend.Backend, dir string) (*Weights, error) {
	return LoadWeightsAs(be, dir, false)
}

// LoadWeightsAs is LoadWeights that, with bf16, keeps a language model's
// matrices as bfloat16 (model/load's Options.BF16: half their memory, the
// bf16 kernel); CLIP and text-to-image folders load as they are. Bases
// are shared by dtype: the bf16 adapters over a folder share its bf16
// matrices (their LoRA unmerged, float32), the float32 ones its float32.
func LoadWeightsAs(be backend.Backend, dir string, bf16 bool) (w *Weights, err error) {
	defer func() {
		if r := recover(); r != nil {
			w, err = nil, fmt.Errorf("serve: %s: internal error while loading: %v", dir, r)
		}
	}()
	before, err := folderStamp(dir)
	if err != nil {
		return nil, err
	}
	if w, err = readWeights(be, dir, bf16); err != nil {
		return nil, err
	}
	if after, err := folderStamp(dir); err != nil || after.key != before.key {
		return nil, fmt.Errorf("serve: %s: the model files changed while being read", dir)
	}
	w.ModTime, w.stamp = before.mod, before.key
	w.freeze() // a vision-language model's vision tower and projector too
	return w, nil
}

// readWeights reads dir as LoadWeights says, the files' stamps aside.
func readWeights(be backend.Backend, dir string, bf16 bool) (*Weights, error) {
	switch {
	case clip.IsCLIP(dir):
		m, err := clip.Load(be, dir)
		if err != nil {
			return nil, err
		}
		tok, err := tokenizer.LoadCLIPDir(dir)
		if err != nil {
			return nil, err
		}
		return &Weights{CLIP: m, CLIPTok: tok, Context: m.Config.Text.Context}, nil
	case dalle.IsDalle(dir):
		m, err := dalle.Load(be, dir)
		if err != nil {
			return nil, err
		}
		return &Weights{Dalle: m, Context: m.Config.TextLength}, nil
	}
	var l, base *load.Loaded
	var err error
	switch {
	case llava.IsLLaVA(dir):
		l, err = load.Model(be, dir, load.Options{BF16: bf16})
	case gpt.IsAdapter(dir): // over a base loaded once (bases.go)
		l, err = load.Model(be, dir, load.Options{BF16: bf16, Bases: func(b string) (*load.Loaded, error) {
			base, err = sharedBase(be, b, bf16)
			return base, err
		}})
	default:
		l, err = sharedBase(be, dir, bf16)
		base = l
	}
	if err != nil {
		return nil, err
	}
	w, err := NewWeights(l.Model, l.Tok, time.Time{})
	if err != nil {
		return nil, err
	}
	w.base = base
	w.BF16 = bf16
	if sp := l.SoftPrompt; sp != nil {
		if w.Context -= sp.Weight.Dim(0); w.Context < 2 {
			return nil, fmt.Errorf("serve: %s: the soft prompt's %d virtual tokens leave no room in the model's context of %d", dir, sp.Weight.Dim(0), l.Model.Config.Context)
		}
		w.SoftPrompt = sp
	}
	_, w.GGUF, _ = gguf.Locate(l.Base)
	w.VLM = l.VLM
	return w, nil
}

// backend is the one the weights are on.
func (w *Weights) backend() backend.Backend { return w.params()[0].Tensor.Backend() }

// params are every parameter of the weights: a vision-language model's
// vision tower and projector too.
func (w *Weights) params() []nn.Named {
	switch {
	case w.CLIP != nil:
		return w.CLIP.Params()
	case w.Dalle != nil: // its VQ-VAE decodes the images: it is the model too
		return append(w.Dalle.Params(), w.Dalle.VQ.Params()...)
	case w.VLM != nil:
		return w.VLM.Params()
	}
	// An adapter's LoRA (unmerged over a shared base) is the model too.
	return append(w.Model.Params(), w.Model.LoRAParams()...)
}

// config is what the model lists say of the weights: the language
// model's config; a CLIP model's as "clip" with its text tower's context
// and vocabulary, its embeddings' width and its vision tower's layers.
func (w *Weights) config() gpt.Config {
	switch {
	case w.CLIP != nil:
		return clipConfig(&w.CLIP.Config)
	case w.Dalle != nil:
		return dalleConfig(&w.Dalle.Config)
	}
	return w.Model.Config
}

// dalleConfig is a text-to-image model's config as the lists show it
// ("golem_dalle"): its text context and vocabulary and its body's size.
func dalleConfig(dc *dalle.Config) gpt.Config {
	t := dc.Text
	return gpt.Config{Arch: dalle.ModelType, Context: dc.TextLength, Vocab: t.Vocab, Hidden: t.Hidden,
		Layers: t.Layers, Heads: t.Heads, KVHeads: t.KVHeads}
}

// clipConfig is a CLIP model's config as the lists show it.
func clipConfig(cc *clip.Config) gpt.Config {
	return gpt.Config{Arch: "clip", Context: cc.Text.Context, Vocab: cc.Text.Vocab, Hidden: cc.Projection,
		Layers: cc.Vision.Layers, Heads: cc.Vision.Heads, KVHeads: cc.Vision.Heads}
}

// freeze lets a backend that can keep the served weights packed for its
// matrix products do so (served weights never change; no size bound:
// a server keeps its models resident).
func (w *Weights) freeze() { nn.FreezeBuffers(w.params(), 0) }

// NewWeights checks that tok fits m and finds the stop tokens.
func NewWeights(m *gpt.Model, tok *tokenizer.Tokenizer, modTime time.Time) (*Weights, error) {
	if tok.VocabSize() > m.Config.Vocab {
		return nil, fmt.Errorf("serve: the tokenizer has %d tokens but the model only %d", tok.VocabSize(), m.Config.Vocab)
	}
	w := &Weights{Model: m, Tok: tok, ModTime: modTime, Context: m.Config.Context}
	w.freeze()
	w.Stop = tok.EndIDs()
	if eos := m.Config.EOS; eos >= 0 && eos < m.Config.Vocab && !slices.Contains(w.Stop, eos) {
		w.Stop = append(w.Stop, eos)
	}
	return w, nil
}

// stamp identifies a model folder's files as they are: each one's name,
// size and modification time, and the latest of those times.
type stamp struct {
	key string
	mod time.Time
}

// folderStamp stamps the files dir's weights are read from (load.Files):
// config.json and model.safetensors (or the index and its shards), and for
// an adapter folder its two files and then its base model's.
func folderStamp(dir string) (stamp, error) {
	names, err := load.Files(dir)
	if err != nil {
		return stamp{}, fmt.Errorf("serve: %w", err)
	}
	var st stamp
	var b strings.Builder
	for _, n := range names {
		fi, err := os.Stat(n)
		if err != nil {
			return stamp{}, fmt.Errorf("serve: %w", err)
		}
		fmt.Fprintf(&b, "%s %d %d\n", n, fi.Size(), fi.ModTime().UnixNano())
		if fi.ModTime().After(st.mod) {
			st.mod = fi.ModTime()
		}
	}
	st.key = b.String()
	return st, nil
}

// EngineOptions size an Engine. Zero values take the defaults.
type EngineOptions struct {
	MaxBatch      int // sequences decoded together (default 64)
	Queue         int // requests waiting for a place in the batch (default 256)
	PrefillTokens int // padded prompt tokens prefilled in one pass (default 4096)
	// FloatKV keeps the batch's KV cache in float32. By default it holds
	// float16 where the backend supports it (the CPU's): half the memory
	// and half the reading per step, keys and values rounded to float16.
	FloatKV bool
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
	// With Sampling.Logprobs, a token's log-probability and the most
	// likely tokens at its position.
	Logprob float64
	Top     []generate.TokenProb
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
	Fills     int64 // new sequences placed in the slot of a finished one
	Grows     int64 // times the batch's KV cache was enlarged (more slots or longer ones)

	PrefillTokens int64         // prompt positions prefilled, padding included
	DecodeTime    time.Duration // spent in decode steps (forward pass, sampling, sending)
	PrefillTime   time.Duration // spent in prefills (and placing their keys in the batch's cache)
}

// Engine runs one model: a scheduler goroutine admits new sequences between
// decode steps, prefills them, and advances every active sequence by one
// token per step in a single batched forward pass (continuous batching).
// Each sequence keeps its keys and values in its own slot of the batch's KV
// cache from its prefill to its end; sequences that join or leave never
// move the others' keys.
type Engine struct {
	Name string // the model's id in the APIs
	Dir  string // the folder it was loaded from; "" if none

	opts    EngineOptions
	queue   chan *seq
	jobs    chan job
	wake    chan struct{}
	quit    chan struct{}
	done    chan struct{}
	cur     atomic.Pointer[Weights]
	pending atomic.Pointer[Weights]
	closed  atomic.Bool
	queued  atomic.Int64

	steps, tokens, prefills, maxActive, reloads, active, cancelled, fills, grows atomic.Int64
	prefillTokens, decodeNanos, prefillNanos                                     atomic.Int64
	reloadMu                                                                     sync.Mutex
	failed                                                                       string // the stamp of the files a reload last failed on (under reloadMu)
}

// NewEngine starts an engine serving w under name.
func NewEngine(name, dir string, w *Weights, o EngineOptions) *Engine {
	o.defaults()
	e := &Engine{Name: name, Dir: dir, opts: o,
		queue: make(chan *seq, o.Queue), jobs: make(chan job, o.Queue), wake: make(chan struct{}, 1),
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
		PrefillTokens: e.prefillTokens.Load(), DecodeTime: time.Duration(e.decodeNanos.Load()), PrefillTime: time.Duration(e.prefillNanos.Load()),
		MaxActive: e.maxActive.Load(), Reloads: e.reloads.Load(), Active: e.active.Load(), Cancelled: e.cancelled.Load(),
		Fills: e.fills.Load(), Grows: e.grows.Load()}
}

// Swap makes w the model for every request admitted from now on. The
// sequences being decoded finish on the old weights; new ones wait until
// they have, so no open connection is dropped.
func (e *Engine) Swap(w *Weights) {
	e.pending.Store(w)
	e.poke()
}

// settle is how long a model folder's files must have been left alone
// before a reload reads them: a checkpoint still being written is left for
// a later look, and a write during the read is then sure to move the
// modification time it checks (timestamps are coarser than the clock).
const settle = 500 * time.Millisecond

// forceWait bounds how long a forced reload waits for a folder being
// written to settle.
const forceWait = 30 * time.Second

// Reload reads Dir again, onto the backend the model runs on, and swaps the new checkpoint in when its files
// (config.json and the weights) changed since the current one was read, or
// always, with force. It waits until they have been left alone for a
// moment (the watcher looks again later instead). A reload that fails for
// any reason (a file being written, a bad config, shapes that disagree,
// non-finite weights, a panic) returns an error and the engine keeps
// serving the weights it has; the watcher does not retry the same files.
func (e *Engine) Reload(force bool) (ok bool, err error) {
	if e.Dir == "" {
		return false, nil
	}
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			ok, err = false, fmt.Errorf("serve: reload %s: internal error: %v; still serving the previous weights", e.Name, r)
		}
	}()
	fail := func(err error) (bool, error) {
		return false, fmt.Errorf("serve: reload %s: %v; still serving the previous weights", e.Name, err)
	}
	st, err := folderStamp(e.Dir)
	if err != nil {
		return fail(err)
	}
	if !force && (st.key == e.Weights().stamp || st.key == e.failed) {
		return false, nil
	}
	for deadline := time.Now().Add(forceWait); time.Since(st.mod) < settle; {
		if !force {
			return false, nil // still being written: look again at the next tick
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("the files kept changing for %v", forceWait))
		}
		time.Sleep(settle - time.Since(st.mod))
		if st, err = folderStamp(e.Dir); err != nil {
			return fail(err)
		}
	}
	w, err := LoadWeightsAs(e.Weights().backend(), e.Dir, e.Weights().BF16)
	if err != nil {
		e.failed = st.key
		return fail(err)
	}
	e.failed = ""
	e.Swap(w)
	return true, nil
}

// Watch polls Dir's files every interval until ctx ends and reloads the
// model when they change and have settled. A failed reload is logged once
// and retried when the files change again.
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

// ImagePrompt is an image at a vision-language model's prompt's
// placeholder (llava.Placeholder): the tokens of the text before it and
// the image's pixels (llava.Model.PixelSize values, data/vision's
// CLIPPixels at the tower's size). The prompt submitted with it is the
// text after the placeholder. The prefill puts the text before it and the
// image's projected patch tokens before that prompt as input embeddings,
// as generate.ImageText does.
type ImagePrompt struct {
	Before []int
	Pixels []float32
}

// positions is what the image prompt takes in the sequence before the
// prompt's tokens on m.
func (p *ImagePrompt) positions(m *llava.Model) int { return len(p.Before) + m.Tokens() }

// seq is one sequence being generated.
type seq struct {
	ctx    context.Context
	prompt []int
	img    *ImagePrompt // nil for a text prompt
	s      Sampling
	samp   *sampler
	out    chan Event
	n      int // positions in the cache
	rowIdx int // the sequence's row in the step's logits (and prefill cache)
	slot   int // the sequence's slot in the batch cache
	done   bool
	last   int                  // the token fed at the next step
	next   int                  // the token just sampled
	gen    int                  // tokens generated
	lp     float64              // the sampled token's log-probability (with Sampling.Logprobs)
	top    []generate.TokenProb // the most likely tokens at its position
}

// Submit queues a prompt for generation. The returned channel carries the
// new tokens (stop tokens excluded) and then one Done event; it is never
// blocked on, so a slow reader does not stall the batch. Cancelling ctx
// (a client that went away) ends the sequence at the next step.
func (e *Engine) Submit(ctx context.Context, prompt []int, s Sampling) (<-chan Event, error) {
	return e.SubmitImage(ctx, nil, prompt, s)
}

// SubmitImage is Submit with an image before the prompt (img nil: none),
// for a vision-language model (Weights.VLM). Image prompts are prefilled
// in groups of the same length and decoded in the one batch with every
// other sequence.
func (e *Engine) SubmitImage(ctx context.Context, img *ImagePrompt, prompt []int, s Sampling) (<-chan Event, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	if len(prompt) == 0 {
		return nil, errors.New("serve: empty prompt")
	}
	if s.MaxTokens <= 0 {
		return nil, errors.New("serve: max tokens must be positive")
	}
	sq := &seq{ctx: ctx, prompt: prompt, img: img, s: s, samp: newSampler(s), out: make(chan Event, s.MaxTokens+2)}
	select {
	case e.queue <- sq:
		e.queued.Add(1)
		e.poke()
		return sq.out, nil
	default:
		return nil, ErrQueueFull
	}
}

// idleRelease is how long an idle engine keeps its KV cache.
const idleRelease = 10 * time.Second

// batch is the scheduler's state: the sequences being decoded and the KV
// cache whose slots hold them.
type batch struct {
	active []*seq
	cache  *kvcache.Batch
	model  *gpt.Model // the cache's model
	free   []int      // free slots, the lowest last
	used   []bool     // slots taken
	logits []float32  // the last step's logits on the host, reused
}

// release frees the cache.
func (bt *batch) release() {
	if bt.cache != nil {
		bt.cache.Close()
	}
	*bt = batch{logits: bt.logits}
}

// loop is the scheduler goroutine.
func (e *Engine) loop() {
	defer close(e.done)
	var bt batch
	fail := func(seqs []*seq, err error) {
		for _, s := range seqs {
			s.out <- Event{Done: true, Reason: "error", Err: err}
		}
	}
	defer func() {
		fail(bt.active, ErrClosed)
		bt.release()
		for {
			select {
			case s := <-e.queue:
				fail([]*seq{s}, ErrClosed)
			case j := <-e.jobs:
				j.done <- ErrClosed
			default:
				return
			}
		}
	}()
	for {
		e.runJobs()
		if len(bt.active) == 0 {
			if w := e.pending.Swap(nil); w != nil {
				e.cur.Store(w)
				e.reloads.Add(1)
			}
			if len(e.queue) == 0 && len(e.jobs) == 0 {
				// Idle: the cache's memory goes back once no request has
				// come for a while (a burst's clients come back at once).
				var release <-chan time.Time
				if bt.cache != nil {
					release = time.After(idleRelease)
				}
				select {
				case <-e.quit:
					return
				case <-e.wake:
				case <-release:
					bt.release()
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
			for len(bt.active)+len(fresh) < e.opts.MaxBatch {
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
		if len(fresh) == 0 && len(bt.active) == 0 {
			continue
		}
		w := e.cur.Load()
		err := guard(func() { e.step(w, &bt, fresh) })
		if err != nil {
			log.Printf("serve: %s: %v", e.Name, err)
			fail(bt.active, err)
			for _, s := range fresh {
				if s.slot < 0 && !s.done {
					fail([]*seq{s}, err)
				}
			}
			bt.release()
			e.active.Store(0)
		}
		if len(e.queue) > 0 {
			e.poke()
		}
	}
}

// job is work done on the model between decode steps (Do).
type job struct {
	ctx  context.Context
	fn   func(w *Weights)
	done chan error
}

// Do runs fn on the scheduler goroutine between two decode steps, with
// the weights new requests get, under tensor.NoGrad: a forward pass of its
// own (scoring a prompt, embeddings) that shares the model with the batch
// without running beside it. A panic in fn is its error; the engine goes
// on. It returns ctx's error if ctx ends first (fn may still run).
func (e *Engine) Do(ctx context.Context, fn func(w *Weights)) error {
	if e.closed.Load() {
		return ErrClosed
	}
	j := job{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case e.jobs <- j:
	default:
		return ErrQueueFull
	}
	e.poke()
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-e.done:
		select {
		case err := <-j.done:
			return err
		default:
			return ErrClosed
		}
	}
}

// runJobs runs the jobs waiting, on the weights of the batch (or the
// pending ones when the batch is empty).
func (e *Engine) runJobs() {
	for {
		var j job
		select {
		case j = <-e.jobs:
		default:
			return
		}
		if err := j.ctx.Err(); err != nil {
			j.done <- err
			continue
		}
		w := e.Weights()
		j.done <- guard(func() { tensor.NoGrad(func() { j.fn(w) }) })
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

// step decodes the active sequences by one token, then prefills fresh and
// gives each of them a slot.
func (e *Engine) step(w *Weights, bt *batch, fresh []*seq) {
	if bt.model != w.Model {
		bt.release()
		bt.model = w.Model
	}
	for _, s := range fresh {
		s.slot = -1
	}
	tensor.NoGrad(func() {
		if len(bt.active) > 0 {
			t := time.Now()
			e.decode(w, bt)
			e.decodeNanos.Add(int64(time.Since(t)))
		}
		t := time.Now()
		defer func() { e.prefillNanos.Add(int64(time.Since(t))) }()
		for _, group := range prefixGroups(w, fresh) {
			P := prefixLen(w, group[0])
			for len(group) > 0 {
				// As many as fit the prefill budget, at least one.
				n, L := 0, 0
				for n < len(group) {
					l := max(L, len(group[n].prompt))
					if n > 0 && (n+1)*(P+l) > e.opts.PrefillTokens {
						break
					}
					n, L = n+1, l
				}
				e.prefill(w, bt, group[:n])
				group = group[n:]
			}
		}
	})
	n := int64(len(bt.active))
	e.active.Store(n)
	if n > e.maxActive.Load() {
		e.maxActive.Store(n)
	}
}

// prefixLen is the positions of input embeddings before s's prompt: its
// image's (the text before the placeholder and the image's tokens), or
// the soft prompt's.
func prefixLen(w *Weights, s *seq) int {
	switch {
	case s.img != nil:
		return s.img.positions(w.VLM)
	case w.SoftPrompt != nil:
		return w.SoftPrompt.Weight.Dim(0)
	}
	return 0
}

// prefixGroups splits fresh sequences into groups with the same prefix
// length (one prefill batch shares its embeddings' length), in the order
// of each group's first; an image sequence the weights cannot take (a
// checkpoint swapped in since it was checked) ends with an error.
func prefixGroups(w *Weights, fresh []*seq) [][]*seq {
	var groups [][]*seq
	at := map[int]int{}
	for _, s := range fresh {
		if s.img != nil && (w.VLM == nil || len(s.img.Pixels) != w.VLM.PixelSize()) {
			s.done = true
			s.out <- Event{Done: true, Reason: "error", Err: errors.New("serve: the model was reloaded with weights that do not take this image; send the request again")}
			continue
		}
		P := prefixLen(w, s)
		i, ok := at[P]
		if !ok {
			i = len(groups)
			at[P] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], s)
	}
	return groups
}

// prefixEmbeds returns the input embeddings before seqs' prompts ([B, P,
// C], P the same for all; nil when none), in scope sc: each image's
// prefix computed alone, as generate.ImageText computes it, or the soft
// prompt's rows.
func prefixEmbeds(sc *tensor.Scope, w *Weights, seqs []*seq) *tensor.Tensor {
	if seqs[0].img == nil {
		if w.SoftPrompt == nil {
			return nil
		}
		return w.SoftPrompt.Batch(len(seqs))
	}
	rows := make([]*tensor.Tensor, len(seqs))
	for b, s := range seqs {
		img, err := w.VLM.ImageFeatures(sc, s.img.Pixels, 1)
		if err != nil {
			panic(err) // prefixGroups checked the size
		}
		rows[b] = w.VLM.Prefix(s.img.Before, img)
	}
	if len(rows) == 1 {
		return rows[0]
	}
	return tensor.Concat(0, rows...)
}

// reserve makes the batch cache hold at least slots sequences of need
// positions, growing it geometrically (slots up to MaxBatch, positions up
// to the model's context) so that growth is rare.
func (e *Engine) reserve(w *Weights, bt *batch, slots, need int) {
	ctx := w.Model.Config.Context
	if bt.cache == nil {
		n := min(e.opts.MaxBatch, max(slots, 8))
		bt.cache = w.Model.NewBatchCache(n, min(ctx, max(need, 64)), !e.opts.FloatKV)
		bt.used, bt.free = nil, nil
		bt.addSlots(n)
		return
	}
	c := bt.cache
	if slots <= c.Slots && need <= c.Cap {
		return
	}
	newSlots, newCap := c.Slots, c.Cap
	if slots > c.Slots {
		newSlots = min(e.opts.MaxBatch, max(slots, 2*c.Slots))
	}
	if need > c.Cap {
		newCap = min(ctx, max(need, 2*c.Cap))
	}
	used := 0
	for _, s := range bt.active {
		used = max(used, s.n)
	}
	c.Grow(newSlots, newCap, used)
	e.grows.Add(1)
	bt.addSlots(newSlots)
}

// addSlots makes slots up to n free. New slots go under the free ones, so
// the lowest are taken first.
func (bt *batch) addSlots(n int) {
	extra := make([]int, 0, n-len(bt.used))
	for i := n - 1; i >= len(bt.used); i-- {
		extra = append(extra, i)
	}
	bt.free = append(extra, bt.free...)
	bt.used = append(bt.used, make([]bool, n-len(bt.used))...)
}

// prefill gives each sequence of seqs a slot of the batch cache (which
// grows when it has no free slot or its slots are too short), runs their
// prompts as one left-padded batch straight into those slots, samples each
// one's first token, and adds those still running to the active ones; the
// others give their slot back.
func (e *Engine) prefill(w *Weights, bt *batch, seqs []*seq) {
	sc := tensor.NewScope()
	defer sc.Close()
	P := prefixLen(w, seqs[0]) // the embeddings' positions, before each prompt
	embeds := prefixEmbeds(sc, w, seqs)
	need := 0
	for _, s := range seqs {
		need = max(need, P+len(s.prompt)+1)
	}
	e.reserve(w, bt, len(bt.active)+len(seqs), need)
	prompts, slots := make([][]int, len(seqs)), make([]int32, len(seqs))
	for b, s := range seqs {
		slot := bt.free[len(bt.free)-1]
		bt.free = bt.free[:len(bt.free)-1]
		if bt.used[slot] {
			e.fills.Add(1)
		}
		bt.used[slot] = true
		prompts[b], slots[b] = s.prompt, int32(slot)
		s.n, s.rowIdx = P+len(s.prompt), b
	}
	lay, host := generate.Prefill(w.Model, bt.cache.Prefill(slots), prompts, embeds)
	e.prefills.Add(1)
	e.prefillTokens.Add(int64(len(seqs) * (lay.P + lay.L)))
	e.advance(w, seqs, host)
	// A sequence is placed (its slot set) only once its prefill is done:
	// the scheduler fails the unplaced ones of a prefill that panicked.
	for b, s := range seqs {
		if s.done {
			bt.free = append(bt.free, int(slots[b]))
			continue
		}
		s.slot = int(slots[b])
		bt.active = append(bt.active, s)
	}
}

// decode feeds every active sequence its last token in one batched step
// and frees the slots of those that end.
func (e *Engine) decode(w *Weights, bt *batch) {
	need := 0
	for _, s := range bt.active {
		need = max(need, s.n+1)
	}
	e.reserve(w, bt, len(bt.active), need)
	B := len(bt.active)
	ids := make([]int32, B)
	slot := make([]int32, B)
	pos := make([]int32, B)
	for b, s := range bt.active {
		ids[b], slot[b], pos[b] = int32(s.last), int32(s.slot), int32(s.n)
		s.n++
		s.rowIdx = b
	}
	bt.logits = generate.Step(w.Model, bt.cache.Rows(slot, pos), ids, pos, nil, bt.logits)
	e.steps.Add(1)
	keep := e.advance(w, bt.active, bt.logits)
	for _, s := range bt.active {
		if s.done {
			bt.free = append(bt.free, s.slot)
		}
	}
	bt.active = keep
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
			row := logits[b*V : (b+1)*V]
			s.next = s.samp.next(row, s.gen, w.Stop)
			if s.s.Logprobs && s.next >= 0 {
				s.lp, s.top = generate.Logprobs(row, s.next, s.s.TopLogprobs)
			}
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
		switch {
		case id == generate.Blocked:
			s.out <- Event{Done: true, Reason: "error", Err: generate.ErrBlocked}
			continue
		case id < 0:
			s.out <- Event{Done: true, Reason: "error", Err: errNoLogits}
			continue
		case slices.Contains(w.Stop, id):
			s.out <- Event{Done: true, Reason: "stop"}
			continue
		}
		s.gen++
		e.tokens.Add(1)
		s.out <- Event{Token: id, Logprob: s.lp, Top: s.top}
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
