package synth

import (
	"fmt"
	"strconv"
	"strings"
)

// The attributes of a person that facts state and questions ask about.
const (
	attrPlace = iota
	attrJob
	attrAge
	attrColour
	attrPet
	attrFriend
	numAttrs
)

func (w *World) name(p Person, lang string) string {
	if lang == "zh" {
		return p.NameZh
	}
	return p.Name
}

func word(x Word, lang string) string {
	if lang == "zh" {
		return x.Zh
	}
	return x.En
}

// article returns "a" or "an" for an English noun.
func article(noun string) string {
	if noun != "" && strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an"
	}
	return "a"
}

// value returns the answer to a question about attr: a town, a job, an
// age, a colour, an animal or a name.
func (w *World) value(p Person, attr int, lang string) string {
	switch attr {
	case attrPlace:
		pl := w.Places[p.Place]
		if lang == "zh" {
			return pl.NameZh
		}
		return pl.Name
	case attrJob:
		return word(p.Job, lang)
	case attrAge:
		return strconv.Itoa(p.Age)
	case attrColour:
		return word(p.Colour, lang)
	case attrPet:
		return word(p.Pet, lang)
	default:
		return w.name(w.People[p.Friend], lang)
	}
}

// others returns every value of attr's kind except p's, for checkers that
// reject an answer naming two towns or two jobs.
func (w *World) others(p Person, attr int, lang string) []string {
	var out []string
	add := func(v string) {
		if v != w.value(p, attr, lang) {
			out = append(out, v)
		}
	}
	switch attr {
	case attrPlace:
		for _, pl := range w.Places {
			if lang == "zh" {
				add(pl.NameZh)
			} else {
				add(pl.Name)
			}
		}
	case attrJob, attrColour, attrPet:
		table := map[int][]Word{attrJob: jobs, attrColour: colours, attrPet: animals}[attr]
		for _, x := range table {
			add(word(x, lang))
		}
	case attrFriend:
		for i, q := range w.People {
			if q.Name != p.Name && i != p.Friend {
				out = append(out, w.name(q, lang))
			}
		}
	}
	return out
}

// Sentence forms, indexed by attribute. In statements the first %s is the
// person and the second the value; in questions %s is the person. The
// English statements write "a" or "an" where {a} stands, the Chinese ones
// the animal's measure word where {u} stands.
var (
	statementsEn = [numAttrs][]string{
		attrPlace:  {"%s lives in %s.", "%s's home is in %s.", "%s has a house in %s."},
		attrJob:    {"%s is {a} %s.", "%s works as {a} %s.", "By trade, %s is {a} %s."},
		attrAge:    {"%s is %s years old.", "%s is %s.", "%s turned %s this year."},
		attrColour: {"%s's favourite colour is %s.", "%s likes %s best.", "%s loves the colour %s."},
		attrPet:    {"%s has {a} %s.", "%s keeps {a} %s as a pet.", "%s owns {a} %s."},
		attrFriend: {"%s's friend is %s.", "%s is friends with %s.", "%s's best friend is %s."},
	}
	statementsZh = [numAttrs][]string{
		attrPlace:  {"%s住在%s。", "%s的家在%s。", "%s在%s生活。"},
		attrJob:    {"%s是%s。", "%s的工作是%s。", "%s做%s的工作。"},
		attrAge:    {"%s%s岁。", "%s今年%s岁。", "%s的年龄是%s岁。"},
		attrColour: {"%s最喜欢%s。", "%s最喜欢的颜色是%s。", "%s很喜欢%s。"},
		attrPet:    {"%s养了一{u}%s。", "%s有一{u}%s。", "%s家里有一{u}%s。"},
		attrFriend: {"%s的朋友是%s。", "%s和%s是朋友。", "%s最好的朋友是%s。"},
	}
	questionsEn = [numAttrs][]string{
		attrPlace:  {"Where does %s live?", "In which town does %s live?", "Where is %s's home?"},
		attrJob:    {"What is %s's job?", "What does %s do for work?"},
		attrAge:    {"How old is %s?", "What is %s's age?"},
		attrColour: {"What is %s's favourite colour?", "Which colour does %s like best?"},
		attrPet:    {"What pet does %s have?", "What animal does %s keep as a pet?"},
		attrFriend: {"Who is %s's friend?", "Who is %s friends with?"},
	}
	questionsZh = [numAttrs][]string{
		attrPlace:  {"%s住在哪里？", "%s住在哪个小镇？", "%s的家在哪里？"},
		attrJob:    {"%s的工作是什么？", "%s是做什么工作的？"},
		attrAge:    {"%s多大了？", "%s几岁？", "%s今年几岁？"},
		attrColour: {"%s最喜欢什么颜色？", "%s最喜欢的颜色是什么？"},
		attrPet:    {"%s养了什么宠物？", "%s养的是什么动物？"},
		attrFriend: {"%s的朋友是谁？", "谁是%s的朋友？"},
	}
)

// statement states one fact about p. Variant 0 is the canonical sentence
// that answers a question; the others vary the wording for the corpus, which
// makes the knowledge easier to retrieve with questions after pretraining
// (Allen-Zhu and Li, "Physics of Language Models: Part 3.1", 2023).
func (w *World) statement(p Person, attr int, lang string, variant int) string {
	n, v := w.name(p, lang), w.value(p, attr, lang)
	var form string
	if lang == "zh" {
		forms := statementsZh[attr]
		form = strings.Replace(forms[variant%len(forms)], "{u}", p.Pet.Unit, 1)
	} else {
		forms := statementsEn[attr]
		form = strings.Replace(forms[variant%len(forms)], "{a}", article(v), 1)
	}
	return fmt.Sprintf(form, n, v)
}

// question asks about one fact.
func (w *World) question(p Person, attr int, lang string, variant int) string {
	forms := questionsEn[attr]
	if lang == "zh" {
		forms = questionsZh[attr]
	}
	return fmt.Sprintf(forms[variant%len(forms)], w.name(p, lang))
}

// sentences joins sentences the way the language writes them.
func sentences(lang string, parts ...string) string {
	if lang == "zh" {
		var b strings.Builder
		for _, p := range parts {
			b.WriteString(p)
			b.WriteString("。")
		}
		return b.String()
	}
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p)
		b.WriteByte('.')
	}
	return b.String()
}

// Arithmetic problems.
type arith struct {
	op   byte // '+', '-' or '*'
	a, b int
}

func (x arith) result() int {
	switch x.op {
	case '+':
		return x.a + x.b
	case '-':
		return x.a - x.b
	}
	return x.a * x.b
}

func opText(op byte) string {
	if op == '*' {
		return "×"
	}
	return string(op)
}

func (x arith) expr() string { return fmt.Sprintf("%d %s %d", x.a, opText(x.op), x.b) }

// key names the problem for the train/held-out split.
func (x arith) key() string {
	var b []byte
	switch x.op {
	case '+':
		b = append(b, "add:"...)
	case '-':
		b = append(b, "sub:"...)
	default:
		b = append(b, "mul:"...)
	}
	b = strconv.AppendInt(b, int64(x.a), 10)
	b = append(b, x.op)
	return string(strconv.AppendInt(b, int64(x.b), 10))
}

// steps works the problem out digit by digit: tens first, then ones, the
// way a small model can learn to carry.
func (x arith) steps() []string {
	r := x.result()
	eq := func(a int, op byte, b, c int) string { return fmt.Sprintf("%d %s %d = %d", a, opText(op), b, c) }
	switch x.op {
	case '+', '-':
		tens, ones := x.b/10*10, x.b%10
		if tens == 0 || ones == 0 {
			return []string{eq(x.a, x.op, x.b, r)}
		}
		mid := arith{x.op, x.a, tens}.result()
		return []string{
			fmt.Sprintf("%s = %d %s %d %s %d", x.expr(), x.a, opText(x.op), tens, opText(x.op), ones),
			eq(x.a, x.op, tens, mid),
			eq(mid, x.op, ones, r),
		}
	}
	tens, ones := x.a/10*10, x.a%10
	if tens == 0 || ones == 0 {
		return []string{eq(x.a, '*', x.b, r)}
	}
	return []string{
		fmt.Sprintf("%s = %d × %d + %d × %d", x.expr(), tens, x.b, ones, x.b),
		eq(tens, '*', x.b, tens*x.b),
		eq(ones, '*', x.b, ones*x.b),
		eq(tens*x.b, '+', ones*x.b, r),
	}
}

// randArith draws a problem from the task distribution: sums and
// differences of two-digit numbers, and a two-digit number times a digit,
// always with nonzero ones digits. Then every step of a worked answer (a
// round number of tens, a single digit, one-digit products and their round
// sum) has a form no task has, so no held-out problem is ever stated as a
// step of a train answer or in the corpus.
func randArith(r *rng) arith {
	twoDigit := func(lo, hi int) int {
		for {
			if x := r.between(lo, hi); x%10 != 0 {
				return x
			}
		}
	}
	switch k := r.intn(20); {
	case k < 8:
		return arith{'+', twoDigit(11, 99), twoDigit(11, 99)}
	case k < 15:
		a := twoDigit(22, 99)
		return arith{'-', a, twoDigit(11, a-1)}
	default:
		return arith{'*', twoDigit(11, 29), r.between(2, 9)}
	}
}

// randTable draws a one-digit fact ("7 × 8 = 56"). No task asks these
// (see randArith), so the corpus states them freely: they are what every
// worked answer is made of.
func randTable(r *rng) arith {
	a, b := r.between(0, 10), r.between(0, 10)
	switch r.intn(3) {
	case 0:
		return arith{'+', a, b}
	case 1:
		return arith{'-', a + b, b}
	}
	return arith{'*', a, b}
}

// Words for the list and string tasks.
var realWords = []string{
	"cat", "dog", "sun", "moon", "star", "tree", "fish", "bird", "milk", "bread",
	"book", "door", "lamp", "road", "ship", "rain", "snow", "wind", "fire", "stone",
	"apple", "grape", "lemon", "house", "river", "cloud", "horse", "table", "chair", "plant",
	"green", "black", "white", "smile", "light", "night", "water", "sugar", "paper", "music",
	"hat", "cup", "pen", "box", "bag", "bed", "egg", "map", "key", "leaf",
}

// wordPool is every word the English string tasks use: real words and
// name-like syllable pairs.
var wordPool = func() []string {
	out := append([]string(nil), realWords...)
	for _, s := range startSyl {
		for _, e := range endSyl {
			out = append(out, s[0]+e[0])
		}
	}
	return out
}()

// zhChars build the three-character strings of the Chinese string tasks.
var zhChars = []rune("山水火木花鸟鱼月日天云风雨石田土竹牛羊书门灯路船雪星光茶米")

func randZhString(r *rng) string {
	var out []rune
	for len(out) < 3 {
		c := pick(r, zhChars)
		if !strings.ContainsRune(string(out), c) {
			out = append(out, c)
		}
	}
	return string(out)
}

func reverseString(s string) string {
	rs := []rune(s)
	for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
		rs[i], rs[j] = rs[j], rs[i]
	}
	return string(rs)
}

// spell writes s one letter at a time: "c, a, t" or "猫、狗".
func spell(s, sep string) string {
	var parts []string
	for _, c := range s {
		parts = append(parts, string(c))
	}
	return strings.Join(parts, sep)
}

// listItems are the nouns of the counting tasks.
var listItems = func() []Word {
	var out []Word
	for _, t := range [][]Word{animals, colours, fruits} {
		out = append(out, t...)
	}
	return out
}()

func joinInts(xs []int, sep string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, sep)
}
