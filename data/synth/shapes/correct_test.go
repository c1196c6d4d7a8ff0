package shapes

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// The correction of a description replaces only its wrong attribute
// words, keeps the model's order and joins, and scores 1; a phrase is
// dropped or added only when the number of objects is wrong.
func TestCorrectDescription(t *testing.T) {
	s := Scene{Objects: []Object{{Kind: Circle, Colour: Red, Cell: 0}, {Kind: Square, Colour: Blue, Large: true, Cell: 5}}}
	for _, c := range []struct {
		text, want string
		same       bool
	}{
		// The scene's own description, and the same in the other order with "and".
		{"The image shows a small red circle in the top left corner and a large blue square on the right.",
			"The image shows a small red circle in the top left corner and a large blue square on the right.", true},
		{"The image shows a large blue square on the right and a small red circle in the top left corner.",
			"The image shows a large blue square on the right and a small red circle in the top left corner.", true},
		// One colour wrong; a place and a size wrong (the objects matched by what is right of them).
		{"The image shows a large green square on the right and a small red circle in the top left corner.",
			"The image shows a large blue square on the right and a small red circle in the top left corner.", true},
		{"The image shows a small red circle at the bottom, a small blue square on the right.",
			"The image shows a small red circle in the top left corner, a large blue square on the right.", true},
		// A phrase that names no object is rewritten as the object it stands for.
		{"The image shows a small red circle in the top left corner and a large blue1",
			"The image shows a small red circle in the top left corner and a large blue square on the right.", true},
		// One too many: the worst matched is dropped; one too few: the missing one added.
		{"The image shows a small red circle in the top left corner, a small red circle in the centre and a large blue square on the right.",
			"The image shows a small red circle in the top left corner and a large blue square on the right.", false},
		{"The image shows a large blue square on the right.",
			"The image shows a large blue square on the right and a small red circle in the top left corner.", false},
		{"", "The image shows a small red circle in the top left corner and a large blue square on the right.", false},
	} {
		got, same := s.CorrectDescription(c.text)
		if got != c.want || same != c.same {
			t.Errorf("%q:\n corrected %q (same objects %v)\n want      %q (%v)", c.text, got, same, c.want, c.same)
		}
		if sc := s.DescriptionScore(got); sc != 1 {
			t.Errorf("%q: the correction %q scores %v, want 1", c.text, got, sc)
		}
	}
}

// Over random scenes, with one of each object's attributes changed at
// random: the scene's own description is its own correction, and the
// changed one's scores 1 and differs from it in attribute words only.
func TestCorrectDescriptionRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	skeleton := func(text string) string {
		for _, p := range posPhraseEN {
			text = strings.ReplaceAll(text, " "+p, " <place>")
		}
		w := strings.Fields(text)
		for i, x := range w {
			for _, vocab := range [][]string{colourEN[:], kindEN[:], {"small", "large"}} {
				for _, v := range vocab {
					if x == v {
						w[i] = "<attr>"
					}
				}
			}
		}
		return strings.Join(w, " ")
	}
	for i := range 300 {
		s := Generate(7, Train, i)
		truth := describeAnswer(s.Captions()[0].EN)
		if got, same := s.CorrectDescription(truth); got != truth || !same {
			t.Fatalf("scene %d: the truth %q corrected to %q", i, truth, got)
		}
		wrong := Scene{Objects: append([]Object(nil), s.Objects...)}
		o := &wrong.Objects[r.IntN(len(wrong.Objects))]
		switch r.IntN(4) {
		case 0:
			o.Colour = otherColour(o.Colour, r)
		case 1:
			o.Kind = Kind((int(o.Kind) + 1) % int(numKinds))
		case 2:
			o.Large = !o.Large
		case 3:
			o.Cell = (o.Cell + 1 + r.IntN(8)) % 9
		}
		text := describeAnswer(wrong.Captions()[0].EN)
		got, same := s.CorrectDescription(text)
		if !same || s.DescriptionScore(got) != 1 {
			t.Fatalf("scene %d: %q corrected to %q (same objects %v, score %v)", i, text, got, same, s.DescriptionScore(got))
		}
		if skeleton(got) != skeleton(text) {
			t.Fatalf("scene %d: %q corrected to %q: more than attribute words changed", i, text, got)
		}
		if got == text && s.DescriptionScore(text) < 1 {
			t.Fatalf("scene %d: %q (score %v) left as it was", i, text, s.DescriptionScore(text))
		}
	}
}
