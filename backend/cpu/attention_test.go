package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/golem-ml/golem/backend"
)

// naiveAttention computes attention's output in float64.
func naiveAttention(a backend.Attention, q, k, v []float32) []float64 {
	out := make([]float64, a.B*a.T*a.HQ*a.D)
	group := a.HQ / a.HKV
	for b := 0; b < a.B; b++ {
		for h := 0; h < a.HQ; h++ {
			kh := h / group
			for t := 0; t < a.T; t++ {
				w := make([]float64, a.S)
				m := math.Inf(-1)
				for j := 0; j < a.S; j++ {
					if (a.Causal && j > a.S-a.T+t) || (a.KeyMask != nil && !a.KeyMask[b*a.S+j]) {
						w[j] = math.Inf(-1)
						continue
					}
					var s float64
					for d := 0; d < a.D; d++ {
						s += float64(q[(b*a.T+t)*a.HQ*a.D+h*a.D+d]) * float64(k[(b*a.S+j)*a.HKV*a.D+kh*a.D+d])
					}
					w[j] = s * float64(a.Scale)
					m = math.Max(m, w[j])
				}
				if math.IsInf(m, -1) {
					continue
				}
				var z float64
				for j := range w {
					w[j] = math.Exp(w[j] - m)
					z += w[j]
				}
				for d := 0; d < a.D; d++ {
					var o float64
					for j := range w {
						o += w[j] / z * float64(v[(b*a.S+j)*a.HKV*a.D+kh*a.D+d])
					}
					out[(b*a.T+t)*a.HQ*a.D+h*a.D+d] = o
				}
			}
		}
	}
	return out
}

// TestAttentionBlocks checks the blocked causal kernel (and the dot-product
// path for a few rows) against a float64 reference, and its gradients
// against the same kernel run as one block.
func TestAttentionBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	c := New()
	defer func(b, b16 int) { attnBlock, attnBlockBF16 = b, b16 }(attnBlock, attnBlockBF16)
	for _, a := range []backend.Attention{
		{B: 2, T: 70, S: 70, HQ: 2, HKV: 1, D: 8, Causal: true},
		{B: 1, T: 37, S: 90, HQ: 3, HKV: 3, D: 5, Causal: true},
		{B: 2, T: 33, S: 33, HQ: 2, HKV: 2, D: 4, Causal: true, KeyMask: make([]bool, 66)},
		{B: 1, T: 1, S: 9, HQ: 2, HKV: 1, D: 16, Causal: true},
		{B: 2, T: 3, S: 12, HQ: 2, HKV: 2, D: 3, Causal: true},
		{B: 1, T: 20, S: 20, HQ: 1, HKV: 1, D: 6, Causal: false},
	} {
		a.Scale = float32(1 / math.Sqrt(float64(a.D)))
		for i := range a.KeyMask {
			a.KeyMask[i] = i%7 != 3
		}
		name := fmt.Sprintf("B%d T%d S%d H%d/%d D%d", a.B, a.T, a.S, a.HQ, a.HKV, a.D)
		nq, nk := a.B*a.T*a.HQ*a.D, a.B*a.S*a.HKV*a.D
		buf := func(n int) *Buf {
			d := make([]float32, n)
			for i := range d {
				d[i] = float32(r.NormFloat64())
			}
			return &Buf{D: d}
		}
		q, k, v, do := buf(nq), buf(nk), buf(nk), buf(nq)
		want := naiveAttention(a, q.D, k.D, v.D)
		type result struct{ o, dq, dk, dv []float32 }
		run := func(block int, bf16 bool) result {
			attnBlock, attnBlockBF16 = block, block
			a := a
			a.BF16 = bf16
			o, p := &Buf{D: make([]float32, nq)}, &Buf{D: make([]float32, a.B*a.HQ*a.T*a.S)}
			c.Attention(a, o, p, q, k, v)
			dq, dk, dv := &Buf{D: make([]float32, nq)}, &Buf{D: make([]float32, nk)}, &Buf{D: make([]float32, nk)}
			c.AttentionGrad(a, dq, dk, dv, q, k, v, p, do)
			return result{o.D, dq.D, dk.D, dv.D}
		}
		blocked, whole := run(16, false), run(1<<20, false)
		// With bf16 products too, the blocks give the whole's values:
		// the keys a block skips add only zeros.
		b16, w16 := run(16, true), run(1<<20, true)
		for _, g := range []struct {
			n    string
			x, y []float32
		}{{"o", b16.o, w16.o}, {"dq", b16.dq, w16.dq}, {"dk", b16.dk, w16.dk}, {"dv", b16.dv, w16.dv}} {
			for i := range g.x {
				if math.Abs(float64(g.x[i]-g.y[i])) > 1e-5 {
					t.Fatalf("%s, bf16: %s[%d] blocked %v whole %v", name, g.n, i, g.x[i], g.y[i])
				}
			}
		}
		for i, w := range want {
			if math.Abs(float64(blocked.o[i])-w) > 1e-5 || math.Abs(float64(whole.o[i])-w) > 1e-5 {
				t.Fatalf("%s: o[%d] = %v (blocked) %v (whole), want %v", name, i, blocked.o[i], whole.o[i], w)
			}
		}
		for _, g := range []struct {
			n    string
			x, y []float32
		}{{"dq", blocked.dq, whole.dq}, {"dk", blocked.dk, whole.dk}, {"dv", blocked.dv, whole.dv}} {
			for i := range g.x {
				if math.Abs(float64(g.x[i]-g.y[i])) > 1e-5 {
					t.Fatalf("%s: %s[%d] blocked %v whole %v", name, g.n, i, g.x[i], g.y[i])
				}
			}
		}
	}
}

// AttentionPackedGrad without acc writes dqkv whole, never reading it
// (NaNs here, as a new gradient's pooled buffer may hold): bit for bit
// what adding into zeros gives, with grouped heads, causal or not, bf16 or
// not, on one thread or two; with acc it adds to what dqkv holds.
func TestAttentionPackedGradWrites(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	c := New()
	for _, a := range []backend.Attention{
		{B: 2, T: 70, S: 70, HQ: 4, HKV: 2, D: 8, Causal: true},
		{B: 1, T: 33, S: 33, HQ: 3, HKV: 3, D: 5, Causal: false},
		{B: 2, T: 9, S: 9, HQ: 2, HKV: 1, D: 16, Causal: true, BF16: true},
	} {
		a.Scale = float32(1 / math.Sqrt(float64(a.D)))
		w := (a.HQ + 2*a.HKV) * a.D
		qkv, do := make([]float32, a.B*a.T*w), make([]float32, a.B*a.T*a.HQ*a.D)
		for _, s := range [][]float32{qkv, do} {
			for i := range s {
				s[i] = float32(r.NormFloat64())
			}
		}
		o, p := &Buf{D: make([]float32, len(do))}, &Buf{D: make([]float32, a.B*a.HQ*a.T*a.T)}
		c.AttentionPacked(a, o, p, &Buf{D: qkv})
		for _, th := range []int{1, 2} {
			prev := SetThreads(th)
			want := make([]float32, len(qkv))
			c.AttentionPackedGrad(a, &Buf{D: want}, &Buf{D: qkv}, p, &Buf{D: do}, true)
			got := make([]float32, len(qkv))
			for i := range got {
				got[i] = float32(math.NaN())
			}
			c.AttentionPackedGrad(a, &Buf{D: got}, &Buf{D: qkv}, p, &Buf{D: do}, false)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%+v, %d threads: dqkv[%d] = %v written, %v added to zero", a, th, i, got[i], want[i])
				}
			}
			c.AttentionPackedGrad(a, &Buf{D: got}, &Buf{D: qkv}, p, &Buf{D: do}, true)
			for i := range got {
				if math.Abs(float64(got[i]-2*want[i])) > 1e-5*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("%+v, %d threads: dqkv[%d] = %v after adding %v twice", a, th, i, got[i], want[i])
				}
			}
			SetThreads(prev)
		}
	}
}
