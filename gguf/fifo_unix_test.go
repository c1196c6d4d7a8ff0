//go:build unix

package gguf

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A FIFO in place of a GGUF file is refused at once, never read (a read
// would block until a writer came).
func TestFIFORefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	_, err := Open(path)
	if err == nil || !strings.Contains(err.Error(), path+": not a regular file: a FIFO (named pipe)") {
		t.Fatalf("FIFO: %v", err)
	}
}
