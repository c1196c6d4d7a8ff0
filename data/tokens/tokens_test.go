package tokens

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestWriteOpenRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, vocab := range []int{65, 70000} {
		ids := []int32{0, 1, 64, 3, 2}
		if vocab > 1<<16 {
			ids = append(ids, 69999)
		}
		p := filepath.Join(dir, "x.tok")
		if err := Write(p, ids, vocab); err != nil {
			t.Fatal(err)
		}
		f, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]int32, f.Len()-1)
		f.Read(got, 1)
		if !slices.Equal(got, ids[1:]) {
			t.Errorf("vocab %d: read %v, wrote %v", vocab, got, ids)
		}
	}
}

func TestOpenRejectsCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tok")
	if err := Write(good, []int32{1, 2, 3}, 10); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(good)
	cases := map[string][]byte{
		"short":     b[:10],
		"magic":     append([]byte("NOTGOLEM"), b[8:]...),
		"truncated": b[:len(b)-1],
		"width":     append(append(append([]byte{}, b[:8]...), 3, 0, 0, 0), b[12:]...),
	}
	for name, data := range cases {
		p := filepath.Join(dir, name+".tok")
		os.WriteFile(p, data, 0o644)
		if _, err := Open(p); err == nil || !strings.Contains(err.Error(), name+".tok") {
			t.Errorf("%s: error %v, want one naming the file", name, err)
		}
	}
}

func TestResolveAndDocuments(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("hello"), 0o644)
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "b.jsonl"), []byte("{\"text\":\"one\"}\n\n{\"text\":\"two\"}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, ".hidden.txt"), []byte("no"), 0o644)
	os.WriteFile(filepath.Join(dir, "c.bin"), []byte("no"), 0o644)
	srcs, err := Resolve([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	if err := Documents(srcs, func(d string) error { docs = append(docs, d); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(docs, []string{"hello", "one", "two"}) {
		t.Errorf("documents %q", docs)
	}
	if _, err := Resolve([]string{filepath.Join(dir, "*.none")}); err == nil {
		t.Error("a glob matching nothing accepted")
	}
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte("{\"text\":\"ok\"}\n{\"txt\":\"x\"}\n"), 0o644)
	s, _ := Resolve([]string{bad})
	err = Documents(s, func(string) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "bad.jsonl line 2") {
		t.Errorf("error %v, want one naming bad.jsonl line 2", err)
	}
	k1 := Key(srcs, []byte("tok"))
	if k1 == Key(srcs, []byte("tok2")) {
		t.Error("cache key ignores the tokenizer")
	}
}
