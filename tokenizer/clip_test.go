package tokenizer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/internal/shared"
)

// CLIP's tokenizer gives transformers' CLIPTokenizer ids: the published
// ones of its docs and of other implementations' parity tests (casing,
// spaces, contractions, digits one by one, punctuation, accents through
// the byte map).
func TestCLIPMatchesTransformers(t *testing.T) {
	tok, err := LoadCLIP(shared.Path(t, "data/tokenizer/clip/bpe_simple_vocab_16e6.txt.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Vocab() != 49408 || tok.BOS != 49406 || tok.EOS != 49407 {
		t.Fatalf("vocabulary %d, BOS %d, EOS %d; want 49408, 49406, 49407", tok.Vocab(), tok.BOS, tok.EOS)
	}
	for _, c := range []struct {
		text string
		want []int
	}{
		{"a photo of a cat", []int{320, 1125, 539, 320, 2368}},
		{"a photo of a dog", []int{320, 1125, 539, 320, 1929}},
		{"A PHOTO of  a Cat!", []int{320, 1125, 539, 320, 2368, 256}},
		{"Hello, world!", []int{3306, 267, 1002, 256}},
		{"don't stop 42 times", []int{847, 713, 1691, 275, 273, 1661}},
		{"cafe uber naive", []int{4979, 10668, 43362}},
		{"hello-world, 3.14 (test)", []int{3306, 268, 1002, 267, 274, 269, 272, 275, 263, 1628, 264}},
		{"caf\u00e9 \u00fcber na\u00efve", []int{15304, 6522, 1516, 1097, 35689, 563}},
		{"  spaced   out  ", []int{10336, 538, 620}},
		{"", nil},
	} {
		if got := tok.Encode(c.text); !slices.Equal(got, c.want) {
			t.Errorf("Encode(%q) = %v, want %v", c.text, got, c.want)
		}
	}
	ids, err := tok.Batch([]string{"a photo of a cat", strings.Repeat("cat ", 20)}, 8, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []int32{49406, 320, 1125, 539, 320, 2368, 49407, 0, 49406, 2368, 2368, 2368, 2368, 2368, 2368, 49407}
	if !slices.Equal(ids, want) {
		t.Errorf("Batch = %v, want %v (a long text cut, keeping its end)", ids, want)
	}
}

// A broken merges file is an error naming the file and line.
func TestCLIPBadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "merges.txt")
	os.WriteFile(p, []byte("#version: 0.2\na b\nthree symbols here\n"), 0o644)
	if _, err := LoadCLIP(p); err == nil || !strings.Contains(err.Error(), "merges.txt:3") {
		t.Fatalf("error %v, want one naming merges.txt:3", err)
	}
	os.WriteFile(p, []byte("#version: 0.2\na b\n"), 0o644)
	if _, err := LoadCLIP(p); err == nil || !strings.Contains(err.Error(), "1 merges") {
		t.Fatalf("error %v, want one saying the file is short", err)
	}
}

func TestLoadCLIPDir(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadCLIPDir(dir); err == nil || !strings.Contains(err.Error(), "no CLIP tokenizer (bpe_simple_vocab_16e6.txt.gz)") {
		t.Fatalf("empty folder: %v", err)
	}
	// A folder named like the file is not the file.
	os.Mkdir(filepath.Join(dir, CLIPFiles[0]), 0o755)
	os.WriteFile(filepath.Join(dir, CLIPFiles[1]), []byte("#version: 0.2\na b\n"), 0o644)
	if _, err := LoadCLIPDir(dir); err == nil || !strings.Contains(err.Error(), CLIPFiles[1]) {
		t.Fatalf("error %v, want the plain merges file read (and found short)", err)
	}
}
