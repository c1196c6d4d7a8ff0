package synth

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/golem-ml/golem/tokenizer"
)

// DefaultCorpusBytes is the corpus size when CorpusOptions.Bytes is not set.
const DefaultCorpusBytes = 4 << 20

// CorpusOptions configure [Corpus] and [WriteCorpus].
type CorpusOptions struct {
	Seed int64
	// Bytes is the size to reach: the corpus is whole paragraphs, at most
	// Bytes long and within a paragraph of it. 0 means DefaultCorpusBytes.
	Bytes int
	// Chinese is the fraction of paragraphs written in Chinese, in [0, 1]
	// (values outside are clamped).
	Chinese float64
	// World is the world whose facts the corpus states; nil means
	// DefaultWorld(). It must be valid (see World.Validate).
	World *World
}

// Corpus returns golem's built-in pretraining text: paragraphs separated by
// blank lines, mixing facts about the world in varied wording, arithmetic
// (one-digit tables, two-digit problems, some worked out), lists (counting,
// sorting, spelling, first letters, words backwards), worked solutions of
// train-split tasks (their answers alone), tool-use round trips (tools.go)
// and plain dialogues
// that show questions and short answers without the instruction-following
// format of the tasks. The dialogues are written in ChatML, exactly as
// [tokenizer.FormatChat] renders a conversation
// ("<|im_start|>user\n...<|im_end|>\n<|im_start|>assistant\n...<|im_end|>"),
// so a model pretrained on the corpus with the special tokens recognised
// (see [tokenizer.Tokenizer.EncodeWithSpecial]) knows the chat tokens
// before instruction tuning, as modern base models do. It states every fact
// of the world but no held-out problem of the tasks (see [SplitOf]). The
// same options always give the same text.
func Corpus(opts CorpusOptions) string {
	var b strings.Builder
	b.Grow(corpusSize(opts))
	writeCorpus(&b, opts)
	return b.String()
}

// WriteCorpus writes the text of [Corpus] to w.
func WriteCorpus(w io.Writer, opts CorpusOptions) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	if err := writeCorpus(bw, opts); err != nil {
		return err
	}
	return bw.Flush()
}

func corpusSize(opts CorpusOptions) int {
	if opts.Bytes <= 0 {
		return DefaultCorpusBytes
	}
	return opts.Bytes
}

func writeCorpus(w io.StringWriter, opts CorpusOptions) error {
	c := newCorpusGen(opts)
	limit, n := corpusSize(opts), 0
	for {
		p := c.paragraph()
		if n+len(p)+2 > limit {
			return nil
		}
		if _, err := w.WriteString(p); err != nil {
			return err
		}
		if _, err := w.WriteString("\n\n"); err != nil {
			return err
		}
		n += len(p) + 2
	}
}

type corpusGen struct {
	*gen
	chinese float64
}

func newCorpusGen(opts CorpusOptions) *corpusGen {
	g := newGen(opts.World, opts.Seed)
	g.r = newRNG(opts.Seed, 3)
	return &corpusGen{gen: g, chinese: min(max(opts.Chinese, 0), 1)}
}

func (c *corpusGen) paragraph() string {
	lang := "en"
	if c.r.chance(c.chinese) {
		lang = "zh"
	}
	switch k := c.r.intn(100); {
	case k < 26:
		return c.facts(lang)
	case k < 32:
		return c.town(lang)
	case k < 48:
		return c.arithmetic(lang)
	case k < 60:
		return c.lists(lang)
	case k < 72:
		return c.worked(lang)
	case k < 76:
		return c.toolUse()
	default:
		return c.dialogue(lang)
	}
}

// worked writes worked solutions, the way books and web pages show them:
// the reference answers of a few train-split tasks, without their
// questions and outside any chat format. A model pretrained on the corpus
// knows the words and phrases of the answers ("Let's think step by step",
// "The answer is", the nouns of word problems), as a real base model knows
// its language; instruction tuning teaches which answer a request wants
// and how a chat answer looks.
func (c *corpusGen) worked(lang string) string {
	total := 0
	for _, k := range kindWeights {
		if lang == "en" || k.kind != KindUppercase {
			total += k.weight
		}
	}
	var lines []string
	for range c.r.between(2, 4) {
		x := c.r.intn(total)
		for _, k := range kindWeights {
			if lang == "zh" && k.kind == KindUppercase {
				continue
			}
			if x >= k.weight {
				x -= k.weight
				continue
			}
			if t, err := k.make(c.gen, lang, SplitTrain); err == nil {
				lines = append(lines, t.Answer)
			}
			break
		}
	}
	return strings.Join(lines, "\n")
}

func (c *corpusGen) join(lang string, parts []string) string {
	if lang == "zh" {
		return strings.Join(parts, "")
	}
	return strings.Join(parts, " ")
}

// facts describes one to three people, in random order and wording.
func (c *corpusGen) facts(lang string) string {
	var parts []string
	for range c.r.between(1, 3) {
		p := c.w.People[c.r.intn(len(c.w.People))]
		attrs := []int{attrPlace, attrJob, attrAge, attrColour, attrPet, attrFriend}
		c.r.shuffle(len(attrs), func(i, j int) { attrs[i], attrs[j] = attrs[j], attrs[i] })
		for _, a := range attrs[:c.r.between(3, numAttrs)] {
			parts = append(parts, c.w.statement(p, a, lang, c.r.intn(3)))
		}
	}
	return c.join(lang, parts)
}

// town lists who lives in one town.
func (c *corpusGen) town(lang string) string {
	i := c.r.intn(len(c.w.Places))
	var who []string
	for _, p := range c.w.People {
		if p.Place == i {
			who = append(who, c.w.name(p, lang))
		}
	}
	c.r.shuffle(len(who), func(i, j int) { who[i], who[j] = who[j], who[i] })
	pl := c.w.Places[i]
	if lang == "zh" {
		s := pl.NameZh + "是一个小镇。"
		switch len(who) {
		case 0:
			return s + "现在没有人住在" + pl.NameZh + "。"
		case 1:
			return s + who[0] + "住在" + pl.NameZh + "。"
		}
		return s + strings.Join(who[:len(who)-1], "、") + "和" + who[len(who)-1] + "住在" + pl.NameZh + "。"
	}
	s := pl.Name + " is a town."
	switch len(who) {
	case 0:
		return s + " Nobody lives in " + pl.Name + " now."
	case 1:
		return s + " " + who[0] + " lives in " + pl.Name + "."
	}
	return s + " " + strings.Join(who[:len(who)-1], ", ") + " and " + who[len(who)-1] + " live in " + pl.Name + "."
}

// trainArith draws a train problem of the task distribution.
func (c *corpusGen) trainArith() arith {
	// A fifth of thousands of problems is held out: the draw never fails.
	x, _ := c.arithProblem(SplitTrain)
	return x
}

var zhOps = map[byte]string{'+': "加", '-': "减", '*': "乘"}

func (c *corpusGen) arithmetic(lang string) string {
	var lines []string
	for range c.r.between(4, 10) {
		switch k := c.r.intn(20); {
		case k < 8:
			x := randTable(c.r)
			lines = append(lines, fmt.Sprintf("%s = %d", x.expr(), x.result()))
		case k < 16:
			x := c.trainArith()
			if lang == "zh" && c.r.chance(0.5) {
				lines = append(lines, fmt.Sprintf("%d%s%d等于%d。", x.a, zhOps[x.op], x.b, x.result()))
			} else {
				lines = append(lines, fmt.Sprintf("%s = %d", x.expr(), x.result()))
			}
		default:
			lines = append(lines, sentences(lang, c.trainArith().steps()...))
		}
	}
	return strings.Join(lines, "\n")
}

func (c *corpusGen) trainWord(lang string) string {
	s, _, _ := c.stringItem(lang, SplitTrain, "corpus") // never fails, as above
	return s
}

func (c *corpusGen) lists(lang string) string {
	var lines []string
	zh := lang == "zh"
	for range c.r.between(3, 6) {
		var line string
		switch c.r.intn(7) {
		case 0:
			start, n := c.r.between(1, 20), c.r.between(4, 8)
			var xs []int
			for i := range n {
				xs = append(xs, start+i)
			}
			if zh {
				line = joinInts(xs, "、") + "。"
			} else {
				line = joinInts(xs, ", ") + "."
			}
		case 1:
			var items []Word
			c.draw(SplitTrain, KindCount, func() string { var k string; items, k = c.countList(); return k })
			var names []string
			for _, it := range items {
				names = append(names, word(it, lang))
			}
			if zh {
				line = fmt.Sprintf("%s：一共%d个词。", strings.Join(names, "、"), len(names))
			} else {
				line = fmt.Sprintf("%s: %d words.", strings.Join(names, ", "), len(names))
			}
		case 2:
			var xs []int
			c.draw(SplitTrain, KindSort, func() string { var k string; xs, k = c.sortList(); return k })
			s := slices.Sorted(slices.Values(xs))
			if zh {
				line = fmt.Sprintf("%s从小到大是%s。", joinInts(xs, "、"), joinInts(s, "、"))
			} else {
				line = fmt.Sprintf("%s in order: %s.", joinInts(xs, ", "), joinInts(s, ", "))
			}
		case 3:
			w := c.trainWord(lang)
			if zh {
				line = fmt.Sprintf("“%s”：%s。", w, spell(w, "、"))
			} else {
				line = fmt.Sprintf("%s: %s.", w, spell(w, ", "))
			}
		case 4:
			w := c.trainWord(lang)
			if zh {
				line = fmt.Sprintf("“%s”的第一个字是%s。", w, string([]rune(w)[0]))
			} else {
				line = fmt.Sprintf("The first letter of %s is %s.", w, w[:1])
			}
		case 5:
			w := c.trainWord(lang)
			if zh {
				line = fmt.Sprintf("“%s”倒过来是“%s”。", w, reverseString(w))
			} else {
				line = fmt.Sprintf("%s backwards is %s.", w, reverseString(w))
			}
		default:
			start, n := c.r.intn(20), c.r.between(4, 7)
			line = spell("abcdefghijklmnopqrstuvwxyz"[start:start+n], " ")
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

var smallTalk = map[string][][2]string{
	"en": {
		{"Hello!", "Hello! How can I help you today?"},
		{"Hi there.", "Hi! What would you like to know?"},
		{"Thank you!", "You're welcome."},
		{"Who are you?", "I am a small assistant. I know about numbers, words and the people of this world."},
		{"Good morning.", "Good morning! What can I do for you?"},
		{"Goodbye.", "Goodbye! Have a nice day."},
	},
	"zh": {
		{"你好！", "你好！有什么可以帮你的吗？"},
		{"谢谢！", "不客气。"},
		{"你是谁？", "我是一个小助手。我知道数字、词语和这个世界里的人。"},
		{"早上好。", "早上好！我能为你做什么？"},
		{"再见。", "再见！祝你今天愉快。"},
	},
}

// dialogue writes one conversation of one to three plain exchanges in
// ChatML, a fifth of them after a system prompt. Questions are about people
// of the train split and train arithmetic problems only.
func (c *corpusGen) dialogue(lang string) string {
	var msgs []tokenizer.Message
	if c.r.chance(0.2) {
		msgs = append(msgs, tokenizer.Message{Role: "system", Content: corpusSystem[lang]})
	}
	for range c.r.between(1, 3) {
		var q, a string
		switch k := c.r.intn(4); {
		case k < 2 && len(c.people[SplitTrain]) > 0:
			p := c.w.People[pick(c.r, c.people[SplitTrain])]
			attr := c.r.intn(numAttrs)
			q, a = c.w.question(p, attr, lang, c.r.intn(3)), c.w.statement(p, attr, lang, 0)
		case k == 2:
			x := c.trainArith()
			q = c.arithQuestion(x, lang)
			a = fmt.Sprintf("%s = %d", x.expr(), x.result()) + map[string]string{"en": ".", "zh": "。"}[lang]
		default:
			t := pick(c.r, smallTalk[lang])
			q, a = t[0], t[1]
		}
		msgs = append(msgs, tokenizer.Message{Role: "user", Content: q}, tokenizer.Message{Role: "assistant", Content: a})
	}
	s, err := tokenizer.FormatChat(msgs, false)
	if err != nil {
		panic("synth: corpus dialogue: " + err.Error()) // the roles above are always valid
	}
	return strings.TrimSuffix(s, "\n")
}

// toolUse writes one whole round trip of a tool task of the train split
// in ChatML: the tools' system message, the question, the call, the
// tool's result and the answer (English), as chat logs of a model that
// uses tools show them; so a tokenizer trained on the corpus has tokens
// for the calls' syntax.
func (c *corpusGen) toolUse() string {
	make := (*gen).calcRound
	if c.r.chance(0.5) && len(c.people[SplitTrain]) > 0 {
		make = (*gen).lookupRound
	}
	r, err := make(c.gen, SplitTrain)
	if err != nil {
		return c.dialogue("en")
	}
	sys, _ := ToolSystem() // all the built-in tools: never fails
	s, err := tokenizer.FormatChat(append([]tokenizer.Message{sys}, r.messages(true)...), false)
	if err != nil {
		panic("synth: corpus tool use: " + err.Error())
	}
	return strings.TrimSuffix(s, "\n")
}

var corpusSystem = map[string]string{"en": "You are a helpful assistant.", "zh": "你是一个乐于助人的助手。"}
