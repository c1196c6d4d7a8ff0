package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// The one worker pool of the CPU backend. Workers are started once and wait
// for work; no goroutine is spawned per op. Parallel splits [0,n) into
// contiguous chunks, runs chunk 0 on the calling goroutine and the rest on
// workers, and returns when all are done.

type task struct {
	fn     func(lo, hi int)
	lo, hi int
	c      *call
}

// call tracks the chunks of one Parallel call still running. The caller
// first spins on pending (a wake-up through the scheduler costs tens of
// microseconds, as much as a decoding step's small matrix products), then
// waits on wg.
type call struct {
	pending atomic.Int32
	wg      sync.WaitGroup
}

// spin is how many polls a worker makes for more work, and the caller for
// its chunks, before sleeping.
const spin = 2000

var (
	// wgPool recycles the WaitGroups of Parallel calls, so that a call
	// allocates nothing.
	wgPool = sync.Pool{New: func() any { return new(call) }}

	poolOnce sync.Once
	poolCh   chan task
	nthreads atomic.Int32
)

func startPool() {
	n := runtime.GOMAXPROCS(0)
	if nthreads.Load() == 0 {
		nthreads.Store(int32(n))
	}
	poolCh = make(chan task, 64)
	for i := 0; i < 64 && i < 4*n; i++ {
		go worker()
	}
}

// SetThreads sets how many threads kernels use (at least 1). It returns the
// previous value. Results are bit-identical for the same thread count.
// worker runs chunks; after each it polls for the next one a while before
// blocking, so that the back-to-back calls of a decoding step find it awake.
func worker() {
	for t := range poolCh {
		for {
			t.fn(t.lo, t.hi)
			t.c.pending.Add(-1)
			t.c.wg.Done()
			got := false
			for i := 0; i < spin && !got; i++ {
				select {
				case t = <-poolCh:
					got = true
				default:
					runtime.Gosched()
				}
			}
			if !got {
				break
			}
		}
	}
}

func SetThreads(n int) int {
	poolOnce.Do(startPool)
	if n < 1 {
		n = 1
	}
	return int(nthreads.Swap(int32(n)))
}

// Threads reports how many threads kernels use.
func Threads() int {
	poolOnce.Do(startPool)
	return int(nthreads.Load())
}

// Parallel runs fn over [0,n) split into at most Threads() contiguous chunks
// of at least grain items each.
func Parallel(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	t := Threads()
	if grain < 1 {
		grain = 1
	}
	if c := (n + grain - 1) / grain; c < t {
		t = c
	}
	if t <= 1 {
		fn(0, n)
		return
	}
	c := wgPool.Get().(*call)
	defer wgPool.Put(c)
	chunk := (n + t - 1) / t
	for i := 1; i < t; i++ {
		lo := i * chunk
		hi := min(lo+chunk, n)
		if lo >= hi {
			break
		}
		c.wg.Add(1)
		c.pending.Add(1)
		poolCh <- task{fn: fn, lo: lo, hi: hi, c: c}
	}
	fn(0, min(chunk, n))
	for i := 0; i < spin && c.pending.Load() > 0; i++ {
		runtime.Gosched()
	}
	c.wg.Wait()
}
