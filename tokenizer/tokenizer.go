package tokenizer

import (
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

type modelKind int

const (
	modelBPE     modelKind = iota // byte-level BPE
	modelChar                     // one token per character
	modelSP                       // SentencePiece-style BPE (sentencepiece.go)
	modelUnigram                  // SentencePiece-style Unigram
)

// noMerge is the merge value of a pair that does not merge.
const noMerge = ^uint64(0)

// A merge joins the tokens A and B into Result. Merges apply in order of
// Rank, lowest first.
type merge struct {
	a, b, result int32
	rank         uint32
}

// Tokenizer turns text into token ids and back. It is a byte-level BPE
// (GPT-2, tiktoken, Llama 3, Qwen2 and the tokenizers golem trains) or a
// character-level tokenizer (NewChar). A Tokenizer is safe for concurrent
// use; each goroutine gets its own merge cache.
type Tokenizer struct {
	model          modelKind
	pattern        Pattern
	nfc            bool // normalise text to NFC before encoding (Qwen2)
	addPrefixSpace bool // prepend a space to text that does not start with one
	ignoreMerges   bool // a piece that is a whole token is that token (Llama 3)

	tokens  []string         // id -> bytes; "" for an unused id
	ids     map[string]int32 // bytes -> id of the ordinary tokens
	merges  pairTable        // (a, b) -> rank<<32 | result
	mergeAt []merge          // the merges in rank order, for Save
	byteIDs [256]int32       // the token of each single byte

	specials     []string // special tokens' texts, longest first
	specialIDs   map[string]int
	specialFirst [256]bool // first bytes of special tokens

	chars map[rune]int32 // character model: rune -> id

	sp *spModel // SentencePiece-style models

	chat *chatTemplate // the model's own chat template; nil: ChatML

	freeMu sync.Mutex
	free   []*encoder // idle encoders with warm caches
}

// encoder holds one goroutine's scratch space and merge cache.
type encoder struct {
	cache map[string]uint64 // piece -> offset<<32 | count into arena
	arena []int32
	parts []int32
	ranks []uint64
	heap  mergeHeap
	prev  []int32
	next  []int32
	out   []int // one segment's ids

	shortKeys []uint64 // cache of pieces of up to 7 bytes, see appendShort
	shortVals []uint64
	shortN    int

	vScore []float64 // Unigram's Viterbi: best score, start and piece
	vFrom  []int32   // of the path that ends at each position
	vID    []int32
}

const (
	maxCacheEntries = 1 << 17
	maxArena        = 1 << 22
	heapMinPiece    = 96 // pieces this long or longer merge with a heap
)

// getEncoder takes an encoder from the tokenizer's free list, or makes one.
// Unlike a sync.Pool, the free list survives garbage collections, so the
// caches stay warm.
func (t *Tokenizer) getEncoder() *encoder {
	t.freeMu.Lock()
	defer t.freeMu.Unlock()
	if n := len(t.free); n > 0 {
		e := t.free[n-1]
		t.free = t.free[:n-1]
		return e
	}
	return &encoder{cache: make(map[string]uint64)}
}

// putEncoder returns e to the free list, which keeps a few per core.
func (t *Tokenizer) putEncoder(e *encoder) {
	t.freeMu.Lock()
	defer t.freeMu.Unlock()
	if len(t.free) < 2*runtime.GOMAXPROCS(0) {
		t.free = append(t.free, e)
	}
}

// VocabSize returns the number of token ids: one more than the largest id.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// Pattern returns the pre-tokenizer pattern of a BPE tokenizer.
func (t *Tokenizer) Pattern() Pattern { return t.pattern }

// Token returns the bytes of token id, and whether the id exists.
func (t *Tokenizer) Token(id int) (string, bool) {
	if id < 0 || id >= len(t.tokens) || t.tokens[id] == "" {
		return "", false
	}
	return t.tokens[id], true
}

// SpecialID returns the id of a special token such as "<|endoftext|>".
func (t *Tokenizer) SpecialID(name string) (int, bool) {
	id, ok := t.specialIDs[name]
	return id, ok
}

// Specials returns the special tokens' texts, sorted by id.
func (t *Tokenizer) Specials() []string {
	s := make([]string, 0, len(t.specialIDs))
	for k := range t.specialIDs {
		s = append(s, k)
	}
	sort.Slice(s, func(i, j int) bool { return t.specialIDs[s[i]] < t.specialIDs[s[j]] })
	return s
}

// IsSpecial reports whether id is a special token.
func (t *Tokenizer) IsSpecial(id int) bool {
	tok, ok := t.Token(id)
	if !ok {
		return false
	}
	sid, ok := t.specialIDs[tok]
	return ok && sid == id
}

// Encode returns the token ids of text. Special tokens in text are encoded
// as ordinary text; use EncodeWithSpecial to recognise them.
func (t *Tokenizer) Encode(text string) []int {
	if len(text) > 2*segmentSize {
		return t.EncodeParallel(text, 1)
	}
	return t.AppendEncode(make([]int, 0, len(text)/3+1), text)
}

// AppendEncode appends the token ids of text to dst, like Encode.
func (t *Tokenizer) AppendEncode(dst []int, text string) []int {
	if t.nfc {
		text = norm.NFC.String(text)
	}
	e := t.getEncoder()
	dst = t.encodeOrdinary(e, dst, text, t.addPrefixSpace)
	t.putEncoder(e)
	return dst
}

// EncodeWithSpecial returns the token ids of text, where each occurrence of
// a special token's text (the longest, when several match) is that token.
func (t *Tokenizer) EncodeWithSpecial(text string) []int {
	if t.nfc {
		text = norm.NFC.String(text)
	}
	e := t.getEncoder()
	dst := make([]int, 0, len(text)/3+1)
	prefix := t.addPrefixSpace
	for text != "" {
		i, tok := t.findSpecial(text)
		if i < 0 {
			dst = t.encodeOrdinary(e, dst, text, prefix)
			break
		}
		dst = t.encodeOrdinary(e, dst, text[:i], prefix)
		dst = append(dst, t.specialIDs[tok])
		text = text[i+len(tok):]
		prefix = t.prefixAfterSpecial()
	}
	t.putEncoder(e)
	return dst
}

// prefixAfterSpecial reports whether the text after a special token gets a
// space put before it (a SentencePiece-style tokenizer whose prefix is only
// for the start of the text does not).
func (t *Tokenizer) prefixAfterSpecial() bool {
	return t.addPrefixSpace && (t.sp == nil || !t.sp.prefixFirst)
}

// findSpecial returns the position and text of the first special token in
// s, or -1.
func (t *Tokenizer) findSpecial(s string) (int, string) {
	if len(t.specials) == 0 {
		return -1, ""
	}
	for i := 0; i < len(s); i++ {
		if !t.specialFirst[s[i]] {
			continue
		}
		for _, sp := range t.specials {
			if strings.HasPrefix(s[i:], sp) {
				return i, sp
			}
		}
	}
	return -1, ""
}

// encodeOrdinary appends the ids of text, which holds no special tokens.
func (t *Tokenizer) encodeOrdinary(e *encoder, dst []int, text string, prefixSpace bool) []int {
	if text == "" {
		return dst
	}
	if t.sp != nil {
		return t.spEncode(e, dst, text, prefixSpace)
	}
	if t.model == modelChar {
		for _, r := range text {
			if id, ok := t.chars[r]; ok {
				dst = append(dst, int(id))
			}
		}
		return dst
	}
	if prefixSpace && text[0] != ' ' {
		text = " " + text
	}
	initClasses()
	p := t.pattern
	for i := 0; i < len(text); {
		j := p.next(text, i)
		dst = t.appendPiece(e, dst, text[i:j])
		i = j
	}
	return dst
}

// appendPiece appends the ids of one pre-tokenized piece.
func (t *Tokenizer) appendPiece(e *encoder, dst []int, piece string) []int {
	if len(piece) == 1 {
		return append(dst, int(t.byteIDs[piece[0]]))
	}
	if t.ignoreMerges {
		if id, ok := t.ids[piece]; ok {
			return append(dst, int(id))
		}
	}
	if len(piece) <= 7 {
		return t.appendShort(e, dst, piece)
	}
	if v, ok := e.cache[piece]; ok {
		for _, id := range e.arena[v>>32 : v>>32+v&0xffffffff] {
			dst = append(dst, int(id))
		}
		return dst
	}
	start := len(dst)
	dst = t.bpe(e, dst, piece)
	if len(e.cache) >= maxCacheEntries || len(e.arena) >= maxArena {
		clear(e.cache)
		e.arena = e.arena[:0]
	}
	off := len(e.arena)
	for _, id := range dst[start:] {
		e.arena = append(e.arena, int32(id))
	}
	e.cache[strings.Clone(piece)] = uint64(off)<<32 | uint64(len(dst)-start)
	return dst
}

// shortCacheBits sizes the cache of short pieces.
const shortCacheBits = 15

// appendShort is appendPiece for pieces of 2 to 7 bytes, the most common:
// they are cached by their bytes packed in a word, in an open-addressing
// table, when they encode to at most three tokens below 2^21-1.
func (t *Tokenizer) appendShort(e *encoder, dst []int, piece string) []int {
	k := uint64(len(piece)) << 56
	for i := 0; i < len(piece); i++ {
		k |= uint64(piece[i]) << (8 * i)
	}
	if e.shortKeys == nil {
		e.shortKeys = make([]uint64, 1<<shortCacheBits)
		e.shortVals = make([]uint64, 1<<shortCacheBits)
	}
	const mask = 1<<shortCacheBits - 1
	i := (k * 0x9E3779B97F4A7C15) >> (64 - shortCacheBits)
	for ; e.shortKeys[i] != 0; i = (i + 1) & mask {
		if e.shortKeys[i] == k {
			// Up to three ids, each plus one in 21 bits; 0 ends the list.
			for v := e.shortVals[i]; v != 0; v >>= 21 {
				dst = append(dst, int(v&(1<<21-1))-1)
			}
			return dst
		}
	}
	start := len(dst)
	dst = t.bpeScan(e, dst, piece)
	if len(dst)-start > 3 {
		return dst
	}
	var v uint64
	for j := len(dst) - 1; j >= start; j-- {
		if dst[j]+1 >= 1<<21 {
			return dst
		}
		v = v<<21 | uint64(dst[j]+1)
	}
	if e.shortN >= 1<<(shortCacheBits-1) {
		clear(e.shortKeys)
		e.shortN = 0
		i = (k * 0x9E3779B97F4A7C15) >> (64 - shortCacheBits)
	}
	e.shortKeys[i], e.shortVals[i] = k, v
	e.shortN++
	return dst
}

// bpe merges the bytes of piece and appends the resulting ids: repeatedly
// the adjacent pair with the lowest rank, leftmost first.
func (t *Tokenizer) bpe(e *encoder, dst []int, piece string) []int {
	if len(piece) >= heapMinPiece {
		return t.bpeHeap(e, dst, piece)
	}
	return t.bpeScan(e, dst, piece)
}

// bpeScan is bpe for short pieces: each merge scans the pairs for the
// lowest rank, and looks up only the two pairs it changes.
func (t *Tokenizer) bpeScan(e *encoder, dst []int, piece string) []int {
	t.byteParts(e, piece)
	return t.mergeScan(e, dst)
}

// byteParts sets e.parts to the tokens of piece's bytes.
func (t *Tokenizer) byteParts(e *encoder, piece string) {
	parts := e.parts[:0]
	for i := 0; i < len(piece); i++ {
		parts = append(parts, t.byteIDs[piece[i]])
	}
	e.parts = parts
}

// mergeParts merges e.parts, the initial tokens of a piece, and appends the
// resulting ids.
func (t *Tokenizer) mergeParts(e *encoder, dst []int) []int {
	if len(e.parts) >= heapMinPiece {
		return t.mergeByHeap(e, dst)
	}
	return t.mergeScan(e, dst)
}

// mergeScan is mergeParts for short pieces: each merge scans the pairs for
// the lowest rank, and looks up only the two pairs it changes.
func (t *Tokenizer) mergeScan(e *encoder, dst []int) []int {
	parts := e.parts
	ranks := e.ranks[:0]
	for i := 0; i+1 < len(parts); i++ {
		ranks = append(ranks, t.merges.get(parts[i], parts[i+1]))
	}
	for {
		best, bi := noMerge, -1
		for i, r := range ranks {
			if r < best {
				best, bi = r, i
			}
		}
		if bi < 0 {
			break
		}
		parts[bi] = int32(uint32(best))
		parts = append(parts[:bi+1], parts[bi+2:]...)
		ranks = append(ranks[:bi], ranks[bi+1:]...)
		if bi > 0 {
			ranks[bi-1] = t.merges.get(parts[bi-1], parts[bi])
		}
		if bi < len(ranks) {
			ranks[bi] = t.merges.get(parts[bi], parts[bi+1])
		}
	}
	for _, p := range parts {
		dst = append(dst, int(p))
	}
	e.parts, e.ranks = parts, ranks
	return dst
}

// bpeHeap is bpe for long pieces: a linked list of parts and a heap of
// candidate merges, O(n log n).
func (t *Tokenizer) bpeHeap(e *encoder, dst []int, piece string) []int {
	t.byteParts(e, piece)
	return t.mergeByHeap(e, dst)
}

// mergeByHeap is mergeParts for long pieces.
func (t *Tokenizer) mergeByHeap(e *encoder, dst []int) []int {
	parts := e.parts
	n := len(parts)
	prev, next := e.prev[:0], e.next[:0]
	for i := 0; i < n; i++ {
		prev = append(prev, int32(i-1))
		next = append(next, int32(i+1))
	}
	cur := e.ranks[:0]
	h := e.heap[:0]
	for i := 0; i < n; i++ {
		r := noMerge
		if i+1 < n {
			r = t.merges.get(parts[i], parts[i+1])
		}
		cur = append(cur, r)
		if r != noMerge {
			h = append(h, heapItem{r, int32(i)})
		}
	}
	h.init()
	for len(h) > 0 {
		it := h.pop()
		p := it.pos
		if cur[p] != it.v {
			continue // stale
		}
		q := next[p]
		parts[p] = int32(uint32(it.v))
		cur[q] = noMerge
		parts[q] = -1
		nq := next[q]
		next[p] = nq
		if int(nq) < n {
			prev[nq] = p
			cur[p] = t.merges.get(parts[p], parts[nq])
			if cur[p] != noMerge {
				h.push(heapItem{cur[p], p})
			}
		} else {
			cur[p] = noMerge
		}
		if pp := prev[p]; pp >= 0 {
			cur[pp] = t.merges.get(parts[pp], parts[p])
			if cur[pp] != noMerge {
				h.push(heapItem{cur[pp], pp})
			}
		}
	}
	for i := 0; i < n; i = int(next[i]) {
		dst = append(dst, int(parts[i]))
	}
	e.parts, e.prev, e.next, e.ranks, e.heap = parts, prev, next, cur, h
	return dst
}

type heapItem struct {
	v   uint64
	pos int32
}

// mergeHeap is a binary min-heap ordered by (v, pos).
type mergeHeap []heapItem

func (h mergeHeap) less(i, j int) bool {
	return h[i].v < h[j].v || h[i].v == h[j].v && h[i].pos < h[j].pos
}

func (h mergeHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h mergeHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func (h *mergeHeap) push(it heapItem) {
	*h = append(*h, it)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *mergeHeap) pop() heapItem {
	s := *h
	it := s[0]
	s[0] = s[len(s)-1]
	s = s[:len(s)-1]
	s.down(0)
	*h = s
	return it
}

// Decode returns the text of ids. Ids outside the vocabulary are skipped.
// The result is the exact bytes encoded, which for a piece of a sequence
// may end inside a UTF-8 character.
func (t *Tokenizer) Decode(ids []int) string {
	n := 0
	for _, id := range ids {
		if id >= 0 && id < len(t.tokens) {
			n += len(t.tokens[id])
		}
	}
	b := make([]byte, 0, n)
	for _, id := range ids {
		if id >= 0 && id < len(t.tokens) {
			b = append(b, t.tokens[id]...)
		}
	}
	if t.sp != nil && t.sp.stripDecode && len(b) > 0 && b[0] == ' ' {
		b = b[1:] // the dummy prefix
	}
	return string(b)
}

// EncodeBatch encodes texts with up to workers goroutines (0 means
// GOMAXPROCS), without special-token parsing.
func (t *Tokenizer) EncodeBatch(texts []string, workers int) [][]int {
	out := make([][]int, len(texts))
	parallel(len(texts), workers, func(i int) { out[i] = t.Encode(texts[i]) })
	return out
}

// segmentSize is the size of the pieces EncodeParallel cuts text into.
const segmentSize = 1 << 20

// EncodeParallel encodes one large text with up to workers goroutines (0
// means GOMAXPROCS). It cuts text only where the pre-tokenizer would cut it
// anyway (after a lone newline, before a letter or digit), so the result
// equals Encode(text).
func (t *Tokenizer) EncodeParallel(text string, workers int) []int {
	if t.nfc {
		text = norm.NFC.String(text)
	}
	initClasses()
	// Cut into segments of about segmentSize bytes; encode each into its
	// own slice, then copy them into one of the exact size. This keeps the
	// big result from being regrown and recopied as it fills.
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	size := segmentSize
	if workers > 1 {
		// At least four segments a worker, to balance the load.
		size = min(size, max(len(text)/(4*workers), 1<<16))
	}
	var cuts []int
	for c := 0; c < len(text); {
		cuts = append(cuts, c)
		next := len(text)
		if len(text)-c > size+size/2 {
			next = safeCut(text, c+size)
		}
		c = next
	}
	cuts = append(cuts, len(text))
	if len(cuts) <= 2 || t.sp != nil { // SentencePiece has no safe cut
		e := t.getEncoder()
		defer t.putEncoder(e)
		return t.encodeOrdinary(e, make([]int, 0, len(text)/3+1), text, t.addPrefixSpace)
	}
	outs := make([][]int, len(cuts)-1)
	parallel(len(outs), workers, func(i int) {
		e := t.getEncoder()
		seg := text[cuts[i]:cuts[i+1]]
		e.out = t.encodeOrdinary(e, e.out[:0], seg, i == 0 && t.addPrefixSpace)
		outs[i] = slices.Clone(e.out)
		t.putEncoder(e)
	})
	n := 0
	for _, o := range outs {
		n += len(o)
	}
	ids := make([]int, 0, n)
	for _, o := range outs {
		ids = append(ids, o...)
	}
	return ids
}

// safeCut returns the first position at or after i that follows a lone
// newline and starts a letter or digit, or len(s). Every pattern ends a
// piece there.
func safeCut(s string, i int) int {
	for {
		j := strings.IndexByte(s[i:], '\n')
		if j < 0 {
			return len(s)
		}
		p := i + j + 1
		if p >= len(s) {
			return len(s)
		}
		// A lone newline between a non-space and a letter or digit is a
		// piece of its own whether or not the text ends after it.
		if c, _ := class(s, p); c&(cL|cN) != 0 && p >= 2 {
			if r, _ := utf8.DecodeLastRuneInString(s[:p-1]); r != utf8.RuneError && !unicode.Is(unicode.White_Space, r) {
				return p
			}
		}
		i = p
	}
}

// parallel runs f(0..n-1) on up to workers goroutines.
func parallel(n, workers int, f func(i int)) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// pairTable maps a pair of token ids to a merge value, by open addressing.
type pairTable struct {
	keys  []uint64 // pair+1; 0 is empty
	vals  []uint64
	shift uint
	n     int
}

func pairKey(a, b int32) uint64 { return (uint64(uint32(a))<<32 | uint64(uint32(b))) + 1 }

func (p *pairTable) get(a, b int32) uint64 {
	if p.n == 0 {
		return noMerge
	}
	k := pairKey(a, b)
	mask := uint64(len(p.keys) - 1)
	for i := (k * 0x9E3779B97F4A7C15) >> p.shift; ; i = (i + 1) & mask {
		switch p.keys[i] {
		case k:
			return p.vals[i]
		case 0:
			return noMerge
		}
	}
}

// put sets the value of (a, b) unless it is already set with a lower one.
func (p *pairTable) put(a, b int32, v uint64) {
	if (p.n+1)*2 > len(p.keys) {
		p.grow()
	}
	k := pairKey(a, b)
	mask := uint64(len(p.keys) - 1)
	for i := (k * 0x9E3779B97F4A7C15) >> p.shift; ; i = (i + 1) & mask {
		switch p.keys[i] {
		case k:
			p.vals[i] = min(p.vals[i], v)
			return
		case 0:
			p.keys[i], p.vals[i] = k, v
			p.n++
			return
		}
	}
}

func (p *pairTable) grow() { p.resize(p.n + 1) }

// resize makes room for n pairs without growing (the table holds
// p.n of them), rehashing what it holds.
func (p *pairTable) resize(n int) {
	keys, vals := p.keys, p.vals
	size := 1024
	for size < 4*n {
		size *= 2
	}
	p.keys, p.vals = make([]uint64, size), make([]uint64, size)
	p.shift = 64
	for s := size; s > 1; s >>= 1 {
		p.shift--
	}
	p.n = 0
	for i, k := range keys {
		if k != 0 {
			p.put(int32(uint32((k-1)>>32)), int32(uint32(k-1)), vals[i])
		}
	}
}

func nfcString(s string) string { return norm.NFC.String(s) }
