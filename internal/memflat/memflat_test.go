package memflat

import (
	"fmt"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
)

// recorder keeps what Check reports instead of failing the test.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

var kept [][]byte // the Go heap a leaking step keeps

// TestCheckOverSteps runs Steps() steps (200 in the short tier, 100 of them
// measured) of a loop that frees what it takes, one that leaves a 256-byte
// buffer unfreed a step, and one that keeps 12 KB of Go heap a step:
// Check passes the first and fails the others, naming what grew (the
// leaked buffer misses the pool at every step too).
func TestCheckOverSteps(t *testing.T) {
	for _, c := range []struct {
		name string
		step func(be *cpu.CPU)
		want string
	}{
		{"flat", func(be *cpu.CPU) { be.Free(be.Alloc(64, true)) }, ""},
		{"tensor-leak", func(be *cpu.CPU) { be.Alloc(64, true) }, "a step leaves tensors unfreed"},
		{"heap-leak", func(*cpu.CPU) { kept = append(kept, make([]byte, 12<<10)) }, "the Go heap grew"},
	} {
		t.Run(c.name, func(t *testing.T) {
			be := cpu.New()
			p := New(be)
			for step := 1; step <= Steps(); step++ {
				c.step(be)
				p.OnStep(step, 0)
			}
			r := &recorder{TB: t}
			p.Check(r)
			kept = nil
			switch {
			case c.want == "" && len(r.errs) > 0:
				t.Fatalf("Check failed a flat loop: %q", r.errs)
			case c.want != "" && !strings.Contains(strings.Join(r.errs, "\n"), c.want):
				t.Fatalf("Check reported %q; want an error naming %q", r.errs, c.want)
			}
		})
	}
}
