package synth

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/golem-ml/golem/tokenizer"
)

// Tool use. Two built-in tools, a calculator and a lookup table of the
// world's people, and two task kinds that teach a model to call them, in
// golem's chat format (tokenizer.ChatMLToolMessages: the tools in the system
// message, a call as <tool_call>{"name": ..., "arguments": {...}}</tool_call>,
// the result as a <tool_response> user turn). Each task is one of the two
// steps of a tool round trip: the call (the prompt is the question; the
// answer is the call) or the final answer (the prompt holds the call and
// its result; the answer uses the result). English only.

// Tool task kinds. They are not in the default mixture: ask for them with
// TaskOptions.Kinds.
const (
	KindCalculator = "calculator" // "Use the calculator: what is 347 * 29?"
	KindLookup     = "lookup"     // "Look it up: how old is Mira?"
)

// MatchToolCall: the response is one call of the tool Value whose
// arguments are right: for the calculator an expression that evaluates to
// Values[0], for the lookup table the name Values[0].
const MatchToolCall = "tool-call"

// FormatToolCall: the response is calls only.
const FormatToolCall = "tool-call"

// ToolsJSON are the built-in tools, as a chat request's "tools" list.
const ToolsJSON = `[{"type":"function","function":{"name":"calculator","description":"Evaluates arithmetic: + - * / and parentheses.","parameters":{"type":"object","properties":{"expression":{"type":"string","maxLength":64}},"required":["expression"],"additionalProperties":false}}},` +
	`{"type":"function","function":{"name":"lookup","description":"Finds a person: town, job, age, colour, pet, friend.","parameters":{"type":"object","properties":{"name":{"type":"string","maxLength":32}},"required":["name"],"additionalProperties":false}}}]`

// RunTool runs a built-in tool on a call's arguments and returns its
// result, the text the model reads back. w is the lookup table's world
// (nil: DefaultWorld()).
func RunTool(w *World, name string, args json.RawMessage) (string, error) {
	if w == nil {
		w = DefaultWorld()
	}
	switch name {
	case "calculator":
		var a struct{ Expression string }
		if err := json.Unmarshal(args, &a); err != nil || a.Expression == "" {
			return "", fmt.Errorf(`calculator: the arguments must be {"expression": "..."}`)
		}
		v, err := Calculate(a.Expression)
		if err != nil {
			return "", err
		}
		return FormatNumber(v), nil
	case "lookup":
		var a struct{ Name string }
		if err := json.Unmarshal(args, &a); err != nil || a.Name == "" {
			return "", fmt.Errorf(`lookup: the arguments must be {"name": "..."}`)
		}
		for _, p := range w.People {
			if strings.EqualFold(p.Name, strings.TrimSpace(a.Name)) {
				return w.record(p), nil
			}
		}
		return "", fmt.Errorf("lookup: nobody called %q", a.Name)
	}
	return "", fmt.Errorf("no tool %q (the built-in tools are calculator and lookup)", name)
}

// record is a person's row of the lookup table, as JSON.
func (w *World) record(p Person) string {
	b, _ := json.Marshal(struct {
		Name   string `json:"name"`
		Town   string `json:"town"`
		Job    string `json:"job"`
		Age    int    `json:"age"`
		Colour string `json:"colour"`
		Pet    string `json:"pet"`
		Friend string `json:"friend"`
	}{p.Name, w.Places[p.Place].Name, p.Job.En, p.Age, p.Colour.En, p.Pet.En, w.People[p.Friend].Name})
	return string(b)
}

// FormatNumber writes a calculator result: an integer as one, else up
// to 10 significant digits.
func FormatNumber(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 10, 64)
}

// Calculate evaluates an arithmetic expression: numbers (integers and
// decimals), + - * /, unary minus and parentheses, with the usual
// precedence. Errors name the position; expressions longer than 200 bytes
// or nested deeper than 32 parentheses, division by zero and results that
// are not finite are errors.
func Calculate(expr string) (float64, error) {
	if len(expr) > 200 {
		return 0, fmt.Errorf("calculator: the expression is %d bytes long; at most 200", len(expr))
	}
	p := &calc{s: expr}
	v, err := p.sum(0)
	if err != nil {
		return 0, err
	}
	p.space()
	if p.i < len(p.s) {
		return 0, p.errorf("unexpected %q", p.s[p.i])
	}
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("calculator: %q: the result is too large", expr)
	}
	return v, nil
}

// calc is a recursive-descent parser: sum = product {(+|-) product},
// product = unary {(*|/) unary}, unary = -unary | number | (sum).
type calc struct {
	s string
	i int
}

func (p *calc) errorf(format string, args ...any) error {
	return fmt.Errorf("calculator: %q at byte %d: %s", p.s, p.i, fmt.Sprintf(format, args...))
}

func (p *calc) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *calc) sum(depth int) (float64, error) {
	v, err := p.product(depth)
	for err == nil {
		p.space()
		if p.i >= len(p.s) || (p.s[p.i] != '+' && p.s[p.i] != '-') {
			break
		}
		op := p.s[p.i]
		p.i++
		var w float64
		if w, err = p.product(depth); op == '+' {
			v += w
		} else {
			v -= w
		}
	}
	return v, err
}

func (p *calc) product(depth int) (float64, error) {
	v, err := p.unary(depth)
	for err == nil {
		p.space()
		op := ""
		for _, o := range []string{"*", "/", "×", "÷"} {
			if strings.HasPrefix(p.s[p.i:], o) {
				op = o
			}
		}
		if op == "" {
			break
		}
		p.i += len(op)
		var w float64
		if w, err = p.unary(depth); err != nil {
			break
		}
		if op == "/" || op == "÷" {
			if w == 0 {
				return 0, p.errorf("division by zero")
			}
			v /= w
		} else {
			v *= w
		}
	}
	return v, err
}

func (p *calc) unary(depth int) (float64, error) {
	p.space()
	if depth > 32 {
		return 0, p.errorf("nested deeper than 32 parentheses")
	}
	if p.i >= len(p.s) {
		return 0, p.errorf("expected a number")
	}
	switch c := p.s[p.i]; {
	case c == '-':
		p.i++
		v, err := p.unary(depth + 1)
		return -v, err
	case c == '(':
		p.i++
		v, err := p.sum(depth + 1)
		if err != nil {
			return 0, err
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return 0, p.errorf("expected )")
		}
		p.i++
		return v, nil
	case c >= '0' && c <= '9' || c == '.':
		start := p.i
		for p.i < len(p.s) && (p.s[p.i] >= '0' && p.s[p.i] <= '9' || p.s[p.i] == '.' || p.s[p.i] == ',') {
			p.i++
		}
		v, err := strconv.ParseFloat(strings.ReplaceAll(p.s[start:p.i], ",", ""), 64)
		if err != nil {
			p.i = start
			return 0, p.errorf("%q is not a number", p.s[start:p.i])
		}
		return v, nil
	}
	return 0, p.errorf("expected a number, got %q", p.s[p.i])
}

// ToolSystem is the system message of the tool tasks: the built-in tools
// named (all with none), as golem's chat format writes them (one line
// each). It fails on a name that is not a built-in tool.
func ToolSystem(names ...string) (tokenizer.Message, error) {
	raw, _, err := Tools(names)
	if err != nil {
		return tokenizer.Message{}, err
	}
	msgs, err := tokenizer.ChatMLToolMessages([]tokenizer.ToolMessage{{Role: "user"}}, raw)
	if err != nil {
		return tokenizer.Message{}, err
	}
	return msgs[0], nil
}

// toolRound is one whole round trip: the question, the call that answers
// it, the tool's result and the final answer, with each step's check.
type toolRound struct {
	kind, key, user      string
	call                 tokenizer.ToolCall
	result, answer       string
	callWant, answerWant Want
}

// messages are the round trip's turns after the system message: the
// question, the call, the result and, when whole, the answer.
func (r toolRound) messages(whole bool) []tokenizer.Message {
	m := []tokenizer.Message{{Role: "user", Content: r.user}, {Role: "assistant", Content: tokenizer.FormatToolCall(r.call)},
		{Role: "user", Content: ToolResponse(r.result)}}
	if whole {
		m = append(m, tokenizer.Message{Role: "assistant", Content: r.answer})
	}
	return m
}

// ToolResponse is a tool's result as the user turn that gives it back.
func ToolResponse(result string) string { return "<tool_response>\n" + result + "\n</tool_response>" }

// toolTask makes a task of one step of a round trip: the call (the
// prompt is the question) or the final answer (the prompt holds the call
// and its result), each half the time.
func (g *gen) toolTask(r toolRound) Task {
	t := Task{Kind: r.kind, Key: r.key, Lang: "en", Prompt: []tokenizer.Message{g.tools, {Role: "user", Content: r.user}}}
	if g.r.chance(0.5) {
		t.Answer, t.Want = tokenizer.FormatToolCall(r.call), r.callWant
		return t
	}
	t.Prompt = append(t.Prompt[:1], r.messages(false)...)
	t.Answer, t.Want = r.answer, r.answerWant
	return t
}

func (g *gen) calcRound(split string) (toolRound, error) {
	var x arith
	err := g.draw(split, KindCalculator, func() string {
		x = arith{pick(g.r, []byte{'+', '-', '*'}), g.r.between(100, 999), g.r.between(10, 99)}
		return "calc:" + x.key()
	})
	if err != nil {
		return toolRound{}, err
	}
	r := strconv.Itoa(x.result())
	q := pick(g.r, []string{"Use the calculator: what is %s?", "What is %s? Use the calculator tool.", "Calculate %s with the calculator."})
	args, _ := json.Marshal(map[string]string{"expression": fmt.Sprintf("%d %c %d", x.a, x.op, x.b)})
	return toolRound{kind: KindCalculator, key: "calc:" + x.key(), user: fmt.Sprintf(q, x.expr()),
		call: tokenizer.ToolCall{Name: "calculator", Arguments: args}, result: r,
		answer:     fmt.Sprintf("The answer is %s.", r),
		callWant:   Want{Match: MatchToolCall, Value: "calculator", Values: []string{r}, Format: FormatToolCall, Strict: true},
		answerWant: Want{Match: MatchNumber, Value: r, Format: FormatAnswer, Given: []string{x.expr()}}}, nil
}

func (g *gen) lookupRound(split string) (toolRound, error) {
	p, err := g.person(split, KindLookup)
	if err != nil {
		return toolRound{}, err
	}
	attr := g.r.intn(numAttrs)
	q := pick(g.r, []string{"Look it up: %s", "%s Use the lookup tool.", "Check the lookup table: %s"})
	args, _ := json.Marshal(map[string]string{"name": p.Name})
	return toolRound{kind: KindLookup, key: personKey(p), user: fmt.Sprintf(q, g.w.question(p, attr, "en", g.r.intn(3))),
		call: tokenizer.ToolCall{Name: "lookup", Arguments: args}, result: g.w.record(p), answer: g.w.statement(p, attr, "en", 0),
		callWant:   Want{Match: MatchToolCall, Value: "lookup", Values: []string{p.Name}, Format: FormatToolCall, Strict: true},
		answerWant: g.factWant(p, attr, "en")}, nil
}

func (g *gen) calculator(lang, split string) (Task, error) {
	r, err := g.calcRound(split)
	return g.toolTask(r), err
}

func (g *gen) lookup(lang, split string) (Task, error) {
	r, err := g.lookupRound(split)
	return g.toolTask(r), err
}

// FollowUp is the second step of a round trip whose first step is the
// task t (a call step, MatchToolCall): when reply is the right call, it
// runs the call's tool and returns the prompt of the final answer (t's
// prompt, the call and the result) and the task of answering it, whose
// check wants the tool's result. ok is false when the reply is not the
// right call. w is the lookup table's world (nil: DefaultWorld()).
func (t Task) FollowUp(w *World, reply string) (next Task, ok bool) {
	if t.Want.Match != MatchToolCall || !t.Want.checkCall(reply) {
		return Task{}, false
	}
	_, calls, _ := tokenizer.ParseToolCalls(strings.TrimSpace(reply))
	result, err := RunTool(w, calls[0].Name, calls[0].Arguments)
	if err != nil {
		return Task{}, false
	}
	next = Task{Kind: t.Kind, Key: t.Key, Lang: t.Lang, Prompt: append(slices.Clone(t.Prompt),
		tokenizer.Message{Role: "assistant", Content: tokenizer.FormatToolCall(calls[0])}, tokenizer.Message{Role: "user", Content: ToolResponse(result)})}
	switch t.Kind {
	case KindCalculator:
		next.Want = Want{Match: MatchNumber, Value: result, Format: FormatAnswer}
	default:
		// The lookup table's answer is one fact of the record; the task's
		// answer step knows which (its Want); here any fact will not do.
		return Task{}, false
	}
	return next, true
}

// checkCall judges a response that must be one call (MatchToolCall).
func (w Want) checkCall(response string) bool {
	content, calls, err := tokenizer.ParseToolCalls(strings.TrimSpace(response))
	if err != nil || content != "" || len(calls) != 1 || calls[0].Name != w.Value || len(w.Values) != 1 {
		return false
	}
	switch w.Value {
	case "calculator":
		var a struct{ Expression string }
		if json.Unmarshal(calls[0].Arguments, &a) != nil {
			return false
		}
		v, err := Calculate(a.Expression)
		return err == nil && FormatNumber(v) == w.Values[0]
	case "lookup":
		var a struct{ Name string }
		return json.Unmarshal(calls[0].Arguments, &a) == nil && strings.EqualFold(strings.TrimSpace(a.Name), w.Values[0])
	}
	return false
}

// Tools returns the built-in tools named (all with none), as a chat
// request's "tools" list, and each one's name and parameters.
func Tools(names []string) (json.RawMessage, []ToolSpec, error) {
	var all []struct {
		Function struct {
			Name       string          `json:"name"`
			Parameters json.RawMessage `json:"parameters"`
		} `json:"function"`
	}
	var raw []json.RawMessage
	json.Unmarshal([]byte(ToolsJSON), &all)
	json.Unmarshal([]byte(ToolsJSON), &raw)
	var list []json.RawMessage
	var specs []ToolSpec
	for i, t := range all {
		if len(names) == 0 || slices.Contains(names, t.Function.Name) {
			list = append(list, raw[i])
			specs = append(specs, ToolSpec{t.Function.Name, t.Function.Parameters})
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(specs, func(s ToolSpec) bool { return s.Name == n }) {
			return nil, nil, fmt.Errorf("no built-in tool %q (the built-in tools are calculator and lookup)", n)
		}
	}
	b, _ := json.Marshal(list)
	return b, specs, nil
}

// ToolSpec is a tool's name and parameters' JSON schema.
type ToolSpec struct {
	Name       string
	Parameters json.RawMessage
}
