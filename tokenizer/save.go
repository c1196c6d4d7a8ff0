package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/golem-ml/golem/internal/atomicfile"
)

// Save writes dir/tokenizer.json, in the format of Hugging Face tokenizers
// (which loads it with Tokenizer.from_file, and transformers with
// PreTrainedTokenizerFast), and dir/tokenizer_config.json with the special
// tokens and, when the tokenizer has <|im_start|> and <|im_end|>, the ChatML
// chat template. It creates dir if needed.
func (t *Tokenizer) Save(dir string) error { return t.SaveForModel(dir, 0) }

// SaveForModel is Save for a model of context tokens: tokenizer_config.json
// says model_max_length: context (none when context is 0, for a
// tokenizer alone, which transformers reads as no limit).
func (t *Tokenizer) SaveForModel(dir string, context int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	var buf bytes.Buffer
	t.WriteJSON(&buf)
	// Each file is replaced whole (a new file renamed over the name), so
	// a crash leaves the old file or the new one, and a name that links
	// to another folder's file is replaced, never written through.
	if err := atomicfile.WriteFile(filepath.Join(dir, "tokenizer.json"), buf.Bytes()); err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	cfg, err := t.configJSON(context)
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
func (t *Tokenizer) WriteJSON(buf *bytes.Buffer) {
	specialIDs := t.Specials()
	isSpecial := map[int]bool{}
	buf.WriteString("{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [")
	for i, s := range specialIDs {
		id := t.specialIDs[s]
		isSpecial[id] = true
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(buf, "\n    {\"id\": %d, \"content\": %s, \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}", id, jsonString(s))
	}
	if t.sp != nil { // SentencePiece's user-defined pieces: added tokens, not special
		for i, u := range t.sp.userDefined {
			id := t.ids[u]
			if i > 0 || len(specialIDs) > 0 {
				buf.WriteByte(',')
			}
			fmt.Fprintf(buf, "\n    {\"id\": %d, \"content\": %s, \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": false}", id, jsonString(spaceToMeta(u)))
		}
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
func (t *Tokenizer) configJSON(context int) ([]byte, error) {
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
