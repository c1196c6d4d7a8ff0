package synth

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// consistent reports whether the reasoning of a response agrees with what
// the task gives (Want.Given, Want.Avoid), so that a right final answer
// reached by wrong reasoning is not correct:
//
//   - every equation ("a + b = c", "27 × 4 = 20 × 4 + 7 × 4") is true,
//     whatever the task;
//   - arithmetic and word problems: if there are equations, one states
//     the problem itself ("34 + 58", or "58 + 34"); a word problem's prose
//     (outside its equations) restates only the problem's quantities, each
//     no more often than the problem has it ("starts with 6 eggs" for 5 is
//     wrong);
//   - count: the counted items ("grey (1), peach (2)") are the list's items
//     in order, all of them, and no other list word is named;
//   - sort: only the given numbers appear, and the chain that starts at
//     "smallest" is the sorted list;
//   - reverse and first letter: every quoted word is the asked word (or the
//     answer), a quote left open and "the word X" begin with the asked
//     word, every spelled-out run of letters spells the asked word or the
//     answer, and "starts with X" names the answer;
//   - facts: no other person (Want.Avoid) is named.
//
// A response that shows no reasoning is judged on its answer alone.
func (t Task) consistent(response string) bool {
	w := t.Want
	for _, a := range w.Avoid {
		if mentions(response, a) {
			return false
		}
	}
	eqs, ok, prose := equations(response)
	if !ok {
		return false
	}
	if len(w.Given) == 0 {
		return true
	}
	reasoning := beforeAnswer(response)
	switch t.Kind {
	case KindArithmetic, KindWordProblem:
		if len(eqs) > 0 && !statesProblem(eqs, w.Given[0]) {
			return false
		}
		if t.Kind == KindWordProblem && !restatesProblem(prose, numbers(w.Given[0]), w.Value) {
			return false
		}
	case KindCount:
		return countsItems(reasoning, w.Given, t.Lang)
	case KindSort:
		for _, n := range numbers(response) {
			if !slices.ContainsFunc(w.Given, func(k string) bool { return sameNumber(k, n) }) {
				return false
			}
		}
		for _, chain := range sortChains(reasoning) {
			if !slices.EqualFunc(numbers(chain), w.Values, sameNumber) {
				return false
			}
		}
	case KindReverse, KindFirstLetter:
		return aboutWord(response, w.Given[0], w.Value)
	}
	return true
}

// beforeAnswer returns the text before the last answer phrase (all of s
// without one).
func beforeAnswer(s string) string {
	if i, _ := lastAnswerPhrase(s); i >= 0 {
		return s[:i]
	}
	return s
}

// An equation is a chain of two or more sides joined by "=", each side a
// sum of products of integers, kept as canonical text ("34 + 58").
type equation []string

// equations finds the equations in s and reports whether all of them are
// true, and returns s without them (its prose). A side is integers joined
// by +, -, × (or *); any other character ends the chain.
func equations(s string) (eqs []equation, allTrue bool, prose string) {
	var out []equation
	var spans [][2]int    // where the equations are in s
	start, end := 0, 0    // where the chain being read starts and ends
	var sides []string    // the chain's finished sides
	var cur []string      // tokens of the side being read: numbers and operators
	var vals []int64      // the finished sides' values
	expectOperand := true // the next token must be a number
	all := true
	flush := func() {
		if len(cur) > 0 && !expectOperand {
			if v, ok := evalSide(cur); ok {
				sides = append(sides, strings.Join(cur, " "))
				vals = append(vals, v)
			}
		}
		if len(sides) >= 2 {
			out = append(out, sides)
			spans = append(spans, [2]int{start, end})
			for _, v := range vals[1:] {
				if v != vals[0] {
					all = false
				}
			}
		}
		sides, cur, vals, expectOperand = nil, nil, nil, true
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ':
			i++
		case isDigit(c) || (c == '-' && expectOperand && i+1 < len(s) && isDigit(s[i+1])):
			if !expectOperand {
				flush()
				continue
			}
			j := i + 1
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			if j+1 < len(s) && s[j] == '.' && isDigit(s[j+1]) {
				// Not an integer: no equation of the built-in tasks.
				flush()
				for j++; j < len(s) && isDigit(s[j]); j++ {
				}
				i = j
				continue
			}
			if i > 0 && isLetter(s[i-1]) && len(cur) == 0 {
				// "x2" or "step3": not a number to reckon with.
				flush()
				i = j
				continue
			}
			if len(cur) == 0 && len(sides) == 0 {
				start = i
			}
			cur = append(cur, s[i:j])
			expectOperand = false
			i, end = j, j
		case !expectOperand && (c == '+' || c == '-' || c == '*'):
			op := string(c)
			if c == '*' {
				op = "×"
			}
			cur = append(cur, op)
			expectOperand = true
			i++
		case !expectOperand && strings.HasPrefix(s[i:], "×"):
			cur = append(cur, "×")
			expectOperand = true
			i += len("×")
		case c == '=' && !expectOperand:
			v, ok := evalSide(cur)
			if !ok {
				flush()
				i++
				continue
			}
			sides = append(sides, strings.Join(cur, " "))
			vals = append(vals, v)
			cur, expectOperand = nil, true
			i++
		default:
			if len(cur) > 0 && expectOperand {
				cur = cur[:len(cur)-1] // a dangling operator
				expectOperand = false
			}
			flush()
			_, n := utf8.DecodeRuneInString(s[i:])
			i += n
		}
	}
	if len(cur) > 0 && expectOperand {
		cur = cur[:len(cur)-1]
		expectOperand = false
	}
	flush()
	var b strings.Builder
	at := 0
	for _, sp := range spans {
		b.WriteString(s[at:sp[0]])
		b.WriteByte(' ')
		at = sp[1]
	}
	b.WriteString(s[at:])
	return out, all, b.String()
}

// evalSide evaluates numbers and operators, × before + and -.
func evalSide(toks []string) (int64, bool) {
	var sum, term int64
	sign := int64(1)
	for i := 0; i < len(toks); i += 2 {
		n, err := strconv.ParseInt(toks[i], 10, 64)
		if err != nil || n > 1<<31 || n < -(1<<31) {
			return 0, false
		}
		if i == 0 || toks[i-1] != "×" {
			term = n
		} else {
			term *= n
		}
		if i+1 >= len(toks) || toks[i+1] != "×" {
			sum += sign * term
			if i+1 < len(toks) && toks[i+1] == "-" {
				sign = -1
			} else {
				sign = 1
			}
		}
	}
	return sum, true
}

// restatesProblem reports whether the prose of a word problem's answer
// (its text outside equations) states no quantity the problem does not: in
// each stretch that ends in an answer, its numbers are the problem's, each
// no more often than the problem has it, and the answer.
func restatesProblem(prose string, given []string, answer string) bool {
	for _, part := range answerParts(prose) {
		left := append(slices.Clone(given), answer)
		for _, n := range numbers(part) {
			i := slices.IndexFunc(left, func(k string) bool { return sameNumber(k, n) })
			if i < 0 {
				return false
			}
			left = slices.Delete(left, i, i+1)
		}
	}
	return true
}

// answerParts cuts s after the number that follows each answer phrase.
func answerParts(s string) []string {
	var out []string
	for {
		rest, ok := afterFirstAnswer(s)
		if !ok {
			return append(out, s)
		}
		cut := len(s) - len(rest)
		if ns := numbers(rest); len(ns) > 0 {
			cut += strings.Index(rest, ns[0]) + len(ns[0])
		}
		out = append(out, s[:cut])
		s = s[cut:]
	}
}

// afterFirstAnswer returns the text after the first answer phrase, and
// whether there was one.
func afterFirstAnswer(s string) (string, bool) {
	low := asciiLower(s)
	best, end := len(s), 0
	for _, p := range answerPhrases {
		if i := strings.Index(low, p); i >= 0 && i < best {
			best, end = i, i+len(p)
		}
	}
	if end == 0 {
		return s, false
	}
	return s[end:], true
}

// statesProblem reports whether a side of an equation is the problem
// ("34 + 58", or "58 + 34" for a sum or product).
func statesProblem(eqs []equation, problem string) bool {
	f := strings.Fields(problem)
	alt := problem
	if len(f) == 3 && f[1] != "-" {
		alt = f[2] + " " + f[1] + " " + f[0]
	}
	for _, e := range eqs {
		if slices.Contains(e, problem) || slices.Contains(e, alt) {
			return true
		}
	}
	return false
}

// countsItems checks a count's reasoning: the items marked "(1)", "(2)",
// ... are the list's, in order, all of them (each time the count starts
// again at 1); and no list word that is not in the list is named.
func countsItems(reasoning string, items []string, lang string) bool {
	var counted []string
	prev := 0
	for i := 0; i < len(reasoning); i++ {
		open := reasoning[i] == '('
		if !open && !strings.HasPrefix(reasoning[i:], "（") {
			continue
		}
		j := i + 1
		if !open {
			j = i + len("（")
		}
		k := j
		for k < len(reasoning) && isDigit(reasoning[k]) {
			k++
		}
		if k == j || k >= len(reasoning) || (reasoning[k] != ')' && !strings.HasPrefix(reasoning[k:], "）")) {
			continue
		}
		n, _ := strconv.Atoi(reasoning[j:k])
		if n == 1 && len(counted) > 0 { // counting again
			if !sameItems(counted, items) {
				return false
			}
			counted = nil
		}
		if n != len(counted)+1 {
			return false
		}
		item := reasoning[prev:i]
		if d := strings.LastIndexAny(item, ",:;，：、"); d >= 0 {
			_, size := utf8.DecodeRuneInString(item[d:])
			item = item[d+size:]
		}
		counted = append(counted, strings.TrimSpace(item))
		prev = k + 1
	}
	if len(counted) > 0 && !sameItems(counted, items) {
		return false
	}
	for _, it := range listItems {
		x := word(it, lang)
		if !slices.Contains(items, x) && mentions(reasoning, x) {
			return false
		}
	}
	return true
}

func sameItems(counted, items []string) bool {
	return slices.EqualFunc(counted, items, strings.EqualFold)
}

// aboutWord checks the reasoning of a reverse or first-letter task: every
// quoted word is the asked word or the answer, every spelled-out run
// ("l, a, m, p", "春、天、花") spells one of them, and "starts with X"
// names the answer.
func aboutWord(response, asked, answer string) bool {
	is := func(s string) bool { return strings.EqualFold(s, asked) || strings.EqualFold(s, answer) }
	closed, open := quoted(response)
	for _, q := range closed {
		if !is(strings.TrimSpace(q)) {
			return false
		}
	}
	// A quote left open ('The word "z. The answer is z.') must at least
	// begin with the asked word.
	for _, q := range open {
		if !strings.EqualFold(leadingWord(q), asked) {
			return false
		}
	}
	for _, run := range spelledRuns(response) {
		if !is(run) {
			return false
		}
	}
	low := asciiLower(response)
	for _, p := range []string{"the word ", "the letters of "} {
		for off := 0; ; {
			i := strings.Index(low[off:], p)
			if i < 0 {
				break
			}
			off += i + len(p)
			if !strings.EqualFold(leadingWord(response[off:]), asked) {
				return false
			}
		}
	}
	for _, p := range []string{"starts with ", "begins with ", "第一个字是"} {
		for off := 0; ; {
			i := strings.Index(low[off:], p)
			if i < 0 {
				break
			}
			off += i + len(p)
			rest := strings.TrimPrefix(response[off:], "the letter ")
			got := leadingWord(rest)
			if r, _ := utf8.DecodeRuneInString(got); isHan(r) {
				got = string(r)
			}
			if !strings.EqualFold(got, answer) {
				return false
			}
		}
	}
	return true
}

// sortChains returns each "The smallest is 3, then 17, ..." of a sort's
// reasoning, up to the next answer phrase or chain.
func sortChains(s string) []string {
	low := asciiLower(s)
	var starts []int
	for _, m := range []string{"smallest", "最小"} {
		for off := 0; ; {
			i := strings.Index(low[off:], m)
			if i < 0 {
				break
			}
			starts = append(starts, off+i)
			off += i + len(m)
		}
	}
	slices.Sort(starts)
	var out []string
	for k, i := range starts {
		end := len(s)
		if k+1 < len(starts) {
			end = starts[k+1]
		}
		for _, p := range answerPhrases {
			if j := strings.Index(low[i:end], p); j >= 0 {
				end = i + j
			}
		}
		out = append(out, s[i:end])
	}
	return out
}

// leadingWord returns the run of letters (or of Chinese characters) that
// s starts with, after spaces and quotes.
func leadingWord(s string) string {
	s = strings.TrimLeft(s, " \"'“”‘’「」")
	if r, _ := utf8.DecodeRuneInString(s); isHan(r) {
		return leadingRun(s, isHan)
	}
	return leadingRun(s, func(r rune) bool { return unicode.IsLetter(r) && !isHan(r) })
}

// quoted returns the texts between double quotes ("...", “...” or
// 「...」), and what follows a quote that is never closed.
func quoted(s string) (closed, open []string) {
	for _, q := range [][2]string{{`"`, `"`}, {"“", "”"}, {"「", "」"}} {
		for rest := s; ; {
			i := strings.Index(rest, q[0])
			if i < 0 {
				break
			}
			rest = rest[i+len(q[0]):]
			j := strings.Index(rest, q[1])
			if j < 0 {
				open = append(open, rest)
				break
			}
			closed = append(closed, rest[:j])
			rest = rest[j+len(q[1]):]
		}
	}
	return closed, open
}

// Spelled-out words: "l, a, m, p" or "春、天、花".
var (
	spelledEn = regexp.MustCompile(`\b[A-Za-z](?:, ?[A-Za-z]\b)+`)
	spelledZh = regexp.MustCompile(`\p{Han}(?:、\p{Han})+`)
)

// spelledRuns returns the words spelled out one letter at a time: "l, a, m,
// p" gives "lamp", "春、天、花" gives "春天花".
func spelledRuns(s string) []string {
	var out []string
	for _, re := range []*regexp.Regexp{spelledEn, spelledZh} {
		for _, m := range re.FindAllString(s, -1) {
			out = append(out, strings.Map(func(r rune) rune {
				if r == ',' || r == ' ' || r == '、' {
					return -1
				}
				return r
			}, m))
		}
	}
	return out
}
