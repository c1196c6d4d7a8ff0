package serve

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
)

// With Config.BF16 (golem serve --dtype bf16) a model's matrices are kept
// as bfloat16, answers are decoded from them, and a reload keeps them so.
func TestServeBF16(t *testing.T) {
	dir := tinyDir(t, "llama")
	be := cpu.New()
	ctx, cancel := context.WithCancel(context.Background())
	addr, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Models: []string{"tiny=" + dir}, Addr: "127.0.0.1:0", DB: "none", Watch: -1, Backend: be, BF16: true,
			Ready: func(a string) { addr <- a }})
	}()
	var url string
	select {
	case url = <-addr:
	case err := <-done:
		t.Fatalf("Run: %v", err)
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

	w, err := LoadWeightsAs(be, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(w.Model.Quantized()); n == 0 || !w.BF16 {
		t.Fatalf("LoadWeightsAs(bf16): %d matrices kept, BF16 %v", n, w.BF16)
	}
	e := NewEngine("tiny", dir, w, EngineOptions{})
	defer e.Close()
	if ok, err := e.Reload(true); !ok || err != nil {
		t.Fatalf("Reload: %v, %v", ok, err)
	}
	if n := len(e.Weights().Model.Quantized()); n == 0 || !e.Weights().BF16 {
		t.Fatalf("after a reload: %d matrices kept as bfloat16", n)
	}
	f32, err := LoadWeights(be, dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f32.Model.Quantized()); n != 0 {
		t.Fatalf("LoadWeights: %d matrices kept as bfloat16 without asking", n)
	}
}
