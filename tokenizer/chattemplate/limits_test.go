package chattemplate

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// A template that loops, recurses or grows without end stops with a clear
// error, in bounded time and memory.
func TestRunawayTemplatesStop(t *testing.T) {
	msgs := json.RawMessage(`[{"role": "user", "content": "hi"}]`)
	for _, c := range []struct{ name, src, want string }{
		{"huge range", "{% for i in range(10**9) %}x{% endfor %}", "Range too big"},
		{"nested loops", "{% for i in range(100000) %}{% for j in range(100000) %}{% if j < 0 %}{{ j }}{% endif %}{% endfor %}{% endfor %}", "steps"},
		{"output", "{% for i in range(100000) %}{{ 'x' * 1000000 }}{% endfor %}", "output exceeds"},
		{"recursion", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "nest more than"},
		{"doubling", "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}", "bytes"},
		{"repeat", "{{ 'x' * 10**12 }}", "bytes"},
		{"join", "{{ range(100000) | join('y' * 1000000) }}", "join"},
		{"replace", "{{ ('x' * 1000000) | replace('x', 'y' * 1000) }}", "replace"},
		{"batch fill", "{{ [1] | batch(10**12, 'x') | list }}", "batch"},
		{"list growth", "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}", "bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tmpl, err := Parse(c.src)
			if err != nil {
				t.Fatal(err)
			}
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			out, err := tmpl.Render(context.Background(), Input{Messages: msgs})
			took := time.Since(start)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("rendered %d bytes, want an error", len(out))
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to mention %q", err, c.want)
			}
			if took > 5*time.Second {
				t.Errorf("took %v", took)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 2<<30 {
				t.Errorf("allocated %d MB", grew>>20)
			}
			t.Logf("%v after %v", err, took.Round(time.Millisecond))
		})
	}
}

// The timeout and the caller's context stop a render that is within its
// step budget.
func TestRenderTimeoutAndCancel(t *testing.T) {
	tmpl, err := Parse("{% set r = range(1000) %}{% for i in r %}{% for j in r %}{% for k in r %}{% endfor %}{% endfor %}{% endfor %}")
	if err != nil {
		t.Fatal(err)
	}
	in := Input{Messages: json.RawMessage(`[]`)}
	start := time.Now()
	_, err = tmpl.RenderLimited(context.Background(), in, Limits{Steps: 1 << 60, Timeout: 100 * time.Millisecond})
	var le *LimitError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "took more than 100ms") {
		t.Fatalf("err = %v, want the timeout", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("stopped after %v", took)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = tmpl.RenderLimited(ctx, in, Limits{Steps: 1 << 60})
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("err = %v, want context canceled", err)
	}
}

// raise_exception's message comes back as it is, as a *RaiseError.
func TestRaiseException(t *testing.T) {
	tmpl, err := Parse("{% if messages[0].role != 'system' %}{{ raise_exception('First message must be system, got ' + messages[0].role) }}{% endif %}")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tmpl.Render(context.Background(), Input{Messages: json.RawMessage(`[{"role": "user", "content": "x"}]`)})
	var re *RaiseError
	if !errors.As(err, &re) || re.Message != "First message must be system, got user" {
		t.Fatalf("err = %#v", err)
	}
}

// Bad input is an error naming what is wrong, never a panic.
func TestBadInput(t *testing.T) {
	if _, err := Parse("{% for x in %}"); err == nil {
		t.Error("a broken template parsed")
	}
	if _, err := Parse(strings.Repeat("x", MaxSource+1)); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Errorf("a huge template: %v", err)
	}
	tmpl, err := Parse("{{ messages }}")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in   Input
		want string
	}{
		{Input{}, "messages: none given"},
		{Input{Messages: json.RawMessage(`{"role": "user"}`)}, "messages: not a JSON list"},
		{Input{Messages: json.RawMessage(`[{"role": `)}, "messages: json"},
		{Input{Messages: json.RawMessage(`[]`), Tools: json.RawMessage(`{}`)}, "tools: not a JSON list"},
		{Input{Messages: json.RawMessage(strings.Repeat("[", 100000))}, "nested more than"},
	} {
		_, err := tmpl.Render(context.Background(), c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want %q", c.in, err, c.want)
		}
	}
}

func TestSelect(t *testing.T) {
	list := json.RawMessage(`[{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}]`)
	for _, c := range []struct {
		raw   string
		tools bool
		want  string
		err   bool
	}{
		{`"X"`, false, "X", false},
		{`null`, false, "", false},
		{string(list), false, "D", false},
		{string(list), true, "T", false},
		{`[{"name": "rag", "template": "R"}]`, false, "", true},
		{`42`, false, "", true},
	} {
		got, err := Select(json.RawMessage(c.raw), c.tools)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("Select(%s, %v) = %q, %v", c.raw, c.tools, got, err)
		}
	}
}

// One compiled template renders concurrently (serve renders every
// request's prompt with its model's one template).
func TestConcurrentRenders(t *testing.T) {
	src, err := os.ReadFile("testdata/templates/deepseek.jinja")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := Parse(string(src))
	if err != nil {
		t.Fatal(err)
	}
	var sets map[string]json.RawMessage
	readJSON(t, "testdata/messages.json", &sets)
	in := Input{Messages: sets["tool_calls"], AddGenerationPrompt: true, Vars: map[string]any{"bos_token": "<s>"}}
	want, err := tmpl.Render(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for range 20 {
				got, err := tmpl.Render(context.Background(), in)
				if err == nil && got != want {
					err = errors.New("a concurrent render differs")
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// Deeply nested templates are errors, not a stack that exhausts the
// process (before the limit, 400,000 "(" killed it).
func TestDeeplyNestedTemplates(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"{{ " + strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000) + " }}", "expression nested more than 256 deep"},
		{"{{ " + strings.Repeat("[", 100000) + " }}", "expression nested more than 256 deep"},
		{strings.Repeat("{% if true %}", 20000), "blocks nested more than 256 deep"},
		{"{{ " + strings.Repeat("not ", 100000) + "1 }}", "expression nested more than 256 deep"},
		{"{{ " + strings.Repeat("-", 100000) + "1 }}", "expression nested more than 256 deep"},
		{"{{ 1" + strings.Repeat("+1", 100000) + " }}", "expression nested more than 10000 deep"},
	} {
		tmpl, err := Parse(c.src)
		if err == nil {
			_, err = tmpl.Render(context.Background(), Input{Messages: json.RawMessage(`[]`)})
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.30s...: err = %v, want %q", c.src, err, c.want)
		}
	}
}
