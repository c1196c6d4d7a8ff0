package tokenizer

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// A SentencePiece-style tokenizer.json, as transformers' converters write
// them (LlamaTokenizerFast and its kin):
//
//	Llama 2, Mistral (legacy):  normalizer Sequence[Prepend "▁", Replace " " -> "▁"],
//	                            pre_tokenizer null, model BPE with byte_fallback
//	newer conversions:          normalizer null, pre_tokenizer Metaspace
//	                            (prepend_scheme first|always|never, split)
//	Gemma:                      normalizer Replace " " -> "▁" (no prefix)
//	Unigram (T5-like):          model Unigram [[piece, score], ...], unk_id
//
// A Precompiled normalizer (SentencePiece's character map), and a Strip
// with Replace of the Regex " {2,}" (SentencePiece's
// remove_extra_whitespaces) are read too. The decoder's Strip of one
// leading space (or a Metaspace decoder that prepends) makes Decode drop
// the dummy prefix.

type hfDecoder struct {
	Type           string       `json:"type"`
	Decoders       []*hfDecoder `json:"decoders"`
	Content        string       `json:"content"`
	Start          int          `json:"start"`
	PrependScheme  string       `json:"prepend_scheme"`
	AddPrefixSpace *bool        `json:"add_prefix_space"`
}

// isSentencePieceJSON reports whether f is a SentencePiece-style tokenizer.
func isSentencePieceJSON(f *hfTokenizer) bool {
	if f.Model.Type == "Unigram" || f.Model.ByteFallback {
		return true
	}
	var walk func(n *hfNormalizer) bool
	walk = func(n *hfNormalizer) bool {
		if n == nil {
			return false
		}
		if n.Type == "Replace" && n.Content == "▁" || n.Type == "Prepend" || n.Type == "Precompiled" {
			return true
		}
		for _, c := range n.Normalizers {
			if walk(c) {
				return true
			}
		}
		return false
	}
	if walk(f.Normalizer) {
		return true
	}
	if p := f.PreTokenizer; p != nil {
		if p.Type == "Metaspace" {
			return true
		}
		for _, c := range p.PreTokenizers {
			if c != nil && c.Type == "Metaspace" {
				return true
			}
		}
	}
	return false
}

// loadSentencePieceJSON reads a SentencePiece-style tokenizer.json.
func loadSentencePieceJSON(f *hfTokenizer, added map[int]string) (*Tokenizer, error) {
	m := f.Model
	sp := &spModel{byteFallback: m.ByteFallback, fuseUnk: m.FuseUnk}
	escaped := false
	// The normalizers, in order.
	var norms []*hfNormalizer
	if n := f.Normalizer; n != nil {
		if n.Type == "Sequence" {
			norms = n.Normalizers
		} else {
			norms = []*hfNormalizer{n}
		}
	}
	for i, n := range norms {
		if n == nil {
			continue
		}
		where := fmt.Sprintf("tokenizer.json: normalizer %d (%s)", i, n.Type)
		switch {
		case n.Type == "Precompiled" && n.Charsmap != nil:
			b, err := base64.StdEncoding.DecodeString(*n.Charsmap)
			if err != nil {
				return nil, fmt.Errorf("%s: precompiled_charsmap: %w", where, err)
			}
			if len(b) > 0 {
				if sp.norm, err = parseCharsmap(b); err != nil {
					return nil, fmt.Errorf("%s: precompiled_charsmap: %w", where, err)
				}
			}
		case n.Type == "Strip":
		case n.Type == "Replace" && n.Pattern != nil && n.Pattern.Regex != nil && *n.Pattern.Regex == " {2,}" && (n.Content == " " || n.Content == "▁"):
			sp.removeExtraSpaces = true
		case n.Type == "Prepend" && n.Prepend == "▁":
			sp.prefix = true
		case n.Type == "Replace" && n.Pattern != nil && n.Pattern.String != nil && *n.Pattern.String == " " && n.Content == "▁":
			escaped = true
		default:
			return nil, fmt.Errorf("%s not supported (golem reads SentencePiece-style normalizers: Precompiled, Strip, Replace of \" \" or \" {2,}\" by \"▁\", Prepend \"▁\")", where)
		}
	}
	p := f.PreTokenizer
	if p != nil && p.Type == "Sequence" && len(p.PreTokenizers) == 2 && p.PreTokenizers[0] != nil && p.PreTokenizers[0].Type == "WhitespaceSplit" {
		// T5's: words split at white space (which goes), then Metaspace.
		sp.wsSplit = true
		p = &hfPreTok{Type: "Sequence", PreTokenizers: p.PreTokenizers[1:]}
	}
	if p != nil && p.Type == "Sequence" && len(p.PreTokenizers) == 1 {
		p = p.PreTokenizers[0]
	}
	switch {
	case p == nil:
	case p.Type == "Metaspace":
		if p.Replacement != "" && p.Replacement != "▁" {
			return nil, fmt.Errorf("tokenizer.json: pre_tokenizer Metaspace: replacement %q not supported (want \"▁\")", p.Replacement)
		}
		escaped = true
		sp.split = p.Split == nil || *p.Split
		switch p.PrependScheme {
		case "always":
			sp.prefix, sp.prefixUnlessSpace = true, true
		case "first":
			sp.prefix, sp.prefixUnlessSpace, sp.prefixFirst = true, true, true
		case "never":
		case "":
			sp.prefix, sp.prefixUnlessSpace = p.AddPrefixSpace, true
		default:
			return nil, fmt.Errorf("tokenizer.json: pre_tokenizer Metaspace: prepend_scheme %q not supported", p.PrependScheme)
		}
	default:
		return nil, fmt.Errorf("tokenizer.json: pre_tokenizer %q not supported with a SentencePiece-style model (golem reads none or Metaspace)", p.Type)
	}
	if sp.wsSplit && (p == nil || p.Type != "Metaspace" || sp.prefixFirst) {
		return nil, errors.New("tokenizer.json: pre_tokenizer: WhitespaceSplit is read only before a Metaspace whose prepend_scheme is always or never (T5's)")
	}
	if sp.wsSplit {
		sp.split, sp.removeExtraSpaces = true, true
	}
	if !escaped {
		return nil, errors.New(`tokenizer.json: a SentencePiece-style model (byte_fallback or Unigram) needs spaces replaced by "▁" (a Replace normalizer or a Metaspace pre-tokenizer)`)
	}
	sp.stripDecode = stripsPrefix(f.Decoder)
	if m.Dropout != nil && *m.Dropout != 0 {
		return nil, errors.New("tokenizer.json: model.dropout is not supported")
	}
	if m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "" || m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "" {
		return nil, errors.New("tokenizer.json: model: continuing_subword_prefix and end_of_word_suffix are not supported")
	}
	// Added tokens that are not special are SentencePiece's user-defined
	// pieces (as transformers converts them): matched whole in any text.
	user := map[int]bool{}
	for _, a := range f.AddedTokens {
		if !a.Special {
			user[a.ID] = true
			delete(added, a.ID)
		}
	}
	var pieces []spPiece
	var merges [][2]string
	kind := func(id int, text string) spPieceKind {
		if _, ok := parseBytePiece(text); ok && sp.byteFallback {
			return spByte
		}
		if m.UnkID != nil && *m.UnkID == id || m.UnkToken != nil && *m.UnkToken == text {
			return spUnknown
		}
		return spNormal
	}
	switch m.Type {
	case "Unigram":
		sp.unigram, sp.fuseUnk, sp.hf = true, true, true // Hugging Face's Unigram always fuses
		var vocab []struct {
			Text  string
			Score float64
		}
		var raw [][2]json.RawMessage
		if err := json.Unmarshal(m.Vocab, &raw); err != nil {
			return nil, fmt.Errorf("tokenizer.json: model.vocab: want [piece, score] pairs: %w", err)
		}
		for i, r := range raw {
			var v struct {
				Text  string
				Score float64
			}
			if json.Unmarshal(r[0], &v.Text) != nil || json.Unmarshal(r[1], &v.Score) != nil {
				return nil, fmt.Errorf("tokenizer.json: model.vocab %d: want [piece, score]", i)
			}
			vocab = append(vocab, v)
		}
		for id, v := range vocab {
			pieces = append(pieces, spPiece{text: v.Text, score: float32(v.Score), kind: kind(id, v.Text)})
		}
	case "BPE", "":
		var vocab map[string]int
		if err := json.Unmarshal(m.Vocab, &vocab); err != nil {
			return nil, fmt.Errorf("tokenizer.json: model.vocab: %w", err)
		}
		limit := maxTokenID(len(vocab) + len(added))
		for text, id := range vocab {
			if id < 0 || id >= limit {
				return nil, fmt.Errorf("tokenizer.json: model.vocab: token %q has id %d, out of range for %d tokens", truncate(text), id, len(vocab))
			}
			for len(pieces) <= id {
				pieces = append(pieces, spPiece{kind: spUnused})
			}
			if pieces[id].text != "" {
				return nil, fmt.Errorf("tokenizer.json: model.vocab: id %d is used by two tokens", id)
			}
			pieces[id] = spPiece{text: text, kind: kind(id, text)}
		}
		for id := range pieces {
			if pieces[id].text == "" {
				if _, ok := added[id]; !ok {
					pieces[id].text = "<unused" + strconv.Itoa(id) + ">"
				}
			}
		}
		var err error
		if merges, err = parseMerges(m.Merges); err != nil {
			return nil, err
		}
		if merges == nil {
			merges = [][2]string{}
		}
	default:
		return nil, fmt.Errorf("tokenizer.json: model type %q not supported with a SentencePiece-style normalizer", m.Type)
	}
	for id := range user {
		if id < 0 || id >= len(pieces) || pieces[id].text == "" {
			return nil, fmt.Errorf("tokenizer.json: added token %d (not special) is not in model.vocab", id)
		}
		pieces[id].kind = spUserDefined
	}
	t, err := newSentencePiece(pieces, sp, merges, added)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	return t, nil
}

// stripsPrefix reports whether a decoder drops the dummy prefix's space.
func stripsPrefix(d *hfDecoder) bool {
	if d == nil {
		return false
	}
	switch d.Type {
	case "Strip":
		return d.Content == " " && d.Start > 0
	case "Metaspace":
		if d.PrependScheme != "" {
			return d.PrependScheme != "never"
		}
		return d.AddPrefixSpace == nil || *d.AddPrefixSpace
	case "Sequence":
		for _, c := range d.Decoders {
			if stripsPrefix(c) {
				return true
			}
		}
	}
	return false
}

// writeSentencePieceJSON writes a SentencePiece-style tokenizer as
// tokenizer.json, in the form of transformers' legacy LlamaTokenizerFast
// (a Prepend and Replace normalizer; SentencePiece's character map as a
// Precompiled normalizer and its remove_extra_whitespaces as Strip and
// Replace before them), which LoadTokenizerJSON reads back to the same
// tokenizer.
func (t *Tokenizer) writeSentencePieceJSON(buf *bytes.Buffer) {
	sp := t.sp
	var norms []string
	if sp.norm != nil {
		norms = append(norms, `{"type": "Precompiled", "precompiled_charsmap": "`+base64.StdEncoding.EncodeToString(sp.norm.raw)+`"}`)
	}
	if sp.removeExtraSpaces {
		norms = append(norms, `{"type": "Strip", "strip_left": true, "strip_right": true}`,
			`{"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}`)
	}
	if t.addPrefixSpace {
		norms = append(norms, `{"type": "Prepend", "prepend": "▁"}`)
	}
	norms = append(norms, `{"type": "Replace", "pattern": {"String": " "}, "content": "▁"}`)
	buf.WriteString("  \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [")
	for i, n := range norms {
		if i > 0 {
			buf.WriteString(", ")
		}
		buf.WriteString("\n    " + n)
	}
	buf.WriteString("\n  ]},\n  \"pre_tokenizer\": null,\n  \"post_processor\": null,\n")
	buf.WriteString(`  "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}`)
	if sp.stripDecode {
		buf.WriteString(`, {"type": "Strip", "content": " ", "start": 1, "stop": 0}`)
	}
	buf.WriteString("]},\n")
	piece := func(id int) string {
		tok := t.tokens[id]
		if len(tok) == 1 && sp.bytes[tok[0]] == int32(id) {
			return fmt.Sprintf("<0x%02X>", tok[0])
		}
		if t.IsSpecial(id) {
			return tok
		}
		return spaceToMeta(tok)
	}
	unk := "null"
	if sp.unk >= 0 {
		unk = string(jsonString(t.tokens[sp.unk]))
	}
	if sp.unigram {
		unkID := "null"
		if sp.unk >= 0 {
			unkID = strconv.Itoa(int(sp.unk))
		}
		fmt.Fprintf(buf, "  \"model\": {\n    \"type\": \"Unigram\",\n    \"unk_id\": %s,\n    \"byte_fallback\": %t,\n    \"vocab\": [", unkID, sp.byteFallback)
		for id := range t.tokens {
			if id > 0 {
				buf.WriteByte(',')
			}
			text := piece(id)
			if t.tokens[id] == "" {
				text = "<unused" + strconv.Itoa(id) + ">"
			}
			fmt.Fprintf(buf, "\n      [%s, %s]", jsonString(text), strconv.FormatFloat(float64(sp.scores[id]), 'g', -1, 32))
		}
		buf.WriteString("\n    ]\n  }\n}\n")
		return
	}
	fmt.Fprintf(buf, `  "model": {
    "type": "BPE",
    "dropout": null,
    "unk_token": %s,
    "continuing_subword_prefix": null,
    "end_of_word_suffix": null,
    "fuse_unk": %t,
    "byte_fallback": %t,
    "ignore_merges": false,
    "vocab": {`, unk, sp.fuseUnk, sp.byteFallback)
	first := true
	for id, tok := range t.tokens {
		if tok == "" {
			continue
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		fmt.Fprintf(buf, "\n      %s: %d", jsonString(piece(id)), id)
	}
	buf.WriteString("\n    },\n    \"merges\": [")
	for i, m := range t.mergeAt {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString("\n      ")
		buf.Write(jsonString(spaceToMeta(t.tokens[m.a]) + " " + spaceToMeta(t.tokens[m.b])))
	}
	buf.WriteString("\n    ]\n  }\n}\n")
}
