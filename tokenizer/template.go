package tokenizer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/text/unicode/norm"

	"github.com/golem-ml/golem/internal/regfile"
	"github.com/golem-ml/golem/tokenizer/chattemplate"
)

// chatTemplate is a model's own chat template, from tokenizer_config.json
// (a Hugging Face model folder) or SetChatTemplate. Tokenizers without one
// (golem's own, whose template is ChatML) render with RenderChat's
// built-in ChatML.
type chatTemplate struct {
	raw  json.RawMessage // chat_template as the config holds it, for Save
	def  *chattemplate.Template
	vars map[string]any // the special tokens: bos_token, eos_token, ...
}

// specialTokenKeys are the tokenizer_config.json fields transformers passes
// to a chat template (its special_tokens_map).
var specialTokenKeys = []string{"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}

// loadConfig reads dir/tokenizer_config.json, when there is one, and sets
// the tokenizer's chat template and its special tokens' names from it. A
// chat_template equal to golem's ChatML keeps the built-in ChatML.
func (t *Tokenizer) loadConfig(dir string) error {
	path := filepath.Join(dir, "tokenizer_config.json")
	data, err := regfile.ReadFile(path, maxFileSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	vars := map[string]any{}
	for _, k := range specialTokenKeys {
		if s, ok := tokenName(cfg[k]); ok {
			vars[k] = s
		}
	}
	if err := t.setChatTemplate(cfg["chat_template"], vars); err != nil {
		return fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return nil
}

// tokenName reads a special token field: a string, or an AddedToken
// object {"content": ...}.
func tokenName(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var tok struct {
		Content *string `json:"content"`
	}
	if json.Unmarshal(raw, &tok) == nil && tok.Content != nil {
		return *tok.Content, true
	}
	return "", false
}

// SetChatTemplate makes src (a Jinja chat template, as tokenizer_config.json
// holds it) the tokenizer's chat template; vars are the special tokens it
// sees (bos_token, eos_token, ...). src equal to ChatTemplate, or empty,
// restores the built-in ChatML.
func (t *Tokenizer) SetChatTemplate(src string, vars map[string]string) error {
	raw, err := json.Marshal(src)
	if err != nil {
		return err
	}
	v := map[string]any{}
	for k, s := range vars {
		v[k] = s
	}
	return t.setChatTemplate(raw, v)
}

func (t *Tokenizer) setChatTemplate(raw json.RawMessage, vars map[string]any) error {
	src, err := chattemplate.Select(raw, false)
	if err != nil {
		return err
	}
	if src == "" || src == ChatTemplate {
		t.chat = nil
		return nil
	}
	def, err := chattemplate.Parse(src)
	if err != nil {
		return fmt.Errorf("chat_template: %w", err)
	}
	// Conversations golem trains on and serves carry no tools, so the
	// "default" template is the one (golem chat-template render picks
	// "tool_use" for tools).
	t.chat = &chatTemplate{raw: raw, def: def, vars: vars}
	return nil
}

// ChatTemplateSource returns the Jinja source of the template RenderChat
// uses: the model's own, or ChatTemplate (ChatML).
func (t *Tokenizer) ChatTemplateSource() string {
	if t.chat != nil {
		return t.chat.def.Source()
	}
	return ChatTemplate
}

// FormatChat renders a conversation as text, with the model's chat template
// when it has one and as ChatML (the package's FormatChat) otherwise.
func (t *Tokenizer) FormatChat(msgs []Message, addGenerationPrompt bool) (string, error) {
	if t.chat == nil {
		return FormatChat(msgs, addGenerationPrompt)
	}
	return t.chat.render(msgs, addGenerationPrompt)
}

func (c *chatTemplate) render(msgs []Message, addGenerationPrompt bool) (string, error) {
	if len(msgs) == 0 {
		return "", errors.New("tokenizer: chat: no messages")
	}
	js, err := json.Marshal(msgs)
	if err != nil {
		return "", fmt.Errorf("tokenizer: chat: %w", err)
	}
	s, err := c.def.Render(context.Background(), chattemplate.Input{Messages: js, AddGenerationPrompt: addGenerationPrompt, Vars: c.vars})
	if err != nil {
		return "", fmt.Errorf("tokenizer: chat template: %w", err)
	}
	return s, nil
}

// renderTemplate is RenderChat with the model's template: the rendered
// text is encoded with its special tokens, as transformers'
// apply_chat_template(tokenize=True) does. The assistant mask marks the
// tokens holding any byte of an assistant message's content, found in the
// text in message order, and the special token right after it (the end
// of the turn); content the template rewrites (trims, splits) is matched
// trimmed, or not at all.
func (t *Tokenizer) renderTemplate(msgs []Message, addGenerationPrompt bool) ([]int, []bool, error) {
	text, err := t.chat.render(msgs, addGenerationPrompt)
	if err != nil {
		return nil, nil, err
	}
	ids := t.EncodeWithSpecial(text)
	mask := make([]bool, len(ids))
	// ends[i] is the end offset of token i in the decoded text.
	ends := make([]int, len(ids))
	var dec strings.Builder
	for i, id := range ids {
		dec.WriteString(t.tokens[id])
		ends[i] = dec.Len()
	}
	d := dec.String()
	cursor, tok := 0, 0
	for _, m := range msgs {
		c := m.Content
		if t.nfc {
			c = norm.NFC.String(c)
		}
		at := -1
		for _, s := range []string{c, strings.TrimSpace(c)} {
			if s == "" {
				break
			}
			if i := strings.Index(d[cursor:], s); i >= 0 {
				at, c = cursor+i, s
				break
			}
		}
		if at < 0 {
			continue
		}
		end := at + len(c)
		cursor = end
		if m.Role != "assistant" {
			continue
		}
		for tok < len(ids) && ends[tok] <= at {
			tok++
		}
		for ; tok < len(ids) && ends[tok]-len(t.tokens[ids[tok]]) < end; tok++ {
			mask[tok] = true
		}
		if tok < len(ids) && ends[tok]-len(t.tokens[ids[tok]]) == end && t.IsSpecial(ids[tok]) {
			mask[tok] = true
		}
	}
	return ids, mask, nil
}
