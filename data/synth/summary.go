package synth

import "fmt"

// Result sums up the scores of many responses.
type Result struct {
	N             int     `json:"n"`
	Correct       float64 `json:"correct"`        // fraction correct: task success
	FollowsFormat float64 `json:"follows_format"` // fraction in the requested format
	Helpful       float64 `json:"helpful"`        // mean helpfulness
	Reward        float64 `json:"reward"`         // mean Task.Reward
}

// String formats the result as "correct=0.613 format=0.820 helpful=0.91 reward=0.78 n=200".
func (r Result) String() string {
	return fmt.Sprintf("correct=%.3f format=%.3f helpful=%.2f reward=%.3f n=%d", r.Correct, r.FollowsFormat, r.Helpful, r.Reward, r.N)
}

// Evaluate checks responses[i] against tasks[i] and returns the result over
// all of them and by kind. It is an error for the lengths to differ.
func Evaluate(tasks []Task, responses []string) (Result, map[string]Result, error) {
	if len(tasks) != len(responses) {
		return Result{}, nil, fmt.Errorf("synth: %d tasks but %d responses", len(tasks), len(responses))
	}
	var all Result
	byKind := map[string]Result{}
	add := func(r *Result, s Score) {
		r.N++
		if s.Correct {
			r.Correct++
		}
		if s.FollowsFormat {
			r.FollowsFormat++
		}
		r.Helpful += s.Helpful
		r.Reward += s.Reward()
	}
	for i, t := range tasks {
		s := t.Check(responses[i])
		add(&all, s)
		k := byKind[t.Kind]
		add(&k, s)
		byKind[t.Kind] = k
	}
	mean := func(r Result) Result {
		if r.N > 0 {
			n := float64(r.N)
			r.Correct, r.FollowsFormat, r.Helpful, r.Reward = r.Correct/n, r.FollowsFormat/n, r.Helpful/n, r.Reward/n
		}
		return r
	}
	for k, r := range byKind {
		byKind[k] = mean(r)
	}
	return mean(all), byKind, nil
}
