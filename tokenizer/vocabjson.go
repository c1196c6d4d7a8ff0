package tokenizer

import (
	"encoding/json"
	"unicode/utf8"
)

// A tokenizer.json's vocabulary and merges are most of its bytes (3.5 MB
// for GPT-2's 50,257 tokens), and encoding/json reads them by reflection
// after a validating pass of its own: 0.1 s a load, half of loading GPT-2's
// tokenizer. fastVocab and fastMerges read the usual forms in one pass
// and give up (ok false) on anything else, where the callers decode with
// encoding/json as before: the same values, the same errors.

// jsonScan reads JSON values from b at i.
type jsonScan struct {
	b []byte
	i int
}

func (s *jsonScan) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// is consumes c (after white space) if it comes next.
func (s *jsonScan) is(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string. One without escapes or control bytes, in valid
// UTF-8, is its bytes; another is decoded by encoding/json.
func (s *jsonScan) str() (string, bool) {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return "", false
	}
	plain, ascii := true, true
	j := s.i + 1
	for ; j < len(s.b) && s.b[j] != '"'; j++ {
		switch c := s.b[j]; {
		case c == '\\':
			plain = false
			j++ // the escaped byte, which may be a quote
		case c < 0x20:
			plain = false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	if j >= len(s.b) {
		return "", false
	}
	lit := s.b[s.i : j+1]
	s.i = j + 1
	if plain && (ascii || utf8.Valid(lit)) {
		return string(lit[1 : len(lit)-1]), true
	}
	var v string
	if json.Unmarshal(lit, &v) != nil {
		return "", false
	}
	return v, true
}

// id reads a non-negative integer of at most 9 digits, written as JSON
// writes it (no leading zero, no fraction or exponent: the next byte is
// checked by the caller's ',' or '}').
func (s *jsonScan) id() (int, bool) {
	s.space()
	j, n := s.i, 0
	for ; j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9'; j++ {
		if j-s.i == 9 {
			return 0, false
		}
		n = n*10 + int(s.b[j]-'0')
	}
	if j == s.i || s.b[s.i] == '0' && j-s.i > 1 {
		return 0, false
	}
	s.i = j
	return n, true
}

// end reports whether only white space is left.
func (s *jsonScan) end() bool {
	s.space()
	return s.i == len(s.b)
}

// fastVocab reads {"token": id, ...}, the later of two equal keys winning
// as in encoding/json.
func fastVocab(raw []byte) (map[string]int, bool) {
	s := &jsonScan{b: raw}
	if !s.is('{') {
		return nil, false
	}
	vocab := make(map[string]int, len(raw)/16)
	if s.is('}') {
		return vocab, s.end()
	}
	for {
		k, ok := s.str()
		if !ok || !s.is(':') {
			return nil, false
		}
		v, ok := s.id()
		if !ok {
			return nil, false
		}
		vocab[k] = v
		if s.is('}') {
			return vocab, s.end()
		}
		if !s.is(',') {
			return nil, false
		}
	}
}

// fastMerges reads merges written all as "a b" strings (split at their one
// space) or all as ["a", "b"] pairs.
func fastMerges(raw []byte) ([][2]string, bool) {
	s := &jsonScan{b: raw}
	if !s.is('[') {
		return nil, false
	}
	out := make([][2]string, 0, len(raw)/12)
	if s.is(']') {
		return out, s.end()
	}
	s.space()
	pairs := s.i < len(s.b) && s.b[s.i] == '['
	for {
		var m [2]string
		if pairs {
			var ok1, ok2 bool
			if !s.is('[') {
				return nil, false
			}
			m[0], ok1 = s.str()
			if !ok1 || !s.is(',') {
				return nil, false
			}
			m[1], ok2 = s.str()
			if !ok2 || !s.is(']') {
				return nil, false
			}
		} else {
			v, ok := s.str()
			if !ok {
				return nil, false
			}
			sp := -1
			for i := 0; i < len(v); i++ {
				if v[i] == ' ' {
					if sp >= 0 {
						return nil, false // parseMerges names it
					}
					sp = i
				}
			}
			if sp < 0 {
				return nil, false
			}
			m = [2]string{v[:sp], v[sp+1:]}
		}
		out = append(out, m)
		if s.is(']') {
			return out, s.end()
		}
		if !s.is(',') {
			return nil, false
		}
	}
}
