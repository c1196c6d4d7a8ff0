package eval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tokenizer"
)

// Problem is an exact-match generation item: a question, its worked
// solution (for chain-of-thought shots) and its final answer.
type Problem struct {
	ID       string
	Question string
	Solution string // reasoning, calculator annotations removed
	Answer   string // the final answer, as written after "####"
}

var calcNote = regexp.MustCompile(`<<[^>]*>>`)

// ReadGSM8K reads GSM8K-style JSON lines {"question", "answer"} whose
// answer ends with "#### FINAL".
func ReadGSM8K(path string) ([]Problem, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var ps []Problem
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		where := fmt.Sprintf("%s:%d", path, line)
		var rec struct {
			Question *string `json:"question"`
			Answer   *string `json:"answer"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("eval: %s: %w", where, err)
		}
		if rec.Question == nil || rec.Answer == nil {
			return nil, fmt.Errorf("eval: %s: \"question\" and \"answer\" are required", where)
		}
		i := strings.LastIndex(*rec.Answer, "####")
		if i < 0 {
			return nil, fmt.Errorf("eval: %s: \"answer\" has no \"#### FINAL\" line", where)
		}
		final := strings.TrimSpace((*rec.Answer)[i+4:])
		if final == "" {
			return nil, fmt.Errorf("eval: %s: empty final answer after ####", where)
		}
		ps = append(ps, Problem{ID: where, Question: *rec.Question, Answer: final,
			Solution: strings.TrimSpace(calcNote.ReplaceAllString((*rec.Answer)[:i], ""))})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("eval: %s: %w", path, err)
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("eval: %s: no problems", path)
	}
	return ps, nil
}

// ExactOptions configure ExactMatch.
type ExactOptions struct {
	GenOptions
	Shots []Problem // solved examples before each question (k-shot)
	CoT   bool      // shots show their reasoning ("Let's think step by step")
	Chat  bool      // ask through the chat template instead of plain text
}

// ExactResult is the accuracy of an exact-match evaluation.
type ExactResult struct {
	N         int      `json:"n"`
	Correct   int      `json:"correct"`
	Acc       float64  `json:"accuracy"`
	Responses []string `json:"-"`
}

// String formats the result as "accuracy=0.012 (16/1319)".
func (r ExactResult) String() string {
	return fmt.Sprintf("accuracy=%.3f (%d/%d)", r.Acc, r.Correct, r.N)
}

func shotText(p Problem, cot bool) string {
	if cot {
		return "Question: " + p.Question + "\nAnswer: Let's think step by step. " + p.Solution + " The answer is " + p.Answer + ".\n\n"
	}
	return "Question: " + p.Question + "\nAnswer: The answer is " + p.Answer + ".\n\n"
}

// PromptFor renders the prompt of a problem: the shots, then the question.
func (o *ExactOptions) PromptFor(p Problem) string {
	var sb strings.Builder
	for _, s := range o.Shots {
		sb.WriteString(shotText(s, o.CoT))
	}
	sb.WriteString("Question: " + p.Question + "\nAnswer:")
	if o.CoT {
		sb.WriteString(" Let's think step by step.")
	}
	return sb.String()
}

var numberRe = regexp.MustCompile(`-?[\d,]*\.?\d+`)

// FinalNumber extracts the answer of a response: the number after the last
// "The answer is" or "####", else the last number; commas and a trailing
// ".0" are dropped. Text after a new "Question:" (the model continuing the
// pattern) is ignored.
func FinalNumber(s string) string {
	if i := strings.Index(s, "Question:"); i >= 0 {
		s = s[:i]
	}
	low := strings.ToLower(s)
	for _, marker := range []string{"the answer is", "####"} {
		if i := strings.LastIndex(low, marker); i >= 0 {
			if n := numberRe.FindString(s[i+len(marker):]); n != "" {
				return normNumber(n)
			}
		}
	}
	all := numberRe.FindAllString(s, -1)
	if len(all) == 0 {
		return ""
	}
	return normNumber(all[len(all)-1])
}

func normNumber(n string) string {
	n = strings.ReplaceAll(n, ",", "")
	if strings.Contains(n, ".") {
		n = strings.TrimRight(strings.TrimRight(n, "0"), ".")
	}
	return n
}

// ExactMatch generates an answer to each problem (greedy) and counts those
// whose final number equals the reference.
func ExactMatch(m *gpt.Model, tok *tokenizer.Tokenizer, ps []Problem, o ExactOptions) (ExactResult, error) {
	o.defaults()
	prompts := make([][]int, len(ps))
	for i, p := range ps {
		text := o.PromptFor(p)
		if o.Chat {
			ids, _, err := tok.RenderChat([]tokenizer.Message{{Role: "user", Content: text}}, true)
			if err != nil {
				return ExactResult{}, err
			}
			prompts[i] = ids
		} else {
			prompts[i] = tok.Encode(text)
		}
		// Keep the end of over-long prompts, leaving room to answer.
		if room := m.Config.Context - o.MaxTokens; room > 0 && len(prompts[i]) > room {
			prompts[i] = prompts[i][len(prompts[i])-room:]
		}
	}
	outs, err := GreedyBatched(m, o.Soft, prompts, o.MaxTokens, o.Batch, tok.EndIDs())
	if err != nil {
		return ExactResult{}, err
	}
	r := ExactResult{N: len(ps), Responses: make([]string, len(ps))}
	for i, ids := range outs {
		r.Responses[i] = tok.Decode(ids)
		if FinalNumber(r.Responses[i]) == normNumber(ps[i].Answer) {
			r.Correct++
		}
	}
	r.Acc = float64(r.Correct) / float64(max(r.N, 1))
	return r, nil
}
