package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// input is one text of a request that may send texts or token ids
// (completions' "prompt", embeddings' "input").
type input struct {
	text  string
	ids   []int
	isIDs bool
	image *reqImage // an image (embeddings' image_url items)
	url   string    // its data: URI, read by embedInputs
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

// embedInputs is embeddings' "input": what parseInputs takes, or texts
// and images together: an image as OpenAI's content part
// ({"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}),
// alone or in a list with strings. Each image's field is named
// "input[i]" (the image's data is read here; a CLIP model decodes it).
func embedInputs(raw json.RawMessage) ([]input, error) {
	ins, err := parseInputs("input", raw)
	if err == nil || !bytes.Contains(raw, []byte("{")) { // no image item: parseInputs' words
		return ins, err
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		items = []json.RawMessage{raw}
	}
	if len(items) == 0 {
		return nil, err
	}
	out := make([]input, len(items))
	for i, it := range items {
		path := "input"
		if len(items) > 1 || bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
			path = fmt.Sprintf("input[%d]", i)
		}
		if json.Unmarshal(it, &out[i].text) == nil {
			continue
		}
		var part struct {
			Type     string `json:"type"`
			ImageURL *struct {
				URL string `json:"url"`
			} `json:"image_url"`
		}
		if json.Unmarshal(it, &part) != nil || part.Type != "image_url" || part.ImageURL == nil {
			return nil, &fieldError{path, fmt.Sprintf(`%s: want a string or {"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}`, path)}
		}
		img, err := dataURI(path+".image_url", part.ImageURL.URL)
		if err != nil {
			return nil, err
		}
		out[i].image = &img
	}
	return out, nil
}
