package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestIsTemp(t *testing.T) {
	for name, want := range map[string]bool{".model.safetensors.tmp123": true, ".tmp-step-00000004-99": true,
		"model.safetensors": false, "x.tmp": false, ".lock": false} {
		if IsTemp(name) != want {
			t.Errorf("IsTemp(%q) = %v", name, !want)
		}
	}
}

// LinkOrCopy replaces dst with src's content, by a hard link on one file
// system (the same file) or else a copy, and leaves no temporary behind.
func TestLinkOrCopy(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir()}
	if shm, err := os.MkdirTemp("/dev/shm", "atomicfile"); err == nil { // often another file system: the copy path
		defer os.RemoveAll(shm)
		dirs = append(dirs, shm)
	}
	src := filepath.Join(dirs[0], "src")
	if err := os.WriteFile(src, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs[1:] {
		dst := filepath.Join(d, "dst")
		if err := os.WriteFile(dst, []byte("old content"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := LinkOrCopy(src, dst); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(dst); err != nil || string(b) != "new" {
			t.Errorf("%s: %q %v", dst, b, err)
		}
		if err := LinkOrCopy(src, dst); err != nil { // already the same file
			t.Fatal(err)
		}
		ents, _ := os.ReadDir(d)
		if len(ents) != 1 {
			t.Errorf("%s holds %d entries, want dst alone", d, len(ents))
		}
	}
}
