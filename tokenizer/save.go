package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/golem-ml/golem/internal/atomicfile"
)

// Save writes dir/tokenizer.json, in the format of Hugging Face tokenizers
// (which loads it with Tokenizer.from_file, and transformers with
// PreTrainedTokenizerFast), and dir/tokenizer_config.json with the special
// tokens and, when the tokenizer has <|im_start|> and <|im_end|>, the ChatML
// chat template. It creates dir if needed.
func (t *Tokenizer) Save(dir string) error { return t.SaveForModel(dir, 0) }

// AddedToken is a special token a model's folder has past the
// tokenizer's vocabulary (SaveForModel): a LLaVA folder's "<image>",
// whose id is the image token's row.
type AddedToken struct {
	Content string
	ID      int
}

// SaveForModel is Save for a model of context tokens: tokenizer_config.json
// says model_max_length: context (none when context is 0, for a
// tokenizer alone, which transformers reads as no limit). extra are
// special tokens of the model's past the vocabulary (ids VocabSize() or
// more), written as added tokens in both files as transformers writes
// them (tokenizer.json's added_tokens, tokenizer_config.json's
// added_tokens_decoder); RemoveSpecial drops one again on loading.
func (t *Tokenizer) SaveForModel(dir string, context int, extra ...AddedToken) error {
	seen := map[int]bool{}
	for _, a := range extra {
		switch {
		case a.Content == "":
			return errors.New("tokenizer: an added token's content is empty")
		case a.ID < len(t.tokens) || a.ID >= maxTokenID(len(t.tokens)+len(extra)) || seen[a.ID]:
			return fmt.Errorf("tokenizer: added token %q: id %d is not a free id past the vocabulary of %d", a.Content, a.ID, len(t.tokens))
		case slices.Contains(t.tokens, a.Content):
			return fmt.Errorf("tokenizer: added token %q is a token of the vocabulary already", a.Content)
		}
		seen[a.ID] = true
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	var buf bytes.Buffer
	t.writeJSON(&buf, extra)
	// Each file is replaced whole (a new file renamed over the name), so
	// a crash leaves the old file or the new one, and a name that links
	// to another folder's file is replaced, never written through.
	if err := atomicfile.WriteFile(filepath.Join(dir, "tokenizer.json"), buf.Bytes()); err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	cfg, err := t.configJSON(context, extra)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "tokenizer_config.json"), cfg); err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	return nil
}

// jsonString returns s as a JSON string, without HTML escaping.
func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return bytes.TrimRight(b.Bytes(), "\n")
}

// WriteJSON writes the tokenizer as a Hugging Face tokenizer.json.
func (t *Tokenizer) WriteJSON(buf *bytes.Buffer) { t.writeJSON(buf, nil) }

// writeJSON is WriteJSON with extra special tokens past the vocabulary
// (SaveForModel).
func (t *Tokenizer) writeJSON(buf *bytes.Buffer, extra []AddedToken) {
	isSpecial := map[int]bool{}
	buf.WriteString("{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [")
	n := 0
	added := func(id int, content string, special bool) {
		if n > 0 {
			buf.WriteByte(',')
		}
		n++
		fmt.Fprintf(buf, "\n    {\"id\": %d, \"content\": %s, \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": %t}", id, jsonString(content), special)
	}
	for _, s := range t.Specials() {
		id := t.specialIDs[s]
		isSpecial[id] = true
		added(id, s, true)
	}
	if t.sp != nil { // SentencePiece's user-defined pieces: added tokens, not special
		for _, u := range t.sp.userDefined {
			added(int(t.ids[u]), spaceToMeta(u), false)
		}
	}
	for _, a := range extra {
		added(a.ID, a.Content, true)
	}
	buf.WriteString("\n  ],\n")
	if t.sp != nil {
		t.writeSentencePieceJSON(buf)
		return
	}
	if t.model == modelChar {
		buf.WriteString(`  "normalizer": null,
  "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "[\\s\\S]"}, "behavior": "Isolated", "invert": false},
  "post_processor": null,
  "decoder": {"type": "Fuse"},
  "model": {
    "type": "WordLevel",
    "unk_token": "<unk>",
    "vocab": {`)
		t.writeVocab(buf, isSpecial, func(s string) string { return s })
		buf.WriteString("\n    }\n  }\n}\n")
		return
	}
	if t.nfc {
		buf.WriteString("  \"normalizer\": {\"type\": \"NFC\"},\n")
	} else {
		buf.WriteString("  \"normalizer\": null,\n")
	}
	prefix := strconv.FormatBool(t.addPrefixSpace)
	if t.pattern == PatternGPT2 {
		buf.WriteString(`  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": ` + prefix + `, "trim_offsets": true, "use_regex": true},` + "\n")
	} else {
		fmt.Fprintf(buf, `  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": %s}, "behavior": "Isolated", "invert": false},
    {"type": "ByteLevel", "add_prefix_space": %s, "trim_offsets": true, "use_regex": false}
  ]},
`, jsonString(t.pattern.Regexp()), prefix)
	}
	fmt.Fprintf(buf, `  "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
  "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
  "model": {
    "type": "BPE",
    "dropout": null,
    "unk_token": null,
    "continuing_subword_prefix": null,
    "end_of_word_suffix": null,
    "fuse_unk": false,
    "byte_fallback": false,
    "ignore_merges": %t,
    "vocab": {`, t.ignoreMerges)
	t.writeVocab(buf, isSpecial, byteLevelEncode)
	buf.WriteString("\n    },\n    \"merges\": [")
	for i, m := range t.mergeAt {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString("\n      ")
		buf.Write(jsonString(byteLevelEncode(t.tokens[m.a]) + " " + byteLevelEncode(t.tokens[m.b])))
	}
	buf.WriteString("\n    ]\n  }\n}\n")
}

func (t *Tokenizer) writeVocab(buf *bytes.Buffer, isSpecial map[int]bool, form func(string) string) {
	first := true
	for id, tok := range t.tokens {
		if tok == "" || isSpecial[id] {
			continue
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		buf.WriteString("\n      ")
		buf.Write(jsonString(form(tok)))
		fmt.Fprintf(buf, ": %d", id)
	}
}

// configJSON returns tokenizer_config.json for transformers.
func (t *Tokenizer) configJSON(context int, extra []AddedToken) ([]byte, error) {
	type added struct {
		Content    string `json:"content"`
		Lstrip     bool   `json:"lstrip"`
		Normalized bool   `json:"normalized"`
		Rstrip     bool   `json:"rstrip"`
		SingleWord bool   `json:"single_word"`
		Special    bool   `json:"special"`
	}
	cfg := map[string]any{
		"tokenizer_class":              "PreTrainedTokenizerFast",
		"clean_up_tokenization_spaces": false,
	}
	if context > 0 {
		cfg["model_max_length"] = context
	}
	dec := map[string]added{}
	for _, s := range t.Specials() {
		dec[strconv.Itoa(t.specialIDs[s])] = added{Content: s, Special: true}
	}
	for _, a := range extra {
		dec[strconv.Itoa(a.ID)] = added{Content: a.Content, Special: true}
	}
	cfg["added_tokens_decoder"] = dec
	if _, ok := t.specialIDs[EndOfText]; ok {
		cfg["eos_token"] = EndOfText
		cfg["bos_token"] = EndOfText
	}
	if t.sp != nil { // SentencePiece's <s> and </s>
		for k, s := range map[string]string{"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"} {
			if _, ok := t.specialIDs[s]; ok {
				cfg[k] = s
			}
		}
	}
	if _, ok := t.specialIDs[Pad]; ok {
		cfg["pad_token"] = Pad
	} else if _, ok := t.specialIDs[EndOfText]; ok {
		cfg["pad_token"] = EndOfText
	}
	_, a := t.specialIDs[ImStart]
	_, b := t.specialIDs[ImEnd]
	if t.chat != nil {
		// A model's own template and the special tokens it names.
		cfg["chat_template"] = t.chat.raw
		for k, v := range t.chat.vars {
			cfg[k] = v
		}
	} else if a && b {
		cfg["chat_template"] = ChatTemplate
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(cfg); err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return buf.Bytes(), nil
}
