package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/golem-ml/golem/generate/constrain"
	"github.com/golem-ml/golem/tokenizer"
)

// Tool calling: OpenAI's tools, tool_choice, tool_calls and role "tool"
// messages, and Ollama's tools and tool_calls. The tools are rendered into
// the prompt by the chat template (tokenizer.RenderChatTools: one line a
// tool in golem's ChatML, the model's own template otherwise),
// and the calls in the answer (<tool_call>{"name": ..., "arguments":
// {...}}</tool_call>) are parsed back into JSON; an answer whose calls do
// not parse, or call a function not offered, is returned as text. With
// tool_choice "required" or a named function the answer is constrained
// to one call of an offered function whose arguments validate against
// its parameters (generate/constrain), so that even an untrained model
// calls. Streamed answers with tools send their text as it comes, up to
// the first <tool_call>, and the calls once the answer is whole, in
// OpenAI's chunks (a call's id and name, then its arguments in pieces).

// requestTool is a tool of a request, in OpenAI's and Ollama's shape.
type requestTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
		Strict      *bool           `json:"strict"`
	} `json:"function"`
}

// openaiToolFields are the tool fields of an OpenAI chat request.
type openaiToolFields struct {
	Tools             []requestTool   `json:"tools"`
	ToolChoice        json.RawMessage `json:"tool_choice"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls"`
}

// openaiToolCall is a call in an assistant message, as OpenAI writes it.
type openaiToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"` // a JSON object, as text
	} `json:"function"`
}

// toolSpec is a request's checked tools.
type toolSpec struct {
	raw      json.RawMessage // the tools as the template gets them
	names    map[string]bool
	choice   string // "auto", "none", "required" or "function"
	parallel bool
	forced   *constrain.Schema // the one call allowed, with "required" or a function
	key      string            // forced's source
}

var toolName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// checkTools checks tools and OpenAI's tool_choice (nil for Ollama,
// which has none: "auto"). It returns nil when there are no tools.
func checkTools(tools []requestTool, choice json.RawMessage, parallel *bool) (*toolSpec, error) {
	c := strings.TrimSpace(string(choice))
	if len(tools) == 0 {
		if c != "" && c != "null" && c != `"none"` && c != `"auto"` {
			return nil, &fieldError{"tool_choice", `"tool_choice" needs "tools"`}
		}
		return nil, nil
	}
	spec := &toolSpec{names: map[string]bool{}, choice: "auto", parallel: parallel == nil || *parallel}
	params := make([]json.RawMessage, len(tools))
	for i, t := range tools {
		f := fmt.Sprintf("tools[%d]", i)
		if t.Type != "function" {
			return nil, &fieldError{f + ".type", fmt.Sprintf(`%q: %q is not "function" (the only kind of tool)`, f+".type", t.Type)}
		}
		if !toolName.MatchString(t.Function.Name) {
			return nil, &fieldError{f + ".function.name", fmt.Sprintf(`%q %q: a function's name is 1 to 64 letters, digits, _ or -`, f+".function.name", t.Function.Name)}
		}
		if spec.names[t.Function.Name] {
			return nil, &fieldError{f + ".function.name", fmt.Sprintf(`%q: two tools are named %q`, f+".function.name", t.Function.Name)}
		}
		spec.names[t.Function.Name] = true
		params[i] = t.Function.Parameters
		if p := bytes.TrimSpace(params[i]); len(p) == 0 || string(p) == "null" {
			params[i] = json.RawMessage(`{"type":"object","properties":{}}`)
		} else if p[0] != '{' {
			return nil, &fieldError{f + ".function.parameters", fmt.Sprintf(`%q must be a JSON schema object`, f+".function.parameters")}
		}
	}
	spec.raw, _ = json.Marshal(tools)
	var forced []int // the tools a forced call may be of
	var s string
	switch {
	case c == "" || c == "null":
	case json.Unmarshal(choice, &s) == nil:
		switch s {
		case "auto", "none":
			spec.choice = s
		case "required":
			spec.choice = s
			for i := range tools {
				forced = append(forced, i)
			}
		default:
			return nil, &fieldError{"tool_choice", fmt.Sprintf(`"tool_choice" %q is not "none", "auto", "required" or {"type": "function", "function": {"name": ...}}`, s)}
		}
	default:
		var named struct {
			Type     string `json:"type"`
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		if err := json.Unmarshal(choice, &named); err != nil || named.Type != "function" {
			return nil, &fieldError{"tool_choice", `"tool_choice" must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}`}
		}
		for i, t := range tools {
			if t.Function.Name == named.Function.Name {
				forced = append(forced, i)
			}
		}
		if len(forced) == 0 {
			return nil, &fieldError{"tool_choice.function.name", fmt.Sprintf(`"tool_choice.function.name" %q is not among the tools (%s)`, named.Function.Name, strings.Join(sortedKeys(spec.names), ", "))}
		}
		spec.choice = "function"
	}
	if len(forced) > 0 {
		var ts []constrain.Tool
		for _, i := range forced {
			// Each tool's parameters alone first: errors name the tool.
			if _, err := compileSchema(params[i], fmt.Sprintf("tools[%d].function.parameters", i)); err != nil {
				return nil, err
			}
			ts = append(ts, constrain.Tool{Name: tools[i].Function.Name, Parameters: params[i]})
		}
		sc, err := constrain.ToolCall(ts, tokenizer.ToolCallOpen+"\n", "\n"+tokenizer.ToolCallClose)
		if err != nil {
			return nil, &fieldError{"tools", fmt.Sprintf(`"tools": %v`, err)}
		}
		spec.forced = sc
		key, _ := json.Marshal(ts)
		spec.key = "tool_call:" + string(key)
	}
	return spec, nil
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// useTools makes the request parse its answers' calls, and constrains
// them to one call when the call is forced.
func (g *genRequest) useTools(spec *toolSpec) {
	if spec == nil || spec.choice == "none" {
		return
	}
	g.tools = spec
	if spec.forced != nil {
		g.constrain(spec.forced, spec.key)
	}
}

// reply reads an answer's calls: the text before them and the calls, or
// the whole text and no calls when there are none or they are malformed
// or call a function not offered. parallel false keeps the first call.
func (spec *toolSpec) reply(text string) (string, []tokenizer.ToolCall) {
	content, calls, err := tokenizer.ParseToolCalls(text)
	if err != nil || len(calls) == 0 {
		return text, nil
	}
	for _, c := range calls {
		if !spec.names[c.Name] {
			return text, nil
		}
	}
	if !spec.parallel {
		calls = calls[:1]
	}
	for i := range calls {
		calls[i].ID = newID("call_")
	}
	return content, calls
}

// openaiMessage is an answer as OpenAI's message: its text, and its calls
// with finish_reason "tool_calls".
func (spec *toolSpec) openaiMessage(text, reason string) (map[string]any, string) {
	content, calls := spec.reply(text)
	if len(calls) == 0 {
		return map[string]any{"role": "assistant", "content": text, "refusal": nil}, reason
	}
	var c any
	if content != "" {
		c = content
	}
	return map[string]any{"role": "assistant", "content": c, "refusal": nil, "tool_calls": openaiCalls(calls)}, "tool_calls"
}

func openaiCalls(calls []tokenizer.ToolCall) []map[string]any {
	out := make([]map[string]any, len(calls))
	for i, c := range calls {
		out[i] = map[string]any{"id": c.ID, "type": "function", "function": map[string]any{"name": c.Name, "arguments": string(c.Arguments)}}
	}
	return out
}

// toolMessages turns an OpenAI conversation into the tokenizer's, with
// calls and results; a call's arguments must be a JSON object.
func toolMessages(msgs []openaiMessage) ([]tokenizer.ToolMessage, error) {
	out := make([]tokenizer.ToolMessage, len(msgs))
	for i, m := range msgs {
		out[i] = tokenizer.ToolMessage{Role: m.Role, Content: m.Content.String(), ToolCallID: m.ToolCallID}
		if len(m.ToolCalls) > 0 && m.Role != "assistant" {
			return nil, &fieldError{fmt.Sprintf("messages[%d].tool_calls", i), fmt.Sprintf(`"messages[%d].tool_calls": only an assistant message makes calls`, i)}
		}
		for j, c := range m.ToolCalls {
			f := fmt.Sprintf("messages[%d].tool_calls[%d].function", i, j)
			var obj map[string]json.RawMessage
			if json.Unmarshal([]byte(c.Function.Arguments), &obj) != nil || obj == nil {
				return nil, &fieldError{f + ".arguments", fmt.Sprintf(`%q must be a JSON object, as text`, f+".arguments")}
			}
			if c.Function.Name == "" {
				return nil, &fieldError{f + ".name", fmt.Sprintf(`%q missing`, f+".name")}
			}
			out[i].ToolCalls = append(out[i].ToolCalls, tokenizer.ToolCall{ID: c.ID, Name: c.Function.Name, Arguments: json.RawMessage(c.Function.Arguments)})
		}
	}
	return out, nil
}

// hasToolMessages reports whether a conversation holds calls or results.
func hasToolMessages(msgs []openaiMessage) bool {
	for _, m := range msgs {
		if len(m.ToolCalls) > 0 || m.Role == "tool" || m.ToolCallID != "" {
			return true
		}
	}
	return false
}

// toolPrompt renders a conversation with tools (spec nil: none, but
// calls or results in the messages).
func toolPrompt(w *Weights, msgs []tokenizer.ToolMessage, spec *toolSpec) ([]int, error) {
	if len(msgs) == 0 {
		return nil, badRequest(`"messages" is empty`)
	}
	n := 0
	var tools json.RawMessage
	if spec != nil {
		tools, n = spec.raw, len(spec.raw)
	}
	for i, m := range msgs {
		n += len(m.Content)
		for _, c := range m.ToolCalls {
			n += len(c.Arguments)
		}
		if err := checkRole(i, &msgs[i].Role, true); err != nil {
			return nil, err
		}
	}
	if err := overflows(w, n); err != nil {
		return nil, err
	}
	if !w.Tok.HasChatTemplate() {
		return nil, badRequest("this model's tokenizer has no chat template (no %s token); use the completions endpoint", tokenizer.ImStart)
	}
	ids, err := w.Tok.RenderChatTools(msgs, tools, true)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	return ids, nil
}

// openaiToolStream answers a streamed chat request with tools: the role
// chunk at once, the text token by token up to the first call, and once
// the choice is whole its calls as OpenAI streams them (or, when they are
// malformed, the rest of the text).
func (s *Server) openaiToolStream(w http.ResponseWriter, r *http.Request, g *genRequest, c *openaiCommon, id, object string, created int64) {
	ctx := r.Context()
	ch, err := g.start(ctx)
	if err != nil {
		openAI.failErr(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(i int, delta map[string]any, reason any) bool {
		b, _ := json.Marshal(map[string]any{"id": id, "object": object, "created": created, "model": g.e.Name, "system_fingerprint": "golem",
			"choices": []any{map[string]any{"index": i, "delta": delta, "finish_reason": reason, "logprobs": nil}}})
		if _, err := w.Write(append(append([]byte("data: "), b...), '\n', '\n')); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	for i := 0; i < g.n; i++ {
		if !send(i, map[string]any{"role": "assistant", "content": ""}, nil) {
			return
		}
	}
	// Text streams as it comes, up to where a call may begin (held back
	// while it could be the start of <tool_call>); from the first call on
	// the answer is kept until it is whole.
	texts := make([]strings.Builder, g.n)
	emitted := make([]int, g.n) // bytes of each text sent as content
	inCall := make([]bool, g.n)
	total, left := 0, g.n
	for left > 0 {
		var ev choiceEvent
		select {
		case ev = <-ch:
		case <-ctx.Done():
			return
		}
		if ev.err != nil {
			b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": ev.err.Error(), "type": "server_error", "param": nil, "code": nil}})
			w.Write(append(append([]byte("data: "), b...), '\n', '\n'))
			return
		}
		i := ev.index
		texts[i].WriteString(ev.delta)
		text := texts[i].String()
		if !ev.done {
			if inCall[i] {
				continue
			}
			safe := len(text)
			if at := strings.Index(text[emitted[i]:], tokenizer.ToolCallOpen); at >= 0 {
				safe, inCall[i] = emitted[i]+at, true
			} else {
				for n := min(len(tokenizer.ToolCallOpen)-1, safe-emitted[i]); n > 0; n-- {
					if strings.HasSuffix(text, tokenizer.ToolCallOpen[:n]) {
						safe -= n
						break
					}
				}
			}
			if safe > emitted[i] {
				if !send(i, map[string]any{"content": text[emitted[i]:safe]}, nil) {
					return
				}
				emitted[i] = safe
			}
			continue
		}
		total += ev.tokens
		left--
		_, calls := g.tools.reply(text)
		reason := ev.reason
		rest := text[emitted[i]:]
		if len(calls) > 0 {
			rest = "" // the text before the calls was sent
			if at := strings.Index(text[emitted[i]:], tokenizer.ToolCallOpen); at > 0 {
				rest = text[emitted[i] : emitted[i]+at]
			}
		}
		if rest != "" && !send(i, map[string]any{"content": rest}, nil) {
			return
		}
		for k, call := range calls {
			reason = "tool_calls"
			if !send(i, map[string]any{"tool_calls": []any{map[string]any{"index": k, "id": call.ID, "type": "function",
				"function": map[string]any{"name": call.Name, "arguments": ""}}}}, nil) {
				return
			}
			// The arguments in pieces, as OpenAI streams them.
			args := string(call.Arguments)
			for len(args) > 0 {
				n := min(len(args), 8)
				if !send(i, map[string]any{"tool_calls": []any{map[string]any{"index": k, "function": map[string]any{"arguments": args[:n]}}}}, nil) {
					return
				}
				args = args[n:]
			}
		}
		if !send(i, map[string]any{}, reason) {
			return
		}
	}
	if c.StreamOptions != nil && c.StreamOptions.IncludeUsage {
		b, _ := json.Marshal(map[string]any{"id": id, "object": object, "created": created, "model": g.e.Name, "choices": []any{}, "usage": newUsage(g.promptTokens(), total)})
		w.Write(append(append([]byte("data: "), b...), '\n', '\n'))
	}
	w.Write([]byte("data: [DONE]\n\n"))
	rc.Flush()
}

// ollamaMessage is a message of Ollama's chat: with its calls (arguments
// as a JSON object) and, for role "tool", the function's name.
type ollamaMessage struct {
	Role      string `json:"role"`
	Content   string `json:"content"`
	ToolCalls []struct {
		Function struct {
			Index     *int            `json:"index"`
			Name      string          `json:"name"`
			Arguments json.RawMessage `json:"arguments"`
		} `json:"function"`
	} `json:"tool_calls"`
	ToolName string   `json:"tool_name"`
	Images   []string `json:"images"` // base64 (image.go)
}

// ollamaPrompt renders an Ollama conversation, with tools when it has
// them or its messages hold calls or results.
func ollamaPrompt(w *Weights, msgs []ollamaMessage, spec *toolSpec) ([]int, error) {
	if w.VLM != nil {
		return nil, &apiError{http.StatusInternalServerError, "", "serve: a vision-language model's conversation goes through ollamaVLMPrompt"}
	}
	tools := spec != nil
	plain := make([]tokenizer.Message, len(msgs))
	tms := make([]tokenizer.ToolMessage, len(msgs))
	for i, m := range msgs {
		plain[i] = tokenizer.Message{Role: m.Role, Content: m.Content}
		tms[i] = tokenizer.ToolMessage{Role: m.Role, Content: m.Content, Name: m.ToolName}
		tools = tools || m.Role == "tool" || len(m.ToolCalls) > 0
		for j, c := range m.ToolCalls {
			f := fmt.Sprintf("messages[%d].tool_calls[%d].function", i, j)
			args := bytes.TrimSpace(c.Function.Arguments)
			var obj map[string]json.RawMessage
			if len(args) == 0 || string(args) == "null" {
				args = []byte("{}")
			} else if json.Unmarshal(args, &obj) != nil || obj == nil {
				return nil, &fieldError{f + ".arguments", fmt.Sprintf(`%q must be a JSON object`, f+".arguments")}
			}
			if c.Function.Name == "" {
				return nil, &fieldError{f + ".name", fmt.Sprintf(`%q missing`, f+".name")}
			}
			tms[i].ToolCalls = append(tms[i].ToolCalls, tokenizer.ToolCall{Name: c.Function.Name, Arguments: json.RawMessage(args)})
		}
	}
	if !tools {
		return chatPrompt(w, plain)
	}
	return toolPrompt(w, tms, spec)
}

// ollamaToolAnswer answers an Ollama chat with tools: the answer whole,
// its calls in the message (streamed: in one chunk, then the final one).
func (s *Server) ollamaToolAnswer(w http.ResponseWriter, ctx context.Context, g *genRequest, stream bool, final func(text, reason string, tokens int) map[string]any) {
	texts, reasons, tokens, err := g.collect(ctx)
	if err != nil {
		if ctx.Err() == nil {
			ollama.failErr(w, err)
		}
		return
	}
	content, calls := g.tools.reply(texts[0])
	msg := map[string]any{"role": "assistant", "content": content}
	if len(calls) > 0 {
		list := make([]map[string]any, len(calls))
		for i, c := range calls {
			list[i] = map[string]any{"function": map[string]any{"index": i, "name": c.Name, "arguments": c.Arguments}}
		}
		msg["tool_calls"] = list
	}
	last := final("", reasons[0], tokens)
	if !stream {
		last["message"] = msg
		writeJSON(w, http.StatusOK, last)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	piece := map[string]any{"model": g.e.Name, "created_at": time.Now().UTC().Format(time.RFC3339Nano), "message": msg, "done": false}
	for _, v := range []any{piece, last} {
		b, _ := json.Marshal(v)
		w.Write(append(b, '\n'))
	}
}
