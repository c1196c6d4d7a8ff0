package cpu

import (
	"sync"
	"sync/atomic"
	"testing"
)

// Parallel returns only once every chunk of its call has run, also when
// several goroutines call it at once and workers are preempted between
// finishing a chunk and signalling it (a recycled call must never be woken
// by a worker of the call before it).
func TestParallelCompleteUnderContention(t *testing.T) {
	old := SetThreads(4)
	// Every wait sleeps, so that wake-ups cross between calls if they can.
	oldSpin := spinPolls.Swap(0)
	defer spinPolls.Store(oldSpin)
	defer SetThreads(old)
	iters := 20000
	if testing.Short() {
		iters = 2000
	}
	var bad atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var done [4]atomic.Int32
			for it := 0; it < iters; it++ {
				for i := range done {
					done[i].Store(0)
				}
				Parallel(4, 1, func(lo, hi int) {
					for i := lo; i < hi; i++ {
						done[i].Store(1)
					}
				})
				for i := range done {
					if done[i].Load() != 1 {
						bad.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Fatalf("%d chunks had not run when Parallel returned", n)
	}
}
