package shapes

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// Simulated image rankings: for each scene, requests with K candidate
// answers ranked by how right they are about the scene, as an annotator
// who sees the image would rank them (golem data shapes writes them as
// {split}_rankings.jsonl and every ranked pair as {split}_prefs.jsonl).
//
// A description ("Describe the image.") is ranked: the scene's true
// description; the same with one object's colour changed; with that
// object's colour and shape changed; another scene's description. Each
// question of the scene (asked, as golem eval vlm asks it, after the true
// description) is ranked: the right answer; a wrong answer of the same
// kind (another colour, shape, place; a count off by one; yes for no);
// the scene's description, an answer of the wrong form (what a model that
// has not learned to answer questions says). English only.

// Ranked is one request about a scene and its answers, best first.
type Ranked struct {
	Kind string // "describe" or the question's kind
	// Turns are the conversation before the answer: user and assistant
	// turns alternating, ending with the user's; the first holds
	// "<image>\n" before its text.
	Turns   []string
	Answers []string // best first, all different
}

// describeAnswer is the instruct data's answer to "Describe the image."
func describeAnswer(caption string) string { return "The image shows " + caption + "." }

// Rankings returns the scene's ranked requests; other is another scene of
// the split (whose description is the worst one), r draws the wrong
// answers.
func (s Scene) Rankings(seed uint64, other Scene, r *rand.Rand) []Ranked {
	rec := s.Record(seed, "")
	ins := rec.Instructions[0] // describe
	truth := ins.Answer.EN
	first := "<image>\n" + ins.Question.EN
	out := []Ranked{{Kind: "describe", Turns: []string{first}, Answers: []string{truth}}}
	// One object's colour changed, then also its shape.
	i := r.IntN(len(s.Objects))
	wrong := slices.Clone(s.Objects)
	wrong[i].Colour = otherColour(s.Objects[i].Colour, r)
	one := describeAnswer(Scene{Objects: wrong}.Captions()[0].EN)
	wrong[i].Kind = Kind((int(wrong[i].Kind) + 1 + r.IntN(int(numKinds)-1)) % int(numKinds))
	two := describeAnswer(Scene{Objects: wrong}.Captions()[0].EN)
	far := describeAnswer(other.Captions()[0].EN)
	for _, a := range []string{one, two, far} {
		if !slices.Contains(out[0].Answers, a) {
			out[0].Answers = append(out[0].Answers, a)
		}
	}
	for _, qa := range rec.Questions {
		w, ok := wrongAnswer(qa, r)
		if !ok {
			continue
		}
		answers := []string{qa.Answer.EN, w}
		if !slices.Contains(answers, truth) {
			answers = append(answers, truth)
		}
		out = append(out, Ranked{Kind: qa.Kind, Turns: []string{first, truth, qa.Question.EN}, Answers: answers})
	}
	return out
}

func otherColour(c Colour, r *rand.Rand) Colour {
	return Colour((int(c) + 1 + r.IntN(int(numColours)-1)) % int(numColours))
}

// wrongAnswer is an answer to qa of its kind that is wrong.
func wrongAnswer(qa QA, r *rand.Rand) (string, bool) {
	a := qa.Answer.EN
	switch qa.Kind {
	case "colour":
		c := slices.Index(colourEN[:], a)
		if c < 0 {
			return "", false
		}
		return colourEN[otherColour(Colour(c), r)], true
	case "shape":
		k := slices.Index(kindEN[:], a)
		if k < 0 {
			return "", false
		}
		return kindEN[(k+1+r.IntN(int(numKinds)-1))%int(numKinds)], true
	case "position":
		p := slices.Index(posEN[:], a)
		if p < 0 {
			return "", false
		}
		return posEN[(p+1+r.IntN(8))%9], true
	case "count":
		var n int
		if _, err := fmt.Sscan(a, &n); err != nil {
			return "", false
		}
		if n == 0 || (n < 4 && r.IntN(2) == 0) {
			return fmt.Sprint(n + 1), true
		}
		return fmt.Sprint(n - 1), true
	case "exists", "relation":
		if strings.EqualFold(a, "yes") {
			return "no", true
		}
		return "yes", true
	}
	return "", false
}

// RankingRNG returns the generator Rankings draws from for a scene, a
// function of (seed, split, index) as the scene is.
func RankingRNG(seed uint64, s Scene) *rand.Rand {
	return rand.New(rand.NewPCG(seed^0x7a4c5eed, uint64(s.Split)<<40|uint64(s.Index)))
}

// DescriptionScore is how right text is as a description of the scene,
// as an annotator who sees the image would mark it, from 0 to 1: the
// mean of three marks, each 0 to 1: the share of the scene's objects
// whose colour and shape it names together ("red circle"), the share it
// names with their place as the listing caption gives it ("red circle in
// the top left corner"), and 1 when it describes as many objects as there
// are (each object is "a small ..." or "a large ...": the words small and
// large counted), else 0. The scene's own description ("The image shows"
// and its listing caption) scores 1. English only; case is ignored.
func (s Scene) DescriptionScore(text string) float64 {
	t := " " + strings.Join(strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return r == ' ' || r == ',' || r == '.' || r == '\n' || r == '\t'
	}), " ") + " "
	named, placed, described := 0, 0, 0
	for _, w := range strings.Fields(t) {
		if w == "small" || w == "large" {
			described++
		}
	}
	for _, o := range s.Objects {
		name := " " + o.nameEN() + " "
		if strings.Contains(t, name) {
			named++
		}
		if strings.Contains(t, name+posPhraseEN[o.Cell]+" ") {
			placed++
		}
	}
	n := float64(len(s.Objects))
	if n == 0 {
		return 0
	}
	count := 0.0
	if described == len(s.Objects) {
		count = 1
	}
	return (float64(named)/n + float64(placed)/n + count) / 3
}
