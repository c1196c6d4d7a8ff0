package tokenizer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/golem-ml/golem/tokenizer/chattemplate"
)

// Tool calling in chats. golem's ChatML writes tools and calls as Hermes
// does (Qwen2.5's template): the tools' JSON schemas in the system
// message between <tools> and </tools>, each call of the assistant as
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

// toolsPreamble is Hermes' system text around the tools (Qwen2.5's).
const (
	toolsHead = "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>"
	toolsTail = "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>"
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

// HermesMessages writes a conversation with tools as plain ChatML
// messages: the tools (a JSON list of {"type": "function", "function":
// {...}}, or nil) in the system message, calls in the assistant's text,
// results as user turns.
func HermesMessages(msgs []ToolMessage, tools json.RawMessage) ([]Message, error) {
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
		for _, t := range list {
			sb.WriteString("\n" + compactJSON(t))
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
// ChatML, as Hermes does (HermesMessages).
func (t *Tokenizer) RenderChatTools(msgs []ToolMessage, tools json.RawMessage, addGenerationPrompt bool) ([]int, error) {
	if t.chat == nil {
		plain, err := HermesMessages(msgs, tools)
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
