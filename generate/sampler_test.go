package generate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// The sampler keeps exactly the tokens top-k and top-p keep when the whole
// vocabulary is sorted, and draws them in proportion to their
// probabilities.
func TestSamplerTopKTopP(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	V := 1000
	logits := make([]float32, V)
	for i := range logits {
		logits[i] = float32(r.NormFloat64() * 2)
	}
	logits[7], logits[8] = logits[9], logits[9] // ties
	for _, c := range []struct {
		k int
		p float64
	}{{5, 0}, {0, 0.3}, {0, 0.9}, {50, 0.6}, {1, 0}, {V - 1, 0.95}} {
		// The reference: sort everything, cut, renormalize.
		o := Options{Temperature: 0.7, TopK: c.k, TopP: c.p}
		ids := make([]int, V)
		for i := range ids {
			ids[i] = i
		}
		slices.SortFunc(ids, func(a, b int) int {
			switch {
			case logits[a] > logits[b] || logits[a] == logits[b] && a < b:
				return -1
			case logits[a] < logits[b] || logits[a] == logits[b] && a > b:
				return 1
			}
			return 0
		})
		if c.k > 0 {
			ids = ids[:c.k]
		}
		w := make([]float64, len(ids))
		var z float64
		for j, i := range ids {
			w[j] = math.Exp(float64(logits[i]-logits[ids[0]]) / o.Temperature)
			z += w[j]
		}
		if c.p > 0 {
			var cum float64
			for j := range ids {
				cum += w[j] / z
				if cum >= c.p {
					ids, w = ids[:j+1], w[:j+1]
					break
				}
			}
		}
		want := map[int]float64{}
		z = 0
		for j := range w {
			z += w[j]
		}
		for j, i := range ids {
			want[i] = w[j] / z
		}
		s := NewSampler(o, 9, nil)
		got := map[int]int{}
		n := 5000
		if testing.Short() {
			n = 2000 // the bound below is 4 standard deviations at any n
		}
		for range n {
			id := s.Next(logits, nil)
			if _, ok := want[id]; !ok {
				t.Fatalf("k=%d p=%v: drew %d, outside the %d kept tokens", c.k, c.p, id, len(want))
			}
			got[id]++
		}
		for id, q := range want {
			if f := float64(got[id]) / float64(n); math.Abs(f-q) > 4*math.Sqrt(q*(1-q)/float64(n))+1e-3 {
				t.Errorf("k=%d p=%v: token %d drawn %.4f of the time, probability %.4f", c.k, c.p, id, f, q)
			}
		}
	}
}

// selectTop puts the k first entries first, for every k, with ties.
func TestSelectTop(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		n := 1 + r.IntN(60)
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(r.IntN(8))
		}
		before := func(a, b int) bool { return v[a] > v[b] || v[a] == v[b] && a < b }
		sorted := make([]int, n)
		for i := range sorted {
			sorted[i] = i
		}
		slices.SortFunc(sorted, func(a, b int) int {
			if before(a, b) {
				return -1
			}
			return 1
		})
		k := 1 + r.IntN(n)
		idx := slices.Clone(sorted)
		r.Shuffle(n, func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		selectTop(idx, k, v)
		top := slices.Clone(idx[:k])
		slices.Sort(top)
		want := slices.Clone(sorted[:k])
		slices.Sort(want)
		if !slices.Equal(top, want) {
			t.Fatalf("n=%d k=%d: first %v, want %v", n, k, top, want)
		}
	}
}

// BenchmarkSamplerNext samples from a vocabulary the size of Qwen2's.
func BenchmarkSamplerNext(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	logits := make([]float32, 151936)
	for i := range logits {
		logits[i] = float32(r.NormFloat64() * 3)
	}
	for _, o := range []Options{{Temperature: 0.8}, {Temperature: 0.8, TopP: 0.9}, {Temperature: 0.8, TopK: 40, TopP: 0.9}} {
		b.Run(fmt.Sprintf("k=%d,p=%v", o.TopK, o.TopP), func(b *testing.B) {
			s := NewSampler(o, 1, nil)
			for b.Loop() {
				s.Next(logits, nil)
			}
		})
	}
}

// expNeg is within 1e-7 of math.Exp over the range the sampler uses, and 0
// for -Inf and NaN.
func TestExpNeg(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for range 100000 {
		x := -r.Float64() * 700
		if r.IntN(2) == 0 {
			x = -r.Float64() * 3
		}
		if got, want := expNeg(x), math.Exp(x); math.Abs(got/want-1) > 1e-7 {
			t.Fatalf("expNeg(%v) = %v, math.Exp %v", x, got, want)
		}
	}
	if expNeg(0) != 1 || expNeg(math.Inf(-1)) != 0 || expNeg(math.NaN()) != 0 {
		t.Fatalf("expNeg(0, -Inf, NaN) = %v, %v, %v", expNeg(0), expNeg(math.Inf(-1)), expNeg(math.NaN()))
	}
}

// allowOnly is a constraint that allows a fixed set of tokens.
type allowOnly struct {
	mask     []uint64
	accepted []int
}

func (a *allowOnly) Allowed() []uint64 { return a.mask }
func (a *allowOnly) Accept(id int) bool {
	a.accepted = append(a.accepted, id)
	return a.mask[id/64]>>(id%64)&1 == 1
}

// A constraint decides: the token picked is an allowed one whatever the
// logits say, hidden tokens give way to it, and a constraint that allows
// nothing is Blocked, not an overflow.
func TestSamplerConstraint(t *testing.T) {
	logits := make([]float32, 130)
	logits[3] = 50
	c := &allowOnly{mask: []uint64{0, 0, 1 << 1}} // token 129
	s := NewSampler(Options{Temperature: 1}, 1, nil)
	s.Constrain(c)
	if id := s.Next(logits, nil); id != 129 || len(c.accepted) != 1 {
		t.Fatalf("picked %d, accepted %v; want 129", id, c.accepted)
	}
	if id := s.Next(logits, []int{129}); id != 129 {
		t.Fatalf("with the allowed token hidden: %d, want 129", id)
	}
	s.Constrain(&allowOnly{mask: make([]uint64, 3)})
	if id := s.Next(logits, nil); id != Blocked {
		t.Fatalf("nothing allowed: %d, want Blocked", id)
	}
}

// BenchmarkNext151936 is a sampling step (temperature 0.8, top-k 40,
// top-p 0.9) over a 151,936-token vocabulary, free and with a constraint
// mask: inside a string (nearly every token allowed) and between JSON
// tokens (a few allowed).
func BenchmarkNext151936(b *testing.B) {
	const V = 151936
	logits := make([]float32, V)
	for i := range logits {
		logits[i] = float32(i%977) / 100
	}
	words := (V + 63) / 64
	text, punct := make([]uint64, words), make([]uint64, words)
	for w := range text {
		text[w] = ^uint64(0)
	}
	text[0] &^= 1 << 2 // the quote
	for _, id := range []int{4, 90, 1000, 5000} {
		punct[id/64] |= 1 << (id % 64)
	}
	for _, c := range []struct {
		name string
		mask []uint64
	}{{"free", nil}, {"string", text}, {"punctuation", punct}} {
		b.Run(c.name, func(b *testing.B) {
			s := NewSampler(Options{Temperature: 0.8, TopK: 40, TopP: 0.9}, 1, nil)
			if c.mask != nil {
				s.Constrain(&allowOnly{mask: c.mask})
			}
			for b.Loop() {
				s.Next(logits, nil)
			}
		})
	}
}
