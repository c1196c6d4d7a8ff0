// Package memflat is the test helper that checks a training loop's memory
// is flat: train's stages and train/ssl's methods run Steps tiny steps and
// compare what they hold after step From with what they hold at the end.
package memflat

import (
	"runtime"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
)

// Steps is how many optimizer steps a memory test runs; the memory it
// holds after step From must be what it holds at the end. A loop under
// test evaluates every From steps, so the evaluation's shapes are seen by
// then.
const Steps, From = 1000, 100

type snap struct {
	mem  cpu.MemStats
	heap uint64
}

// Probe reads a backend's memory at steps From and Steps.
type Probe struct {
	be *cpu.CPU
	at []snap
}

// New returns a probe of be.
func New(be *cpu.CPU) *Probe { return &Probe{be: be} }

// OnStep is the loop's OnStep callback: it reads the memory after steps
// From and Steps.
func (p *Probe) OnStep(step int, _ float64) {
	if step == From || step == Steps {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		p.at = append(p.at, snap{p.be.MemStats(), ms.HeapAlloc})
	}
}

// Check fails t unless memory was flat from step From to Steps: the
// backend's live bytes do not change (a step that leaves one tensor
// unfreed grows them at every step), its allocations that missed the pool
// hardly do, and the Go heap grows by less than a small bound.
func (p *Probe) Check(t testing.TB) {
	t.Helper()
	if len(p.at) != 2 {
		t.Fatalf("the run stopped before step %d", Steps)
	}
	a, b := p.at[0], p.at[1]
	if b.mem.Live != a.mem.Live {
		t.Errorf("backend memory in use grew from %d bytes after step %d to %d after step %d (%.0f bytes a step): a step leaves tensors unfreed",
			a.mem.Live, From, b.mem.Live, Steps, float64(b.mem.Live-a.mem.Live)/(Steps-From))
	}
	// Kernels that split work over threads take a scratch buffer per
	// chunk, so the first time two chunks overlap costs one new buffer: a
	// few misses, never one a step.
	if miss, bound := b.mem.Misses-a.mem.Misses, int64(2*cpu.Threads()); miss > bound {
		t.Errorf("%d allocations missed the backend's pool between steps %d and %d (want at most %d once shapes repeat)", miss, From, Steps, bound)
	}
	const heapBound = 1 << 20
	if grow := int64(b.heap) - int64(a.heap); grow > heapBound {
		t.Errorf("the Go heap grew by %d bytes from step %d to %d (bound %d)", grow, From, Steps, heapBound)
	}
	t.Logf("after step %d: %+v, heap %d; after step %d: %+v, heap %d", From, a.mem, a.heap, Steps, b.mem, b.heap)
}
