package store

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"
)

// Sixteen concurrent logins with a wrong password compute Argon2 (19 MiB
// each) a few at a time: the heap grows by a few of them (under 8 of
// them), not sixteen (300 MB before the bound).
func TestArgon2Bounded(t *testing.T) {
	defer func(t, m uint32) { argonTime, argonMemory = t, m }(argonTime, argonMemory)
	argonTime, argonMemory = owaspTime, owaspMemory // TestMain lowers them under -short
	s := open(t, "sqlite:"+filepath.Join(t.TempDir(), "argon.db"))
	mustUser(t, s, "ann", RoleAnnotator)
	dummyHash() // made once, outside the measure
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	before := sample[0].Value.Uint64()
	stop, peakc := make(chan struct{}), make(chan uint64)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-stop:
				peakc <- peak
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Authenticate(context.Background(), "ann", "not her password")
			wantErr(t, "wrong password", err, ErrUnauthorized)
		}()
	}
	wg.Wait()
	close(stop)
	growth := int64(<-peakc) - int64(before)
	// Sixteen at once would hold 16 x 19 MiB; the bound leaves room for
	// garbage the collector has not reached on a busy machine.
	slots := cap(argonSlots)
	limit := int64(8) * int64(argonMemory) << 10
	t.Logf("%d Argon2 slots; heap growth %d MiB (limit %d MiB)", slots, growth>>20, limit>>20)
	if growth > limit {
		t.Errorf("16 concurrent logins grew the heap by %d MiB, more than %d MiB", growth>>20, limit>>20)
	}
}

// A new SQLite database and its WAL files are private to their owner.
func TestSQLiteFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "labels.db")
	s := open(t, "sqlite:"+path)
	mustUser(t, s, "ann", RoleAnnotator) // a write: the -wal and -shm exist
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want -rw-------", filepath.Base(f), fi.Mode().Perm())
		}
	}
	if _, err := Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "no", "such", "dir.db")); err == nil {
		t.Error("a database in a missing folder opened")
	}
}

// CheapPasswordsForTests lowers the hash cost in a test binary only: in a
// program that is not a test (testdata/cheappasswords, built and run) it
// panics before it changes anything.
func TestCheapPasswordsOnlyInTests(t *testing.T) {
	defer func(t, m uint32) { argonTime, argonMemory = t, m }(argonTime, argonMemory)
	argonTime, argonMemory = owaspTime, owaspMemory
	restore := CheapPasswordsForTests()
	if argonTime != 1 || argonMemory != 64 {
		t.Errorf("in a test: cost t=%d m=%d KiB, want 1 and 64", argonTime, argonMemory)
	}
	restore()
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "outside a test binary") {
				t.Errorf("cheapPasswords(false): recovered %v, want a panic naming the misuse", r)
			}
		}()
		cheapPasswords(false)
	}()
	if argonTime != owaspTime || argonMemory != owaspMemory {
		t.Errorf("after the refused call: cost t=%d m=%d KiB, want OWASP's %d and %d", argonTime, argonMemory, owaspTime, owaspMemory)
	}

	if testing.Short() {
		t.Skip("-short: building a program that links store (about 10 s) is left to the full tier")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH to build testdata/cheappasswords")
	}
	bin := filepath.Join(t.TempDir(), "cheappasswords")
	if out, err := exec.Command(goTool, "build", "-o", bin, "./testdata/cheappasswords").CombinedOutput(); err != nil {
		t.Fatalf("go build ./testdata/cheappasswords: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "CheapPasswordsForTests called outside a test binary") || strings.Contains(string(out), "made cheap") {
		t.Errorf("a program calling CheapPasswordsForTests: err %v, output\n%s\nwant a panic before it goes on", err, out)
	}
}
