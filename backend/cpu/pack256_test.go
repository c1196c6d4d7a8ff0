//go:build amd64 && !purego

package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestPackStrided256 checks packStrided256 (8x8 transposes, 6-row
// panels by packT6, Go for the rest) and packRows256 (16-wide copies)
// against the Go packers bit for bit over step counts, row counts and
// widths around multiples of 8 (6: the AVX2 GEMM's A panels; 16: its B
// panels), with the panel's step stride the width or wider, and that they
// write nothing outside the lanes they pack.
func TestPackStrided256(t *testing.T) {
	if !haveAVX2FMA {
		t.Skip("no AVX2 here")
	}
	r := rand.New(rand.NewPCG(29, 30))
	for _, kc := range []int{1, 7, 8, 9, 16, 17, 31, 33, 64, 256} {
		for _, width := range []int{1, 6, 7, 8, 9, 16, 17, 24, 31, 32, 33} {
			for _, cnt := range []int{0, 1, 5, 6, 7, 8, 9, 15, 16, 17, 23, 24, 31, 32, 33} {
				for _, pad := range []int{0, 1 + r.IntN(3)} {
					if cnt > width {
						continue
					}
					t.Run(fmt.Sprintf("kc=%d/w=%d/cnt=%d/pad=%d", kc, width, cnt, pad), func(t *testing.T) {
						ds := width + pad
						for _, f := range []struct {
							name     string
							got, ref func(dst []float32, ds int, src []float32, ss, kc, cnt, width int)
							rows     int // src rows: of cnt values (strided) or of kc steps (rows)
						}{{"strided", packStrided256, packStridedGo, cnt}, {"rows", packRows256, packRowsGo, kc}} {
							ss := kc + r.IntN(3)
							if f.name == "rows" {
								ss = cnt + r.IntN(3)
							}
							src := normals(r, max(f.rows*ss, 1))
							got, want := make([]float32, kc*ds+3), make([]float32, kc*ds+3)
							for i := range got {
								got[i], want[i] = -7, -7
							}
							f.got(got[:kc*ds], ds, src, ss, kc, cnt, width)
							f.ref(want[:kc*ds], ds, src, ss, kc, cnt, width)
							for i := range got {
								if !same(got[i], want[i]) {
									t.Fatalf("%s: [%d] (step %d, lane %d) = %v, want %v", f.name, i, i/ds, i%ds, got[i], want[i])
								}
							}
						}
					})
				}
			}
		}
	}
}
