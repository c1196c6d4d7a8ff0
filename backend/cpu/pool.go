package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// The one worker pool of the CPU backend. Workers are started once and wait
// for work; no goroutine is spawned per op. Parallel splits [0,n) into
// contiguous chunks, runs chunk 0 on the calling goroutine and hands the
// others to idle workers, each through its own slot.
//
// Hand-offs and waits spin on atomics before they sleep: waking a goroutine
// through the scheduler costs tens of microseconds, as much as a decoding
// step's small matrix products, and a decoding step makes hundreds of
// calls. The spinning polls a word of memory (no lock, no channel), and
// yields to the scheduler now and then so other goroutines still run.

// spinPolls is how many polls a worker makes for its next chunk, and a
// caller for its chunks, before sleeping; yieldEvery is how often a
// spinning goroutine yields.
// It is atomic so that tests can make every wait sleep.
var spinPolls atomic.Int32

func init() { spinPolls.Store(1 << 15) }

const yieldEvery = 256

// A call tracks the chunks of one Parallel call that workers run. Its
// word counts the chunks not yet done, plus sleeping when the caller
// sleeps on wake. One atomic word for both matters: the worker that
// finishes the last chunk touches the call in that one operation and, only
// if the caller sleeps (and so cannot recycle the call), in the send on
// wake. With two words a worker could be preempted between them, and wake
// the call's next use, whose caller then returned before its chunks ran.
type call struct {
	word atomic.Int32
	wake chan struct{}
}

const sleeping = 1 << 30

// A worker's slot. busy is claimed by a caller (0 -> 1) to give it a
// chunk; state goes 0 (idle) -> 1 (chunk posted) -> 0, or 0 -> 2 while
// it sleeps on wake.
type slot struct {
	busy  atomic.Int32
	state atomic.Int32
	fn    func(lo, hi int)
	lo    int
	hi    int
	c     *call
	wake  chan struct{}
	_     [64]byte // keep slots on their own cache lines
}

// splitHook, set only by tests, is told each call that splits, with its
// value count and number of chunks.
var splitHook func(n, t int)

var (
	workers  []*slot
	nthreads atomic.Int32
	calls    = make(chan *call, 64) // recycled calls
	poolOnce sync.Once
)

func startPool() { poolOnce.Do(start) }

func start() {
	n := runtime.GOMAXPROCS(0)
	if nthreads.Load() == 0 {
		nthreads.Store(int32(n))
	}
	// Room for more threads than cores: SetThreads may ask for them.
	for range max(n, 8) - 1 {
		s := &slot{wake: make(chan struct{}, 1)}
		workers = append(workers, s)
		go s.run()
	}
}

// run is a worker: it waits for a chunk in its slot, runs it, and waits
// again, spinning a while before it sleeps.
func (s *slot) run() {
	locked := false
	for {
		polls := int(spinPolls.Load())
		for i := 0; s.state.Load() != 1; i++ {
			if i < polls {
				if i%yieldEvery == yieldEvery-1 {
					runtime.Gosched()
				}
				continue
			}
			if s.state.CompareAndSwap(0, 2) {
				if statsOn.Load() {
					sleeps.Add(1)
				}
				<-s.wake // the caller set state 1 before waking us
				break
			}
		}
		if on := statsOn.Load(); on != locked {
			// Pool statistics read the thread's CPU clock.
			if on {
				runtime.LockOSThread()
			} else {
				runtime.UnlockOSThread()
			}
			locked = on
		}
		c := s.c
		s.fn(s.lo, s.hi)
		s.fn, s.c = nil, nil
		s.state.Store(0)
		s.busy.Store(0)
		if c.word.Add(-1) == sleeping {
			c.wake <- struct{}{}
		}
	}
}

// post gives the chunk [lo,hi) of fn to an idle worker and reports whether
// one took it.
func post(fn func(lo, hi int), lo, hi int, c *call) bool {
	for _, s := range workers {
		if !s.busy.CompareAndSwap(0, 1) {
			continue
		}
		s.fn, s.lo, s.hi, s.c = fn, lo, hi, c
		c.word.Add(1)
		if s.state.Swap(1) == 2 {
			s.wake <- struct{}{}
		}
		return true
	}
	return false
}

// SetThreads sets how many threads kernels use (at least 1). It returns the
// previous value. Results are bit-identical for the same thread count.
func SetThreads(n int) int {
	startPool()
	if n < 1 {
		n = 1
	}
	return int(nthreads.Swap(int32(n)))
}

// Threads reports how many threads kernels use.
func Threads() int {
	startPool()
	return int(nthreads.Load())
}

// Parallel runs fn over [0,n) split into at most Threads() contiguous chunks
// of at least grain items each. The chunks depend only on n, grain and the
// thread count, never on which goroutine runs them; a chunk no worker is
// free for (another caller has them) runs on the caller.
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
	stats := statsOn.Load()
	var t0 int64
	if stats {
		t0 = threadCPU()
	}
	if t <= 1 {
		fn(0, n)
		if stats {
			d := threadCPU() - t0
			callerIn.Add(d)
			record([]int64{d}, true)
		}
		return
	}
	if splitHook != nil {
		splitHook(n, t)
	}
	var durs []int64
	if stats {
		chunk := (n + t - 1) / t
		durs = make([]int64, (n+chunk-1)/chunk)
		fn = timed(fn, durs, chunk)
	}
	var c *call
	select {
	case c = <-calls:
	default:
		c = &call{wake: make(chan struct{}, 1)}
	}
	chunk := (n + t - 1) / t
	for i := 1; i < t; i++ {
		lo, hi := i*chunk, min((i+1)*chunk, n)
		if lo >= hi {
			break
		}
		if !post(fn, lo, hi, c) {
			fn(lo, hi)
		}
	}
	fn(0, min(chunk, n))
	polls := int(spinPolls.Load())
	for i := 0; ; i++ {
		v := c.word.Load()
		if v == 0 {
			break
		}
		if i < polls {
			if i%yieldEvery == yieldEvery-1 {
				runtime.Gosched()
			}
			continue
		}
		if c.word.CompareAndSwap(v, v|sleeping) {
			if stats {
				sleeps.Add(1)
			}
			<-c.wake
			c.word.Store(0)
			break
		}
	}
	if stats {
		callerIn.Add(threadCPU() - t0)
		record(durs, false)
	}
	select {
	case calls <- c:
	default:
	}
}
