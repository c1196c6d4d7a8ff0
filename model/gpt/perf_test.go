package gpt

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/kvcache"
	"github.com/golem-ml/golem/model/llama"
	"github.com/golem-ml/golem/optim"
	"github.com/golem-ml/golem/tensor"
)

func perfConfig(arch string) Config {
	c := Config{Arch: arch, Vocab: 53, Context: 40, Layers: 2, Heads: 4, KVHeads: 4, Hidden: 32, Intermediate: 96,
		Eps: 1e-5, Activation: "gelu", Tied: true, BOS: -1, EOS: -1, RopeTheta: 10000}
	if arch != "gpt2" {
		c.KVHeads, c.Tied, c.Activation = 2, false, "silu"
	}
	if arch == "mistral" { // a sliding window, and Llama 3's RoPE scaling
		c.SlidingWindow = 5
		c.RopeScaling = &llama.RopeScaling{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 16}
	}
	return c
}

// perfTrainer runs nanoGPT-style training steps on random tokens.
type perfTrainer struct {
	m       *Model
	opt     *optim.AdamW
	r       *rand.Rand
	ids, tg []int32
	B, T    int
}

func newPerfTrainer(t *testing.T, arch string, seed uint64) *perfTrainer {
	c := perfConfig(arch)
	m, err := New(cpu.New(), c, seed)
	if err != nil {
		t.Fatal(err)
	}
	B, T := 3, 24
	return &perfTrainer{m: m, opt: optim.NewAdamW(m.Params(), 0.9, 0.99, 1e-8, 0.1), r: rand.New(rand.NewPCG(seed, 7)),
		ids: make([]int32, B*T), tg: make([]int32, B*T), B: B, T: T}
}

func (tr *perfTrainer) step() float32 {
	for i := range tr.ids {
		tr.ids[i], tr.tg[i] = int32(tr.r.IntN(tr.m.Config.Vocab)), int32(tr.r.IntN(tr.m.Config.Vocab))
	}
	tr.opt.ZeroGrad()
	loss := tr.m.Loss(tr.ids, tr.tg, tr.B, tr.T, Options{})
	tensor.Backward(loss)
	tr.opt.ClipGradNorm(1)
	tr.opt.Update(1e-3)
	l := loss.Item()
	tensor.Release(loss)
	return l
}

// TestTrainStepAllocs holds the heap allocations of a training step, after
// warm-up, to a small bound: tensor memory comes from the backend's pool,
// so what is left is the graph's bookkeeping.
func TestTrainStepAllocs(t *testing.T) {
	for _, arch := range []string{"gpt2", "llama"} {
		tr := newPerfTrainer(t, arch, 1)
		for i := 0; i < 3; i++ {
			tr.step()
		}
		allocs := testing.AllocsPerRun(5, func() { tr.step() })
		perLayer := allocs / float64(tr.m.Config.Layers)
		t.Logf("%s: %.0f allocations per step", arch, allocs)
		if perLayer > 150 {
			t.Errorf("%s: %.0f heap allocations per training step (%.0f per layer)", arch, allocs, perLayer)
		}
	}
}

// TestTrainDeterministic checks that the same seed and thread count give
// bit-identical losses, for 1 and 2 threads.
func TestTrainDeterministic(t *testing.T) {
	for _, threads := range []int{1, 2} {
		prev := cpu.SetThreads(threads)
		var runs [2][]float32
		for i := range runs {
			tr := newPerfTrainer(t, "gpt2", 42)
			for s := 0; s < 4; s++ {
				runs[i] = append(runs[i], tr.step())
			}
		}
		cpu.SetThreads(prev)
		for s := range runs[0] {
			if math.Float32bits(runs[0][s]) != math.Float32bits(runs[1][s]) {
				t.Fatalf("threads=%d step %d: losses %v and %v differ", threads, s, runs[0][s], runs[1][s])
			}
		}
		if runs[0][3] >= runs[0][0]+1 || math.IsNaN(float64(runs[0][3])) {
			t.Errorf("threads=%d: losses %v", threads, runs[0])
		}
	}
}

// TestCacheMatchesFullForward decodes token by token with the KV cache
// (growing its buffers several times, and on the concatenating path for
// two rows) and compares each step's hidden state with a full forward pass.
func TestCacheMatchesFullForward(t *testing.T) {
	for _, arch := range []string{"gpt2", "llama", "mistral"} {
		for _, B := range []int{1, 2} {
			m, err := New(cpu.New(), perfConfig(arch), 3)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(5, 6))
			const N = 37
			ids := make([]int32, B*N)
			for i := range ids {
				ids[i] = int32(r.IntN(m.Config.Vocab))
			}
			tensor.NoGrad(func() {
				full := m.Forward(ids, B, N, Options{}).Host()
				cache := &kvcache.Growable{}
				defer cache.Close()
				C := m.Config.Hidden
				// A prompt of 5, then one token at a time.
				for s := 0; s < N; {
					T := 1
					if s == 0 {
						T = 5
					}
					step := make([]int32, B*T)
					for b := 0; b < B; b++ {
						copy(step[b*T:], ids[b*N+s:b*N+s+T])
					}
					h := m.Forward(step, B, T, Options{Cache: cache})
					got := h.Host()
					tensor.Release(h)
					for b := 0; b < B; b++ {
						for t2 := 0; t2 < T; t2++ {
							g := got[(b*T+t2)*C : (b*T+t2+1)*C]
							w := full[(b*N+s+t2)*C : (b*N+s+t2+1)*C]
							if e := relErr(g, w); e > 1e-5 {
								t.Fatalf("%s B=%d position %d: cached forward differs by %g", arch, B, s+t2, e)
							}
						}
					}
					s += T
				}
				if cache.Len() != N {
					t.Errorf("cache holds %d positions, want %d", cache.Len(), N)
				}
			})
		}
	}
}

func BenchmarkTrainStep(b *testing.B) {
	for _, arch := range []string{"gpt2"} {
		b.Run(fmt.Sprint(arch), func(b *testing.B) {
			tr := newPerfTrainer(&testing.T{}, arch, 1)
			for b.Loop() {
				tr.step()
			}
		})
	}
}
