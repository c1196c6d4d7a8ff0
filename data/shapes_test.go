package data

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q\ndoes not contain %q", err, want)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func u(s string) Message  { return Message{Role: "user", Content: s} }
func a(s string) Message  { return Message{Role: "assistant", Content: s} }
func sy(s string) Message { return Message{Role: "system", Content: s} }
func ms(m ...Message) []Message {
	return m
}
func yes() *bool { b := true; return &b }
func no() *bool  { b := false; return &b }

// roundTrip writes examples as JSON lines, reads them back and checks that
// nothing changed but the source.
func roundTrip(t *testing.T, exs []Example) {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteJSONL(&buf, exs); err != nil {
		t.Fatal(err)
	}
	back, err := Read(writeTemp(t, "out.jsonl", buf.String()), ReadOptions{})
	if err != nil {
		t.Fatalf("reading back: %v\n%s", err, firstLine(buf.String()))
	}
	if len(back.Examples) != len(exs) {
		t.Fatalf("read back %d examples, wrote %d", len(back.Examples), len(exs))
	}
	for i := range exs {
		want, got := exs[i], back.Examples[i]
		want.Source, got.Source = "", ""
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("example %d changed in the round trip:\ngot  %+v\nwant %+v\nline %s", i+1, got, want, strings.Split(buf.String(), "\n")[i])
		}
	}
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }

// Every shape, in standard and conversational form, as JSON lines, reads
// to the expected example, is detected, and survives a round trip.
func TestShapes(t *testing.T) {
	tests := []struct {
		name   string
		line   string
		format Format
		want   []Example
	}{
		{"text", `{"text": "The sky is blue."}`, FormatText,
			[]Example{{Kind: LanguageModeling, Text: "The sky is blue.", Completion: ms(a("The sky is blue.")), Plain: true}}},
		{"messages", `{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Blue."}, {"role": "user", "content": "Grass?"}, {"role": "assistant", "content": "Green."}]}`, FormatMessages,
			[]Example{{Kind: LanguageModeling, Completion: ms(sy("Be brief."), u("Sky?"), a("Blue."), u("Grass?"), a("Green."))}}},
		{"prompt-completion standard", `{"prompt": "The sky is", "completion": " blue."}`, FormatPromptCompletion,
			[]Example{{Kind: PromptCompletion, Prompt: ms(u("The sky is")), Completion: ms(a(" blue.")), Plain: true}}},
		{"prompt-completion conversational", `{"prompt": [{"role": "user", "content": "What color is the sky?"}], "completion": [{"role": "assistant", "content": "It is blue."}]}`, FormatPromptCompletion,
			[]Example{{Kind: PromptCompletion, Prompt: ms(u("What color is the sky?")), Completion: ms(a("It is blue."))}}},
		{"preference standard", `{"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}`, FormatPreference,
			[]Example{{Kind: Preference, Prompt: ms(u("The sky is")), Chosen: ms(a(" blue.")), Rejected: ms(a(" green.")), Plain: true}}},
		{"preference conversational", `{"prompt": [{"role": "user", "content": "Sky?"}], "chosen": [{"role": "assistant", "content": "Blue."}], "rejected": [{"role": "assistant", "content": "Green."}]}`, FormatPreference,
			[]Example{{Kind: Preference, Prompt: ms(u("Sky?")), Chosen: ms(a("Blue.")), Rejected: ms(a("Green."))}}},
		{"implicit preference standard", `{"chosen": "The sky is blue.", "rejected": "The sky is green."}`, FormatPreference,
			[]Example{{Kind: Preference, Prompt: ms(u("The sky is")), Chosen: ms(a(" blue.")), Rejected: ms(a(" green.")), Plain: true}}},
		{"implicit preference standard, no shared word", `{"chosen": "Blue.", "rejected": "Green."}`, FormatPreference,
			[]Example{{Kind: Preference, Chosen: ms(a("Blue.")), Rejected: ms(a("Green.")), Plain: true}}},
		{"implicit preference conversational", `{"chosen": [{"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Blue."}], "rejected": [{"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Green."}]}`, FormatPreference,
			[]Example{{Kind: Preference, Prompt: ms(u("Sky?")), Chosen: ms(a("Blue.")), Rejected: ms(a("Green."))}}},
		{"unpaired preference standard", `{"prompt": "The sky is", "completion": " blue.", "label": true}`, FormatUnpairedPreference,
			[]Example{{Kind: UnpairedPreference, Prompt: ms(u("The sky is")), Completion: ms(a(" blue.")), Label: yes(), Plain: true}}},
		{"unpaired preference conversational", `{"prompt": [{"role": "user", "content": "Sky?"}], "completion": [{"role": "assistant", "content": "Green."}], "label": false}`, FormatUnpairedPreference,
			[]Example{{Kind: UnpairedPreference, Prompt: ms(u("Sky?")), Completion: ms(a("Green.")), Label: no()}}},
		{"alpaca", `{"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"}`, FormatAlpaca,
			[]Example{{Kind: PromptCompletion, Prompt: ms(u("Add the numbers.\n2 and 3")), Completion: ms(a("5"))}}},
		{"alpaca, system and history", `{"instruction": "And 4 and 4?", "input": "", "output": "8", "system": "You add.", "history": [["Add 2 and 3.", "5"]]}`, FormatAlpaca,
			[]Example{{Kind: PromptCompletion, Prompt: ms(sy("You add."), u("Add 2 and 3."), a("5"), u("And 4 and 4?")), Completion: ms(a("8"))}}},
		{"alpaca preference", `{"instruction": "Add 2 and 3.", "chosen": "5", "rejected": "6"}`, FormatAlpaca,
			[]Example{{Kind: Preference, Prompt: ms(u("Add 2 and 3.")), Chosen: ms(a("5")), Rejected: ms(a("6"))}}},
		{"self-instruct", `{"id": "t1", "instruction": "Name the color.", "instances": [{"input": "sky", "output": "blue"}, {"input": "", "output": "red"}], "is_classification": false}`, FormatSelfInstruct,
			[]Example{
				{Kind: PromptCompletion, Prompt: ms(u("Name the color.\nsky")), Completion: ms(a("blue"))},
				{Kind: PromptCompletion, Prompt: ms(u("Name the color.")), Completion: ms(a("red"))}}},
		{"sharegpt", `{"conversations": [{"from": "human", "value": "Sky?"}, {"from": "gpt", "value": "Blue."}], "system": "Be brief."}`, FormatShareGPT,
			[]Example{{Kind: LanguageModeling, Completion: ms(sy("Be brief."), u("Sky?"), a("Blue."))}}},
		{"sharegpt preference (LLaMA-Factory)", `{"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Sky?"}], "chosen": {"from": "gpt", "value": "Blue."}, "rejected": {"from": "gpt", "value": "Green."}}`, FormatShareGPT,
			[]Example{{Kind: Preference, Prompt: ms(sy("Be brief."), u("Sky?")), Chosen: ms(a("Blue.")), Rejected: ms(a("Green."))}}},
		{"hh", `{"chosen": "\n\nHuman: Sky?\n\nAssistant: Blue.\n\nHuman: Sure?\n\nAssistant: Yes.", "rejected": "\n\nHuman: Sky?\n\nAssistant: Blue.\n\nHuman: Sure?\n\nAssistant: No, green."}`, FormatHH,
			[]Example{{Kind: Preference, Prompt: ms(u("Sky?"), a("Blue."), u("Sure?")), Chosen: ms(a("Yes.")), Rejected: ms(a("No, green."))}}},
		{"hh explicit prompt", `{"prompt": "\n\nHuman: Sky?\n\nAssistant:", "chosen": " Blue.", "rejected": " Green."}`, FormatHH,
			[]Example{{Kind: Preference, Prompt: ms(u("Sky?")), Chosen: ms(a("Blue.")), Rejected: ms(a("Green."))}}},
		{"ranking standard", `{"prompt": "2+3=", "completions": ["6", "5", "five"], "ranking": [1, 2, 0]}`, FormatRanking,
			[]Example{{Kind: Ranking, Prompt: ms(u("2+3=")), Completions: [][]Message{ms(a("6")), ms(a("5")), ms(a("five"))}, Ranking: []int{1, 2, 0}, Plain: true}}},
		{"ranking conversational", `{"prompt": [{"role": "user", "content": "2+3?"}], "completions": [[{"role": "assistant", "content": "6"}], [{"role": "assistant", "content": "5"}]], "ranking": [1, 0]}`, FormatRanking,
			[]Example{{Kind: Ranking, Prompt: ms(u("2+3?")), Completions: [][]Message{ms(a("6")), ms(a("5"))}, Ranking: []int{1, 0}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if f, err := Detect([]byte(tt.line)); err != nil || f != tt.format {
				t.Fatalf("Detect = %q, %v; want %q", f, err, tt.format)
			}
			// Two records: the second is checked against the first's shape.
			path := writeTemp(t, "d.jsonl", tt.line+"\n\n"+tt.line+"\n")
			ds, err := Read(path, ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if n := 2 * len(tt.want); len(ds.Examples) != n || ds.Files[0].Records != 2 || ds.Files[0].Format != tt.format {
				t.Fatalf("read %d examples from %d records as %s, want %d from 2 as %s", len(ds.Examples), ds.Files[0].Records, ds.Files[0].Format, n, tt.format)
			}
			for i, want := range tt.want {
				got := ds.Examples[i]
				if got.Source != path+":1" {
					t.Errorf("source %q, want %q", got.Source, path+":1")
				}
				got.Source = ""
				if !reflect.DeepEqual(got, want) {
					t.Errorf("example %d:\ngot  %+v\nwant %+v", i, got, want)
				}
			}
			if src := ds.Examples[len(tt.want)].Source; src != path+":3" {
				t.Errorf("second record's source %q, want line 3", src)
			}
			// The same record in a JSON array reads the same.
			arr, err := Read(writeTemp(t, "d.json", "[\n"+tt.line+",\n"+tt.line+"\n]\n"), ReadOptions{Format: tt.format})
			if err != nil {
				t.Fatal(err)
			}
			if len(arr.Examples) != len(ds.Examples) || !strings.HasSuffix(arr.Examples[len(tt.want)].Source, ":3") {
				t.Fatalf("JSON array read %d examples (second from %s), want %d from line 3", len(arr.Examples), arr.Examples[len(tt.want)].Source, len(ds.Examples))
			}
			roundTrip(t, ds.Examples)
		})
	}
}

func TestRankingPairs(t *testing.T) {
	got := RankingPairs([]int{2, 0, 3, 1})
	want := []Pair{{2, 0}, {2, 3}, {2, 1}, {0, 3}, {0, 1}, {3, 1}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("RankingPairs = %v, want %v", got, want)
	}
	for k := range 7 {
		r := make([]int, k)
		for i := range r {
			r[i] = k - 1 - i
		}
		if n := len(RankingPairs(r)); n != k*(k-1)/2 {
			t.Fatalf("K=%d: %d pairs, want %d", k, n, k*(k-1)/2)
		}
	}
	e := Example{Kind: Ranking, Prompt: ms(u("2+3=")), Completions: [][]Message{ms(a("6")), ms(a("5")), ms(a("five"))}, Ranking: []int{1, 2, 0}, Plain: true, Source: "r.jsonl:4"}
	pairs := e.Pairs()
	if len(pairs) != 3 {
		t.Fatalf("%d pairs, want 3", len(pairs))
	}
	wantPairs := [][2]string{{"5", "five"}, {"5", "6"}, {"five", "6"}}
	for i, p := range pairs {
		if p.Kind != Preference || p.Chosen[0].Content != wantPairs[i][0] || p.Rejected[0].Content != wantPairs[i][1] || p.Source != e.Source || !p.Plain {
			t.Fatalf("pair %d = %+v, want %v", i, p, wantPairs[i])
		}
	}
	if m := e.Messages(); len(m) != 2 || m[1].Content != "5" {
		t.Fatalf("Messages of a ranking = %v, want the best answer", m)
	}
}

func TestParseHH(t *testing.T) {
	tests := []struct {
		in   string
		want []Message
		err  string
	}{
		{"\n\nHuman: hi\n\nAssistant: hello", ms(u("hi"), a("hello")), ""},
		{"Human: hi\n\nAssistant: hello  ", ms(u("hi"), a("hello")), ""},
		{"\n\nHuman: hi\n\nAssistant:", ms(u("hi"), a("")), ""},
		{"\n\nHuman: hi\n\nAssistant: one\n\nAssistant: two", ms(u("hi"), a("one\n\ntwo")), ""},
		{"\n\nHuman: say Human: hi\n\nAssistant: Human: hi", ms(u("say Human: hi"), a("Human: hi")), ""},
		{"hello\n\nHuman: hi", nil, "text before"},
		{"\n\nAssistant: hi", nil, "starts with an Assistant turn"},
		{"just text", nil, "no \"\\n\\nHuman:\" turn"},
		{"\n\nHuman:\n\nAssistant: hi", nil, "turn 1 (Human) is empty"},
	}
	for _, tt := range tests {
		got, err := ParseHH(tt.in)
		if tt.err != "" {
			wantErr(t, err, tt.err)
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseHH(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestDescribe(t *testing.T) {
	exs := []Example{
		{Kind: LanguageModeling, Completion: ms(sy("s"), u("q"), a("answer"))},
		{Kind: PromptCompletion, Prompt: ms(u("q")), Completion: ms(a("a")), Plain: true},
		{Kind: Ranking, Prompt: ms(u("q")), Completions: [][]Message{ms(a("x")), ms(a("y")), ms(a("z"))}, Ranking: []int{2, 0, 1}},
	}
	s := Describe(exs)
	if s.Examples != 3 || s.Plain != 1 || s.Roles["system"] != 1 || s.Roles["user"] != 3 || s.Roles["assistant"] != 3 ||
		s.MinTurns != 2 || s.MaxTurns != 3 || s.MaxBytes != 8 || s.MinAnswers != 3 || s.MaxAnswers != 3 || s.Kinds[Ranking] != 1 {
		t.Fatalf("Describe = %+v", s)
	}
	if r := exs[2].Render(); !strings.Contains(r, "completion 2 (rank 1):\n  [assistant] z") {
		t.Fatalf("Render:\n%s", r)
	}
}

// A record's "images" are read on every shape (preference, ranking,
// messages), relative paths taken against the data file's folder and
// absolute ones kept; a ranking's pairs keep them.
func TestImages(t *testing.T) {
	dir := t.TempDir()
	abs := filepath.Join(dir, "elsewhere", "b.png")
	for _, tc := range []struct{ name, content, want string }{
		{"prefs.jsonl", `{"prompt": [{"role": "user", "content": "<image>\nWhat colour?"}], "chosen": [{"role": "assistant", "content": "red"}], "rejected": [{"role": "assistant", "content": "blue"}], "images": ["images/a.png"]}`, filepath.Join(dir, "images", "a.png")},
		{"rank.jsonl", `{"prompt": [{"role": "user", "content": "What colour?"}], "completions": [[{"role": "assistant", "content": "red"}], [{"role": "assistant", "content": "blue"}], [{"role": "assistant", "content": "a circle"}]], "ranking": [1, 0, 2], "images": [` + strconv.Quote(abs) + `]}`, abs},
		{"sft.jsonl", `{"messages": [{"role": "user", "content": "<image>Hi"}, {"role": "assistant", "content": "Hello"}], "images": ["x.png"]}`, filepath.Join(dir, "x.png")},
	} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, []byte(tc.content+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := Read(path, ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		e := d.Examples[0]
		if !reflect.DeepEqual(e.Images, []string{tc.want}) {
			t.Fatalf("%s: Images = %q, want %q", tc.name, e.Images, tc.want)
		}
		for _, p := range e.Pairs() {
			if !reflect.DeepEqual(p.Images, e.Images) {
				t.Fatalf("%s: a pair's Images = %q, want %q", tc.name, p.Images, e.Images)
			}
		}
	}
}
