package tokenizer

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/tokenizer/chattemplate"
)

// gemmaLike imitates Gemma's template (turns between <start_of_turn> and
// <end_of_turn>, model for assistant, content trimmed, raise_exception on
// roles that do not alternate).
const gemmaLike = `{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}`

// templated returns a folder holding a tokenizer with <start_of_turn> and
// <end_of_turn> special tokens and, in its tokenizer_config.json, gemmaLike.
func templated(t *testing.T) string {
	t.Helper()
	tok, err := Train(TrainOptions{Texts: []string{sampleText(t, 60000)}, VocabSize: 400, Special: []string{"<bos>", "<start_of_turn>", "<end_of_turn>"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := tok.Save(dir); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, dir, map[string]any{"chat_template": gemmaLike, "bos_token": "<bos>", "eos_token": map[string]any{"content": "<end_of_turn>", "special": true}})
	return dir
}

func writeConfig(t *testing.T, dir string, cfg map[string]any) {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A model folder's chat_template is what RenderChat (and so every stage)
// renders with: the ids are the template's text encoded with its special
// tokens, the mask holds the assistant's words and the <end_of_turn> after
// them, and Save keeps the template.
func TestModelChatTemplate(t *testing.T) {
	dir := templated(t)
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ChatTemplateSource() != gemmaLike {
		t.Fatalf("the template of %s was not loaded", dir)
	}
	msgs := []Message{
		{Role: "user", Content: "What is 2+2?"},
		{Role: "assistant", Content: " 4, of course. "},
		{Role: "user", Content: "And 3+3?"},
		{Role: "assistant", Content: "6."},
	}
	want := "<bos><start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4, of course.<end_of_turn>\n<start_of_turn>user\nAnd 3+3?<end_of_turn>\n<start_of_turn>model\n6.<end_of_turn>\n"
	text, err := tok.FormatChat(msgs, false)
	if err != nil || text != want {
		t.Fatalf("FormatChat = %q, %v\nwant %q", text, err, want)
	}
	ids, mask, err := tok.RenderChat(msgs, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, tok.EncodeWithSpecial(want)) {
		t.Fatal("RenderChat's ids are not the template's text encoded with its special tokens")
	}
	if id, _ := tok.SpecialID("<start_of_turn>"); !slices.Contains(ids, id) {
		t.Fatal("<start_of_turn> is not a special token in the ids")
	}
	var sb strings.Builder
	for i, m := range mask {
		if m {
			sb.WriteString(tok.Decode(ids[i : i+1]))
		}
	}
	// The masked tokens may start with the newline a token shares with
	// the header.
	if got := strings.ReplaceAll(sb.String(), "\n4", "4"); got != "4, of course.<end_of_turn>6.<end_of_turn>" {
		t.Errorf("assistant tokens = %q", got)
	}
	gen, err := tok.FormatChat(msgs[:3], true)
	if err != nil || !strings.HasSuffix(gen, "And 3+3?<end_of_turn>\n<start_of_turn>model\n") {
		t.Errorf("with the generation prompt: %q, %v", gen, err)
	}

	// Generation stops at the template's end of turn.
	eot, _ := tok.SpecialID("<end_of_turn>")
	if id, ok := tok.TurnEnd(); !ok || id != eot || tok.EndIDs()[0] != eot || !tok.HasChatTemplate() {
		t.Errorf("TurnEnd = %d, %v; EndIDs = %v; want <end_of_turn> (%d) first", id, ok, tok.EndIDs(), eot)
	}

	// The template's own error, with its message.
	_, _, err = tok.RenderChat([]Message{{Role: "user", Content: "a"}, {Role: "user", Content: "b"}}, true)
	if err == nil || !strings.Contains(err.Error(), "Conversation roles must alternate") {
		t.Errorf("roles that do not alternate: %v", err)
	}

	// Save keeps the template and the special tokens it names.
	out := t.TempDir()
	if err := tok.Save(out); err != nil {
		t.Fatal(err)
	}
	again, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if again.ChatTemplateSource() != gemmaLike {
		t.Error("Save dropped the model's chat template")
	}
	if text2, _ := again.FormatChat(msgs, false); text2 != want {
		t.Errorf("after Save and Load: %q", text2)
	}
}

// golem's own models keep ChatML, byte for byte: the template Save writes
// is ChatTemplate, Load renders it with the built-in ChatML, and that is
// what the Jinja template renders.
func TestChatMLStaysDefault(t *testing.T) {
	dir := t.TempDir()
	if err := smallTrained(t).Save(dir); err != nil {
		t.Fatal(err)
	}
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tok.chat != nil || tok.ChatTemplateSource() != ChatTemplate {
		t.Fatal("a golem tokenizer's ChatML was loaded as a Jinja template")
	}
	b, err := os.ReadFile("chattemplate/testdata/templates/chatml.jinja")
	if err != nil || string(b) != ChatTemplate {
		t.Fatalf("chattemplate/testdata/templates/chatml.jinja (in the oracle's corpus) is not ChatTemplate: %v", err)
	}
	jinja, err := chattemplate.Parse(ChatTemplate)
	if err != nil {
		t.Fatal(err)
	}
	msgs := []Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi\n"}, {Role: "assistant", Content: "Hello!"}}
	js, _ := json.Marshal(msgs)
	for _, gen := range []bool{false, true} {
		native, err := tok.FormatChat(msgs, gen)
		if err != nil {
			t.Fatal(err)
		}
		viaJinja, err := jinja.Render(context.Background(), chattemplate.Input{Messages: js, AddGenerationPrompt: gen})
		if err != nil || viaJinja != native {
			t.Errorf("ChatML: native %q, Jinja %q, %v", native, viaJinja, err)
		}
		// SetChatTemplate(ChatTemplate) is the built-in ChatML too.
		if err := tok.SetChatTemplate(ChatTemplate, nil); err != nil || tok.chat != nil {
			t.Errorf("SetChatTemplate(ChatTemplate): %v", err)
		}
	}
}

// A broken chat_template is an error naming the file, at Load.
func TestBadChatTemplate(t *testing.T) {
	dir := t.TempDir()
	if err := smallTrained(t).Save(dir); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tmpl any
		want string
	}{
		{"{% for m in messages %}{{ m.content }", "chat_template"},
		{[]map[string]string{{"name": "rag", "template": "x"}}, "none is \"default\""},
		{42, "chat_template"},
	} {
		writeConfig(t, dir, map[string]any{"chat_template": c.tmpl})
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "tokenizer_config.json")) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("chat_template %v: err = %v", c.tmpl, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "tokenizer_config.json") {
		t.Errorf("a truncated tokenizer_config.json: %v", err)
	}
}
