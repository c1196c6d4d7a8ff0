package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golem-ml/golem/backend/cpu"
)

// One log line per request, once it is answered: its id (the answer's
// X-Request-Id), route, model, prompt and answer tokens (the usage the
// client got), time to the first token, total time and status.
func TestRequestLog(t *testing.T) {
	var mu sync.Mutex
	logs := map[string]RequestLog{}
	o := Options{LogRequest: func(l RequestLog) {
		mu.Lock()
		logs[l.ID] = l
		mu.Unlock()
	}}
	ts := newTestServerWith(t, "sqlite:"+filepath.Join(t.TempDir(), "r.db"), o, EngineOptions{}, "llama", "gpt2")
	// logged returns the line of the request answered with header h (it
	// is written just after the answer).
	logged := func(h http.Header) RequestLog {
		t.Helper()
		id := h.Get("X-Request-Id")
		for range 200 {
			mu.Lock()
			l, ok := logs[id]
			mu.Unlock()
			if ok {
				return l
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("no log line for request %q", id)
		return RequestLog{}
	}
	post := func(path, body string) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.Post(ts.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp, b.Bytes()
	}

	// OpenAI, two choices, not streamed: the tokens are the usage's.
	resp, b := post("/v1/chat/completions", `{"model":"tiny-llama","messages":[{"role":"user","content":"hi"}],"max_tokens":6,"n":2,"min_tokens":6}`)
	var u struct{ Usage usage }
	json.Unmarshal(b, &u)
	l := logged(resp.Header)
	if l.Method != "POST" || l.Path != "/v1/chat/completions" || l.Model != "tiny-llama" || l.Status != 200 ||
		l.PromptTokens != u.Usage.PromptTokens || l.AnswerTokens != 12 || u.Usage.CompletionTokens != 12 ||
		l.TTFT <= 0 || l.TTFT > l.Total || len(l.ID) != 16 {
		t.Errorf("chat: log %+v, usage %+v", l, u.Usage)
	}
	// Ollama, streamed: the last line's counts.
	resp, b = post("/api/generate", `{"model":"tiny-gpt2:latest","prompt":"Once","raw":true,"options":{"num_predict":5}}`)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var last struct {
		Prompt int `json:"prompt_eval_count"`
		Eval   int `json:"eval_count"`
	}
	json.Unmarshal([]byte(lines[len(lines)-1]), &last)
	if l := logged(resp.Header); l.Model != "tiny-gpt2" || l.PromptTokens != last.Prompt || l.AnswerTokens != last.Eval || l.TTFT <= 0 || l.Status != 200 {
		t.Errorf("ollama stream: log %+v, answer %+v", l, last)
	}
	// Refused requests are logged with their status and no tokens.
	for _, c := range []struct {
		path, body string
		status     int
		model      string
	}{
		{"/v1/chat/completions", `{"model":"gpt-9","messages":[]}`, 404, ""},
		{"/v1/chat/completions", `{"model":"tiny-llama","messages":[{"role":"user","content":"hi"}],"functions":[{}]}`, 400, ""},
		{"/api/chat", `{"model":"tiny-llama","messages":[{"role":"user","content":"hi"}],"options":{"num_predict":0}}`, 400, "tiny-llama"},
	} {
		resp, _ := post(c.path, c.body)
		if l := logged(resp.Header); l.Status != c.status || l.Model != c.model || l.AnswerTokens != 0 || l.TTFT != 0 {
			t.Errorf("%s %s: log %+v", c.path, c.body, l)
		}
	}
	if l := (RequestLog{ID: "abc", Method: "GET", Path: "/api/tags", Status: 200, Total: 1500 * time.Microsecond}).Text(); l != "serve: request abc GET /api/tags model=- prompt=0 answer=0 ttft=0s total=1.5ms status=200" {
		t.Errorf("text line %q", l)
	}
}

// golem serve --log-format json writes every line as one JSON object.
func TestLogFormatJSON(t *testing.T) {
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Models: []string{tinyDir(t, "gpt2")}, Addr: "127.0.0.1:0", DB: "none", Watch: -1, Backend: cpu.New(),
			LogFormat: "json", Out: &out, Ready: func(a string) { ready <- a }})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+addr+"/v1/completions", "application/json", strings.NewReader(`{"model":"tiny-gpt2","prompt":"hi","max_tokens":3,"min_tokens":3}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	out.waitFor(t, id, 1, 2*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var found bool
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m["time"] == nil {
			t.Fatalf("not a JSON line with a time: %q (%v)", sc.Text(), err)
		}
		if m["id"] == id {
			found = true
			if m["path"] != "/v1/completions" || m["model"] != "tiny-gpt2" || m["answer_tokens"] != 3.0 || m["status"] != 200.0 ||
				m["prompt_tokens"].(float64) < 1 || m["ttft_ms"].(float64) <= 0 || m["total_ms"].(float64) < m["ttft_ms"].(float64) {
				t.Errorf("request line %s", sc.Text())
			}
		}
	}
	if !found {
		t.Fatalf("no line for request %s in:\n%s", id, out.String())
	}
	if err := Run(context.Background(), Config{Models: []string{tinyDir(t, "gpt2")}, Backend: cpu.New(), LogFormat: "xml"}); err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Errorf("--log-format xml: %v", err)
	}
}
