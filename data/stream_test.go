package data

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/golem-ml/golem/internal/shared"
)

// A JSON lines reader hands out each example as soon as its line has
// arrived: the writer below sends line 2 only after example 1 was read, so
// a reader that waited for the whole input would never finish.
func TestStreaming(t *testing.T) {
	pr, pw := io.Pipe()
	got := make(chan Example)
	go func() {
		fmt.Fprintln(pw, okAlpaca)
		<-got
		fmt.Fprintln(pw, `{"instruction": "Add 1 and 1.", "output": "2"}`)
		pw.Close()
	}()
	r, err := NewReader(pr, "pipe", ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		e, err := r.Next()
		if err != nil {
			done <- err
			return
		}
		got <- e
		e, err = r.Next()
		if err == nil && e.Completion[0].Content != "2" {
			err = fmt.Errorf("second example %+v", e)
		}
		if _, eof := r.Next(); err == nil && eof != io.EOF {
			err = fmt.Errorf("after the last example: %v, want io.EOF", eof)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reader waited for the whole input before returning the first example")
	}
	if s := r.Summary(); s.Records != 2 || s.Format != FormatAlpaca || r.Format() != FormatAlpaca {
		t.Fatalf("summary %+v", s)
	}
}

// BenchmarkReadJSONL reads 10,000 conversational preference records.
func BenchmarkReadJSONL(b *testing.B) {
	var buf bytes.Buffer
	for i := range 10000 {
		fmt.Fprintf(&buf, `{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is %d plus %d? Show the steps, please."}], "chosen": [{"role": "assistant", "content": "%d plus %d is %d, because adding them digit by digit gives that."}], "rejected": [{"role": "assistant", "content": "It is %d."}]}`+"\n", i, i, i, i, 2*i, i)
	}
	in := buf.Bytes()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(in), "bench.jsonl", ReadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkReadHH reads the 2,312 HH-RLHF pairs, gzip-compressed.
func BenchmarkReadHH(b *testing.B) {
	path := shared.Path(b, "data/preference/hh_rlhf_harmless_base_test.jsonl.gz")
	for b.Loop() {
		if _, err := Read(path, ReadOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
