package synth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/golem-ml/golem/tokenizer"
)

// Task kinds.
const (
	KindArithmetic  = "arithmetic"   // "What is 34 + 58?", worked step by step
	KindWordProblem = "word-problem" // "Mira has 5 apples. ...", worked step by step
	KindFact        = "fact"         // "Where does Mira live?" about the built-in world
	KindReverse     = "reverse"      // "Reverse the word "lamp"."
	KindCount       = "count"        // "How many words are in this list: ...?"
	KindSort        = "sort"         // "Sort these numbers from smallest to largest: ..."
	KindFirstLetter = "first-letter" // "What is the first letter of the word "lamp"?"
	KindOneWord     = "one-word"     // a fact question, "Answer in one word."
	KindUppercase   = "uppercase"    // a fact question, "Answer in uppercase letters." (English only)
	KindNumberOnly  = "number-only"  // an arithmetic question, "Answer with just the number."
	KindRefusal     = "refusal"      // a harmful request, to be declined politely
)

// kindWeights is the default mixture of kinds, in percent.
var kindWeights = []struct {
	kind   string
	weight int
	make   func(g *gen, lang, split string) (Task, error)
}{
	{KindArithmetic, 18, (*gen).arithmetic},
	{KindWordProblem, 14, (*gen).wordProblem},
	{KindFact, 24, (*gen).fact},
	{KindReverse, 5, (*gen).reverse},
	{KindCount, 5, (*gen).count},
	{KindSort, 5, (*gen).sort},
	{KindFirstLetter, 5, (*gen).firstLetter},
	{KindOneWord, 7, (*gen).oneWord},
	{KindUppercase, 4, (*gen).uppercase},
	{KindNumberOnly, 7, (*gen).numberOnly},
	{KindRefusal, 6, (*gen).refusal},
	// Tool use (tools.go): not in the default mixture; asked for by name.
	{KindCalculator, 0, (*gen).calculator},
	{KindLookup, 0, (*gen).lookup},
}

// namedWeight is the weight of a kind outside the default mixture when
// TaskOptions.Kinds asks for it.
const namedWeight = 5

// Kinds returns the task kinds of the default mixture, in a fixed order.
func Kinds() []string {
	var out []string
	for _, k := range kindWeights {
		if k.weight > 0 {
			out = append(out, k.kind)
		}
	}
	return out
}

// ToolKinds returns the tool-use task kinds (tools.go), which
// TaskOptions.Kinds must name.
func ToolKinds() []string { return []string{KindCalculator, KindLookup} }

// Task is one instruction with a reference answer and a program that
// checks answers to it. It is plain data: tasks written with [WriteTasks]
// and read back with [ReadTasks] check the same way.
type Task struct {
	Kind string `json:"kind"`
	// Key names the item the train/held-out split is decided on: the
	// person asked about, the numbers of an arithmetic problem, the word or
	// list of a list task, the topic of a harmful request. [SplitOf] is a
	// function of the key alone, so no key is in both splits, whatever the
	// seeds and whichever kinds and languages are asked for.
	Key    string              `json:"key"`
	Lang   string              `json:"lang"`   // "en" or "zh"
	Prompt []tokenizer.Message `json:"prompt"` // an optional system message, then the user's
	Answer string              `json:"answer"` // a reference demonstration
	Want   Want                `json:"want"`
}

// Messages returns the prompt followed by the reference answer as the
// assistant's turn: one demonstration for instruction tuning.
func (t Task) Messages() []tokenizer.Message {
	return append(slices.Clone(t.Prompt), tokenizer.Message{Role: "assistant", Content: t.Answer})
}

// User returns the content of the task's user message.
func (t Task) User() string {
	for _, m := range t.Prompt {
		if m.Role == "user" {
			return m.Content
		}
	}
	return ""
}

// The splits.
const (
	SplitTrain   = "train"
	SplitHeldout = "heldout"
)

// HeldoutPercent is the share of keys, in percent, in the held-out split.
const HeldoutPercent = 20

// SplitOf returns the split a key belongs to: SplitHeldout for about
// HeldoutPercent of keys, SplitTrain for the rest. The corpus only states
// train problems (it does state every fact of the world: held-out fact
// questions test recall of what pretraining read, on people that
// instruction tuning never asked about).
func SplitOf(key string) string {
	if hash64("split", key)%100 < HeldoutPercent {
		return SplitHeldout
	}
	return SplitTrain
}

// TaskOptions configure [Tasks].
type TaskOptions struct {
	Seed  int64
	N     int
	Split string // "train" (the default) or "heldout"
	Lang  string // "en" (the default), "zh" or "mix" (each task English or Chinese at random)
	// Kinds restricts the kinds generated; nil means the default mixture
	// (all kinds but the tool tasks; uppercase tasks are English, so "zh"
	// leaves them out).
	Kinds []string
	// System is the fraction of prompts that start with a short system
	// message ("You are a helpful assistant.").
	System float64
	World  *World // nil: DefaultWorld()
	// Tools are the built-in tools the tool tasks offer in their system
	// message (ToolSystem); nil: all of them.
	Tools []string
}

// MustTasks is like [Tasks] but panics on invalid options. It is meant for
// options written in the program, not read from users.
func MustTasks(opts TaskOptions) []Task {
	ts, err := Tasks(opts)
	if err != nil {
		panic(err)
	}
	return ts
}

// Tasks generates opts.N tasks of the split. The same options always give
// the same tasks. Within one call prompts do not repeat while the split has
// unused problems of a kind left.
func Tasks(opts TaskOptions) ([]Task, error) {
	split := opts.Split
	if split == "" {
		split = SplitTrain
	}
	if split != SplitTrain && split != SplitHeldout {
		return nil, fmt.Errorf("synth: split %q: want %q or %q", opts.Split, SplitTrain, SplitHeldout)
	}
	lang := opts.Lang
	if lang == "" {
		lang = "en"
	}
	if lang != "en" && lang != "zh" && lang != "mix" {
		return nil, fmt.Errorf("synth: lang %q: want \"en\", \"zh\" or \"mix\"", opts.Lang)
	}
	if opts.N < 0 {
		return nil, fmt.Errorf("synth: N is %d, want at least 0", opts.N)
	}
	if opts.System < 0 || opts.System > 1 {
		return nil, fmt.Errorf("synth: System is %g, want a fraction in [0, 1]", opts.System)
	}
	type choice struct {
		weight int
		make   func(g *gen, lang, split string) (Task, error)
		enOnly bool
	}
	var choices []choice
	total := 0
	for _, k := range kindWeights {
		if opts.Kinds != nil && !slices.Contains(opts.Kinds, k.kind) {
			continue
		}
		enOnly := k.kind == KindUppercase || k.kind == KindCalculator || k.kind == KindLookup
		w := k.weight
		if w == 0 {
			if opts.Kinds == nil {
				continue
			}
			w = namedWeight
		}
		if enOnly && lang == "zh" {
			if opts.Kinds != nil {
				return nil, fmt.Errorf("synth: kind %q has no Chinese form", k.kind)
			}
			continue
		}
		choices = append(choices, choice{w, k.make, enOnly})
		total += w
	}
	for _, k := range opts.Kinds {
		if all := append(Kinds(), ToolKinds()...); !slices.Contains(all, k) {
			return nil, fmt.Errorf("synth: unknown task kind %q (kinds: %s)", k, strings.Join(all, ", "))
		}
	}
	if opts.N > 0 && len(choices) == 0 {
		return nil, fmt.Errorf("synth: no task kinds selected")
	}
	if opts.World != nil {
		if err := opts.World.Validate(); err != nil {
			return nil, err
		}
	}
	g := newGen(opts.World, opts.Seed)
	var err error
	if g.tools, err = ToolSystem(opts.Tools...); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	for _, k := range ToolKinds() { // the tool tasks' kinds are their tools' names
		if opts.Tools != nil && slices.Contains(opts.Kinds, k) && !slices.Contains(opts.Tools, k) {
			return nil, fmt.Errorf("synth: %s tasks need the %s tool among the tools offered (%s)", k, k, strings.Join(opts.Tools, ", "))
		}
	}
	seen := map[string]bool{}
	out := make([]Task, 0, opts.N)
	for len(out) < opts.N {
		c := choices[len(choices)-1]
		x := g.r.intn(total)
		for _, ch := range choices {
			if x < ch.weight {
				c = ch
				break
			}
			x -= ch.weight
		}
		l := lang
		if l == "mix" {
			l = "en"
			if g.r.chance(0.5) {
				l = "zh"
			}
		}
		if c.enOnly {
			l = "en"
		}
		var t Task
		for attempt := 0; ; attempt++ {
			var err error
			if t, err = c.make(g, l, split); err != nil {
				return nil, err
			}
			if !seen[t.Lang+"\x00"+t.User()] || attempt >= 20 {
				break
			}
		}
		seen[t.Lang+"\x00"+t.User()] = true
		if g.r.chance(opts.System) {
			sys := "You are a helpful assistant."
			if t.Lang == "zh" {
				sys = "你是一个乐于助人的助手。"
			}
			t.Prompt = append([]tokenizer.Message{{Role: "system", Content: sys}}, t.Prompt...)
		}
		out = append(out, t)
	}
	return out, nil
}
