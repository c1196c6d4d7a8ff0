package serve

import (
	"bytes"
	"encoding/json"
)

// input is one text of a request that may send texts or token ids
// (completions' "prompt", embeddings' "input").
type input struct {
	text  string
	ids   []int
	isIDs bool
}

// parseInputs reads field (named name, for errors) as OpenAI's prompt and
// input: a string, a list of strings, a list of token ids, or a list of
// lists of token ids.
func parseInputs(name string, raw json.RawMessage) ([]input, error) {
	if p := bytes.TrimSpace(raw); len(p) == 0 || bytes.Equal(p, []byte("null")) {
		return nil, badRequest(`%q missing: send a string, a list of strings, or token ids`, name)
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []input{{text: one}}, nil
	}
	var texts []string
	if json.Unmarshal(raw, &texts) == nil && len(texts) > 0 {
		in := make([]input, len(texts))
		for i, t := range texts {
			in[i] = input{text: t}
		}
		return in, nil
	}
	var ids []int
	if json.Unmarshal(raw, &ids) == nil && len(ids) > 0 {
		return []input{{ids: ids, isIDs: true}}, nil
	}
	var lists [][]int
	if json.Unmarshal(raw, &lists) == nil && len(lists) > 0 {
		in := make([]input, len(lists))
		for i, l := range lists {
			in[i] = input{ids: l, isIDs: true}
		}
		return in, nil
	}
	return nil, badRequest(`%q must be a string, a list of strings, a list of token ids or a list of lists of token ids (not empty)`, name)
}

// tokens returns the input's token ids for w: its text encoded (special
// tokens' text included), or its ids, checked against the vocabulary.
// item names it in errors ("input[2]").
func (in input) tokens(w *Weights, item string) ([]int, error) {
	if !in.isIDs {
		if err := overflows(w, len(in.text)); err != nil {
			return nil, err
		}
		return w.Tok.EncodeWithSpecial(in.text), nil
	}
	V := w.Model.Config.Vocab
	for i, id := range in.ids {
		if id < 0 || id >= V {
			return nil, badRequest(`%s[%d]: token id %d is not in the vocabulary (0 to %d)`, item, i, id, V-1)
		}
	}
	return in.ids, nil
}

// completionPrompt is completions' "prompt": one text or one list of
// token ids (a list of one of either too).
func completionPrompt(w *Weights, raw json.RawMessage) ([]int, error) {
	ins, err := parseInputs("prompt", raw)
	if err != nil {
		return nil, err
	}
	if len(ins) != 1 {
		return nil, badRequest(`"prompt" has %d prompts: golem serve takes one per request (send them as separate requests; they are batched together)`, len(ins))
	}
	if !ins[0].isIDs {
		return textPrompt(w, ins[0].text)
	}
	return ins[0].tokens(w, "prompt")
}
