package serve

import (
	"encoding/json"
	"strings"
	"testing"
)

// Details clients depend on: the auth scheme's case, Retry-After on 429, a
// 400 (not a 429 for ever) for an n the queue can never hold, field names
// (not Go types) in errors, and a null prompt.
func TestCompatibility(t *testing.T) {
	ts := newTestServer(t, Options{APIKey: "k3y"}, EngineOptions{Queue: 2})
	chat := `{"model":"tiny-gpt2","messages":[{"role":"user","content":"hi"}],"max_tokens":2}`
	for _, auth := range []string{"Bearer k3y", "bearer k3y", "BEARER k3y", "  Bearer   k3y "} {
		status, body := do(t, nil, "POST", ts.URL+"/v1/chat/completions", []byte(chat), map[string]string{"Authorization": auth})
		mustStatus(t, "Authorization: "+auth, 200, status, body)
	}
	key := map[string]string{"Authorization": "bearer k3y"}

	status, body := do(t, nil, "POST", ts.URL+"/v1/chat/completions",
		[]byte(`{"model":"tiny-gpt2","messages":[{"role":"user","content":"hi"}],"max_tokens":2,"n":3}`), key)
	if msg := errorMessage(body); status != 400 || !strings.Contains(msg, `"n" 3`) || !strings.Contains(msg, "--queue") {
		t.Errorf("n above --queue: %d %s", status, body)
	}

	cases := []struct{ path, body, want string }{
		{"/v1/completions", `{"model":"tiny-gpt2","prompt":null}`, `"prompt" missing: send a string, a list of strings, or token ids`},
		{"/v1/chat/completions", `{"model":"tiny-gpt2","messages":"hi"}`, `"messages": expected an array, got a string`},
		{"/v1/chat/completions", `{"model":"tiny-gpt2","messages":[{"role":"user","content":"x"}],"seed":"x"}`, `"seed": expected an integer, got a string`},
		{"/v1/chat/completions", `{"model":"tiny-gpt2","messages":[{"role":"user","content":"x"}],"stream_options":5}`, `"stream_options": expected an object, got a number`},
		{"/v1/chat/completions", `{"model":"tiny-gpt2","messages":[{"role":5,"content":"x"}]}`, `"messages.role": expected a string, got a number`},
		{"/api/chat", `{"model":"tiny-llama","options":{"stop":"x"}}`, `"options.stop": expected an array, got a string`},
		{"/api/generate", `{"model":"tiny-llama","stream":"no"}`, `"stream": expected true or false, got a string`},
		{"/api/generate", `{"model":5}`, `"model": expected a string, got a number`},
	}
	for _, c := range cases {
		status, body := do(t, nil, "POST", ts.URL+c.path, []byte(c.body), key)
		msg := errorMessage(body)
		if status != 400 || msg != c.want {
			t.Errorf("%s %s: %d %s, want 400 with the message %s", c.path, c.body, status, body, c.want)
		}
		if strings.Contains(msg, "Common") || strings.Contains(msg, "serve.") {
			t.Errorf("%s: a Go type in the message: %s", c.body, msg)
		}
	}
}

// errorMessage returns the message of an error in any of the server's
// shapes ({"error": "..."} or OpenAI's {"error": {"message": ...}}), or ""
// when body is neither.
func errorMessage(body []byte) string {
	var e struct{ Error json.RawMessage }
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	var msg string
	if json.Unmarshal(e.Error, &msg) != nil {
		var oe struct{ Message string }
		json.Unmarshal(e.Error, &oe)
		msg = oe.Message
	}
	return msg
}
