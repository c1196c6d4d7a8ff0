package cpu

import "testing"

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
