package tokenizer

// ByteLevelVocab returns a byte-level BPE tokenizer's vocabulary in the
// printable form tokenizer.json and GGUF's tokenizer.ggml.tokens use:
// tokens[id] is an ordinary token's bytes mapped through GPT-2's
// byte-to-character table, a special token's text as it is, and "" for an
// id with no token; merges are the "A B" pairs of those forms in rank
// order. ok is false for a character tokenizer, which has no such form.
func (t *Tokenizer) ByteLevelVocab() (tokens, merges []string, ok bool) {
	if t.model != modelBPE {
		return nil, nil, false
	}
	tokens = make([]string, len(t.tokens))
	for id, s := range t.tokens {
		switch {
		case s == "":
		case t.IsSpecial(id):
			tokens[id] = s
		default:
			tokens[id] = byteLevelEncode(s)
		}
	}
	merges = make([]string, len(t.mergeAt))
	for i, m := range t.mergeAt {
		merges[i] = byteLevelEncode(t.tokens[m.a]) + " " + byteLevelEncode(t.tokens[m.b])
	}
	return tokens, merges, true
}
