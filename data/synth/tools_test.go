package synth

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/golem-ml/golem/tokenizer"
)

func TestCalculate(t *testing.T) {
	for expr, want := range map[string]string{"2+3*4": "14", "(2+3)*4": "20", " 347 * 29 ": "10063", "-3 - -4": "1", "7/2": "3.5",
		"1/3": "0.3333333333", "1,000 * 2": "2000", "6×7": "42", "84÷2": "42", "((((1))))": "1", "2.5*4": "10"} {
		v, err := Calculate(expr)
		if err != nil || FormatNumber(v) != want {
			t.Errorf("Calculate(%q) = %v, %v; want %s", expr, FormatNumber(v), err, want)
		}
	}
	for expr, want := range map[string]string{"": "expected a number", "2+": "at byte 2: expected a number", "1/0": "division by zero",
		"(1+2": "expected )", "2 3": `unexpected '3'`, "rm -rf": `expected a number, got 'r'`, "1..2": "is not a number",
		strings.Repeat("(", 40) + "1" + strings.Repeat(")", 40): "nested deeper", strings.Repeat("1+", 101) + "1": "at most 200",
		"9" + strings.Repeat("9", 150) + "*1e": "unexpected 'e'"} {
		if _, err := Calculate(expr); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Calculate(%.30q): %v, want an error with %q", expr, err, want)
		}
	}
}

// Every tool task's reference answer passes its check; wrong calls and
// answers do not; the result in an answer step's prompt is what the tool
// returns for its call.
func TestToolTasks(t *testing.T) {
	tasks := MustTasks(TaskOptions{Seed: 3, N: 200, Kinds: []string{KindCalculator, KindLookup}})
	sys, _ := ToolSystem()
	steps := map[string]int{}
	for _, tk := range tasks {
		if s := tk.Check(tk.Answer); !s.Correct || !s.FollowsFormat {
			t.Fatalf("%s %q: the reference %q fails its check: %+v", tk.Kind, tk.User(), tk.Answer, s)
		}
		if tk.Prompt[0] != sys || !strings.Contains(tk.Prompt[0].Content, "\ncalculator(expression: string) - ") {
			t.Fatalf("%s: no tools in the system message: %+v", tk.Kind, tk.Prompt[0])
		}
		if tk.Want.Match == MatchToolCall {
			steps["call"]++
			_, calls, _ := tokenizer.ParseToolCalls(tk.Answer)
			wrong := []string{
				strings.Replace(tk.Answer, calls[0].Name, "other", 1),
				strings.Replace(tk.Answer, `"}}`, `"}`, 1),
				"I will use the calculator. " + tk.Answer,
			}
			if tk.Kind == KindCalculator {
				wrong = append(wrong, strings.Replace(tk.Answer, " ", " 1", 1))
			} else {
				wrong = append(wrong, strings.Replace(tk.Answer, tk.Want.Values[0], "Nobody", 1))
			}
			for _, w := range wrong {
				if tk.Check(w).Correct {
					t.Errorf("%s: wrong call %q passes", tk.Kind, w)
				}
			}
			continue
		}
		steps["answer"]++
		_, calls, err := tokenizer.ParseToolCalls(tk.Prompt[2].Content)
		if err != nil || len(calls) != 1 {
			t.Fatalf("answer step without its call: %+v", tk.Prompt)
		}
		result, err := RunTool(nil, calls[0].Name, calls[0].Arguments)
		if err != nil || tk.Prompt[3].Content != "<tool_response>\n"+result+"\n</tool_response>" {
			t.Fatalf("%s: the prompt's result %q is not the tool's %q (%v)", tk.Kind, tk.Prompt[3].Content, result, err)
		}
		if tk.Check("I don't know.").Correct {
			t.Errorf("%s: a non-answer passes", tk.Kind)
		}
	}
	if steps["call"] < 50 || steps["answer"] < 50 {
		t.Errorf("steps %v", steps)
	}
	// Not in the default mixture.
	for _, tk := range MustTasks(TaskOptions{Seed: 1, N: 300}) {
		if tk.Kind == KindCalculator || tk.Kind == KindLookup {
			t.Fatalf("default mixture has a %s task", tk.Kind)
		}
	}
	// Held-out problems are not trained on.
	train := map[string]bool{}
	for _, tk := range tasks {
		train[tk.Key] = true
	}
	for _, tk := range MustTasks(TaskOptions{Seed: 4, N: 100, Split: SplitHeldout, Kinds: []string{KindCalculator, KindLookup}}) {
		if train[tk.Key] {
			t.Fatalf("held-out key %q is in the train tasks", tk.Key)
		}
	}
}

func TestRunTool(t *testing.T) {
	if r, err := RunTool(nil, "calculator", json.RawMessage(`{"expression":"6*7"}`)); r != "42" || err != nil {
		t.Errorf("calculator: %q %v", r, err)
	}
	p := DefaultWorld().People[0]
	r, err := RunTool(nil, "lookup", json.RawMessage(`{"name":"`+strings.ToLower(p.Name)+`"}`))
	var rec struct {
		Name string
		Age  int
	}
	if err != nil || json.Unmarshal([]byte(r), &rec) != nil || rec.Name != p.Name || rec.Age != p.Age {
		t.Errorf("lookup %s: %q %v", p.Name, r, err)
	}
	for _, c := range []struct{ name, args, want string }{
		{"lookup", `{"name":"Zorg"}`, `nobody called "Zorg"`},
		{"calculator", `{"expr":"1"}`, `{"expression": "..."}`},
		{"shell", `{}`, `no tool "shell"`},
	} {
		if _, err := RunTool(nil, c.name, json.RawMessage(c.args)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: %v, want %q", c.name, c.args, err, c.want)
		}
	}
}

// The second step of a round trip: a right call's tool is run and the
// next prompt gives its result back; the answer must be that result.
func TestFollowUp(t *testing.T) {
	n := 0
	for _, tk := range MustTasks(TaskOptions{Seed: 5, N: 60, Kinds: []string{KindCalculator, KindLookup}, Split: SplitHeldout}) {
		if tk.Want.Match != MatchToolCall {
			continue
		}
		next, ok := tk.FollowUp(nil, tk.Answer)
		if tk.Kind == KindLookup {
			if ok {
				t.Errorf("lookup: a follow-up without a known fact to check: %+v", next)
			}
			continue
		}
		n++
		r := tk.Want.Values[0]
		if !ok || next.Prompt[len(next.Prompt)-1].Content != ToolResponse(r) || next.Prompt[len(next.Prompt)-2].Role != "assistant" {
			t.Fatalf("%q: follow-up %v %+v", tk.User(), ok, next.Prompt)
		}
		if !next.Check("The answer is "+r+".").Correct || next.Check("The answer is 1"+r+".").Correct {
			t.Errorf("%q: the follow-up's check does not want %s", tk.User(), r)
		}
		if _, ok := tk.FollowUp(nil, strings.Replace(tk.Answer, " ", " 1", 1)); ok {
			t.Errorf("%q: a wrong call has a follow-up", tk.User())
		}
	}
	if n < 10 {
		t.Fatalf("only %d calculator call steps", n)
	}
}

// The corpus has whole round trips whose results are the tools'.
func TestCorpusToolUse(t *testing.T) {
	n := 0
	sys, _ := ToolSystem()
	for _, p := range strings.Split(Corpus(CorpusOptions{Seed: 2, Bytes: 200_000}), "\n\n") {
		a := strings.Index(p, "<|im_start|>assistant\n")
		if !strings.Contains(p, "<tool_response>") || a < 0 {
			continue
		}
		n++
		i := a + strings.Index(p[a:], tokenizer.ToolCallOpen)
		j := a + strings.Index(p[a:], tokenizer.ToolCallClose)
		_, calls, err := tokenizer.ParseToolCalls(p[i : j+len(tokenizer.ToolCallClose)])
		if err != nil || len(calls) != 1 {
			t.Fatalf("%q: %v", p, err)
		}
		r, err := RunTool(nil, calls[0].Name, calls[0].Arguments)
		if err != nil || !strings.Contains(p, ToolResponse(r)) || !strings.HasPrefix(p, "<|im_start|>system\n"+sys.Content) {
			t.Fatalf("%q: result %q %v", p, r, err)
		}
	}
	if n < 5 {
		t.Fatalf("%d tool round trips in 200 kB of corpus", n)
	}
}

// TaskOptions.Tools: the tools the tool tasks offer.
func TestToolTasksOffer(t *testing.T) {
	for _, tk := range MustTasks(TaskOptions{Seed: 1, N: 20, Kinds: []string{KindCalculator}, Tools: []string{"calculator"}}) {
		if s := tk.Prompt[0].Content; !strings.Contains(s, "\ncalculator(") || strings.Contains(s, "lookup") {
			t.Fatalf("calculator alone offered: %q", s)
		}
	}
	if _, err := Tasks(TaskOptions{N: 1, Kinds: []string{KindLookup}, Tools: []string{"calculator"}}); err == nil || !strings.Contains(err.Error(), "lookup tasks need the lookup tool") {
		t.Errorf("lookup tasks without the lookup tool: %v", err)
	}
	if _, err := Tasks(TaskOptions{N: 1, Tools: []string{"shell"}}); err == nil || !strings.Contains(err.Error(), `no built-in tool "shell"`) {
		t.Errorf("an unknown tool: %v", err)
	}
}
