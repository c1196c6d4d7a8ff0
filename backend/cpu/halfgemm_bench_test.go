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
// attention projection, and its 8192 x 2048 MLP matrix, 32 MB) times m rows of activations on one thread, by the
// dots of decoding (matmulWide) and by the prefill's GEMM (gemmHalf), in
// multiply-adds per second of the process's CPU time (the machine may be
// shared: wall time counts the other processes' turns).
func BenchmarkMatMulHalf(b *testing.B) {
	c := New()
	defer SetThreads(SetThreads(1))
	for _, nk := range [][2]int{{2048, 2048}, {8192, 2048}} {
		n, k := nk[0], nk[1]
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
		for _, m := range []int{1, 8, 16, 24, 32, 64, 128} {
			a, out := randSlice(r, m*k), make([]float32, m*n)
			for _, path := range []string{"dots", "gemm"} {
				if path == "dots" && m > 64 {
					continue // matmulWide's dots take up to 64 rows
				}
				b.Run(fmt.Sprintf("%dx%d/m=%d/%s", n, k, m, path), func(b *testing.B) {
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
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPackHalf times the packing of gemmHalf alone (a 32 MB float16
// matrix, block by block as gemmHalf visits it), in float16 values per
// CPU-nanosecond.
func BenchmarkPackHalf(b *testing.B) {
	c := New()
	n, k := 8192, 2048
	r := rand.New(rand.NewPCG(1, 1))
	wb, err := c.UploadQuant(backend.F16, n, k, halfBytes(randomHalves(r, n*k)))
	if err != nil {
		b.Fatal(err)
	}
	w, kern := wb.(*QuantBuf), activeKernel
	kcb := blockSize(k, kern.kc, 1)
	buf := make([]float32, kcb*packedWidth(kern, halfTile))
	cpu0 := processCPU()
	for b.Loop() {
		for r0 := 0; r0 < n; r0 += halfTile {
			nt := min(halfTile, n-r0)
			for pc := 0; pc < k; pc += kcb {
				kc := min(kcb, k-pc)
				packHalfB(kern, buf[:kc*packedWidth(kern, nt)], w.H[r0*k+pc:], k, kc, nt)
			}
		}
	}
	b.ReportMetric(float64(n*k)*float64(b.N)/float64(processCPU()-cpu0), "values/CPU-ns")
}
