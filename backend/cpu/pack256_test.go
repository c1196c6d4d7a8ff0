//go:build amd64 && !purego

package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestPackStrided256 checks packStrided256 (8x8 transposes, Go for the
// rest) against packStridedGo bit for bit over the step counts, row
// counts and widths around multiples of 8, and that it writes only the
// packed panel.
func TestPackStrided256(t *testing.T) {
	if !haveAVX2FMA {
		t.Skip("no AVX2 here")
	}
	r := rand.New(rand.NewPCG(29, 30))
	for _, kc := range []int{1, 7, 8, 9, 16, 17, 31, 33, 64, 256} {
		for _, width := range []int{1, 7, 8, 9, 16, 17, 24, 31, 32, 33} {
			for _, cnt := range []int{0, 1, 7, 8, 9, 15, 16, 17, 23, 24, 31, 32, 33} {
				if cnt > width {
					continue
				}
				t.Run(fmt.Sprintf("kc=%d/w=%d/cnt=%d", kc, width, cnt), func(t *testing.T) {
					ss, ds := kc+r.IntN(3), width+r.IntN(3)
					src := normals(r, max(cnt, 1)*ss)
					got, want := make([]float32, kc*ds), make([]float32, kc*ds)
					for i := range got {
						got[i], want[i] = -7, -7
					}
					packStrided256(got, ds, src, ss, kc, cnt, width)
					packStridedGo(want, ds, src, ss, kc, cnt, width)
					for i := range got {
						if !same(got[i], want[i]) {
							t.Fatalf("[%d] (step %d, lane %d) = %v, want %v", i, i/ds, i%ds, got[i], want[i])
						}
					}
				})
			}
		}
	}
}
