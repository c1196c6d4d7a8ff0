package constrain

import (
	"encoding/binary"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/golem-ml/golem/tokenizer"
)

// Vocab is a tokenizer's vocabulary as the matcher walks it: a trie of
// the tokens' bytes in preorder, so that the tokens sharing a prefix are
// checked against a state once for that prefix, and a branch the state
// refuses is skipped whole.
//
// Inside a string, most tokens are plain text (no quote, backslash or
// control character, whole UTF-8 characters): those are allowed as long as
// the string has room for their characters, whatever else the state is.
// They are kept apart as bitsets by length, and the trie walked there
// holds only the others.
type Vocab struct {
	size    int   // bits in a mask: the model's vocabulary
	stops   []int // the tokens that end an answer
	all     trie  // every token
	other   trie  // the tokens that are not plain text
	plain   [maxPlain + 1][]uint64
	next    []int32 // next[id]: another token with id's bytes, or -1
	bytes   [][]byte
	longest int // bytes of the longest token
}

// maxPlain is the most characters a token kept among the plain text
// tokens may have; longer ones are walked in the trie.
const maxPlain = 32

// trie is tokens' bytes in preorder.
type trie struct {
	label []byte  // node i's byte (node 0, the root, has none)
	end   []int32 // node i's subtree is nodes [i, end[i])
	first []int32 // a token whose bytes end at node i, or -1
}

// NewVocab builds the trie of tokens (tokens[id] is its bytes; nil or
// empty for tokens never allowed, such as special ones). size is the
// number of ids masks cover (a model's vocabulary may be larger than its
// tokenizer's); stops are the ids that end an answer, allowed once the
// value is whole.
func NewVocab(tokens [][]byte, size int, stops []int) *Vocab {
	v := &Vocab{size: max(size, len(tokens)), stops: slices.Clone(stops), next: make([]int32, len(tokens)), bytes: tokens}
	words := (v.size + 63) / 64
	for k := range v.plain {
		v.plain[k] = make([]uint64, words)
	}
	var all, other []int32
	for id, t := range tokens {
		v.next[id] = -1
		if len(t) == 0 {
			continue
		}
		all = append(all, int32(id))
		v.longest = max(v.longest, len(t))
		if n := plainChars(t); n >= 0 && n <= maxPlain {
			for k := n; k <= maxPlain; k++ {
				v.plain[k][id/64] |= 1 << (id % 64)
			}
		} else {
			other = append(other, int32(id))
		}
	}
	v.all = buildTrie(tokens, all, v.next)
	v.other = buildTrie(tokens, other, v.next)
	return v
}

// plainChars returns the characters of t if it is plain string text (no
// quote, backslash or control character; whole UTF-8 characters), or -1.
func plainChars(t []byte) int {
	if !utf8.Valid(t) {
		return -1
	}
	n := 0
	for _, c := range t {
		if c < 0x20 || c == '"' || c == '\\' {
			return -1
		}
		if c < 0x80 || c >= 0xC0 {
			n++
		}
	}
	return n
}

// buildTrie builds the trie of tokens[ids], chaining the ids of equal
// tokens through next.
func buildTrie(tokens [][]byte, ids []int32, next []int32) trie {
	slices.SortFunc(ids, func(a, b int32) int { return slices.Compare(tokens[a], tokens[b]) })
	tr := trie{label: []byte{0}, end: []int32{0}, first: []int32{-1}}
	stack := []int32{0} // the nodes of the previous token's path, by depth
	var prev []byte
	for _, id := range ids {
		t := tokens[id]
		p := 0
		for p < len(prev) && p < len(t) && prev[p] == t[p] {
			p++
		}
		for len(stack) > p+1 {
			tr.end[stack[len(stack)-1]] = int32(len(tr.label))
			stack = stack[:len(stack)-1]
		}
		for d := p; d < len(t); d++ {
			stack = append(stack, int32(len(tr.label)))
			tr.label = append(tr.label, t[d])
			tr.end = append(tr.end, 0)
			tr.first = append(tr.first, -1)
		}
		top := stack[len(stack)-1]
		next[id] = tr.first[top]
		tr.first[top] = id
		prev = t
	}
	for len(stack) > 0 {
		tr.end[stack[len(stack)-1]] = int32(len(tr.label))
		stack = stack[:len(stack)-1]
	}
	return tr
}

// TokenizerVocab is tok's vocabulary: every token but the special ones,
// as the bytes it decodes to.
func TokenizerVocab(tok *tokenizer.Tokenizer, size int, stops []int) *Vocab {
	tokens := make([][]byte, tok.VocabSize())
	for id := range tokens {
		if tok.IsSpecial(id) {
			continue
		}
		if t, ok := tok.Token(id); ok {
			tokens[id] = []byte(t)
		}
	}
	return NewVocab(tokens, size, stops)
}

// Size is the number of token ids a mask covers.
func (v *Vocab) Size() int { return v.size }

// Guide is a schema compiled against a vocabulary: it gives each state
// of the matcher the tokens allowed there, and caches them by state.
// One guide serves any number of sequences at once.
type Guide struct {
	s *Schema
	v *Vocab

	mu    sync.Mutex
	cache map[string][]uint64
	room  int // masks the cache may still take
}

// cacheBytes bounds a guide's cache of masks.
const cacheBytes = 16 << 20

// NewGuide joins a schema and a vocabulary.
func NewGuide(s *Schema, v *Vocab) *Guide {
	words := (v.size + 63) / 64
	return &Guide{s: s, v: v, cache: map[string][]uint64{}, room: max(16, cacheBytes/(8*words))}
}

// Start returns a matcher for one sequence.
func (g *Guide) Start() *Matcher {
	return &Matcher{g: g, cur: g.s.start(), nxt: &state{}}
}

// Matcher follows one sequence's tokens through a guide's schema.
type Matcher struct {
	g        *Guide
	cur, nxt *state
	levels   []state
	key      []byte
	done     bool // a stop token was accepted
	tokens   int
}

// Allowed returns the tokens that may come next, bit id%64 of word id/64
// set for each: the tokens whose bytes continue a value of the schema,
// and the stop tokens once the value is whole (then only those). The
// slice is shared: do not change it. Nil after a stop token.
func (m *Matcher) Allowed() []uint64 {
	if m.done {
		return nil
	}
	m.key = stateKey(m.key[:0], m.cur, m.g.v.longest)
	g := m.g
	g.mu.Lock()
	mask, ok := g.cache[string(m.key)]
	g.mu.Unlock()
	if ok {
		return mask
	}
	mask = make([]uint64, (g.v.size+63)/64)
	if canEnd(m.cur) {
		for _, id := range g.v.stops {
			if id >= 0 && id < g.v.size {
				mask[id/64] |= 1 << (id % 64)
			}
		}
	}
	if len(m.levels) == 0 {
		m.levels = make([]state, 1, 16)
	}
	m.levels[0].reset()
	m.levels[0].fr = append(m.levels[0].fr, m.cur.fr...)
	m.levels[0].th = append(m.levels[0].th, m.cur.th...)
	tr := &g.v.all
	if room, ok := inText(m.cur); ok {
		// Plain text tokens fit any string with room for them; the trie
		// of the others decides the rest.
		for w, bits := range g.v.plain[min(room, maxPlain)] {
			mask[w] |= bits
		}
		tr = &g.v.other
	}
	m.walk(tr, 0, 0, mask)
	g.mu.Lock()
	if g.room > 0 {
		if _, ok := g.cache[string(m.key)]; !ok {
			g.cache[string(m.key)] = mask
			g.room--
		}
	}
	g.mu.Unlock()
	return mask
}

// walk visits the children of trie node i with the state levels[lv] (the
// node's bytes read) and marks the tokens whose bytes all step.
func (m *Matcher) walk(tr *trie, lv int, i int32, mask []uint64) {
	next := m.g.v.next
	if len(m.levels) <= lv+1 {
		m.levels = append(m.levels, state{})
	}
	for j := i + 1; j < tr.end[i]; j = tr.end[j] {
		src, dst := &m.levels[lv], &m.levels[lv+1]
		step(dst, src, tr.label[j])
		if len(dst.th) == 0 {
			continue
		}
		for id := tr.first[j]; id >= 0; id = next[id] {
			mask[id/64] |= 1 << (id % 64)
		}
		if tr.end[j] > j+1 {
			m.walk(tr, lv+1, j, mask)
		}
	}
}

// inText reports whether s is inside a string's text (one thread, its
// innermost frame a string between characters), and how many characters
// the string has room for (maxPlain when unbounded).
func inText(s *state) (room int, ok bool) {
	if len(s.th) != 1 || s.th[0].n == 0 {
		return 0, false
	}
	t := s.thread(0)
	f := t[len(t)-1]
	if f.n.kind != kString || f.ph != 1 {
		return 0, false
	}
	if f.n.maxLen < 0 {
		return maxPlain, true
	}
	return int(min(f.n.maxLen-f.a, maxPlain)), true
}

// Accept moves past token id; false if the schema does not allow it there
// (the state is then unchanged).
func (m *Matcher) Accept(id int) bool {
	if m.done {
		return false
	}
	if slices.Contains(m.g.v.stops, id) {
		if !canEnd(m.cur) {
			return false
		}
		m.done = true
		return true
	}
	if id < 0 || id >= len(m.g.v.bytes) || len(m.g.v.bytes[id]) == 0 {
		return false
	}
	cur := &state{fr: slices.Clone(m.cur.fr), th: slices.Clone(m.cur.th)}
	for _, c := range m.g.v.bytes[id] {
		step(m.nxt, cur, c)
		if len(m.nxt.th) == 0 {
			return false
		}
		cur, m.nxt = m.nxt, cur
	}
	m.cur = cur
	m.tokens++
	return true
}

// Complete reports whether the text so far is a whole value (a stop token
// may end it).
func (m *Matcher) Complete() bool { return m.done || canEnd(m.cur) }

// Stopped reports whether a stop token was accepted.
func (m *Matcher) Stopped() bool { return m.done }

// stateKey writes a key for s: two states with one key allow the same
// tokens. Counters are written as what is left of their bounds, and that
// only up to the longest token (a token cannot use more), so that a long
// string's characters do not each make a new key.
func stateKey(b []byte, s *state, longest int) []byte {
	clip := func(v int32) int32 { return max(-1, min(v, int32(longest)+1)) }
	for i := range s.th {
		for _, f := range s.thread(i) {
			a, bb, x := f.a, f.b, f.x
			switch f.n.kind {
			case kString:
				r := int32(-1)
				if f.n.maxLen >= 0 {
					r = clip(f.n.maxLen - f.a)
				}
				a, x = r, max(0, clip(f.n.minLen-f.a))<<8|x
			case kArray:
				r := int32(-1)
				if f.n.maxItems >= 0 {
					r = clip(f.n.maxItems - f.a)
				}
				a, bb = r, max(0, clip(f.n.minItems-f.a))
			case kNumber, kInteger:
				a, bb, x = clip(maxIntDigits-a), clip(maxFracDigits-bb), clip(maxExpDigits-x)
			}
			b = binary.LittleEndian.AppendUint32(b, uint32(f.n.id))
			b = append(b, f.ph)
			b = binary.LittleEndian.AppendUint32(b, uint32(a))
			b = binary.LittleEndian.AppendUint32(b, uint32(bb))
			b = binary.LittleEndian.AppendUint32(b, uint32(x))
		}
		b = append(b, 0xff)
	}
	return b
}
