package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Every kind of bad input gets its own clear 4xx in the API's error shape,
// and the server goes on serving.
func TestBadInput(t *testing.T) {
	ts := newTestServer(t, Options{}, EngineOptions{})
	_, alice, bob := setupAnnotators(t, ts)
	status, body := alice.call("POST", "/app/api/demonstrations", map[string]any{"prompt_id": 1, "response": "mine"})
	mustStatus(t, "alice's demonstration", 201, status, body)
	var d demonstrationJSON
	json.Unmarshal(body, &d)

	huge := `{"model":"tiny-llama","prompt":"` + strings.Repeat("a", 9<<20) + `"}`
	long := strings.Repeat("word ", 200)
	chat := func(extra string) string {
		return `{"model":"tiny-gpt2","messages":[{"role":"user","content":"hi"}]` + extra + `}`
	}
	type tc struct {
		name, method, path, body string
		status                   int
		want                     string // in the error message
	}
	openai := []tc{
		{"malformed JSON", "POST", "/v1/chat/completions", `{"model":`, 400, "malformed JSON"},
		{"trailing garbage", "POST", "/v1/chat/completions", chat("") + `}`, 400, "more than one"},
		{"not an object", "POST", "/v1/chat/completions", `[1,2]`, 400, "JSON object"},
		{"empty body", "POST", "/v1/chat/completions", ``, 400, "empty"},
		{"messages wrong type", "POST", "/v1/chat/completions", `{"model":"tiny-gpt2","messages":"hi"}`, 400, "messages"},
		{"temperature wrong type", "POST", "/v1/chat/completions", chat(`,"temperature":"hot"`), 400, "temperature"},
		{"max_tokens fraction", "POST", "/v1/chat/completions", chat(`,"max_tokens":1.5`), 400, "max_tokens"},
		{"content wrong type", "POST", "/v1/chat/completions", `{"model":"tiny-gpt2","messages":[{"role":"user","content":5}]}`, 400, "content"},
		{"stop wrong type", "POST", "/v1/chat/completions", chat(`,"stop":7`), 400, "stop"},
		{"invalid UTF-8", "POST", "/v1/chat/completions", "{\"model\":\"tiny-gpt2\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}", 400, "UTF-8"},
		{"huge body", "POST", "/v1/completions", huge, 413, "larger than"},
		{"unknown model", "POST", "/v1/chat/completions", `{"model":"gpt-4","messages":[{"role":"user","content":"hi"}]}`, 404, "not found"},
		{"missing model", "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`, 400, "model"},
		{"no messages", "POST", "/v1/chat/completions", `{"model":"tiny-gpt2"}`, 400, "messages"},
		{"bad role", "POST", "/v1/chat/completions", `{"model":"tiny-gpt2","messages":[{"role":"robot","content":"hi"}]}`, 400, "robot"},
		{"late system", "POST", "/v1/chat/completions", `{"model":"tiny-gpt2","messages":[{"role":"user","content":"hi"},{"role":"system","content":"x"}]}`, 400, "system"},
		{"temperature range", "POST", "/v1/chat/completions", chat(`,"temperature":5`), 400, "temperature"},
		{"top_p range", "POST", "/v1/chat/completions", chat(`,"top_p":0`), 400, "top_p"},
		{"n range", "POST", "/v1/chat/completions", chat(`,"n":0`), 400, `"n"`},
		{"max_tokens zero", "POST", "/v1/chat/completions", chat(`,"max_tokens":0`), 400, "max_tokens"},
		{"too many stops", "POST", "/v1/chat/completions", chat(`,"stop":["a","b","c","d","e"]`), 400, "stop"},
		{"context overflow by max_tokens", "POST", "/v1/chat/completions", chat(`,"max_tokens":5000`), 400, "context length"},
		{"context overflow by prompt", "POST", "/v1/completions", `{"model":"tiny-gpt2","prompt":"` + long + `"}`, 400, "context length"},
		{"prompt wrong type", "POST", "/v1/completions", `{"model":"tiny-gpt2","prompt":{"a":1}}`, 400, "prompt"},
		{"unknown endpoint", "POST", "/v1/assistants", `{}`, 404, "unknown endpoint"},
		{"embeddings without input", "POST", "/v1/embeddings", `{"model":"tiny-gpt2"}`, 400, `"input" missing`},
		{"embeddings over the context", "POST", "/v1/embeddings", `{"model":"tiny-gpt2","input":["hi","` + strings.Repeat("a b ", 60) + `"]}`, 400, "input[1] has"},
		{"unknown model path", "GET", "/v1/models/nope", ``, 404, "not found"},
	}
	for _, c := range openai {
		t.Run("openai/"+c.name, func(t *testing.T) {
			status, body := do(t, nil, c.method, ts.URL+c.path, []byte(c.body), nil)
			var e struct {
				Error struct {
					Message string
					Type    string
				}
			}
			if status != c.status || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error.Message, c.want) || e.Error.Type == "" {
				t.Errorf("status %d, want %d with %q in an OpenAI error: %.300s", status, c.status, c.want, body)
			}
		})
	}
	ollamaCases := []tc{
		{"malformed JSON", "POST", "/api/chat", `{"model":"tiny-llama","messages":[`, 400, "malformed JSON"},
		{"options wrong type", "POST", "/api/chat", `{"model":"tiny-llama","messages":[{"role":"user","content":"hi"}],"options":{"temperature":"x"}}`, 400, "temperature"},
		{"invalid UTF-8", "POST", "/api/generate", "{\"model\":\"tiny-llama\",\"prompt\":\"\xc3\x28\"}", 400, "UTF-8"},
		{"unknown model", "POST", "/api/generate", `{"model":"llama3","prompt":"hi"}`, 404, "not found"},
		{"context overflow", "POST", "/api/generate", `{"model":"tiny-gpt2","raw":true,"prompt":"` + long + `"}`, 400, "context length"},
		{"huge body", "POST", "/api/chat", huge, 413, "larger than"},
	}
	for _, c := range ollamaCases {
		t.Run("ollama/"+c.name, func(t *testing.T) {
			status, body := do(t, nil, c.method, ts.URL+c.path, []byte(c.body), nil)
			var e struct{ Error string }
			if status != c.status || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, c.want) {
				t.Errorf("status %d, want %d with %q in an Ollama error: %.300s", status, c.status, c.want, body)
			}
		})
	}
	other := fmt.Sprintf("/app/api/demonstrations/%d", d.ID)
	webCases := []tc{
		{"another annotator's label (read)", "GET", other, ``, 403, "another annotator"},
		{"another annotator's label (edit)", "PUT", other, `{"response":"x"}`, 403, "another annotator"},
		{"another annotator's label (delete)", "DELETE", other, ``, 403, "another annotator"},
		{"another annotator's ranking", "DELETE", "/app/api/rankings/1", ``, 404, "not found"},
		{"label id not a number", "GET", "/app/api/demonstrations/abc", ``, 400, "not a positive integer"},
		{"label id missing", "GET", "/app/api/demonstrations/999999", ``, 404, "not found"},
		{"malformed JSON", "POST", "/app/api/demonstrations", `{"prompt_id":`, 400, "malformed JSON"},
		{"wrong type", "POST", "/app/api/demonstrations", `{"prompt_id":"one","response":"x"}`, 400, "prompt_id"},
		{"unknown prompt", "POST", "/app/api/demonstrations", `{"prompt_id":12345,"response":"x"}`, 404, "prompt 12345"},
		{"empty demonstration", "POST", "/app/api/demonstrations", `{"prompt_id":1,"response":"  "}`, 400, "empty"},
		{"invalid UTF-8", "POST", "/app/api/demonstrations", "{\"prompt_id\":1,\"response\":\"\xff\"}", 400, "UTF-8"},
		{"bad task", "GET", "/app/api/next?task=dance", ``, 400, "dance"},
		{"unknown flag", "POST", "/app/api/rankings", `{"prompt_id":2,"responses":[{"model":"m","content":"a","flags":["rude"]},{"model":"m","content":"b"}],"order":[0,1]}`, 400, "rude"},
		{"k out of range", "POST", "/app/api/samples", `{"prompt_id":1,"k":99}`, 400, "k"},
		{"annotator imports", "POST", "/app/api/admin/prompts", `{"prompt":"x"}`, 403, "admin"},
		{"unknown endpoint", "GET", "/app/api/nothing", ``, 404, "unknown endpoint"},
	}
	for _, c := range webCases {
		t.Run("web/"+c.name, func(t *testing.T) {
			var body any
			if c.body != "" {
				body = c.body
			}
			status, out := bob.call(c.method, c.path, body)
			mustStatus(t, c.name, c.status, status, out)
			if !strings.Contains(string(out), c.want) {
				t.Errorf("%q not in %s", c.want, out)
			}
		})
	}
	// Still serving, and Alice's label is intact.
	status, body = do(t, nil, "POST", ts.URL+"/v1/chat/completions", []byte(chat(`,"max_tokens":3`)), nil)
	if status != 200 {
		t.Fatalf("after the bad requests: %d %s", status, body)
	}
	if got, err := ts.store.Demonstration(context.Background(), d.ID); err != nil || got.Response != "mine" {
		t.Fatalf("alice's demonstration: %+v %v", got, err)
	}
}

// With an API key, the APIs want it (401 in each API's shape); a
// logged-in web app session with its CSRF token passes too.
func TestAPIKey(t *testing.T) {
	ts := newTestServer(t, Options{APIKey: "sekrit-key"}, EngineOptions{})
	body := []byte(`{"model":"tiny-gpt2","messages":[{"role":"user","content":"hi"}],"max_tokens":2}`)
	status, out := do(t, nil, "POST", ts.URL+"/v1/chat/completions", body, nil)
	if status != 401 || !strings.Contains(string(out), "invalid_api_key") {
		t.Fatalf("no key: %d %s", status, out)
	}
	status, out = do(t, nil, "GET", ts.URL+"/api/tags", nil, map[string]string{"Authorization": "Bearer wrong"})
	if status != 401 || !strings.Contains(string(out), `{"error":"missing or wrong API key`) {
		t.Fatalf("wrong key: %d %s", status, out)
	}
	status, out = do(t, nil, "POST", ts.URL+"/v1/chat/completions", body, map[string]string{"Authorization": "Bearer sekrit-key"})
	if status != 200 {
		t.Fatalf("right key: %d %s", status, out)
	}
	EnsureAdmin(context.Background(), ts.store, "admin-password")
	admin := login(t, ts.URL, "admin", "admin-password")
	status, out = admin.call("POST", "/v1/chat/completions", string(body))
	if status != 200 {
		t.Fatalf("web session: %d %s", status, out)
	}
	admin.csrf = ""
	status, out = admin.call("POST", "/v1/chat/completions", string(body))
	if status != 401 {
		t.Fatalf("web session without CSRF token: %d %s", status, out)
	}
}

// A full queue is 429 in each API's shape.
func TestQueueFull429(t *testing.T) {
	ts := newTestServer(t, Options{}, EngineOptions{MaxBatch: 1, Queue: 1})
	e, _ := ts.srv.Engine("tiny-llama")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := e.Weights()
	p := w.Tok.Encode("hello")
	// One decoding, one waiting: full.
	for i := 0; ; i++ {
		_, err := e.Submit(ctx, p, Sampling{MaxTokens: 1000, MinTokens: 1000})
		if err == ErrQueueFull && e.Stats().Active == 1 {
			break
		}
		if i > 1000 {
			t.Fatal("could not fill the queue")
		}
		time.Sleep(time.Millisecond)
	}
	status, out := do(t, nil, "POST", ts.URL+"/v1/completions", []byte(`{"model":"tiny-llama","prompt":"hi","max_tokens":2}`), nil)
	if status != 429 || !strings.Contains(string(out), "rate_limit_exceeded") {
		t.Fatalf("openai: %d %s", status, out)
	}
	status, out = do(t, nil, "POST", ts.URL+"/api/generate", []byte(`{"model":"tiny-llama","prompt":"hi"}`), nil)
	if status != 429 || !strings.Contains(string(out), `{"error":`) {
		t.Fatalf("ollama: %d %s", status, out)
	}
	cancel()
	// The other model is not affected.
	status, out = do(t, nil, "POST", ts.URL+"/v1/completions", []byte(`{"model":"tiny-gpt2","prompt":"hi","max_tokens":2}`), nil)
	if status != 200 {
		t.Fatalf("other model: %d %s", status, out)
	}
}
