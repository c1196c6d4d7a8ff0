package tokenizer

import (
	"fmt"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Pattern names a pre-tokenizer: the rule that splits text into pieces
// before byte-pair merging. Each is a hand-written scanner that gives the
// same pieces as the regular expression it is named after.
type Pattern int

const (
	// PatternGPT2 is GPT-2's pattern (also r50k/p50k):
	// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
	PatternGPT2 Pattern = iota
	// PatternCL100K is tiktoken's cl100k_base pattern, also used by Llama 3:
	// case-insensitive contractions, letters with one leading non-letter,
	// numbers in groups of up to three, punctuation with trailing newlines.
	PatternCL100K
	// PatternQwen2 is the cl100k pattern with single-digit numbers (Qwen2).
	PatternQwen2
	// PatternO200K is tiktoken's o200k_base pattern, which also splits words
	// at case changes (CamelCase -> Camel, Case).
	PatternO200K
)

var patternNames = [...]string{"gpt2", "cl100k", "qwen2", "o200k"}

var patternRegexps = [...]string{
	`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
	`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
}

// String returns the pattern's name: "gpt2", "cl100k", "qwen2" or "o200k".
func (p Pattern) String() string {
	if int(p) < len(patternNames) {
		return patternNames[p]
	}
	return fmt.Sprintf("Pattern(%d)", int(p))
}

// Regexp returns the regular expression the pattern reproduces, as written
// in tiktoken and in Hugging Face tokenizer.json files.
func (p Pattern) Regexp() string { return patternRegexps[p] }

// ParsePattern returns the pattern with the given name. "llama3" is an alias
// of "cl100k", "r50k" and "p50k" of "gpt2". The empty name means cl100k.
func ParsePattern(name string) (Pattern, error) {
	switch name {
	case "gpt2", "r50k", "p50k":
		return PatternGPT2, nil
	case "", "cl100k", "llama3":
		return PatternCL100K, nil
	case "qwen2":
		return PatternQwen2, nil
	case "o200k":
		return PatternO200K, nil
	}
	return 0, fmt.Errorf("tokenizer: unknown pattern %q (want gpt2, cl100k, qwen2 or o200k)", name)
}

// patternFromRegexp finds the pattern whose regular expression is re.
func patternFromRegexp(re string) (Pattern, bool) {
	for i, s := range patternRegexps {
		if s == re {
			return Pattern(i), true
		}
	}
	return 0, false
}

// Character classes, as bits.
const (
	cL  = 1 << iota // \p{L}
	cN              // \p{N}
	cS              // \s (Unicode White_Space)
	cNL             // \r or \n
	cU              // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] (o200k)
	cW              // [\p{Ll}\p{Lm}\p{Lo}\p{M}] (o200k)
)

// other reports whether a class is [^\s\p{L}\p{N}].
func other(c uint8) bool { return c&(cL|cN|cS) == 0 }

var (
	bmpOnce  sync.Once
	bmpClass []uint8 // class of every rune below 0x10000
)

func classifyRune(r rune) uint8 {
	var c uint8
	switch {
	case unicode.IsLetter(r):
		c |= cL
		switch {
		case unicode.IsLower(r):
			c |= cW
		case unicode.IsUpper(r), unicode.IsTitle(r):
			c |= cU
		default: // Lm, Lo
			c |= cU | cW
		}
	case unicode.IsMark(r):
		c |= cU | cW
	case unicode.IsNumber(r):
		c |= cN
	case unicode.Is(unicode.White_Space, r):
		c |= cS
		if r == '\r' || r == '\n' {
			c |= cNL
		}
	}
	return c
}

func initClasses() {
	bmpOnce.Do(func() {
		t := make([]uint8, 0x10000)
		for r := range t {
			if r >= 0xD800 && r < 0xE000 {
				continue // surrogates never decode
			}
			t[r] = classifyRune(rune(r))
		}
		bmpClass = t
	})
}

// asciiClass is the class of each ASCII byte; bytes >= 0x80 are decoded.
var asciiClass = func() (t [128]uint8) {
	for b := range t {
		t[b] = classifyRune(rune(b))
	}
	return t
}()

// class returns the class and width of the character at s[i]. An invalid
// UTF-8 byte is one character of its own, classed as punctuation.
func class(s string, i int) (uint8, int) {
	b := s[i]
	if b < utf8.RuneSelf {
		return asciiClass[b], 1
	}
	r, w := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && w == 1 {
		return 0, 1
	}
	if r < 0x10000 {
		return bmpClass[r], w
	}
	return classifyRune(r), w
}

// runOf returns the end of the run of characters with any of the bits in
// mask, starting at i.
func runOf(s string, i int, mask uint8) int {
	for i < len(s) {
		if b := s[i]; b < utf8.RuneSelf {
			if asciiClass[b]&mask == 0 {
				return i
			}
			i++
			continue
		}
		c, w := class(s, i)
		if c&mask == 0 {
			return i
		}
		i += w
	}
	return i
}

// runOther returns the end of the run of [^\s\p{L}\p{N}] starting at i.
func runOther(s string, i int) int {
	for i < len(s) {
		c, w := class(s, i)
		if !other(c) {
			return i
		}
		i += w
	}
	return i
}

// contraction returns the length of 's|'t|'re|'ve|'m|'ll|'d at s[i:]
// (s[i] is the apostrophe), or 0. With fold it ignores case, as (?i:...)
// does, where s also matches U+017F (long s).
func contraction(s string, i int, fold bool) int {
	if i+1 >= len(s) || s[i] != '\'' {
		return 0
	}
	lower := func(b byte) byte {
		if fold && 'A' <= b && b <= 'Z' {
			return b + 'a' - 'A'
		}
		return b
	}
	switch lower(s[i+1]) {
	case 's', 't', 'm', 'd':
		return 2
	case 'r', 'v':
		if i+2 < len(s) && lower(s[i+2]) == 'e' {
			return 3
		}
	case 'l':
		if i+2 < len(s) && lower(s[i+2]) == 'l' {
			return 3
		}
	case 0xC5:
		if fold && i+2 < len(s) && s[i+2] == 0xBF { // ſ
			return 3
		}
	}
	return 0
}

// whitespace returns the end of the piece that starts with whitespace at i:
// \s*[\r\n]+ (when newlines is set), then \s+(?!\S), then \s+.
func whitespace(s string, i int, newlines bool) int {
	j, last, afterNL := i, i, -1
	for j < len(s) {
		c, w := class(s, j)
		if c&cS == 0 {
			break
		}
		last = j
		j += w
		if c&cNL != 0 {
			afterNL = j
		}
	}
	switch {
	case newlines && afterNL > 0:
		return afterNL
	case j == len(s):
		return j
	case last > i:
		return last
	}
	return j
}

// next returns the end of the piece that starts at s[i], i < len(s).
func (p Pattern) next(s string, i int) int {
	switch p {
	case PatternGPT2:
		return nextGPT2(s, i)
	case PatternO200K:
		return nextO200K(s, i)
	case PatternQwen2:
		return nextCL100K(s, i, 1)
	}
	return nextCL100K(s, i, 3)
}

func nextGPT2(s string, i int) int {
	if s[i] == '\'' {
		if n := contraction(s, i, false); n > 0 {
			return i + n
		}
	}
	c, w := class(s, i)
	start := i
	if s[i] == ' ' && i+1 < len(s) {
		if c2, w2 := class(s, i+1); c2&cS == 0 {
			c, w, start = c2, w2, i+1
		}
	}
	switch {
	case c&cL != 0:
		return runOf(s, start+w, cL)
	case c&cN != 0:
		return runOf(s, start+w, cN)
	case c&cS == 0:
		return runOther(s, start+w)
	}
	return whitespace(s, i, false)
}

func nextCL100K(s string, i int, maxDigits int) int {
	if s[i] == '\'' {
		if n := contraction(s, i, true); n > 0 {
			return i + n
		}
	}
	c, w := class(s, i)
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if c&cL != 0 {
		return runOf(s, i+w, cL)
	}
	if c&(cNL|cN) == 0 && i+w < len(s) {
		if c2, w2 := class(s, i+w); c2&cL != 0 {
			return runOf(s, i+w+w2, cL)
		}
	}
	// \p{N}{1,n}
	if c&cN != 0 {
		j := i + w
		for k := 1; k < maxDigits && j < len(s); k++ {
			c2, w2 := class(s, j)
			if c2&cN == 0 {
				break
			}
			j += w2
		}
		return j
	}
	//  ?[^\s\p{L}\p{N}]+[\r\n]*
	start := -1
	if other(c) {
		start = i
	} else if s[i] == ' ' && i+1 < len(s) {
		if c2, _ := class(s, i+1); other(c2) {
			start = i + 1
		}
	}
	if start >= 0 {
		j := runOther(s, start)
		for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
			j++
		}
		return j
	}
	return whitespace(s, i, true)
}

// o200kWord matches [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+
// (upperFirst false) or [...]+[...]* (upperFirst true) at p, with an optional
// contraction after it. It returns the end or -1.
func o200kWord(s string, p int, upperFirst bool) int {
	u, lastW := p, -1
	for u < len(s) {
		c, w := class(s, u)
		if c&cU == 0 {
			break
		}
		u += w
		if c&cW != 0 {
			lastW = u
		}
	}
	end := runOf(s, u, cW)
	if upperFirst {
		if u == p {
			return -1
		}
	} else if end == u {
		// The lower run is empty: backtrack into the upper run, whose last
		// character that is also a lower one ends the match.
		if lastW < 0 {
			return -1
		}
		end = lastW
	}
	if end < len(s) && s[end] == '\'' {
		end += contraction(s, end, true)
	}
	return end
}

func nextO200K(s string, i int) int {
	c, w := class(s, i)
	prefix := c&(cNL|cL|cN) == 0 && i+w < len(s)
	for _, upper := range [2]bool{false, true} {
		if prefix {
			if e := o200kWord(s, i+w, upper); e >= 0 {
				return e
			}
		}
		if e := o200kWord(s, i, upper); e > i {
			return e
		}
	}
	if c&cN != 0 {
		j := i + w
		for k := 1; k < 3 && j < len(s); k++ {
			c2, w2 := class(s, j)
			if c2&cN == 0 {
				break
			}
			j += w2
		}
		return j
	}
	start := -1
	if other(c) {
		start = i
	} else if s[i] == ' ' && i+1 < len(s) {
		if c2, _ := class(s, i+1); other(c2) {
			start = i + 1
		}
	}
	if start >= 0 {
		j := runOther(s, start)
		for j < len(s) && (s[j] == '\r' || s[j] == '\n' || s[j] == '/') {
			j++
		}
		return j
	}
	return whitespace(s, i, true)
}

// Split returns the pieces the pattern splits text into. Their
// concatenation is text.
func (p Pattern) Split(text string) []string {
	initClasses()
	var out []string
	for i := 0; i < len(text); {
		j := p.next(text, i)
		out = append(out, text[i:j])
		i = j
	}
	return out
}
