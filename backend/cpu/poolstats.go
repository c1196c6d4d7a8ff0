package cpu

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Pool statistics (bench train --pool-stats): which calls of Parallel
// leave one thread waiting for another. Each chunk is timed by its
// thread's own CPU clock, and the goroutines that run chunks are locked
// to their threads while statistics are on, so time the OS gives to
// other processes is not counted: the numbers hold on a loaded machine.

var (
	statsOn  atomic.Bool
	statsMu  sync.Mutex
	bySite   = map[string]*SiteStats{}
	callerIn atomic.Int64 // the callers' CPU ns inside Parallel (calls nested in a chunk too)
	sleeps   atomic.Int64 // waits that outlasted the spinning and slept
)

// SiteStats sums the Parallel calls made from one place.
type SiteStats struct {
	Site       string        // the caller and its two callers
	Calls      int           // calls split over threads
	Serial     int           // calls run whole on the caller (too small to split)
	Work       time.Duration // CPU time of all chunks, serial calls included
	SerialWork time.Duration // of which in serial calls
	Spread     time.Duration // sum over split calls of the longest chunk less the shortest
}

// SetPoolStats turns the statistics on or off and reports whether this
// system has thread CPU clocks to take them. Turn them on from the
// goroutine that calls the kernels, which it locks to its thread until
// it turns them off.
func SetPoolStats(on bool) bool {
	if on && !haveThreadCPU {
		return false
	}
	if on {
		runtime.LockOSThread()
	} else if statsOn.Load() {
		runtime.UnlockOSThread()
	}
	statsOn.Store(on)
	return true
}

// PoolStats returns the statistics since the last call, largest spread
// first, with the callers' CPU time inside Parallel and how many waits
// slept, and resets them.
func PoolStats() (sites []SiteStats, inParallel time.Duration, slept int64) {
	statsMu.Lock()
	for _, s := range bySite {
		sites = append(sites, *s)
	}
	bySite = map[string]*SiteStats{}
	statsMu.Unlock()
	sort.Slice(sites, func(i, j int) bool {
		return sites[i].Spread+sites[i].SerialWork > sites[j].Spread+sites[j].SerialWork
	})
	return sites, time.Duration(callerIn.Swap(0)), sleeps.Swap(0)
}

// site, called by record from Parallel, names Parallel's caller and the two callers above it.
func site() string {
	var pc [3]uintptr
	n := runtime.Callers(4, pc[:]) // past Callers, site, record and Parallel
	frames := runtime.CallersFrames(pc[:n])
	var names []string
	for {
		f, more := frames.Next()
		names = append(names, f.Function[strings.LastIndex(f.Function, "/")+1:])
		if !more {
			break
		}
	}
	return strings.Join(names, " < ")
}

// timed wraps fn for a call split into t chunks of size chunk: it adds
// each chunk's thread CPU time to durs.
func timed(fn func(lo, hi int), durs []int64, chunk int) func(lo, hi int) {
	return func(lo, hi int) {
		t0 := threadCPU()
		fn(lo, hi)
		durs[lo/chunk] += threadCPU() - t0
	}
}

// record adds one call's chunk times (one, for a serial call) to its site.
func record(durs []int64, serial bool) {
	key := site()
	statsMu.Lock()
	defer statsMu.Unlock()
	s := bySite[key]
	if s == nil {
		s = &SiteStats{Site: key}
		bySite[key] = s
	}
	lo, hi := durs[0], durs[0]
	for _, d := range durs {
		lo, hi = min(lo, d), max(hi, d)
		s.Work += time.Duration(d)
	}
	if serial {
		s.Serial++
		s.SerialWork += time.Duration(durs[0])
		return
	}
	s.Calls++
	s.Spread += time.Duration(hi - lo)
}

func (s SiteStats) String() string {
	return fmt.Sprintf("%s: %d split calls, %d serial; work %v (serial %v), spread %v", s.Site, s.Calls, s.Serial, s.Work, s.SerialWork, s.Spread)
}
