package tokenizer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/golem-ml/golem/internal/regfile"
)

// CLIP is CLIP's tokenizer (openai/CLIP's simple_tokenizer.py, which
// transformers' CLIPTokenizer follows): text cleaned (HTML entities
// unescaped, whitespace runs made one space, lower case), split into
// words, letters runs, single digits and punctuation runs, each word's
// bytes merged by byte-level BPE whose last symbol carries the end of the
// word ("</w>"). Its vocabulary is the 256 byte symbols, the same with
// "</w>", one token per merge, then <|startoftext|> and <|endoftext|>.
// ftfy's repair of mis-decoded text is not done (text that is valid
// UTF-8 needs none).
type CLIP struct {
	vocab    map[string]int
	ranks    map[string]int // "first second" -> merge rank
	BOS, EOS int            // <|startoftext|>, <|endoftext|>
}

// CLIPMerges is the number of merges CLIP's vocabulary uses from
// bpe_simple_vocab_16e6.txt (49,152 tokens: 512 byte symbols, the merges,
// 2 special tokens).
const CLIPMerges = 49152 - 256 - 2

// maxCLIPBytes bounds the merges file (16e6 is 1.4 MB unpacked).
const maxCLIPBytes = 64 << 20

var clipPattern = regexp.MustCompile(`(?i)<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+`)

var spaces = regexp.MustCompile(`\s+`)

// LoadCLIP reads CLIP's merges file, bpe_simple_vocab_16e6.txt, gzipped
// (as openai/CLIP ships it) or not.
func LoadCLIP(path string) (*CLIP, error) {
	raw, err := regfile.ReadFile(path, maxCLIPBytes)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var r io.Reader = bytes.NewReader(raw)
	if len(raw) > 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		z, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
		}
		r = io.LimitReader(z, maxCLIPBytes)
	}
	t := &CLIP{vocab: map[string]int{}, ranks: map[string]int{}}
	add := func(s string) { t.vocab[s] = len(t.vocab) }
	// The byte symbols in bytes_to_unicode's order: the printable bytes,
	// then the others.
	var order []rune
	for b := 0; b < 256; b++ {
		if r := byteToRune[b]; r < 256 {
			order = append(order, r)
		}
	}
	for b := 0; b < 256; b++ {
		if r := byteToRune[b]; r >= 256 {
			order = append(order, r)
		}
	}
	for _, r := range order {
		add(string(r))
	}
	for _, r := range order {
		add(string(r) + "</w>")
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	line := 0
	for sc.Scan() && len(t.ranks) < CLIPMerges {
		line++
		if line == 1 {
			continue // the version line
		}
		a, b, ok := strings.Cut(sc.Text(), " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, fmt.Errorf("tokenizer: %s:%d: want a merge of two symbols, have %q", path, line, sc.Text())
		}
		if _, dup := t.ranks[a+" "+b]; dup {
			return nil, fmt.Errorf("tokenizer: %s:%d: merge %q twice", path, line, sc.Text())
		}
		t.ranks[a+" "+b] = len(t.ranks)
		if _, ok := t.vocab[a+b]; !ok {
			add(a + b)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	if len(t.ranks) < CLIPMerges {
		return nil, fmt.Errorf("tokenizer: %s: %d merges, CLIP's vocabulary needs %d", path, len(t.ranks), CLIPMerges)
	}
	t.BOS, t.EOS = len(t.vocab), len(t.vocab)+1
	add("<|startoftext|>")
	add("<|endoftext|>")
	return t, nil
}

// Vocab returns the vocabulary size (49,408 for CLIP's file).
func (t *CLIP) Vocab() int { return len(t.vocab) }

// Encode returns the ids of text, without <|startoftext|> and
// <|endoftext|> around them.
func (t *CLIP) Encode(text string) []int {
	text = html.UnescapeString(html.UnescapeString(text))
	text = strings.ToLower(strings.TrimSpace(spaces.ReplaceAllString(text, " ")))
	var ids []int
	for _, w := range clipPattern.FindAllString(text, -1) {
		if w == "<|startoftext|>" || w == "<|endoftext|>" {
			ids = append(ids, t.vocab[w])
			continue
		}
		for _, s := range t.bpe(byteLevelEncode(w)) {
			ids = append(ids, t.vocab[s])
		}
	}
	return ids
}

// bpe merges a word's byte symbols by rank, the last one ending in
// "</w>", and returns its tokens.
func (t *CLIP) bpe(word string) []string {
	rs := []rune(word)
	syms := make([]string, len(rs))
	for i, r := range rs {
		syms[i] = string(r)
	}
	syms[len(syms)-1] += "</w>"
	for len(syms) > 1 {
		best, bestRank := -1, 0
		for i := 0; i+1 < len(syms); i++ {
			if r, ok := t.ranks[syms[i]+" "+syms[i+1]]; ok && (best < 0 || r < bestRank) {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break
		}
		// Merge every occurrence of the pair, left to right.
		a, b := syms[best], syms[best+1]
		out := syms[:0:0]
		for i := 0; i < len(syms); i++ {
			if i+1 < len(syms) && syms[i] == a && syms[i+1] == b {
				out = append(out, a+b)
				i++
			} else {
				out = append(out, syms[i])
			}
		}
		syms = out
	}
	return syms
}

// Batch encodes texts as B rows of context ids for CLIP's text tower:
// <|startoftext|>, the text's ids, <|endoftext|>, then padding (pad). A
// text too long is cut to fit, keeping its <|endoftext|> (the token the
// tower pools at).
func (t *CLIP) Batch(texts []string, context, pad int) ([]int32, error) {
	if context < 2 {
		return nil, fmt.Errorf("tokenizer: a context of %d tokens holds no text between <|startoftext|> and <|endoftext|>", context)
	}
	out := make([]int32, len(texts)*context)
	for i, s := range texts {
		row := out[i*context : (i+1)*context]
		ids := t.Encode(s)
		if len(ids) > context-2 {
			ids = ids[:context-2]
		}
		row[0] = int32(t.BOS)
		for j, id := range ids {
			row[1+j] = int32(id)
		}
		row[1+len(ids)] = int32(t.EOS)
		for j := 2 + len(ids); j < context; j++ {
			row[j] = int32(pad)
		}
	}
	return out, nil
}

// CLIPFiles are the names of CLIP's merges file in a model folder
// (openai/CLIP's name, gzipped or not); golem clip train writes it there.
var CLIPFiles = []string{"bpe_simple_vocab_16e6.txt.gz", "bpe_simple_vocab_16e6.txt"}

// LoadCLIPDir reads the CLIP tokenizer of a model folder (one of
// CLIPFiles).
func LoadCLIPDir(dir string) (*CLIP, error) {
	for _, n := range CLIPFiles {
		p := filepath.Join(dir, n)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return LoadCLIP(p)
		}
	}
	return nil, fmt.Errorf("tokenizer: %s: no CLIP tokenizer (%s)", dir, CLIPFiles[0])
}
