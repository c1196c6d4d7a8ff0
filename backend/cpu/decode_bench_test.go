package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/golem-ml/golem/backend"
)

func BenchmarkSgemmDecode(b *testing.B) {
	for _, s := range [][3]int{{64, 256, 256}, {64, 704, 256}, {64, 1024, 256}} {
		for _, tb := range []bool{false, true} {
			m, n, k := s[0], s[1], s[2]
			r := rand.New(rand.NewPCG(1, 1))
			x, y, z := randSlice(r, m*k), randSlice(r, k*n), make([]float32, m*n)
			ldb := n
			if tb {
				ldb = k
			}
			b.Run(fmt.Sprintf("%dx%dx%d/transB=%v", m, n, k, tb), func(b *testing.B) {
				for b.Loop() {
					Sgemm(false, tb, m, n, k, 1, x, k, y, ldb, 0, z, n)
				}
				b.ReportMetric(float64(2*m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkAttentionRows times a decode step's attention, 64 rows of 71
// keys, heads of 32 and 64, over a float32 and a float16 cache (the
// float16 one with its blocked score kernels and with the per-key ones,
// fastHalf), in keys per second of wall time and, on one thread, of the
// process's CPU time.
func BenchmarkAttentionRows(b *testing.B) {
	c := New()
	defer SetThreads(SetThreads(1))
	for _, D := range []int{32, 64} {
		B, HQ, S, n := 64, 8, 128, 71
		r := rand.New(rand.NewPCG(1, 1))
		q := &Buf{D: randSlice(r, B*HQ*D)}
		o := &Buf{D: make([]float32, B*HQ*D)}
		k := &Buf{D: randSlice(r, B*HQ*S*D)}
		v := &Buf{D: randSlice(r, B*HQ*S*D)}
		slot, nn := make([]int32, B), make([]int32, B)
		for i := range B {
			slot[i], nn[i] = int32(i), int32(n)
		}
		a := backend.Attention{B: B, T: 1, S: S, HQ: HQ, HKV: HQ, D: D, Scale: 0.17}
		kh, vh := c.AllocHalf(k.Len()), c.AllocHalf(v.Len())
		c.CopyHalf(kh, 0, D, k, 0, D, k.Len()/D, D)
		c.CopyHalf(vh, 0, D, v, 0, D, v.Len()/D, D)
		for _, mode := range []string{"f32", "half", "half-perkey"} {
			b.Run(fmt.Sprintf("D=%d/%s", D, mode), func(b *testing.B) {
				kk, vv := backend.Buffer(k), backend.Buffer(v)
				if mode != "f32" {
					kk, vv = kh, vh
				}
				defer func(prev bool) { fastHalf = prev }(fastHalf)
				fastHalf = mode != "half-perkey"
				cpu0 := processCPU()
				for b.Loop() {
					c.AttentionRows(a, slot, nn, o, q, kk, vv)
				}
				keys := float64(2*B*HQ*n) * float64(b.N)
				b.ReportMetric(keys/b.Elapsed().Seconds()/1e9, "Gkeys/s")
				b.ReportMetric(keys/(processCPU()-cpu0).Seconds()/1e9, "Gkeys/CPU-s")
			})
		}
	}
}
