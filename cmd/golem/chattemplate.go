package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golem-ml/golem/internal/regfile"
	"github.com/golem-ml/golem/tokenizer/chattemplate"
)

func init() {
	register("chat-template render", "print the prompt a chat template (Jinja, as transformers renders it) makes of messages", runChatTemplateRender)
}

// maxInputFile bounds the files chat-template render reads.
const maxInputFile = 64 << 20

func runChatTemplateRender(args []string) error {
	fs := newFlags("chat-template render", `golem chat-template render --template tokenizer_config.json --messages messages.json --add-generation-prompt`)
	tmplPath := fs.String("template", "", "the chat template: a .jinja file, or a tokenizer_config.json (its chat_template, bos_token and eos_token)")
	msgsPath := fs.String("messages", "", "a JSON file with the list of messages ({\"role\", \"content\"}, tool calls and tool results as given)")
	toolsPath := fs.String("tools", "", "a JSON file with the list of tools (JSON schemas); none by default")
	agp := fs.Bool("add-generation-prompt", false, "end with the start of the assistant's turn")
	bos := fs.String("bos-token", "", "the template's bos_token (undefined when not given)")
	eos := fs.String("eos-token", "", "the template's eos_token (undefined when not given)")
	var vars tokStrings
	fs.Var(&vars, "var", "a template variable K=V, V as JSON when it parses (true, 3, \"s\", [..]) and as a string otherwise (repeat for several)")
	date := fs.String("date", "", "strftime_now's date, YYYY-MM-DD (default: now)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *tmplPath == "" || *msgsPath == "" {
		return usageError{errors.New("chat-template render: need --template FILE and --messages FILE (golem chat-template render --help lists the flags)")}
	}
	in := chattemplate.Input{AddGenerationPrompt: *agp, Vars: map[string]any{}}
	var err error
	if in.Messages, err = readJSONList(*msgsPath, "--messages"); err != nil {
		return err
	}
	if *toolsPath != "" {
		if in.Tools, err = readJSONList(*toolsPath, "--tools"); err != nil {
			return err
		}
	}
	src, tokens, err := readTemplate(*tmplPath, in.Tools != nil)
	if err != nil {
		return err
	}
	for k, v := range tokens {
		in.Vars[k] = v
	}
	for _, kv := range vars {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("chat-template render: --var %q: want K=V", kv)
		}
		if json.Valid([]byte(v)) {
			in.Vars[k] = json.RawMessage(v)
		} else {
			in.Vars[k] = v
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "bos-token":
			in.Vars["bos_token"] = *bos
		case "eos-token":
			in.Vars["eos_token"] = *eos
		}
	})
	if *date != "" {
		if in.Now, err = time.Parse("2006-01-02", *date); err != nil {
			return fmt.Errorf("chat-template render: --date %q: want YYYY-MM-DD", *date)
		}
	}
	tmpl, err := chattemplate.Parse(src)
	if err != nil {
		return fmt.Errorf("%s: %w", *tmplPath, err)
	}
	out, err := tmpl.Render(context.Background(), in)
	if err != nil {
		var re *chattemplate.RaiseError
		if errors.As(err, &re) {
			return fmt.Errorf("%s: the template raised: %s", *tmplPath, re.Message)
		}
		return fmt.Errorf("%s: %w", *tmplPath, err)
	}
	_, err = os.Stdout.WriteString(out)
	return err
}

// readTemplate reads a .jinja file, or the chat_template of a
// tokenizer_config.json ("tool_use" when tools are given and it has one)
// with the config's bos_token and eos_token.
func readTemplate(path string, withTools bool) (string, map[string]string, error) {
	b, err := regfile.ReadFile(path, maxInputFile)
	if err != nil {
		return "", nil, fmt.Errorf("chat-template render: --template: %w", err)
	}
	if !strings.HasSuffix(path, ".json") {
		return string(b), nil, nil
	}
	var cfg struct {
		ChatTemplate json.RawMessage `json:"chat_template"`
		BOS          json.RawMessage `json:"bos_token"`
		EOS          json.RawMessage `json:"eos_token"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return "", nil, fmt.Errorf("%s: %s", path, jsonErr(b, err))
	}
	src, err := chattemplate.Select(cfg.ChatTemplate, withTools)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", path, err)
	}
	if src == "" {
		return "", nil, fmt.Errorf("%s: no chat_template", path)
	}
	tokens := map[string]string{}
	for k, raw := range map[string]json.RawMessage{"bos_token": cfg.BOS, "eos_token": cfg.EOS} {
		var s string
		var obj struct{ Content *string }
		if json.Unmarshal(raw, &s) == nil {
			tokens[k] = s
		} else if json.Unmarshal(raw, &obj) == nil && obj.Content != nil {
			tokens[k] = *obj.Content
		}
	}
	return src, tokens, nil
}

// readJSONList reads a file holding a JSON list.
func readJSONList(path, flagName string) (json.RawMessage, error) {
	b, err := regfile.ReadFile(path, maxInputFile)
	if err != nil {
		return nil, fmt.Errorf("chat-template render: %s: %w", flagName, err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%s: %s", path, jsonErr(b, err))
	}
	if _, ok := v.([]any); !ok {
		return nil, fmt.Errorf("%s: want a JSON list", path)
	}
	return b, nil
}

// jsonErr names the line and column of a JSON syntax error.
func jsonErr(b []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		// Offset is just past the byte that broke the syntax.
		off := max(0, min(int(se.Offset), len(b))-1)
		line := 1 + strings.Count(string(b[:off]), "\n")
		col := off - strings.LastIndexByte(string(b[:off]), '\n')
		return fmt.Sprintf("line %d, column %d: %v", line, col, err)
	}
	return err.Error()
}
