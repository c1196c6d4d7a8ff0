package eval

import (
	"fmt"
	"math"
	"strings"

	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/model/llava"
)

// VLMPass counts, for one kind of question, how often a model's greedy
// answer and its sampled answers are right: the headroom reinforcement
// learning has to sharpen (a question some sample gets right is one a
// reward can reach; one no sample gets right is not).
type VLMPass struct {
	K         int // answers sampled per question
	Questions int
	Greedy    int // questions whose greedy answer is right, as VLMShapes marks it
	// RightOf[c] counts the questions with c of their K sampled answers
	// right (c = 0..K).
	RightOf []int
	// Majority counts the questions whose most frequent sampled answer
	// (ties: the one drawn first) is right: self-consistency's vote.
	Majority int
	// Answers is the number of distinct right answers among the questions
	// (the kind's answer set on the split): Chance's guesses are among
	// them; 0 for "all".
	Answers int
	parts   []VLMPass // "all": the kinds'
}

// Chance is pass@j of a guesser who draws each answer uniformly among
// the kind's Answers: 1 - (1 - 1/Answers)^j; for "all", the mean over
// the questions of their kind's. With few answers (four shapes) pass@K
// is high by guessing alone; this is the floor to read it against.
func (p VLMPass) Chance(j int) float64 {
	if len(p.parts) > 0 {
		sum := 0.0
		for _, q := range p.parts {
			sum += float64(q.Questions) * q.Chance(j)
		}
		return sum / float64(p.Questions)
	}
	if p.Answers == 0 {
		return math.NaN()
	}
	return 1 - math.Pow(1-1/float64(p.Answers), float64(j))
}

// PassAt is the unbiased estimate of pass@j (Chen et al. 2021, j <= K):
// the chance that at least one of j answers drawn from the K sampled for
// a question is right, averaged over the questions. PassAt(1) is the
// sampled answers' accuracy, PassAt(K) the share of questions some
// sample got right.
func (p VLMPass) PassAt(j int) float64 {
	if p.Questions == 0 || j < 1 || j > p.K {
		return math.NaN()
	}
	sum := 0.0
	for c, n := range p.RightOf {
		// 1 - C(K-c, j) / C(K, j)
		miss := 1.0
		for i := 0; i < j; i++ {
			miss *= float64(p.K-c-i) / float64(p.K-i)
			if miss <= 0 {
				miss = 0
				break
			}
		}
		sum += float64(n) * (1 - miss)
	}
	return sum / float64(p.Questions)
}

// GreedyAcc is the share of questions whose greedy answer is right.
func (p VLMPass) GreedyAcc() float64 {
	if p.Questions == 0 {
		return math.NaN()
	}
	return float64(p.Greedy) / float64(p.Questions)
}

func (p *VLMPass) add(q VLMPass) {
	if p.RightOf == nil {
		p.K, p.RightOf = q.K, make([]int, q.K+1)
	}
	p.Questions += q.Questions
	p.Greedy += q.Greedy
	p.Majority += q.Majority
	for c, n := range q.RightOf {
		p.RightOf[c] += n
	}
}

// VLMPassAtK asks each question of VLMKinds about the first limit scenes
// (0: all) of a shapes world's split as VLMShapes asks it, after the
// model's own greedy description (describe), and marks the greedy answer
// (describe) and k sampled ones (sample) as VLMShapes marks them. It
// returns the counts per kind and, under "all", over every kind (its
// Answers every kind's together). Scenes
// the model describes with nothing are not asked (VLMTasks leaves them
// out too); noDescription counts them.
func VLMPassAtK(dir, split string, limit, k int, describe, sample VLMContinue, end string) (kinds map[string]VLMPass, noDescription int, err error) {
	if k < 1 {
		return nil, 0, fmt.Errorf("eval: %d samples a question: want at least 1", k)
	}
	kinds = map[string]VLMPass{}
	answers := map[string]map[string]bool{} // each kind's right answers, and "all"
	addAnswer := func(kind, a string) {
		if answers[kind] == nil {
			answers[kind] = map[string]bool{}
		}
		answers[kind][normAnswer(a)] = true
	}
	_, err = vlmAsked(dir, split, limit, describe, end, func() { noDescription++ }, func(r shapes.SceneRecord, img, desc string, qs []shapes.QA) error {
		for _, q := range qs {
			prompt := llava.Prompt(end, true, VLMDescribe, desc, q.Question.EN)
			one := VLMPass{K: k, Questions: 1, RightOf: make([]int, k+1)}
			g, err := describe(prompt, img)
			if err != nil {
				return err
			}
			if vlmRight(strings.TrimSpace(g), q.Answer.EN) {
				one.Greedy = 1
			}
			c := 0
			votes := map[string]int{}
			var first []string // the distinct answers, in the order drawn
			for range k {
				a, err := sample(prompt, img)
				if err != nil {
					return err
				}
				if vlmRight(a, q.Answer.EN) {
					c++
				}
				n := normAnswer(a)
				if votes[n] == 0 {
					first = append(first, n)
				}
				votes[n]++
			}
			one.RightOf[c] = 1
			top := first[0]
			for _, a := range first {
				if votes[a] > votes[top] {
					top = a
				}
			}
			if vlmRight(top, q.Answer.EN) {
				one.Majority = 1
			}
			addAnswer(q.Kind, q.Answer.EN)
			p := kinds[q.Kind]
			p.add(one)
			kinds[q.Kind] = p
			all := kinds["all"]
			all.add(one)
			kinds["all"] = all
		}
		return nil
	})
	all := kinds["all"]
	for kind, as := range answers {
		p := kinds[kind]
		p.Answers = len(as)
		kinds[kind] = p
		all.parts = append(all.parts, p)
	}
	if len(all.parts) > 0 {
		kinds["all"] = all
	}
	return kinds, noDescription, err
}
