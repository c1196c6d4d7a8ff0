package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/store"
)

// newLazyServer serves models loaded on their first request, as golem
// serve does; loads counts the loads.
func newLazyServer(t *testing.T, o Options, specs ...ModelSpec) (*testServer, *atomic.Int64) {
	t.Helper()
	loads := &atomic.Int64{}
	be := cpu.New()
	o.Models = specs
	o.Load = func(dir string) (*Weights, error) {
		loads.Add(1)
		return LoadWeights(be, dir)
	}
	if o.Logf == nil {
		o.Logf = t.Logf
	}
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "labels.db")
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := New(nil, st, o)
	t.Cleanup(srv.Close)
	ts := httptest.NewUnstartedServer(srv)
	ts.Config = srv.HTTPServer()
	ts.Start()
	t.Cleanup(ts.Close)
	return &testServer{ts, srv, st, dsn}, loads
}

// modelsFolder copies the tiny models named into one folder, as
// `golem serve --models DIR` reads it.
func modelsFolder(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.CopyFS(filepath.Join(dir, n), os.DirFS(tinyDir(t, n))); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a model"), 0o644)
	os.Mkdir(filepath.Join(dir, "empty"), 0o755)
	// Files written just now: a load waits for them to settle (0.5 s).
	old := time.Now().Add(-time.Minute)
	filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Chtimes(p, old, old) })
	return dir
}

type psModel struct {
	Name      string
	Digest    string
	ExpiresAt time.Time `json:"expires_at"`
	Details   struct{ Family string }
}

func listModels(t *testing.T, url string) map[string]psModel {
	t.Helper()
	status, body := do(t, nil, "GET", url, nil, nil)
	var res struct{ Models []psModel }
	if status != 200 || json.Unmarshal(body, &res) != nil {
		t.Fatalf("%s: %d %s", url, status, body)
	}
	out := map[string]psModel{}
	for _, m := range res.Models {
		out[m.Name] = m
	}
	return out
}

// waitPs polls /api/ps until cond holds (a request's model is let go just
// after its answer is written).
func waitPs(t *testing.T, url, what string, cond func(map[string]psModel) bool) map[string]psModel {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ps := listModels(t, url+"/api/ps")
		if cond(ps) {
			return ps
		}
		if time.Now().After(end) {
			t.Fatalf("%s: /api/ps %+v", what, ps)
		}
	}
}

// Several models from one folder: listed before they are loaded, each
// loaded on its first request with its own engine, in /api/ps until its
// keep-alive runs out (the server's, or a request's keep_alive: a
// duration, 0 at once, negative for ever), then loaded again when asked.
func TestSeveralModels(t *testing.T) {
	clockBound(t)
	specs, err := ModelDirs(modelsFolder(t, "llama", "gpt2"))
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 || specs[0].Name != "gpt2" || specs[1].Name != "llama" {
		t.Fatalf("ModelDirs: %+v", specs)
	}
	ts, loads := newLazyServer(t, Options{}, specs...)
	if ps := listModels(t, ts.URL+"/api/ps"); len(ps) != 0 || loads.Load() != 0 {
		t.Fatalf("loaded before any request: %+v, %d loads", ps, loads.Load())
	}
	tags := listModels(t, ts.URL+"/api/tags")
	if len(tags) != 2 || tags["llama:latest"].Details.Family != "llama" || tags["gpt2:latest"].Details.Family != "gpt2" {
		t.Fatalf("tags: %+v", tags)
	}
	status, body := do(t, nil, "GET", ts.URL+"/v1/models", nil, nil)
	if status != 200 || !strings.Contains(string(body), `"id":"gpt2"`) || !strings.Contains(string(body), `"id":"llama"`) {
		t.Fatalf("/v1/models: %d %s", status, body)
	}

	chat := func(model string) {
		t.Helper()
		body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"hi"}],"max_tokens":3}`, model)
		if status, b := do(t, nil, "POST", ts.URL+"/v1/chat/completions", []byte(body), nil); status != 200 {
			t.Fatalf("chat %s: %d %s", model, status, b)
		}
	}
	chat("llama")
	ps := waitPs(t, ts.URL, "llama after a request", func(ps map[string]psModel) bool { return len(ps) == 1 })
	if exp := time.Until(ps["llama:latest"].ExpiresAt); exp < 4*time.Minute || exp > 5*time.Minute {
		t.Errorf("llama expires in %v, want the default 5m", exp)
	}
	if loads.Load() != 1 {
		t.Errorf("%d loads, want 1", loads.Load())
	}
	if tags := listModels(t, ts.URL+"/api/tags"); len(tags["llama:latest"].Digest) != 64 || ps["llama:latest"].Digest != tags["llama:latest"].Digest {
		t.Errorf("digest: tags %q, ps %q", tags["llama:latest"].Digest, ps["llama:latest"].Digest)
	}

	// A request's keep_alive: 1s, then the model goes.
	gen := func(model, keep string) []byte {
		t.Helper()
		body := fmt.Sprintf(`{"model":%q,"prompt":"hello","stream":false,"options":{"num_predict":3},"keep_alive":%s}`, model, keep)
		status, b := do(t, nil, "POST", ts.URL+"/api/generate", []byte(body), nil)
		if status != 200 {
			t.Fatalf("generate %s: %d %s", model, status, b)
		}
		return b
	}
	gen("gpt2", `"1s"`)
	ps = listModels(t, ts.URL+"/api/ps")
	if exp := time.Until(ps["gpt2:latest"].ExpiresAt); len(ps) != 2 || exp > time.Second {
		t.Errorf("after keep_alive 1s: %+v (expires in %v)", ps, exp)
	}
	waitPs(t, ts.URL, "gpt2 after its keep_alive of 1s", func(ps map[string]psModel) bool { _, ok := ps["gpt2:latest"]; return !ok && len(ps) == 1 })

	// keep_alive 0 unloads as soon as the request is answered; negative
	// keeps it for ever; the model comes back on the next request.
	gen("llama", "0")
	waitPs(t, ts.URL, "keep_alive 0", func(ps map[string]psModel) bool { return len(ps) == 0 })
	if _, ok := ts.srv.Engine("llama"); ok {
		t.Error("llama's engine is still there after keep_alive 0")
	}
	if b := gen("llama", `"-1m"`); !strings.Contains(string(b), `"done":true`) {
		t.Fatal(string(b))
	}
	ps = waitPs(t, ts.URL, "keep_alive -1m", func(ps map[string]psModel) bool { return len(ps) == 1 })
	if ps["llama:latest"].ExpiresAt.Year() < 2300 {
		t.Errorf("keep_alive -1m expires at %v, want never", ps["llama:latest"].ExpiresAt)
	}
	if loads.Load() != 3 {
		t.Errorf("%d loads, want 3 (llama, gpt2, llama again)", loads.Load())
	}
	// A request without keep_alive sets the server's again, as Ollama.
	chat("llama")
	ps = waitPs(t, ts.URL, "the default again", func(ps map[string]psModel) bool { return ps["llama:latest"].ExpiresAt.Year() < 2300 })
	if exp := time.Until(ps["llama:latest"].ExpiresAt); exp < 4*time.Minute || exp > 5*time.Minute {
		t.Errorf("after a request without keep_alive, llama expires in %v, want 5m", exp)
	}
	// Nothing to generate and keep_alive 0: done_reason "unload", and it is.
	status, body = do(t, nil, "POST", ts.URL+"/api/chat", []byte(`{"model":"llama","keep_alive":0}`), nil)
	if status != 200 || !strings.Contains(string(body), `"done_reason":"unload"`) {
		t.Errorf("keep_alive 0 without messages: %d %s", status, body)
	}
	waitPs(t, ts.URL, "unload without messages", func(ps map[string]psModel) bool { return len(ps) == 0 })
}

// Concurrent requests to a model that keep_alive 0 unloads again and
// again: every one is answered (the model is never unloaded under a
// request; one that comes while it goes loads it again), none hangs, and
// the race detector finds nothing (go test -race).
func TestUnloadUnderLoad(t *testing.T) {
	ts, loads := newLazyServer(t, Options{}, ModelSpec{"m", tinyDir(t, "gpt2")})
	bodies := []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":4}`},
		{"/api/generate", `{"model":"m","prompt":"hello","stream":false,"options":{"num_predict":4},"keep_alive":0}`},
		{"/v1/completions", `{"model":"m","prompt":"hello","max_tokens":2,"stream":true}`},
		{"/api/embed", `{"model":"m:latest","input":["a","b c"],"keep_alive":0}`},
		{"/v1/completions", `{"model":"m","prompt":"hello","max_tokens":0,"echo":true,"logprobs":2}`},
	}
	client := &http.Client{Timeout: 60 * time.Second}
	var wg sync.WaitGroup
	var failed atomic.Int64
	for g := range 6 {
		wg.Go(func() {
			for i := range 8 {
				b := bodies[(g+i)%len(bodies)]
				req, _ := http.NewRequest("POST", ts.URL+b.path, strings.NewReader(b.body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("%s: %v", b.path, err)
					failed.Add(1)
					return
				}
				out, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || err != nil || strings.Contains(string(out), `"error"`) {
					t.Errorf("%s %s: %d %v %s", b.path, b.body, resp.StatusCode, err, out)
					failed.Add(1)
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("requests hung while the model was unloaded and loaded")
	}
	storm := loads.Load()
	// Whether the storm unloaded the model depends on which request was
	// last out when none were left (on a fast machine the six goroutines
	// may never all be idle at once): a keep_alive 0 request alone must,
	// and the next request loads the model again.
	for _, i := range []int{1, 0} {
		b := bodies[i]
		resp, err := client.Post(ts.URL+b.path, "application/json", strings.NewReader(b.body))
		if err != nil {
			t.Fatalf("%s: %v", b.path, err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s after the storm: %d %s", b.path, resp.StatusCode, out)
		}
	}
	if loads.Load() < storm+1 {
		t.Errorf("%d loads after the storm's %d: keep_alive 0 never unloaded the model", loads.Load(), storm)
	}
	t.Logf("48 requests, %d loads in the storm, %d failed", storm, failed.Load())
}

// golem serve --models DIR: a folder without models, or with a model
// whose config.json is bad, stops the server at start with an error
// naming the folder, or the file and field.
func TestModelsDirErrors(t *testing.T) {
	empty := t.TempDir()
	os.Mkdir(filepath.Join(empty, "notes"), 0o755)
	err := Run(context.Background(), Config{ModelsDir: empty, DB: "none", Backend: cpu.New(), Addr: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "no model folder") || !strings.Contains(err.Error(), empty) {
		t.Errorf("an empty --models folder: %v", err)
	}
	dir := modelsFolder(t, "llama", "gpt2")
	cfg := filepath.Join(dir, "gpt2", "config.json")
	if err := os.WriteFile(cfg, []byte(`{"model_type": "gpt2", "n_layer": -3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), Config{ModelsDir: dir, DB: "none", Backend: cpu.New(), Addr: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), cfg) {
		t.Errorf("a bad config.json in --models: %v, want an error naming %s", err, cfg)
	}
}
