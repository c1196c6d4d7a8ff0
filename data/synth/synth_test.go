package synth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/golem-ml/golem/tokenizer"
)

func TestWorldDeterministicAndUnambiguous(t *testing.T) {
	a, b := NewWorld(WorldOptions{Seed: 7}), NewWorld(WorldOptions{Seed: 7})
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed gave different worlds")
	}
	if c := NewWorld(WorldOptions{Seed: 8}); reflect.DeepEqual(a, c) {
		t.Fatal("different seeds gave the same world")
	}
	w := DefaultWorld()
	if len(w.People) != 60 || len(w.Places) != 12 {
		t.Fatalf("default world has %d people and %d places, want 60 and 12", len(w.People), len(w.Places))
	}
	var en, zh []string
	for i, p := range w.People {
		if p.Friend == i || p.Friend < 0 || p.Friend >= len(w.People) {
			t.Errorf("%s has friend index %d", p.Name, p.Friend)
		}
		if p.Place < 0 || p.Place >= len(w.Places) || p.Age < 18 || p.Age > 79 {
			t.Errorf("%s: place %d, age %d", p.Name, p.Place, p.Age)
		}
		en, zh = append(en, strings.ToLower(p.Name)), append(zh, p.NameZh)
	}
	for _, pl := range w.Places {
		en, zh = append(en, strings.ToLower(pl.Name)), append(zh, pl.NameZh)
	}
	noneContains(t, "names", en)
	noneContains(t, "Chinese names", zh)
	for name, table := range map[string][]Word{"jobs": jobs, "colours": colours, "animals": animals, "things": things, "fruits": fruits, "list items": listItems} {
		var e, z []string
		for _, x := range table {
			e, z = append(e, x.En), append(z, x.Zh)
		}
		noneContains(t, name, e)
		noneContains(t, name+" (zh)", z)
	}
	big := NewWorld(WorldOptions{Seed: 3, People: 100000, Places: -1})
	if len(big.People) != 400 || len(big.Places) != 12 {
		t.Fatalf("clamped world has %d people and %d places, want 400 and 12", len(big.People), len(big.Places))
	}
}

// noneContains fails if a string of xs contains another.
func noneContains(t *testing.T, what string, xs []string) {
	t.Helper()
	for i, a := range xs {
		for j, b := range xs {
			if i != j && strings.Contains(a, b) {
				t.Errorf("%s: %q contains %q", what, a, b)
			}
		}
	}
}

func TestCorpusDeterministicSizedAndMixed(t *testing.T) {
	opts := CorpusOptions{Seed: 5, Bytes: 1 << 20, Chinese: 0.3}
	a, b := Corpus(opts), Corpus(opts)
	if a != b {
		t.Fatal("same options gave different corpora")
	}
	var buf bytes.Buffer
	if err := WriteCorpus(&buf, opts); err != nil || buf.String() != a {
		t.Fatalf("WriteCorpus differs from Corpus (err %v)", err)
	}
	if c := Corpus(CorpusOptions{Seed: 6, Bytes: 1 << 20, Chinese: 0.3}); c == a {
		t.Fatal("different seeds gave the same corpus")
	}
	if len(a) > opts.Bytes || len(a) < opts.Bytes-2000 {
		t.Fatalf("corpus is %d bytes, want at most %d and within a paragraph of it", len(a), opts.Bytes)
	}
	paras := strings.Split(strings.TrimSuffix(a, "\n\n"), "\n\n")
	zh, dialogues, arithmetic := 0, 0, 0
	for _, p := range paras {
		if hasHan(p) {
			zh++
		}
		if strings.HasPrefix(p, "<|im_start|>") {
			msgs := parseChatML(t, p+"\n")
			if msgs[len(msgs)-1].Role != "assistant" {
				t.Errorf("dialogue does not end with an answer: %q", p)
			}
			if s, err := tokenizer.FormatChat(msgs, false); err != nil || s != p+"\n" {
				t.Errorf("dialogue is not what FormatChat renders (err %v):\n%q\n%q", err, p, s)
			}
			dialogues++
		}
		if strings.Contains(p, " = ") {
			arithmetic++
		}
	}
	frac := float64(zh) / float64(len(paras))
	if math.Abs(frac-0.3) > 0.05 {
		t.Errorf("%.2f of paragraphs are Chinese, want about 0.3", frac)
	}
	if dialogues < len(paras)/5 || arithmetic < len(paras)/6 {
		t.Errorf("%d paragraphs: %d dialogues, %d with arithmetic", len(paras), dialogues, arithmetic)
	}
	for _, p := range DefaultWorld().People {
		for _, s := range []string{DefaultWorld().statement(p, attrPlace, "en", 0), DefaultWorld().statement(p, attrPlace, "zh", 0)} {
			if !strings.Contains(a, p.Name) || !strings.Contains(a, p.NameZh) {
				t.Errorf("corpus never names %s / %s (e.g. %q)", p.Name, p.NameZh, s)
			}
		}
	}
	if en := Corpus(CorpusOptions{Seed: 1, Bytes: 200000}); hasHan(en) {
		t.Error("Chinese: 0 gave Chinese text")
	}
	if got := Corpus(CorpusOptions{Seed: 1, Bytes: 10}); got != "" {
		t.Errorf("a 10-byte corpus is %q, want empty (no paragraph fits)", got)
	}
}

func allTasks(t *testing.T, split, lang string, seed int64, n int) []Task {
	t.Helper()
	ts, err := Tasks(TaskOptions{Seed: seed, N: n, Split: split, Lang: lang, System: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != n {
		t.Fatalf("got %d tasks, want %d", len(ts), n)
	}
	return ts
}

func TestTasksDeterministic(t *testing.T) {
	a := allTasks(t, SplitTrain, "mix", 3, 500)
	b := allTasks(t, SplitTrain, "mix", 3, 500)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same options gave different tasks")
	}
	if c := allTasks(t, SplitTrain, "mix", 4, 500); reflect.DeepEqual(a, c) {
		t.Fatal("different seeds gave the same tasks")
	}
	kinds, langs, system := map[string]int{}, map[string]int{}, 0
	for _, x := range a {
		kinds[x.Kind]++
		langs[x.Lang]++
		if x.Prompt[0].Role == "system" {
			system++
		}
		if SplitOf(x.Key) != SplitTrain {
			t.Errorf("train task has held-out key %q", x.Key)
		}
	}
	if len(kinds) != len(Kinds()) {
		t.Errorf("500 tasks cover kinds %v, want all of %v", slices.Sorted(maps.Keys(kinds)), Kinds())
	}
	if langs["zh"] < 200 || langs["en"] < 200 {
		t.Errorf("mix gave %v", langs)
	}
	if system < 60 || system > 140 {
		t.Errorf("System 0.2 gave %d system prompts in 500", system)
	}
}

func TestTaskOptionErrors(t *testing.T) {
	for _, o := range []TaskOptions{
		{N: 1, Split: "test"}, {N: 1, Lang: "fr"}, {N: -1}, {N: 1, Kinds: []string{"poetry"}},
		{N: 1, Lang: "zh", Kinds: []string{KindUppercase}}, {N: 1, System: 2},
		{N: 1, Split: SplitHeldout, Kinds: []string{KindFact}, World: trainOnlyWorld()},
		{N: 1, World: &World{}},
		{N: 1, World: &World{People: []Person{{Name: "A", NameZh: "甲"}, {Name: "B", NameZh: "乙", Friend: 1}}, Places: []Place{{"X", "X"}}}},
	} {
		if _, err := Tasks(o); err == nil {
			t.Errorf("Tasks(%+v) gave no error", o)
		}
	}
	if err := trainOnlyWorld().Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := Tasks(TaskOptions{N: 5, Kinds: []string{KindFact}, World: trainOnlyWorld()}); err != nil {
		t.Fatal(err)
	}
	_, err := Tasks(TaskOptions{N: 1, Split: SplitHeldout, Kinds: []string{KindFact}, World: trainOnlyWorld()})
	if err == nil || !strings.Contains(err.Error(), "no heldout person") {
		t.Errorf("held-out facts in a world without held-out people: error %v", err)
	}
	ts := MustTasks(TaskOptions{N: 50, Lang: "zh", Kinds: []string{KindSort, KindRefusal}})
	for _, x := range ts {
		if x.Kind != KindSort && x.Kind != KindRefusal || x.Lang != "zh" {
			t.Fatalf("asked for Chinese sort and refusal, got %s %s", x.Lang, x.Kind)
		}
	}
}

// trainOnlyWorld returns a world whose people are all in the train split.
func trainOnlyWorld() *World {
	w := &World{Places: []Place{{"Aford", "阿福德"}, {"Bford", "布福德"}}}
	for i := 0; len(w.People) < 3; i++ {
		p := Person{Name: "P" + strconv.Itoa(i), NameZh: "人" + strconv.Itoa(i), Job: jobs[0], Colour: colours[0], Pet: animals[0], Age: 30}
		if SplitOf(personKey(p)) == SplitTrain {
			w.People = append(w.People, p)
		}
	}
	for i := range w.People {
		w.People[i].Friend = (i + 1) % len(w.People)
	}
	return w
}

// TestHeldoutDisjoint: no key, prompt or arithmetic problem of the held-out
// split is in the train split, nor stated in the corpus or in train answers.
func TestHeldoutDisjoint(t *testing.T) {
	train := allTasks(t, SplitTrain, "mix", 1, 4000)
	held := allTasks(t, SplitHeldout, "mix", 2, 1500)
	trainKeys, trainPrompts := map[string]bool{}, map[string]bool{}
	var trainText strings.Builder
	for _, x := range train {
		trainKeys[x.Key] = true
		trainPrompts[x.User()] = true
		trainText.WriteString(x.User() + "\n" + x.Answer + "\n")
	}
	corpus := Corpus(CorpusOptions{Seed: 1, Bytes: 2 << 20, Chinese: 0.5})
	inTrain, inCorpus := statedExprs(trainText.String()), statedExprs(corpus)
	if len(inTrain) < 1000 || len(inCorpus) < 1000 {
		t.Fatalf("found only %d and %d stated problems", len(inTrain), len(inCorpus))
	}
	kinds := map[string]bool{}
	for _, x := range held {
		kinds[x.Kind] = true
		if SplitOf(x.Key) != SplitHeldout {
			t.Fatalf("held-out task has train key %q", x.Key)
		}
		if trainKeys[x.Key] {
			t.Errorf("key %q is in both splits", x.Key)
		}
		if trainPrompts[x.User()] {
			t.Errorf("prompt %q is in both splits", x.User())
		}
		if x.Kind == KindArithmetic || x.Kind == KindNumberOnly {
			expr := x.Key[len("add:"):]
			expr = strings.NewReplacer("+", " + ", "-", " - ", "*", " × ").Replace(expr)
			if inTrain[expr] {
				t.Errorf("held-out problem %s is stated in the train tasks", expr)
			}
			if inCorpus[expr] {
				t.Errorf("held-out problem %s is stated in the corpus", expr)
			}
		}
		if x.Kind == KindFact {
			name := strings.TrimPrefix(x.Key, "person:")
			if strings.Contains(corpus, "User: Where does "+name+" live?") || strings.Contains(corpus, "User: How old is "+name+"?") {
				t.Errorf("the corpus's dialogues ask about held-out person %s", name)
			}
		}
	}
	if len(kinds) != len(Kinds()) {
		t.Errorf("held-out tasks cover kinds %v, want all", slices.Sorted(maps.Keys(kinds)))
	}
}

// statedExprs returns every "a op b" that text states as "a op b =".
func statedExprs(text string) map[string]bool {
	out := map[string]bool{}
	for _, m := range exprRE.FindAllStringSubmatch(text, -1) {
		out[m[1]] = true
	}
	return out
}

var exprRE = regexp.MustCompile(`(?:^|[^0-9])([0-9]+ [-+×] [0-9]+) =`)

func TestReferenceAnswersPass(t *testing.T) {
	for _, lang := range []string{"en", "zh"} {
		for _, split := range []string{SplitTrain, SplitHeldout} {
			for _, x := range allTasks(t, split, lang, 11, 1500) {
				s := x.Check(x.Answer)
				if !s.Correct || !s.FollowsFormat || s.Helpful != 1 {
					t.Errorf("%s %s: reference %q scores %+v for %q", x.Lang, x.Kind, x.Answer, s, x.User())
				}
				if r := x.Reward(x.Answer); r != 1.2 {
					t.Errorf("%s: reference reward %v, want 1.2", x.Kind, r)
				}
			}
		}
	}
}

// wrongAnswer changes the reference answer's content, keeping its shape.
func wrongAnswer(x Task) string {
	w := x.Want
	replaceLast := func(s, old, new string) string {
		i := strings.LastIndex(s, old)
		return s[:i] + new + s[i+len(old):]
	}
	switch w.Match {
	case MatchNumber:
		n, _ := strconv.Atoi(w.Value)
		return replaceLast(x.Answer, w.Value, strconv.Itoa(n+1))
	case MatchNumbers:
		sep := ", "
		if x.Lang == "zh" {
			sep = "、"
		}
		rev := slices.Clone(w.Values)
		slices.Reverse(rev)
		return replaceLast(x.Answer, strings.Join(w.Values, sep), strings.Join(rev, sep))
	case MatchWord:
		if x.Lang == "zh" {
			return replaceLast(x.Answer, w.Value, "无无")
		}
		return replaceLast(x.Answer, w.Value, "qqq")
	case MatchMention:
		if x.Kind == KindUppercase {
			return strings.ReplaceAll(x.Answer, strings.ToUpper(w.Value), strings.ToUpper(w.Avoid[0]))
		}
		return strings.ReplaceAll(x.Answer, w.Value, w.Avoid[0])
	}
	if x.Lang == "zh" {
		return "好的！首先，准备好材料。"
	}
	return "Sure! First, get the materials you need."
}

func TestCheckRejectsWrongAnswers(t *testing.T) {
	for _, lang := range []string{"en", "zh"} {
		for _, x := range allTasks(t, SplitTrain, lang, 12, 1500) {
			bad := wrongAnswer(x)
			if s := x.Check(bad); s.Correct {
				t.Errorf("%s %s: wrong answer %q passes (reference %q)", x.Lang, x.Kind, bad, x.Answer)
			}
			if s := x.Check(""); s.Correct || s.FollowsFormat || s.Helpful != 0 || s.Reward() != 0 {
				t.Errorf("%s: empty answer scores %+v", x.Kind, s)
			}
			if s := x.Check(x.Answer + " " + x.Answer); x.Kind != KindOneWord && x.Kind != KindNumberOnly && s.Helpful >= 1 {
				t.Errorf("%s: a repeated answer is fully helpful: %+v", x.Kind, s)
			}
			if s := x.Check(x.Answer + "\nUser: And then?"); s.Helpful >= 1 {
				t.Errorf("%s: an answer that writes the next turn is fully helpful: %+v", x.Kind, s)
			}
			if x.Kind != KindRefusal {
				if s := x.Check(refusalEn); s.Correct || s.Helpful != 0 {
					t.Errorf("%s: refusing a harmless request scores %+v", x.Kind, s)
				}
			}
		}
	}
}

func TestCheckFormats(t *testing.T) {
	byKind := map[string]Task{}
	for _, x := range allTasks(t, SplitTrain, "en", 13, 400) {
		byKind[x.Kind] = x
	}
	one := byKind[KindOneWord]
	if s := one.Check("It is " + one.Answer + "."); s.Correct || s.FollowsFormat {
		t.Errorf("one-word task accepts a sentence: %+v", s)
	}
	if s := one.Check(strings.ToUpper(one.Answer) + "."); !s.Correct || !s.FollowsFormat {
		t.Errorf("one-word task rejects %q: %+v", strings.ToUpper(one.Answer)+".", s)
	}
	up := byKind[KindUppercase]
	if s := up.Check(strings.ToLower(up.Answer)); s.Correct || s.FollowsFormat {
		t.Errorf("uppercase task accepts lower case %q: %+v", strings.ToLower(up.Answer), s)
	}
	num := byKind[KindNumberOnly]
	worked := "Let's think. The answer is " + num.Answer + "."
	if s := num.Check(worked); s.Correct || s.FollowsFormat {
		t.Errorf("number-only task accepts %q: %+v", worked, s)
	}
	ar := byKind[KindArithmetic]
	bare := ar.Want.Value
	if s := ar.Check(bare); !s.Correct || s.FollowsFormat {
		t.Errorf("arithmetic: a bare right number should be correct without the format: %+v", s)
	}
	if s := ar.Check("The answer is -" + bare + "."); s.Correct {
		t.Errorf("arithmetic: the negative of the answer passes: %+v", s)
	}
}

func TestNumbers(t *testing.T) {
	for _, c := range []struct{ in, final string }{
		{"The answer is 19.", "19"},
		{"53 - 17 = 36", "36"},
		{"答案是30。", "30"},
		{"I think 12. The answer is 19. Or 20.", "19"},
		{"The answer is -5.", "-5"},
		{"x = -5", "-5"},
		{"It is 2.5 now", "2.5"},
		{"12 -3", "3"},
		{"no number", ""},
		{"Answer: 007", "007"},
		{"İİ 3. THE ANSWER IS 4. 5", "4"},
	} {
		if got := finalNumber(c.in); got != c.final {
			t.Errorf("finalNumber(%q) = %q, want %q", c.in, got, c.final)
		}
	}
	if !sameNumber("007", "7") || sameNumber("-5", "5") || sameNumber("", "") || !sameNumber("-0", "0") {
		t.Error("sameNumber is wrong")
	}
	for _, c := range []struct{ in, want string }{
		{"The answer is tac.", "tac"}, {"tac", "tac"}, {"It is \"tac\".", "tac"},
		{"答案是托拉米。", "托拉米"}, {"托拉米", "托拉米"}, {"倒过来是托拉米", "倒过来是托拉米"}, {"托拉米。", "托拉米"}, {"是，托拉米", ""},
	} {
		if got := finalWord(c.in); got != c.want {
			t.Errorf("finalWord(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if !mentions("Mira lives in Tallow.", "tallow") || mentions("Mira lives in Tallowford.", "Tallow") || !mentions("two cats", "cat") {
		t.Error("mentions is wrong")
	}
}

func TestAnnotator(t *testing.T) {
	tasks := allTasks(t, SplitTrain, "mix", 21, 2000)
	exact := Annotator{}
	for _, x := range tasks {
		ref, bad := x.Answer, wrongAnswer(x)
		long := ref + " " + ref
		responses := []string{bad, long, ref, ""}
		got := exact.Rank(x, responses)
		if got[0] != 2 || got[3] != 3 || slices.Index(got, 1) > slices.Index(got, 0) && x.Kind != KindOneWord && x.Kind != KindNumberOnly {
			t.Fatalf("%s: ranking %v of %q, want the reference first and the empty answer last", x.Kind, got, responses)
		}
		if exact.Compare(x, ref, bad) != -1 || exact.Compare(x, bad, ref) != 1 || exact.Compare(x, ref, ref) != 0 {
			t.Fatalf("%s: Compare without noise is wrong", x.Kind)
		}
	}
	const noise = 0.1
	noisy := Annotator{Noise: noise, Seed: 9}
	flips, swaps, adjacent := 0, 0, 0
	for _, x := range tasks {
		ref, bad := x.Answer, wrongAnswer(x)
		c := noisy.Compare(x, ref, bad)
		if c != -noisy.Compare(x, bad, ref) {
			t.Fatal("Compare is not antisymmetric")
		}
		if c > 0 {
			flips++
		}
		responses := []string{"", bad, ref}
		got := noisy.Rank(x, responses)
		if !slices.Equal(got, noisy.Rank(x, responses)) {
			t.Fatal("Rank is not reproducible")
		}
		truth := exact.Rank(x, responses)
		swaps += discordant(truth, got)
		adjacent += len(responses) - 1
	}
	if f := float64(flips) / float64(len(tasks)); math.Abs(f-noise) > 0.025 {
		t.Errorf("Compare flipped %.3f of preferences, want about %v", f, noise)
	}
	if f := float64(swaps) / float64(adjacent); math.Abs(f-noise) > 0.025 {
		t.Errorf("Rank put %.3f discordant pairs per adjacent pair, want about %v", f, noise)
	}
}

// discordant counts the pairs that two rankings order differently.
func discordant(a, b []int) int {
	pos := make([]int, len(b))
	for i, x := range b {
		pos[x] = i
	}
	n := 0
	for i := range a {
		for j := i + 1; j < len(a); j++ {
			if pos[a[i]] > pos[a[j]] {
				n++
			}
		}
	}
	return n
}

func TestExportShapes(t *testing.T) {
	tasks := allTasks(t, SplitTrain, "mix", 31, 50)
	var sft, prompts bytes.Buffer
	if err := WriteSFT(&sft, tasks); err != nil {
		t.Fatal(err)
	}
	if err := WritePrompts(&prompts, tasks); err != nil {
		t.Fatal(err)
	}
	sftLines := strings.Split(strings.TrimSpace(sft.String()), "\n")
	promptLines := strings.Split(strings.TrimSpace(prompts.String()), "\n")
	if len(sftLines) != len(tasks) || len(promptLines) != len(tasks) {
		t.Fatalf("%d and %d lines for %d tasks", len(sftLines), len(promptLines), len(tasks))
	}
	for i, x := range tasks {
		var rec struct {
			Messages []struct{ Role, Content string }
		}
		if err := strictUnmarshal(sftLines[i], &rec); err != nil {
			t.Fatal(err)
		}
		last := rec.Messages[len(rec.Messages)-1]
		if last.Role != "assistant" || last.Content != x.Answer || rec.Messages[len(rec.Messages)-2].Content != x.User() {
			t.Fatalf("line %d: %s", i+1, sftLines[i])
		}
		var p struct {
			Prompt []struct{ Role, Content string }
		}
		if err := strictUnmarshal(promptLines[i], &p); err != nil || p.Prompt[len(p.Prompt)-1].Content != x.User() {
			t.Fatalf("line %d: %s (%v)", i+1, promptLines[i], err)
		}
	}

	an := Annotator{Seed: 1}
	x := tasks[0]
	r := an.RankAll(x, []string{wrongAnswer(x), x.Answer, wrongAnswer(x), ""})
	if len(r.Completions) != 3 || r.Completions[r.Ranking[0]] != x.Answer {
		t.Fatalf("RankAll gave %+v", r)
	}
	var rk, pref bytes.Buffer
	if err := WriteRankings(&rk, []Ranked{r}); err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Prompt      []struct{ Role, Content string }
		Completions [][]struct{ Role, Content string }
		Ranking     []int
	}
	if err := strictUnmarshal(rk.String(), &rec); err != nil || len(rec.Completions) != 3 || rec.Completions[rec.Ranking[0]][0].Content != x.Answer {
		t.Fatalf("ranking line %s (%v)", rk.String(), err)
	}
	pairs := r.Pairs()
	if len(pairs) != 3 || pairs[0].Chosen != x.Answer {
		t.Fatalf("Pairs gave %+v", pairs)
	}
	if err := WritePreferences(&pref, pairs); err != nil || strings.Count(pref.String(), "\n") != 3 || !strings.Contains(pref.String(), `"chosen":[{"role":"assistant"`) {
		t.Fatalf("preferences: %v\n%s", err, pref.String())
	}
	for _, bad := range []Ranked{
		{Prompt: x.Prompt, Completions: []string{"a"}, Ranking: []int{0}},
		{Prompt: x.Prompt, Completions: []string{"a", "a"}, Ranking: []int{0, 1}},
		{Prompt: x.Prompt, Completions: []string{"a", "b"}, Ranking: []int{0, 0}},
		{Prompt: x.Prompt, Completions: []string{"a", "b"}, Ranking: []int{0, 2}},
	} {
		if err := WriteRankings(&bytes.Buffer{}, []Ranked{r, bad}); err == nil || !strings.Contains(err.Error(), "ranking 1") {
			t.Errorf("WriteRankings(%+v) error %v, want one naming ranking 1", bad, err)
		}
	}
}

func strictUnmarshal(s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func TestTasksRoundTrip(t *testing.T) {
	tasks := allTasks(t, SplitHeldout, "mix", 41, 300)
	var buf bytes.Buffer
	if err := WriteTasks(&buf, tasks); err != nil {
		t.Fatal(err)
	}
	got, err := ReadTasks(&buf, "tasks.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, tasks) {
		t.Fatal("tasks changed on the way through JSON")
	}
	for i, x := range got {
		if x.Check(x.Answer) != tasks[i].Check(x.Answer) || x.Check(wrongAnswer(x)).Correct {
			t.Fatalf("task %d checks differently after reading back", i)
		}
	}
	good, _ := json.Marshal(tasks[0])
	for _, c := range []struct{ text, want string }{
		{string(good) + "\n{", "tasks.jsonl line 2: unexpected EOF"},
		{string(good) + "\n\n" + strings.Replace(string(good), `"match":"`, `"match":"x`, 1), `line 3: want.match "x`},
		{`{"kind":"fact","key":"k","lang":"en","prompt":[{"role":"user","content":"q"}],"want":{"match":"number","value":"x"}}`, `line 1: want.value "x" is not a number`},
		{`{"kind":"fact","key":"k","lang":"en","prompt":[],"want":{"match":"refusal"}}`, "line 1: prompt has no user message"},
		{`{"kind":"fact","key":"k","lang":"en","prompt":[{"role":"user","content":"q"}],"want":{"match":"refusal"},"extra":1}`, `line 1: json: unknown field "extra"`},
		{`{"kind":"poem"}`, `line 1: kind "poem" unknown`},
		{strings.Repeat("x", maxTaskLine+10), "line 1: longer than"},
	} {
		_, err := ReadTasks(strings.NewReader(c.text), "tasks.jsonl")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ReadTasks(%.60q) error %v, want %q", c.text, err, c.want)
		}
	}
}

func TestEvaluate(t *testing.T) {
	tasks := allTasks(t, SplitHeldout, "en", 51, 200)
	answers := make([]string, len(tasks))
	for i, x := range tasks {
		answers[i] = x.Answer
		if i%2 == 1 {
			answers[i] = wrongAnswer(x)
		}
	}
	all, byKind, err := Evaluate(tasks, answers)
	if err != nil {
		t.Fatal(err)
	}
	if all.N != 200 || all.Correct != 0.5 {
		t.Errorf("Evaluate: %v, want correct=0.5 of 200", all)
	}
	n := 0
	for _, r := range byKind {
		n += r.N
	}
	if n != 200 || len(byKind) < 8 {
		t.Errorf("by kind: %v", byKind)
	}
	if _, _, err := Evaluate(tasks, answers[:3]); err == nil {
		t.Error("Evaluate accepted 3 answers for 200 tasks")
	}
}

func FuzzCheck(f *testing.F) {
	tasks := MustTasks(TaskOptions{Seed: 1, N: 40, Lang: "mix"})
	for _, x := range tasks {
		f.Add(x.Answer)
	}
	f.Add("The answer is -")
	f.Add("答案是")
	f.Add("\xff\xfe答案是\x80")
	f.Fuzz(func(t *testing.T, s string) {
		for _, x := range tasks {
			sc := x.Check(s)
			if sc.Helpful < 0 || sc.Helpful > 1 || math.IsNaN(sc.Helpful) {
				t.Fatalf("helpful %v", sc.Helpful)
			}
		}
		_ = finalWord(s)
		_ = numbers(s)
		_ = strings.IndexFunc(s, unicode.IsUpper)
	})
}

func FuzzReadTasks(f *testing.F) {
	var buf bytes.Buffer
	WriteTasks(&buf, MustTasks(TaskOptions{Seed: 1, N: 5, Lang: "mix"}))
	f.Add(buf.String())
	f.Add(`{"kind":"fact"}`)
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := ReadTasks(strings.NewReader(s), "fuzz")
		if err != nil {
			return
		}
		for _, x := range ts {
			x.Check(s)
			x.Check(x.Answer)
		}
	})
}

func BenchmarkCorpus(b *testing.B) {
	b.SetBytes(4 << 20)
	for b.Loop() {
		Corpus(CorpusOptions{Seed: 1, Bytes: 4 << 20, Chinese: 0.3})
	}
}

func BenchmarkTasks(b *testing.B) {
	for b.Loop() {
		MustTasks(TaskOptions{Seed: 1, N: 1000, Lang: "mix"})
	}
}

func ExampleTasks() {
	tasks := MustTasks(TaskOptions{Seed: 1, N: 1, Kinds: []string{KindArithmetic}})
	x := tasks[0]
	fmt.Println(x.User())
	fmt.Println(x.Answer)
	fmt.Println(x.Check("The answer is " + x.Want.Value + ".").Correct)
	fmt.Println(x.Check("I don't know.").Correct)
	// Output:
	// Compute 78 - 41.
	// Let's think step by step. 78 - 41 = 78 - 40 - 1. 78 - 40 = 38. 38 - 1 = 37. The answer is 37.
	// true
	// false
}

// parseChatML splits ChatML text into its messages, failing the test on
// anything that is not a sequence of well-formed turns.
func parseChatML(t *testing.T, s string) []tokenizer.Message {
	t.Helper()
	var msgs []tokenizer.Message
	for s != "" {
		rest, ok := strings.CutPrefix(s, tokenizer.ImStart)
		if !ok {
			t.Fatalf("turn does not start with %s: %q", tokenizer.ImStart, s)
		}
		role, rest, ok := strings.Cut(rest, "\n")
		content, rest, ok2 := strings.Cut(rest, tokenizer.ImEnd+"\n")
		if !ok || !ok2 || strings.Contains(content, tokenizer.ImStart) {
			t.Fatalf("malformed turn: %q", s)
		}
		msgs = append(msgs, tokenizer.Message{Role: role, Content: content})
		s = rest
	}
	return msgs
}

// TestAnnotatorPreferences: every right answer beats every wrong one, equal
// answers give no pair, identical texts are one answer, and noise turns
// some pairs round, reproducibly.
func TestAnnotatorPreferences(t *testing.T) {
	tasks := MustTasks(TaskOptions{Seed: 3, N: 200, Kinds: []string{KindFirstLetter, KindCount}})
	x := tasks[0]
	right2 := x.Answer + " "
	if (Annotator{}).Judge(x, right2) != (Annotator{}).Judge(x, x.Answer) {
		t.Fatalf("a trailing space changed the judgement of %q", x.Answer)
	}
	ps := Annotator{Seed: 1}.Preferences(x, []string{wrongAnswer(x), x.Answer, wrongAnswer(x), right2, x.Answer})
	if len(ps) != 2 {
		t.Fatalf("want 2 pairs (two right answers over one wrong one), got %+v", ps)
	}
	for _, p := range ps {
		if p.Rejected != wrongAnswer(x) || (p.Chosen != x.Answer && p.Chosen != right2) || len(p.Prompt) == 0 {
			t.Errorf("pair %+v", p)
		}
	}
	if ps := (Annotator{}).Preferences(x, []string{x.Answer, x.Answer}); len(ps) != 0 {
		t.Errorf("one answer twice gave pairs %+v", ps)
	}
	// With noise, about a tenth of the pairs of two-answer sets turn round.
	an := Annotator{Noise: 0.1, Seed: 7}
	flipped, n := 0, 0
	for _, tk := range tasks {
		ps := an.Preferences(tk, []string{wrongAnswer(tk), tk.Answer})
		if len(ps) != 1 {
			t.Fatalf("%s: %+v", tk.Key, ps)
		}
		n++
		if ps[0].Chosen != tk.Answer {
			flipped++
		}
		if again := an.Preferences(tk, []string{wrongAnswer(tk), tk.Answer}); again[0].Chosen != ps[0].Chosen {
			t.Fatalf("%s: not reproducible", tk.Key)
		}
	}
	if flipped < n/25 || flipped > n/5 {
		t.Errorf("noise 0.1 turned %d of %d pairs round", flipped, n)
	}
}
