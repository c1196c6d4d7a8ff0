package serve

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// validate checks text against schema with santhosh-tekuri/jsonschema, a
// validator independent of golem's matcher.
func validate(t *testing.T, schema, text string) error {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("s.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("s.json")
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		return err
	}
	return sch.Validate(v)
}

const personSchema = `{"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer"},"pets":{"type":"array","items":{"enum":["cat","dog","fish"]},"maxItems":3},"married":{"type":"boolean"},"nick":{"anyOf":[{"type":"string","maxLength":5},{"type":"null"}]}},"required":["name","age","pets","married","nick"],"additionalProperties":false}`

// A random model answers json_schema requests with JSON that validates,
// on the chat and completions endpoints, whole and streamed; an answer
// cut by max_tokens says "length".
func TestOpenAIJSONSchema(t *testing.T) {
	ts := newTestServerWith(t, "sqlite:"+t.TempDir()+"/s.db", Options{}, EngineOptions{}, "llama")
	rf := `{"type":"json_schema","json_schema":{"name":"person","strict":true,"schema":` + personSchema + `}}`
	for _, path := range []string{"/v1/chat/completions", "/v1/completions"} {
		in := `"messages":[{"role":"user","content":"Describe a person."}]`
		if path == "/v1/completions" {
			in = `"prompt":"A person:"`
		}
		body := `{"model":"tiny-llama",` + in + `,"n":4,"temperature":1.2,"max_tokens":300,"seed":7,"stop":["a"],"response_format":` + rf + `}`
		status, resp := do(t, nil, "POST", ts.URL+path, []byte(body), nil)
		if status != 200 {
			t.Fatalf("%s: %d %s", path, status, resp)
		}
		var out struct {
			Choices []struct {
				FinishReason string `json:"finish_reason"`
				Text         string
				Message      struct{ Content string }
			}
		}
		json.Unmarshal(resp, &out)
		if len(out.Choices) != 4 {
			t.Fatalf("%s: %s", path, resp)
		}
		for _, c := range out.Choices {
			text := c.Text + c.Message.Content
			if c.FinishReason != "stop" {
				t.Errorf("%s: finish_reason %q for %q", path, c.FinishReason, text)
				continue
			}
			if err := validate(t, personSchema, text); err != nil {
				t.Errorf("%s: answer %q does not validate: %v", path, text, err)
			}
		}
	}
	// Streamed: the deltas make a valid answer.
	body := `{"model":"tiny-llama","messages":[{"role":"user","content":"hi"}],"stream":true,"temperature":1,"seed":3,"max_tokens":300,"response_format":` + rf + `}`
	resp, err := http.Post(ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var text strings.Builder
	reason := ""
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || line == "[DONE]" {
			continue
		}
		var ch struct {
			Choices []struct {
				Delta        struct{ Content string }
				FinishReason *string `json:"finish_reason"`
			}
		}
		json.Unmarshal([]byte(line), &ch)
		for _, c := range ch.Choices {
			text.WriteString(c.Delta.Content)
			if c.FinishReason != nil {
				reason = *c.FinishReason
			}
		}
	}
	if err := validate(t, personSchema, text.String()); err != nil || reason != "stop" {
		t.Errorf("streamed answer %q (%s): %v", text.String(), reason, err)
	}
	// Cut by max_tokens: "length", and not whole JSON.
	status, raw := do(t, nil, "POST", ts.URL+"/v1/chat/completions", []byte(`{"model":"tiny-llama","messages":[{"role":"user","content":"hi"}],"max_tokens":2,"response_format":`+rf+`}`), nil)
	var cut struct {
		Choices []struct {
			FinishReason string `json:"finish_reason"`
			Message      struct{ Content string }
		}
	}
	json.Unmarshal(raw, &cut)
	if status != 200 || len(cut.Choices) != 1 || cut.Choices[0].FinishReason != "length" || json.Valid([]byte(cut.Choices[0].Message.Content)) {
		t.Errorf("cut answer: %d %s", status, raw)
	}
	// json_object: any object.
	status, raw = do(t, nil, "POST", ts.URL+"/v1/chat/completions", []byte(`{"model":"tiny-llama","messages":[{"role":"user","content":"hi"}],"max_tokens":40,"seed":1,"response_format":{"type":"json_object"}}`), nil)
	json.Unmarshal(raw, &cut)
	if c := cut.Choices[0]; status != 200 || !strings.HasPrefix(c.Message.Content, "{") || (c.FinishReason == "stop") != json.Valid([]byte(c.Message.Content)) {
		t.Errorf("json_object: %d %s", status, raw)
	}
}

// Ollama's format: "json" or a schema, on /api/chat and /api/generate.
func TestOllamaFormat(t *testing.T) {
	ts := newTestServerWith(t, "sqlite:"+t.TempDir()+"/s.db", Options{}, EngineOptions{}, "llama")
	for _, c := range []struct{ path, in string }{
		{"/api/chat", `"messages":[{"role":"user","content":"Describe a person."}]`},
		{"/api/generate", `"prompt":"A person:"`},
	} {
		for _, stream := range []string{"false", "true"} {
			body := `{"model":"tiny-llama",` + c.in + `,"stream":` + stream + `,"format":` + personSchema + `,"options":{"temperature":1,"seed":5,"num_predict":300}}`
			status, raw := do(t, nil, "POST", ts.URL+c.path, []byte(body), nil)
			if status != 200 {
				t.Fatalf("%s: %d %s", c.path, status, raw)
			}
			var text strings.Builder
			reason := ""
			for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
				var m struct {
					Response   string
					Message    struct{ Content string }
					DoneReason string `json:"done_reason"`
				}
				json.Unmarshal(line, &m)
				text.WriteString(m.Response + m.Message.Content)
				reason += m.DoneReason
			}
			if err := validate(t, personSchema, text.String()); err != nil || reason != "stop" {
				t.Errorf("%s stream %s: %q (%s): %v", c.path, stream, text.String(), reason, err)
			}
		}
	}
	status, raw := do(t, nil, "POST", ts.URL+"/api/generate", []byte(`{"model":"tiny-llama","prompt":"x","stream":false,"format":"json","options":{"num_predict":60,"seed":2}}`), nil)
	var m struct {
		Response   string
		DoneReason string `json:"done_reason"`
	}
	json.Unmarshal(raw, &m)
	if status != 200 || !strings.HasPrefix(m.Response, "{") || (m.DoneReason == "stop") != json.Valid([]byte(m.Response)) {
		t.Errorf(`format "json": %d %s`, status, raw)
	}
}

// Bad formats are a 400 naming the field.
func TestBadFormats(t *testing.T) {
	ts := newTestServerWith(t, "sqlite:"+t.TempDir()+"/s.db", Options{}, EngineOptions{}, "llama")
	chat := func(rf string) string {
		return `{"model":"tiny-llama","messages":[{"role":"user","content":"hi"}],"response_format":` + rf + `}`
	}
	for _, c := range []struct{ path, body, param, msg string }{
		{"/v1/chat/completions", chat(`{"type":"json_schema","json_schema":{"name":"x","schema":[1]}}`), "response_format.json_schema.schema", "must be a JSON schema object"},
		{"/v1/chat/completions", chat(`{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","properties":{"a":{"type":"string","pattern":"^a"}}}}}`), "response_format.json_schema.schema.properties.a.pattern", `keyword "pattern" is not supported`},
		{"/v1/chat/completions", chat(`{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","properties":{"a":{"type":"strin"}}}}}`), "response_format.json_schema.schema.properties.a.type", `"strin" is not a JSON schema type`},
		{"/v1/chat/completions", chat(`{"type":"json_schema"}`), "response_format.json_schema", "needs"},
		{"/v1/chat/completions", chat(`{"type":"xml"}`), "response_format.type", `"xml" is not`},
		{"/v1/completions", `{"model":"tiny-llama","prompt":"x","response_format":{"type":"json_schema","json_schema":{"schema":{}}}}`, "response_format.json_schema.name", "missing"},
		{"/v1/chat/completions", chat(`{"type":"json_schema","json_schema":{"name":"x","schema":{},"extra":1}}`), "response_format.json_schema.extra", "does not support this field"},
		{"/api/chat", `{"model":"tiny-llama","messages":[{"role":"user","content":"hi"}],"format":"xml"}`, "", `"format" "xml": want "json" or a JSON schema object`},
		{"/api/generate", `{"model":"tiny-llama","prompt":"hi","format":{"type":"object","properties":{"a":{"minimum":3}}}}`, "", `"format.properties.a.minimum"`},
	} {
		status, raw := do(t, nil, "POST", ts.URL+c.path, []byte(c.body), nil)
		msg := errorMessage(raw)
		if status != 400 || !strings.Contains(msg, c.msg) {
			t.Errorf("%s %s: %d %s, want 400 with %q", c.path, c.body, status, raw, c.msg)
		}
		if c.param != "" {
			var e struct{ Error struct{ Param string } }
			json.Unmarshal(raw, &e)
			if e.Error.Param != c.param {
				t.Errorf("%s: param %q, want %q", c.body, e.Error.Param, c.param)
			}
		}
	}
}
