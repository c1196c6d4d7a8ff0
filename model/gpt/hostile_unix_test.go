//go:build unix

package gpt

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/safetensors"
)

// A FIFO as model.safetensors or config.json is refused at once; loading
// blocked forever waiting for a writer.
func TestFIFOInModelFolder(t *testing.T) {
	for _, name := range []string{safetensors.ModelFile, "config.json"} {
		dir := tinyFolder(t, "gpt2")
		path := filepath.Join(dir, name)
		os.Remove(path)
		if err := syscall.Mkfifo(path, 0o644); err != nil {
			t.Skipf("no FIFOs here: %v", err)
		}
		done := make(chan error, 1)
		go func() { _, err := Load(cpu.New(), dir); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("%s a FIFO: %v", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s a FIFO: loading blocked", name)
		}
	}
}
