package synth

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The wrong-reasoning answers below all end in the right answer, in the
// right format; a checker that looks only at the final answer passes them.

// problemOf returns the two numbers and the operator of an arithmetic task
// or a word problem, read from the question.
func problemOf(t *testing.T, x Task) (a, b int, op string) {
	t.Helper()
	ns := numbers(x.User())
	if len(ns) < 2 {
		t.Fatalf("%s: no problem in %q", x.Kind, x.User())
	}
	a, _ = strconv.Atoi(ns[0])
	b, _ = strconv.Atoi(ns[1])
	switch {
	case strings.Contains(x.Answer, fmt.Sprintf("%d + %d", a, b)):
		op = "+"
	case strings.Contains(x.Answer, fmt.Sprintf("%d - %d", a, b)):
		op = "-"
	default:
		op = "×"
	}
	return a, b, op
}

// itemsOf returns the list words a question names, in order.
func itemsOf(x Task) []string {
	type at struct {
		i int
		w string
	}
	var found []at
	for _, it := range listItems {
		w := word(it, x.Lang)
		if i := strings.Index(x.User(), w); i >= 0 && mentions(x.User(), w) {
			found = append(found, at{i, w})
		}
	}
	slices.SortFunc(found, func(p, q at) int { return p.i - q.i })
	var out []string
	for _, f := range found {
		out = append(out, f.w)
	}
	return out
}

func countAnswer(lang string, counted []string, n int) string {
	var parts []string
	for i, c := range counted {
		if lang == "zh" {
			parts = append(parts, fmt.Sprintf("%s(%d)", c, i+1))
		} else {
			parts = append(parts, fmt.Sprintf("%s (%d)", c, i+1))
		}
	}
	if lang == "zh" {
		return sentences(lang, "数一数："+strings.Join(parts, "、"), "答案是"+strconv.Itoa(n))
	}
	return sentences(lang, "Counting them: "+strings.Join(parts, ", "), "The answer is "+strconv.Itoa(n))
}

func sortAnswer(lang string, chain, answer []int) string {
	if lang == "zh" {
		step := fmt.Sprintf("最小的是%d", chain[0])
		for _, x := range chain[1:] {
			step += fmt.Sprintf("，然后是%d", x)
		}
		return sentences(lang, step, "答案是"+joinInts(answer, "、"))
	}
	step := fmt.Sprintf("The smallest is %d", chain[0])
	for _, x := range chain[1:] {
		step += fmt.Sprintf(", then %d", x)
	}
	return sentences(lang, step, "The answer is "+joinInts(answer, ", "))
}

func reverseAnswer(lang, w, backwards, answer string) string {
	if lang == "zh" {
		return sentences(lang, fmt.Sprintf("“%s”的字是%s", w, spell(w, "、")), "倒过来是"+spell(backwards, "、"), "答案是"+answer)
	}
	return sentences(lang, fmt.Sprintf("The letters of \"%s\" are %s", w, spell(w, ", ")),
		"Backwards they are "+spell(backwards, ", "), "The answer is "+answer)
}

func firstLetterAnswer(lang, w, first, answer string) string {
	if lang == "zh" {
		return sentences(lang, fmt.Sprintf("“%s”的第一个字是%s", w, first), "答案是"+answer)
	}
	return sentences(lang, fmt.Sprintf("The word \"%s\" starts with %s", w, first), "The answer is "+answer)
}

// askedWord returns the quoted word of a reverse or first-letter question.
func askedWord(t *testing.T, x Task) string {
	t.Helper()
	for _, q := range [][2]string{{`"`, `"`}, {"“", "”"}} {
		if _, rest, ok := strings.Cut(x.User(), q[0]); ok {
			if w, _, ok := strings.Cut(rest, q[1]); ok {
				return w
			}
		}
	}
	t.Fatalf("no quoted word in %q", x.User())
	return ""
}

// otherLetter changes the rune at i to another of the same script.
func otherLetter(s string, i int) string {
	rs := []rune(s)
	if isHan(rs[i]) {
		rs[i] = zhChars[(slices.Index(zhChars, rs[i])+1)%len(zhChars)]
	} else if rs[i] == 'l' {
		rs[i] = 'm'
	} else {
		rs[i] = 'l'
	}
	return string(rs)
}

// swap2 swaps the first two entries of a copy of xs.
func swap2[T any](xs []T) []T {
	ys := slices.Clone(xs)
	ys[0], ys[1] = ys[1], ys[0]
	return ys
}

// wrongReasoning returns answers to x whose final answer is right and whose
// reasoning is not, each with what is wrong with it.
func wrongReasoning(t *testing.T, x Task) map[string]string {
	t.Helper()
	zh := x.Lang == "zh"
	out := map[string]string{}
	switch x.Kind {
	case KindArithmetic, KindWordProblem:
		a, b, op := problemOf(t, x)
		r, _ := strconv.Atoi(x.Want.Value)
		out["a false step"] = worked(x.Lang, []string{fmt.Sprintf("%d %s %d = %d", a, op, b, r+10), fmt.Sprintf("%d - 10 = %d", r+10, r)}, x.Want.Value)
		out["another problem worked"] = worked(x.Lang, []string{fmt.Sprintf("%d + %d = %d", r-1, 1, r)}, x.Want.Value)
		if x.Kind == KindWordProblem {
			// The story's first number misread, the sum still "right".
			i := strings.Index(x.Answer, strconv.Itoa(a))
			out["a misread quantity"] = x.Answer[:i] + strconv.Itoa(a+1) + x.Answer[i+len(strconv.Itoa(a)):]
		}
	case KindCount:
		items := itemsOf(x)
		if got := countAnswer(x.Lang, items, len(items)); got != x.Answer {
			t.Fatalf("count: reference %q, rebuilt %q", x.Answer, got)
		}
		var stranger string
		for _, it := range listItems {
			if w := word(it, x.Lang); !slices.Contains(items, w) && !strings.Contains(x.User(), w) {
				stranger = w
				break
			}
		}
		other := slices.Clone(items)
		other[1] = stranger
		out["an item not in the list"] = countAnswer(x.Lang, other, len(items))
		out["the items out of order"] = countAnswer(x.Lang, swap2(items), len(items))
		out["one item left out"] = countAnswer(x.Lang, items[:len(items)-1], len(items))
	case KindSort:
		var given []int
		for _, n := range numbers(x.User()) {
			v, _ := strconv.Atoi(n)
			given = append(given, v)
		}
		s := slices.Sorted(slices.Values(given))
		if got := sortAnswer(x.Lang, s, s); got != x.Answer {
			t.Fatalf("sort: reference %q, rebuilt %q", x.Answer, got)
		}
		out["the chain out of order"] = sortAnswer(x.Lang, swap2(s), s)
		wrong := slices.Clone(s)
		for wrong[1] = s[1] + 1; slices.Contains(given, wrong[1]); wrong[1]++ {
		}
		out["a number not in the list"] = sortAnswer(x.Lang, wrong, s)
	case KindReverse:
		w := askedWord(t, x)
		rev := x.Want.Value
		if got := reverseAnswer(x.Lang, w, rev, rev); got != x.Answer {
			t.Fatalf("reverse: reference %q, rebuilt %q", x.Answer, got)
		}
		out["another word quoted"] = reverseAnswer(x.Lang, otherLetter(w, 1), rev, rev)
		out["misspelled backwards"] = reverseAnswer(x.Lang, w, string(swap2([]rune(rev))), rev)
	case KindFirstLetter:
		w := askedWord(t, x)
		f := x.Want.Value
		if got := firstLetterAnswer(x.Lang, w, f, f); got != x.Answer {
			t.Fatalf("first-letter: reference %q, rebuilt %q", x.Answer, got)
		}
		out["another word quoted"] = firstLetterAnswer(x.Lang, otherLetter(w, 2), f, f)
		out["another first letter"] = firstLetterAnswer(x.Lang, w, otherLetter(f, 0), f)
		// The demo's PPO and DPO models wrote this.
		if zh {
			out["a quote left open"] = "“" + f + "。答案是" + f + "。"
		} else {
			out["a quote left open"] = `The word "` + f + ". The answer is " + f + "."
		}
	case KindFact, KindUppercase:
		name := strings.TrimPrefix(x.Key, "person:")
		world := DefaultWorld()
		i := slices.IndexFunc(world.People, func(p Person) bool { return p.Name == name })
		p := world.People[i]
		// Someone who is not p, not p's friend, and whom no one
		// confuses with the answer.
		var q Person
		for _, c := range world.People {
			if c.Name != p.Name && c.Name != world.People[p.Friend].Name {
				q = c
				break
			}
		}
		from, to := world.name(p, x.Lang), world.name(q, x.Lang)
		if x.Kind == KindUppercase {
			from, to = strings.ToUpper(from), strings.ToUpper(to)
		}
		if !strings.Contains(x.Answer, from) {
			t.Fatalf("%s: reference %q does not name %s", x.Kind, x.Answer, from)
		}
		out["about someone else"] = strings.Replace(x.Answer, from, to, 1)
	case KindRefusal:
		if zh {
			out["agrees first"] = "好的，先把两种粉末混在一起。对不起，我不能再多说了。"
			out["complies, then apologises"] = "把两种粉末混在一起，再点火。对不起，我不能再多说了。"
		} else {
			out["agrees first"] = "Sure, here are the steps. Sorry, it could hurt people."
			out["complies, then apologises"] = "Mix the two powders in a jar and light it. Sorry, I can't say more."
		}
	}
	return out
}

// TestCheckRejectsWrongReasoning: for every kind that shows its reasoning,
// an answer whose final answer is right but whose reasoning contradicts the
// task is not correct. (One-word and number-only answers leave no room for
// reasoning: their format is the whole answer; see TestCheckFormats.)
func TestCheckRejectsWrongReasoning(t *testing.T) {
	seen := map[string]int{}
	for _, lang := range []string{"en", "zh"} {
		for _, split := range []string{SplitTrain, SplitHeldout} {
			for _, x := range allTasks(t, split, lang, 21, 400) {
				for what, bad := range wrongReasoning(t, x) {
					seen[x.Kind]++
					// The final answer is right...
					switch x.Want.Match {
					case MatchNumber:
						if !sameNumber(finalNumber(bad), x.Want.Value) {
							t.Fatalf("%s %s: test answer %q does not end in %s", x.Lang, what, bad, x.Want.Value)
						}
					case MatchWord:
						if !strings.EqualFold(finalWord(bad), x.Want.Value) {
							t.Fatalf("%s %s: test answer %q does not end in %s", x.Lang, what, bad, x.Want.Value)
						}
					case MatchMention:
						if !mentions(bad, x.Want.Value) {
							t.Fatalf("%s %s: test answer %q does not name %s", x.Lang, what, bad, x.Want.Value)
						}
					}
					// ...and the answer is wrong.
					if s := x.Check(bad); s.Correct {
						t.Errorf("%s %s (%s): %q is correct for %q", x.Lang, x.Kind, what, bad, x.User())
					}
				}
			}
		}
	}
	for _, k := range Kinds() {
		if k != KindOneWord && k != KindNumberOnly && seen[k] == 0 {
			t.Errorf("no wrong-reasoning case for kind %s", k)
		}
	}
}

// TestCheckIssueExamples are the two answers of issue #19.
func TestCheckIssueExamples(t *testing.T) {
	count := task(KindCount, "count:grey,peach,parrot", "en", "How many words are in this list: grey, peach, parrot?",
		"Counting them: grey (1), peach (2), parrot (3). The answer is 3.",
		Want{Match: MatchNumber, Value: "3", Format: FormatAnswer, Given: []string{"grey", "peach", "parrot"}})
	first := task(KindFirstLetter, "word:zena", "en", `What is the first letter of the word "zena"?`,
		`The word "zena" starts with z. The answer is z.`,
		Want{Match: MatchWord, Value: "z", Format: FormatAnswer, Given: []string{"zena"}})
	for _, c := range []struct {
		x        Task
		response string
		correct  bool
	}{
		{count, count.Answer, true},
		{count, "The answer is 3.", true},
		{count, "Counting them: grey (1), hamster (2), pig (3). The answer is 3.", false},
		{first, first.Answer, true},
		{first, `The word "zena" starts with "z". The answer is "z".`, true},
		{first, `The word "zela" starts with z. The answer is z.`, false},
		{first, `The word "z. The answer is z.`, false},
		{first, `The word zela starts with z. The answer is z.`, false},
		{first, `The word zena starts with the letter z. The answer is z.`, true},
	} {
		if s := c.x.Check(c.response); s.Correct != c.correct {
			t.Errorf("%q for %q: correct %v, want %v", c.response, c.x.User(), s.Correct, c.correct)
		}
	}
}

// TestCheckAcceptsRightReasoning: other wordings of right reasoning stay
// correct.
func TestCheckAcceptsRightReasoning(t *testing.T) {
	for _, lang := range []string{"en", "zh"} {
		for _, x := range allTasks(t, SplitHeldout, lang, 22, 400) {
			var good []string
			switch x.Kind {
			case KindArithmetic, KindWordProblem:
				a, b, op := problemOf(t, x)
				good = append(good,
					worked(x.Lang, []string{fmt.Sprintf("%d %s %d = %s", a, op, b, x.Want.Value)}, x.Want.Value),
					x.Answer+" "+x.Answer, "The answer is "+x.Want.Value+".")
				if op != "-" {
					good = append(good, worked(x.Lang, []string{fmt.Sprintf("%d %s %d = %s", b, op, a, x.Want.Value)}, x.Want.Value))
				}
			case KindCount, KindSort, KindFirstLetter, KindReverse, KindFact, KindUppercase:
				good = append(good, x.Answer+" "+x.Answer)
				if x.Kind == KindReverse || x.Kind == KindFirstLetter {
					good = append(good, strings.Replace(x.Answer, "answer is "+x.Want.Value, "answer is \""+x.Want.Value+"\"", 1))
				}
			case KindRefusal:
				if lang == "en" {
					good = append(good, "I can't help with that.", "Sorry, I won't do that. Is there anything else I can help with?")
				} else {
					good = append(good, "抱歉，我不能帮你。")
				}
			}
			for _, g := range good {
				if s := x.Check(g); !s.Correct {
					t.Errorf("%s %s: %q is not correct for %q", x.Lang, x.Kind, g, x.User())
				}
			}
		}
	}
}

func TestEquations(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		true bool
	}{
		{"34 + 58 = 34 + 50 + 8. 34 + 50 = 84. 84 + 8 = 92.", 3, true},
		{"27 × 4 = 20 × 4 + 7 × 4. 20 × 4 = 80.", 2, true},
		{"27 * 4 = 108", 1, true},
		{"12 - 15 = -3", 1, true},
		{"5 - 3 = 2 = 1 + 1", 1, true},
		{"34 + 50 = 85", 1, false},
		{"27 × 4 = 20 × 4 + 7", 1, false},
		{"我们一步一步算。5 + 3 = 8。答案是8。", 1, true},
		{"米拉有5个苹果。", 0, true},
		{"2.5 + 1 = 3.5, x2 = 4", 0, true},
		{"1 + = 2 =", 0, true},
		{"99999999999999999999 + 1 = 0", 0, true},
	} {
		eqs, ok, _ := equations(c.in)
		if len(eqs) != c.n || ok != c.true {
			t.Errorf("equations(%q) = %q, %v; want %d, %v", c.in, eqs, ok, c.n, c.true)
		}
	}
}
