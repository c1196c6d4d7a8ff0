package data

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Format names a shape of record. The reader detects it from the first
// record's keys (see [Detect]); ReadOptions.Format forces it.
type Format string

// The formats the reader knows.
const (
	// FormatText is TRL's standard language modelling: {"text"}.
	FormatText Format = "text"
	// FormatMessages is TRL's conversational language modelling:
	// {"messages": [{"role","content"}...]}.
	FormatMessages Format = "messages"
	// FormatPromptCompletion is {"prompt","completion"}, strings or
	// message lists.
	FormatPromptCompletion Format = "prompt-completion"
	// FormatPreference is {"prompt","chosen","rejected"} (explicit prompt)
	// or {"chosen","rejected"} (implicit prompt: the shared beginning),
	// strings or message lists.
	FormatPreference Format = "preference"
	// FormatUnpairedPreference is {"prompt","completion","label"}.
	FormatUnpairedPreference Format = "unpaired-preference"
	// FormatAlpaca is {"instruction","input","output"} with optional
	// "system" and "history" (a list of [instruction, answer] pairs); with
	// "chosen" and "rejected" strings instead of "output" it is a
	// preference (LLaMA-Factory's Alpaca DPO shape).
	FormatAlpaca Format = "alpaca"
	// FormatShareGPT is {"conversations": [{"from","value"}...]} with an
	// optional "system"; with "chosen" and "rejected" messages it is a
	// preference (LLaMA-Factory's ShareGPT DPO shape).
	FormatShareGPT Format = "sharegpt"
	// FormatHH is Anthropic's HH-RLHF: "chosen" and "rejected" strings of
	// "\n\nHuman: ...\n\nAssistant: ..." turns, or the same with a
	// separate "prompt" ending in "\n\nAssistant:".
	FormatHH Format = "hh"
	// FormatRanking is {"prompt","completions","ranking"}: K answers and
	// a permutation of 0..K-1 listing them best first.
	FormatRanking Format = "ranking"
	// FormatSelfInstruct is self-instruct's seed tasks:
	// {"instruction","instances":[{"input","output"}...]}, one example
	// per instance.
	FormatSelfInstruct Format = "self-instruct"
)

// Formats lists every format name, for flags and error messages.
func Formats() []Format {
	return []Format{FormatText, FormatMessages, FormatPromptCompletion, FormatPreference,
		FormatUnpairedPreference, FormatAlpaca, FormatShareGPT, FormatHH, FormatRanking, FormatSelfInstruct}
}

func formatList() string {
	var names []string
	for _, f := range Formats() {
		names = append(names, string(f))
	}
	return strings.Join(names, ", ")
}

// parsers turns one record into examples and names its shape within the
// format (standard or conversational, explicit or implicit prompt), so
// that a file mixing shapes is caught.
var parsers = map[Format]func(r *record) ([]Example, string, error){
	FormatText:               parseText,
	FormatMessages:           parseMessages,
	FormatPromptCompletion:   parsePromptCompletion,
	FormatPreference:         parsePreference,
	FormatUnpairedPreference: parseUnpaired,
	FormatAlpaca:             parseAlpaca,
	FormatShareGPT:           parseShareGPT,
	FormatHH:                 parseHH,
	FormatRanking:            parseRanking,
	FormatSelfInstruct:       parseSelfInstruct,
}

// Detect returns the format of one JSON object from its keys, or an error
// when the keys fit no format.
func Detect(object []byte) (Format, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(object, &fields); err != nil {
		return "", fmt.Errorf("data: detect: %v", err)
	}
	r := &record{fields: fields}
	if f := detect(r); f != "" {
		return f, nil
	}
	return "", fmt.Errorf("data: cannot tell the format from the keys (%s); force one of: %s", r.keys(), formatList())
}

// detect picks the format from the keys; "" when none fits.
func detect(r *record) Format {
	switch {
	case r.has("conversations"):
		return FormatShareGPT
	case r.has("instruction") && r.has("instances"):
		return FormatSelfInstruct
	case r.has("instruction"):
		return FormatAlpaca
	case r.has("completions") || r.has("ranking"):
		return FormatRanking
	case r.has("chosen") || r.has("rejected"):
		if r.has("prompt") {
			if isHHString(r.fields["prompt"]) {
				return FormatHH
			}
			return FormatPreference
		}
		if isHHString(r.fields["chosen"]) {
			return FormatHH
		}
		return FormatPreference
	case r.has("label"):
		return FormatUnpairedPreference
	case r.has("prompt") || r.has("completion"):
		return FormatPromptCompletion
	case r.has("messages"):
		return FormatMessages
	case r.has("text"):
		return FormatText
	}
	return ""
}

// isHHString reports whether v is a JSON string that starts with an HH
// "Human:" turn.
func isHHString(v json.RawMessage) bool {
	var s string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return false
	}
	return strings.HasPrefix(strings.TrimLeft(s, " \t\r\n"), "Human:")
}

func form(plain bool) string {
	if plain {
		return "standard"
	}
	return "conversational"
}

func parseText(r *record) ([]Example, string, error) {
	s, err := r.text("text")
	if err != nil {
		return nil, "", err
	}
	return []Example{{Kind: LanguageModeling, Text: s, Completion: []Message{{Role: "assistant", Content: s}}, Plain: true}}, "standard", nil
}

func parseMessages(r *record) ([]Example, string, error) {
	if !r.has("messages") {
		return nil, "", r.missing("messages")
	}
	msgs, err := r.messages(r.fields["messages"], q("messages"), false)
	if err != nil {
		return nil, "", err
	}
	if err := r.checkTurns(msgs, q("messages"), "user", "assistant"); err != nil {
		return nil, "", err
	}
	return []Example{{Kind: LanguageModeling, Completion: msgs}}, "conversational", nil
}

func parsePromptCompletion(r *record) ([]Example, string, error) {
	p, pPlain, err := r.prompt("prompt")
	if err != nil {
		return nil, "", err
	}
	c, cPlain, err := r.answer("completion", false)
	if err != nil {
		return nil, "", err
	}
	if err := r.sameForm("prompt", pPlain, "completion", cPlain); err != nil {
		return nil, "", err
	}
	return []Example{{Kind: PromptCompletion, Prompt: p, Completion: c, Plain: pPlain}}, form(pPlain), nil
}

func parsePreference(r *record) ([]Example, string, error) {
	if r.has("prompt") {
		p, pPlain, err := r.prompt("prompt")
		if err != nil {
			return nil, "", err
		}
		chosen, rejected, plain, err := r.pair(parseAnswerField)
		if err != nil {
			return nil, "", err
		}
		if err := r.sameForm("prompt", pPlain, "chosen", plain); err != nil {
			return nil, "", err
		}
		return []Example{{Kind: Preference, Prompt: p, Chosen: chosen, Rejected: rejected, Plain: plain}}, form(plain) + ", explicit prompt", nil
	}
	cs, cm, cPlain, err := r.turns("chosen", true)
	if err != nil {
		return nil, "", err
	}
	rs, rm, rPlain, err := r.turns("rejected", true)
	if err != nil {
		return nil, "", err
	}
	if err := r.sameForm("chosen", cPlain, "rejected", rPlain); err != nil {
		return nil, "", err
	}
	ex := Example{Kind: Preference, Plain: cPlain}
	if cPlain {
		if cs == rs {
			return nil, "", r.fail(q("rejected"), "is the same as \"chosen\"")
		}
		p, c, rj := splitText(cs, rs)
		if p != "" {
			ex.Prompt = []Message{{Role: "user", Content: p}}
		}
		ex.Chosen = []Message{{Role: "assistant", Content: c}}
		ex.Rejected = []Message{{Role: "assistant", Content: rj}}
	} else {
		if err := r.checkTurns(cm, q("chosen"), "user", "assistant"); err != nil {
			return nil, "", err
		}
		if err := r.checkTurns(rm, q("rejected"), "user", "assistant"); err != nil {
			return nil, "", err
		}
		if ex.Prompt, ex.Chosen, ex.Rejected, err = r.splitMessages(cm, rm); err != nil {
			return nil, "", err
		}
	}
	return []Example{ex}, form(cPlain) + ", implicit prompt", nil
}

// parseAnswerField decodes a compared answer: a string or a list of messages.
func parseAnswerField(r *record, key string) ([]Message, bool, error) { return r.answer(key, true) }

// pair decodes "chosen" and "rejected" with answer, checking that both have
// the same form and differ.
func (r *record) pair(answer func(r *record, key string) ([]Message, bool, error)) (chosen, rejected []Message, plain bool, err error) {
	chosen, cPlain, err := answer(r, "chosen")
	if err != nil {
		return nil, nil, false, err
	}
	rejected, rPlain, err := answer(r, "rejected")
	if err != nil {
		return nil, nil, false, err
	}
	if err := r.sameForm("chosen", cPlain, "rejected", rPlain); err != nil {
		return nil, nil, false, err
	}
	if slices.Equal(chosen, rejected) {
		return nil, nil, false, r.fail(q("rejected"), "is the same as \"chosen\"")
	}
	return chosen, rejected, cPlain, nil
}

func parseUnpaired(r *record) ([]Example, string, error) {
	p, pPlain, err := r.prompt("prompt")
	if err != nil {
		return nil, "", err
	}
	c, cPlain, err := r.answer("completion", false)
	if err != nil {
		return nil, "", err
	}
	if err := r.sameForm("prompt", pPlain, "completion", cPlain); err != nil {
		return nil, "", err
	}
	if !r.has("label") {
		return nil, "", r.missing("label")
	}
	var label bool
	switch v := string(r.fields["label"]); v {
	case "true":
		label = true
	case "false":
	default:
		return nil, "", r.fail(q("label"), "is %s, want true or false", jsonType(r.fields["label"]))
	}
	return []Example{{Kind: UnpairedPreference, Prompt: p, Completion: c, Label: &label, Plain: pPlain}}, form(pPlain), nil
}

// userTurn joins an instruction and its optional input the way
// LLaMA-Factory does: on two lines.
func userTurn(instruction, input string) Message {
	if strings.TrimSpace(input) != "" {
		instruction += "\n" + input
	}
	return Message{Role: "user", Content: instruction}
}

func parseAlpaca(r *record) ([]Example, string, error) {
	instr, err := r.text("instruction")
	if err != nil {
		return nil, "", err
	}
	input, err := r.optText("input")
	if err != nil {
		return nil, "", err
	}
	system, err := r.optText("system")
	if err != nil {
		return nil, "", err
	}
	var prompt []Message
	if strings.TrimSpace(system) != "" {
		prompt = append(prompt, Message{Role: "system", Content: system})
	}
	if r.has("history") {
		turns, err := r.list(r.fields["history"], q("history"))
		if err != nil {
			return nil, "", err
		}
		for i, t := range turns {
			path := fmt.Sprintf(`"history"[%d]`, i)
			pair, err := r.list(t, path)
			if err != nil {
				return nil, "", err
			}
			if len(pair) != 2 {
				return nil, "", r.fail(path, "has %d items, want 2: [instruction, answer]", len(pair))
			}
			for j, role := range []string{"user", "assistant"} {
				s, err := r.decodeString(pair[j], fmt.Sprintf("%s[%d]", path, j))
				if err != nil {
					return nil, "", err
				}
				if strings.TrimSpace(s) == "" {
					return nil, "", r.fail(fmt.Sprintf("%s[%d]", path, j), "is empty")
				}
				prompt = append(prompt, Message{Role: role, Content: s})
			}
		}
	}
	prompt = append(prompt, userTurn(instr, input))
	if !r.has("output") && (r.has("chosen") || r.has("rejected")) {
		chosen, rejected, _, err := r.pair(func(r *record, key string) ([]Message, bool, error) {
			if !r.has(key) {
				return nil, false, r.missing(key)
			}
			s, err := r.decodeString(r.fields[key], q(key))
			return []Message{{Role: "assistant", Content: s}}, true, err
		})
		if err != nil {
			return nil, "", err
		}
		return []Example{{Kind: Preference, Prompt: prompt, Chosen: chosen, Rejected: rejected}}, "preference", nil
	}
	out, err := r.text("output")
	if err != nil {
		return nil, "", err
	}
	return []Example{{Kind: PromptCompletion, Prompt: prompt, Completion: []Message{{Role: "assistant", Content: out}}}}, "instruction", nil
}

func parseSelfInstruct(r *record) ([]Example, string, error) {
	instr, err := r.text("instruction")
	if err != nil {
		return nil, "", err
	}
	if !r.has("instances") {
		return nil, "", r.missing("instances")
	}
	items, err := r.list(r.fields["instances"], q("instances"))
	if err != nil {
		return nil, "", err
	}
	if len(items) == 0 {
		return nil, "", r.fail(q("instances"), "is an empty list")
	}
	exs := make([]Example, len(items))
	for i, it := range items {
		path := fmt.Sprintf(`"instances"[%d]`, i)
		m, err := r.object(it, path)
		if err != nil {
			return nil, "", err
		}
		sub := &record{file: r.file, line: r.line, index: r.index, raw: r.raw, fields: m}
		var input, out string
		if sub.has("input") {
			if input, err = r.decodeString(m["input"], path+".input"); err != nil {
				return nil, "", err
			}
		}
		if !sub.has("output") {
			return nil, "", r.fail(path+".output", "missing")
		}
		if out, err = r.decodeString(m["output"], path+".output"); err != nil {
			return nil, "", err
		}
		if strings.TrimSpace(out) == "" {
			return nil, "", r.fail(path+".output", "is empty")
		}
		exs[i] = Example{Kind: PromptCompletion, Prompt: []Message{userTurn(instr, input)}, Completion: []Message{{Role: "assistant", Content: out}}}
	}
	return exs, "instances", nil
}

func parseShareGPT(r *record) ([]Example, string, error) {
	if !r.has("conversations") {
		return nil, "", r.missing("conversations")
	}
	conv, err := r.messages(r.fields["conversations"], q("conversations"), false)
	if err != nil {
		return nil, "", err
	}
	system, err := r.optText("system")
	if err != nil {
		return nil, "", err
	}
	if strings.TrimSpace(system) != "" {
		if conv[0].Role == "system" {
			return nil, "", r.fail(q("system"), "is given but \"conversations\" also starts with a system message")
		}
		conv = append([]Message{{Role: "system", Content: system}}, conv...)
	}
	if !r.has("chosen") && !r.has("rejected") {
		if err := r.checkTurns(conv, q("conversations"), "user", "assistant"); err != nil {
			return nil, "", err
		}
		return []Example{{Kind: LanguageModeling, Completion: conv}}, "conversation", nil
	}
	if err := r.checkTurns(conv, q("conversations"), "user", "user"); err != nil {
		return nil, "", err
	}
	chosen, rejected, _, err := r.pair(func(r *record, key string) ([]Message, bool, error) {
		if !r.has(key) {
			return nil, false, r.missing(key)
		}
		v := r.fields[key]
		if v[0] == '"' {
			s, err := r.decodeString(v, q(key))
			return []Message{{Role: "assistant", Content: s}}, false, err
		}
		m, err := r.message(v, q(key), true)
		if err != nil {
			return nil, false, err
		}
		if m.Role != "assistant" {
			return nil, false, r.fail(q(key), "is %s message, want gpt (assistant)", an(m.Role))
		}
		return []Message{m}, false, nil
	})
	if err != nil {
		return nil, "", err
	}
	return []Example{{Kind: Preference, Prompt: conv, Chosen: chosen, Rejected: rejected}}, "preference", nil
}

func parseRanking(r *record) ([]Example, string, error) {
	p, pPlain, err := r.prompt("prompt")
	if err != nil {
		return nil, "", err
	}
	if !r.has("completions") {
		return nil, "", r.missing("completions")
	}
	items, err := r.list(r.fields["completions"], q("completions"))
	if err != nil {
		return nil, "", err
	}
	if len(items) < 2 {
		return nil, "", r.fail(q("completions"), "has %d answers, want at least 2", len(items))
	}
	comps := make([][]Message, len(items))
	seen := make(map[string]int, len(items))
	for i, it := range items {
		path := fmt.Sprintf(`"completions"[%d]`, i)
		switch {
		case len(it) > 0 && it[0] == '"' && pPlain:
			s, err := r.decodeString(it, path)
			if err != nil {
				return nil, "", err
			}
			comps[i] = []Message{{Role: "assistant", Content: s}}
		case len(it) > 0 && it[0] == '[' && !pPlain:
			if comps[i], err = r.messages(it, path, true); err != nil {
				return nil, "", err
			}
			if err := r.checkTurns(comps[i], path, "assistant", "assistant"); err != nil {
				return nil, "", err
			}
		case len(it) > 0 && (it[0] == '"' || it[0] == '['):
			return nil, "", r.fail(path, "is %s but \"prompt\" is %s; use strings for both (standard) or message lists for both (conversational)", jsonType(it), jsonType(r.fields["prompt"]))
		default:
			return nil, "", r.fail(path, "is %s, want a string or a list of messages", jsonType(it))
		}
		key := fmt.Sprint(comps[i])
		if j, dup := seen[key]; dup {
			return nil, "", r.fail(path, "is the same answer as \"completions\"[%d]", j)
		}
		seen[key] = i
	}
	// golem export writes a comparison without a winner with "verdict"
	// ("tie" or "both_bad"): it orders nothing, and training on its
	// "ranking" would invent a preference.
	if v, err := r.optText("verdict"); err != nil {
		return nil, "", err
	} else if v != "" {
		return nil, "", r.fail(q("verdict"), "is %q: a comparison without a winner prefers neither answer; leave such lines out (jq -c 'select(.verdict == null)') or train from the store, which does", v)
	}
	if !r.has("ranking") {
		return nil, "", r.missing("ranking")
	}
	ranks, err := r.list(r.fields["ranking"], q("ranking"))
	if err != nil {
		return nil, "", err
	}
	k := len(comps)
	if len(ranks) != k {
		return nil, "", r.fail(q("ranking"), "has %d entries, want %d (a permutation of the completions 0..%d, best first)", len(ranks), k, k-1)
	}
	ranking := make([]int, k)
	at := make([]int, k) // position+1 where each completion was ranked
	for i, v := range ranks {
		path := fmt.Sprintf(`"ranking"[%d]`, i)
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return nil, "", r.fail(path, "is %s, want an integer index into \"completions\"", string(v))
		}
		if n < 0 || n >= k {
			return nil, "", r.fail(path, "is %d, out of range 0..%d", n, k-1)
		}
		if at[n] != 0 {
			return nil, "", r.fail(path, "repeats %d (already at \"ranking\"[%d]); a ranking lists each completion once", n, at[n]-1)
		}
		at[n] = i + 1
		ranking[i] = n
	}
	return []Example{{Kind: Ranking, Prompt: p, Completions: comps, Ranking: ranking, Plain: pPlain}}, form(pPlain), nil
}
