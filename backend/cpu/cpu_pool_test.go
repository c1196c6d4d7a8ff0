package cpu

import (
	"testing"

	"github.com/golem-ml/golem/backend"
)

func TestSizeClassesReuseAndCap(t *testing.T) {
	for _, n := range []int{1, 15, 16, 17, 255, 256, 257, 1000, 4096, 4097, 123457} {
		c := sizeClass(n)
		if c < n || float64(c) > float64(n)*1.125+16 || sizeClass(c) != c {
			t.Errorf("sizeClass(%d) = %d", n, c)
		}
	}
	be := New()
	a := be.Alloc(1000, false)
	Data(a)[999] = 7
	be.Free(a)
	b := be.Alloc(990, true) // same class: the same memory, zeroed, of the new length
	if b != a || b.Len() != 990 || Data(b)[0] != 0 {
		t.Fatalf("no reuse within a size class: len %d", b.Len())
	}
	old := MaxPooled
	MaxPooled = 1 << 12
	defer func() { MaxPooled = old }()
	be2 := New()
	x, y := be2.Alloc(1000, false), be2.Alloc(1000, false)
	be2.Free(x)
	be2.Free(y) // over the cap: dropped
	if be2.pooled > MaxPooled {
		t.Errorf("pooled %d bytes over the cap %d", be2.pooled, MaxPooled)
	}
}

// MemStats counts the bytes handed out and not freed (by size class) and
// the allocations the free lists could not serve.
func TestMemStats(t *testing.T) {
	be := New()
	a := be.Alloc(1000, false) // class 1024: 4096 bytes
	h := be.AllocHalf(10)
	if s := be.MemStats(); s.Live != 4*1024+2*10 || s.Misses != 2 || s.Pooled != 0 {
		t.Fatalf("after two allocations: %+v", s)
	}
	be.Free(a)
	be.Free(h)
	if s := be.MemStats(); s.Live != 0 || s.Pooled != 4*1024 {
		t.Fatalf("after freeing both: %+v", s)
	}
	b := be.Alloc(990, false) // served by the pool: no miss
	if s := be.MemStats(); s.Live != 4*1024 || s.Misses != 2 || s.Pooled != 0 {
		t.Fatalf("after a pooled allocation: %+v", s)
	}
	be.Free(b)
}

// Fed many distinct lengths, the pool keeps at most its limit (poolFactor
// times the most ever in use, at least MinPooled), dropping the lengths least
// recently used: a length used at every step keeps its buffer (no miss)
// however many others pass, and what the buffers hold is the same as
// with a pool that drops nothing.
func TestPoolBoundedLRU(t *testing.T) {
	old := MinPooled
	MinPooled = 1 << 18
	defer func() { MinPooled = old }()
	run := func(be *CPU) (sum float64, maxPooled int64) {
		for step := range 2000 {
			hot := be.Alloc(5000, true) // every step: always served by the pool after the first
			other := be.Alloc(300+step*37, true)
			d, o := Data(hot), Data(other)
			for i := range o {
				o[i] = float32(i % 7)
			}
			for i := range d {
				d[i] = o[i%len(o)] + float32(step)
				sum += float64(d[i])
			}
			be.Free(other)
			be.Free(hot)
			maxPooled = max(maxPooled, be.MemStats().Pooled)
		}
		return sum, maxPooled
	}
	be := New()
	sum, most := run(be)
	s := be.MemStats()
	// The most in use at once: the two buffers of the last step (the
	// largest).
	limit := max(int64(MinPooled), poolFactor*4*(int64(sizeClass(5000))+int64(sizeClass(300+1999*37))))
	if most > limit {
		t.Errorf("the pool held %d bytes, over its limit %d", most, limit)
	}
	// 2000 distinct other lengths in about 1,200 size classes: each
	// misses once, the hot one only at the start.
	if s.Misses > 2000+1 {
		t.Errorf("%d misses in 2000 steps of one hot and one new length: the hot length lost its buffer", s.Misses)
	}
	MaxPooled, old = 1<<40, MaxPooled
	MinPooled = 1 << 40
	ref, unbounded := run(New())
	MaxPooled = old
	if sum != ref {
		t.Errorf("sum %v with the pool bounded, %v unbounded", sum, ref)
	}
	if unbounded <= 2*limit {
		t.Errorf("unbounded, the pool held only %d bytes: the test does not exceed the limit %d", unbounded, limit)
	}
	t.Logf("pool at most %d bytes (limit %d; %d unbounded), %d misses", most, limit, unbounded, s.Misses)
}

// Once the pool is full of lengths no longer used, a new length used at
// every step still keeps its buffer: the stale ones are dropped for it
// (a pool that dropped what came last missed at every step).
func TestPoolDropsStaleFirst(t *testing.T) {
	old := MaxPooled
	MaxPooled = 1 << 20
	defer func() { MaxPooled = old }()
	be2 := New()
	var bufs []backend.Buffer
	for i := range 64 { // 64 lengths of about 64 KB, freed together: more than the pool keeps
		bufs = append(bufs, be2.Alloc(16000+i*300, false))
	}
	for _, b := range bufs {
		be2.Free(b)
	}
	if p := be2.MemStats().Pooled; p > int64(MaxPooled) || p < int64(MaxPooled)*3/4 {
		t.Fatalf("the pool holds %d bytes after the stale lengths, want at most %d and near it", p, MaxPooled)
	}
	m0 := be2.MemStats().Misses
	for range 100 {
		be2.Free(be2.Alloc(40000, false))
	}
	if miss := be2.MemStats().Misses - m0; miss > 1 {
		t.Errorf("a new length used 100 times missed the pool %d times, want once", miss)
	}
}

// TestChunkedScratchDoesNotDependOnInterleaving calls chunked 300 times
// with chunks that take varied times, so that a chunk sometimes ends
// before its neighbour starts and sometimes not: all the chunks' scratch is
// taken before they start, so only the first call misses the pool (one
// buffer a chunk), whatever the interleaving. Taking it as each chunk
// started, a call whose chunks overlapped for the first time missed again.
func TestChunkedScratchDoesNotDependOnInterleaving(t *testing.T) {
	if Threads() < 2 {
		defer SetThreads(SetThreads(2))
	}
	be := New()
	seen := make([]bool, 8)
	var m0 int64
	for call := range 300 {
		be.chunked(8, 5000, call%2 == 0, func(lo, hi int, s []float32) {
			if len(s) != 5000 {
				t.Errorf("scratch of %d values, want 5000", len(s))
			}
			for i := lo; i < hi; i++ {
				seen[i] = true
			}
			for range (call*7 + lo*13) % 5 * 2000 { // 0 to 8,000 steps of work
				s[call%len(s)]++
			}
		})
		if call == 0 {
			m0 = be.MemStats().Misses
			if want := int64(min(Threads(), 8)); m0 != want {
				t.Errorf("the first call missed %d times, want %d (one scratch a chunk)", m0, want)
			}
		}
	}
	for i, ok := range seen {
		if !ok {
			t.Errorf("item %d was never given to a chunk", i)
		}
	}
	if s := be.MemStats(); s.Misses != m0 || s.Live != 0 {
		t.Errorf("after 300 calls: %d misses (%d after the first), %d bytes live", s.Misses, m0, s.Live)
	}
}
