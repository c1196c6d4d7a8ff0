//go:build unix

package cpu

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/golem-ml/golem/backend"
)

// BenchmarkMatMulHalf times a float16 matrix (Llama-3.2-1B's 2048 x 2048
// attention projection) times m rows of activations on one thread, by the
// dots of decoding (matmulWide) and by the prefill's GEMM (gemmHalf), in
// multiply-adds per second of the process's CPU time (the machine may be
// shared: wall time counts the other processes' turns).
func BenchmarkMatMulHalf(b *testing.B) {
	c := New()
	defer SetThreads(SetThreads(1))
	n, k := 2048, 2048
	r := rand.New(rand.NewPCG(1, 1))
	h := randomHalves(r, n*k)
	for i := range h {
		h[i] &^= 0x4000
	}
	wb, err := c.UploadQuant(backend.F16, n, k, halfBytes(h))
	if err != nil {
		b.Fatal(err)
	}
	w := wb.(*QuantBuf)
	for _, m := range []int{8, 16, 24, 32, 64, 128} {
		a, out := randSlice(r, m*k), make([]float32, m*n)
		for _, path := range []string{"dots", "gemm"} {
			if path == "dots" && m > 64 {
				continue // matmulWide's dots take up to 64 rows
			}
			b.Run(fmt.Sprintf("m=%d/%s", m, path), func(b *testing.B) {
				cpu0 := processCPU()
				for b.Loop() {
					if path == "gemm" {
						gemmHalf(m, n, k, 1, a, k, w, 0, out, n)
					} else {
						matmulWide(m, n, k, 1, a, k, w, 0, out, n, nil, nil, halfDots(k))
					}
				}
				b.ReportMetric(float64(m*n*k)*float64(b.N)/(processCPU()-cpu0).Seconds()/1e9, "GMAC/CPU-s")
			})
		}
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
