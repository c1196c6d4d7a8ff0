package gpt

import (
	"fmt"
	"math"
	"testing"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/kvcache"
	"github.com/golem-ml/golem/tensor"
)

// plain hides the CPU backend's row attention, so a batch cache's rows take
// their generic path.
type plain struct{ backend.Backend }

// Sequences decoded together, each in its own slot of a batch cache
// (prefilled into it as one left-padded batch, the cache grown in flight), get the
// hidden states of the whole sequence run at once; with and without the
// backend's row attention; in float32, and in float16 (the CPU's half
// cache: within float16's rounding).
func TestDecodeStepSlots(t *testing.T) {
	for _, arch := range []string{"llama", "gpt2", "mistral"} {
		for _, be := range []backend.Backend{cpu.New(), plain{cpu.New()}} {
			for _, half := range []bool{false, true} {
				c := tinyConfig(arch)
				c.Context, c.KVHeads = 32, 1
				if arch == "gpt2" {
					c.KVHeads = 2
				}
				m, err := New(be, c, 5)
				if err != nil {
					t.Fatal(err)
				}
				seqs := [][]int32{{3, 4, 5, 6, 7}, {8, 9}, {10, 11, 12}}
				next := [][]int32{{13, 14, 15, 16}, {17, 18, 19, 20}, {21, 22, 23, 24}}
				slots := []int32{2, 0, 3}
				tensor.NoGrad(func() {
					// Prefill the three prompts as one left-padded batch.
					B, L := len(seqs), 5
					ids, pos, mask := make([]int32, B*L), make([]int32, B*L), make([]bool, B*L)
					for b, s := range seqs {
						pad := L - len(s)
						for j := pad; j < L; j++ {
							ids[b*L+j], pos[b*L+j], mask[b*L+j] = s[j-pad], int32(j-pad), true
						}
					}
					bc := m.NewBatchCache(4, 6, half)
					defer bc.Close()
					_, isPlain := be.(plain)
					if bc.Half != (half && !isPlain) {
						t.Fatalf("%T: asked for half %v, got a cache with Half %v", be, half, bc.Half)
					}
					tol := 1e-5
					if bc.Half {
						tol = 2e-3
					}
					tensor.Release(m.Forward(ids, B, L, Options{Cache: bc.Prefill(slots), Pos: pos, KeyMask: mask}))
					for step := range 4 {
						if step == 1 {
							bc.Grow(5, 12, 7) // more slots, longer ones, with sequences in flight
						}
						in, at := make([]int32, B), make([]int32, B)
						for b := range seqs {
							in[b], at[b] = next[b][step], int32(len(seqs[b]))
							seqs[b] = append(seqs[b], in[b])
						}
						checkDecodeStep(t, m, seqs, in, slots, at, bc, tol, fmt.Sprintf("%s %T half %v step %d", arch, be, bc.Half, step))
					}
				})
			}
		}
	}
}

// With head sizes the CPU's blocked float16 kernels take (32 and 64) and
// sequences longer than their 16-key blocks, batched decoding from a half
// cache stays within float16's rounding of whole-sequence passes.
func TestDecodeStepHalfBlocked(t *testing.T) {
	for _, hd := range []int{32, 64} {
		c := tinyConfig("llama")
		c.Hidden, c.Heads, c.KVHeads, c.Intermediate, c.Context = 2*hd, 2, 1, 64, 64
		m, err := New(cpu.New(), c, 9)
		if err != nil {
			t.Fatal(err)
		}
		seqs := [][]int32{make([]int32, 21), make([]int32, 17)}
		for b := range seqs {
			for j := range seqs[b] {
				seqs[b][j] = int32((j*7 + b*3) % c.Vocab)
			}
		}
		tensor.NoGrad(func() {
			bc := m.NewBatchCache(2, 32, true)
			defer bc.Close()
			if !bc.Half {
				t.Fatal("the CPU backend did not give a half cache")
			}
			slots := []int32{1, 0}
			// Prefill each prompt alone, then decode both together.
			for b, s := range seqs {
				tensor.Release(m.Forward(s, 1, len(s), Options{Cache: bc.Prefill([]int32{slots[b]})}))
			}
			for step := range 5 {
				in, at := make([]int32, 2), make([]int32, 2)
				for b := range seqs {
					in[b], at[b] = int32((step*5+b)%c.Vocab), int32(len(seqs[b]))
					seqs[b] = append(seqs[b], in[b])
				}
				checkDecodeStep(t, m, seqs, in, slots, at, bc, 2e-3, fmt.Sprintf("head size %d step %d", hd, step))
			}
		})
	}
}

// checkDecodeStep runs one decode step (a forward pass through the batch
// cache's rows) of the last tokens in of seqs (in slots, at positions at)
// and checks each row's hidden state against the whole sequence run at
// once, to within tol.
func checkDecodeStep(t *testing.T, m *Model, seqs [][]int32, in, slots, at []int32, bc *kvcache.Batch, tol float64, what string) {
	t.Helper()
	C := m.Config.Hidden
	h := m.Forward(in, len(in), 1, Options{Cache: bc.Rows(slots, at), Pos: at})
	got := h.Host()
	tensor.Release(h)
	for b, s := range seqs {
		full := m.Forward(s, 1, len(s), Options{})
		want := full.Host()[(len(s)-1)*C:]
		tensor.Release(full)
		for i := range C {
			if d := math.Abs(float64(got[b*C+i] - want[i])); d > tol {
				t.Fatalf("%s row %d value %d: %v, whole sequence %v", what, b, i, got[b*C+i], want[i])
			}
		}
	}
}
