// Package dirlock keeps two processes from writing one folder at once: an
// advisory lock (flock) on DIR/.lock with the holder's pid written inside.
// The kernel releases the lock when the holder exits, however it exits
// (kill -9 included), so a lock is never left stale.
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Name is the lock file's name inside the folder.
const Name = ".lock"

// Lock is a held lock; Release gives it back.
type Lock struct{ f *os.File }

// BusyError says the folder is locked by another process.
type BusyError struct {
	Dir string
	PID int // 0 when the holder has not written its pid yet
}

func (e *BusyError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = "pid " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("%s is in use by %s (another golem run); wait for it or choose another --out", e.Dir, who)
}

// Acquire locks dir (which must exist) without waiting: a folder locked by
// another process (or by another Acquire in this one) gives a *BusyError.
func Acquire(dir string) (*Lock, error) {
	f, err := os.OpenFile(filepath.Join(dir, Name), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	busy, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	if busy {
		b, _ := os.ReadFile(f.Name())
		f.Close()
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return nil, &BusyError{Dir: dir, PID: pid}
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Release gives the lock back (the file stays: removing it would race
// with a process that has just opened it).
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// IsBusy reports whether err says a folder is locked.
func IsBusy(err error) bool {
	var b *BusyError
	return errors.As(err, &b)
}
