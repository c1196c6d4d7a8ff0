//go:build unix

package safetensors

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A file truncated after it was opened (a `cp` onto it) gives an error
// naming the file and tensor; it was read through a shared memory map,
// and the process died of SIGBUS.
func TestTruncatedWhileOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), ModelFile)
	a := make([]float32, 1<<16)
	for i := range a {
		a[i] = float32(i)
	}
	ts := []Tensor{{Name: "a", Shape: []int{len(a)}, F32: a}, {Name: "b", DType: BF16, Shape: []int{len(a)}, F32: a}}
	if err := Write(path, ts, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Changed(); err != nil {
		t.Fatalf("unchanged file: %v", err)
	}
	// cp opens the target with O_TRUNC and writes it again.
	time.Sleep(5 * time.Millisecond)
	if err := os.Truncate(path, 100); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		_, _, err := f.Float32(name)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `"`+name+`"`) || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("tensor %s of a truncated file: %v", name, err)
		}
	}
	if _, _, err := f.Raw("b"); err == nil {
		t.Error("Raw of a truncated file: no error")
	}
	if err := f.Changed(); err == nil || !strings.Contains(err.Error(), "rewritten while being read") {
		t.Errorf("Changed after a truncation: %v", err)
	}

	// Same size, new content: Changed still sees the new modification time.
	if err := Write(path, ts, nil); err != nil { // renamed over: another file
		t.Fatal(err)
	}
	g, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := Write(path, ts, nil); err != nil {
		t.Fatal(err)
	}
	if err := g.Changed(); err == nil || !strings.Contains(err.Error(), "replaced") {
		t.Errorf("Changed after a rename over the file: %v", err)
	}
}

// A FIFO as model.safetensors is refused at once; opening it blocked
// until something wrote to it.
func TestFIFOModelFile(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, ModelFile), 0o644); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		m, err := OpenModel(dir)
		if err == nil {
			m.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), ModelFile) {
			t.Fatalf("FIFO: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("opening a FIFO as model.safetensors blocked")
	}
}
