package tokenizer

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func toolConversation() []ToolMessage {
	return []ToolMessage{
		{Role: "user", Content: "What is 12*7?"},
		{Role: "assistant", ToolCalls: []ToolCall{{ID: "call_1", Name: "calculator", Arguments: json.RawMessage(`{ "expression": "12*7" }`)}}},
		{Role: "tool", Content: "84", ToolCallID: "call_1"},
		{Role: "tool", Content: "ok", ToolCallID: "call_2"},
	}
}

const calcTools = `[{"type":"function","function":{"name":"calculator","description":"Evaluates arithmetic.","parameters":{"type":"object","properties":{"expression":{"type":"string"}},"required":["expression"]}}}]`

// golem's ChatML writes tools one line each, calls and results with
// Hermes' tags, and the calls it writes parse back.
func TestChatMLToolMessages(t *testing.T) {
	msgs, err := ChatMLToolMessages(append([]ToolMessage{{Role: "system", Content: "Be brief."}}, toolConversation()...), json.RawMessage(calcTools))
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 4 {
		t.Fatalf("%d messages: %+v", len(msgs), msgs)
	}
	sys := msgs[0].Content
	if want := "Be brief.\n\nTools:\ncalculator(expression: string) - Evaluates arithmetic.\nCall one as <tool_call>{\"name\": ..., \"arguments\": {...}}</tool_call>."; sys != want {
		t.Errorf("system message %q, want %q", sys, want)
	}
	if want := "<tool_call>\n{\"name\":\"calculator\",\"arguments\":{\"expression\":\"12*7\"}}\n</tool_call>"; msgs[2].Content != want {
		t.Errorf("assistant %q, want %q", msgs[2].Content, want)
	}
	if want := "<tool_response>\n84\n</tool_response>\n<tool_response>\nok\n</tool_response>"; msgs[3].Role != "user" || msgs[3].Content != want {
		t.Errorf("results %+v", msgs[3])
	}
	content, calls, err := ParseToolCalls(msgs[2].Content)
	if err != nil || content != "" || len(calls) != 1 || calls[0].Name != "calculator" || string(calls[0].Arguments) != `{"expression":"12*7"}` {
		t.Errorf("parsed back: %q %+v %v", content, calls, err)
	}
}

// A tool's line: parameters in their order, optional ones marked, enums,
// arrays and unions as short types, the description's first line; a tool
// without a name is an error naming the field.
func TestToolLine(t *testing.T) {
	for tool, want := range map[string]string{
		`{"type":"function","function":{"name":"search","description":"Searches the web.\nMore text.","parameters":{"type":"object","properties":{"query":{"type":"string"},"limit":{"type":"integer"},"sort":{"enum":["new","top"]},"tags":{"type":"array","items":{"type":"string"}},"when":{"anyOf":[{"type":"string"},{"type":"null"}]},"x":{"type":["number","null"]}},"required":["query"]}}}`: `search(query: string, limit?: integer, sort?: "new"|"top", tags?: string[], when?: string|null, x?: number|null) - Searches the web.`,
		`{"type":"function","function":{"name":"now"}}`: `now()`,
		`{"type":"function","function":{"name":"b","parameters":{"type":"object","properties":{"z":{},"a":{"type":"boolean"}},"required":["z","a"]}}}`: `b(z: any, a: boolean)`,
	} {
		got, err := ToolLine(json.RawMessage(tool))
		if err != nil || got != want {
			t.Errorf("%s:\n got %q, %v\nwant %q", tool, got, err, want)
		}
	}
	if _, err := ChatMLToolMessages([]ToolMessage{{Role: "user"}}, json.RawMessage(`[{"type":"function","function":{}}]`)); err == nil || !strings.Contains(err.Error(), `tools[0]: no "function.name"`) {
		t.Errorf("a tool without a name: %v", err)
	}
	if _, err := ChatMLToolMessages([]ToolMessage{{Role: "user"}}, json.RawMessage(`[{"type":"function","function":{"name":"f","parameters":{"properties":[1]}}}]`)); err == nil || !strings.Contains(err.Error(), `tools[0]: "function.parameters.properties": not a JSON object`) {
		t.Errorf("properties not an object: %v", err)
	}
}

func TestParseToolCalls(t *testing.T) {
	for _, c := range []struct {
		text, content string
		calls         int
		err           string
	}{
		{"just text", "just text", 0, ""},
		{"Let me see. <tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}}\n</tool_call>", "Let me see.", 1, ""},
		{"<tool_call>{\"name\":\"a\",\"arguments\":\"{\\\"x\\\":1}\"}</tool_call>\n<tool_call>{\"name\":\"b\"}</tool_call>", "", 2, ""},
		{"<tool_call>\n{\"name\":\"a\",\"arguments\":{}}", "", 1, ""}, // cut before the closing tag
		{"<tool_call>{\"name\":\"a\",\"arguments\":{}", "", 0, "not a JSON object"},
		{"<tool_call>{\"arguments\":{}}</tool_call>", "", 0, `no "name"`},
		{"<tool_call>{\"name\":\"a\",\"arguments\":[1]}</tool_call>", "", 0, `"arguments" is not a JSON object`},
		{"<tool_call>{\"name\":\"a\"} x</tool_call>", "", 0, "more after"},
		{"<tool_call>{\"name\":\"a\"}</tool_call> and more", "", 0, "after a call"},
	} {
		content, calls, err := ParseToolCalls(c.text)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want an error with %q", c.text, err, c.err)
			}
			continue
		}
		if err != nil || content != c.content || len(calls) != c.calls {
			t.Errorf("%q: %q %+v %v", c.text, content, calls, err)
		}
	}
}

// A model's own template gets the tools and the calls, as transformers
// passes them (Qwen2.5's template writes its own <tools> block).
func TestRenderChatToolsTemplate(t *testing.T) {
	src, err := os.ReadFile("chattemplate/testdata/templates/qwen25.jinja")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Train(TrainOptions{Texts: []string{"hello world the calculator"}, VocabSize: 300, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.SetChatTemplate(string(src), nil); err != nil {
		t.Fatal(err)
	}
	ids, err := tok.RenderChatTools(toolConversation(), json.RawMessage(calcTools), true)
	if err != nil {
		t.Fatal(err)
	}
	text := tok.Decode(ids)
	for _, want := range []string{"<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"calculator\"", "<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"12*7\"}}\n</tool_call>",
		"<|im_start|>user\n<tool_response>\n84\n</tool_response>\n<tool_response>\nok\n</tool_response><|im_end|>", "<|im_start|>assistant\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered:\n%s\nwant it to hold %q", text, want)
		}
	}
}
