package serve

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tokenizer"
)

// benchWeights is bench serve's model: a random llama, 4 layers x 256,
// vocab 1024.
func benchWeights(b *testing.B) *Weights {
	tok := tokenizer.NewChar("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:;?!")
	c := gpt.Config{Arch: "llama", Vocab: 1024, Context: 512, Layers: 4, Heads: 8, KVHeads: 8,
		Hidden: 256, Intermediate: 704, Eps: 1e-5, RopeTheta: 10000, BOS: -1, EOS: -1}
	m, err := gpt.New(cpu.New(), c, 7)
	if err != nil {
		b.Fatal(err)
	}
	w, err := NewWeights(m, tok, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	w.Stop = nil
	return w
}

// BenchmarkEngine runs n streams of 64 tokens from 40-token prompts, all
// submitted at once; it reports tokens/s.
func BenchmarkEngine(b *testing.B) {
	for _, n := range []int{1, 64} {
		b.Run(map[int]string{1: "1", 64: "64"}[n], func(b *testing.B) {
			w := benchWeights(b)
			e := NewEngine("bench", "", w, EngineOptions{MaxBatch: 64})
			defer e.Close()
			prompt := make([]int, 30)
			for i := range prompt {
				prompt[i] = 1 + i%60
			}
			tokens := 0
			cpu0 := cpuTime()
			for b.Loop() {
				var wg sync.WaitGroup
				for i := 0; i < n; i++ {
					ch, err := e.Submit(context.Background(), prompt, Sampling{MaxTokens: 64, Temperature: 0.8, Seed: uint64(i)})
					if err != nil {
						b.Fatal(err)
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						for ev := range ch {
							if ev.Done {
								return
							}
						}
					}()
				}
				wg.Wait()
				tokens += 64 * n
			}
			b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
			b.ReportMetric(float64(tokens)/(cpuTime()-cpu0).Seconds(), "tokens/cpu-s")
			st := e.Stats()
			b.ReportMetric(float64(st.Steps)/float64(b.N), "steps/op")
		})
	}
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
