package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/golem-ml/golem/backend"
)

// geluGradMul gives, bit for bit, what geluGrad adds into a zero
// gradient, in the vector kernel and in Go.
func TestGELUGradMul(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	defer func(v bool) { haveVec = v }(haveVec)
	for _, vec := range []bool{false, haveVec} {
		haveVec = vec
		for _, x := range vecInputs(r) {
			dy := normals(r, len(x))
			want := make([]float32, len(x))
			geluGrad(want, x, dy)
			got := append([]float32(nil), dy...)
			geluGradMul(got, x)
			for i := range x {
				if got[i] != want[i] {
					t.Fatalf("vec %v: gelu'(%v) times %v: %v, want %v", vec, x[i], dy[i], got[i], want[i])
				}
			}
		}
	}
}

// MatMulGELU and MatMulGELUGrad give the values of the product followed
// by Map(GELU), and by MapGrad(GELU) into a zero gradient, bit for bit:
// float32 and bf16, every layout, one and two threads, C inside a larger
// buffer (OffC, LDC), blocks of k and of the epilogue's columns crossed,
// the one-row (gemv) path and an empty k.
func TestMatMulGELU(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	c := New()
	defer SetThreads(SetThreads(1))
	shapes := [][3]int{{1, 37, 20}, {13, 29, 7}, {70, 300, 64}, {230, 530, 1100}, {5, 9, 0}}
	for _, threads := range []int{1, 2} {
		SetThreads(threads)
		for _, sh := range shapes {
			m, n, k := sh[0], sh[1], sh[2]
			for _, bf16 := range []bool{false, true} {
				for _, tr := range [][2]bool{{false, true}, {false, false}, {true, false}} {
					ta, tb := tr[0], tr[1]
					name := fmt.Sprintf("threads %d m%d n%d k%d bf16 %v ta %v tb %v", threads, m, n, k, bf16, ta, tb)
					lda, ldb := k+1, n+2
					if ta {
						lda = m + 3
					}
					if tb {
						ldb = k + 2
					}
					g := backend.Gemm{TransA: ta, TransB: tb, M: m, N: n, K: k, Alpha: 1, Batch: 1, LDA: lda, LDB: ldb, LDC: n + 5, OffC: 3}
					a, b := &Buf{D: normals(r, max(m, k)*lda)}, &Buf{D: normals(r, max(n, k)*ldb)}
					size := g.OffC + m*g.LDC
					product := func(cc backend.Buffer) {
						if bf16 {
							c.MatMulBF16(g, a, b, cc)
						} else {
							c.MatMul(g, a, b, cc)
						}
					}
					// The unfused forward: the product, then GELU over C.
					pre, y := &Buf{D: normals(r, size)}, &Buf{D: normals(r, size)}
					product(pre)
					c.Map(backend.GELU, 0, y, pre)
					gotPre, gotY := &Buf{D: append([]float32(nil), pre.D...)}, &Buf{D: append([]float32(nil), y.D...)}
					for _, s := range []*Buf{gotPre, gotY} {
						for i := 0; i < m; i++ {
							clear(s.D[g.OffC+i*g.LDC : g.OffC+i*g.LDC+n])
						}
					}
					c.MatMulGELU(g, bf16, a, b, gotPre, gotY)
					same(t, name+": pre", gotPre.D, pre.D)
					same(t, name+": GELU", gotY.D, y.D)
					// The unfused backward: the product (dy), then
					// GELU's gradient into a zero buffer.
					// (Outside C, dy and so dx are zeros.)
					dy, dx := &Buf{D: make([]float32, size)}, &Buf{D: make([]float32, size)}
					product(dy)
					c.MapGrad(backend.GELU, 0, dx, pre, nil, dy)
					got := &Buf{D: make([]float32, size)}
					c.MatMulGELUGrad(g, bf16, a, b, pre, got)
					same(t, name+": GELU'", got.D, dx.D)
				}
			}
		}
	}
}

func same(t *testing.T, name string, got, want []float32) {
	t.Helper()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: [%d] = %v, want %v", name, i, got[i], want[i])
		}
	}
}
