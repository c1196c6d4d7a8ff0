package cpu

import (
	"math"
	"strings"
	"testing"
)

// splits runs fn at threads threads and returns the largest number of
// chunks any of its Parallel calls split into.
func splits(threads int, fn func()) int {
	old := SetThreads(threads)
	defer SetThreads(old)
	most := 1
	splitHook = func(n, t int) { most = max(most, t) }
	defer func() { splitHook = nil }()
	fn()
	return most
}

// A gradient added whole (addGrad: Copy2D of one row of all its values)
// and a contiguous block are split over both threads, with the same values,
// bit for bit, as on one thread.
func TestCopy2DOneRowSplitsBitExact(t *testing.T) {
	c := New()
	const n = 1 << 17
	src := make([]float32, n)
	for i := range src {
		src[i] = float32(math.Sin(float64(i))) * 1e3
	}
	base := make([]float32, n)
	for i := range base {
		base[i] = float32(math.Cos(float64(i)*0.37)) / 3
	}
	for _, tc := range []struct {
		name       string
		rows, cols int
		acc        bool
	}{
		{"one row, add", 1, n, true},
		{"one row, copy", 1, n, false},
		{"contiguous rows, add", 64, n / 64, true},
	} {
		run := func(threads int) ([]float32, int) {
			d, s := c.Alloc(n, false), c.Alloc(n, false)
			copy(f(d), base)
			copy(f(s), src)
			k := splits(threads, func() { c.Copy2D(d, 0, tc.cols, s, 0, tc.cols, tc.rows, tc.cols, tc.acc) })
			return append([]float32(nil), f(d)...), k
		}
		want, _ := run(1)
		got, k := run(2)
		if k != 2 {
			t.Errorf("%s: split into %d chunks at 2 threads, want 2", tc.name, k)
		}
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: value %d: %v at 2 threads, %v at 1", tc.name, i, got[i], want[i])
			}
		}
	}
}

// Zeroing a model's gradients (Fill) is split over both threads and
// leaves every value set.
func TestFillSplits(t *testing.T) {
	c := New()
	const n = 1<<20 + 3
	for _, v := range []float32{0, 2.5} {
		d := c.Alloc(n, false)
		for i := range f(d) {
			f(d)[i] = -1
		}
		if k := splits(2, func() { c.Fill(d, v) }); k != 2 {
			t.Errorf("Fill(%v): split into %d chunks at 2 threads, want 2", v, k)
		}
		for i, x := range f(d) {
			if x != v {
				t.Fatalf("Fill(%v): value %d is %v", v, i, x)
			}
		}
	}
}

// Pool statistics name the caller of each Parallel call, count calls too
// small to split as serial, and see a call whose second half does more
// work than its first as spread.
func TestPoolStatsSpreadAndSerial(t *testing.T) {
	if !haveThreadCPU {
		t.Skip("no thread CPU clocks on this system")
	}
	old := SetThreads(2)
	defer SetThreads(old)
	done := make(chan struct{})
	var sites []SiteStats
	go func() { // SetPoolStats locks the goroutine to its thread
		defer close(done)
		SetPoolStats(true)
		PoolStats()
		spin := func(n int) (x float64) {
			for i := range n {
				x += math.Sqrt(float64(i))
			}
			return x
		}
		var sink [2]float64
		Parallel(2, 1, func(lo, hi int) {
			sink[lo] = spin(1e5 + lo*2e7) // the second chunk ~200x the first
		})
		Parallel(1, 1, func(lo, hi int) { sink[0] += spin(1e6) })
		sites, _, _ = PoolStats()
		SetPoolStats(false)
	}()
	<-done
	var split, serial *SiteStats
	for i := range sites {
		if !strings.Contains(sites[i].Site, "TestPoolStatsSpreadAndSerial") {
			continue
		}
		if sites[i].Calls > 0 {
			split = &sites[i]
		}
		if sites[i].Serial > 0 {
			serial = &sites[i]
		}
	}
	if split == nil || serial == nil {
		t.Fatalf("the test's calls are not among the sites: %v", sites)
	}
	if split.Spread < split.Work/2 {
		t.Errorf("spread %v of work %v: want most of it (one chunk ~200x the other)", split.Spread, split.Work)
	}
	if serial.SerialWork <= 0 || serial.Serial != 1 {
		t.Errorf("serial call: %v", *serial)
	}
}
