package data

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
)

// WriteJSONL writes examples as JSON lines in TRL's shapes, which Read
// reads back to the same examples (Source aside):
//
//	language modelling   {"text"} or {"messages"}
//	prompt-completion    {"prompt","completion"}
//	preference           {"prompt","chosen","rejected"} ({"chosen","rejected"} when a standard prompt is empty)
//	unpaired preference  {"prompt","completion","label"}
//	ranking              {"prompt","completions","ranking"}
//
// Plain examples are written in standard form (strings), the others in
// conversational form (message lists). Within one call, all examples must
// have the same kind and form, so that the output is one shape.
func WriteJSONL(w io.Writer, examples []Example) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i := range examples {
		e := &examples[i]
		if e.Kind != examples[0].Kind || e.Plain != examples[0].Plain {
			return fmt.Errorf("data: write: example %d (%s) is %s %s, but example 1 is %s %s; write one shape per file",
				i+1, e.Source, form(e.Plain), e.Kind, form(examples[0].Plain), examples[0].Kind)
		}
		v, err := trlRecord(e)
		if err != nil {
			return fmt.Errorf("data: write: example %d (%s): %v", i+1, e.Source, err)
		}
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("data: write: example %d (%s): %v", i+1, e.Source, err)
		}
	}
	return bw.Flush()
}

// trlRecord returns the value to encode for one example.
func trlRecord(e *Example) (any, error) {
	// conv writes messages as a list, or in standard form as the content
	// of the single message.
	conv := func(part string, msgs []Message) (any, error) {
		if !e.Plain {
			if len(msgs) == 0 {
				return nil, fmt.Errorf("%s is empty", part)
			}
			return msgs, nil
		}
		if len(msgs) != 1 {
			return nil, fmt.Errorf("%s has %d messages; a standard (plain) example has one", part, len(msgs))
		}
		return msgs[0].Content, nil
	}
	switch e.Kind {
	case LanguageModeling:
		if e.Plain {
			text := e.Text
			if text == "" && len(e.Completion) == 1 {
				text = e.Completion[0].Content
			}
			return struct {
				Text string `json:"text"`
			}{text}, nil
		}
		if len(e.Completion) == 0 {
			return nil, fmt.Errorf("no messages")
		}
		return struct {
			Messages []Message `json:"messages"`
		}{e.Completion}, nil
	case PromptCompletion, UnpairedPreference:
		p, err := conv("prompt", e.Prompt)
		if err != nil {
			return nil, err
		}
		c, err := conv("completion", e.Completion)
		if err != nil {
			return nil, err
		}
		if e.Kind == PromptCompletion {
			return struct {
				Prompt     any `json:"prompt"`
				Completion any `json:"completion"`
			}{p, c}, nil
		}
		if e.Label == nil {
			return nil, fmt.Errorf("unpaired preference without a label")
		}
		return struct {
			Prompt     any  `json:"prompt"`
			Completion any  `json:"completion"`
			Label      bool `json:"label"`
		}{p, c, *e.Label}, nil
	case Preference:
		var p any
		if len(e.Prompt) > 0 || !e.Plain {
			var err error
			if p, err = conv("prompt", e.Prompt); err != nil {
				return nil, err
			}
		}
		c, err := conv("chosen", e.Chosen)
		if err != nil {
			return nil, err
		}
		r, err := conv("rejected", e.Rejected)
		if err != nil {
			return nil, err
		}
		return struct {
			Prompt   any `json:"prompt,omitempty"`
			Chosen   any `json:"chosen"`
			Rejected any `json:"rejected"`
		}{p, c, r}, nil
	case Ranking:
		p, err := conv("prompt", e.Prompt)
		if err != nil {
			return nil, err
		}
		if len(e.Ranking) != len(e.Completions) {
			return nil, fmt.Errorf("%d completions but a ranking of %d", len(e.Completions), len(e.Ranking))
		}
		comps := make([]any, len(e.Completions))
		for i, c := range e.Completions {
			if comps[i], err = conv(fmt.Sprintf("completion %d", i), c); err != nil {
				return nil, err
			}
		}
		return struct {
			Prompt      any   `json:"prompt"`
			Completions []any `json:"completions"`
			Ranking     []int `json:"ranking"`
		}{p, comps, e.Ranking}, nil
	}
	return nil, fmt.Errorf("unknown kind %v", e.Kind)
}
