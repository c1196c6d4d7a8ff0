package tokenizer

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// SentencePiece-style tokenizers (Llama 1 and 2, Mistral, Gemma, T5) work on
// text, not bytes: spaces become "▁" (U+2581), a "▁" is put before the text
// (the dummy prefix), and the text is split into characters, which a BPE
// merges pairwise (by the score of the merged piece, or the rank of the
// merge in a tokenizer.json) or a Unigram model segments by the most likely
// path (Viterbi over the pieces' log-probabilities). A character that is no
// piece becomes <unk>, or with byte fallback one <0xNN> token per byte.
//
// golem keeps such a vocabulary in the Tokenizer's usual form: each token is
// its bytes, with "▁" as a space and <0xNN> as the byte NN, so Decode and the
// streaming of tokens work unchanged.

// spModel holds what a SentencePiece-style tokenizer adds to the Tokenizer.
type spModel struct {
	unigram  bool
	scores   []float32 // unigram: the log-probability of each id
	minScore float32   // unigram: the lowest score of a normal piece
	maxScore float32   // unigram: the highest score of a normal piece, or FLT_MIN
	user     []bool    // unigram: whether piece id is user-defined
	hf       bool      // unigram from a tokenizer.json: Hugging Face's arithmetic (viterbi)
	maxPiece int       // unigram: the longest piece, in bytes

	unk          int32 // the unknown token; -1: none
	fuseUnk      bool  // consecutive unknown characters give one <unk>
	byteFallback bool
	bytes        [256]int32 // byte fallback: the id of <0xNN>

	// The dummy prefix: a space put before the text (prefixFirst: only
	// before the text's first segment, not after a special token;
	// prefixUnlessSpace: not when the text starts with a space already).
	prefix            bool
	prefixFirst       bool
	prefixUnlessSpace bool
	removeExtraSpaces bool // drop leading and trailing spaces, one space for a run
	split             bool // Metaspace split: pieces never cross a space's start
	wsSplit           bool // WhitespaceSplit (T5): any white space separates words, and goes
	stripDecode       bool // Decode drops the dummy prefix's space
	norm              *charsmap

	userDefined []string // pieces matched whole in the text, longest first
}

// spPieceKind is a SentencePiece piece's type, as in its ModelProto.
type spPieceKind int

const (
	spNormal      spPieceKind = 1
	spUnknown     spPieceKind = 2
	spControl     spPieceKind = 3
	spUserDefined spPieceKind = 4
	spUnused      spPieceKind = 5
	spByte        spPieceKind = 6
)

type spPiece struct {
	text  string // as written, with "▁" for a space
	score float32
	kind  spPieceKind
}

// unkPenalty is what SentencePiece's Unigram takes off the lowest score for
// an unknown character.
const unkPenalty = 10

// parseBytePiece returns NN of a "<0xNN>" piece.
func parseBytePiece(s string) (byte, bool) {
	if len(s) != 6 || !strings.HasPrefix(s, "<0x") || s[5] != '>' {
		return 0, false
	}
	v, err := strconv.ParseUint(s[3:5], 16, 8)
	return byte(v), err == nil
}

// newSentencePiece builds a SentencePiece-style tokenizer from its pieces
// (index = id). merges, for a BPE, are the merges in rank order as
// tokenizer.json pieces; nil derives them from the scores, as
// SentencePiece merges: the pair whose merged piece scores highest first.
// added are tokenizer.json's added tokens (id -> text): special, or matched
// whole by EncodeWithSpecial.
func newSentencePiece(pieces []spPiece, sp *spModel, merges [][2]string, added map[int]string) (*Tokenizer, error) {
	limit := maxTokenID(len(pieces) + len(added))
	size := len(pieces)
	for id := range added {
		if id < 0 || id >= limit {
			return nil, fmt.Errorf("added token id %d out of range for %d tokens", id, len(pieces)+len(added))
		}
		size = max(size, id+1)
	}
	kind := modelSP
	if sp.unigram {
		kind = modelUnigram
	}
	t := &Tokenizer{model: kind, sp: sp, tokens: make([]string, size), ids: make(map[string]int32, len(pieces))}
	sp.unk = -1
	for b := range sp.bytes {
		sp.bytes[b] = -1
	}
	special := map[string]int{}
	// SentencePiece starts them at FLT_MAX and FLT_MIN (the least
	// positive normal float, not the most negative): with every normal
	// score below 0, a user-defined piece scores about -0.1 (viterbi).
	sp.minScore, sp.maxScore, sp.maxPiece = math.MaxFloat32, 0x1p-126, 1
	if sp.unigram {
		sp.scores, sp.user = make([]float32, size), make([]bool, size)
	}
	for id, p := range pieces {
		if p.kind == spUnknown {
			if sp.unk >= 0 {
				return nil, fmt.Errorf("piece %d %q: a second unknown piece", id, truncate(p.text))
			}
			sp.unk = int32(id)
		}
		if _, ok := added[id]; ok {
			continue
		}
		if p.text == "" {
			return nil, fmt.Errorf("piece %d is empty", id)
		}
		text := strings.ReplaceAll(p.text, "▁", " ")
		switch p.kind {
		case spNormal, spUserDefined:
			if _, dup := t.ids[text]; dup {
				return nil, fmt.Errorf("piece %d %q appears twice", id, truncate(p.text))
			}
			t.ids[text] = int32(id)
			if p.kind == spUserDefined {
				sp.userDefined = append(sp.userDefined, text)
				if sp.unigram {
					sp.user[id] = true
				}
			}
			if p.kind == spNormal {
				sp.minScore, sp.maxScore = min(sp.minScore, p.score), max(sp.maxScore, p.score)
			}
			sp.maxPiece = max(sp.maxPiece, len(text))
		case spUnknown, spControl:
			text = p.text
			special[text] = id
		case spByte:
			b, ok := parseBytePiece(p.text)
			if !ok {
				return nil, fmt.Errorf("piece %d %q is of type BYTE but not <0xNN>", id, truncate(p.text))
			}
			sp.bytes[b] = int32(id)
			text = string([]byte{b})
		case spUnused:
		default:
			return nil, fmt.Errorf("piece %d %q has unknown type %d", id, truncate(p.text), p.kind)
		}
		t.tokens[id] = text
		if sp.unigram {
			sp.scores[id] = p.score
		}
	}
	if sp.byteFallback {
		for b, id := range sp.bytes {
			if id < 0 {
				return nil, fmt.Errorf("byte fallback, but no piece <0x%02X>", b)
			}
		}
	}
	for id, s := range added {
		if s == "" {
			return nil, fmt.Errorf("added token %d is empty", id)
		}
		t.tokens[id] = s
		special[s] = id
	}
	sort.Slice(sp.userDefined, func(i, j int) bool { return len(sp.userDefined[i]) > len(sp.userDefined[j]) })
	if !sp.unigram {
		ms, err := t.spMerges(pieces, merges)
		if err != nil {
			return nil, err
		}
		for i := len(ms) - 1; i >= 0; i-- {
			m := ms[i]
			t.merges.put(m.a, m.b, uint64(m.rank)<<32|uint64(uint32(m.result)))
		}
		t.mergeAt = ms
	}
	t.addPrefixSpace = sp.prefix
	t.setSpecials(special)
	return t, nil
}

// spMerges returns the merges of a SentencePiece-style BPE: those given
// (tokenizer.json), or every split of a piece into two pieces, ranked by
// the piece's score, highest first (SentencePiece's own order).
func (t *Tokenizer) spMerges(pieces []spPiece, given [][2]string) ([]merge, error) {
	id := func(s string) (int32, bool) {
		v, ok := t.ids[strings.ReplaceAll(s, "▁", " ")]
		return v, ok
	}
	var ms []merge
	if given != nil {
		for i, g := range given {
			a, okA := id(g[0])
			b, okB := id(g[1])
			r, okR := id(g[0] + g[1])
			if !okA || !okB || !okR {
				return nil, fmt.Errorf("model.merges %d: merge %q %q: token missing from the vocabulary", i, truncate(g[0]), truncate(g[1]))
			}
			ms = append(ms, merge{a: a, b: b, result: r, rank: uint32(i)})
		}
		return ms, nil
	}
	order := make([]int, 0, len(pieces))
	for i, p := range pieces {
		if p.kind == spNormal && utf8.RuneCountInString(p.text) > 1 {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return pieces[order[i]].score > pieces[order[j]].score })
	for rank, r := range order {
		text := t.tokens[r]
		for k := 1; k < len(text); k++ {
			if !utf8.RuneStart(text[k]) {
				continue
			}
			a, okA := t.ids[text[:k]]
			b, okB := t.ids[text[k:]]
			if okA && okB {
				ms = append(ms, merge{a: a, b: b, result: int32(r), rank: uint32(rank)})
			}
		}
	}
	return ms, nil
}

// spEncode appends the ids of text, which holds no special tokens; prefix
// says whether the dummy prefix goes before it.
func (t *Tokenizer) spEncode(e *encoder, dst []int, text string, prefix bool) []int {
	sp := t.sp
	if sp.norm != nil {
		text = sp.norm.normalize(text)
	} else if !utf8.ValidString(text) {
		text = replaceInvalid(text)
	}
	if sp.wsSplit && strings.ContainsFunc(text, unicode.IsSpace) {
		text = strings.Join(strings.Fields(text), " ")
	}
	if sp.removeExtraSpaces {
		text = collapseSpaces(text) // spaces, not "▁"s
	}
	if text == "" {
		return dst
	}
	if strings.Contains(text, "▁") {
		text = strings.ReplaceAll(text, "▁", " ")
	}
	if prefix && !(sp.prefixUnlessSpace && text[0] == ' ') {
		text = " " + text
	}
	if !sp.split || sp.unigram && !sp.hf {
		return t.spWord(e, dst, text) // SentencePiece's Unigram: the whole text
	}
	for i := 0; i < len(text); {
		j := strings.IndexByte(text[i+1:], ' ')
		if j < 0 {
			j = len(text)
		} else {
			j += i + 1
		}
		dst = t.spWord(e, dst, text[i:j])
		i = j
	}
	return dst
}

// spaceToMeta returns s with its spaces written as "▁".
func spaceToMeta(s string) string { return strings.ReplaceAll(s, " ", "▁") }

// collapseSpaces drops leading and trailing spaces and makes each run of
// spaces one, as SentencePiece's remove_extra_whitespaces.
func collapseSpaces(s string) string {
	s = strings.Trim(s, " ")
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' && i > 0 && s[i-1] == ' ' {
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// replaceInvalid replaces each byte of s that is not UTF-8 by U+FFFD, as
// SentencePiece's normalizer.
func replaceInvalid(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && w == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[i : i+w])
		}
		i += w
	}
	return b.String()
}

// spWord appends the ids of one piece of normalized text.
func (t *Tokenizer) spWord(e *encoder, dst []int, text string) []int {
	if t.sp.unigram {
		return t.viterbi(e, dst, text)
	}
	parts := e.parts[:0]
	for i := 0; i < len(text); {
		if n := t.sp.matchUser(text[i:]); n > 0 {
			parts = append(parts, t.ids[text[i:i+n]])
			i += n
			continue
		}
		_, w := utf8.DecodeRuneInString(text[i:])
		if id, ok := t.ids[text[i:i+w]]; ok {
			parts = append(parts, id)
		} else {
			parts = t.sp.unknown(parts, text[i:i+w])
		}
		i += w
	}
	e.parts = parts
	return t.mergeParts(e, dst)
}

// matchUser returns the length of the longest user-defined piece s starts
// with, or 0.
func (sp *spModel) matchUser(s string) int {
	for _, u := range sp.userDefined {
		if strings.HasPrefix(s, u) {
			return len(u)
		}
	}
	return 0
}

// unknown appends the tokens of a character that is no piece: its bytes
// with byte fallback, else the unknown token (one for a run of them when
// fuseUnk), else nothing.
func (sp *spModel) unknown(parts []int32, char string) []int32 {
	switch {
	case sp.byteFallback:
		for i := 0; i < len(char); i++ {
			parts = append(parts, sp.bytes[char[i]])
		}
	case sp.unk < 0:
	case sp.fuseUnk && len(parts) > 0 && parts[len(parts)-1] == sp.unk:
	default:
		parts = append(parts, sp.unk)
	}
	return parts
}

// viterbi appends the ids of the most likely segmentation of text into
// pieces: SentencePiece's Unigram (EncodeOptimized), one lattice over the
// whole normalized text, not a word at a time, with its arithmetic to the
// bit, since the best path's score is a running sum from the text's start
// and an exact tie between two splits (say "0" "00" and "00" "0") is
// decided by how that sum rounds. Each position keeps its best score as a
// float32. A piece's candidate is the float64 sum of its score and the
// float32 score of where it starts (a user-defined piece scores
// len*maxScore - 0.1: that float64 literal makes the sum float64 in
// SentencePiece's C++), compared in float64 with the float32 kept there,
// and rounded to float32 when it wins; an unknown character's candidate
// is a float32 sum. The first candidate wins a tie. On models trained
// on golem's docs of 2026-12-07 (five unigram configurations, all 6,281
// lines), float32 sums, a word or a line at a time, split 34 lines
// otherwise than spm_encode (10, 0, 3, 16 and 5); this, none. A model
// from a tokenizer.json (sp.hf) follows Hugging Face tokenizers' Unigram
// instead: a word at a time where its Metaspace splits, every sum and
// kept score float64 (its scores are read as float32 here, which
// differs from its float64 scores only where a tie is that close).
func (t *Tokenizer) viterbi(e *encoder, dst []int, text string) []int {
	sp := t.sp
	n := len(text)
	if cap(e.vScore) < n+1 {
		e.vScore = make([]float64, n+1)
		e.vFrom = make([]int32, n+1)
		e.vID = make([]int32, n+1)
	}
	score, from, ids := e.vScore[:n+1], e.vFrom[:n+1], e.vID[:n+1]
	const unset, unkNode = -2, -1
	for i := range ids {
		ids[i] = unset
	}
	ids[0], score[0] = 0, 0
	unkScore := sp.minScore - unkPenalty
	relax := func(i, j int, id int32, c float64) {
		if ids[j] == unset || c > score[j] {
			if !sp.hf {
				c = float64(float32(c)) // kept as a float
			}
			score[j], from[j], ids[j] = c, int32(i), id
		}
	}
	for i := 0; i < n; {
		_, w := utf8.DecodeRuneInString(text[i:])
		single := false
		for j := i + 1; j <= min(n, i+sp.maxPiece); j++ {
			id, ok := t.ids[text[i:j]]
			if !ok {
				continue
			}
			single = single || j == i+w
			s := float64(sp.scores[id])
			if sp.user[id] && !sp.hf {
				s = float64(float32(j-i)*sp.maxScore) - 0.1
			}
			relax(i, j, id, s+score[i])
		}
		if !single {
			if sp.hf {
				relax(i, i+w, unkNode, float64(unkScore)+score[i])
			} else {
				relax(i, i+w, unkNode, float64(unkScore+float32(score[i])))
			}
		}
		i += w
	}
	// Walk back from the end, then append in order.
	path := e.parts[:0]
	for j := n; j > 0; j = int(from[j]) {
		path = append(path, int32(j))
	}
	e.parts = path
	start := 0
	var parts []int32
	for k := len(path) - 1; k >= 0; k-- {
		end := int(path[k])
		if id := ids[end]; id == unkNode {
			parts = sp.unknown(parts, text[start:end])
		} else {
			parts = append(parts, id)
		}
		start = end
	}
	for _, p := range parts {
		dst = append(dst, int(p))
	}
	return dst
}
