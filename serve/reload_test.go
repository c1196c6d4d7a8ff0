package serve

import (
	"bufio"
	"context"
	"encoding/json"
	"math/rand/v2"
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
	"github.com/golem-ml/golem/model/load"
	"github.com/golem-ml/golem/tokenizer"
)

// A new checkpoint written into the model folder is picked up while a
// stream is open: the stream finishes on the old weights, undropped, and
// the next request runs on the new ones.
func TestReloadKeepsConnections(t *testing.T) {
	clockBound(t)
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

// writeLoRA saves a LoRA adapter over the model folder base into dir, its
// B matrices random (seed), so that it changes what the model says.
func writeLoRA(t *testing.T, dir, base string, seed uint64) {
	t.Helper()
	m, err := gpt.Load(cpu.New(), base)
	if err != nil {
		t.Fatal(err)
	}
	c := gpt.LoRAConfig{R: 2, Alpha: 4}
	ps, err := m.AttachLoRA(c, seed)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 1))
	for _, p := range ps {
		if strings.Contains(p.Name, "lora_B") {
			v := make([]float32, p.Tensor.Len())
			for i := range v {
				v[i] = float32(r.NormFloat64())
			}
			p.Tensor.Set(v)
		}
	}
	rel, err := filepath.Rel(dir, base)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SaveLoRA(dir, c, rel); err != nil {
		t.Fatal(err)
	}
}

// An adapter folder served is watched with its base model: a new adapter,
// or a new checkpoint of the base, is loaded (merged again) and answers the
// next request.
func TestReloadAdapterFolder(t *testing.T) {
	clockBound(t)
	root := t.TempDir()
	base, adapter := filepath.Join(root, "base"), filepath.Join(root, "adapter")
	if err := os.CopyFS(base, os.DirFS(tinyDir(t, "llama"))); err != nil {
		t.Fatal(err)
	}
	writeLoRA(t, adapter, base, 1)
	w, err := LoadWeights(cpu.New(), adapter)
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine("adapter", adapter, w, EngineOptions{})
	defer e.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Watch(ctx, 20*time.Millisecond, t.Logf)
	prompt := w.Tok.EncodeWithSpecial("hello")
	// answers waits for a reload after prev (none when prev < 0) and
	// until the engine serves the folder's files as they are now (a write
	// seen half-done is reloaded again once its files settle), and checks
	// that the engine answers as the folder loaded anew does.
	answers := func(prev int64, what string) int64 {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for ; e.Stats().Reloads <= prev || !serves(e, adapter); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("after %s: %d reloads, not serving the folder's files in 30 s", what, e.Stats().Reloads)
			}
		}
		l, err := load.Model(cpu.New(), adapter, load.Options{})
		if err != nil {
			t.Fatal(err)
		}
		want, err := generate.Tokens(l.Model, [][]int{prompt}, generate.Options{MaxTokens: 10, StopIDs: w.Stop}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := e.Submit(context.Background(), prompt, Sampling{MaxTokens: 10})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := collect(t, ch); !slices.Equal(got, want[0]) {
			t.Fatalf("after %s: %v, the folder gives %v", what, got, want[0])
		}
		return e.Stats().Reloads
	}
	n := answers(-1, "loading")
	time.Sleep(10 * time.Millisecond) // a distinct modification time
	writeLoRA(t, adapter, base, 2)
	n = answers(n, "a new adapter")
	m2, err := gpt.New(cpu.New(), w.Model.Config, 99)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if err := m2.Save(base); err != nil {
		t.Fatal(err)
	}
	answers(n, "a new base model")
}

// serves reports whether e's weights are those of dir's files as they are
// now (their stamp).
func serves(e *Engine, dir string) bool {
	st, err := folderStamp(dir)
	return err == nil && st.key == e.Weights().stamp
}
