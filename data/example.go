// Package data reads the data sets users bring for instruction tuning,
// reward modelling, DPO and PPO, with strict validation.
//
// Every supported shape becomes the same [Example]: TRL's language-modelling,
// prompt-completion, preference (explicit and implicit prompt) and unpaired
// preference shapes, standard (plain strings) and conversational (message
// lists); Alpaca; self-instruct; ShareGPT (including LLaMA-Factory's DPO
// shape); Anthropic HH strings; and K-way rankings. JSON arrays and JSON
// lines are read, gzip-compressed or not.
//
// Nothing is silently dropped or repaired: a record that does not fit is an
// [*Error] naming the file, the line and the field, and the [Summary] counts
// every record read.
package data

import (
	"fmt"
	"strings"

	"github.com/golem-ml/golem/tokenizer"
)

// Message is one turn of a conversation: the tokenizer's type, so that
// examples go to the chat template as they are.
type Message = tokenizer.Message

// Kind says what a stage can learn from an [Example].
type Kind int

// The kinds of example, after TRL's dataset types.
const (
	// LanguageModeling is a whole text or conversation to imitate:
	// Completion holds it (Prompt is empty).
	LanguageModeling Kind = iota
	// PromptCompletion is a prompt and the answer to imitate.
	PromptCompletion
	// Preference is a prompt with a chosen and a rejected answer.
	Preference
	// UnpairedPreference is a prompt, one answer and whether it is good.
	UnpairedPreference
	// Ranking is a prompt with K answers ranked best first.
	Ranking
	numKinds
)

var kindNames = [numKinds]string{"language-modeling", "prompt-completion", "preference", "unpaired-preference", "ranking"}

// String returns the kind's name, such as "prompt-completion".
func (k Kind) String() string {
	if k < 0 || k >= numKinds {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return kindNames[k]
}

// Example is one training example, whatever shape it was read from.
//
// Conversations are always messages: a standard (plain string) record
// becomes one user message for its prompt and one assistant message for
// each answer, and Plain records that it was plain text, for stages that
// treat plain text differently (no chat template).
//
// No message is blank, with one exception: an answer that is compared with
// others (chosen, rejected, a ranked completion) may be empty, since saying
// nothing can be the better or the worse answer; Anthropic's HH-RLHF data
// has a few such answers.
type Example struct {
	Kind Kind

	// Prompt is the conversation before the answer: an optional system
	// message, then user and assistant turns alternating, ending with a
	// user turn. It is empty for LanguageModeling, and for a standard
	// implicit-prompt preference whose answers share no leading words.
	Prompt []Message

	// Completion is the answer for PromptCompletion and
	// UnpairedPreference, and the whole conversation for LanguageModeling.
	// Answers start with an assistant turn and end with one.
	Completion []Message

	// Chosen and Rejected are the preferred and the dispreferred answer
	// of a Preference.
	Chosen, Rejected []Message

	// Completions are the K answers of a Ranking, and Ranking is a
	// permutation of 0..K-1 listing them best first.
	Completions [][]Message
	Ranking     []int

	// Label says whether the Completion of an UnpairedPreference is good.
	Label *bool

	// Text is the raw text of a standard LanguageModeling record.
	Text string

	// Plain is true when the record was in standard form (plain strings).
	Plain bool

	// Images are the image files the conversation is about (the record's
	// "images", relative paths resolved against the data file's folder):
	// at most one, for a vision-language model. The prompt's text holds
	// "<image>" where it goes; without one it goes before the first user
	// text.
	Images []string

	// Source is where the record was read, as "file:line".
	Source string
}

// Messages returns the full conversation: the prompt followed by the
// completion, the chosen answer, or the best-ranked answer.
func (e *Example) Messages() []Message {
	var answer []Message
	switch e.Kind {
	case LanguageModeling, PromptCompletion, UnpairedPreference:
		answer = e.Completion
	case Preference:
		answer = e.Chosen
	case Ranking:
		if len(e.Ranking) > 0 && e.Ranking[0] >= 0 && e.Ranking[0] < len(e.Completions) {
			answer = e.Completions[e.Ranking[0]]
		}
	}
	return e.With(answer)
}

// With returns a new slice holding the prompt followed by answer.
func (e *Example) With(answer []Message) []Message {
	m := make([]Message, 0, len(e.Prompt)+len(answer))
	m = append(m, e.Prompt...)
	return append(m, answer...)
}

// Pair is one comparison taken from a ranking: the answer at index Winner
// is preferred to the one at index Loser.
type Pair struct{ Winner, Loser int }

// RankingPairs expands a ranking (answer indices, best first) into its
// K(K-1)/2 comparisons, in order: the best answer against each of the
// others, then the second best against those below it, and so on.
func RankingPairs(ranking []int) []Pair {
	k := len(ranking)
	pairs := make([]Pair, 0, k*(k-1)/2)
	for i := range k {
		for j := i + 1; j < k; j++ {
			pairs = append(pairs, Pair{Winner: ranking[i], Loser: ranking[j]})
		}
	}
	return pairs
}

// Pairs returns the example as preference examples: a Ranking becomes one
// Preference per pair of its answers (see [RankingPairs]), sharing the
// prompt; a Preference is returned as is; other kinds give nothing.
func (e *Example) Pairs() []Example {
	switch e.Kind {
	case Preference:
		return []Example{*e}
	case Ranking:
		pairs := RankingPairs(e.Ranking)
		out := make([]Example, len(pairs))
		for i, p := range pairs {
			out[i] = Example{
				Kind:     Preference,
				Prompt:   e.Prompt,
				Chosen:   e.Completions[p.Winner],
				Rejected: e.Completions[p.Loser],
				Plain:    e.Plain,
				Images:   e.Images,
				Source:   e.Source,
			}
		}
		return out
	}
	return nil
}

// Render writes the example for people to read: its source and kind, then
// each part with one line per message, "[role] content".
func (e *Example) Render() string {
	var b strings.Builder
	form := "conversational"
	if e.Plain {
		form = "standard"
	}
	fmt.Fprintf(&b, "%s  %s (%s)\n", e.Source, e.Kind, form)
	part := func(name string, msgs []Message) {
		if len(msgs) == 0 {
			return
		}
		fmt.Fprintf(&b, "%s:\n", name)
		for _, m := range msgs {
			fmt.Fprintf(&b, "  [%s] %s\n", m.Role, strings.ReplaceAll(m.Content, "\n", "\n    "))
		}
	}
	switch e.Kind {
	case LanguageModeling:
		if e.Plain {
			fmt.Fprintf(&b, "text:\n  %s\n", strings.ReplaceAll(e.Text, "\n", "\n  "))
			break
		}
		part("messages", e.Completion)
	case PromptCompletion:
		part("prompt", e.Prompt)
		part("completion", e.Completion)
	case Preference:
		part("prompt", e.Prompt)
		part("chosen", e.Chosen)
		part("rejected", e.Rejected)
	case UnpairedPreference:
		part("prompt", e.Prompt)
		part("completion", e.Completion)
		if e.Label != nil {
			fmt.Fprintf(&b, "label: %v\n", *e.Label)
		}
	case Ranking:
		part("prompt", e.Prompt)
		for rank, i := range e.Ranking {
			if i >= 0 && i < len(e.Completions) {
				part(fmt.Sprintf("completion %d (rank %d)", i, rank+1), e.Completions[i])
			}
		}
	}
	return b.String()
}
