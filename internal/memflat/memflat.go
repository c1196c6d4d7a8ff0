// Package memflat is the test helper that checks a training loop's memory
// is flat: train's stages and train/ssl's methods run Steps() tiny steps and
// compare what they hold after step From with what they hold at the end.
package memflat

import (
	"runtime"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
)

// From is the step after which a memory test's memory must stay what it
// is until the end: 100, or 50 in the short tier (go test -short). A loop
// under test evaluates every From() steps, so the evaluation's shapes are
// seen by then (the tests cycle data of a few lengths).
func From() int {
	if testing.Short() {
		return 50
	}
	return 100
}

// Steps is how many optimizer steps a memory test runs: 1,000, or 100 in
// the short tier. Steps 1 to From() are the warm-up (every shape, the
// evaluation's too, is seen); the measured span is the steps after it: 50
// in the short tier, 900 in the full run. A tensor a step leaves unfreed
// grows the backend's live bytes at every step, and a step's allocation
// that misses the pool misses at every step (50 misses where none is
// allowed), so 50 steps after From() show them as 900 do; the Go heap's
// bound (1 MiB) catches a leak of 21 KB a step in 50 steps, of 1.2 KB in
// 900. TestCheckOverSteps shows each fails over the window of the tier it
// runs in.
func Steps() int {
	if testing.Short() {
		return 100
	}
	return 1000
}

type snap struct {
	mem  cpu.MemStats
	heap uint64
}

// Probe reads a backend's memory at steps From() and Steps().
type Probe struct {
	be          *cpu.CPU
	from, steps int
	at          []snap
}

// New returns a probe of be.
func New(be *cpu.CPU) *Probe { return &Probe{be: be, from: From(), steps: Steps()} }

// OnStep is the loop's OnStep callback: it reads the memory after steps
// From() and Steps().
func (p *Probe) OnStep(step int, _ float64) {
	if step == p.from || step == p.steps {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		p.at = append(p.at, snap{p.be.MemStats(), ms.HeapAlloc})
	}
}

// Check fails t unless memory was flat from step From() to Steps(): the
// backend's live bytes do not change (a step that leaves one tensor
// unfreed grows them at every step), its allocations that missed the pool
// hardly do, and the Go heap grows by less than a small bound.
func (p *Probe) Check(t testing.TB) {
	t.Helper()
	if len(p.at) != 2 {
		t.Fatalf("the run stopped before step %d", p.steps)
	}
	a, b := p.at[0], p.at[1]
	if b.mem.Live != a.mem.Live {
		t.Errorf("backend memory in use grew from %d bytes after step %d to %d after step %d (%.0f bytes a step): a step leaves tensors unfreed",
			a.mem.Live, p.from, b.mem.Live, p.steps, float64(b.mem.Live-a.mem.Live)/float64(p.steps-p.from))
	}
	// Kernels that split work over threads take every chunk's scratch
	// before the chunks start (cpu's chunked), so what a step holds at once
	// does not depend on how the threads interleave: once the shapes
	// repeat, no allocation misses. (When chunks took their scratch as they
	// started, a rare first overlap after step From cost one buffer, and
	// train/ssl's SimCLR, whose image prefetch competes for the cores, saw
	// 1 to 5.)
	if miss := b.mem.Misses - a.mem.Misses; miss != 0 {
		t.Errorf("%d allocations missed the backend's pool between steps %d and %d (want none once shapes repeat)", miss, p.from, p.steps)
	}
	const heapBound = 1 << 20
	if grow := int64(b.heap) - int64(a.heap); grow > heapBound {
		t.Errorf("the Go heap grew by %d bytes from step %d to %d (bound %d)", grow, p.from, p.steps, heapBound)
	}
	t.Logf("after step %d: %+v, heap %d; after step %d: %+v, heap %d", p.from, a.mem, a.heap, p.steps, b.mem, b.heap)
}
