package serve

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// Every request field golem does not use is a 400 naming it; --lenient
// lets the unknown ones through, never the features golem has not yet
// (thinking, ...) nor images for a text-only model; null, false and the
// values that turn a feature off pass, and the fields golem uses work.
func TestStrictFields(t *testing.T) {
	strict := newTestServerWith(t, "sqlite:"+filepath.Join(t.TempDir(), "s.db"), Options{}, EngineOptions{}, "gpt2")
	lenient := newTestServerWith(t, "sqlite:"+filepath.Join(t.TempDir(), "l.db"), Options{Lenient: true}, EngineOptions{}, "gpt2")
	chat := func(extra string) string {
		return `{"model":"tiny-gpt2","messages":[{"role":"user","content":"hi"}],"max_tokens":1` + extra + `}`
	}
	msg := func(fields string) string {
		return `{"model":"tiny-gpt2","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"` + fields + `}],"max_tokens":1}`
	}
	ochat := func(extra string) string {
		return `{"model":"tiny-gpt2:latest","messages":[{"role":"user","content":"hi"}],"stream":false,"options":{"num_predict":1}` + extra + `}`
	}
	gen := func(extra string) string {
		return `{"model":"tiny-gpt2","prompt":"hi","stream":false,"options":{"num_predict":1` + extra + `}}`
	}
	const (
		unknown  = "does not support this field"
		notyet   = "is not supported yet"
		onlyOff  = "does not support it (only"
		textOnly = "is a text-only model and takes no images"
	)
	cases := []struct {
		path, body string
		field      string // named in the 400; "" for a 200
		why        string
		lenientOK  bool // a 200 with --lenient
	}{
		// OpenAI: unknown fields, at any depth.
		{"/v1/chat/completions", chat(`,"temprature":0.5`), `"temprature"`, unknown, true},
		{"/v1/chat/completions", msg(`,"name":"bob"`), `"messages[1].name"`, unknown, true},
		{"/v1/chat/completions", chat(`,"stream_options":{"include_usage":true,"include_obfuscation":true}`), `"stream_options.include_obfuscation"`, unknown, true},
		{"/v1/completions", `{"model":"tiny-gpt2","prompt":"hi","max_tokens":1,"best_of":3}`, `"best_of" 3`, onlyOff, true},
		{"/v1/chat/completions", chat(`,"frequency_penalty":0.5`), `"frequency_penalty" 0.5`, onlyOff, true},
		{"/v1/chat/completions", chat(`,"store":true`), `"store"`, unknown, true},
		// OpenAI: images, which a text-only model refuses.
		{"/v1/chat/completions", `{"model":"tiny-gpt2","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:,"}}]}]}`, `messages[0].content[0].image_url`, textOnly, false},
		// OpenAI: off, null, absent, or used.
		{"/v1/chat/completions", chat(`,"tools":null,"tool_choice":"none","logprobs":false,"top_logprobs":0,"response_format":{"type":"text"}`), "", "", true},
		{"/v1/chat/completions", chat(`,"frequency_penalty":0,"presence_penalty":0.0,"logit_bias":{},"user":"u-1","metadata":{"a":"b"},"store":false,"parallel_tool_calls":null`), "", "", true},
		{"/v1/chat/completions", msg(`,"refusal":null,"tool_calls":[]`), "", "", true},
		{"/v1/chat/completions", chat(`,"top_k":5,"seed":1,"stop":["x"],"n":1,"min_tokens":0,"Temperature":1`), "", "", true},
		{"/v1/completions", `{"model":"tiny-gpt2","prompt":"hi","max_tokens":1,"echo":false,"suffix":"","best_of":1}`, "", "", true},
		// OpenAI: log-probabilities are supported where OpenAI has them;
		// completions' fields on chat (and chat's on completions) are not.
		{"/v1/chat/completions", chat(`,"logprobs":true,"top_logprobs":2`), "", "", true},
		{"/v1/completions", `{"model":"tiny-gpt2","prompt":"hi","max_tokens":1,"echo":true,"logprobs":2}`, "", "", true},
		{"/v1/chat/completions", chat(`,"echo":true`), `"echo"`, unknown, true},
		{"/v1/completions", `{"model":"tiny-gpt2","prompt":"hi","max_tokens":1,"top_logprobs":2}`, `"top_logprobs"`, unknown, true},
		{"/v1/chat/completions", chat(`,"response_format":{"type":"json_object"}`), "", "", true},
		{"/v1/chat/completions", chat(`,"tool_choice":"auto","parallel_tool_calls":true`), "", "", true},
		{"/v1/chat/completions", chat(`,"response_format":{"type":"json_schema","json_schema":{"name":"a","strict":true,"schema":{"type":"object"}}}`), "", "", true},

		// Ollama: unknown fields and options.
		{"/api/chat", ochat(`,"keepalive":"5m"`), `"keepalive"`, unknown, true},
		{"/api/chat", ochat(`,"options":{"repeat_penalty":1.1}`), `"options.repeat_penalty" 1.1`, onlyOff, true},
		{"/api/generate", gen(`,"num_predcit":3`), `"options.num_predcit"`, unknown, true},
		{"/api/generate", `{"model":"tiny-gpt2","prompt":"hi","stream":false,"template":"{{ .Prompt }}"}`, `"template"`, onlyOff, true},
		// Ollama: features to come; images, which a text-only model refuses.
		{"/api/chat", ochat(`,"think":true`), `"think"`, notyet, false},
		{"/api/generate", `{"model":"tiny-gpt2","prompt":"hi","images":["aGk="]}`, `images[0]`, textOnly, false},
		{"/api/chat", `{"model":"tiny-gpt2","messages":[{"role":"user","content":"hi","images":["aGk="]}]}`, `messages[0].images[0]`, textOnly, false},
		// Ollama: off, null, or used; how Ollama runs a model is accepted.
		{"/api/chat", ochat(`,"format":"","tools":[],"think":false,"images":null`), "", "", true},
		{"/api/chat", ochat(`,"format":"json"`), "", "", true},
		{"/api/chat", ochat(`,"format":{"type":"object"}`), "", "", true},
		{"/api/chat", ochat(`,"keep_alive":"10m","options":{"num_ctx":4096,"num_thread":2,"num_gpu":99,"repeat_penalty":1,"min_p":0,"temperature":0,"top_k":3}`), "", "", true},
		{"/api/generate", gen(`,"seed":3,"stop":["x"],"use_mmap":true`), "", "", true},
		{"/api/show", `{"model":"tiny-gpt2","verbose":true}`, "", "", true},
	}
	for _, c := range cases {
		for _, ts := range []*testServer{strict, lenient} {
			isLenient := ts == lenient
			status, body := do(t, nil, "POST", ts.URL+c.path, []byte(c.body), nil)
			want400 := c.field != "" && !(isLenient && c.lenientOK)
			if !want400 {
				if status != 200 {
					t.Errorf("lenient %v: %s %s: %d %s, want 200", isLenient, c.path, c.body, status, body)
				}
				continue
			}
			m := errorMessage(body)
			if status != 400 || !strings.HasPrefix(m, c.field) || !strings.Contains(m, c.why) {
				t.Errorf("lenient %v: %s %s: %d %s, want 400 naming %s (%q)", isLenient, c.path, c.body, status, body, c.field, c.why)
			}
			if strings.HasPrefix(c.path, "/v1/") && strings.HasPrefix(c.field, `"`) {
				var e struct{ Error struct{ Param string } }
				json.Unmarshal(body, &e)
				if want := strings.Fields(c.field)[0]; `"`+e.Error.Param+`"` != want {
					t.Errorf("%s: OpenAI param %q, want %s", c.body, e.Error.Param, want)
				}
			}
			if c.why != notyet && c.why != textOnly && !strings.Contains(m, "--lenient") {
				t.Errorf("%s: the message does not name --lenient: %s", c.body, m)
			}
		}
	}
}
