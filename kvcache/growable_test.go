package kvcache

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/tensor"
)

// TestGrowableBatch checks a Growable of several rows, decoding without
// gradients, against attention over the whole keys and values at each
// step: a prefill of 5 positions (room for 16), then steps of 1, 2 and 6
// that outgrow it at 18 (no context: room for 36; a context of 24: room
// for 24), with a key mask hiding one row's first position, two layers.
func TestGrowableBatch(t *testing.T) {
	be := cpu.New()
	const B, H, D = 3, 2, 4
	W := H * D
	r := rand.New(rand.NewPCG(1, 2))
	rnd := func(T int) *tensor.Tensor {
		x := make([]float32, B*T*W)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		return tensor.FromHost(be, x, B, T, W)
	}
	for _, context := range []int{0, 24} {
		tensor.NoGrad(func() {
			c := &Growable{}
			defer c.Close()
			var ks, vs [2][]*tensor.Tensor
			for step, T := range []int{5, 1, 2, 1, 1, 2, 6, 1} {
				S := c.Len() + T
				mask := make([]bool, B*S)
				for i := range mask {
					mask[i] = i != 1*S // row 1's first position is padding
				}
				for layer := range 2 {
					q, k, v := rnd(T), rnd(T), rnd(T)
					ks[layer], vs[layer] = append(ks[layer], k), append(vs[layer], v)
					o := tensor.AttentionOptions{Heads: H, Causal: true, KeyMask: mask}
					got := c.Attend(q, k, v, Attention{AttentionOptions: o, Layer: layer, Context: context}).Host()
					want := tensor.Attention(q, tensor.Concat(1, ks[layer]...), tensor.Concat(1, vs[layer]...), o).Host()
					for i := range want {
						if math.Abs(float64(got[i]-want[i])) > 1e-6 {
							t.Fatalf("context %d, step %d, layer %d: [%d] %v, whole %v", context, step, layer, i, got[i], want[i])
						}
					}
				}
				c.Commit(T)
			}
			if want := map[int]int{0: 36, 24: 24}[context]; c.layers[0].room != want {
				t.Errorf("context %d: room %d, want %d", context, c.layers[0].room, want)
			}
		})
		// Then a step whose keys need a gradient, after one without: the
		// past positions come out of the grown buffers into new memory.
		c := &Growable{}
		tensor.NoGrad(func() {
			k := rnd(5)
			c.Attend(rnd(5), k, k, Attention{AttentionOptions: tensor.AttentionOptions{Heads: H, Causal: true}, Context: context})
		})
		c.Commit(5)
		past, _ := c.layers[0].past(5)
		q, k := rnd(1), rnd(1).SetRequiresGrad(true)
		o := tensor.AttentionOptions{Heads: H, Causal: true}
		got := c.Attend(q, k, k, Attention{AttentionOptions: o, Context: context}).Host()
		all := tensor.Concat(1, past, k.Detach())
		want := tensor.Attention(q, all, all, o).Host()
		for i := range want {
			if math.Abs(float64(got[i]-want[i])) > 1e-6 {
				t.Fatalf("context %d, a step with gradients: [%d] %v, whole %v", context, i, got[i], want[i])
			}
		}
		if c.layers[0].kb != nil || c.layers[0].k.Dim(1) != 6 {
			t.Errorf("context %d: after a step with gradients the keys are %v in grown buffers %v", context, c.layers[0].k.Shape(), c.layers[0].kb != nil)
		}
		c.Close()
	}
}
