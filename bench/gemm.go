package main

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/golem-ml/golem/backend/cpu"
)

func init() { register("gemm", runGemm) }

// gemmShape is one benchmarked SGEMM: C (m x n) = op(A) (m x k) * op(B).
type gemmShape struct {
	name           string
	transA, transB bool
	m, n, k        int
	threads        int // 0: 1 and 2 threads
	st             bool
}

// The shapes of a GPT training step (forward y = x*W^T, backward
// dx = dy*W and dW = dy^T*x) at the baby (C=128) and small (C=384, V=65)
// sizes, and one attention head.
var gemmShapes = []gemmShape{
	{name: "qkv fwd", transB: true, m: 768, n: 384, k: 128, threads: 2},
	{name: "proj dx", m: 768, n: 128, k: 384, threads: 2},
	{name: "fc dW", transA: true, m: 128, n: 384, k: 768, threads: 2},
	{name: "mlp fwd", transB: true, m: 768, n: 128, k: 512, threads: 2},
	{name: "fc fwd", transB: true, m: 4096, n: 1536, k: 384, threads: 2},
	{name: "lm head", transB: true, m: 4096, n: 65, k: 384, threads: 2},
	{name: "attn QK^T (ST)", transB: true, m: 64, n: 64, k: 32, threads: 1, st: true},
}

func runGemm(args []string) error {
	fs := flag.NewFlagSet("gemm", flag.ContinueOnError)
	reps := fs.Int("reps", 15, "timed repetitions per library (the median is reported)")
	blockMS := fs.Int("block", 20, "approximate milliseconds per timed repetition")
	shapes := fs.Bool("shapes", true, "also time the training-step shapes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := ensureOpenBLASEnv(); err != nil {
		return err
	}
	ob, err := loadOpenBLAS()
	if err != nil {
		return err
	}
	fmt.Printf("cpu: %s, golem kernel: %s\n", cpuModel(), cpu.GemmKernel())
	fmt.Printf("peer: %s, core %s\n", strings.TrimSpace(ob.config()), ob.corename())
	fmt.Printf("GFLOP/s: median (best) of %d repetitions of ~%d ms each, golem and OpenBLAS interleaved;\n", *reps, *blockMS)
	fmt.Printf("ratio: median of the per-repetition ratios golem/OpenBLAS;\n")
	fmt.Printf("by CPU time: median GFLOP/s counting only the CPU time used (thread's at 1 thread, process's / threads)\n\n")
	fmt.Printf("%-16s %-4s %-16s %7s %15s %15s %6s %9s %9s\n", "shape", "op", "m x n x k", "threads", "golem", "OpenBLAS", "ratio", "cpu:golem", "cpu:OBLAS")

	var ratio float64
	square := gemmShape{name: "square", m: 1024, n: 1024, k: 1024}
	for _, th := range []int{1, 2} {
		s := square
		s.threads = th
		res, err := timeGemm(ob, s, *reps, *blockMS)
		if err != nil {
			return err
		}
		printGemm(s, res)
		if th == 2 {
			ratio = res.ratio
		}
	}
	if *shapes {
		for _, s := range gemmShapes {
			res, err := timeGemm(ob, s, *reps, *blockMS)
			if err != nil {
				return err
			}
			printGemm(s, res)
		}
	}
	fmt.Printf("\nratio=%.3f\n", ratio)
	return nil
}

// gemmResult is the timing of one shape: median and best GFLOP/s of each
// library and the median of the per-repetition ratios.
type gemmResult struct {
	golem, golemBest, peer, peerBest, ratio float64
	golemCPU, peerCPU                       float64 // by CPU time
}

func printGemm(s gemmShape, r gemmResult) {
	op := map[[2]bool]string{{false, false}: "NN", {false, true}: "NT", {true, false}: "TN", {true, true}: "TT"}[[2]bool{s.transA, s.transB}]
	fmt.Printf("%-16s %-4s %-16s %7d %6.1f (%6.1f) %6.1f (%6.1f) %6.2f %9.1f %9.1f\n", s.name, op, fmt.Sprintf("%dx%dx%d", s.m, s.n, s.k), s.threads,
		r.golem, r.golemBest, r.peer, r.peerBest, r.ratio, r.golemCPU, r.peerCPU)
}

// timeGemm times golem and OpenBLAS on one shape, alternating which runs
// first in each repetition so both see the same machine, checks that they
// agree, and returns the median and best GFLOP/s of each.
func timeGemm(ob *openBLAS, s gemmShape, reps, blockMS int) (gemmResult, error) {
	r := rand.New(rand.NewPCG(uint64(s.m), uint64(s.n*s.k)))
	lda, ldb := s.k, s.n
	if s.transA {
		lda = s.m
	}
	if s.transB {
		ldb = s.k
	}
	a, b := make([]float32, s.m*s.k), make([]float32, s.k*s.n)
	for i := range a {
		a[i] = r.Float32()*2 - 1
	}
	for i := range b {
		b[i] = r.Float32()*2 - 1
	}
	cg, co := make([]float32, s.m*s.n), make([]float32, s.m*s.n)

	// OpenBLAS's OpenMP build keeps its thread count per OS thread
	// (omp_set_num_threads sets the calling thread's ICV), so the count is
	// set and used on one locked thread: set from another thread, the
	// peer ran with whatever count its calling thread last had.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := cpu.SetThreads(s.threads)
	defer cpu.SetThreads(prev)
	ob.setThreads(int32(s.threads))
	gemmGolem := func() { cpu.Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, b, ldb, 0, cg, s.n) }
	if s.st {
		gemmGolem = func() { cpu.SgemmST(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, b, ldb, 0, cg, s.n) }
	}
	gemmPeer := func() { ob.Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, b, ldb, 0, co, s.n) }

	// Warm up, check agreement, and size the repetitions.
	gemmGolem()
	gemmPeer()
	for i := range cg {
		if d := math.Abs(float64(cg[i] - co[i])); d > 1e-4*float64(s.k) || math.IsNaN(d) {
			return gemmResult{}, fmt.Errorf("gemm %dx%dx%d: golem C[%d] = %v, OpenBLAS %v", s.m, s.n, s.k, i, cg[i], co[i])
		}
	}
	t0 := time.Now()
	gemmGolem()
	once := time.Since(t0)
	iters := max(1, int(time.Duration(blockMS)*time.Millisecond/max(once, time.Microsecond)))

	// Besides wall time, measure the CPU time the work took: this thread's
	// with one thread, the process's (divided by the threads) with more.
	// On a machine shared with other jobs it shows each library's speed
	// while it actually runs.
	clock := cpuClockProcess
	if s.threads == 1 {
		clock = cpuClockThread
	}
	flops := 2 * float64(s.m) * float64(s.n) * float64(s.k) * float64(iters)
	block := func(f func()) (wall, cpu float64) {
		time.Sleep(2 * time.Millisecond) // let the other library's threads go idle
		f()
		t, c := time.Now(), cpuTime(clock)
		for range iters {
			f()
		}
		cpuSec := (cpuTime(clock) - c).Seconds() / float64(s.threads)
		return flops / time.Since(t).Seconds() / 1e9, flops / cpuSec / 1e9
	}
	// golem runs as its users run it, on an ordinary goroutine: this one is
	// locked to its OS thread for OpenBLAS, and a locked goroutine that
	// waits for the worker pool (which yields to the scheduler as it
	// waits) switches threads each time it yields (~8% slower at 2
	// threads). One thread never waits, so it stays here, on the thread
	// whose CPU clock is read.
	golemBlock := func() (float64, float64) {
		if s.threads == 1 {
			return block(gemmGolem)
		}
		done := make(chan [2]float64)
		go func() {
			w, c := block(gemmGolem)
			done <- [2]float64{w, c}
		}()
		r := <-done
		return r[0], r[1]
	}
	var gs, ps, rs, gc, pc []float64
	for rep := range reps {
		var g, p, gcpu, pcpu float64
		if rep%2 == 0 {
			g, gcpu = golemBlock()
			p, pcpu = block(gemmPeer)
		} else {
			p, pcpu = block(gemmPeer)
			g, gcpu = golemBlock()
		}
		gs, ps, rs = append(gs, g), append(ps, p), append(rs, g/p)
		gc, pc = append(gc, gcpu), append(pc, pcpu)
	}
	return gemmResult{
		golem: median(gs), golemBest: slices.Max(gs),
		peer: median(ps), peerBest: slices.Max(ps),
		ratio:    median(rs),
		golemCPU: median(gc), peerCPU: median(pc),
	}, nil
}

const (
	cpuClockProcess uintptr = 2 // CLOCK_PROCESS_CPUTIME_ID
	cpuClockThread  uintptr = 3 // CLOCK_THREAD_CPUTIME_ID
)

// cpuTime reads a CPU-time clock.
func cpuTime(clock uintptr) time.Duration {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clock, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

// median sorts x and returns its middle value, the mean of the two
// middle ones when len(x) is even.
func median(x []float64) float64 {
	slices.Sort(x)
	n := len(x)
	if n%2 == 0 {
		return (x[n/2-1] + x[n/2]) / 2
	}
	return x[n/2]
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
