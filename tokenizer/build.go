package tokenizer

import (
	"fmt"
	"sort"
)

// maxTokenID bounds the ids a file may name: ids must be dense enough that
// the id table stays proportional to the file (no huge allocation from a
// hostile "id": 2000000000).
func maxTokenID(count int) int { return 2*count + 1024 }

// newBPE builds a byte-level BPE tokenizer. tokens maps id to bytes (with
// special tokens at their ids; "" marks an unused id), merges are in rank
// order, special names the special tokens' ids.
func newBPE(tokens []string, merges []merge, special map[string]int, p Pattern) (*Tokenizer, error) {
	t := &Tokenizer{model: modelBPE, pattern: p, tokens: tokens, mergeAt: merges}
	t.ids = make(map[string]int32, len(tokens))
	isSpecial := make(map[int]bool, len(special))
	for s, id := range special {
		if id < 0 || id >= len(tokens) || tokens[id] != s {
			return nil, fmt.Errorf("special token %q: id %d does not hold it", s, id)
		}
		isSpecial[id] = true
	}
	for id, tok := range tokens {
		if tok == "" || isSpecial[id] {
			continue
		}
		if _, dup := t.ids[tok]; !dup {
			t.ids[tok] = int32(id)
		}
	}
	for b := 0; b < 256; b++ {
		id, ok := t.ids[string([]byte{byte(b)})]
		if !ok {
			return nil, fmt.Errorf("vocabulary has no token for byte 0x%02x (a byte-level BPE needs all 256)", b)
		}
		t.byteIDs[b] = id
	}
	n := len(tokens)
	t.merges.resize(len(merges))
	for i := len(merges) - 1; i >= 0; i-- { // lowest rank wins in put
		m := merges[i]
		if m.a < 0 || int(m.a) >= n || m.b < 0 || int(m.b) >= n || m.result < 0 || int(m.result) >= n {
			return nil, fmt.Errorf("merge %d: id out of range", i)
		}
		t.merges.put(m.a, m.b, uint64(m.rank)<<32|uint64(uint32(m.result)))
	}
	t.setSpecials(special)
	return t, nil
}

func (t *Tokenizer) setSpecials(special map[string]int) {
	t.specialIDs = make(map[string]int, len(special))
	t.specials = t.specials[:0]
	t.specialFirst = [256]bool{}
	for s, id := range special {
		if s == "" {
			continue
		}
		t.specialIDs[s] = id
		t.specials = append(t.specials, s)
		t.specialFirst[s[0]] = true
	}
	sort.Slice(t.specials, func(i, j int) bool {
		a, b := t.specials[i], t.specials[j]
		if len(a) != len(b) {
			return len(a) > len(b)
		}
		return a < b
	})
}

// rankMerges derives the merges of a tiktoken-style vocabulary, where the
// rank of a token is its id and two parts merge when their concatenation is
// a token: every split of a token into two tokens is a merge of its rank.
func rankMerges(tokens []string, ids map[string]int32, special map[int]bool) []merge {
	var ms []merge
	for id, tok := range tokens {
		if len(tok) < 2 || special[id] {
			continue
		}
		for k := 1; k < len(tok); k++ {
			a, ok := ids[tok[:k]]
			if !ok {
				continue
			}
			b, ok := ids[tok[k:]]
			if !ok {
				continue
			}
			ms = append(ms, merge{a: a, b: b, result: int32(id), rank: uint32(id)})
		}
	}
	return ms
}

// RemoveSpecial removes the special token s when it holds the last id,
// with the unused ids before it: the vocabulary ends as it did before
// SaveForModel wrote s as an added token past it, and s in text is
// ordinary text again. It reports whether it removed s. It changes t, so
// it is for a tokenizer just loaded, not one in use.
func (t *Tokenizer) RemoveSpecial(s string) bool {
	id, ok := t.specialIDs[s]
	if !ok || id != len(t.tokens)-1 {
		return false
	}
	special := make(map[string]int, len(t.specialIDs))
	for k, v := range t.specialIDs {
		if k != s {
			special[k] = v
		}
	}
	t.setSpecials(special)
	n := id
	for n > 0 && t.tokens[n-1] == "" {
		n--
	}
	t.tokens = t.tokens[:n:n]
	if t.sp != nil && len(t.sp.scores) > n {
		t.sp.scores = t.sp.scores[:n:n]
	}
	return true
}
