package serve

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/backend/cpu"
)

// countingBackend is a CPU backend seen only through backend.Backend (none
// of its optional abilities), counting the buffers allocated on it.
type countingBackend struct {
	backend.Backend
	allocs atomic.Int64
}

func (c *countingBackend) Alloc(n int, zero bool) backend.Buffer {
	c.allocs.Add(1)
	return c.Backend.Alloc(n, zero)
}

// The models run on the backend Run's caller gives (golem serve opens it
// from --device): their weights are loaded onto it, answers are decoded on
// it (here through Backend's methods alone, as on a backend with no
// optional ability), and a reloaded checkpoint goes onto it again. Without
// one, Run says which field is missing.
func TestServeOnCallersBackend(t *testing.T) {
	dir := tinyDir(t, "llama")
	err := Run(context.Background(), Config{Models: []string{dir}, DB: "none"})
	if want := "serve: Config.Backend is nil: open one with backend.Open"; err == nil || err.Error() != want {
		t.Fatalf("Run without a backend: %v; want %q", err, want)
	}

	be := &countingBackend{Backend: cpu.New()}
	postCompletion(t, Config{Models: []string{"tiny=" + dir}, Backend: be}, func() {
		if n := be.allocs.Load(); n != 0 {
			t.Fatalf("%d allocations before the first request: models load on their first request", n)
		}
	})
	if be.allocs.Load() == 0 {
		t.Error("the model was not loaded, nor its answer decoded, on the caller's backend")
	}
	reloaded(t, be, dir, false, func(w *Weights, when string) {
		if got := w.Model.Embed.Weight.Backend(); got != backend.Backend(be) {
			t.Fatalf("%s: the checkpoint is on %T %p, not the engine's backend %p", when, got, got, be)
		}
	})
}

// postCompletion runs a server of config c on a free local port, without a
// database or reloads, and posts it one greedy completion of the model
// "tiny" once it listens (and before has run), which must answer with one
// choice; then it stops the server.
func postCompletion(t *testing.T, c Config, before func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr, done := make(chan string, 1), make(chan error, 1)
	c.Addr, c.DB, c.Watch, c.Ready = "127.0.0.1:0", "none", -1, func(a string) { addr <- a }
	go func() { done <- Run(ctx, c) }()
	var url string
	select {
	case url = <-addr:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	if before != nil {
		before()
	}
	resp, err := http.Post("http://"+url+"/v1/completions", "application/json",
		strings.NewReader(`{"model":"tiny","prompt":"hello","max_tokens":4,"temperature":0}`))
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Choices []struct{ Text string } }
	err = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(out.Choices) != 1 {
		t.Fatalf("completion: %s, %+v, %v", resp.Status, out, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// reloaded loads the model folder dir onto be (with bf16, its matrices as
// bfloat16), checks the weights, reloads them in an engine and checks
// them again.
func reloaded(t *testing.T, be backend.Backend, dir string, bf16 bool, check func(w *Weights, when string)) {
	t.Helper()
	w, err := LoadWeightsAs(be, dir, bf16)
	if err != nil {
		t.Fatal(err)
	}
	check(w, "loaded")
	e := NewEngine("tiny", dir, w, EngineOptions{})
	defer e.Close()
	if ok, err := e.Reload(true); !ok || err != nil {
		t.Fatalf("Reload: %v, %v", ok, err)
	}
	check(e.Weights(), "reloaded")
}
