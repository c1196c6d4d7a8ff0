package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"
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
