package tokenizer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Message is one turn of a conversation. Role is "system", "user" or
// "assistant". The JSON shape is the one TRL and OpenAI use.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// The chat special tokens. Tokenizers golem trains reserve them (and Pad).
const (
	EndOfText = "<|endoftext|>"
	ImStart   = "<|im_start|>"
	ImEnd     = "<|im_end|>"
	Pad       = "<|pad|>"
)

// ChatTemplate is the ChatML template as Jinja, written to
// tokenizer_config.json so that Hugging Face's apply_chat_template renders
// conversations as RenderChat does.
const ChatTemplate = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

func checkRoles(msgs []Message) error {
	if len(msgs) == 0 {
		return errors.New("tokenizer: chat: no messages")
	}
	for i, m := range msgs {
		switch m.Role {
		case "system":
			if i != 0 {
				return fmt.Errorf("tokenizer: chat: message %d: a system message must come first", i)
			}
		case "user", "assistant":
		default:
			return fmt.Errorf("tokenizer: chat: message %d: role %q (want system, user or assistant)", i, m.Role)
		}
	}
	return nil
}

// FormatChat renders a conversation as ChatML text:
//
//	<|im_start|>role\ncontent<|im_end|>\n
//
// for each message, then "<|im_start|>assistant\n" when addGenerationPrompt
// is set. EncodeWithSpecial of the result equals RenderChat's ids when no
// content holds a special token's text.
func FormatChat(msgs []Message, addGenerationPrompt bool) (string, error) {
	if err := checkRoles(msgs); err != nil {
		return "", err
	}
	var sb strings.Builder
	for _, m := range msgs {
		sb.WriteString(ImStart + m.Role + "\n" + m.Content + ImEnd + "\n")
	}
	if addGenerationPrompt {
		sb.WriteString(ImStart + "assistant\n")
	}
	return sb.String(), nil
}

// RenderChat encodes a conversation with the tokenizer's chat template:
// the model's own when it has one (a Hugging Face folder's
// tokenizer_config.json chat_template, see SetChatTemplate), else ChatML
// (see FormatChat). It is the one rendering that SFT, reward modelling,
// RL, evaluation, generation and serving share. assistantMask[i] is true for the tokens the
// assistant wrote: those holding any byte of an assistant message's content,
// and the <|im_end|> that closes it; training uses it as the loss mask.
// Message contents are encoded as plain text: a special token's text inside
// a message is not a special token. With ChatML it fails if the tokenizer
// lacks <|im_start|> or <|im_end|>, or if a role is not system (first
// only), user or assistant; with a model's template, when the template
// raises (raise_exception) or exceeds its budget.
func (t *Tokenizer) RenderChat(msgs []Message, addGenerationPrompt bool) (ids []int, assistantMask []bool, err error) {
	if t.chat != nil {
		return t.renderTemplate(msgs, addGenerationPrompt)
	}
	if err := checkRoles(msgs); err != nil {
		return nil, nil, err
	}
	start, ok1 := t.SpecialID(ImStart)
	end, ok2 := t.SpecialID(ImEnd)
	if !ok1 || !ok2 {
		return nil, nil, errors.New("tokenizer: chat: the tokenizer has no <|im_start|> and <|im_end|> special tokens")
	}
	e := t.getEncoder()
	defer t.putEncoder(e)
	norm := func(s string) string { return s }
	if t.nfc {
		norm = nfcString
	}
	for _, m := range msgs {
		assistant := m.Role == "assistant"
		ids = append(ids, start)
		assistantMask = append(assistantMask, false)
		header := norm(m.Role + "\n")
		if t.model == modelChar {
			// Characters never merge across the header and the content,
			// and unknown ones are dropped: encode the two apart.
			ids = t.encodeOrdinary(e, ids, header, false)
			for len(assistantMask) < len(ids) {
				assistantMask = append(assistantMask, false)
			}
			ids = t.encodeOrdinary(e, ids, norm(m.Content), false)
			for len(assistantMask) < len(ids) {
				assistantMask = append(assistantMask, assistant)
			}
		} else {
			ids, assistantMask = t.encodeTurn(e, ids, assistantMask, header, norm(m.Content), assistant)
		}
		ids = append(ids, end)
		assistantMask = append(assistantMask, assistant)
		ids = t.encodeOrdinary(e, ids, "\n", t.prefixAfterSpecial())
		for len(assistantMask) < len(ids) {
			assistantMask = append(assistantMask, false)
		}
	}
	if addGenerationPrompt {
		ids = append(ids, start)
		ids = t.encodeOrdinary(e, ids, "assistant\n", t.prefixAfterSpecial())
		for len(assistantMask) < len(ids) {
			assistantMask = append(assistantMask, false)
		}
	}
	return ids, assistantMask, nil
}

// encodeTurn encodes header+content as one text, as EncodeWithSpecial
// would (it lies between two special tokens), and marks the tokens that
// hold any byte of the content when assistant is set.
func (t *Tokenizer) encodeTurn(e *encoder, ids []int, mask []bool, header, content string, assistant bool) ([]int, []bool) {
	body := header + content
	n := len(ids)
	prefix := t.prefixAfterSpecial()
	ids = t.encodeOrdinary(e, ids, body, prefix)
	off := 0
	if prefix && body != "" && (body[0] != ' ' || t.sp != nil && !t.sp.prefixUnlessSpace) {
		off = -1 // the added space belongs to the header
	}
	for _, id := range ids[n:] {
		off += len(t.tokens[id])
		mask = append(mask, assistant && off > len(header))
	}
	return ids, mask
}

// EndIDs returns the ids of the special tokens that end an answer: the
// model's template's eos_token when it is a special token (TurnEnd), then
// those of <|im_end|> and <|endoftext|> the tokenizer has, in that order.
func (t *Tokenizer) EndIDs() []int {
	var ids []int
	if id, ok := t.TurnEnd(); ok {
		ids = append(ids, id)
	}
	for _, name := range []string{ImEnd, EndOfText} {
		if id, ok := t.SpecialID(name); ok && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// TurnEnd returns the special token that closes an assistant's turn:
// with a model's chat template its eos_token (Llama 3's <|eot_id|>,
// Gemma's <end_of_turn>), when that is a special token, else <|im_end|>.
func (t *Tokenizer) TurnEnd() (int, bool) {
	if t.chat != nil {
		if s, ok := t.chat.vars["eos_token"].(string); ok {
			if id, ok := t.specialIDs[s]; ok {
				return id, true
			}
		}
	}
	return t.SpecialID(ImEnd)
}

// HasChatTemplate reports whether the tokenizer can render chats: it has
// a model's chat template, or ChatML's <|im_start|> and <|im_end|>.
func (t *Tokenizer) HasChatTemplate() bool {
	if t.chat != nil {
		return true
	}
	_, a := t.SpecialID(ImStart)
	_, b := t.SpecialID(ImEnd)
	return a && b
}

// FitChat renders msgs for the next answer (RenderChat with the generation
// prompt), leaving out the oldest exchanges (a user turn and the answer
// after it; never a leading system message or the last message) until it
// fits in room tokens. It returns the messages kept, in a new slice, and
// their tokens; it fails when even the last message does not fit. It
// renders O(log n) times for n messages (a binary search over how many
// exchanges go), so a long history costs little more than one render.
func (t *Tokenizer) FitChat(msgs []Message, room int) ([]Message, []int, error) {
	first := 0
	if len(msgs) > 0 && msgs[0].Role == "system" {
		first = 1
	}
	// starts[j] is where the kept turns begin once j exchanges are gone.
	starts := []int{first}
	for s := first; len(msgs)-s > 1; {
		n := 1
		if s+1 < len(msgs)-1 && msgs[s+1].Role == "assistant" {
			n = 2
		}
		s += n
		starts = append(starts, s)
	}
	render := func(j int) ([]Message, []int, error) {
		h := append(append([]Message(nil), msgs[:first]...), msgs[starts[j]:]...)
		ids, _, err := t.RenderChat(h, true)
		return h, ids, err
	}
	h, ids, err := render(0)
	if err != nil || len(ids) <= room {
		return h, ids, err
	}
	// Fewer turns render to fewer tokens: find the fewest exchanges to drop.
	lo, hi := 1, len(starts)-1 // hi: all but the last message gone
	hh, hids, err := render(hi)
	if err != nil {
		return nil, nil, err
	}
	if len(hids) > room {
		return nil, nil, fmt.Errorf("the message is %d tokens, more than the %d the context leaves", len(hids), room)
	}
	for lo < hi {
		mid := (lo + hi) / 2
		mh, mids, err := render(mid)
		if err != nil {
			return nil, nil, err
		}
		if len(mids) <= room {
			hi, hh, hids = mid, mh, mids
		} else {
			lo = mid + 1
		}
	}
	return hh, hids, nil
}
