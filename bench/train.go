package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/internal/cpuprof"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/optim"
	"github.com/golem-ml/golem/tensor"
)

// benchConfigs are the peer's configs (../shared/peer/pytorch_gpt_bench.py):
// nanoGPT's model, no biases, exact GELU, tied head.
var benchConfigs = map[string]struct{ L, H, C, T, B, V int }{
	"baby":          {4, 4, 128, 64, 12, 65},
	"small":         {6, 6, 384, 256, 16, 65},
	"gpt2-tiny-bpe": {6, 6, 384, 256, 8, 50304},
	"gpt2-124m":     {12, 12, 768, 1024, 4, 50304},
}

// gemmSpeed measures the reference the step's GFLOP/s is set against:
// golem's float32 GEMM on a 1024x1024x1024 product at the bench's
// threads, the best of 5 runs, in GFLOP/s. The machines differ (AVX-512
// with two FMA units a core does 64 FLOP a cycle, Zen 1's AVX2 16), so a
// fixed peak would claim a fraction no step can reach on some of them.
func gemmSpeed() float64 {
	const n = 1024
	a, b, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
	for i := range a {
		a[i], b[i] = float32(i%7)-3, float32(i%5)-2
	}
	best := 0.0
	for range 5 {
		t0 := time.Now()
		cpu.Sgemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n)
		best = max(best, 2*n*n*n/time.Since(t0).Seconds()/1e9)
	}
	return best
}

func benchModel(name string) (*gpt.Model, gpt.Config, error) {
	bc, ok := benchConfigs[name]
	if !ok {
		return nil, gpt.Config{}, fmt.Errorf("unknown config %q (baby, small, gpt2-tiny-bpe, gpt2-124m)", name)
	}
	c := gpt.Config{Arch: "gpt2", Vocab: bc.V, Context: bc.T, Layers: bc.L, Heads: bc.H, KVHeads: bc.H,
		Hidden: bc.C, Intermediate: 4 * bc.C, Eps: 1e-5, Activation: "gelu", Tied: true, BOS: -1, EOS: -1}
	m, err := gpt.New(cpu.New(), c, 1337)
	return m, c, err
}

func init() {
	register("train", func(args []string) error {
		fs := flag.NewFlagSet("train", flag.ExitOnError)
		config := fs.String("config", "baby", "baby, small or gpt2-tiny-bpe")
		steps := fs.Int("steps", 20, "timed steps (median is reported)")
		warmup := fs.Int("warmup", 3, "untimed steps first")
		threads := fs.Int("threads", 2, "threads")
		noPeer := fs.Bool("no-peer", false, "skip the PyTorch peer (no ratio)")
		poolStats := fs.Bool("pool-stats", false, "time each Parallel call's chunks by their threads' CPU clocks and print, a step, the serial work and how far each call's chunks differ (slower; the numbers hold under load)")
		dtype := fs.String("dtype", "float32", "float32, or bf16: golem's mixed precision (train --dtype bf16) against the peer's --amp bf16 (CPU autocast)")
		fs.Parse(args)
		amp := "fp32"
		switch *dtype {
		case "float32":
		case "bf16":
			amp = "bf16"
		default:
			return fmt.Errorf("--dtype %q: want float32 or bf16", *dtype)
		}
		cpu.SetThreads(*threads)
		m, c, err := benchModel(*config)
		if err != nil {
			return err
		}
		bc := benchConfigs[*config]
		var peer, peerMedMS, peerMinMS, peerCPUMS float64
		if !*noPeer {
			pf, err := peerFields("--config", *config, "--tuned", "--steps", fmt.Sprint(*steps), "--warmup", fmt.Sprint(*warmup), "--threads", fmt.Sprint(*threads), "--amp", amp, "--verbose")
			if err != nil {
				return err
			}
			var ok bool
			if peer, ok = pf["tokens_per_s"]; !ok || peer <= 0 {
				return fmt.Errorf("peer printed no tokens_per_s= line")
			}
			peerMedMS, peerMinMS = pf["step_ms_median"], pf["step_ms_min"]
			// The peer's CPU time a step, over its timed steps after the
			// first (scriptFields reads it as the peer prints each step).
			if n := pf["step_count"]; n > 1 {
				peerCPUMS = 1e3 * (pf["step_cpu_last"] - pf["step_cpu_first"]) / (n - 1)
			}
		}
		params := m.Params()
		// The profile covers the timed steps only: the first steps
		// touch every buffer of the pool for the first time, and their
		// page faults would be charged to whichever kernel writes first.
		stopProfile := func() {}
		defer func() { stopProfile() }()
		opt := optim.NewAdamW(params, 0.9, 0.99, 1e-8, 0.1)
		r := rand.New(rand.NewPCG(1, 2))
		B, T := bc.B, bc.T
		ids, targets := make([]int32, B*T), make([]int32, B*T)
		var times []float64
		var callerCPU time.Duration // this thread's CPU time over the timed steps
		var cpuSum float64          // this process's CPU seconds over the timed steps
		for s := 0; s < *warmup+*steps; s++ {
			for i := range ids {
				ids[i], targets[i] = int32(r.IntN(c.Vocab)), int32(r.IntN(c.Vocab))
			}
			if s == *warmup {
				stopProfile = cpuprof.Start("bench")
				if *poolStats {
					if !cpu.SetPoolStats(true) {
						return fmt.Errorf("--pool-stats: no thread CPU clocks on this system")
					}
					callerCPU = 0
					cpu.PoolStats()
				}
			}
			t0, c0 := time.Now(), cpuSeconds()
			m0 := cpuTime(cpuClockThread)
			opt.ZeroGrad()
			sc := tensor.NewScope()
			sc.SetBF16(*dtype == "bf16")
			tensor.Backward(m.Loss(ids, targets, B, T, gpt.Options{Scope: sc}))
			opt.ClipGradNorm(1)
			opt.Update(1e-3)
			sc.Close()
			if s >= *warmup {
				times = append(times, time.Since(t0).Seconds())
				cpuSum += cpuSeconds() - c0
				callerCPU += cpuTime(cpuClockThread) - m0
			}
		}
		if *poolStats {
			printPoolStats(len(times), callerCPU)
		}
		slices.Sort(times)
		med := times[len(times)/2]
		tps := float64(B*T) / med
		nonEmb := nn.Count(params) - c.Context*c.Hidden
		flopTok := 6*float64(nonEmb) + 12*float64(c.Layers*c.Hidden*T)
		gf := flopTok * tps / 1e9
		fmt.Printf("golem: config=%s dtype=%s kernels %s\n", *config, *dtype, cpu.Features())
		ref := gemmSpeed()
		fmt.Printf("golem: config=%s params=%.2fM step=%.1fms (min %.1fms) tokens_per_s=%.0f  %.1f GFLOP/s = %.0f%% of golem's float32 GEMM on this machine (%.0f GFLOP/s on %d threads, a 1024-cube product)\n",
			*config, float64(nn.Count(params))/1e6, med*1e3, times[0]*1e3, tps, gf, 100*gf/ref, ref, *threads)
		cpuMS := 1e3 * cpuSum / float64(len(times))
		var wallSum float64
		for _, t := range times {
			wallSum += t
		}
		// On idle cores, how busy golem's threads are over its own wall
		// time (spinning counts as busy); under load the OS's share too.
		fmt.Printf("golem: cpu_ms_per_step=%.0f (user+sys over the timed steps, all threads) busy=%.2f (CPU over threads x wall)\n",
			cpuMS, cpuSum/(float64(*threads)*wallSum))
		if peer > 0 {
			if peerMedMS > 0 {
				// The peer's tokens_per_s= line is rounded to a whole
				// token (a slow peer's 7 may be 6.5 or 7.5): its median
				// step, of the same B*T tokens, gives the rate exactly.
				peer = float64(B*T) / (peerMedMS / 1e3)
			}
			fmt.Printf("peer:  tokens_per_s=%.1f (%.1f GFLOP/s)\n", peer, flopTok*peer/1e9)
			if peerCPUMS > 0 {
				// Under load, with --threads 1, CPU time says more than
				// the wall clock: each side is charged only its own work.
				fmt.Printf("peer:  cpu_ms_per_step=%.0f: cpu_ratio=%.2f (peer / golem CPU time a step)\n", peerCPUMS, peerCPUMS/cpuMS)
			}
			if peerMinMS > 0 {
				// On a shared machine the fastest steps say more than the median.
				fmt.Printf("best steps: golem %.1fms, peer %.1fms: ratio_min=%.2f\n", times[0]*1e3, peerMinMS, peerMinMS/(times[0]*1e3))
			}
			fmt.Printf("ratio=%.2f\n", tps/peer)
		}
		return nil
	})
}

// cpuSeconds is this process's CPU time so far, user and system, all
// threads.
func cpuSeconds() float64 { return rusageSelf().Seconds() }

// printPoolStats prints, per step, the pool statistics of the timed steps
// (--pool-stats): the caller's CPU time outside any Parallel call and in
// calls too small to split (serial: the other threads wait), and each
// call site's spread (the longest chunk less the shortest, summed: what a
// thread waits for another while both run).
func printPoolStats(steps int, callerCPU time.Duration) {
	sites, in, slept := cpu.PoolStats()
	cpu.SetPoolStats(false)
	per := func(d time.Duration) float64 { return float64(d) / 1e6 / float64(steps) }
	var serial, spread, work time.Duration
	for _, s := range sites {
		serial += s.SerialWork
		spread += s.Spread
		work += s.Work
	}
	fmt.Printf("pool: a step: caller CPU %.1f ms, outside Parallel %.1f ms, in serial calls %.1f ms; chunks %.1f ms; spread %.1f ms; %.0f waits slept\n",
		per(callerCPU), per(callerCPU-in), per(serial), per(work), per(spread), float64(slept)/float64(steps))
	for i, s := range sites {
		if i == 12 {
			break
		}
		fmt.Printf("pool:   spread %6.2f ms  serial %6.2f ms  work %7.2f ms  calls %d+%d  %s\n",
			per(s.Spread), per(s.SerialWork), per(s.Work), s.Calls/steps, s.Serial/steps, s.Site)
	}
}
