package synth

import (
	"fmt"

	"github.com/golem-ml/golem/data"
)

// Demonstrations returns the tasks o asks for as instruction-tuning
// examples, each prompt with its reference answer, sourced "builtin:N"
// (the train split) or "builtin-heldout:N": what `--data builtin` trains
// and validates on.
func Demonstrations(o TaskOptions) ([]data.Example, error) {
	tasks, err := Tasks(o)
	if err != nil {
		return nil, fmt.Errorf("built-in data: %w", err)
	}
	src := "builtin"
	if o.Split == SplitHeldout {
		src = "builtin-heldout"
	}
	out := make([]data.Example, len(tasks))
	for i, tk := range tasks {
		out[i] = data.Example{Kind: data.PromptCompletion, Prompt: tk.Prompt,
			Completion: []data.Message{{Role: "assistant", Content: tk.Answer}}, Source: fmt.Sprintf("%s:%d", src, i+1)}
	}
	return out, nil
}

// Scores are a response's rewards by name, as programs compute them for
// reinforcement learning with verifiable rewards: "correct" (1 for the
// right answer, its reasoning right too, else 0), "format" (1 when the
// response has the requested shape) and "task" (Reward: correctness,
// format and brevity in one number).
func (t Task) Scores(response string) map[string]float64 {
	c := t.Check(response)
	b := func(ok bool) float64 {
		if ok {
			return 1
		}
		return 0
	}
	return map[string]float64{"correct": b(c.Correct), "format": b(c.FollowsFormat), "task": t.Reward(response)}
}
