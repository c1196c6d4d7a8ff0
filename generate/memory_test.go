package generate

import (
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/tensor"
)

// A decode loop over a batch cache (serve's engine) holds the same backend
// memory after step 100 and after step 1,000, and allocates nothing new:
// each prefill and step frees what it computed. Generation gives back
// everything, its cache included, when it returns; a batch cache grown and
// closed gives back its buffers, old and new.
func TestDecodeMemoryFlat(t *testing.T) {
	m := tinyModel(t)
	be := m.Embed.Weight.Backend().(*cpu.CPU)
	base := be.MemStats().Live
	for _, half := range []bool{false, true} {
		c := m.NewBatchCache(2, 32, half)
		var at100 cpu.MemStats
		tensor.NoGrad(func() {
			Prefill(m, c.Prefill([]int32{0, 1}), [][]int{{1, 2, 3}, {4, 5, 6, 7, 8}}, nil)
			slot, ids, pos := []int32{0, 1}, []int32{1, 2}, make([]int32, 2)
			var logits []float32
			for step := 1; step <= 1000; step++ {
				pos[0], pos[1] = int32(5+step%20), int32(7+step%20)
				logits = Step(m, c.Rows(slot, pos), ids, pos, nil, logits)
				if step == 100 {
					at100 = be.MemStats()
				}
			}
		})
		if end := be.MemStats(); end.Live != at100.Live || end.Misses-at100.Misses > int64(2*cpu.Threads()) {
			t.Errorf("half=%v: backend memory after step 100 %+v, after step 1,000 %+v", half, at100, end)
		}
		c.Grow(4, 64, 27) // the old buffers go back
		c.Close()
		if got := be.MemStats().Live; got != base {
			t.Errorf("half=%v: %d bytes live after growing and closing the cache, want %d", half, got, base)
		}
	}
	for range 3 {
		if _, err := Tokens(m, [][]int{{1, 2, 3}, {4}}, Options{MaxTokens: 40, Temperature: 1, Seed: 1}, nil); err != nil {
			t.Fatal(err)
		}
		if got := be.MemStats().Live; got != base {
			t.Fatalf("%d bytes live after Tokens returned, want %d", got, base)
		}
	}
}
