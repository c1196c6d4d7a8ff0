package tokenizer

import (
	"os"
	"path/filepath"
	"testing"
)

// Save replaces each file whole: a folder whose tokenizer files link to
// another folder's (a test's copy of a fixture, a user's folder of links
// to a download cache) gets files of its own, and the linked files are
// left as they were.
func TestSaveNeverWritesThroughLinks(t *testing.T) {
	src, out := t.TempDir(), t.TempDir()
	names := []string{"tokenizer.json", "tokenizer_config.json"}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(src, n), []byte("the original "+n), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(src, n), filepath.Join(out, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := NewChar("abc").Save(out); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil || string(b) != "the original "+n {
			t.Errorf("%s behind the link now holds %q (%v)", n, b, err)
		}
		fi, err := os.Lstat(filepath.Join(out, n))
		if err != nil || !fi.Mode().IsRegular() {
			t.Errorf("saved %s is not a file of its own: %v %v", n, fi, err)
		}
	}
	tok, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Decode(tok.Encode("cab")); got != "cab" {
		t.Errorf("the saved tokenizer decodes %q", got)
	}
}
