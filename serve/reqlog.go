package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// RequestLog is one request as the request log has it: a line per request
// once it is answered (a stream once it ends).
type RequestLog struct {
	Time   time.Time // when it arrived
	ID     string    // also the answer's X-Request-Id header
	Method string
	Path   string // as sent, escaped
	Model  string // "" when none was found
	// PromptTokens and AnswerTokens are the prompt's tokens and those
	// generated (all choices); TTFT is from the request's arrival to the
	// first generated token (0 when none was).
	PromptTokens, AnswerTokens int
	TTFT                       time.Duration
	Total                      time.Duration // until the answer was written
	Status                     int
}

// Text is the log line: `request ID METHOD PATH model=... prompt=N
// answer=N ttft=DUR total=DUR status=N`.
func (l RequestLog) Text() string {
	model := l.Model
	if model == "" {
		model = "-"
	}
	return fmt.Sprintf("serve: request %s %s %s model=%s prompt=%d answer=%d ttft=%s total=%s status=%d",
		l.ID, l.Method, l.Path, model, l.PromptTokens, l.AnswerTokens, roundDur(l.TTFT), roundDur(l.Total), l.Status)
}

// JSON is the log line as one JSON object (--log-format json).
func (l RequestLog) JSON() []byte {
	b, _ := json.Marshal(struct {
		Time         string  `json:"time"`
		ID           string  `json:"id"`
		Method       string  `json:"method"`
		Path         string  `json:"path"`
		Model        string  `json:"model"`
		PromptTokens int     `json:"prompt_tokens"`
		AnswerTokens int     `json:"answer_tokens"`
		TTFTMs       float64 `json:"ttft_ms"`
		TotalMs      float64 `json:"total_ms"`
		Status       int     `json:"status"`
	}{l.Time.UTC().Format(time.RFC3339Nano), l.ID, l.Method, l.Path, l.Model, l.PromptTokens, l.AnswerTokens,
		ms(l.TTFT), ms(l.Total), l.Status})
	return b
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func roundDur(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}

// reqRecord gathers a request's log line while it is answered.
type reqRecord struct {
	start time.Time
	id    string

	mu     sync.Mutex
	model  string
	prompt int
	answer atomic.Int64 // tokens generated
	first  atomic.Int64 // ns from start to the first token; 0: none yet
	held   held         // the models the request holds
}

type recordKey struct{}

// recordOf returns the request's record (a throwaway one outside
// ServeHTTP).
func recordOf(ctx context.Context) *reqRecord {
	if r, ok := ctx.Value(recordKey{}).(*reqRecord); ok {
		return r
	}
	return &reqRecord{start: time.Now()}
}

func (r *reqRecord) setModel(name string) {
	r.mu.Lock()
	r.model = name
	r.mu.Unlock()
}

func (r *reqRecord) setPrompt(tokens int) {
	r.mu.Lock()
	r.prompt = tokens
	r.mu.Unlock()
}

// token counts a generated token, and the time to the first.
func (r *reqRecord) token() { r.tokens(1) }

// tokens counts n generated tokens (an image's, for a request for
// images), and the time to the first.
func (r *reqRecord) tokens(n int) {
	r.answer.Add(int64(n))
	if r.first.Load() == 0 {
		r.first.CompareAndSwap(0, max(int64(time.Since(r.start)), 1))
	}
}

func (r *reqRecord) log(req *http.Request, status int) RequestLog {
	r.mu.Lock()
	defer r.mu.Unlock()
	path := req.URL.EscapedPath()
	if len(path) > 200 {
		path = path[:200] + "..."
	}
	return RequestLog{Time: r.start, ID: r.id, Method: req.Method, Path: path, Model: r.model,
		PromptTokens: r.prompt, AnswerTokens: int(r.answer.Load()), TTFT: time.Duration(r.first.Load()),
		Total: time.Since(r.start), Status: status}
}
