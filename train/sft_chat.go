package train

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// HasChatTokens reports whether tok can render chats: it has a model's own
// chat template, or the ChatML special tokens.
func HasChatTokens(tok *tokenizer.Tokenizer) bool {
	return tok.HasChatTemplate()
}

// AddChatTokens returns a copy of tok with <|im_start|> and <|im_end|>
// added as special tokens after its last id (those it already has are
// kept), and the names of the tokens it added. Tokenizers golem trains
// reserve them already; GPT-2's does not.
func AddChatTokens(tok *tokenizer.Tokenizer) (*tokenizer.Tokenizer, []string, error) {
	var missing []string
	for _, s := range []string{tokenizer.ImStart, tokenizer.ImEnd} {
		if _, ok := tok.SpecialID(s); !ok {
			missing = append(missing, s)
		}
	}
	if len(missing) == 0 {
		return tok, nil, nil
	}
	var buf bytes.Buffer
	tok.WriteJSON(&buf)
	var f map[string]json.RawMessage
	if err := json.Unmarshal(buf.Bytes(), &f); err != nil {
		return nil, nil, fmt.Errorf("sft: adding chat tokens: %w", err)
	}
	var added []map[string]any
	if raw := f["added_tokens"]; len(raw) > 0 {
		if err := json.Unmarshal(raw, &added); err != nil {
			return nil, nil, fmt.Errorf("sft: adding chat tokens: %w", err)
		}
	}
	next := tok.VocabSize()
	for _, s := range missing {
		added = append(added, map[string]any{"id": next, "content": s, "single_word": false, "lstrip": false,
			"rstrip": false, "normalized": false, "special": true})
		next++
	}
	f["added_tokens"], _ = json.Marshal(added)
	b, _ := json.Marshal(f)
	t2, err := tokenizer.LoadTokenizerJSON(b)
	if err != nil {
		return nil, nil, fmt.Errorf("sft: adding chat tokens: %w", err)
	}
	return t2, missing, nil
}

// growVocab widens the token embedding (and an untied LM head) to vocab
// rows; new rows start at the mean of the existing ones, so new tokens
// start out as likely as an average token rather than at random.
func growVocab(m *gpt.Model, vocab int) {
	if vocab <= m.Config.Vocab {
		return
	}
	grow := func(w *tensor.Tensor) *tensor.Tensor {
		V, C := w.Dim(0), w.Dim(1)
		old := w.Host()
		mean := make([]float32, C)
		for r := 0; r < V; r++ {
			for c := 0; c < C; c++ {
				mean[c] += old[r*C+c] / float32(V)
			}
		}
		data := make([]float32, vocab*C)
		copy(data, old)
		for r := V; r < vocab; r++ {
			copy(data[r*C:], mean)
		}
		return tensor.FromHost(w.Backend(), data, vocab, C).SetRequiresGrad(w.RequiresGrad())
	}
	nn.Replace(&m.Embed.Weight, grow(m.Embed.Weight))
	if m.Head != nil {
		nn.Replace(&m.Head.Weight, grow(m.Head.Weight))
	}
	m.Config.Vocab = vocab
}
