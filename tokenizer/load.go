package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/internal/regfile"
)

// maxFileSize bounds the tokenizer files golem reads (the largest real ones,
// o200k's, are about 10 MB).
const maxFileSize = 1 << 30

// Load reads a tokenizer from path, which is one of the following; a
// tokenizer.json's tokenizer_config.json, when there is one beside it,
// gives the chat template (see SetChatTemplate) and its special tokens.
//   - a folder holding tokenizer.json (a golem or Hugging Face model folder),
//   - a folder holding a SentencePiece tokenizer.model (and no tokenizer.json),
//   - a folder holding GPT-2's encoder.json and vocab.bpe,
//   - a tokenizer.json file,
//   - a SentencePiece .model file (see LoadSentencePiece),
//   - a tiktoken rank file (lines "base64-token rank", e.g. cl100k_base.tiktoken),
//   - a GGUF model (a .gguf file, "ollama:NAME[:TAG]", or a folder whose
//     weights are model.gguf; see gguf.Locate), whose tokenizer is read
//     from its metadata (FromGGUF).
func Load(path string) (*Tokenizer, error) {
	if file, ok, err := gguf.Locate(path); ok || err != nil {
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		return LoadGGUF(file)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if fi.IsDir() {
		tj := filepath.Join(path, "tokenizer.json")
		if _, err := os.Stat(tj); err == nil {
			return loadWithConfig(tj, LoadTokenizerJSON)
		}
		if sm := filepath.Join(path, "tokenizer.model"); fileExists(sm) {
			return loadWithConfig(sm, LoadSentencePiece)
		}
		enc, bpe := filepath.Join(path, "encoder.json"), filepath.Join(path, "vocab.bpe")
		if _, err := os.Stat(enc); err == nil {
			return loadGPT2Files(enc, bpe)
		}
		return nil, fmt.Errorf("tokenizer: %s: no tokenizer.json, tokenizer.model, nor encoder.json and vocab.bpe", path)
	}
	switch filepath.Base(path) {
	case "encoder.json", "vocab.bpe":
		dir := filepath.Dir(path)
		return loadGPT2Files(filepath.Join(dir, "encoder.json"), filepath.Join(dir, "vocab.bpe"))
	}
	if strings.HasSuffix(path, ".json") {
		return loadWithConfig(path, LoadTokenizerJSON)
	}
	if strings.HasSuffix(path, ".model") {
		return loadWithConfig(path, LoadSentencePiece)
	}
	return loadFile(path, func(data []byte) (*Tokenizer, error) {
		return LoadTiktoken(data, guessTiktokenPattern(filepath.Base(path), data), nil)
	})
}

// loadWithConfig reads a tokenizer.json or .model file and the chat
// template of the tokenizer_config.json beside it.
func loadWithConfig(path string, parse func([]byte) (*Tokenizer, error)) (*Tokenizer, error) {
	t, err := loadFile(path, parse)
	if err != nil {
		return nil, err
	}
	if err := t.loadConfig(filepath.Dir(path)); err != nil {
		return nil, err
	}
	return t, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// readLimited reads a tokenizer file: a regular file (a FIFO would block)
// of at most maxFileSize bytes.
func readLimited(path string) ([]byte, error) {
	return regfile.ReadFile(path, maxFileSize)
}

func loadFile(path string, parse func([]byte) (*Tokenizer, error)) (*Tokenizer, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return t, nil
}

func loadGPT2Files(encPath, bpePath string) (*Tokenizer, error) {
	enc, err := readLimited(encPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	bpe, err := readLimited(bpePath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := LoadGPT2(enc, bpe)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s, %s: %w", encPath, bpePath, err)
	}
	return t, nil
}

// LoadGPT2 builds a tokenizer from the contents of GPT-2's encoder.json
// (token -> id, tokens in byte-level form) and vocab.bpe (one merge "a b"
// a line, after a "#version" line). Tokens that are neither a single byte
// nor the result of a merge, such as "<|endoftext|>", are special tokens.
func LoadGPT2(encoderJSON, vocabBPE []byte) (*Tokenizer, error) {
	var vocab map[string]int
	if err := json.Unmarshal(encoderJSON, &vocab); err != nil {
		return nil, fmt.Errorf("encoder.json: %w", err)
	}
	var lines [][2]string
	for n, line := range strings.Split(string(vocabBPE), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || n == 0 && strings.HasPrefix(line, "#version") {
			continue
		}
		a, b, ok := strings.Cut(line, " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, fmt.Errorf("vocab.bpe line %d: want two tokens separated by one space, got %q", n+1, truncate(line))
		}
		lines = append(lines, [2]string{a, b})
	}
	return fromByteLevelVocab(vocab, lines, nil, "encoder.json", "vocab.bpe line", func(i int) int { return i + 2 })
}

// fromByteLevelVocab builds a BPE tokenizer from a vocabulary and merges in
// GPT-2's printable byte form. added holds tokens given as raw text (Hugging
// Face added_tokens): id -> text, all treated as special. A vocabulary token
// that is no single byte and no merge result, like GPT-2's <|endoftext|>,
// is special too when added is nil.
func fromByteLevelVocab(vocab map[string]int, merges [][2]string, added map[int]string, vocabName, mergeName string, mergeLine func(int) int) (*Tokenizer, error) {
	limit := maxTokenID(len(vocab) + len(added))
	size := 0
	for tok, id := range vocab {
		if id < 0 || id >= limit {
			return nil, fmt.Errorf("%s: token %q has id %d, out of range for %d tokens", vocabName, truncate(tok), id, len(vocab))
		}
		size = max(size, id+1)
	}
	for id := range added {
		if id < 0 || id >= limit {
			return nil, fmt.Errorf("added token id %d out of range for %d tokens", id, len(vocab)+len(added))
		}
		size = max(size, id+1)
	}
	tokens := make([]string, size)
	for tok, id := range vocab {
		if tok == "" {
			return nil, fmt.Errorf("%s: empty token (id %d)", vocabName, id)
		}
		if _, ok := added[id]; ok {
			continue
		}
		b, ok := byteLevelDecode(tok)
		if !ok {
			return nil, fmt.Errorf("%s: token %q (id %d) is not in byte-level form", vocabName, truncate(tok), id)
		}
		if tokens[id] != "" && tokens[id] != b {
			return nil, fmt.Errorf("%s: id %d is used by two tokens", vocabName, id)
		}
		tokens[id] = b
	}
	special := map[string]int{}
	for id, s := range added {
		if s == "" {
			return nil, fmt.Errorf("added token %d is empty", id)
		}
		tokens[id] = s
		special[s] = id
	}
	ms := make([]merge, 0, len(merges))
	produced := make([]bool, size)
	var both []byte
	for i, m := range merges {
		a, okA := vocab[m[0]]
		b, okB := vocab[m[1]]
		both = append(append(both[:0], m[0]...), m[1]...)
		r, okR := vocab[string(both)] // (no string is made for the lookup)
		if !okA || !okB || !okR {
			return nil, fmt.Errorf("%s %d: merge %q %q: token missing from the vocabulary", mergeName, mergeLine(i), truncate(m[0]), truncate(m[1]))
		}
		ms = append(ms, merge{a: int32(a), b: int32(b), result: int32(r), rank: uint32(i)})
		produced[r] = true
	}
	if added == nil {
		for tok, id := range vocab {
			if !produced[id] && len(tokens[id]) > 1 && strings.HasPrefix(tok, "<|") {
				special[tokens[id]] = id
			}
		}
	}
	return newBPE(tokens, ms, special, PatternGPT2)
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// hfTokenizer is the part of a Hugging Face tokenizer.json golem reads.
type hfTokenizer struct {
	AddedTokens  []hfAddedToken `json:"added_tokens"`
	Normalizer   *hfNormalizer  `json:"normalizer"`
	PreTokenizer *hfPreTok      `json:"pre_tokenizer"`
	Decoder      *hfDecoder     `json:"decoder"`
	Model        *struct {
		Type                    string          `json:"type"`
		Vocab                   json.RawMessage `json:"vocab"`
		Merges                  json.RawMessage `json:"merges"`
		ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
		EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
		ByteFallback            bool            `json:"byte_fallback"`
		IgnoreMerges            bool            `json:"ignore_merges"`
		Dropout                 *float64        `json:"dropout"`
		UnkToken                *string         `json:"unk_token"`
		UnkID                   *int            `json:"unk_id"`
		FuseUnk                 bool            `json:"fuse_unk"`
	} `json:"model"`
}

type hfAddedToken struct {
	ID      int    `json:"id"`
	Content string `json:"content"`
	Special bool   `json:"special"`
}

type hfNormalizer struct {
	Type        string          `json:"type"`
	Normalizers []*hfNormalizer `json:"normalizers"`
	Pattern     *hfPattern      `json:"pattern"`
	Content     string          `json:"content"`
	Prepend     string          `json:"prepend"`
	Charsmap    *string         `json:"precompiled_charsmap"`
}

type hfPattern struct {
	Regex  *string `json:"Regex"`
	String *string `json:"String"`
}

type hfPreTok struct {
	Type           string      `json:"type"`
	AddPrefixSpace bool        `json:"add_prefix_space"`
	UseRegex       *bool       `json:"use_regex"`
	Pattern        *hfPattern  `json:"pattern"`
	Replacement    string      `json:"replacement"`
	PrependScheme  string      `json:"prepend_scheme"`
	Split          *bool       `json:"split"`
	Behavior       string      `json:"behavior"`
	Invert         bool        `json:"invert"`
	PreTokenizers  []*hfPreTok `json:"pretokenizers"`
}

// LoadTokenizerJSON builds a tokenizer from a Hugging Face tokenizer.json:
// a byte-level BPE (GPT-2, Llama 3, Qwen2 and golem's own), a
// SentencePiece-style BPE or Unigram (Llama 2, Mistral, Gemma: "▁" for
// spaces, byte fallback; see loadSentencePieceJSON) or golem's character
// tokenizer (a WordLevel model whose tokens are single characters).
// Added tokens, special or not, are recognised by EncodeWithSpecial.
func LoadTokenizerJSON(data []byte) (*Tokenizer, error) {
	var f hfTokenizer
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	if f.Model == nil {
		return nil, errors.New(`tokenizer.json: "model" missing`)
	}
	added := make(map[int]string, len(f.AddedTokens))
	for i, a := range f.AddedTokens {
		if a.Content == "" {
			return nil, fmt.Errorf("tokenizer.json: added_tokens[%d]: empty content", i)
		}
		added[a.ID] = a.Content
	}
	if isSentencePieceJSON(&f) {
		return loadSentencePieceJSON(&f, added)
	}
	switch f.Model.Type {
	case "WordLevel":
		return loadCharJSON(f.Model.Vocab, added)
	case "BPE", "":
	default:
		return nil, fmt.Errorf("tokenizer.json: model type %q not supported (golem reads byte-level BPE and its own character WordLevel)", f.Model.Type)
	}
	m := f.Model
	if m.ByteFallback || m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "" || m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "" {
		return nil, errors.New("tokenizer.json: model: byte_fallback, continuing_subword_prefix and end_of_word_suffix are not supported (not a byte-level BPE)")
	}
	if m.Dropout != nil && *m.Dropout != 0 {
		return nil, errors.New("tokenizer.json: model.dropout is not supported")
	}
	nfc, err := parseNormalizer(f.Normalizer)
	if err != nil {
		return nil, err
	}
	pattern, prefix, err := parsePreTokenizer(f.PreTokenizer)
	if err != nil {
		return nil, err
	}
	vocab, ok := fastVocab(m.Vocab)
	if !ok {
		if err := json.Unmarshal(m.Vocab, &vocab); err != nil {
			return nil, fmt.Errorf("tokenizer.json: model.vocab: %w", err)
		}
	}
	merges, err := parseMerges(m.Merges)
	if err != nil {
		return nil, err
	}
	t, err := fromByteLevelVocab(vocab, merges, added, "tokenizer.json: model.vocab", "tokenizer.json: model.merges", func(i int) int { return i })
	if err != nil {
		if strings.HasPrefix(err.Error(), "tokenizer.json") {
			return nil, err
		}
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	t.pattern, t.addPrefixSpace, t.nfc, t.ignoreMerges = pattern, prefix, nfc, m.IgnoreMerges
	return t, nil
}

func parseNormalizer(n *hfNormalizer) (nfc bool, err error) {
	if n == nil {
		return false, nil
	}
	switch n.Type {
	case "NFC":
		return true, nil
	case "Sequence":
		if len(n.Normalizers) == 0 {
			return false, nil
		}
		if len(n.Normalizers) == 1 {
			return parseNormalizer(n.Normalizers[0])
		}
	}
	return false, fmt.Errorf("tokenizer.json: normalizer %q not supported (golem supports none or NFC)", n.Type)
}

func parsePreTokenizer(p *hfPreTok) (Pattern, bool, error) {
	if p == nil {
		return 0, false, errors.New("tokenizer.json: pre_tokenizer missing (golem reads byte-level BPE, which has a ByteLevel pre-tokenizer)")
	}
	switch p.Type {
	case "ByteLevel":
		if p.UseRegex != nil && !*p.UseRegex {
			return 0, false, errors.New("tokenizer.json: ByteLevel pre-tokenizer without use_regex and without a Split before it is not supported")
		}
		return PatternGPT2, p.AddPrefixSpace, nil
	case "Sequence":
		if len(p.PreTokenizers) == 2 {
			s, b := p.PreTokenizers[0], p.PreTokenizers[1]
			if s != nil && b != nil && s.Type == "Split" && b.Type == "ByteLevel" && b.UseRegex != nil && !*b.UseRegex &&
				s.Pattern != nil && s.Pattern.Regex != nil && s.Behavior == "Isolated" && !s.Invert {
				pat, ok := patternFromRegexp(*s.Pattern.Regex)
				if !ok {
					return 0, false, fmt.Errorf("tokenizer.json: pre_tokenizer: split pattern %q not supported (golem knows the gpt2, cl100k/llama3, qwen2 and o200k patterns)", truncate(*s.Pattern.Regex))
				}
				if b.AddPrefixSpace {
					// Hugging Face would add a space to every piece of the split.
					return 0, false, errors.New("tokenizer.json: pre_tokenizer: ByteLevel with add_prefix_space after a Split is not supported")
				}
				return pat, false, nil
			}
		}
		if len(p.PreTokenizers) == 1 && p.PreTokenizers[0] != nil {
			return parsePreTokenizer(p.PreTokenizers[0])
		}
	}
	return 0, false, fmt.Errorf("tokenizer.json: pre_tokenizer %q not supported (golem reads ByteLevel, or Sequence of Split and ByteLevel)", p.Type)
}

// parseMerges reads merges written as "a b" strings or as ["a", "b"] pairs.
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if out, ok := fastMerges(raw); ok {
		return out, nil
	}
	// A list of pairs (as transformers writes merges now) is not read as
	// strings first: that fails only after a pass over all of it (0.3 s
	// of a 50,000-merge tokenizer's load).
	first := bytes.TrimLeft(raw, " \t\r\n")
	if len(first) > 0 && first[0] == '[' {
		first = bytes.TrimLeft(first[1:], " \t\r\n")
	}
	var strs []string
	if len(first) == 0 || first[0] != '[' {
		if err := json.Unmarshal(raw, &strs); err == nil {
			out := make([][2]string, len(strs))
			for i, s := range strs {
				a, b, ok := strings.Cut(s, " ")
				if !ok || strings.Contains(b, " ") {
					return nil, fmt.Errorf("tokenizer.json: model.merges %d: %q is not two tokens separated by a space", i, truncate(s))
				}
				out[i] = [2]string{a, b}
			}
			return out, nil
		}
	}
	var pairs [][]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, fmt.Errorf("tokenizer.json: model.merges: want strings or pairs of strings: %w", err)
	}
	out := make([][2]string, len(pairs))
	for i, p := range pairs {
		if len(p) != 2 {
			return nil, fmt.Errorf("tokenizer.json: model.merges %d: want 2 tokens, got %d", i, len(p))
		}
		out[i] = [2]string{p[0], p[1]}
	}
	return out, nil
}

// LoadTiktoken builds a tokenizer from a tiktoken rank file: one token a
// line, "base64-bytes rank", where the rank is the id and the merge order.
// special adds special tokens (nil: none).
func LoadTiktoken(data []byte, p Pattern, special map[string]int) (*Tokenizer, error) {
	count := bytes.Count(data, []byte("\n")) + 1
	limit := maxTokenID(count + len(special))
	var tokens []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		b64, rs, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("tiktoken line %d: want \"base64-token rank\"", n)
		}
		tok, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(tok) == 0 {
			return nil, fmt.Errorf("tiktoken line %d: bad base64 token %q", n, truncate(b64))
		}
		rank, err := strconv.Atoi(rs)
		if err != nil || rank < 0 || rank >= limit {
			return nil, fmt.Errorf("tiktoken line %d: bad rank %q", n, truncate(rs))
		}
		for len(tokens) <= rank {
			tokens = append(tokens, "")
		}
		if tokens[rank] != "" {
			return nil, fmt.Errorf("tiktoken line %d: rank %d given twice", n, rank)
		}
		tokens[rank] = string(tok)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tiktoken: %w", err)
	}
	if special == nil {
		special = knownTiktokenSpecials(len(tokens))
	}
	for s, id := range special {
		if id < 0 || id >= limit {
			return nil, fmt.Errorf("special token %q: id %d out of range", s, id)
		}
		for len(tokens) <= id {
			tokens = append(tokens, "")
		}
		if tokens[id] != "" {
			return nil, fmt.Errorf("special token %q: id %d is an ordinary token", s, id)
		}
		tokens[id] = s
	}
	ids := make(map[string]int32, len(tokens))
	isSpecial := make(map[int]bool, len(special))
	for _, id := range special {
		isSpecial[id] = true
	}
	for id, tok := range tokens {
		if tok != "" && !isSpecial[id] {
			if _, dup := ids[tok]; dup {
				return nil, fmt.Errorf("tiktoken: token %q appears twice", truncate(tok))
			}
			ids[tok] = int32(id)
		}
	}
	return newBPE(tokens, rankMerges(tokens, ids, isSpecial), special, p)
}

// knownTiktokenSpecials returns the special tokens of OpenAI's encodings,
// recognised by their number of ordinary tokens.
func knownTiktokenSpecials(n int) map[string]int {
	switch n {
	case 50256: // r50k_base, p50k_base
		return map[string]int{"<|endoftext|>": 50256}
	case 100256: // cl100k_base
		return map[string]int{"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259, "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}
	case 199998: // o200k_base
		return map[string]int{"<|endoftext|>": 199999, "<|endofprompt|>": 200018}
	}
	return map[string]int{}
}

// guessTiktokenPattern picks the pattern of a tiktoken file from its name,
// else from its size.
func guessTiktokenPattern(name string, data []byte) Pattern {
	switch {
	case strings.Contains(name, "o200k"):
		return PatternO200K
	case strings.Contains(name, "cl100k"):
		return PatternCL100K
	case strings.Contains(name, "r50k"), strings.Contains(name, "p50k"), strings.Contains(name, "gpt2"):
		return PatternGPT2
	}
	n := bytes.Count(data, []byte("\n"))
	switch {
	case n < 75000:
		return PatternGPT2
	case n < 150000:
		return PatternCL100K
	}
	return PatternO200K
}

// loadCharJSON reads golem's character tokenizer: a WordLevel vocabulary
// whose tokens are single characters.
func loadCharJSON(raw json.RawMessage, added map[int]string) (*Tokenizer, error) {
	var vocab map[string]int
	if err := json.Unmarshal(raw, &vocab); err != nil {
		return nil, fmt.Errorf("tokenizer.json: model.vocab: %w", err)
	}
	limit := maxTokenID(len(vocab) + len(added))
	t := &Tokenizer{model: modelChar, chars: make(map[rune]int32, len(vocab))}
	size := 0
	for tok, id := range vocab {
		if id < 0 || id >= limit {
			return nil, fmt.Errorf("tokenizer.json: model.vocab: %q has id %d, out of range", truncate(tok), id)
		}
		if _, isAdded := added[id]; isAdded {
			continue
		}
		r, w := utf8.DecodeRuneInString(tok)
		if w == 0 || w != len(tok) || r == utf8.RuneError && w == 1 {
			return nil, fmt.Errorf("tokenizer.json: WordLevel token %q (id %d) is not one character; golem reads WordLevel only as a character tokenizer", truncate(tok), id)
		}
		t.chars[r] = int32(id)
		size = max(size, id+1)
	}
	for id := range added {
		if id < 0 || id >= limit {
			return nil, fmt.Errorf("tokenizer.json: added token id %d out of range", id)
		}
		size = max(size, id+1)
	}
	t.tokens = make([]string, size)
	for r, id := range t.chars {
		t.tokens[id] = string(r)
	}
	special := map[string]int{}
	for id, s := range added {
		t.tokens[id] = s
		special[s] = id
	}
	t.setSpecials(special)
	return t, nil
}
