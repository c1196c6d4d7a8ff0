package data

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// HH-RLHF strings mark each turn with a blank line and a speaker.
const (
	hhHuman     = "\n\nHuman:"
	hhAssistant = "\n\nAssistant:"
)

// ParseHH parses an Anthropic HH-RLHF string ("\n\nHuman: ...\n\nAssistant:
// ...") into messages. Contents are trimmed of surrounding space. A speaker
// who speaks twice in a row (the released data has a few such turns) has
// the two turns joined by a blank line, so the result alternates. A final
// assistant turn may be empty (a prompt ends with "\n\nAssistant:", and the
// released data has a few empty answers); any other empty turn is an error.
func ParseHH(s string) ([]Message, error) {
	if strings.HasPrefix(s, "Human:") {
		s = "\n\n" + s
	}
	var msgs []Message
	rest := s
	for first := true; ; first = false {
		h := strings.Index(rest, hhHuman)
		a := strings.Index(rest, hhAssistant)
		next, role, marker := -1, "", ""
		switch {
		case h >= 0 && (a < 0 || h < a):
			next, role, marker = h, "user", hhHuman
		case a >= 0:
			next, role, marker = a, "assistant", hhAssistant
		}
		if next < 0 {
			if first {
				return nil, errors.New("has no \"\\n\\nHuman:\" turn")
			}
			msgs[len(msgs)-1].Content = join(msgs[len(msgs)-1].Content, rest)
			break
		}
		if first {
			if strings.TrimSpace(rest[:next]) != "" {
				return nil, errors.New("has text before the first \"Human:\" turn")
			}
			if role != "user" {
				return nil, errors.New("starts with an Assistant turn, want Human")
			}
		} else {
			msgs[len(msgs)-1].Content = join(msgs[len(msgs)-1].Content, rest[:next])
		}
		rest = rest[next+len(marker):]
		if n := len(msgs); n > 0 && msgs[n-1].Role == role {
			continue // the same speaker again: the text joins the last turn
		}
		msgs = append(msgs, Message{Role: role})
	}
	for i, m := range msgs {
		if m.Content == "" && (i != len(msgs)-1 || m.Role != "assistant") {
			return nil, fmt.Errorf("turn %d (%s) is empty", i+1, hhSpeaker(m.Role))
		}
	}
	return msgs, nil
}

// join appends the trimmed text t to a turn's content, with a blank line
// between when both are non-empty.
func join(content, t string) string {
	t = strings.TrimSpace(t)
	switch {
	case t == "":
		return content
	case content == "":
		return t
	}
	return content + "\n\n" + t
}

func hhSpeaker(role string) string {
	if role == "user" {
		return "Human"
	}
	return "Assistant"
}

func parseHH(r *record) ([]Example, string, error) {
	hh := func(key string) ([]Message, error) {
		if !r.has(key) {
			return nil, r.missing(key)
		}
		s, err := r.decodeString(r.fields[key], q(key))
		if err != nil {
			return nil, err
		}
		msgs, err := ParseHH(s)
		if err != nil {
			return nil, r.fail(q(key), "%v", err)
		}
		return msgs, nil
	}
	if r.has("prompt") {
		prompt, err := hh("prompt")
		if err != nil {
			return nil, "", err
		}
		if n := len(prompt); prompt[n-1].Role == "assistant" && prompt[n-1].Content == "" {
			prompt = prompt[:n-1]
		}
		if err := r.checkTurns(prompt, q("prompt"), "user", "user"); err != nil {
			return nil, "", err
		}
		chosen, rejected, _, err := r.pair(func(r *record, key string) ([]Message, bool, error) {
			if !r.has(key) {
				return nil, false, r.missing(key)
			}
			s, err := r.decodeString(r.fields[key], q(key))
			return []Message{{Role: "assistant", Content: strings.TrimSpace(s)}}, false, err
		})
		if err != nil {
			return nil, "", err
		}
		return []Example{{Kind: Preference, Prompt: prompt, Chosen: chosen, Rejected: rejected}}, "explicit prompt", nil
	}
	chosen, err := hh("chosen")
	if err != nil {
		return nil, "", err
	}
	rejected, err := hh("rejected")
	if err != nil {
		return nil, "", err
	}
	ex := Example{Kind: Preference}
	if ex.Prompt, ex.Chosen, ex.Rejected, err = r.splitMessages(chosen, rejected); err != nil {
		return nil, "", err
	}
	return []Example{ex}, "implicit prompt", nil
}

// splitMessages splits two conversations that share a prompt into the
// prompt (the common leading messages) and the two answers, which must
// start with an assistant turn.
func (r *record) splitMessages(chosen, rejected []Message) (prompt, c, rj []Message, err error) {
	n := 0
	for n < len(chosen) && n < len(rejected) && chosen[n] == rejected[n] {
		n++
	}
	switch {
	case n == len(chosen) && n == len(rejected):
		return nil, nil, nil, r.fail(q("rejected"), "is the same as \"chosen\"")
	case n == len(chosen):
		return nil, nil, nil, r.fail(q("rejected"), "continues \"chosen\" past its end; the two must differ in an assistant turn")
	case n == len(rejected):
		return nil, nil, nil, r.fail(q("chosen"), "continues \"rejected\" past its end; the two must differ in an assistant turn")
	case chosen[n].Role != "assistant" || rejected[n].Role != "assistant":
		return nil, nil, nil, r.fail(q("chosen"), "and \"rejected\" first differ at message %d, a %s turn; they must share the prompt and differ from an assistant turn on", n, chosen[n].Role)
	}
	return chosen[:n:n], chosen[n:], rejected[n:], nil
}

// splitText splits two strings that share a beginning into that beginning
// (the prompt) and the two answers, cutting at the last white space before
// they differ so that no word is split; the answers keep that space. The
// prompt is "" when they share no whole word.
func splitText(chosen, rejected string) (prompt, c, rj string) {
	n := 0
	for n < len(chosen) && n < len(rejected) && chosen[n] == rejected[n] {
		n++
	}
	i := strings.LastIndexFunc(chosen[:n], unicode.IsSpace)
	if i < 0 || strings.TrimSpace(chosen[:i]) == "" {
		i = 0
	}
	return chosen[:i], chosen[i:], rejected[i:]
}
