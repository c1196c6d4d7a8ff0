package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/internal/cpuprof"
	"github.com/golem-ml/golem/kvcache"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tensor"
)

// The generation benchmark: batch-1 sampling of N new tokens from a
// one-token prompt with the KV cache (multinomial sampling, no gradients),
// against the peer's --gen mode (its "kvcache" number), on the same model
// shape and random weights.
func init() {
	register("generate", func(args []string) error {
		fs := flag.NewFlagSet("generate", flag.ExitOnError)
		config := fs.String("config", "small", "baby, small, gpt2-tiny-bpe or gpt2-124m")
		n := fs.Int("tokens", 200, "new tokens to generate")
		runs := fs.Int("runs", 3, "timed golem runs (the best is reported)")
		threads := fs.Int("threads", 2, "threads")
		noPeer := fs.Bool("no-peer", false, "skip the PyTorch peer (no ratio)")
		fs.Parse(args)
		cpu.SetThreads(*threads)
		m, c, err := benchModel(*config)
		if err != nil {
			return err
		}
		if *n+1 > c.Context {
			return fmt.Errorf("-tokens %d does not fit the context of %d", *n, c.Context)
		}
		var peer float64
		if !*noPeer {
			peer, err = peerField("gen_tokens_per_s_kvcache", "--config", *config, "--tuned", "--gen", fmt.Sprint(*n),
				"--steps", "1", "--warmup", "0", "--threads", fmt.Sprint(*threads))
			if err != nil {
				return err
			}
		}
		defer cpuprof.Start("bench")()
		sample(m, 8, 1) // warm the buffer pool
		var best float64
		var out []int32
		for r := 0; r < max(*runs, 1); r++ {
			t0 := time.Now()
			out = sample(m, *n, 42)
			best = max(best, float64(*n)/time.Since(t0).Seconds())
		}
		fmt.Printf("golem: config=%s batch=1 new_tokens=%d kv_cache tokens_per_s=%.1f (best of %d; first ids %v)\n",
			*config, *n, best, max(*runs, 1), out[:min(8, len(out))])
		if peer > 0 {
			fmt.Printf("peer:  gen_tokens_per_s_kvcache=%.1f\n", peer)
			fmt.Printf("ratio=%.2f\n", best/peer)
		}
		return nil
	})
}

// sample generates n tokens after token 0, one at a time with the KV cache,
// drawing each from the softmax of the logits.
func sample(m *gpt.Model, n int, seed uint64) []int32 {
	r := rand.New(rand.NewPCG(seed, 0))
	out := make([]int32, 0, n)
	id := int32(0)
	tensor.NoGrad(func() {
		cache := &kvcache.Growable{}
		defer cache.Close()
		var probs []float64
		for i := 0; i < n; i++ {
			sc := tensor.NewScope()
			l := m.Logits(m.Forward([]int32{id}, 1, 1, gpt.Options{Cache: cache, Scope: sc})).Host()
			sc.Close()
			probs = slices.Grow(probs[:0], len(l))[:len(l)]
			mx := slices.Max(l)
			var z float64
			for j, v := range l {
				probs[j] = math.Exp(float64(v - mx))
				z += probs[j]
			}
			u := r.Float64() * z
			id = int32(len(l) - 1)
			for j, p := range probs {
				if u -= p; u < 0 {
					id = int32(j)
					break
				}
			}
			out = append(out, id)
		}
	})
	return out
}

// peerField runs the PyTorch peer and returns the value of key, read from
// the key=value fields of its output lines (the last one wins).
func peerField(key string, args ...string) (float64, error) {
	fields, err := peerFields(args...)
	if err != nil {
		return 0, err
	}
	v, ok := fields[key]
	if !ok {
		return 0, fmt.Errorf("peer printed no %s= field", key)
	}
	return v, nil
}

// peerFields runs the PyTorch peer, echoing its output, and returns every
// numeric key=value field it printed (the last value of each key).
func peerFields(args ...string) (map[string]float64, error) {
	return scriptFields("pytorch_gpt_bench.py", args...)
}

// scriptFields is peerFields for the peer script ../shared/peer/name.
func scriptFields(name string, args ...string) (map[string]float64, error) {
	script, err := peerScriptNamed(name)
	if err != nil {
		return nil, err
	}
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		py = "python3"
	}
	if out, err := exec.Command(py, "-c", "import torch").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("the PyTorch peer needs Debian's torch: apt-get install -y python3-torch python3-numpy libopenblas0-openmp (%s: %s)", py, strings.TrimSpace(string(out)))
	}
	cmd := exec.Command(py, append([]string{script}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	fmt.Printf("peer: %s %s\n", filepath.Base(script), strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("peer failed: %v", err)
	}
	var buf bytes.Buffer
	fields := map[string]float64{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		buf.WriteString(line + "\n")
		if line == "" {
			continue
		}
		fmt.Println("  peer|", line)
		// --verbose prints "step I: X ms" as each timed step ends: the
		// process's CPU time then (all its threads), read as it prints
		// the first and the last, gives its CPU time a step in between.
		var i int
		var ms float64
		if n, _ := fmt.Sscanf(line, "step %d: %g ms", &i, &ms); n == 2 {
			if c, ok := procCPUSeconds(cmd.Process.Pid); ok {
				if fields["step_count"] == 0 {
					fields["step_cpu_first"] = c
				}
				fields["step_cpu_last"] = c
			}
			fields["step_count"]++
		}
		for _, field := range strings.Fields(line) {
			if k, v, ok := strings.Cut(field, "="); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					fields[k] = f
				}
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("peer failed: %v\n%s", err, buf.String())
	}
	return fields, nil
}

// procCPUSeconds is the CPU time, user and system, of all the threads of
// process pid so far (/proc/PID/stat, in the kernel's clock ticks of
// 1/100 s); false where it cannot be read.
func procCPUSeconds(pid int) (float64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The fields after the command name (in parentheses, which may hold
	// spaces): state is the 3rd field, utime and stime the 14th and 15th.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return (u + st) / 100, true
}
