package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golem-ml/golem/tokenizer"
	"github.com/golem-ml/golem/tokenizer/chattemplate"
)

// chatTemplateRender runs golem chat-template render as a process.
func chatTemplateRender(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"chat-template", "render"}, args...)...)
	cmd.Env = append(os.Environ(), "GOLEM_TEST_MAIN=1")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// golem chat-template render prints exactly the prompt: golem's ChatML
// byte for byte, and for the templates of the oracle corpus (which
// tokenizer/chattemplate's tests hold equal to transformers') what the
// package renders, with tools, dates and special tokens.
func TestChatTemplateRender(t *testing.T) {
	dir := t.TempDir()
	msgs := `[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "2+2?"}]`
	mp := writeFile(t, dir, "msgs.json", msgs)
	chatml := writeFile(t, dir, "chatml.jinja", tokenizer.ChatTemplate)
	out, errOut, err := chatTemplateRender(t, "--template", chatml, "--messages", mp, "--add-generation-prompt")
	want := "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
	if err != nil || out != want {
		t.Fatalf("ChatML: %v %s\n got %q\nwant %q", err, errOut, out, want)
	}
	var native []tokenizer.Message
	if err := json.Unmarshal([]byte(msgs), &native); err != nil {
		t.Fatal(err)
	}
	if s, _ := tokenizer.FormatChat(native, true); s != want {
		t.Fatalf("FormatChat = %q", s)
	}

	td := "../../tokenizer/chattemplate/testdata/"
	var sets map[string]json.RawMessage
	b, err := os.ReadFile(td + "messages.json")
	if err != nil || json.Unmarshal(b, &sets) != nil {
		t.Fatalf("messages.json: %v", err)
	}
	tools, err := os.ReadFile(td + "tools.json")
	if err != nil {
		t.Fatal(err)
	}
	tc := writeFile(t, dir, "tool_calls.json", string(sets["tool_calls"]))

	// A tokenizer_config.json gives its template ("tool_use" with tools)
	// and its special tokens; the flags override them.
	cfg := writeFile(t, dir, "tokenizer_config.json", `{"bos_token": {"content": "<B>"}, "eos_token": "<E>", "chat_template": [
		{"name": "default", "template": "{{ bos_token }}{{ messages | length }}{{ eos_token }}"},
		{"name": "tool_use", "template": "{{ bos_token }}tools={{ tools | length }}{{ eos_token }}"}]}`)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--template", cfg, "--messages", mp}, "<B>4<E>"},
		{[]string{"--template", cfg, "--messages", mp, "--tools", td + "tools.json", "--eos-token", "</s>"}, "<B>tools=2</s>"},
	} {
		if out, errOut, err := chatTemplateRender(t, c.args...); err != nil || out != c.want {
			t.Errorf("%v: %q, %v %s; want %q", c.args, out, err, errOut, c.want)
		}
	}
	now, _ := time.Parse("2006-01-02", "2026-12-06")
	for _, name := range []string{"llama31", "qwen25", "deepseek", "features"} {
		src, err := os.ReadFile(td + "templates/" + name + ".jinja")
		if err != nil {
			t.Fatal(err)
		}
		tmpl, err := chattemplate.Parse(string(src))
		if err != nil {
			t.Fatal(err)
		}
		want, err := tmpl.Render(context.Background(), chattemplate.Input{Messages: sets["tool_calls"], Tools: tools, AddGenerationPrompt: true,
			Vars: map[string]any{"bos_token": "<s>", "eos_token": "</s>", "date_string": "1 Jan 2026"}, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		got, errOut, err := chatTemplateRender(t, "--template", td+"templates/"+name+".jinja", "--messages", tc, "--tools", td+"tools.json",
			"--add-generation-prompt", "--bos-token", "<s>", "--eos-token", "</s>", "--var", "date_string=1 Jan 2026", "--date", "2026-12-06")
		if err != nil || got != want {
			t.Errorf("%s: %v %s\n got %q\nwant %q", name, err, errOut, got, want)
		}
	}
}

// A template that raises, loops without end or is broken, and input that
// is not JSON, each exit non-zero with a message that says why.
func TestChatTemplateRenderErrors(t *testing.T) {
	dir := t.TempDir()
	mp := writeFile(t, dir, "msgs.json", `[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]`)
	for _, c := range []struct {
		name, template, messages, want string
	}{
		{"raise", "{% if messages[1].role == 'user' %}{{ raise_exception('roles must alternate') }}{% endif %}", mp, "the template raised: roles must alternate"},
		{"loop", "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}", mp, "template"},
		{"recursion", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", mp, "nest more than 256"},
		{"broken", "{% for m in messages %}", mp, "t.jinja: chattemplate: jinja parse"},
		{"bad json", "x", writeFile(t, dir, "bad.json", "[\n{\"role\": }]"), "bad.json: line 2, column 10"},
		{"not a list", "x", writeFile(t, dir, "obj.json", `{"role": "user"}`), "obj.json: want a JSON list"},
	} {
		if c.name == "loop" && testing.Short() {
			continue // full run only: 0.4 s of CPU to the step budget; chattemplate's TestRunawayTemplatesStop checks the budget, "raise" this command's error path
		}
		tp := writeFile(t, dir, "t.jinja", c.template)
		start := time.Now()
		out, errOut, err := chatTemplateRender(t, "--template", tp, "--messages", c.messages)
		if err == nil || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: err %v, stdout %q, stderr %q; want a failure saying %q", c.name, err, out, errOut, c.want)
		}
		if took := time.Since(start); took > 20*time.Second {
			t.Errorf("%s: took %v", c.name, took)
		}
		t.Logf("%s: %s after %v", c.name, strings.TrimSpace(errOut), time.Since(start).Round(time.Millisecond))
	}
}
