package synth

import (
	"slices"
	"strconv"
)

// Annotator is a simulated annotator. It stands in for the people who rank
// a model's answers in InstructGPT's recipe, so that the demo and the tests
// can train reward models and run RLHF without people; people rank in the
// web app instead. It judges with [Task.Check]: a correct answer beats a
// wrong one, then one that follows the requested format beats one that
// does not, then the more helpful (shorter, no rambling) wins.
//
// Like people, it makes mistakes, at a rate set by Noise: [Annotator.Compare]
// answers the wrong way round with probability Noise, and [Annotator.Rank]
// swaps each adjacent pair of its true order with probability Noise. Its
// choices are a pure function of Seed and the inputs, so they reproduce.
type Annotator struct {
	Noise float64 // probability of a mistake, in [0, 1]
	Seed  int64
}

// utility orders responses: correctness first, then format, then
// helpfulness.
func utility(s Score) float64 {
	u := s.Helpful
	if s.Correct {
		u += 4
	}
	if s.FollowsFormat {
		u += 2
	}
	return u
}

// Compare orders two responses to the task the way a best-first sort
// does: negative when a is better, positive when b is better, 0 when the
// annotator sees no difference. With probability Noise a strict preference
// comes out the wrong way round; Compare(t, a, b) is always the negation of
// Compare(t, b, a).
func (an Annotator) Compare(t Task, a, b string) int {
	ua, ub := utility(t.Check(a)), utility(t.Check(b))
	c := 0
	switch {
	case ua > ub:
		c = -1
	case ua < ub:
		c = 1
	default:
		return 0
	}
	lo, hi := a, b
	if lo > hi {
		lo, hi = hi, lo
	}
	r := newRNG(an.Seed, hash64("compare", t.Key, t.User(), lo, hi))
	if r.chance(an.Noise) {
		c = -c
	}
	return c
}

// Rank orders the responses best first and returns their indices. Equal
// responses keep their order. Then, going down the list once, each adjacent
// pair is swapped with probability Noise, so on average Noise×(K-1) pairs
// come out in the wrong order.
func (an Annotator) Rank(t Task, responses []string) []int {
	u := make([]float64, len(responses))
	for i, r := range responses {
		u[i] = utility(t.Check(r))
	}
	order := make([]int, len(responses))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int {
		switch {
		case u[i] > u[j]:
			return -1
		case u[i] < u[j]:
			return 1
		}
		return 0
	})
	if an.Noise > 0 {
		parts := []string{"rank", t.Key, t.User(), strconv.Itoa(len(responses))}
		parts = append(parts, responses...)
		r := newRNG(an.Seed, hash64(parts...))
		for i := 0; i+1 < len(order); i++ {
			if r.chance(an.Noise) {
				order[i], order[i+1] = order[i+1], order[i]
			}
		}
	}
	return order
}

// Judge returns the score the annotator's ranking rests on, as one number:
// 4 for a correct response, plus 2 when it follows the format, plus its
// helpfulness in [0, 1]. Reward models trained on its rankings learn to
// reproduce this order.
func (an Annotator) Judge(t Task, response string) float64 {
	return utility(t.Check(response))
}
