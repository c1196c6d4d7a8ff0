package tokenizer

import (
	"fmt"
	"strings"

	"github.com/golem-ml/golem/gguf"
)

// llama.cpp's token types (tokenizer.ggml.token_type).
const (
	ggufControl     = 3
	ggufUserDefined = 4
	ggufUnused      = 5
)

// ggufPatterns maps tokenizer.ggml.pre to golem's pre-tokenizers.
var ggufPatterns = map[string]Pattern{
	"default": PatternGPT2, "gpt-2": PatternGPT2, "gpt2": PatternGPT2,
	"llama-bpe": PatternCL100K, "llama3": PatternCL100K, "smaug-bpe": PatternCL100K,
	"qwen2": PatternQwen2, "gpt-4o": PatternO200K,
}

// LoadGGUF reads the tokenizer of a GGUF model file (see FromGGUF).
func LoadGGUF(path string) (*Tokenizer, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	defer f.Close()
	return FromGGUF(f)
}

// FromGGUF builds the tokenizer a GGUF file holds, as llama.cpp's
// converter writes a byte-level BPE (tokenizer.ggml.model "gpt2"): the
// tokens in byte-level form, their types (control and user-defined tokens
// are special and written as their text, unused ones are left out),
// merges "a b" in rank order, the pre-tokenizer (tokenizer.ggml.pre), and
// the chat template (tokenizer.chat_template) with the bos and eos tokens
// it sees. Errors name the file and the key.
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	where := f.Path()
	str := func(key string) (string, bool, error) {
		v, ok := f.Get(key)
		if !ok {
			return "", false, nil
		}
		s, isStr := v.String()
		if !isStr {
			return "", true, fmt.Errorf("tokenizer: %s: %s is not a string", where, key)
		}
		return s, true, nil
	}
	model, ok, err := str("tokenizer.ggml.model")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("tokenizer: %s: no tokenizer.ggml.model: the file holds no tokenizer", where)
	}
	if model != "gpt2" {
		return nil, fmt.Errorf("tokenizer: %s: tokenizer.ggml.model is %q; golem reads byte-level BPE tokenizers (\"gpt2\") only", where, model)
	}
	tokensV, _ := f.Get("tokenizer.ggml.tokens")
	tokens, ok := tokensV.Any().([]string)
	if !ok || len(tokens) == 0 {
		return nil, fmt.Errorf("tokenizer: %s: tokenizer.ggml.tokens is missing or not an array of strings", where)
	}
	var types []int32
	if v, ok := f.Get("tokenizer.ggml.token_type"); ok {
		if types, ok = v.Any().([]int32); !ok || len(types) != len(tokens) {
			return nil, fmt.Errorf("tokenizer: %s: tokenizer.ggml.token_type must be %d int32 values, one a token", where, len(tokens))
		}
	}
	var merges [][2]string
	if v, ok := f.Get("tokenizer.ggml.merges"); ok {
		ms, ok := v.Any().([]string)
		if !ok {
			return nil, fmt.Errorf("tokenizer: %s: tokenizer.ggml.merges is not an array of strings", where)
		}
		merges = make([][2]string, len(ms))
		for i, m := range ms {
			a, b, ok := strings.Cut(m, " ")
			if !ok || a == "" || b == "" || strings.Contains(b, " ") {
				return nil, fmt.Errorf("tokenizer: %s: tokenizer.ggml.merges[%d] is %q, want two tokens separated by one space", where, i, truncate(m))
			}
			merges[i] = [2]string{a, b}
		}
	}
	vocab := make(map[string]int, len(tokens))
	added := map[int]string{}
	for id, tok := range tokens {
		typ := int32(1)
		if types != nil {
			typ = types[id]
		}
		switch typ {
		case ggufUnused:
		case ggufControl, ggufUserDefined:
			added[id] = tok
		default:
			if prev, dup := vocab[tok]; dup {
				return nil, fmt.Errorf("tokenizer: %s: tokenizer.ggml.tokens: ids %d and %d are both %q", where, prev, id, truncate(tok))
			}
			vocab[tok] = id
		}
	}
	t, err := fromByteLevelVocab(vocab, merges, added, "tokenizer.ggml.tokens", "tokenizer.ggml.merges index", func(i int) int { return i })
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", where, err)
	}
	pre, ok, err := str("tokenizer.ggml.pre")
	if err != nil {
		return nil, err
	}
	if ok {
		p, known := ggufPatterns[pre]
		if !known {
			return nil, fmt.Errorf("tokenizer: %s: tokenizer.ggml.pre %q is not a pre-tokenizer golem has (gpt-2, llama-bpe, qwen2, gpt-4o)", where, pre)
		}
		t.pattern = p
	}
	tmpl, _, err := str("tokenizer.chat_template")
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	for _, k := range []string{"bos", "eos"} {
		if v, ok := f.Get("tokenizer.ggml." + k + "_token_id"); ok {
			if id, ok := v.Int(); ok && id >= 0 && int(id) < len(t.tokens) {
				vars[k+"_token"] = t.tokens[id]
			}
		}
	}
	if err := t.SetChatTemplate(tmpl, vars); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: tokenizer.chat_template: %w", where, err)
	}
	return t, nil
}
