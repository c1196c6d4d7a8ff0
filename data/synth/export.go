package synth

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/golem-ml/golem/tokenizer"
)

// The JSONL writers below produce TRL's conversational shapes, which
// golem's data readers and TRL itself read unchanged.

func writeLines(w io.Writer, n int, record func(i int) (any, error)) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i := range n {
		v, err := record(i)
		if err != nil {
			return err
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func assistant(s string) []tokenizer.Message {
	return []tokenizer.Message{{Role: "assistant", Content: s}}
}

// WriteSFT writes one demonstration per task as JSON lines of TRL's
// conversational language-modelling shape,
// {"messages": [prompt..., {"role": "assistant", "content": answer}]}.
func WriteSFT(w io.Writer, tasks []Task) error {
	return writeLines(w, len(tasks), func(i int) (any, error) {
		return struct {
			Messages []tokenizer.Message `json:"messages"`
		}{tasks[i].Messages()}, nil
	})
}

// WritePrompts writes the prompts alone, as JSON lines of TRL's
// conversational prompt-only shape, {"prompt": [messages...]}, the input of
// PPO and GRPO.
func WritePrompts(w io.Writer, tasks []Task) error {
	return writeLines(w, len(tasks), func(i int) (any, error) {
		return struct {
			Prompt []tokenizer.Message `json:"prompt"`
		}{tasks[i].Prompt}, nil
	})
}

// Ranked is a prompt with K different answers and their order, best first:
// Ranking[0] indexes the best of Completions.
type Ranked struct {
	Prompt      []tokenizer.Message
	Completions []string
	Ranking     []int
}

// RankAll ranks the responses to a task with [Annotator.Rank]. Identical
// responses (common when a small model is sampled K times) are one answer:
// a ranking of an answer against itself says nothing, and the data readers
// reject it. Fewer than two different answers give a Ranked with fewer than
// two completions, which callers skip.
func (an Annotator) RankAll(t Task, responses []string) Ranked {
	var uniq []string
	for _, r := range responses {
		if !slices.Contains(uniq, r) {
			uniq = append(uniq, r)
		}
	}
	return Ranked{Prompt: t.Prompt, Completions: uniq, Ranking: an.Rank(t, uniq)}
}

// Preferences ranks the responses to a task with [Annotator.RankAll] and
// returns the comparisons its ranking makes between answers it values
// differently, in the ranking's order (noise included): with K answers
// of which several are equally good (three right answers, say), each right
// answer is preferred to each wrong one, while two equal answers give no
// pair, since people would call them a tie and a tie is no label. Keeping
// every answer this way gives a reward model several times the
// comparisons of a ranking of one answer per level, from the same samples.
func (an Annotator) Preferences(t Task, responses []string) []Pair {
	r := an.RankAll(t, responses)
	u := make([]float64, len(r.Completions))
	for i, c := range r.Completions {
		u[i] = an.Judge(t, c)
	}
	var out []Pair
	for i, a := range r.Ranking {
		for _, b := range r.Ranking[i+1:] {
			if u[a] != u[b] {
				out = append(out, Pair{Prompt: r.Prompt, Chosen: r.Completions[a], Rejected: r.Completions[b]})
			}
		}
	}
	return out
}

// Pair is one preference: the chosen answer beat the rejected one.
type Pair struct {
	Prompt           []tokenizer.Message
	Chosen, Rejected string
}

// Pairs expands a ranking into its K(K-1)/2 preferences, best answers first.
func (r Ranked) Pairs() []Pair {
	var out []Pair
	for i, a := range r.Ranking {
		for _, b := range r.Ranking[i+1:] {
			out = append(out, Pair{Prompt: r.Prompt, Chosen: r.Completions[a], Rejected: r.Completions[b]})
		}
	}
	return out
}

func (r Ranked) validate() error {
	k := len(r.Completions)
	if k < 2 {
		return fmt.Errorf("has %d completions, want at least 2", k)
	}
	for i, c := range r.Completions {
		if j := slices.Index(r.Completions[:i], c); j >= 0 {
			return fmt.Errorf("completion %d is the same as completion %d", i, j)
		}
	}
	if len(r.Ranking) != k {
		return fmt.Errorf("ranking has %d entries for %d completions", len(r.Ranking), k)
	}
	seen := make([]bool, k)
	for _, x := range r.Ranking {
		if x < 0 || x >= k || seen[x] {
			return fmt.Errorf("ranking %v is not a permutation of 0..%d", r.Ranking, k-1)
		}
		seen[x] = true
	}
	return nil
}

// WriteRankings writes K-way rankings as JSON lines,
// {"prompt": [messages...], "completions": [[{"role": "assistant", ...}]...], "ranking": [best, ..., worst]},
// the conversational form of golem's ranking shape. A ranking with fewer
// than two completions, repeated completions or a ranking that is not a
// permutation is an error naming its index.
func WriteRankings(w io.Writer, rs []Ranked) error {
	return writeLines(w, len(rs), func(i int) (any, error) {
		r := rs[i]
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("synth: ranking %d: %w", i, err)
		}
		cs := make([][]tokenizer.Message, len(r.Completions))
		for j, c := range r.Completions {
			cs[j] = assistant(c)
		}
		return struct {
			Prompt      []tokenizer.Message   `json:"prompt"`
			Completions [][]tokenizer.Message `json:"completions"`
			Ranking     []int                 `json:"ranking"`
		}{r.Prompt, cs, r.Ranking}, nil
	})
}

// WritePreferences writes preference pairs as JSON lines of TRL's
// conversational preference shape, {"prompt", "chosen", "rejected"}, the
// input of DPO.
func WritePreferences(w io.Writer, pairs []Pair) error {
	return writeLines(w, len(pairs), func(i int) (any, error) {
		p := pairs[i]
		return struct {
			Prompt   []tokenizer.Message `json:"prompt"`
			Chosen   []tokenizer.Message `json:"chosen"`
			Rejected []tokenizer.Message `json:"rejected"`
		}{p.Prompt, assistant(p.Chosen), assistant(p.Rejected)}, nil
	})
}

// WriteTasks writes tasks as JSON lines in their own shape (the fields of
// [Task]), which [ReadTasks] reads back with their checks.
func WriteTasks(w io.Writer, tasks []Task) error {
	return writeLines(w, len(tasks), func(i int) (any, error) { return tasks[i], nil })
}

// maxTaskLine bounds one line of a tasks file.
const maxTaskLine = 1 << 20

// ReadTasks reads tasks written by [WriteTasks]. name is used in errors,
// which give the line and the field: `synth: tasks.jsonl line 3: want.match "x" unknown`.
// Blank lines are skipped; nothing else is.
func ReadTasks(r io.Reader, name string) ([]Task, error) {
	br := bufio.NewReader(r)
	var out []Task
	for line := 1; ; line++ {
		b, err := readLine(br)
		if err == io.EOF && b == nil {
			return out, nil
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("synth: %s line %d: %w", name, line, err)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		var t Task
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&t); err != nil {
			return nil, fmt.Errorf("synth: %s line %d: %v", name, line, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("synth: %s line %d: more than one JSON value", name, line)
		}
		if err := t.validate(); err != nil {
			return nil, fmt.Errorf("synth: %s line %d: %v", name, line, err)
		}
		out = append(out, t)
	}
}

// readLine returns the next line without its newline; a line longer than
// maxTaskLine is an error rather than an unbounded allocation.
func readLine(br *bufio.Reader) ([]byte, error) {
	var b []byte
	for {
		chunk, err := br.ReadSlice('\n')
		b = append(b, chunk...)
		if len(b) > maxTaskLine {
			return nil, fmt.Errorf("longer than %d bytes", maxTaskLine)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF && len(b) == 0 {
			return nil, io.EOF
		}
		return bytes.TrimRight(b, "\r\n"), err
	}
}

func (t Task) validate() error {
	if !slices.Contains(Kinds(), t.Kind) {
		return fmt.Errorf("kind %q unknown", t.Kind)
	}
	if t.Lang != "en" && t.Lang != "zh" {
		return fmt.Errorf("lang %q unknown (want en or zh)", t.Lang)
	}
	if t.Key == "" {
		return errors.New("key missing")
	}
	users := 0
	for i, m := range t.Prompt {
		switch m.Role {
		case "user":
			users++
		case "system", "assistant":
		default:
			return fmt.Errorf("prompt[%d].role %q unknown", i, m.Role)
		}
	}
	if users == 0 {
		return errors.New("prompt has no user message")
	}
	w := t.Want
	switch w.Match {
	case MatchNumber, MatchWord, MatchMention:
		if w.Value == "" {
			return fmt.Errorf("want.value missing for match %q", w.Match)
		}
	case MatchNumbers:
		if len(w.Values) == 0 {
			return errors.New("want.values missing for match \"numbers\"")
		}
	case MatchRefusal:
	default:
		return fmt.Errorf("want.match %q unknown", w.Match)
	}
	if w.Match == MatchNumber {
		if _, err := strconv.ParseFloat(w.Value, 64); err != nil {
			return fmt.Errorf("want.value %q is not a number", w.Value)
		}
	}
	switch w.Format {
	case "", FormatAnswer, FormatSentence, FormatOneWord, FormatUppercase, FormatNumberOnly:
	default:
		return fmt.Errorf("want.format %q unknown", w.Format)
	}
	return nil
}
