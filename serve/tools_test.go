package serve

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"net/http/httptest"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/tokenizer"
)

const calcParams = `{"type":"object","properties":{"expression":{"type":"string","maxLength":20}},"required":["expression"],"additionalProperties":false}`

var calcTools = `[{"type":"function","function":{"name":"calculator","description":"Evaluates arithmetic.","parameters":` + calcParams + `}},` +
	`{"type":"function","function":{"name":"lookup","parameters":{"type":"object","properties":{"key":{"enum":["paris","rome"]}},"required":["key"]}}}]`

type chatAnswer struct {
	Choices []struct {
		FinishReason string `json:"finish_reason"`
		Message      struct {
			Content   *string
			ToolCalls []openaiToolCall `json:"tool_calls"`
		}
	}
}

// A forced call (a named function, or "required") from a random model is
// a call of an offered function whose arguments validate; the call and
// its result sent back give an answer.
func TestOpenAIForcedToolCall(t *testing.T) {
	ts := newTestServerWith(t, "sqlite:"+t.TempDir()+"/s.db", Options{}, EngineOptions{}, "llama")
	user := `{"role":"user","content":"What is 6*7?"}`
	for _, choice := range []string{`{"type":"function","function":{"name":"calculator"}}`, `"required"`} {
		body := `{"model":"tiny-llama","messages":[` + user + `],"n":3,"temperature":1,"seed":4,"max_tokens":200,"tools":` + calcTools + `,"tool_choice":` + choice + `}`
		status, raw := do(t, nil, "POST", ts.URL+"/v1/chat/completions", []byte(body), nil)
		var a chatAnswer
		json.Unmarshal(raw, &a)
		if status != 200 || len(a.Choices) != 3 {
			t.Fatalf("%s: %d %s", choice, status, raw)
		}
		for _, c := range a.Choices {
			if c.FinishReason != "tool_calls" || len(c.Message.ToolCalls) != 1 || c.Message.Content != nil {
				t.Errorf("%s: %+v", choice, c)
				continue
			}
			call := c.Message.ToolCalls[0]
			if !strings.HasPrefix(call.ID, "call_") || call.Type != "function" {
				t.Errorf("call %+v", call)
			}
			schema := calcParams
			switch {
			case call.Function.Name == "lookup" && choice == `"required"`:
				schema = `{"type":"object","properties":{"key":{"enum":["paris","rome"]}},"required":["key"]}`
			case call.Function.Name != "calculator":
				t.Errorf("%s: call of %q", choice, call.Function.Name)
			}
			if err := validate(t, schema, call.Function.Arguments); err != nil {
				t.Errorf("%s: arguments %s: %v", choice, call.Function.Arguments, err)
			}
		}
		// The round trip: the call and its result go back; the answer is text.
		call, _ := json.Marshal(a.Choices[0].Message.ToolCalls)
		body = `{"model":"tiny-llama","max_tokens":5,"tools":` + calcTools + `,"messages":[` + user + `,{"role":"assistant","content":null,"tool_calls":` + string(call) +
			`},{"role":"tool","tool_call_id":"` + a.Choices[0].Message.ToolCalls[0].ID + `","content":"42"}]}`
		status, raw = do(t, nil, "POST", ts.URL+"/v1/chat/completions", []byte(body), nil)
		var b chatAnswer
		json.Unmarshal(raw, &b)
		if status != 200 || len(b.Choices) != 1 || b.Choices[0].Message.Content == nil {
			t.Errorf("round trip: %d %s", status, raw)
		}
	}
}

// Streamed, a call comes as OpenAI streams it: the id and name, then the
// arguments in pieces, then finish_reason "tool_calls".
func TestOpenAIToolCallStream(t *testing.T) {
	ts := newTestServerWith(t, "sqlite:"+t.TempDir()+"/s.db", Options{}, EngineOptions{}, "llama")
	body := `{"model":"tiny-llama","stream":true,"messages":[{"role":"user","content":"6*7?"}],"seed":2,"max_tokens":200,"tools":` + calcTools + `,"tool_choice":{"type":"function","function":{"name":"calculator"}}}`
	resp, err := http.Post(ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var id, name, args, reason string
	done := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if line == "[DONE]" {
			done = true
			continue
		}
		var ch struct {
			Choices []struct {
				Delta struct {
					ToolCalls []struct {
						Index    int
						ID       string
						Function struct{ Name, Arguments string }
					} `json:"tool_calls"`
				}
				FinishReason *string `json:"finish_reason"`
			}
		}
		json.Unmarshal([]byte(line), &ch)
		for _, c := range ch.Choices {
			for _, tc := range c.Delta.ToolCalls {
				if tc.Index != 0 {
					t.Errorf("call index %d", tc.Index)
				}
				id += tc.ID
				name += tc.Function.Name
				args += tc.Function.Arguments
			}
			if c.FinishReason != nil {
				reason = *c.FinishReason
			}
		}
	}
	if !done || reason != "tool_calls" || !strings.HasPrefix(id, "call_") || name != "calculator" {
		t.Fatalf("stream: done %v reason %q id %q name %q", done, reason, id, name)
	}
	if err := validate(t, calcParams, args); err != nil {
		t.Errorf("streamed arguments %s: %v", args, err)
	}
}

// An answer whose calls are malformed, or call a function not offered,
// is text.
func TestToolReplyMalformed(t *testing.T) {
	spec, err := checkTools([]requestTool{{Type: "function", Function: struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
		Strict      *bool           `json:"strict"`
	}{Name: "calculator"}}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"<tool_call>\n{\"name\":\"calculator\",\"arguments\":{\"e\":", "<tool_call>{\"name\":\"rm\",\"arguments\":{}}</tool_call>", "plain"} {
		msg, reason := spec.openaiMessage(text, "stop")
		if msg["content"] != text || msg["tool_calls"] != nil || reason != "stop" {
			t.Errorf("%q: %v %s", text, msg, reason)
		}
	}
	msg, reason := spec.openaiMessage("Sure.\n<tool_call>\n{\"name\":\"calculator\",\"arguments\":{\"e\":\"1\"}}\n</tool_call>", "stop")
	if msg["content"] != "Sure." || reason != "tool_calls" {
		t.Errorf("a call after text: %v %s", msg, reason)
	}
}

// Bad tool requests are a 400 naming the field.
func TestBadToolRequests(t *testing.T) {
	ts := newTestServerWith(t, "sqlite:"+t.TempDir()+"/s.db", Options{}, EngineOptions{}, "llama")
	chat := func(extra string) string {
		return `{"model":"tiny-llama","messages":[{"role":"user","content":"hi"}]` + extra + `}`
	}
	for _, c := range []struct{ path, body, param, msg string }{
		{"/v1/chat/completions", chat(`,"tools":` + calcTools + `,"tool_choice":{"type":"function","function":{"name":"rm"}}`), "tool_choice.function.name", `"rm" is not among the tools (calculator, lookup)`},
		{"/v1/chat/completions", chat(`,"tool_choice":"required"`), "tool_choice", `needs "tools"`},
		{"/v1/chat/completions", chat(`,"tools":` + calcTools + `,"tool_choice":"sometimes"`), "tool_choice", `"sometimes" is not`},
		{"/v1/chat/completions", chat(`,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"x":{"type":"string","format":"date"}}}}}],"tool_choice":"required"`), "tools[0].function.parameters.properties.x.format", `keyword "format" is not supported`},
		{"/v1/chat/completions", chat(`,"tools":[{"type":"function","function":{"name":"f","parameters":[]}}]`), "tools[0].function.parameters", "must be a JSON schema object"},
		{"/v1/chat/completions", chat(`,"tools":[{"type":"retrieval"}]`), "tools[0].type", `"retrieval" is not "function"`},
		{"/v1/chat/completions", chat(`,"tools":[{"type":"function","function":{"name":"a b"}}]`), "tools[0].function.name", "1 to 64 letters"},
		{"/v1/chat/completions", `{"model":"tiny-llama","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{oops"}}]}]}`, "messages[1].tool_calls[0].function.arguments", "must be a JSON object"},
		{"/v1/chat/completions", chat(`,"tools":` + calcTools + `,"tool_choice":"required","response_format":{"type":"json_object"}`), "response_format", "cannot both constrain"},
		{"/api/chat", `{"model":"tiny-llama","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":""}}]}`, "", `"tools[0].function.name" ""`},
		{"/api/chat", `{"model":"tiny-llama","messages":[{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":[1]}}]}]}`, "", `"messages[0].tool_calls[0].function.arguments" must be a JSON object`},
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

// Ollama: tools, calls and results in the conversation are rendered and
// answered.
func TestOllamaToolsConversation(t *testing.T) {
	ts := newTestServerWith(t, "sqlite:"+t.TempDir()+"/s.db", Options{}, EngineOptions{}, "llama")
	for _, stream := range []string{"false", "true"} {
		body := `{"model":"tiny-llama","stream":` + stream + `,"options":{"num_predict":4},"tools":` + calcTools + `,"messages":[{"role":"user","content":"6*7?"},` +
			`{"role":"assistant","content":"","tool_calls":[{"function":{"name":"calculator","arguments":{"expression":"6*7"}}}]},{"role":"tool","tool_name":"calculator","content":"42"}]}`
		status, raw := do(t, nil, "POST", ts.URL+"/api/chat", []byte(body), nil)
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		var last struct {
			Done    bool
			Message *struct{ Role string }
		}
		json.Unmarshal([]byte(lines[len(lines)-1]), &last)
		if status != 200 || !last.Done {
			t.Errorf("stream %s: %d %s", stream, status, raw)
		}
	}
}

// With tools offered but not called, a streamed answer still comes token
// by token, and adds up to the answer given whole.
func TestOpenAIToolsStreamText(t *testing.T) {
	ts := newTestServerWith(t, "sqlite:"+t.TempDir()+"/s.db", Options{}, EngineOptions{}, "llama")
	body := `{"model":"tiny-llama","messages":[{"role":"user","content":"hi"}],"temperature":0,"max_tokens":12,"tools":` + calcTools
	status, raw := do(t, nil, "POST", ts.URL+"/v1/chat/completions", []byte(body+`}`), nil)
	var a chatAnswer
	json.Unmarshal(raw, &a)
	if status != 200 || len(a.Choices) != 1 || a.Choices[0].Message.Content == nil {
		t.Fatalf("%d %s", status, raw)
	}
	resp, err := http.Post(ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(body+`,"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var text strings.Builder
	chunks := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || line == "[DONE]" {
			continue
		}
		var ch struct {
			Choices []struct{ Delta struct{ Content string } }
		}
		json.Unmarshal([]byte(line), &ch)
		if len(ch.Choices) > 0 && ch.Choices[0].Delta.Content != "" {
			chunks++
			text.WriteString(ch.Choices[0].Delta.Content)
		}
	}
	if text.String() != *a.Choices[0].Message.Content || chunks < 2 {
		t.Errorf("streamed %q in %d chunks, whole %q", text.String(), chunks, *a.Choices[0].Message.Content)
	}
}

// A model that answers with a call (its one token is the whole call's
// text) gets it parsed back: OpenAI's tool_calls with tool_choice auto,
// Ollama's tool_calls, whole and streamed; with tool_choice none, the
// text.
func TestModelToolCallParsed(t *testing.T) {
	const call = "<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"6*7\"}}\n</tool_call>"
	tok, err := tokenizer.Train(tokenizer.TrainOptions{Texts: []string{synth.Corpus(synth.CorpusOptions{Seed: 1, Bytes: 20000})}, VocabSize: 300, Workers: 1, Special: []string{call}})
	if err != nil {
		t.Fatal(err)
	}
	id, ok := tok.SpecialID(call)
	if !ok {
		t.Fatal("no call token")
	}
	dir := t.TempDir()
	if err := writeFixedModelIDs(dir, tok, 2048, id); err != nil {
		t.Fatal(err)
	}
	w, err := LoadWeights(cpu.New(), dir)
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine("caller", dir, w, EngineOptions{})
	t.Cleanup(e.Close)
	srv := New([]*Engine{e}, nil, Options{Logf: t.Logf})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	msgs := `"messages":[{"role":"user","content":"6*7?"}],"tools":` + calcTools
	status, raw := do(t, nil, "POST", ts.URL+"/v1/chat/completions", []byte(`{"model":"caller","max_tokens":1,`+msgs+`}`), nil)
	var a chatAnswer
	json.Unmarshal(raw, &a)
	if status != 200 || len(a.Choices) != 1 || a.Choices[0].FinishReason != "tool_calls" || len(a.Choices[0].Message.ToolCalls) != 1 ||
		a.Choices[0].Message.ToolCalls[0].Function.Arguments != `{"expression":"6*7"}` {
		t.Fatalf("auto: %d %s", status, raw)
	}
	status, raw = do(t, nil, "POST", ts.URL+"/v1/chat/completions", []byte(`{"model":"caller","max_tokens":1,"tool_choice":"none",`+msgs+`}`), nil)
	a = chatAnswer{}
	json.Unmarshal(raw, &a)
	if status != 200 || len(a.Choices[0].Message.ToolCalls) != 0 || a.Choices[0].Message.Content == nil || *a.Choices[0].Message.Content != call {
		t.Fatalf("none: %d %s", status, raw)
	}
	status, raw = do(t, nil, "POST", ts.URL+"/v1/chat/completions", []byte(`{"model":"caller","max_tokens":1,"stream":true,`+msgs+`}`), nil)
	if s := string(raw); status != 200 || !strings.Contains(s, `"name":"calculator"`) || !strings.Contains(s, `"finish_reason":"tool_calls"`) || strings.Contains(s, `"content":"\u003ctool_call`) {
		t.Fatalf("auto, streamed: %d %s", status, raw)
	}
	for _, stream := range []string{"false", "true"} {
		status, raw = do(t, nil, "POST", ts.URL+"/api/chat", []byte(`{"model":"caller","stream":`+stream+`,"options":{"num_predict":1},`+msgs+`}`), nil)
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		var calls []map[string]any
		for _, l := range lines {
			var m struct {
				Message struct {
					ToolCalls []map[string]any `json:"tool_calls"`
				}
			}
			json.Unmarshal([]byte(l), &m)
			calls = append(calls, m.Message.ToolCalls...)
		}
		if status != 200 || len(calls) != 1 {
			t.Fatalf("ollama stream %s: %d %s", stream, status, raw)
		}
		f, _ := calls[0]["function"].(map[string]any)
		if args, _ := f["arguments"].(map[string]any); f["name"] != "calculator" || args["expression"] != "6*7" {
			t.Errorf("ollama stream %s: call %v", stream, calls[0])
		}
	}
}
