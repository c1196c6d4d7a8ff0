package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// GPT-2 stores byte-level tokens as text by mapping each byte to a printable
// character: the printable Latin-1 bytes stand for themselves, the others
// (control characters, space, ...) become U+0100 onwards. encoder.json,
// vocab.bpe and tokenizer.json all use this mapping.
var (
	byteToRune [256]rune
	runeToByte = map[rune]byte{}
)

func init() {
	n := 0
	for b := 0; b < 256; b++ {
		if '!' <= b && b <= '~' || 0xA1 <= b && b <= 0xAC || 0xAE <= b && b <= 0xFF {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = rune(256 + n)
			n++
		}
		runeToByte[byteToRune[b]] = byte(b)
	}
}

// byteLevelEncode returns the printable form of the bytes of s.
func byteLevelEncode(s string) string {
	var sb strings.Builder
	sb.Grow(2 * len(s))
	for i := 0; i < len(s); i++ {
		sb.WriteRune(byteToRune[s[i]])
	}
	return sb.String()
}

// byteLevelDecode returns the bytes a printable token stands for, or false
// if it holds a character outside the mapping.
func byteLevelDecode(s string) (string, bool) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		c, ok := runeToByte[r]
		if !ok || r == utf8.RuneError {
			return "", false
		}
		b = append(b, c)
	}
	return string(b), true
}
