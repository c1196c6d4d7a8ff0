package data

import (
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"
)

const (
	okAlpaca = `{"instruction": "Add 2 and 3.", "input": "", "output": "5"}`
	okMsgs   = `{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}`
)

// Each kind of bad input is an error that names the file, the line and the
// field.
func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		format  Format
		want    string
	}{
		{"missing field", okAlpaca + "\n" + okAlpaca + "\n" + `{"instruction": "Add 1 and 1.", "input": ""}`, "", `e.jsonl line 3: "output" missing`},
		{"null field", `{"instruction": "Add.", "output": null}`, "", `line 1: "output" is null`},
		{"wrong type", okAlpaca + "\n" + `{"instruction": "Add.", "output": 5}`, "", `line 2: "output" is a number, want a string`},
		{"empty string", okAlpaca + "\n" + `{"instruction": "  ", "output": "5"}`, "", `line 2: "instruction" is empty`},
		{"bad history", `{"instruction": "Add.", "output": "5", "history": [["only one"]]}`, "", `line 1: "history"[0] has 1 items, want 2`},
		{"unknown role", okMsgs + "\n" + `{"messages": [{"role": "user", "content": "Hi"}, {"role": "tool", "content": "x"}]}`, "", `line 2: "messages"[1].role "tool" unknown (want system, user or assistant)`},
		{"unknown sharegpt role", `{"conversations": [{"from": "human", "value": "Hi"}, {"from": "function_call", "value": "x"}]}`, "", `line 1: "conversations"[1].from "function_call" unknown (want human, gpt or system)`},
		{"content parts", `{"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}`, "", `"messages"[0].content is a list of parts`},
		{"empty content", `{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""}]}`, "", `"messages"[1].content is empty`},
		{"not alternating", `{"messages": [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Hi again"}, {"role": "assistant", "content": "Hello"}]}`, "", `line 1: "messages"[1] is a user message where an assistant message should be`},
		{"system late", `{"messages": [{"role": "user", "content": "Hi"}, {"role": "system", "content": "Be brief."}]}`, "", `"messages"[1] is a system message; only the first message may be one`},
		{"starts with assistant", `{"conversations": [{"from": "gpt", "value": "Hi"}, {"from": "human", "value": "Hello"}]}`, "", `"conversations"[0] is an assistant message where a user message should be`},
		{"ends with user", `{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}]}`, "", `"messages" ends with a user message, want assistant`},
		{"prompt ends with assistant", `{"prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "completion": [{"role": "assistant", "content": "Bye"}]}`, "", `"prompt" ends with an assistant message, want user`},
		{"completion starts with user", `{"prompt": [{"role": "user", "content": "Hi"}], "completion": [{"role": "user", "content": "Bye"}]}`, "", `"completion"[0] is a user message where an assistant message should be`},
		{"mixed forms", `{"prompt": "Hi", "completion": [{"role": "assistant", "content": "Hello"}]}`, "", `"completion" is a list of messages but "prompt" is a string`},
		{"identical pair", `{"prompt": "Sky?", "chosen": "Blue.", "rejected": "Blue."}`, "", `"rejected" is the same as "chosen"`},
		{"implicit prompts differ", `{"chosen": [{"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Blue."}], "rejected": [{"role": "user", "content": "Grass?"}, {"role": "assistant", "content": "Green."}]}`, "", `first differ at message 0, a user turn`},
		{"bad label", `{"prompt": "Sky?", "completion": "Blue.", "label": "yes"}`, "", `"label" is a string, want true or false`},
		{"ranking duplicate", `{"prompt": "2+3=", "completions": ["5", "6", "7"], "ranking": [0, 1, 0]}`, "", `line 1: "ranking"[2] repeats 0 (already at "ranking"[0])`},
		{"ranking out of range", `{"prompt": "2+3=", "completions": ["5", "6", "7"], "ranking": [0, 3, 1]}`, "", `"ranking"[1] is 3, out of range 0..2`},
		{"ranking negative", `{"prompt": "2+3=", "completions": ["5", "6"], "ranking": [-1, 0]}`, "", `"ranking"[0] is -1, out of range 0..1`},
		{"ranking short", `{"prompt": "2+3=", "completions": ["5", "6", "7"], "ranking": [0, 1]}`, "", `"ranking" has 2 entries, want 3`},
		{"ranking not integer", `{"prompt": "2+3=", "completions": ["5", "6"], "ranking": [0, 1.5]}`, "", `"ranking"[1] is 1.5, want an integer`},
		{"ranking one answer", `{"prompt": "2+3=", "completions": ["5"], "ranking": [0]}`, "", `"completions" has 1 answers, want at least 2`},
		{"ranking same answer", `{"prompt": "2+3=", "completions": ["5", "6", "5"], "ranking": [0, 1, 2]}`, "", `"completions"[2] is the same answer as "completions"[0]`},
		{"ranking mixed forms", `{"prompt": "2+3=", "completions": ["5", [{"role": "assistant", "content": "6"}]], "ranking": [0, 1]}`, "", `"completions"[1] is a list but "prompt" is a string`},
		{"ranking missing", `{"prompt": "2+3=", "completions": ["5", "6"]}`, "", `"ranking" missing`},
		{"ranking tie", `{"prompt": "2+3=", "completions": ["5", "6"], "ranking": [0, 1], "verdict": "tie"}`, "", `line 1: "verdict" is "tie": a comparison without a winner prefers neither answer`},
		{"self-instruct output", `{"instruction": "Color?", "instances": [{"input": "sky", "output": "blue"}, {"input": "grass"}]}`, "", `"instances"[1].output missing`},
		{"sharegpt chosen role", `{"conversations": [{"from": "human", "value": "Hi"}], "chosen": {"from": "human", "value": "x"}, "rejected": {"from": "gpt", "value": "y"}}`, "", `"chosen" is a user message, want gpt`},
		{"hh not alternating", `{"chosen": "\n\nHuman: Hi\n\nAssistant: Hello", "rejected": "\n\nHuman: Hi\n\nAssistant: Hey"}` + "\n" + `{"chosen": "\n\nHuman: \n\nAssistant: Hello", "rejected": "\n\nHuman: Hi\n\nAssistant: Hey"}`, "", `line 2: "chosen" turn 1 (Human) is empty`},
		{"other shape in the middle", okAlpaca + "\n" + okAlpaca + "\n" + `{"text": "hello"}`, "", `line 3: record looks like "text" (keys: text), but the file is "alpaca" (from its first record, line 1)`},
		{"standard then conversational", `{"prompt": "Hi", "completion": "Hello"}` + "\n" + `{"prompt": [{"role": "user", "content": "Hi"}], "completion": [{"role": "assistant", "content": "Hello"}]}`, "", `line 2: record is prompt-completion conversational, but the file began as prompt-completion standard (line 1)`},
		{"explicit then implicit", `{"prompt": "Sky?", "chosen": "Blue.", "rejected": "Green."}` + "\n" + `{"chosen": "Blue.", "rejected": "Green."}`, "", `line 2: record is preference standard, implicit prompt, but the file began as preference standard, explicit prompt`},
		{"images not a list", okMsgs + "\n" + `{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "images": "a.png"}`, "", `line 2: "images" is a string, want a list`},
		{"two images", `{"prompt": "<image>Sky?", "chosen": "Blue.", "rejected": "Green.", "images": ["a.png", "b.png"]}`, "", `line 1: "images" holds 2 images; golem's vision-language model takes one a record`},
		{"image not a string", `{"prompt": "Sky?", "chosen": "Blue.", "rejected": "Green.", "images": [3]}`, "", `line 1: "images"[0] is a number, want a string`},
		{"empty image", `{"prompt": "Sky?", "chosen": "Blue.", "rejected": "Green.", "images": [" "]}`, "", `line 1: "images"[0] is empty`},
		{"unknown keys", `{"question": "2+3?", "answer": "5"}`, "", `line 1: cannot tell the format from the keys (answer, question); force one of:`},
		{"forced format", okMsgs, FormatAlpaca, `line 1: "instruction" missing (the record looks like "messages", not the "alpaca" forced)`},
		{"unknown format", okMsgs, "csv", `unknown format "csv"`},
		{"invalid json", okAlpaca + "\n" + `{"instruction": "Add.", "output": "5"` + "\n", "", `line 2: invalid JSON`},
		{"not an object", okAlpaca + "\n" + `["Add.", "5"]`, "", `line 2: record is a list, want a JSON object`},
		{"not json", "instruction,output\nAdd.,5\n", "", `line 1: invalid JSON: want one JSON object per line`},
		{"invalid utf-8", okAlpaca + "\n" + `{"instruction": "Add` + "\xff" + `", "output": "5"}`, "", `line 2: invalid UTF-8 at column 21`},
		{"empty file", "\n\n", "", `e.jsonl: no records`},
		{"array missing field", "[\n  {\n    \"instruction\": \"Add.\",\n    \"output\": \"5\"\n  },\n  {\n    \"instruction\": \"Add.\",\n    \"output\": 5\n  }\n]\n", "", `e.jsonl line 8 (record 2): "output" is a number, want a string`},
		{"array syntax", "[\n  {\"instruction\": \"Add.\", \"output\": \"5\"},\n  {\"instruction\": \"Add.\" \"output\": \"5\"}\n]", "", `line 3: invalid JSON`},
		{"array not closed", "[\n  {\"instruction\": \"Add.\", \"output\": \"5\"},\n", "", `line 3: invalid JSON`},
		{"array trailing data", "[{\"text\": \"a\"}]\n{\"text\": \"b\"}\n", "", `line 2: data after the end of the JSON array`},
		{"array invalid utf-8", "[\n {\"text\": \"a\"},\n {\"text\":\n  \"b\xc3\"}]", "", `line 4 (record 2): invalid UTF-8 at column 5`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(writeTemp(t, "e.jsonl", tt.content), ReadOptions{Format: tt.format})
			wantErr(t, err, tt.want)
			if !strings.HasPrefix(err.Error(), "data: ") {
				t.Errorf("error %q does not start with \"data: \"", err)
			}
		})
	}
}

func TestErrorFields(t *testing.T) {
	_, err := Read(writeTemp(t, "alpaca.json", "[\n"+okAlpaca+",\n"+`{"instruction": "x"}`+"\n]"), ReadOptions{})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *Error", err)
	}
	if !strings.HasSuffix(e.File, "alpaca.json") || e.Line != 3 || e.Record != 2 || e.Field != `"output"` || e.Msg != "missing" {
		t.Fatalf("got %+v", e)
	}
}

func TestLongLine(t *testing.T) {
	long := `{"text": "` + strings.Repeat("x", 5000) + `"}`
	path := writeTemp(t, "long.jsonl", `{"text": "a"}`+"\n"+`{"text": "b"}`+"\n"+long+"\n")
	_, err := Read(path, ReadOptions{Format: FormatText, MaxLineBytes: 4096})
	wantErr(t, err, "long.jsonl line 3: line is longer than 4096 bytes")
	ds, err := Read(writeTemp(t, "long2.jsonl", long+"\n"+long), ReadOptions{MaxLineBytes: 8192})
	if err != nil || len(ds.Examples) != 2 || len(ds.Examples[1].Text) != 5000 {
		t.Fatalf("reading lines under the limit: %v", err)
	}
}

// Gzip is recognised by content; a UTF-8 byte order mark and CRLF line
// ends are accepted; blank lines are not records.
func TestGzipBOMAndCRLF(t *testing.T) {
	content := "\xef\xbb\xbf" + okAlpaca + "\r\n\r\n" + okAlpaca + "\r\n"
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(content))
	zw.Close()
	for name, c := range map[string]string{"plain.jsonl": content, "packed.data": buf.String(), "array.json": "\xef\xbb\xbf[" + okAlpaca + ",\r\n" + okAlpaca + "]"} {
		ds, err := Read(writeTemp(t, name, c), ReadOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if ds.Records() != 2 || ds.Examples[0].Completion[0].Content != "5" {
			t.Fatalf("%s: %d records, first %+v", name, ds.Records(), ds.Examples[0])
		}
	}
}

func TestReadAll(t *testing.T) {
	p1 := writeTemp(t, "a.jsonl", okAlpaca+"\n"+okAlpaca)
	p2 := writeTemp(t, "m.json", "["+okMsgs+"]")
	ds, err := ReadAll([]string{p1, p2}, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Files) != 2 || ds.Files[0].Format != FormatAlpaca || ds.Files[1].Format != FormatMessages || ds.Records() != 3 || len(ds.Examples) != 3 {
		t.Fatalf("got %+v", ds.Files)
	}
	if ds.Examples[2].Kind != LanguageModeling || !strings.HasSuffix(ds.Examples[2].Source, "m.json:1") {
		t.Fatalf("third example %+v", ds.Examples[2])
	}
}

func TestWriteErrors(t *testing.T) {
	var buf bytes.Buffer
	err := WriteJSONL(&buf, []Example{
		{Kind: PromptCompletion, Prompt: ms(u("a")), Completion: ms(a("b")), Source: "x:1"},
		{Kind: Preference, Prompt: ms(u("a")), Chosen: ms(a("b")), Rejected: ms(a("c")), Source: "x:2"},
	})
	wantErr(t, err, "example 2 (x:2) is conversational preference, but example 1 is conversational prompt-completion")
	err = WriteJSONL(&buf, []Example{{Kind: PromptCompletion, Prompt: ms(u("a"), a("b"), u("c")), Completion: ms(a("d")), Plain: true, Source: "y:7"}})
	wantErr(t, err, "example 1 (y:7): prompt has 3 messages; a standard (plain) example has one")
}
