package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/golem-ml/golem/internal/textfiles"
)

// DefaultSpecial are the special tokens a trained tokenizer reserves unless
// TrainOptions.NoDefaultSpecial is set.
var DefaultSpecial = []string{EndOfText, ImStart, ImEnd, Pad}

// TrainOptions configures Train.
type TrainOptions struct {
	// Files are text files, directories (read recursively, hidden files
	// skipped) and glob patterns. A .jsonl file contributes the "text" field
	// of each line; any other file its whole text.
	Files []string
	// Texts are more training texts, in memory.
	Texts []string
	// VocabSize is the size of the vocabulary, the 256 bytes and the special
	// tokens included. Training stops earlier when no pair is seen at least
	// MinFrequency times.
	VocabSize int
	// Special are special tokens added after DefaultSpecial.
	Special []string
	// NoDefaultSpecial leaves out DefaultSpecial.
	NoDefaultSpecial bool
	// Pattern is the pre-tokenizer: "gpt2", "cl100k" (the default), "qwen2"
	// or "o200k".
	Pattern string
	// MinFrequency is the least count of a pair to be merged (default 2).
	MinFrequency int
	// Workers is the number of goroutines reading and counting (default
	// GOMAXPROCS).
	Workers int
	// Progress, if set, receives a progress bar.
	Progress io.Writer
}

// Train learns a byte-level BPE vocabulary: ids 0-255 are the bytes, then
// one token per merge in the order learned (the most frequent adjacent pair
// of the pre-tokenized text, ties broken by the smaller pair of ids), then
// the special tokens. Special tokens' texts in the training data are cut
// out, never learned.
func Train(opts TrainOptions) (*Tokenizer, error) {
	pattern, err := ParsePattern(opts.Pattern)
	if err != nil {
		return nil, err
	}
	var special []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			special = append(special, s)
		}
	}
	if !opts.NoDefaultSpecial {
		for _, s := range DefaultSpecial {
			add(s)
		}
	}
	for _, s := range opts.Special {
		add(s)
	}
	if opts.VocabSize < 256+len(special) {
		return nil, fmt.Errorf("tokenizer: vocabulary size %d is smaller than the 256 bytes and %d special tokens", opts.VocabSize, len(special))
	}
	minFreq := int64(opts.MinFrequency)
	if minFreq <= 0 {
		minFreq = 2
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	files, err := expandFiles(opts.Files)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 && len(opts.Texts) == 0 {
		return nil, errors.New("tokenizer: no training data")
	}
	prog := newProgress(opts.Progress)
	counts, err := countWords(files, opts.Texts, pattern, special, workers, prog)
	if err != nil {
		return nil, err
	}
	merges := learnMerges(counts, opts.VocabSize-256-len(special), minFreq, prog)

	tokens := make([]string, 256, 256+len(merges)+len(special))
	for b := range tokens {
		tokens[b] = string([]byte{byte(b)})
	}
	for _, m := range merges {
		tokens = append(tokens, tokens[m.a]+tokens[m.b])
	}
	sp := map[string]int{}
	for _, s := range special {
		sp[s] = len(tokens)
		tokens = append(tokens, s)
	}
	return newBPE(tokens, merges, sp, pattern)
}

// expandFiles turns files, directories and globs into a file list.
func expandFiles(args []string) ([]string, error) {
	files, err := textfiles.Expand(args, nil)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return files, nil
}

// readTexts returns the training texts of a file: the "text" fields of a
// .jsonl file, else the whole file.
func readTexts(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if !strings.HasSuffix(path, ".jsonl") {
		return []string{string(data)}, nil
	}
	var texts []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<30)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var rec struct {
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			return nil, fmt.Errorf("tokenizer: %s line %d: %v", path, n, err)
		}
		if rec.Text == nil {
			return nil, fmt.Errorf("tokenizer: %s line %d: \"text\" missing", path, n)
		}
		texts = append(texts, *rec.Text)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return texts, nil
}

// countWords pre-tokenizes all the text on workers goroutines and counts
// each distinct piece.
func countWords(files, texts []string, p Pattern, special []string, workers int, prog *progress) (map[string]int64, error) {
	initClasses()
	sp := &Tokenizer{}
	m := map[string]int{}
	for i, s := range special {
		m[s] = i
	}
	sp.setSpecials(m)

	// Work items: whole files, cut into chunks of about 1 MiB at places
	// where the pre-tokenizer cuts anyway.
	type item struct {
		file string
		text string
	}
	items := make(chan item, 4*workers)
	var (
		mu     sync.Mutex
		total  = map[string]int64{}
		first  error
		wg     sync.WaitGroup
		nbytes int64
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := map[string]int64{}
			for it := range items {
				text := it.text
				for text != "" {
					i, tok := sp.findSpecial(text)
					seg := text
					if i >= 0 {
						seg, text = text[:i], text[i+len(tok):]
					} else {
						text = ""
					}
					for a := 0; a < len(seg); {
						b := p.next(seg, a)
						local[seg[a:b]]++
						a = b
					}
				}
				mu.Lock()
				nbytes += int64(len(it.text))
				prog.set("reading", nbytes, -1)
				mu.Unlock()
			}
			mu.Lock()
			if len(total) == 0 {
				total = local
			} else {
				if len(local) > len(total) {
					total, local = local, total
				}
				for k, v := range local {
					total[k] += v
				}
			}
			mu.Unlock()
		}()
	}
	send := func(file, text string) {
		const chunk = 1 << 20
		for len(text) > chunk {
			c := safeCut(text, chunk)
			items <- item{file, text[:c]}
			text = text[c:]
		}
		if text != "" {
			items <- item{file, text}
		}
	}
	for _, t := range texts {
		send("", t)
	}
	for _, f := range files {
		ts, err := readTexts(f)
		if err != nil {
			first = err
			break
		}
		for _, t := range ts {
			send(f, t)
		}
	}
	close(items)
	wg.Wait()
	if first != nil {
		return nil, first
	}
	// The map keys are substrings of the chunks; keep only what is needed.
	out := make(map[string]int64, len(total))
	for k, v := range total {
		out[strings.Clone(k)] = v
	}
	prog.done(fmt.Sprintf("read %d MB, %d distinct pieces", nbytes>>20, len(out)))
	return out, nil
}

type trainWord struct {
	ids   []int32
	count int64
}

type pairCount struct {
	pair  uint64
	count int64
}

// pairHeap is a max-heap of pair counts, ties broken by the smaller pair.
type pairHeap []pairCount

func (h pairHeap) less(i, j int) bool {
	return h[i].count > h[j].count || h[i].count == h[j].count && h[i].pair < h[j].pair
}

func (h *pairHeap) push(x pairCount) {
	*h = append(*h, x)
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

func (h *pairHeap) pop() pairCount {
	s := *h
	top := s[0]
	s[0] = s[len(s)-1]
	s = s[:len(s)-1]
	for i := 0; ; {
		l := 2*i + 1
		if l >= len(s) {
			break
		}
		m := l
		if r := l + 1; r < len(s) && s.less(r, l) {
			m = r
		}
		if !s.less(m, i) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

func mkpair(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// pairRec is what training knows of one pair of ids: how often it occurs
// and in which words (a superset: entries go stale as words change).
type pairRec struct {
	count int64
	where []int32
}

// pairIndex maps a pair to its record by open addressing. Pairs are never
// removed; a pair that no longer occurs has count 0.
type pairIndex struct {
	keys  []uint64 // pair+1; 0 is empty
	idx   []int32
	shift uint
	recs  []pairRec
	pairs []uint64 // pair of each record
}

func (x *pairIndex) rec(p uint64) *pairRec {
	if 2*(len(x.recs)+1) > len(x.keys) {
		x.grow()
	}
	k := p + 1
	mask := uint64(len(x.keys) - 1)
	for i := (k * 0x9E3779B97F4A7C15) >> x.shift; ; i = (i + 1) & mask {
		switch x.keys[i] {
		case k:
			return &x.recs[x.idx[i]]
		case 0:
			x.keys[i], x.idx[i] = k, int32(len(x.recs))
			x.recs = append(x.recs, pairRec{})
			x.pairs = append(x.pairs, p)
			return &x.recs[len(x.recs)-1]
		}
	}
}

func (x *pairIndex) grow() {
	size := 1 << 16
	for size < 4*(len(x.recs)+1) {
		size *= 2
	}
	x.keys, x.idx = make([]uint64, size), make([]int32, size)
	x.shift = 64
	for s := size; s > 1; s >>= 1 {
		x.shift--
	}
	mask := uint64(size - 1)
	for r, p := range x.pairs {
		k := p + 1
		i := (k * 0x9E3779B97F4A7C15) >> x.shift
		for x.keys[i] != 0 {
			i = (i + 1) & mask
		}
		x.keys[i], x.idx[i] = k, int32(r)
	}
}

// learnMerges learns up to n merges from the piece counts.
func learnMerges(counts map[string]int64, n int, minFreq int64, prog *progress) []merge {
	// Sort the pieces so that training is deterministic.
	keys := make([]string, 0, len(counts))
	for k := range counts {
		if len(k) > 1 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	words := make([]trainWord, len(keys))
	var pairs pairIndex
	for wi, k := range keys {
		ids := make([]int32, len(k))
		for i := 0; i < len(k); i++ {
			ids[i] = int32(k[i])
		}
		c := counts[k]
		words[wi] = trainWord{ids, c}
		for i := 0; i+1 < len(ids); i++ {
			r := pairs.rec(mkpair(ids[i], ids[i+1]))
			r.count += c
			if w := r.where; len(w) == 0 || w[len(w)-1] != int32(wi) {
				r.where = append(w, int32(wi))
			}
		}
	}
	h := make(pairHeap, 0, len(pairs.recs))
	for i, r := range pairs.recs {
		h = append(h, pairCount{pairs.pairs[i], r.count})
	}
	sort.Slice(h, func(i, j int) bool { return h.less(i, j) }) // a sorted slice is a heap

	merges := make([]merge, 0, n)
	var touched []uint64
	for len(merges) < n && len(h) > 0 {
		top := h.pop()
		tr := pairs.rec(top.pair)
		if tr.count != top.count {
			if tr.count > 0 {
				h.push(pairCount{top.pair, tr.count})
			}
			continue
		}
		if tr.count < minFreq {
			break
		}
		a, b := int32(top.pair>>32), int32(uint32(top.pair))
		id := int32(256 + len(merges))
		merges = append(merges, merge{a: a, b: b, result: id, rank: uint32(len(merges))})
		touched = touched[:0]
		change := func(x, y int32, d int64, wi int32) {
			p := mkpair(x, y)
			r := pairs.rec(p)
			r.count += d
			if d > 0 {
				touched = append(touched, p)
				if w := r.where; len(w) == 0 || w[len(w)-1] != wi {
					r.where = append(w, wi)
				}
			}
		}
		where := tr.where
		tr.where, tr.count = nil, 0
		for _, wi := range where {
			w := &words[wi]
			ids, c := w.ids, w.count
			out := ids[:0]
			for i := 0; i < len(ids); {
				if i+1 < len(ids) && ids[i] == a && ids[i+1] == b {
					if len(out) > 0 {
						l := out[len(out)-1]
						change(l, a, -c, wi)
						change(l, id, c, wi)
					}
					if i+2 < len(ids) {
						r := ids[i+2]
						change(b, r, -c, wi)
						change(id, r, c, wi)
					}
					out = append(out, id)
					i += 2
					continue
				}
				out = append(out, ids[i])
				i++
			}
			w.ids = out
		}
		pairs.rec(top.pair).count = 0
		slices.Sort(touched)
		for i, p := range touched {
			if i > 0 && touched[i-1] == p {
				continue
			}
			if c := pairs.rec(p).count; c > 0 {
				h.push(pairCount{p, c})
			}
		}
		prog.set("merging", int64(len(merges)), int64(n))
	}
	prog.done(fmt.Sprintf("learned %d merges", len(merges)))
	return merges
}

// progress draws a one-line progress bar, at most ten times a second.
type progress struct {
	w     io.Writer
	last  time.Time
	start time.Time
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, start: time.Now()}
}

func (p *progress) set(label string, done, total int64) {
	if p.w == nil || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	if total <= 0 {
		fmt.Fprintf(p.w, "\r%s %d MB", label, done>>20)
		return
	}
	const width = 30
	k := int(done * width / total)
	fmt.Fprintf(p.w, "\r%s [%s%s] %d/%d", label, strings.Repeat("=", k), strings.Repeat(" ", width-k), done, total)
}

func (p *progress) done(msg string) {
	if p.w == nil {
		return
	}
	fmt.Fprintf(p.w, "\r%-60s\n", fmt.Sprintf("%s (%.1fs)", msg, time.Since(p.start).Seconds()))
}
