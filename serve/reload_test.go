package serve

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tokenizer"
)

// A new checkpoint written into the model folder is picked up while a
// stream is open: the stream finishes on the old weights, undropped, and
// the next request runs on the new ones.
func TestReloadKeepsConnections(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "live")
	if err := os.CopyFS(dir, os.DirFS(tinyDir(t, "llama"))); err != nil {
		t.Fatal(err)
	}
	w, err := LoadWeights(cpu.New(), dir)
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine("live", dir, w, EngineOptions{})
	defer e.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Watch(ctx, 20*time.Millisecond, t.Logf)
	srv := New([]*Engine{e}, nil, Options{Logf: t.Logf})
	ts := newHTTPServer(t, srv)

	resp, err := http.Post(ts+"/v1/completions", "application/json",
		strings.NewReader(`{"model":"live","prompt":"hello","max_tokens":400,"min_tokens":400,"stream":true,"stream_options":{"include_usage":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Scan() // streaming has begun

	// Write a new checkpoint (another random model) while it streams.
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := gpt.New(cpu.New(), w.Model.Config, 99)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // a distinct modification time
	if err := m2.Save(dir); err != nil {
		t.Fatal(err)
	}
	usage, done := 0, false
	for sc.Scan() {
		line := strings.TrimPrefix(sc.Text(), "data: ")
		if line == "[DONE]" {
			done = true
		}
		var c struct {
			Usage *struct {
				CompletionTokens int `json:"completion_tokens"`
			}
		}
		if json.Unmarshal([]byte(line), &c) == nil && c.Usage != nil {
			usage = c.Usage.CompletionTokens
		}
	}
	if !done || usage != 400 {
		t.Fatalf("the open stream: done %v after %d of 400 tokens", done, usage)
	}
	for i := 0; i < 500 && e.Stats().Reloads == 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if e.Stats().Reloads != 1 {
		t.Fatalf("%d reloads, want 1", e.Stats().Reloads)
	}
	// The next request answers with the new weights.
	prompt := tok.EncodeWithSpecial("hello")
	want, err := generate.Tokens(m2, [][]int{prompt}, generate.Options{MaxTokens: 10, StopIDs: w.Stop}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := e.Submit(context.Background(), prompt, Sampling{MaxTokens: 10})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := collect(t, ch)
	if !slices.Equal(got, want[0]) {
		t.Fatalf("after the reload: %v, the new model gives %v", got, want[0])
	}
}
