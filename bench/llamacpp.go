package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/gguf/export"
	"github.com/golem-ml/golem/internal/cpuprof"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tensor"
)

// The llama.cpp benchmark: golem and llama.cpp (node-llama-cpp 3.22.1's
// prebuilt CPU library, gguf/e2e/bench.mjs) run the same GGUF file, a
// real model's shape with random weights, on the same number of threads:
// prompt processing (one batch of --pp tokens), batch-1 decoding (--tg
// tokens, greedy) and --par sequences decoding --par-tg tokens each at once
// (golem through its batch KV cache as golem serve runs it, llama.cpp
// through context sequences); both keep the KV cache in float16. Each
// phase is timed in wall and in CPU time, over -rounds rounds that
// alternate the two; it ends with ratio=X, golem / llama.cpp of the
// medians (CPU time on one thread, wall time on more), the lowest of the
// three.
func init() {
	register("llamacpp", func(args []string) error {
		fs := flag.NewFlagSet("llamacpp", flag.ExitOnError)
		config := fs.String("config", "qwen2.5-0.5b", "model shape: qwen2.5-0.5b or llama3.2-1b")
		typ := fs.String("type", "q8_0", "weight type: f16, q8_0, q4_0 (golem writes the file), q4_k_m, q5_k_m or q6_k (llama.cpp quantizes golem's f16 file)")
		threads := fs.Int("threads", 1, "threads for both (one is llama.cpp's fastest on 2 shared cores)")
		pp := fs.Int("pp", 128, "prompt tokens")
		tg := fs.Int("tg", 64, "batch-1 decoded tokens")
		par := fs.Int("par", 16, "parallel sequences")
		parTg := fs.Int("par-tg", 32, "tokens each parallel sequence decodes")
		rounds := fs.Int("rounds", 1, "rounds, llama.cpp and golem alternately; the medians are compared")
		peerOn := fs.Bool("llamacpp", true, "run llama.cpp's side (false: golem's only, e.g. to profile it with GOLEM_CPUPROFILE=FILE)")
		cache := fs.String("cache", filepath.Join(os.TempDir(), "golem-bench-llamacpp"), "folder for the GGUF files (kept: 0.5-2.5 GB each)")
		fs.Parse(args)
		c, ok := llamacppConfigs[*config]
		if !ok {
			return fmt.Errorf("-config %q: want qwen2.5-0.5b or llama3.2-1b", *config)
		}
		var file string
		if mix := llamacppMixes[*typ]; mix {
			// llama.cpp's own mixture, quantized by llama.cpp from the
			// F16 file.
			f16 := filepath.Join(*cache, *config+"-F16.gguf")
			if err := randomGGUF(f16, &c, gguf.F16); err != nil {
				return err
			}
			file = filepath.Join(*cache, *config+"-"+*typ+".gguf")
			if err := llamacppQuantize(f16, file, *typ); err != nil {
				return err
			}
		} else {
			t, err := gguf.ParseTensorType(*typ)
			if err != nil || (t != gguf.F16 && t != gguf.Q8_0 && t != gguf.Q4_0) {
				return fmt.Errorf("-type %q: want f16, q8_0, q4_0, q4_k_m, q5_k_m or q6_k", *typ)
			}
			file = filepath.Join(*cache, *config+"-"+t.String()+".gguf")
			if err := randomGGUF(file, &c, t); err != nil {
				return err
			}
		}
		fmt.Printf("model: %s (%s shape, random weights), %d threads, %d rounds\n", file, *config, *threads, *rounds)

		cpu.SetThreads(*threads)
		m, err := gpt.Load(cpu.New(), file)
		if err != nil {
			return err
		}
		fmt.Printf("golem: %d of %d parameters quantized, kernels %s\n", len(m.Quantized()), len(m.Params()), cpu.Features())
		names := []string{"prompt processing", "batch-1 decoding", fmt.Sprintf("%d sequences decoding", *par)}
		var runs [2][3][]timed // [golem, llama.cpp][phase][round]
		for r := range *rounds {
			// Alternately, so that both see the same load.
			if *peerOn {
				peer, err := llamacppPeer(file, *threads, *pp, *tg, *par, *parTg)
				if err != nil {
					return err
				}
				for i := range peer {
					runs[1][i] = append(runs[1][i], peer[i])
				}
				fmt.Printf("round %d llama.cpp: %s\n", r+1, phasesString(peer))
			}
			stop := cpuprof.Start("bench")
			golem := golemLlamacpp(m, *pp, *tg, *par, *parTg)
			stop()
			for i := range golem {
				runs[0][i] = append(runs[0][i], golem[i])
			}
			fmt.Printf("round %d golem:     %s\n", r+1, phasesString(golem))
		}
		if !*peerOn {
			return nil
		}
		// Under load a phase's wall time counts the other processes' turns
		// on the cores; its CPU time (user+system, every thread of the
		// process) counts only its own work. On one thread that is the
		// fair measure; on more, llama.cpp's waiting threads spin (CPU time
		// that is not work), so the ratio is of wall times.
		byCPU := *threads == 1
		measure := "CPU time (tokens per CPU-second)"
		if !byCPU {
			measure = "wall time"
		}
		fmt.Printf("medians of %d rounds; golem/llama.cpp by %s:\n", *rounds, measure)
		ratio := 0.0
		for i, name := range names {
			g, p := medianTimed(runs[0][i]), medianTimed(runs[1][i])
			r := g.perCPU() / p.perCPU()
			if !byCPU {
				r = g.perWall() / p.perWall()
			}
			fmt.Printf("%-22s golem %8.1f tokens/s %8.1f tokens/CPU-s   llama.cpp %8.1f tokens/s %8.1f tokens/CPU-s   golem/llama.cpp %.2f\n",
				name+":", g.perWall(), g.perCPU(), p.perWall(), p.perCPU(), r)
			if i == 0 || r < ratio {
				ratio = r
			}
		}
		fmt.Printf("ratio=%.2f\n", ratio)
		return nil
	})
}

// timed is one phase of a run: tokens, wall and CPU seconds.
type timed struct{ tokens, wall, cpu float64 }

func (p timed) perWall() float64 { return p.tokens / p.wall }
func (p timed) perCPU() float64  { return p.tokens / p.cpu }

// medianTimed returns the median CPU and the median wall time of ps
// (bench/gemm.go's median).
func medianTimed(ps []timed) timed {
	var cpus, walls []float64
	for _, p := range ps {
		cpus, walls = append(cpus, p.cpu), append(walls, p.wall)
	}
	return timed{ps[0].tokens, median(walls), median(cpus)}
}

func phasesString(ps [3]timed) string {
	return fmt.Sprintf("pp %.1f tokens/s (%.1f/CPU-s)  tg %.1f (%.1f)  par %.1f (%.1f)",
		ps[0].perWall(), ps[0].perCPU(), ps[1].perWall(), ps[1].perCPU(), ps[2].perWall(), ps[2].perCPU())
}

// llamacppConfigs are the shapes of real models (config.json's sizes).
// Llama 3.2's "llama3" RoPE scaling is left out: golem's RoPE has none,
// and it changes no matrix or attention size.
var llamacppConfigs = map[string]gpt.Config{
	"qwen2.5-0.5b": {Arch: "qwen2", Vocab: 151936, Context: 32768, Layers: 24, Heads: 14, KVHeads: 2, Hidden: 896,
		Intermediate: 4864, Eps: 1e-6, RopeTheta: 1e6, Bias: true, Tied: true, BOS: -1, EOS: -1},
	"llama3.2-1b": {Arch: "llama", Vocab: 128256, Context: 131072, Layers: 16, Heads: 32, KVHeads: 8, Hidden: 2048,
		Intermediate: 8192, Eps: 1e-5, RopeTheta: 5e5, Tied: true, BOS: -1, EOS: -1},
}

// randomGGUF writes (unless it is there) a GGUF file of config c with
// N(0, 0.02) weight matrices of type t (norms 1, biases 0) and the GPT-2
// tokenizer of ../shared/fixtures/hf/qwen2-tiny padded to the vocabulary.
func randomGGUF(file string, c *gpt.Config, t gguf.TensorType) error {
	if _, err := os.Stat(file); err == nil {
		return nil
	}
	tok, err := sharedPath("fixtures/hf/qwen2-tiny")
	if err != nil {
		return err
	}
	kv, err := export.Header(c, tok, export.Options{Type: t, Name: filepath.Base(file)})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	fmt.Printf("writing %s ...\n", file)
	var ts []gguf.Tensor
	for i, g := range gpt.GGUFTensors(c) {
		typ := gguf.F32
		if len(g.Dims) == 2 {
			typ = t
		}
		n := int(g.Dims[0])
		if len(g.Dims) == 2 {
			n *= int(g.Dims[1])
		}
		norm := len(g.Dims) == 1 && filepath.Ext(g.Name) == ".weight"
		seed := uint64(i)
		ts = append(ts, gguf.Tensor{Name: g.Name, Dims: g.Dims, Type: typ, Data: func() ([]byte, error) {
			x := make([]float32, n)
			r := rand.New(rand.NewPCG(seed, 1))
			for j := range x {
				switch {
				case norm:
					x[j] = 1
				case len(g.Dims) == 2:
					x[j] = float32(r.NormFloat64() * 0.02)
				}
			}
			return gguf.Quantize(typ, x)
		}})
	}
	return gguf.Write(file, kv, ts)
}

// llamacppMixes are the types llama.cpp's quantizer writes for the
// benchmark (gguf/e2e/llama_quantize.py): its k-quant mixtures.
var llamacppMixes = map[string]bool{"q4_k_m": true, "q5_k_m": true, "q6_k": true}

// llamacppQuantize writes (unless it is there) llama.cpp's quantization of
// the GGUF file in as typ (gguf/e2e/llama_quantize.py through python3 and
// node-llama-cpp's libllama).
func llamacppQuantize(in, out, typ string) error {
	if _, err := os.Stat(out); err == nil {
		return nil
	}
	libs, _ := filepath.Glob("gguf/e2e/node_modules/@node-llama-cpp/linux-x64/bins/*/libllama*.so")
	if len(libs) == 0 {
		return errors.New("llama.cpp's libllama is missing from gguf/e2e: run .ci/e2e-deps.sh (and run from the repository root)")
	}
	fmt.Printf("llama.cpp quantizing %s to %s ...\n", in, out)
	tmp := out + ".tmp"
	cmd := exec.Command("python3", "gguf/e2e/llama_quantize.py", libs[0], in, tmp, typ)
	if o, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("llama_quantize.py %s: %v\n%s", typ, err, o)
	}
	return os.Rename(tmp, out)
}

// sharedPath finds name in the shared data folder (../shared or
// $GOLEM_SHARED).
func sharedPath(name string) (string, error) {
	for _, p := range []string{os.Getenv("GOLEM_SHARED"), "../shared", "../../shared"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(p, name)); err == nil {
			return filepath.Join(p, name), nil
		}
	}
	return "", fmt.Errorf("../shared/%s not found (run from the repository root, or set GOLEM_SHARED)", name)
}

// benchTokens are the token ids both sides run (bench.mjs's tokens).
func benchTokens(n, seed int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = 1000 + ((i+seed)*7919)%30000
	}
	return out
}

// llamacppPeer runs gguf/e2e/bench.mjs and returns llama.cpp's tokens/s:
// prompt processing, batch-1 decoding, parallel decoding, each with its
// wall and CPU seconds.
func llamacppPeer(file string, threads, pp, tg, par, parTg int) ([3]timed, error) {
	var out [3]timed
	if _, err := os.Stat("gguf/e2e/node_modules/node-llama-cpp/package.json"); err != nil {
		return out, errors.New("llama.cpp's node-llama-cpp is missing from gguf/e2e: run .ci/e2e-deps.sh (and run from the repository root)")
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return out, err
	}
	cmd := exec.Command("node", "bench.mjs", abs, fmt.Sprint(threads), fmt.Sprint(pp), fmt.Sprint(tg), fmt.Sprint(par), fmt.Sprint(parTg))
	cmd.Dir = "gguf/e2e"
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, os.Stderr
	if err := cmd.Run(); err != nil {
		return out, fmt.Errorf("llama.cpp (node bench.mjs): %v\n%s", err, buf.String())
	}
	var r map[string]float64
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &r); err != nil {
		return out, fmt.Errorf("bench.mjs printed %q: %v", buf.String(), err)
	}
	ph := func(name string, tokens int) timed {
		return timed{float64(tokens), float64(tokens) / r[name+"_tokens_per_s"], r[name+"_cpu_s"]}
	}
	return [3]timed{ph("pp", pp), ph("tg", tg), ph("par", par*parTg)}, nil
}

// golemLlamacpp runs golem's side on m, as golem serve runs a model: the
// batch KV cache in float16, Prefill and Step.
func golemLlamacpp(m *gpt.Model, pp, tg, par, parTg int) [3]timed {
	var out [3]timed
	V := m.Config.Vocab
	argmax := func(l []float32, b int) int32 {
		row := l[b*V : (b+1)*V]
		return int32(slices.Index(row, slices.Max(row)))
	}
	var t0 time.Time
	var c0 float64
	start := func() { t0, c0 = time.Now(), cpuSeconds() }
	stop := func(tokens int) timed {
		return timed{float64(tokens), time.Since(t0).Seconds(), cpuSeconds() - c0}
	}
	tensor.NoGrad(func() {
		// Prompt processing (after a warm-up) and batch-1 decoding.
		c := m.NewBatchCache(1, pp+tg+8, true)
		generate.Prefill(m, c.Prefill([]int32{0}), [][]int{benchTokens(16, 1)}, nil)
		start()
		_, logits := generate.Prefill(m, c.Prefill([]int32{0}), [][]int{benchTokens(pp, 0)}, nil)
		out[0] = stop(pp)
		start()
		id := argmax(logits, 0)
		for i := range tg {
			pos := int32(pp + i)
			logits = generate.Step(m, c.Rows([]int32{0}, []int32{pos}), []int32{id}, []int32{pos}, nil, logits)
			id = argmax(logits, 0)
		}
		out[1] = stop(tg)
		c.Close()

		// par sequences at once, their prompts first (not timed).
		c = m.NewBatchCache(par, 16+parTg+8, true)
		prompts, slots := make([][]int, par), make([]int32, par)
		for b := range par {
			prompts[b], slots[b] = benchTokens(16, 100+b), int32(b)
		}
		_, logits = generate.Prefill(m, c.Prefill(slots), prompts, nil)
		ids, pos := make([]int32, par), make([]int32, par)
		for b := range par {
			ids[b], pos[b] = argmax(logits, b), 16
		}
		start()
		for range parTg {
			logits = generate.Step(m, c.Rows(slots, pos), ids, pos, nil, logits)
			for b := range par {
				ids[b] = argmax(logits, b)
				pos[b]++
			}
		}
		out[2] = stop(par * parTg)
		c.Close()
	})
	return out
}
