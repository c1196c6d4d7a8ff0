package data

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"testing"
	"time"
)

// Hostile input never panics, and whatever reads also writes and reads
// back unchanged.
func FuzzRead(f *testing.F) {
	f.Add([]byte(okAlpaca + "\n" + okMsgs))
	f.Add([]byte("[" + okAlpaca + "," + okAlpaca + "]"))
	f.Add([]byte(`{"chosen": "The sky is blue.", "rejected": "The sky is green."}`))
	f.Add([]byte(`{"chosen": "\n\nHuman: Sky?\n\nAssistant: Blue.\n\nAssistant: Sure.", "rejected": "\n\nHuman: Sky?\n\nAssistant:"}`))
	f.Add([]byte(`{"prompt": [{"role": "user", "content": "2+3?"}], "completions": [[{"role": "assistant", "content": "6"}], [{"role": "assistant", "content": ""}]], "ranking": [1, 0]}`))
	f.Add([]byte(`{"conversations": [{"from": "human", "value": "Hi"}], "chosen": {"from": "gpt", "value": "a"}, "rejected": {"from": "gpt", "value": "b"}}`))
	f.Add([]byte(`{"instruction": "x", "instances": [{"input": "", "output": "y"}]}`))
	f.Add([]byte(`{"prompt": "a", "completion": "b", "label": false}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		watchdog := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("hang on %q", in)) })
		defer watchdog.Stop()
		r, err := NewReader(bytes.NewReader(in), "fuzz", ReadOptions{MaxLineBytes: 1 << 16})
		if err != nil {
			return
		}
		var exs []Example
		for {
			e, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				if _, again := r.Next(); again != err {
					t.Fatalf("error not sticky: %v then %v", err, again)
				}
				return
			}
			e.Messages()
			e.Render()
			e.Pairs()
			exs = append(exs, e)
		}
		if len(exs) == 0 {
			return
		}
		var buf bytes.Buffer
		if err := WriteJSONL(&buf, exs); err != nil {
			t.Fatalf("write: %v", err)
		}
		back, err := NewReader(&buf, "back", ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range exs {
			e, err := back.Next()
			if err != nil {
				t.Fatalf("read back example %d: %v", i+1, err)
			}
			want := exs[i]
			e.Source, want.Source = "", ""
			if !reflect.DeepEqual(e, want) {
				t.Fatalf("example %d changed:\ngot  %+v\nwant %+v", i+1, e, want)
			}
		}
	})
}
