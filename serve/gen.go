package serve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"

	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/tokenizer"
)

// Limits on generation parameters.
const (
	maxN     = 16 // choices per request
	maxStops = 4  // stop strings per request
	maxStop  = 256
)

// sampleParams are the sampling parameters both APIs share, as given (nil
// when absent).
type sampleParams struct {
	Temperature *float64
	TopP        *float64
	TopK        *int
	MaxTokens   *int
	Seed        *int64
	N           *int
	Stop        []string
	MinTokens   *int
	// ClampMax clamps MaxTokens to what fits the context (Ollama's
	// num_predict) instead of refusing more.
	ClampMax bool
	// ZeroMax allows MaxTokens 0: nothing is generated (OpenAI's echo
	// of a prompt to score it).
	ZeroMax bool
	MaxName string // the field MaxTokens came from, for errors (default "max_tokens")
}

// genRequest is a checked generation request.
type genRequest struct {
	rec    *reqRecord // the request log's: tokens, time to the first
	e      *Engine
	w      *Weights
	prompt []int
	img    *ImagePrompt // an image before prompt (a vision-language model's)
	s      Sampling
	n      int
	stop   []string
	lp     logprobsRequest // what log-probabilities the answer carries
	got    [][]tokenLP     // collect's: each choice's tokens' log-probabilities
	tools  *toolSpec       // the calls in the answers are parsed (tools.go)
}

// apiError is a failure to answer with an HTTP status in the API's shape.
type apiError struct {
	status int
	code   string // OpenAI's code; "" for the default of the status
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "", fmt.Sprintf(format, args...)}
}

func (a apiStyle) failErr(w http.ResponseWriter, err error) {
	var fe *fieldError
	if errors.As(err, &fe) {
		a.failParam(w, http.StatusBadRequest, "", fe.path, fe.msg)
		return
	}
	var ae *apiError
	if errors.As(err, &ae) {
		a.fail(w, ae.status, ae.code, "%s", ae.msg)
		return
	}
	var pe *paramError
	if errors.As(err, &pe) {
		a.failParam(w, pe.status, pe.code, pe.param, pe.msg)
		return
	}
	a.fail(w, http.StatusInternalServerError, "", "%v", err)
}

// engineFor finds a model by id (Ollama's ":latest" tag is ignored, on
// the OpenAI API too, for names copied from Ollama's lists) and holds it,
// loaded, until the request has been answered.
func (s *Server) engineFor(r *http.Request, model string) (*Engine, error) {
	e, err := s.anyEngineFor(r, model)
	if err == nil && e.Weights().Model == nil {
		return nil, notText(e)
	}
	return e, err
}

// notText refuses to generate text with a model that does not: a CLIP
// model or a text-to-image one.
func notText(e *Engine) error {
	if e.Weights().Dalle != nil {
		return onlyImages(e.Name)
	}
	return onlyEmbeds(e.Name)
}

// onlyEmbeds refuses to generate with a CLIP model.
func onlyEmbeds(model string) error {
	return badRequest("model %s is a CLIP model: it only gives embeddings (/v1/embeddings, /api/embed)", model)
}

// onlyImages refuses text and embeddings from a text-to-image model.
func onlyImages(model string) error {
	return badRequest("model %s is an image model: use /v1/images/generations", model)
}

// embedEngineFor is engineFor for the embedding endpoints, which a CLIP
// model answers too.
func (s *Server) embedEngineFor(r *http.Request, model string) (*Engine, error) {
	e, err := s.anyEngineFor(r, model)
	if err == nil && e.Weights().Dalle != nil {
		return nil, onlyImages(e.Name)
	}
	return e, err
}

// anyEngineFor is engineFor for a model of any kind.
func (s *Server) anyEngineFor(r *http.Request, model string) (*Engine, error) {
	if model == "" {
		return nil, badRequest(`"model" missing; served models: %s`, strings.Join(s.modelNames(), ", "))
	}
	m, ok := s.model(model)
	if !ok {
		return nil, &apiError{http.StatusNotFound, "model_not_found",
			fmt.Sprintf("model %q not found; served models: %s", model, strings.Join(s.modelNames(), ", "))}
	}
	recordOf(r.Context()).setModel(m.name)
	return s.use(r.Context(), m)
}

// longestToken caches each tokenizer's longest token in bytes.
var longestToken sync.Map // *tokenizer.Tokenizer -> int

// overflows answers, without tokenizing them, texts of n bytes in all that
// cannot fit w's context (tooManyBytes).
func overflows(w *Weights, n int) error {
	return tooManyBytes(w.Tok, w.Context, n)
}

// tooManyBytes answers, without tokenizing them, texts of n bytes in all
// that cannot fit a context of ctx tokens of tok: every token stands for
// at most its longest token's bytes (4 times that allows for
// normalization), so a longer text has more tokens than the context.
// Tokenizing megabytes that are refused anyway costs seconds and
// gigabytes.
func tooManyBytes(tok *tokenizer.Tokenizer, ctx, n int) error {
	v, ok := longestToken.Load(tok)
	if !ok {
		longest := 1
		for id := range tok.VocabSize() {
			t, _ := tok.Token(id)
			longest = max(longest, len(t))
		}
		v, _ = longestToken.LoadOrStore(tok, longest)
	}
	if n > 4*ctx*v.(int) {
		return &apiError{http.StatusBadRequest, "context_length_exceeded",
			fmt.Sprintf("this model's maximum context length is %d tokens, and the prompt's %d bytes are far more than that", ctx, n)}
	}
	return nil
}

// chatPrompt renders messages with the model's chat template.
func chatPrompt(w *Weights, msgs []tokenizer.Message) ([]int, error) {
	if w.Model == nil {
		return nil, badRequest("a CLIP model only gives embeddings, a text-to-image model only images")
	}
	if w.VLM != nil { // its own format (the web app's chat and samples come here)
		plain := make([]tokenizer.Message, len(msgs))
		for i, m := range msgs {
			plain[i] = tokenizer.Message{Role: m.Role, Content: imageText(m.Content, false)}
		}
		ids, _, err := vlmPrompt(w, plain, nil)
		return ids, err
	}
	if len(msgs) == 0 {
		return nil, badRequest(`"messages" is empty`)
	}
	n := 0
	for _, m := range msgs {
		n += len(m.Content)
	}
	if err := overflows(w, n); err != nil {
		return nil, err
	}
	for i := range msgs {
		if err := checkRole(i, &msgs[i].Role, false); err != nil {
			return nil, err
		}
	}
	if !w.Tok.HasChatTemplate() {
		return nil, badRequest("this model's tokenizer has no chat template (no %s token); use the completions endpoint", tokenizer.ImStart)
	}
	ids, _, err := w.Tok.RenderChat(msgs, true)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	return ids, nil
}

// checkRole checks message i's role (a "developer" message is a system
// one; "tool" is a role only in conversations with tools).
func checkRole(i int, role *string, tools bool) error {
	switch *role {
	case "system", "user", "assistant":
	case "tool":
		if !tools {
			return badRequest(`messages[%d]: role "tool" without tools or calls in the conversation`, i)
		}
	case "developer":
		*role = "system"
	case "":
		return badRequest(`messages[%d]: "role" missing`, i)
	default:
		if tools {
			return badRequest(`messages[%d]: role %q is not "system", "user", "assistant" or "tool"`, i, *role)
		}
		return badRequest(`messages[%d]: role %q is not "system", "user" or "assistant"`, i, *role)
	}
	if *role == "system" && i != 0 {
		return badRequest(`messages[%d]: a system message must come first`, i)
	}
	return nil
}

// textPrompt encodes a plain-text prompt (special tokens' text included).
func textPrompt(w *Weights, text string) ([]int, error) {
	if err := overflows(w, len(text)); err != nil {
		return nil, err
	}
	ids := w.Tok.EncodeWithSpecial(text)
	if len(ids) == 0 {
		id, ok := w.Tok.SpecialID(tokenizer.EndOfText)
		if !ok {
			return nil, badRequest(`"prompt" is empty`)
		}
		ids = []int{id}
	}
	return ids, nil
}

// newGen checks the parameters against the model and fills defaults.
// defTemp is the API's default temperature.
func newGen(e *Engine, w *Weights, prompt []int, p sampleParams, defTemp float64) (*genRequest, error) {
	return newImageGen(e, w, nil, prompt, p, defTemp)
}

// newImageGen is newGen for a prompt after an image (img; nil: none).
func newImageGen(e *Engine, w *Weights, img *ImagePrompt, prompt []int, p sampleParams, defTemp float64) (*genRequest, error) {
	if w.Model == nil {
		return nil, notText(e)
	}
	ctx := w.Context
	g := &genRequest{e: e, w: w, img: img, prompt: prompt, n: 1, s: Sampling{Temperature: defTemp, TopP: 1}}
	if n := g.promptTokens(); n >= ctx {
		return nil, &apiError{http.StatusBadRequest, "context_length_exceeded",
			fmt.Sprintf("this model's maximum context length is %d tokens, and the prompt has %d; no room for an answer", ctx, n)}
	}
	if p.Temperature != nil {
		if t := *p.Temperature; t < 0 || t > 2 {
			return nil, badRequest(`"temperature" %g is not between 0 and 2`, t)
		}
		g.s.Temperature = *p.Temperature
	}
	if p.TopP != nil {
		if v := *p.TopP; v <= 0 || v > 1 {
			return nil, badRequest(`"top_p" %g is not in (0, 1]`, v)
		}
		g.s.TopP = *p.TopP
	}
	if p.TopK != nil {
		if *p.TopK < 0 {
			return nil, badRequest(`"top_k" %d is negative`, *p.TopK)
		}
		g.s.TopK = *p.TopK
	}
	room := ctx - g.promptTokens()
	g.s.MaxTokens = room
	if p.MaxTokens != nil {
		m := *p.MaxTokens
		switch {
		case m == 0 && p.ZeroMax:
		case m < 1:
			return nil, badRequest(`%q %d is less than 1`, cmp.Or(p.MaxName, "max_tokens"), m)
		case m > room && p.ClampMax:
			m = room
		case m > room:
			return nil, &apiError{http.StatusBadRequest, "context_length_exceeded",
				fmt.Sprintf("this model's maximum context length is %d tokens; the prompt has %d and %d more were requested (at most %d fit)", ctx, g.promptTokens(), m, room)}
		}
		g.s.MaxTokens = m
	}
	if p.MinTokens != nil {
		if m := *p.MinTokens; m < 0 || m > g.s.MaxTokens {
			return nil, badRequest(`"min_tokens" %d is not between 0 and max_tokens (%d)`, m, g.s.MaxTokens)
		}
		g.s.MinTokens = *p.MinTokens
	}
	if p.N != nil {
		if n := *p.N; n < 1 || n > maxN {
			return nil, badRequest(`"n" %d is not between 1 and %d`, n, maxN)
		}
		if q := e.opts.Queue; *p.N > q {
			// Its n sequences could never all wait in the queue: a 429
			// would be answered for ever.
			return nil, badRequest(`"n" %d is more than the %d requests this server queues per model (golem serve --queue)`, *p.N, q)
		}
		g.n = *p.N
	}
	if p.Seed != nil {
		g.s.Seed = uint64(*p.Seed)
	} else {
		g.s.Seed = rand.Uint64()
	}
	if len(p.Stop) > maxStops {
		return nil, badRequest(`"stop" has %d strings; at most %d`, len(p.Stop), maxStops)
	}
	for _, st := range p.Stop {
		if len(st) > maxStop {
			return nil, badRequest(`"stop" string longer than %d bytes`, maxStop)
		}
		if st != "" {
			g.stop = append(g.stop, st)
		}
	}
	return g, nil
}

// promptTokens is the positions the prompt takes: its tokens, and with an
// image the text before it and the image's tokens.
func (g *genRequest) promptTokens() int {
	if g.img == nil {
		return len(g.prompt)
	}
	return len(g.prompt) + g.img.positions(g.w.VLM)
}

// choiceEvent is a piece of one choice's answer.
type choiceEvent struct {
	index  int
	delta  string
	done   bool
	reason string // "stop" or "length" when done
	tokens int    // tokens generated, when done
	err    error
	lps    []tokenLP // the log-probabilities of the tokens since the last event (logprobs requested)
}

// start submits the request's n sequences and returns their text deltas,
// merged, as they come; each choice ends with a done event. Cancelling ctx
// stops them all.
func (g *genRequest) start(ctx context.Context) (<-chan choiceEvent, error) {
	g.rec = recordOf(ctx)
	g.rec.setPrompt(g.promptTokens())
	out := make(chan choiceEvent, 64)
	if g.s.MaxTokens == 0 { // nothing to generate (echo)
		out = make(chan choiceEvent, g.n)
		for i := range g.n {
			out <- choiceEvent{index: i, done: true, reason: "length"}
		}
		return out, nil
	}
	type sub struct {
		ch     <-chan Event
		cancel context.CancelFunc
	}
	subs := make([]sub, g.n)
	for i := range subs {
		cctx, cancel := context.WithCancel(ctx)
		s := g.s
		s.Seed += uint64(i)
		ch, err := g.e.SubmitImage(cctx, g.img, g.prompt, s)
		if err != nil {
			cancel()
			for _, p := range subs[:i] {
				p.cancel()
			}
			return nil, engineErr(err)
		}
		subs[i] = sub{ch, cancel}
	}
	for i, p := range subs {
		go func() {
			defer p.cancel()
			send := func(ev choiceEvent) bool {
				select {
				case out <- ev:
					return true
				case <-ctx.Done():
					return false
				}
			}
			st := generate.NewStream(g.w.Tok, g.stop)
			n := 0
			var lps []tokenLP // a held token's log-probability goes with its text
			for ev := range p.ch {
				if ev.Done {
					reason := ev.Reason
					if st.Stopped {
						reason = "stop"
					}
					if d := st.Flush(); d != "" {
						if !send(choiceEvent{index: i, delta: d, lps: lps}) {
							return
						}
						lps = nil
					}
					var err error
					if reason == "error" {
						err = ev.Err
					}
					send(choiceEvent{index: i, done: true, reason: reason, tokens: n, err: err, lps: lps})
					return
				}
				if st.Stopped {
					continue
				}
				n++
				g.rec.token()
				if g.s.Logprobs {
					lps = append(lps, tokenLP{id: ev.Token, lp: ev.Logprob, top: ev.Top})
				}
				if d := st.Add(ev.Token); d != "" {
					if !send(choiceEvent{index: i, delta: d, lps: lps}) {
						return
					}
					lps = nil
				}
				if st.Stopped {
					p.cancel()
				}
			}
		}()
	}
	return out, nil
}

// engineErr words an engine's refusal with its HTTP status: 429 when its
// queue is full, 503 when it is shutting down (or being unloaded).
func engineErr(err error) error {
	switch {
	case errors.Is(err, ErrQueueFull):
		return &apiError{http.StatusTooManyRequests, "", err.Error()}
	case errors.Is(err, ErrClosed):
		return &apiError{http.StatusServiceUnavailable, "", err.Error()}
	}
	return err
}

// collect runs the request to the end and returns each choice's text,
// finish reason and the tokens generated in all.
func (g *genRequest) collect(ctx context.Context) ([]string, []string, int, error) {
	ch, err := g.start(ctx)
	if err != nil {
		return nil, nil, 0, err
	}
	texts := make([]strings.Builder, g.n)
	reasons := make([]string, g.n)
	g.got = make([][]tokenLP, g.n)
	total, left := 0, g.n
	for left > 0 {
		select {
		case ev := <-ch:
			if ev.err != nil {
				return nil, nil, 0, ev.err
			}
			texts[ev.index].WriteString(ev.delta)
			g.got[ev.index] = append(g.got[ev.index], ev.lps...)
			if ev.done {
				reasons[ev.index] = ev.reason
				total += ev.tokens
				left--
			}
		case <-ctx.Done():
			return nil, nil, 0, ctx.Err()
		}
	}
	out := make([]string, g.n)
	for i := range texts {
		out[i] = texts[i].String()
	}
	return out, reasons, total, nil
}
