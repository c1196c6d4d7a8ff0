package shapes

import (
	"math/bits"
	"slices"
	"strings"
)

// describePrefix begins the instruct data's descriptions (describeAnswer).
const describePrefix = "The image shows "

// CorrectDescription is what an annotator who sees the image makes of a
// model's description by the smallest edit (RLHF-V's fine-grained
// correction): the description's objects, each "a SIZE COLOUR SHAPE
// PLACE" as the listing caption words it, are matched to the scene's
// objects with the fewest wrong attributes (size, colour, shape, place;
// a phrase that is no such object counts as four), and each matched
// phrase's wrong words are replaced by the true ones, in the model's
// order and with its commas and "and"s. Only when the description names
// more objects than there are, or fewer, is a phrase dropped (the worst
// matched) or the missing objects added at the end, and the list is
// then joined as the caption joins it; sameObjects reports that no
// phrase was added or dropped, so the two texts differ only in attribute
// words. The correction scores 1 (DescriptionScore) and begins "The
// image shows"; the scene's own description is its own correction.
func (s Scene) CorrectDescription(text string) (corrected string, sameObjects bool) {
	body := strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(text), describePrefix)), ".")
	phrases, seps := splitList(body)
	pred := make([]*Object, len(phrases))
	for i, p := range phrases {
		if o, ok := parsePhrase(p); ok {
			pred[i] = &o
		}
	}
	match := s.matchObjects(pred)
	out := make([]string, 0, len(s.Objects))
	used := make([]bool, len(s.Objects))
	for i, j := range match {
		if j < 0 {
			continue
		}
		used[j] = true
		out = append(out, objectPhrase(s.Objects[j]))
		if pred[i] != nil && *pred[i] == s.Objects[j] {
			out[len(out)-1] = phrases[i] // as written
		}
	}
	for j, o := range s.Objects {
		if !used[j] {
			out = append(out, objectPhrase(o))
		}
	}
	if len(phrases) == len(s.Objects) {
		var b strings.Builder
		for i, p := range out {
			if i > 0 {
				b.WriteString(seps[i-1])
			}
			b.WriteString(p)
		}
		return describePrefix + b.String() + ".", true
	}
	return describeAnswer(joinEN(out)), false
}

// objectPhrase is o as the listing caption words it.
func objectPhrase(o Object) string { return article(o.fullEN()) + " " + posPhraseEN[o.Cell] }

// splitList splits a list joined by ", " and " and " into its items and
// the separators between them.
func splitList(s string) (items, seps []string) {
	for {
		i, sep := -1, ""
		for _, d := range []string{", ", " and "} {
			if k := strings.Index(s, d); k >= 0 && (i < 0 || k < i) {
				i, sep = k, d
			}
		}
		if i < 0 {
			return append(items, s), seps
		}
		items, seps = append(items, s[:i]), append(seps, sep)
		s = s[i+len(sep):]
	}
}

// parsePhrase reads "a small red circle in the top left corner" (the
// listing caption's words for an object).
func parsePhrase(p string) (Object, bool) {
	w := strings.Fields(p)
	if len(w) < 5 || (w[0] != "a" && w[0] != "an") || (w[1] != "small" && w[1] != "large") {
		return Object{}, false
	}
	c, k := slices.Index(colourEN[:], w[2]), slices.Index(kindEN[:], w[3])
	cell := slices.Index(posPhraseEN[:], strings.Join(w[4:], " "))
	if c < 0 || k < 0 || cell < 0 {
		return Object{}, false
	}
	return Object{Kind: Kind(k), Colour: Colour(c), Large: w[1] == "large", Cell: cell}, true
}

// matchObjects matches the described objects pred (nil: a phrase that
// names no object) to the scene's at the least cost: a matched pair
// costs its wrong attributes, a phrase that names no object 4, and so
// does each described object left unmatched (dropped) and each of the
// scene's (added). It returns, for each of pred, the index of its
// object in s.Objects or -1.
func (s Scene) matchObjects(pred []*Object) []int {
	n := len(s.Objects)
	full := 1<<n - 1
	cost := func(p *Object, o Object) int {
		if p == nil {
			return 4
		}
		c := 0
		for _, diff := range []bool{p.Large != o.Large, p.Colour != o.Colour, p.Kind != o.Kind, p.Cell != o.Cell} {
			if diff {
				c++
			}
		}
		return c
	}
	// best[i][mask]: the least cost of pred[i:] given the scene's objects
	// in mask are taken; the objects never taken are added (4 each).
	best := make([][]int, len(pred)+1)
	for i := range best {
		best[i] = make([]int, full+1)
	}
	for mask := range full + 1 {
		best[len(pred)][mask] = 4 * (n - bits.OnesCount(uint(mask)))
	}
	for i := len(pred) - 1; i >= 0; i-- {
		for mask := range full + 1 {
			b := 4 + best[i+1][mask] // dropped
			for j := range n {
				if mask&(1<<j) == 0 {
					b = min(b, cost(pred[i], s.Objects[j])+best[i+1][mask|1<<j])
				}
			}
			best[i][mask] = b
		}
	}
	match := make([]int, len(pred))
	mask := 0
	for i := range pred {
		match[i] = -1
		if best[i][mask] == 4+best[i+1][mask] {
			continue
		}
		for j := range n {
			if mask&(1<<j) == 0 && best[i][mask] == cost(pred[i], s.Objects[j])+best[i+1][mask|1<<j] {
				match[i], mask = j, mask|1<<j
				break
			}
		}
	}
	return match
}
