package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/store"
)

// testServer is a server over the tiny models and a fresh SQLite store.
type testServer struct {
	*httptest.Server
	srv   *Server
	store *store.Store
	dsn   string
}

func newTestServer(t testing.TB, o Options, eo EngineOptions) *testServer {
	t.Helper()
	return newTestServerOn(t, "sqlite:"+filepath.Join(t.TempDir(), "labels.db"), o, eo)
}

// newTestServerOn is newTestServer with the store dsn.
func newTestServerOn(t testing.TB, dsn string, o Options, eo EngineOptions) *testServer {
	t.Helper()
	return newTestServerWith(t, dsn, o, eo, "llama", "gpt2")
}

// newTestServerWith is newTestServerOn serving the tiny models named (keys
// of modelDirs), each as "tiny-NAME".
func newTestServerWith(t testing.TB, dsn string, o Options, eo EngineOptions, models ...string) *testServer {
	t.Helper()
	var engines []*Engine
	for _, arch := range models {
		w, err := LoadWeights(cpu.New(), tinyDir(t, arch))
		if err != nil {
			t.Fatal(err)
		}
		e := NewEngine("tiny-"+arch, tinyDir(t, arch), w, eo)
		t.Cleanup(e.Close)
		engines = append(engines, e)
	}
	return serveEngines(t, dsn, o, engines...)
}

// serveEngines starts a server over engines and the store dsn.
func serveEngines(t testing.TB, dsn string, o Options, engines ...*Engine) *testServer {
	t.Helper()
	freshSQLite(t, dsn)
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if o.Logf == nil {
		o.Logf = t.Logf
	}
	srv := New(engines, st, o)
	ts := httptest.NewUnstartedServer(srv)
	ts.Config = srv.HTTPServer() // the timeouts golem serve runs with
	ts.Start()
	t.Cleanup(ts.Close)
	return &testServer{ts, srv, st, dsn}
}

// migrated is a new SQLite store's file, every migration applied, made
// once per test binary.
var migrated struct {
	sync.Once
	data []byte
	err  error
}

// freshSQLite writes migrated's store where dsn, a SQLite store's that
// does not exist yet, will open it: a test's new store, without applying
// the migrations again for each of the package's ~80 (store's tests apply
// them, on both databases). Other DSNs are left alone.
func freshSQLite(t testing.TB, dsn string) {
	t.Helper()
	path, ok := strings.CutPrefix(dsn, "sqlite:")
	if !ok || strings.HasPrefix(path, "//") {
		return
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return
	}
	migrated.Do(func() {
		p := filepath.Join(testDir, "migrated.db")
		st, err := store.Open(context.Background(), "sqlite:"+p)
		if err == nil {
			err = st.Close()
		}
		if err == nil {
			migrated.data, err = os.ReadFile(p)
		}
		if _, serr := os.Stat(p + "-wal"); err == nil && serr == nil {
			err = errors.New("a -wal file is left beside the closed store")
		}
		migrated.err = err
	})
	if migrated.err != nil {
		t.Fatal(migrated.err)
	}
	if err := os.WriteFile(path, migrated.data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// do sends a request and returns the status and the body.
func do(t testing.TB, c *http.Client, method, url string, body []byte, header map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestOpenAIChatAndCompletions(t *testing.T) {
	ts := newTestServer(t, Options{}, EngineOptions{})
	status, body := do(t, nil, "GET", ts.URL+"/v1/models", nil, nil)
	if status != 200 || !strings.Contains(string(body), `"tiny-llama"`) || !strings.Contains(string(body), `"tiny-gpt2"`) {
		t.Fatalf("models: %d %s", status, body)
	}
	req := `{"model":"tiny-llama","messages":[{"role":"user","content":"hello"}],"max_tokens":12,"temperature":0.7,"seed":3,"n":2}`
	status, body = do(t, nil, "POST", ts.URL+"/v1/chat/completions", []byte(req), nil)
	if status != 200 {
		t.Fatalf("chat: %d %s", status, body)
	}
	var res struct {
		Object  string
		Choices []struct {
			Index        int
			FinishReason string `json:"finish_reason"`
			Message      struct{ Role, Content string }
		}
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
			TotalTokens      int `json:"total_tokens"`
		}
	}
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if res.Object != "chat.completion" || len(res.Choices) != 2 || res.Choices[1].Index != 1 || res.Choices[0].Message.Role != "assistant" {
		t.Fatalf("chat answer: %s", body)
	}
	if res.Usage.PromptTokens < 5 || res.Usage.CompletionTokens < 1 || res.Usage.CompletionTokens > 24 ||
		res.Usage.TotalTokens != res.Usage.PromptTokens+res.Usage.CompletionTokens {
		t.Errorf("usage %+v", res.Usage)
	}
	// The same seed gives the same answer.
	_, body2 := do(t, nil, "POST", ts.URL+"/v1/chat/completions", []byte(req), nil)
	var res2 = res
	json.Unmarshal(body2, &res2)
	if res2.Choices[0].Message.Content != res.Choices[0].Message.Content {
		t.Errorf("seeded answers differ: %q and %q", res.Choices[0].Message.Content, res2.Choices[0].Message.Content)
	}

	// Streaming: the deltas add up to the answer; usage comes last.
	sreq := `{"model":"tiny-gpt2","prompt":"The king","max_tokens":10,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}`
	resp, err := http.Post(ts.URL+"/v1/completions", "application/json", strings.NewReader(sreq))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("stream content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	var text strings.Builder
	done, usage, chunks := false, 0, 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if line == "data: [DONE]" {
			done = true
			break
		}
		var ch struct {
			Choices []struct {
				Text string
			}
			Usage *struct {
				CompletionTokens int `json:"completion_tokens"`
			}
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ch); err != nil {
			t.Fatalf("chunk %q: %v", line, err)
		}
		chunks++
		for _, c := range ch.Choices {
			text.WriteString(c.Text)
		}
		if ch.Usage != nil {
			usage = ch.Usage.CompletionTokens
		}
	}
	if !done || chunks < 2 || usage < 1 {
		t.Fatalf("stream: done %v, %d chunks, usage %d", done, chunks, usage)
	}
	// Greedy, not streamed: the same text.
	status, body = do(t, nil, "POST", ts.URL+"/v1/completions", []byte(`{"model":"tiny-gpt2","prompt":"The king","max_tokens":10,"temperature":0}`), nil)
	var whole struct{ Choices []struct{ Text string } }
	json.Unmarshal(body, &whole)
	if status != 200 || len(whole.Choices) != 1 || whole.Choices[0].Text != text.String() {
		t.Errorf("streamed %q, whole %d %s", text.String(), status, body)
	}
}

func TestOllamaChatAndGenerate(t *testing.T) {
	ts := newTestServer(t, Options{}, EngineOptions{})
	status, body := do(t, nil, "GET", ts.URL+"/api/tags", nil, nil)
	if status != 200 || !strings.Contains(string(body), `"name":"tiny-llama:latest"`) {
		t.Fatalf("tags: %d %s", status, body)
	}
	resp, err := http.Post(ts.URL+"/api/chat", "application/json",
		strings.NewReader(`{"model":"tiny-llama:latest","messages":[{"role":"user","content":"hi"}],"options":{"num_predict":8,"seed":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	lines, last := 0, map[string]any{}
	for sc.Scan() {
		last = map[string]any{}
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines++
	}
	if lines < 2 || last["done"] != true || last["eval_count"] == nil || last["done_reason"] == nil {
		t.Fatalf("ollama chat stream: %d lines, last %v", lines, last)
	}
	status, body = do(t, nil, "POST", ts.URL+"/api/generate", []byte(`{"model":"tiny-gpt2","prompt":"Once","stream":false,"raw":true,"options":{"num_predict":5,"temperature":0}}`), nil)
	var g struct {
		Response  string
		Done      bool
		EvalCount int `json:"eval_count"`
	}
	json.Unmarshal(body, &g)
	if status != 200 || !g.Done || g.EvalCount < 1 || g.EvalCount > 5 {
		t.Fatalf("ollama generate: %d %s", status, body)
	}
}

// A client that goes away stops its generation.
func TestDisconnectStopsGeneration(t *testing.T) {
	ts := newTestServer(t, Options{}, EngineOptions{})
	e, _ := ts.srv.Engine("tiny-llama")
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/completions",
		strings.NewReader(`{"model":"tiny-llama","prompt":"x","max_tokens":1000,"min_tokens":1000,"stream":true}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	bufio.NewReader(resp.Body).ReadString('\n') // the first chunk arrived
	cancel()
	resp.Body.Close()
	for i := 0; i < 500 && e.Stats().Active > 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	st := e.Stats()
	if st.Active != 0 || st.Cancelled != 1 || st.Tokens >= 1000 {
		t.Fatalf("after the client left: %+v", st)
	}
}

func newJSONRequest(method, url string, body []byte) (*http.Request, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, err
}

func readAll(resp *http.Response) ([]byte, error) { return io.ReadAll(resp.Body) }

// newHTTPServer serves h on loopback for the test and returns its URL.
func newHTTPServer(t *testing.T, h http.Handler) string {
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}
