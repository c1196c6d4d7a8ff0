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

// TestCheckOverSteps runs Steps() steps (100 in the short tier, 50 of them
// measured; 1,000 and 900 in the full run) of a loop that frees what it
// takes, one that leaves a 256-byte buffer unfreed a step, one that keeps
// 24 KB of Go heap a step, and one that allocates a new size once after
// the warm-up: Check passes the first and fails the others, naming what
// grew (the leaked buffer misses the pool at every step too).
func TestCheckOverSteps(t *testing.T) {
	for _, c := range []struct {
		name string
		step func(be *cpu.CPU, step int)
		want string
	}{
		{"flat", func(be *cpu.CPU, _ int) { be.Free(be.Alloc(64, true)) }, ""},
		{"tensor-leak", func(be *cpu.CPU, _ int) { be.Alloc(64, true) }, "a step leaves tensors unfreed"},
		{"heap-leak", func(*cpu.CPU, int) { kept = append(kept, make([]byte, 24<<10)) }, "the Go heap grew"},
		{"new-shape", func(be *cpu.CPU, step int) {
			n := 64
			if step == From()+1 {
				n = 96
			}
			be.Free(be.Alloc(n, true))
		}, "missed the backend's pool"},
	} {
		t.Run(c.name, func(t *testing.T) {
			be := cpu.New()
			p := New(be)
			for step := 1; step <= Steps(); step++ {
				c.step(be, step)
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
