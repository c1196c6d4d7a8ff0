package tokenizer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/golem-ml/golem/tokenizer/chattemplate"
)

// Tool calling in chats. golem's ChatML writes the tools compactly, one
// line each in the system message, so that a model of a 128-token
// context has room for them and the conversation:
//
//	Tools:
//	calculator(expression: string) - Evaluates arithmetic.
//	Call one as <tool_call>{"name": ..., "arguments": {...}}</tool_call>.
//
// each call of the assistant with Hermes' tags (Qwen2.5's),
//
//	<tool_call>
//	{"name":"calculator","arguments":{"expression":"2+3"}}
//	</tool_call>
//
// and each tool's result as a user turn <tool_response>...</tool_response>
// (consecutive results in one turn). A model's own chat template gets the
// tools and the calls as transformers' apply_chat_template passes them.

// The tags around a call.
const (
	ToolCallOpen  = "<tool_call>"
	ToolCallClose = "</tool_call>"
)

// ToolCall is a call of a function by the assistant.
type ToolCall struct {
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"` // a JSON object
}

// ToolMessage is a turn of a conversation with tools: Message, plus the
// calls an assistant turn makes, and for role "tool" the call it answers.
type ToolMessage struct {
	Role       string
	Content    string
	ToolCalls  []ToolCall
	ToolCallID string // role "tool": the call this is the result of
	Name       string // role "tool": the function's name, if known
}

// The lines around the tools in golem's ChatML system message.
const (
	toolsHead = "Tools:"
	toolsTail = "\nCall one as " + ToolCallOpen + `{"name": ..., "arguments": {...}}` + ToolCallClose + "."
)

// FormatToolCall writes one call as the assistant writes it in ChatML.
func FormatToolCall(c ToolCall) string {
	var b bytes.Buffer
	b.WriteString(ToolCallOpen + "\n")
	name, _ := json.Marshal(c.Name)
	args := compactJSON(c.Arguments)
	b.WriteString(`{"name":` + string(name) + `,"arguments":` + args + "}")
	b.WriteString("\n" + ToolCallClose)
	return b.String()
}

func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if len(bytes.TrimSpace(raw)) == 0 || json.Compact(&b, raw) != nil {
		return "{}"
	}
	return b.String()
}

// ChatMLToolMessages writes a conversation with tools as plain ChatML
// messages: the tools (a JSON list of {"type": "function", "function":
// {...}}, or nil) in the system message, one line each (ToolLine), calls
// in the assistant's text, results as user turns.
func ChatMLToolMessages(msgs []ToolMessage, tools json.RawMessage) ([]Message, error) {
	var out []Message
	var list []json.RawMessage
	if len(bytes.TrimSpace(tools)) > 0 && string(bytes.TrimSpace(tools)) != "null" {
		if err := json.Unmarshal(tools, &list); err != nil {
			return nil, errors.New("tokenizer: tools: not a JSON list")
		}
	}
	if len(list) > 0 {
		var sb strings.Builder
		if len(msgs) > 0 && msgs[0].Role == "system" {
			sb.WriteString(msgs[0].Content + "\n\n")
			msgs = msgs[1:]
		}
		sb.WriteString(toolsHead)
		for i, t := range list {
			line, err := ToolLine(t)
			if err != nil {
				return nil, fmt.Errorf("tokenizer: tools[%d]: %w", i, err)
			}
			sb.WriteString("\n" + line)
		}
		sb.WriteString(toolsTail)
		out = append(out, Message{Role: "system", Content: sb.String()})
	}
	for i, m := range msgs {
		switch m.Role {
		case "tool":
			r := "<tool_response>\n" + m.Content + "\n</tool_response>"
			if i > 0 && msgs[i-1].Role == "tool" {
				out[len(out)-1].Content += "\n" + r
				continue
			}
			out = append(out, Message{Role: "user", Content: r})
		case "assistant":
			var sb strings.Builder
			sb.WriteString(m.Content)
			for _, c := range m.ToolCalls {
				if sb.Len() > 0 {
					sb.WriteString("\n")
				}
				sb.WriteString(FormatToolCall(c))
			}
			out = append(out, Message{Role: "assistant", Content: sb.String()})
		default:
			out = append(out, Message{Role: m.Role, Content: m.Content})
		}
	}
	return out, nil
}

// RenderChatTools is RenderChat for a conversation with tools (tools a
// JSON list of {"type": "function", "function": {...}}, or nil): with
// the model's own template, rendered as apply_chat_template(messages,
// tools=tools) does (its "tool_use" template when it has one); with
// ChatML, compactly (ChatMLToolMessages).
func (t *Tokenizer) RenderChatTools(msgs []ToolMessage, tools json.RawMessage, addGenerationPrompt bool) ([]int, error) {
	if t.chat == nil {
		plain, err := ChatMLToolMessages(msgs, tools)
		if err != nil {
			return nil, err
		}
		ids, _, err := t.RenderChat(plain, addGenerationPrompt)
		return ids, err
	}
	if len(msgs) == 0 {
		return nil, errors.New("tokenizer: chat: no messages")
	}
	def := t.chat.def
	if len(tools) > 0 {
		src, err := chattemplate.Select(t.chat.raw, true)
		if err != nil {
			return nil, err
		}
		if src != def.Source() {
			if def, err = chattemplate.Parse(src); err != nil {
				return nil, fmt.Errorf("chat_template: %w", err)
			}
		}
	}
	// The messages as transformers takes them: calls' arguments objects.
	type fn struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	}
	type call struct {
		ID       string `json:"id,omitempty"`
		Type     string `json:"type"`
		Function fn     `json:"function"`
	}
	type msg struct {
		Role       string  `json:"role"`
		Content    *string `json:"content"`
		ToolCalls  []call  `json:"tool_calls,omitempty"`
		ToolCallID string  `json:"tool_call_id,omitempty"`
		Name       string  `json:"name,omitempty"`
	}
	ms := make([]msg, len(msgs))
	for i, m := range msgs {
		ms[i] = msg{Role: m.Role, Content: &m.Content, ToolCallID: m.ToolCallID, Name: m.Name}
		if m.Role == "assistant" && len(m.ToolCalls) > 0 && m.Content == "" {
			ms[i].Content = nil
		}
		for _, c := range m.ToolCalls {
			ms[i].ToolCalls = append(ms[i].ToolCalls, call{ID: c.ID, Type: "function", Function: fn{c.Name, json.RawMessage(compactJSON(c.Arguments))}})
		}
	}
	js, err := json.Marshal(ms)
	if err != nil {
		return nil, err
	}
	text, err := def.Render(context.Background(), chattemplate.Input{Messages: js, Tools: tools, AddGenerationPrompt: addGenerationPrompt, Vars: t.chat.vars})
	if err != nil {
		return nil, fmt.Errorf("tokenizer: chat template: %w", err)
	}
	return t.EncodeWithSpecial(text), nil
}

// ToolLine writes a tool ({"type": "function", "function": {"name",
// "description", "parameters"}}) as one line: its name, its parameters
// with their types (optional ones marked ?), and the first line of its
// description:
//
//	calculator(expression: string) - Evaluates arithmetic.
func ToolLine(tool json.RawMessage) (string, error) {
	var t struct {
		Function struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		} `json:"function"`
	}
	if err := json.Unmarshal(tool, &t); err != nil {
		return "", fmt.Errorf("not a tool object: %v", err)
	}
	f := t.Function
	if f.Name == "" {
		return "", errors.New(`no "function.name"`)
	}
	var params struct {
		Properties json.RawMessage `json:"properties"`
		Required   []string        `json:"required"`
	}
	if p := bytes.TrimSpace(f.Parameters); len(p) > 0 && string(p) != "null" {
		if err := json.Unmarshal(p, &params); err != nil {
			return "", fmt.Errorf(`"function.parameters": %v`, err)
		}
	}
	names, props, err := objectFields(params.Properties)
	if err != nil {
		return "", fmt.Errorf(`"function.parameters.properties": %v`, err)
	}
	var b strings.Builder
	b.WriteString(f.Name + "(")
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(n)
		if !slices.Contains(params.Required, n) {
			b.WriteString("?")
		}
		b.WriteString(": " + schemaType(props[n]))
	}
	b.WriteString(")")
	if d, _, _ := strings.Cut(strings.TrimSpace(f.Description), "\n"); d != "" {
		b.WriteString(" - " + strings.TrimSpace(d))
	}
	return b.String(), nil
}

// objectFields returns a JSON object's keys in their order and its values.
func objectFields(raw json.RawMessage) ([]string, map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil, nil
	}
	var vals map[string]json.RawMessage
	if err := json.Unmarshal(raw, &vals); err != nil {
		return nil, nil, errors.New("not a JSON object")
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.Token() // {
	var names []string
	for d.More() {
		k, err := d.Token()
		if err != nil {
			return nil, nil, err
		}
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			return nil, nil, err
		}
		if name := k.(string); !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names, vals, nil
}

// schemaType writes a parameter's JSON schema as a short type: string,
// integer, "a"|"b" for an enum, string[] for an array, a|b for a union.
func schemaType(raw json.RawMessage) string {
	var s struct {
		Type  json.RawMessage   `json:"type"`
		Enum  []json.RawMessage `json:"enum"`
		Items json.RawMessage   `json:"items"`
		AnyOf []json.RawMessage `json:"anyOf"`
		OneOf []json.RawMessage `json:"oneOf"`
	}
	if json.Unmarshal(raw, &s) != nil {
		return "any"
	}
	var parts []string
	switch {
	case len(s.Enum) > 0:
		for _, e := range s.Enum {
			parts = append(parts, compactJSON(e))
		}
	case len(s.AnyOf) > 0 || len(s.OneOf) > 0:
		for _, sub := range append(s.AnyOf, s.OneOf...) {
			parts = append(parts, schemaType(sub))
		}
	default:
		var one string
		var many []string
		if json.Unmarshal(s.Type, &one) == nil && one != "" {
			many = []string{one}
		} else if json.Unmarshal(s.Type, &many) != nil || len(many) == 0 {
			return "any"
		}
		for _, t := range many {
			if t == "array" && len(s.Items) > 0 {
				t = schemaType(s.Items) + "[]"
			}
			parts = append(parts, t)
		}
	}
	return strings.Join(parts, "|")
}

// ParseToolCalls reads the calls in an assistant's answer: each
// <tool_call> holds a JSON object {"name": "...", "arguments": {...}}
// (arguments may also be a string holding the object), up to its
// </tool_call> or the end. content is the text before the first call. It
// fails when a call is not such an object; an answer without calls gives
// the text and no calls.
func ParseToolCalls(text string) (content string, calls []ToolCall, err error) {
	i := strings.Index(text, ToolCallOpen)
	if i < 0 {
		return text, nil, nil
	}
	content = strings.TrimSpace(text[:i])
	rest := text[i:]
	for n := 0; rest != ""; n++ {
		if !strings.HasPrefix(rest, ToolCallOpen) {
			return "", nil, fmt.Errorf("tool call %d: text %q after a call", n, truncate(rest))
		}
		rest = rest[len(ToolCallOpen):]
		body := rest
		if j := strings.Index(rest, ToolCallClose); j >= 0 {
			body, rest = rest[:j], rest[j+len(ToolCallClose):]
		} else {
			rest = ""
		}
		rest = strings.TrimSpace(rest)
		var c struct {
			Name      *string         `json:"name"`
			Arguments json.RawMessage `json:"arguments"`
		}
		d := json.NewDecoder(strings.NewReader(body))
		if err := d.Decode(&c); err != nil {
			return "", nil, fmt.Errorf("tool call %d: not a JSON object: %v", n, err)
		}
		if d.More() {
			return "", nil, fmt.Errorf("tool call %d: more after the JSON object", n)
		}
		if c.Name == nil || *c.Name == "" {
			return "", nil, fmt.Errorf("tool call %d: no \"name\"", n)
		}
		args := bytes.TrimSpace(c.Arguments)
		var s string
		if json.Unmarshal(args, &s) == nil {
			args = []byte(s)
		}
		var obj map[string]json.RawMessage
		if len(args) == 0 {
			args = []byte("{}")
		} else if json.Unmarshal(args, &obj) != nil || obj == nil {
			return "", nil, fmt.Errorf("tool call %d (%s): \"arguments\" is not a JSON object", n, *c.Name)
		}
		calls = append(calls, ToolCall{Name: *c.Name, Arguments: json.RawMessage(compactJSON(args))})
	}
	return content, calls, nil
}
