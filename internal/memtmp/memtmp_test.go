package memtmp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUse: with TMPDIR unset, Use points it at a new folder (in /dev/shm
// where that is a large tmpfs) that its done function removes, and unsets
// it again; with TMPDIR set, Use leaves it alone.
func TestUse(t *testing.T) {
	t.Setenv("TMPDIR", "/somewhere")
	Use("x")()
	if got := os.Getenv("TMPDIR"); got != "/somewhere" {
		t.Fatalf("TMPDIR %q after Use with TMPDIR set; want it left alone", got)
	}
	os.Unsetenv("TMPDIR")
	done := Use("x")
	dir := os.Getenv("TMPDIR")
	if dir == "" {
		done()
		t.Skip("no large tmpfs at /dev/shm here: Use left TMPDIR unset")
	}
	if !strings.HasPrefix(dir, "/dev/shm/golem-x-test-") {
		t.Errorf("TMPDIR %q, want a folder /dev/shm/golem-x-test-*", dir)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	done()
	if _, err := os.Stat(dir); !os.IsNotExist(err) || os.Getenv("TMPDIR") != "" {
		t.Errorf("after done: %s stat %v, TMPDIR %q; want it gone and TMPDIR unset", dir, err, os.Getenv("TMPDIR"))
	}
}
