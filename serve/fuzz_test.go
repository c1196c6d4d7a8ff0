package serve

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fuzzRoutes are the JSON-taking routes FuzzAPI sends bodies to: the
// OpenAI and Ollama APIs without a login, the web app's as its admin.
var fuzzRoutes = []struct {
	method, path string
	web          bool
}{
	{"POST", "/v1/chat/completions", false},
	{"POST", "/v1/completions", false},
	{"POST", "/v1/embeddings", false},
	{"POST", "/v1/images/generations", false},
	{"POST", "/api/chat", false},
	{"POST", "/api/generate", false},
	{"POST", "/api/embed", false},
	{"POST", "/api/embeddings", false},
	{"POST", "/api/show", false},
	{"POST", "/app/api/chat/fit", true},
	{"POST", "/app/api/samples", true},
	{"POST", "/app/api/skips", true},
	{"POST", "/app/api/demonstrations", true},
	{"PUT", "/app/api/demonstrations/1", true},
	{"POST", "/app/api/rankings", true},
	{"PUT", "/app/api/rankings/1", true},
	{"POST", "/app/api/generations", true},
	{"POST", "/app/api/imagecomparisons", true},
	{"POST", "/app/api/admin/prompts?name=f.jsonl", true},
	{"PUT", "/app/api/admin/guidelines", true},
	{"POST", "/app/api/admin/users", true},
}

// FuzzAPI sends any body to any JSON route of the server and requires an
// answer that is not a server error (a handler's panic is a 500 from the
// recovering middleware), an error in JSON where the status is 4xx, and
// an answer within a minute; the server then still answers a good
// request. `go test ./serve -run '^$' -fuzz FuzzAPI -fuzztime 60s -parallel 1`
// explores; the plain test runs the seeds.
func FuzzAPI(f *testing.F) {
	// the server logs to nowhere: F's Logf may not be called while the
	// fuzz function runs
	ts := newTestServer(f, Options{Logf: func(string, ...any) {}}, EngineOptions{})
	admin, _, _ := setupAnnotators(f, ts)
	seeds := []string{
		``, `{`, `[1]`, `null`, `{"model":"tiny-gpt2"}`,
		`{"model":"tiny-gpt2","messages":[{"role":"user","content":"hi"}],"max_tokens":3}`,
		`{"model":"tiny-gpt2","messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}],"max_tokens":2}`,
		`{"model":"tiny-llama","prompt":"hi","max_tokens":2,"stream":true,"logprobs":3,"stop":["a"]}`,
		`{"model":"tiny-llama","input":["hi",""]}`,
		`{"model":"tiny-llama","messages":[{"role":"user","content":"hi","images":["AAAA"]}],"options":{"num_predict":2,"temperature":0}}`,
		`{"model":"tiny-llama","prompt":"hi","options":{"num_predict":2},"format":"json","stream":false}`,
		`{"model":"tiny-gpt2","prompt":"hi","n":2,"size":"1x1"}`,
		`{"prompt_id":1,"response":"ok"}`, `{"prompt_id":1,"responses":["a","b"],"order":[1,0]}`,
		`{"prompt_id":1,"model":"tiny-gpt2","n":2,"max_tokens":2}`,
		`{"prompt": "Say hi."}` + "\n" + `{"messages":[{"role":"user","content":"x"}]}`,
		`{"username":"carol","password":"carol-password"}`, `{"guidelines":"be kind"}`,
	}
	// Every route with every seed (378); under -short every route with a
	// third of them, every seed on a third of the routes (126: each route
	// still gets malformed JSON and well-formed bodies, and each body
	// still reaches seven routes).
	for i := range fuzzRoutes {
		for j, s := range seeds {
			if !testing.Short() || (i+j)%3 == 0 {
				f.Add(uint8(i), []byte(s))
			}
		}
	}
	client := &http.Client{Timeout: time.Minute}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := fuzzRoutes[int(route)%len(fuzzRoutes)]
		req, err := http.NewRequest(r.method, ts.URL+r.path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		c := client
		if r.web {
			c = &http.Client{Timeout: time.Minute, Jar: admin.c.Jar}
			req.Header.Set("X-CSRF-Token", admin.csrf)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s %q: %v", r.method, r.path, body, err)
		}
		out, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s %q: reading the answer: %v", r.method, r.path, body, err)
		}
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s %q: status %d: %.300s", r.method, r.path, body, resp.StatusCode, out)
		}
		if resp.StatusCode >= 400 && !strings.Contains(resp.Header.Get("Content-Type"), "json") || resp.StatusCode >= 400 && !json.Valid(out) {
			t.Fatalf("%s %s %q: status %d without a JSON error (%s): %.300s", r.method, r.path, body, resp.StatusCode, resp.Header.Get("Content-Type"), out)
		}
		good, err := client.Post(ts.URL+"/api/generate", "application/json",
			strings.NewReader(`{"model":"tiny-llama","prompt":"hi","stream":false,"options":{"num_predict":1}}`))
		if err != nil {
			t.Fatalf("after %s %s %q the server does not answer: %v", r.method, r.path, body, err)
		}
		io.Copy(io.Discard, good.Body)
		good.Body.Close()
		if good.StatusCode != 200 {
			t.Fatalf("after %s %s %q a good request gets %d", r.method, r.path, body, good.StatusCode)
		}
	})
}
