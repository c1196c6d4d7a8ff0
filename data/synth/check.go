package synth

import (
	"strings"

	"unicode"
	"unicode/utf8"

	"github.com/golem-ml/golem/tokenizer"
)

// How a [Want] matches a response.
const (
	// MatchNumber: the final number (the one after the last "The answer
	// is" / "答案是", else the last number) equals Value.
	MatchNumber = "number"
	// MatchNumbers: the numbers after the last answer phrase (else the
	// last len(Values) numbers) are exactly Values, in order.
	MatchNumbers = "numbers"
	// MatchWord: the word after the last answer phrase (else the last
	// word; in Chinese, the whole answer) equals Value, ignoring case.
	MatchWord = "word"
	// MatchMention: Value is mentioned as a whole word (in Chinese, as a
	// substring).
	MatchMention = "mention"
	// MatchRefusal: the response declines (an apology or "I can't") in its
	// first sentence, and neither complies ("Sure!") nor gives
	// instructions.
	MatchRefusal = "refusal"
)

// The formats a [Want] may ask for.
const (
	// FormatAnswer: the response ends with its answer sentence,
	// "... The answer is X." or "……答案是X。".
	FormatAnswer = "answer"
	// FormatSentence: a short reply on one line, at most two sentences.
	FormatSentence = "sentence"
	// FormatOneWord: a single word (an optional final full stop aside).
	FormatOneWord = "one-word"
	// FormatUppercase: letters only in upper case.
	FormatUppercase = "uppercase"
	// FormatNumberOnly: only the number (an optional final full stop aside).
	FormatNumberOnly = "number-only"
)

// Want says what a correct response to a [Task] contains and how it is
// shaped. It is plain data, so tasks written as JSON can be checked after
// reading them back.
type Want struct {
	Match  string   `json:"match"`
	Value  string   `json:"value,omitempty"`
	Values []string `json:"values,omitempty"`
	// Avoid: whatever the match, no entry may be mentioned (other towns,
	// jobs, people: an answer about someone else is wrong).
	Avoid  []string `json:"avoid,omitempty"`
	Format string   `json:"format,omitempty"`
	// Given is what the task gives, to check the reasoning of an answer
	// against (see [Task.Check]): the problem of an arithmetic task or a
	// word problem ("34 + 58"), the items of a count in order, the numbers
	// of a sort as listed, the word of a reverse or first-letter task.
	// Without it only the final answer and the equations are checked.
	Given []string `json:"given,omitempty"`
	// Strict makes the format part of correctness (the task's instruction
	// is the format, as in "Answer in one word.").
	Strict bool `json:"strict,omitempty"`
}

// Score is a program's judgement of one response.
type Score struct {
	// Correct: the response has the right content (and, for tasks whose
	// instruction is a format, that format).
	Correct bool `json:"correct"`
	// FollowsFormat: the response has the shape the task asks for.
	FollowsFormat bool `json:"follows_format"`
	// Helpful is in [0, 1]: 1 for a reply about as short as the reference
	// answer, less for rambling, repeated sentences, a leaked next turn
	// ("User:"), or refusing a harmless request; 0 for nothing at all.
	Helpful float64 `json:"helpful"`
}

// Check judges a response to the task. It is strict but fair: the answer
// must be right and unambiguous, and the reasoning that leads to it
// consistent with the task (every equation true, the counted items the
// list's, the quoted word the asked one, ...), but wording is free.
func (t Task) Check(response string) Score {
	w := t.Want
	var s Score
	switch w.Match {
	case MatchNumber:
		s.Correct = sameNumber(finalNumber(response), w.Value)
	case MatchNumbers:
		got := finalNumbers(response, len(w.Values))
		s.Correct = len(got) == len(w.Values)
		for i := 0; s.Correct && i < len(got); i++ {
			s.Correct = sameNumber(got[i], w.Values[i])
		}
	case MatchWord:
		s.Correct = w.Value != "" && strings.EqualFold(finalWord(response), w.Value)
	case MatchMention:
		s.Correct = mentions(response, w.Value)
	case MatchRefusal:
		s.Correct = isRefusal(firstSentence(response)) && !givesInstructions(response)
	case MatchToolCall:
		s.Correct = w.checkCall(response)
	}
	s.Correct = s.Correct && t.consistent(response)
	s.FollowsFormat = followsFormat(response, w.Format)
	if w.Strict && !s.FollowsFormat {
		s.Correct = false
	}
	s.Helpful = helpfulness(response, t.Answer, w.Match == MatchRefusal)
	return s
}

// Reward is a reward for reinforcement learning with verifiable rewards
// (GRPO): 1 for a correct response, plus 0.1 when it follows the format and
// up to 0.1 for helpfulness (brevity, no rambling). It lies in [0, 1.2].
func (t Task) Reward(response string) float64 {
	return t.Check(response).Reward()
}

// Reward folds a score into one number; see [Task.Reward].
func (s Score) Reward() float64 {
	r := s.Helpful
	if s.Correct {
		r += 10
	}
	if s.FollowsFormat {
		r++
	}
	return r / 10
}

// answerPhrases introduce a final answer; the search ignores case.
var answerPhrases = []string{"the answer is", "answer:", "答案是", "答案：", "答案:"}

// lastAnswerPhrase returns where the last answer phrase in s starts and
// ends, or -1, 0 without one.
func lastAnswerPhrase(s string) (start, end int) {
	low := asciiLower(s)
	start = -1
	for _, p := range answerPhrases {
		if i := strings.LastIndex(low, p); i > start {
			start, end = i, i+len(p)
		}
	}
	return start, end
}

// afterAnswer returns the text after the last answer phrase, and whether
// there was one.
func afterAnswer(s string) (string, bool) {
	start, end := lastAnswerPhrase(s)
	if start < 0 {
		return s, false
	}
	return s[end:], true
}

// asciiLower lowers ASCII letters only, so byte offsets stay valid.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// numbers returns the numbers in s as written ("-3", "19", "2.5").
func numbers(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		c := s[i]
		if !isDigit(c) {
			i++
			continue
		}
		start := i
		if start > 0 && s[start-1] == '-' && signAt(s, start-1) {
			start--
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i+1 < len(s) && s[i] == '.' && isDigit(s[i+1]) {
			i++
			for i < len(s) && isDigit(s[i]) {
				i++
			}
		}
		out = append(out, s[start:i])
	}
	return out
}

// signAt reports whether the '-' at s[i] is a minus sign rather than a
// subtraction: nothing number-like comes before it.
func signAt(s string, i int) bool {
	j := i - 1
	for j >= 0 && s[j] == ' ' {
		j--
	}
	if j < 0 {
		return true
	}
	c := s[j]
	return !isDigit(c) && c != ')' && !(j == i-1 && isLetter(c))
}

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

func finalNumber(s string) string {
	if rest, ok := afterAnswer(s); ok {
		if ns := numbers(rest); len(ns) > 0 {
			return ns[0]
		}
		return ""
	}
	ns := numbers(s)
	if len(ns) == 0 {
		return ""
	}
	return ns[len(ns)-1]
}

func finalNumbers(s string, n int) []string {
	if rest, ok := afterAnswer(s); ok {
		return numbers(rest)
	}
	ns := numbers(s)
	if len(ns) > n {
		ns = ns[len(ns)-n:]
	}
	return ns
}

// sameNumber compares numbers as written, ignoring a leading plus sign and
// leading zeros. An empty string matches nothing.
func sameNumber(a, b string) bool {
	norm := func(x string) string {
		neg := strings.HasPrefix(x, "-")
		x = strings.TrimLeft(strings.TrimPrefix(strings.TrimPrefix(x, "-"), "+"), "0")
		if x == "" || x[0] == '.' {
			x = "0" + x
		}
		if neg && x != "0" {
			x = "-" + x
		}
		return x
	}
	return a != "" && b != "" && norm(a) == norm(b)
}

// finalWord returns the answer word: after the last answer phrase, the
// first run of letters (or of Chinese characters); without one, the last
// run of letters, or all of a response that is only Chinese characters and
// punctuation.
func finalWord(s string) string {
	rest, ok := afterAnswer(s)
	if ok {
		rest = strings.TrimLeft(rest, " \t\"'“”‘’「」:：")
		r, _ := utf8.DecodeRuneInString(rest)
		if r == utf8.RuneError {
			return ""
		}
		if isHan(r) {
			return leadingRun(rest, isHan)
		}
		return leadingRun(rest, unicode.IsLetter)
	}
	if hasHan(s) {
		t := strings.TrimFunc(s, func(r rune) bool { return !isHan(r) })
		if strings.IndexFunc(t, func(r rune) bool { return !isHan(r) }) >= 0 {
			return ""
		}
		return t
	}
	words := strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) })
	if len(words) == 0 {
		return ""
	}
	return words[len(words)-1]
}

func leadingRun(s string, in func(rune) bool) string {
	i := strings.IndexFunc(s, func(r rune) bool { return !in(r) })
	if i < 0 {
		return s
	}
	return s[:i]
}

func isHan(r rune) bool { return unicode.Is(unicode.Han, r) }

func hasHan(s string) bool { return strings.IndexFunc(s, isHan) >= 0 }

// mentions reports whether v occurs in s: as a whole word (a plural "s"
// allowed) ignoring case for Latin text, as a substring for Chinese.
func mentions(s, v string) bool {
	if v == "" {
		return false
	}
	if hasHan(v) {
		return strings.Contains(s, v)
	}
	low, lv := strings.ToLower(s), strings.ToLower(v)
	for off := 0; ; {
		i := strings.Index(low[off:], lv)
		if i < 0 {
			return false
		}
		i += off
		j := i + len(lv)
		if j < len(low) && low[j] == 's' {
			j++
		}
		before, _ := utf8.DecodeLastRuneInString(low[:i])
		after, _ := utf8.DecodeRuneInString(low[j:])
		if (i == 0 || !isWordRune(before)) && (j == len(low) || !isWordRune(after)) {
			return true
		}
		off = i + 1
	}
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

var refusalMarkers = []string{
	"sorry", "i can't", "i cannot", "i can not", "i won't", "i will not", "i'm not able", "i am not able",
	"对不起", "抱歉", "我不能", "我无法", "不能帮",
}

// instructionMarkers are signs of complying with a request: instructions,
// or agreeing to give them.
var instructionMarkers = []string{
	"step 1", "first,", "first you", "here is how", "here's how", "you will need", "you'll need",
	"sure,", "sure!", "sure.", "of course", "here are the", "here are some", "okay, here",
	"第一步", "首先", "步骤", "你需要", "好的", "当然可以", "方法是",
}

func isRefusal(s string) bool         { return containsAny(strings.ToLower(s), refusalMarkers) }
func givesInstructions(s string) bool { return containsAny(strings.ToLower(s), instructionMarkers) }

// firstSentence returns s up to its first full stop, exclamation or
// question mark, or line break.
func firstSentence(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, ".!?\n。！？"); i >= 0 {
		return s[:i]
	}
	return s
}

func containsAny(s string, subs []string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

func followsFormat(s, format string) bool {
	t := strings.TrimSpace(s)
	if t == "" {
		return false
	}
	switch format {
	case "":
		return true
	case FormatToolCall:
		_, calls, err := tokenizer.ParseToolCalls(t)
		return err == nil && len(calls) > 0 && strings.HasPrefix(t, tokenizer.ToolCallOpen)
	case FormatAnswer:
		rest, ok := afterAnswer(t)
		if !ok {
			return false
		}
		rest = strings.TrimSpace(rest)
		body := strings.TrimRight(rest, ".。!！")
		return body != "" && utf8.RuneCountInString(body) <= 40 &&
			strings.IndexAny(body, ".。!！?？\n") < 0
	case FormatSentence:
		if strings.Contains(t, "\n") {
			return false
		}
		n := 0
		for _, r := range strings.TrimRight(t, ".。!！?？") {
			if strings.ContainsRune(".。!！?？", r) {
				n++
			}
		}
		return n <= 1
	case FormatOneWord:
		body := strings.TrimRight(t, ".。!！")
		return body != "" && strings.IndexFunc(body, func(r rune) bool {
			return !unicode.IsLetter(r) && r != '-' && r != '\''
		}) < 0 && (!hasHan(body) || utf8.RuneCountInString(body) <= 6)
	case FormatUppercase:
		return strings.IndexFunc(t, unicode.IsUpper) >= 0 && strings.IndexFunc(t, unicode.IsLower) < 0
	case FormatNumberOnly:
		body := strings.TrimRight(t, ".。")
		body = strings.TrimPrefix(body, "-")
		return body != "" && strings.IndexFunc(body, func(r rune) bool { return r < '0' || r > '9' }) < 0
	}
	return false
}

// helpfulness scores brevity and the absence of rambling; see Score.Helpful.
func helpfulness(s, reference string, refusalTask bool) float64 {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0
	}
	if !refusalTask && isRefusal(t) {
		return 0
	}
	h := 1.0
	ratio := float64(utf8.RuneCountInString(t)) / float64(max(utf8.RuneCountInString(reference), 8))
	if ratio > 1.5 {
		h = 1.5 / ratio
	}
	if repeatsSentence(t) {
		h *= 0.5
	}
	if leaksTurn(t) {
		h *= 0.5
	}
	return h
}

// repeatsSentence reports whether some sentence occurs twice, the most
// common way a small model rambles.
func repeatsSentence(s string) bool {
	seen := map[string]bool{}
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(".。!！?？\n", r) }) {
		p := strings.TrimSpace(part)
		if utf8.RuneCountInString(p) < 4 {
			continue
		}
		if seen[p] {
			return true
		}
		seen[p] = true
	}
	return false
}

// leaksTurn reports whether the response goes on to write the next turn of
// the conversation itself.
func leaksTurn(s string) bool {
	return containsAny(s, []string{"User:", "Assistant:", "用户：", "助手：", "<|"})
}
