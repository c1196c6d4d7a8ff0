package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/golem-ml/golem/backend"
)

// Each row of AttentionRows must equal, bit for bit, Attention of that row
// alone over its own span of keys, and the float64 reference.
func TestAttentionRowsEqualsAlone(t *testing.T) {
	c := New()
	r := rand.New(rand.NewPCG(3, 4))
	for _, d := range []int{32, 80, 7} {
		B, S, HQ, HKV, end := 5, 40, 4, 2, 33
		start := []int32{0, 32, 10, 17, 5}
		q, k, v := randSlice(r, B*HQ*d), randSlice(r, B*S*HKV*d), randSlice(r, B*S*HKV*d)
		a := backend.Attention{B: B, T: 1, S: S, HQ: HQ, HKV: HKV, D: d, Scale: float32(1 / math.Sqrt(float64(d)))}
		o := make([]float32, B*HQ*d)
		for i := range o {
			o[i] = float32(math.NaN()) // every value must be written
		}
		c.AttentionRows(a, start, end, &Buf{D: o}, &Buf{D: q}, &Buf{D: k}, &Buf{D: v})
		W := HKV * d
		for b := range B {
			n := end - int(start[b])
			one := backend.Attention{B: 1, T: 1, S: n, HQ: HQ, HKV: HKV, D: d, Scale: a.Scale}
			kb := k[(b*S+int(start[b]))*W : (b*S+end)*W]
			vb := v[(b*S+int(start[b]))*W : (b*S+end)*W]
			qb := q[b*HQ*d : (b+1)*HQ*d]
			want := make([]float32, HQ*d)
			c.Attention(one, &Buf{D: want}, &Buf{D: make([]float32, HQ*n)}, &Buf{D: qb}, &Buf{D: kb}, &Buf{D: vb})
			ref := naiveAttention(one, qb, kb, vb)
			for i, w := range want {
				got := o[b*HQ*d+i]
				if got != w {
					t.Fatalf("D=%d row %d value %d: %v, alone %v", d, b, i, got, w)
				}
				if math.Abs(float64(got)-ref[i]) > 1e-5 {
					t.Fatalf("D=%d row %d value %d: %v, reference %v", d, b, i, got, ref[i])
				}
			}
		}
	}
}

func TestAttentionRowsBadArgs(t *testing.T) {
	c := New()
	a := backend.Attention{B: 2, T: 1, S: 4, HQ: 1, HKV: 1, D: 16, Scale: 1}
	buf := func(n int) *Buf { return &Buf{D: make([]float32, n)} }
	for _, start := range [][]int32{{0}, {0, 4}, {-1, 0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("starts %v: no panic", start)
				}
			}()
			c.AttentionRows(a, start, 4, buf(32), buf(32), buf(128), buf(128))
		}()
	}
}
