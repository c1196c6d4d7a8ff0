package tokenizer

import (
	"errors"
	"sort"
	"strings"
	"unicode/utf8"
)

// NewChar returns a character-level tokenizer whose vocabulary is the sorted
// distinct characters of text, id i being the i-th (as nanoGPT's
// shakespeare_char). Invalid UTF-8 bytes in text are left out. Encoding drops
// characters that are not in the vocabulary. It has no special tokens.
//
// Save writes it as a tokenizer.json with a "WordLevel" model whose tokens
// are the characters, a "Split" pre-tokenizer that isolates every character
// and a "Fuse" decoder, which Hugging Face tokenizers reads as the same
// tokenizer; Load recognises a WordLevel model of single characters as this
// character tokenizer.
func NewChar(text string) *Tokenizer {
	seen := map[rune]bool{}
	for i := 0; i < len(text); {
		r, w := utf8.DecodeRuneInString(text[i:])
		i += w
		if r == utf8.RuneError && w == 1 {
			continue
		}
		seen[r] = true
	}
	runes := make([]rune, 0, len(seen))
	for r := range seen {
		runes = append(runes, r)
	}
	sort.Slice(runes, func(i, j int) bool { return runes[i] < runes[j] })
	t := &Tokenizer{model: modelChar, chars: make(map[rune]int32, len(runes)), tokens: make([]string, len(runes))}
	for i, r := range runes {
		t.chars[r] = int32(i)
		t.tokens[i] = string(r)
	}
	t.setSpecials(nil)
	return t
}

// TrainChar builds a character tokenizer (NewChar) from the text of files,
// directories and globs, read as Train reads them.
func TrainChar(files []string) (*Tokenizer, error) {
	paths, err := expandFiles(files)
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, errors.New("tokenizer: no training data")
	}
	var sb strings.Builder
	for _, p := range paths {
		texts, err := readTexts(p)
		if err != nil {
			return nil, err
		}
		for _, t := range texts {
			sb.WriteString(t)
		}
	}
	return NewChar(sb.String()), nil
}
