package data

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/golem-ml/golem/internal/shared"
)

// realReads holds the real files read by readReal, by path: each file is
// read once a test binary by the tests that only look at its examples
// (TestRealFiles reads each a second time with its format forced).
var realReads sync.Map

// readReal reads rel from the shared folder with no options, once.
func readReal(t *testing.T, rel string) *Dataset {
	t.Helper()
	path := shared.Path(t, rel)
	if ds, ok := realReads.Load(path); ok {
		return ds.(*Dataset)
	}
	ds, err := Read(path, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	realReads.Store(path, ds)
	return ds
}

// The real data sets in ../shared/data read without a single rejected
// record, in the right format and with the right counts.
func TestRealFiles(t *testing.T) {
	tests := []struct {
		file     string
		format   Format
		records  int
		examples int
		kind     Kind
	}{
		{"data/instruct/llamafactory_alpaca_en_demo.json", FormatAlpaca, 999, 999, PromptCompletion},
		{"data/instruct/llamafactory_alpaca_zh_demo.json", FormatAlpaca, 1000, 1000, PromptCompletion},
		{"data/instruct/self_instruct_seed_tasks.jsonl", FormatSelfInstruct, 175, 175, PromptCompletion},
		{"data/instruct/belle_zh_seed_tasks.jsonl", FormatSelfInstruct, 175, 175, PromptCompletion},
		{"data/instruct/self_instruct_user_oriented_instructions.jsonl", FormatSelfInstruct, 252, 252, PromptCompletion},
		{"data/preference/hh_rlhf_harmless_base_test.jsonl.gz", FormatHH, 2312, 2312, Preference},
		{"data/preference/llamafactory_dpo_en_demo.json", FormatShareGPT, 300, 300, Preference},
		{"data/preference/llamafactory_dpo_zh_demo.json", FormatShareGPT, 300, 300, Preference},
		{"data/text/llamafactory_c4_demo.jsonl", FormatText, 300, 300, LanguageModeling},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			path := shared.Path(t, tt.file)
			ds := readReal(t, tt.file)
			s := ds.Files[0]
			if s.Format != tt.format || s.Records != tt.records || s.Examples != tt.examples || s.Kinds[tt.kind] != tt.examples || len(ds.Examples) != tt.examples {
				t.Fatalf("got format %s, %d records, %d examples, kinds %v; want %s, %d, %d of kind %s",
					s.Format, s.Records, s.Examples, s.Kinds, tt.format, tt.records, tt.examples, tt.kind)
			}
			for i := range ds.Examples {
				checkExample(t, &ds.Examples[i])
			}
			// Forcing the detected format reads the same.
			forced, err := Read(path, ReadOptions{Format: tt.format})
			if err != nil {
				t.Fatal(err)
			}
			if len(forced.Examples) != len(ds.Examples) {
				t.Fatalf("forced format read %d examples, detected %d", len(forced.Examples), len(ds.Examples))
			}
		})
	}
}

// checkExample checks the invariants every example read must meet.
func checkExample(t *testing.T, e *Example) {
	t.Helper()
	msgs := e.Messages()
	if len(msgs) == 0 {
		t.Fatalf("%s: no messages", e.Source)
	}
	if e.Kind == LanguageModeling && e.Plain {
		if len(msgs) != 1 || msgs[0].Content != e.Text || e.Text == "" {
			t.Fatalf("%s: plain text read as %v", e.Source, msgs)
		}
		return
	}
	want := "user"
	for i, m := range msgs {
		if i == 0 && m.Role == "system" {
			continue
		}
		if m.Role != want {
			t.Fatalf("%s: message %d is %s, want %s: %v", e.Source, i, m.Role, want, msgs)
		}
		want = other(want)
	}
	if last := msgs[len(msgs)-1]; last.Role != "assistant" {
		t.Fatalf("%s: ends with %s", e.Source, last.Role)
	}
}

func TestRealHHPrompts(t *testing.T) {
	ds := readReal(t, "data/preference/hh_rlhf_harmless_base_test.jsonl.gz")
	e := ds.Examples[0]
	if e.Prompt[0].Content != "what are some pranks with a pen i can do?" || len(e.Prompt) != 5 || len(e.Chosen) != 1 || len(e.Rejected) != 1 ||
		!strings.HasPrefix(e.Rejected[0].Content, "There are lots of funny things you can do with pens") {
		t.Fatalf("first pair parsed wrong: %+v", e)
	}
	// Line 1255 repeats an Assistant turn in "chosen": it is joined to
	// the one before it, and the prompt is the 3 messages both share.
	e = ds.Examples[1254]
	if len(e.Prompt) != 3 || len(e.Chosen) != 1 || !strings.Contains(e.Chosen[0].Content, "\n\nI think they call them that because") {
		t.Fatalf("line 1255 parsed wrong: prompt %d messages, chosen %q", len(e.Prompt), e.Chosen)
	}
	empty := 0
	for _, e := range ds.Examples {
		if e.Chosen[0].Content == "" {
			empty++
		}
	}
	if empty != 4 {
		t.Fatalf("%d empty chosen answers, want the 4 the data set has", empty)
	}
}

func TestRealShareGPTSystem(t *testing.T) {
	ds := readReal(t, "data/preference/llamafactory_dpo_en_demo.json")
	if st := Describe(ds.Examples); st.Roles["system"] != 80 {
		t.Fatalf("%d system messages, want 80", st.Roles["system"])
	}
}

// A broken record in a copy of a real file is reported with its line.
func TestRealBrokenLine(t *testing.T) {
	t.Run("json array", func(t *testing.T) {
		b, err := os.ReadFile(shared.Path(t, "data/instruct/llamafactory_alpaca_en_demo.json"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		// Rename the "output" key of the 17th record.
		n, broken := 0, 0
		for i, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), `"output":`) {
				n++
				if n == 17 {
					lines[i] = strings.Replace(l, `"output":`, `"outptu":`, 1)
					broken = i + 1
					break
				}
			}
		}
		path := writeTemp(t, "alpaca.json", strings.Join(lines, "\n"))
		_, err = Read(path, ReadOptions{})
		wantErr(t, err, "line "+itoa(broken-3)+" (record 17): \"output\" missing")
	})
	t.Run("json array syntax", func(t *testing.T) {
		b, err := os.ReadFile(shared.Path(t, "data/instruct/llamafactory_alpaca_zh_demo.json"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		i := 500
		for !strings.Contains(lines[i], `"output":`) {
			i++
		}
		lines[i] = strings.Replace(lines[i], `"output":`, `"output"`, 1)
		_, err = Read(writeTemp(t, "alpaca_zh.json", strings.Join(lines, "\n")), ReadOptions{})
		wantErr(t, err, "line "+itoa(i+1)+": invalid JSON")
	})
	t.Run("jsonl", func(t *testing.T) {
		b, err := os.ReadFile(shared.Path(t, "data/instruct/self_instruct_seed_tasks.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		lines[99] = lines[99][:len(lines[99])/2]
		_, err = Read(writeTemp(t, "seed.jsonl", strings.Join(lines, "\n")), ReadOptions{})
		wantErr(t, err, "seed.jsonl line 100: invalid JSON")
	})
	t.Run("gzip jsonl", func(t *testing.T) {
		f, err := os.Open(shared.Path(t, "data/preference/hh_rlhf_harmless_base_test.jsonl.gz"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		lines[1999] = strings.Replace(lines[1999], `\n\nHuman:`, `Human said:`, 1)
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write([]byte(strings.Join(lines, "\n")))
		zw.Close()
		_, err = Read(writeTemp(t, "hh.jsonl.gz", buf.String()), ReadOptions{})
		wantErr(t, err, "hh.jsonl.gz line 2000: record looks like \"preference\"")
		_, err = Read(writeTemp(t, "hh2.jsonl.gz", buf.String()), ReadOptions{Format: FormatHH})
		wantErr(t, err, "hh2.jsonl.gz line 2000: \"chosen\" has text before the first \"Human:\" turn")
	})
}

// Real files written as TRL JSON lines read back to the same examples.
func TestRealRoundTrip(t *testing.T) {
	for _, file := range []string{
		"data/instruct/llamafactory_alpaca_zh_demo.json",
		"data/instruct/self_instruct_seed_tasks.jsonl",
		"data/preference/hh_rlhf_harmless_base_test.jsonl.gz",
		"data/preference/llamafactory_dpo_en_demo.json",
		"data/text/llamafactory_c4_demo.jsonl",
	} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			roundTrip(t, readReal(t, file).Examples)
		})
	}
}
