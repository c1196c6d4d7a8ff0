package serve

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Ollama's model endpoints as Ollama answers them: name:tag names, a
// digest of the weights, /api/ps, /api/show's parameters and modelfile,
// num_predict clamped to the context, keep_alive, and a 501 that says how
// golem gets models for pull and create.
func TestOllamaParity(t *testing.T) {
	ts := newTestServerWith(t, "sqlite:"+filepath.Join(t.TempDir(), "o.db"), Options{}, EngineOptions{}, "llama", "same")
	type model struct {
		Name, Model, Digest string
		Size                int64
		ExpiresAt           time.Time `json:"expires_at"`
		ContextLength       int       `json:"context_length"`
		Details             struct{ Family string }
	}
	list := func(path string) map[string]model {
		status, body := do(t, nil, "GET", ts.URL+path, nil, nil)
		var res struct{ Models []model }
		if status != 200 || json.Unmarshal(body, &res) != nil {
			t.Fatalf("%s: %d %s", path, status, body)
		}
		out := map[string]model{}
		for _, m := range res.Models {
			out[m.Name] = m
		}
		return out
	}
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	tags, ps := list("/api/tags"), list("/api/ps")
	llama, same := tags["tiny-llama:latest"], tags["tiny-same:latest"]
	if llama.Model != "tiny-llama:latest" || same.Model != "tiny-same:latest" || len(tags) != 2 {
		t.Fatalf("tags are not name:tag: %+v", tags)
	}
	if !hex64.MatchString(llama.Digest) || !hex64.MatchString(same.Digest) || llama.Digest == same.Digest {
		t.Errorf("digests %q and %q: want two different SHA-256s", llama.Digest, same.Digest)
	}
	fi, err := os.Stat(filepath.Join(tinyDir(t, "llama"), "model.safetensors"))
	if err != nil || llama.Size != fi.Size() {
		t.Errorf("tags size %d, the weights file has %v (%v)", llama.Size, fi.Size(), err)
	}
	p := ps["tiny-llama:latest"]
	if len(ps) != 2 || p.Digest != llama.Digest || p.ContextLength != 1024 || p.Size <= 0 || p.ExpiresAt.Year() < 2300 || p.Details.Family != "llama" {
		t.Errorf("ps: %+v", ps)
	}
	if again := list("/api/tags"); again["tiny-llama:latest"].Digest != llama.Digest {
		t.Errorf("digest changed without a reload: %s, then %s", llama.Digest, again["tiny-llama:latest"].Digest)
	}
	// Another checkpoint in the folder: another digest.
	e, _ := ts.srv.Engine("tiny-llama")
	w2, err := LoadWeights(e.Weights().Model.Embed.Weight.Backend(), tinyDir(t, "gpt2"))
	if err != nil {
		t.Fatal(err)
	}
	if d := ts.srv.digests.of(w2); d == llama.Digest || !hex64.MatchString(d) {
		t.Errorf("other weights, digest %s (llama's %s)", d, llama.Digest)
	}

	for _, name := range []string{"tiny-llama", "tiny-llama:latest"} {
		status, body := do(t, nil, "POST", ts.URL+"/api/show", []byte(`{"model":"`+name+`"}`), nil)
		var show struct {
			Parameters, Modelfile, Template string
			ModelInfo                       map[string]any `json:"model_info"`
		}
		if status != 200 || json.Unmarshal(body, &show) != nil {
			t.Fatalf("show %s: %d %s", name, status, body)
		}
		if !regexp.MustCompile(`(?m)^num_ctx +1024$`).MatchString(show.Parameters) || !regexp.MustCompile(`(?m)^stop +"<\|im_end\|>"$`).MatchString(show.Parameters) {
			t.Errorf("show parameters:\n%s", show.Parameters)
		}
		for _, want := range []string{"FROM " + tinyDir(t, "llama") + "\n", "TEMPLATE ", "PARAMETER num_ctx 1024\n", `PARAMETER stop "<|im_end|>"`} {
			if !strings.Contains(show.Modelfile, want) {
				t.Errorf("modelfile without %q:\n%s", want, show.Modelfile)
			}
		}
		if show.ModelInfo["llama.context_length"] != 1024.0 || show.ModelInfo["general.parameter_count"].(float64) <= 0 {
			t.Errorf("model_info %v", show.ModelInfo)
		}
	}

	// num_predict past the context is clamped, as Ollama does: the model
	// that never stops fills its 256 positions.
	for _, path := range []string{"/api/chat", "/api/generate"} {
		body := `{"model":"tiny-same","stream":false,"options":{"num_predict":1000000},"messages":[{"role":"user","content":"go on"}]}`
		if path == "/api/generate" {
			body = `{"model":"tiny-same","stream":false,"options":{"num_predict":1000000},"prompt":"go on"}`
		}
		status, b := do(t, nil, "POST", ts.URL+path, []byte(body), nil)
		var res struct {
			DoneReason string `json:"done_reason"`
			Prompt     int    `json:"prompt_eval_count"`
			Eval       int    `json:"eval_count"`
		}
		json.Unmarshal(b, &res)
		if status != 200 || res.DoneReason != "length" || res.Prompt+res.Eval != 256 {
			t.Errorf("%s num_predict 1e6: %d %s, want the context filled (256 tokens) and done_reason length", path, status, b)
		}
	}
	// A name copied from Ollama's list works on the OpenAI API too.
	if status, b := do(t, nil, "POST", ts.URL+"/v1/chat/completions", []byte(`{"model":"tiny-llama:latest","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`), nil); status != 200 {
		t.Errorf("openai with tiny-llama:latest: %d %s", status, b)
	}
	// OpenAI's max_tokens past the context stays an error, as OpenAI's.
	status, b := do(t, nil, "POST", ts.URL+"/v1/chat/completions", []byte(`{"model":"tiny-same","max_tokens":1000000,"messages":[{"role":"user","content":"go on"}]}`), nil)
	if status != 400 || !strings.Contains(string(b), "context_length_exceeded") {
		t.Errorf("openai max_tokens 1e6: %d %s", status, b)
	}

	// keep_alive: checked; 0 is Ollama's unload, answered as Ollama does
	// (the model stays served).
	status, b = do(t, nil, "POST", ts.URL+"/api/generate", []byte(`{"model":"tiny-llama","keep_alive":0}`), nil)
	if status != 200 || !strings.Contains(string(b), `"done_reason":"unload"`) {
		t.Errorf("keep_alive 0: %d %s", status, b)
	}
	status, b = do(t, nil, "POST", ts.URL+"/api/chat", []byte(`{"model":"tiny-llama","keep_alive":"-1m"}`), nil)
	if status != 200 || !strings.Contains(string(b), `"done_reason":"load"`) {
		t.Errorf("keep_alive -1m: %d %s", status, b)
	}
	status, b = do(t, nil, "POST", ts.URL+"/api/chat", []byte(`{"model":"tiny-llama","keep_alive":"soon"}`), nil)
	if status != 400 || !strings.Contains(errorMessage(b), `"keep_alive" "soon"`) {
		t.Errorf("keep_alive soon: %d %s", status, b)
	}
	if len(list("/api/ps")) != 2 {
		t.Error("a model left /api/ps after keep_alive 0")
	}

	// Models come from folders, not from a registry or a Modelfile.
	for _, c := range []struct{ method, path, body, want string }{
		{"POST", "/api/pull", `{"name":"llama3"}`, "--model DIR"},
		{"POST", "/api/create", `{"model":"x","from":"llama3"}`, "--model DIR"},
		{"DELETE", "/api/delete", `{"name":"tiny-llama"}`, "--model"},
	} {
		status, b := do(t, nil, c.method, ts.URL+c.path, []byte(c.body), nil)
		if status != 501 || !strings.Contains(errorMessage(b), c.want) {
			t.Errorf("%s %s: %d %s, want 501 with %q", c.method, c.path, status, b, c.want)
		}
	}
}
