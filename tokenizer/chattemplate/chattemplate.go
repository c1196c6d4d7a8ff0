// Package chattemplate renders the Jinja chat templates of Hugging Face
// model folders (tokenizer_config.json's chat_template) exactly as
// transformers' apply_chat_template does: a sandboxed environment with
// trim_blocks and lstrip_blocks, loop controls ({% break %}, {% continue %}),
// namespace(), transformers' tojson filter (ensure_ascii=False, indent,
// separators, sort_keys), raise_exception and strftime_now, and the
// variables messages, tools, documents, add_generation_prompt and the
// special tokens.
//
// The engine is golem's copy of github.com/ardanlabs/jinja v1.8.0
// (internal/jinja), with what exactness and safety needed added: Python's
// + and * and / rules, Python string escapes, strftime, order-keeping JSON,
// jinja2's lazy generators (map, select, selectattr, items... iterable
// once, with no length and no JSON form),
// Jinja's sandbox range limit, and a budget. Each render is bounded: a
// template that loops, recurses or grows its output without end stops with
// a *LimitError (steps, output bytes, call depth, and a timeout), never a
// hang or an exhausted process.
package chattemplate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/golem-ml/golem/internal/jinja"
)

// MaxSource bounds a template's size (real ones are a few to tens of KB).
const MaxSource = 1 << 20

// Limits bound one render.
type Limits struct {
	Steps   int64         // statements and expressions evaluated
	Output  int           // bytes of output, and of any one value built
	Timeout time.Duration // wall time
}

// DefaultLimits are far above what real templates need (a long
// conversation takes some thousands of steps and a few hundred KB).
var DefaultLimits = Limits{Steps: 1_000_000, Output: 16 << 20, Timeout: 5 * time.Second}

// Template is a compiled chat template. It is safe for concurrent use.
type Template struct {
	src string
	t   *jinja.Template
}

// Parse compiles a chat template.
func Parse(src string) (*Template, error) {
	if len(src) > MaxSource {
		return nil, fmt.Errorf("chattemplate: the template is %d bytes (the limit is %d)", len(src), MaxSource)
	}
	// Jinja drops one newline that ends the source (keep_trailing_newline
	// is off in transformers' environment).
	t, err := compile(strings.TrimSuffix(src, "\n"))
	if err != nil {
		return nil, fmt.Errorf("chattemplate: %w", err)
	}
	return &Template{src: src, t: t}, nil
}

// compile runs the parser, turning a fault of it into an error.
func compile(src string) (t *jinja.Template, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("jinja parse: internal error: %v", r)
		}
	}()
	return jinja.Compile(src)
}

// Source returns the template's text.
func (t *Template) Source() string { return t.src }

// Input is what apply_chat_template passes to a template.
type Input struct {
	// Messages is the conversation, a JSON list of objects such as
	// {"role": "user", "content": "..."}; tool calls and tool results are
	// passed through as given.
	Messages json.RawMessage
	// Tools is a JSON list of tool schemas, or nil for none.
	Tools json.RawMessage
	// AddGenerationPrompt asks for the start of the assistant's turn.
	AddGenerationPrompt bool
	// Vars are further variables: the special tokens (bos_token,
	// eos_token, ...) and template options (date_string, enable_thinking).
	// A json.RawMessage value is decoded as JSON; other values are Go
	// strings, bools, numbers, slices and maps.
	Vars map[string]any
	// Now is strftime_now's time; the zero time means the clock.
	Now time.Time
}

// RaiseError is a template's raise_exception(message).
type RaiseError struct{ Message string }

func (e *RaiseError) Error() string { return e.Message }

// LimitError is a render stopped by a limit or its context.
type LimitError = jinja.LimitError

// Render renders in with DefaultLimits.
func (t *Template) Render(ctx context.Context, in Input) (string, error) {
	return t.RenderLimited(ctx, in, DefaultLimits)
}

// RenderLimited renders in within lim. A template's raise_exception
// returns a *RaiseError, a limit or ctx a *LimitError.
func (t *Template) RenderLimited(ctx context.Context, in Input, lim Limits) (string, error) {
	data, err := in.values()
	if err != nil {
		return "", fmt.Errorf("chattemplate: %w", err)
	}
	if lim.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, lim.Timeout, fmt.Errorf("the render took more than %v", lim.Timeout))
		defer cancel()
	}
	now := in.Now
	data["raise_exception"] = jinja.NewCallable("raise_exception", func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
		msg := ""
		if len(args) > 0 {
			msg = args[0].String()
			if args[0].IsString() {
				msg = args[0].AsString()
			}
		}
		return jinja.Undefined(), &RaiseError{Message: msg}
	})
	data["strftime_now"] = jinja.NewCallable("strftime_now", func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
		if len(args) != 1 || !args[0].IsString() {
			return jinja.Undefined(), errors.New("strftime_now: want one format string")
		}
		tm := now
		if tm.IsZero() {
			tm = time.Now()
		}
		return jinja.NewString(jinja.Strftime(tm, args[0].AsString())), nil
	})
	out, err := t.t.RenderLimited(ctx, jinja.Limits{MaxSteps: lim.Steps, MaxOutput: lim.Output}, data)
	if err != nil {
		var re *RaiseError
		if errors.As(err, &re) {
			return "", re
		}
		var le *LimitError
		if errors.As(err, &le) {
			return "", fmt.Errorf("chattemplate: %w", le)
		}
		return "", fmt.Errorf("chattemplate: %w", err)
	}
	return out, nil
}

func (in Input) values() (map[string]jinja.Value, error) {
	data := map[string]jinja.Value{}
	for _, k := range slices.Sorted(maps.Keys(in.Vars)) {
		v, err := toValue(in.Vars[k])
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", k, err)
		}
		data[k] = v
	}
	if len(in.Messages) == 0 {
		return nil, errors.New("messages: none given")
	}
	msgs, err := jinja.ParseJSON(in.Messages)
	if err != nil {
		return nil, fmt.Errorf("messages: %w", err)
	}
	if !msgs.IsList() {
		return nil, errors.New("messages: not a JSON list")
	}
	data["messages"] = msgs
	data["tools"] = jinja.None()
	if len(in.Tools) > 0 {
		tools, err := jinja.ParseJSON(in.Tools)
		if err != nil {
			return nil, fmt.Errorf("tools: %w", err)
		}
		if !tools.IsList() && !tools.IsNone() {
			return nil, errors.New("tools: not a JSON list")
		}
		data["tools"] = tools
	}
	data["documents"] = jinja.None()
	data["add_generation_prompt"] = jinja.NewBool(in.AddGenerationPrompt)
	return data, nil
}

func toValue(v any) (jinja.Value, error) {
	if raw, ok := v.(json.RawMessage); ok {
		return jinja.ParseJSON(raw)
	}
	return jinja.FromGoValue(v), nil
}

// Select picks the template of a tokenizer_config.json chat_template
// field, which is a template or a list of {"name", "template"}: as
// transformers does, "tool_use" when tools are given and it exists, else
// "default". It returns "" when raw is absent or null.
func Select(raw json.RawMessage, withTools bool) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var named []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &named); err != nil {
		return "", errors.New("chat_template: neither a string nor a list of {\"name\", \"template\"}")
	}
	byName := map[string]string{}
	for i, n := range named {
		if n.Name == "" {
			return "", fmt.Errorf("chat_template[%d]: no name", i)
		}
		byName[n.Name] = n.Template
	}
	if withTools {
		if t, ok := byName["tool_use"]; ok {
			return t, nil
		}
	}
	if t, ok := byName["default"]; ok {
		return t, nil
	}
	return "", fmt.Errorf("chat_template: %d named templates and none is \"default\"", len(named))
}
