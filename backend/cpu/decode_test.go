package cpu

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/golem-ml/golem/backend"
)

// Each row of AttentionRows must equal, bit for bit, Attention of that row
// alone over its own keys, and the float64 reference, whether the rows share
// the threads by row or by heads.
func TestAttentionRowsEqualsAlone(t *testing.T) {
	c := New()
	r := rand.New(rand.NewPCG(3, 4))
	for _, d := range []int{32, 80, 7, 128} {
		for _, B := range []int{1, 5} {
			for _, window := range []int{0, 10} { // a sliding window sees a row's last 10 keys
				slots, S, HQ, HKV := 6, 40, 4, 2
				slot := []int32{3, 0, 5, 1, 2}[:B]
				n := []int32{33, 1, 23, 16, 40}[:B]
				q, k, v := randSlice(r, B*HQ*d), randSlice(r, slots*S*HKV*d), randSlice(r, slots*S*HKV*d)
				a := backend.Attention{B: B, T: 1, S: S, HQ: HQ, HKV: HKV, D: d, Scale: float32(1 / math.Sqrt(float64(d))), Window: window}
				o := make([]float32, B*HQ*d)
				for i := range o {
					o[i] = float32(math.NaN()) // every value must be written
				}
				c.AttentionRows(a, slot, n, &Buf{D: o}, &Buf{D: q}, &Buf{D: k}, &Buf{D: v})
				W := HKV * d
				for b := range B {
					nb, s, first := int(n[b]), int(slot[b]), 0
					if window > 0 && nb > window {
						first, nb = nb-window, window
					}
					one := backend.Attention{B: 1, T: 1, S: nb, HQ: HQ, HKV: HKV, D: d, Scale: a.Scale}
					// The slot's keys and values, from head-major to [nb, W].
					kb, vb := make([]float32, nb*W), make([]float32, nb*W)
					for h := range HKV {
						for j := range nb {
							src := ((s*HKV+h)*S + first + j) * d
							copy(kb[j*W+h*d:j*W+h*d+d], k[src:src+d])
							copy(vb[j*W+h*d:j*W+h*d+d], v[src:src+d])
						}
					}
					qb := q[b*HQ*d : (b+1)*HQ*d]
					want := make([]float32, HQ*d)
					c.Attention(one, &Buf{D: want}, &Buf{D: make([]float32, HQ*nb)}, &Buf{D: qb}, &Buf{D: kb}, &Buf{D: vb})
					ref := naiveAttention(one, qb, kb, vb)
					for i, w := range want {
						got := o[b*HQ*d+i]
						if got != w {
							t.Fatalf("D=%d B=%d row %d value %d: %v, alone %v", d, B, b, i, got, w)
						}
						if math.Abs(float64(got)-ref[i]) > 1e-5 {
							t.Fatalf("D=%d B=%d row %d value %d: %v, reference %v", d, B, b, i, got, ref[i])
						}
					}
				}
			}
		}
	}
}

func TestAttentionRowsBadArgs(t *testing.T) {
	c := New()
	a := backend.Attention{B: 2, T: 1, S: 4, HQ: 1, HKV: 1, D: 16, Scale: 1}
	buf := func(n int) *Buf { return &Buf{D: make([]float32, n)} }
	for _, args := range []struct{ slot, n []int32 }{
		{[]int32{0}, []int32{1}},        // too few rows
		{[]int32{0, 2}, []int32{1, 1}},  // no slot 2
		{[]int32{0, -1}, []int32{1, 1}}, // negative slot
		{[]int32{0, 1}, []int32{0, 1}},  // no key
		{[]int32{0, 1}, []int32{5, 1}},  // more keys than columns
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("slots %v lengths %v: no panic", args.slot, args.n)
				}
			}()
			c.AttentionRows(a, args.slot, args.n, buf(32), buf(32), buf(128), buf(128))
		}()
	}
}

// byKeys covers every (row, head) pair once, in runs whose keys differ by
// less than one pair's, however the rows' lengths are skewed.
func TestByKeys(t *testing.T) {
	defer SetThreads(SetThreads(2))
	n := []int32{500, 3, 3, 3, 3, 3, 3, 3, 300, 3}
	HQ := 4
	var mu sync.Mutex
	seen := make([]int, len(n)*HQ)
	var keys []int
	byKeys(len(n), HQ, n, func(lo, hi int) {
		k := 0
		for i := lo; i < hi; i++ {
			k += int(n[i/HQ]) + 4
		}
		mu.Lock()
		defer mu.Unlock()
		keys = append(keys, k)
		for i := lo; i < hi; i++ {
			seen[i]++
		}
	})
	for i, c := range seen {
		if c != 1 {
			t.Fatalf("pair %d run %d times", i, c)
		}
	}
	if len(keys) != 2 || max(keys[0], keys[1])-min(keys[0], keys[1]) > 504 {
		t.Fatalf("runs of %v keys", keys)
	}
}
