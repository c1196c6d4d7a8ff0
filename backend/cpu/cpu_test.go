package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/golem-ml/golem/backend"
)

// TestMatMulOneRow checks MatMul's one-row path against the reference
// product for every layout and beta.
func TestMatMulOneRow(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	c := New()
	for _, n := range []int{1, 5, 300, 1111} {
		for _, k := range []int{1, 7, 65} {
			for _, ta := range []bool{false, true} {
				for _, tb := range []bool{false, true} {
					for _, beta := range []float32{0, 1, 0.5} {
						lda, ldb := k+2, n+3
						if ta {
							lda = 3
						}
						if tb {
							ldb = k + 1
						}
						aN, bN := k*lda, k*ldb
						if tb {
							bN = n * ldb
						}
						a, b := normals(r, aN), normals(r, bN)
						cv := normals(r, n+1)
						want := make([]float64, n)
						for j := range want {
							for p := 0; p < k; p++ {
								av, bv := a[min(p, len(a)-1)], b[min(p*ldb+j, len(b)-1)]
								if ta {
									av = a[p*lda]
								}
								if tb {
									bv = b[j*ldb+p]
								}
								want[j] += 0.75 * float64(av) * float64(bv)
							}
							want[j] += float64(beta) * float64(cv[j])
						}
						last := cv[n]
						if beta == 0 {
							for i := range cv[:n] {
								cv[i] = float32(math.NaN())
							}
						}
						c.MatMul(backend.Gemm{TransA: ta, TransB: tb, M: 1, N: n, K: k, Alpha: 0.75, Beta: beta, Batch: 1, LDA: lda, LDB: ldb, LDC: n}, &Buf{D: a}, &Buf{D: b}, &Buf{D: cv})
						name := fmt.Sprintf("n%d k%d ta%v tb%v beta%v", n, k, ta, tb, beta)
						for j := 0; j < n; j++ {
							if math.Abs(float64(cv[j])-want[j]) > 1e-4*(1+math.Abs(want[j])) {
								t.Fatalf("%s: c[%d] = %v want %v", name, j, cv[j], want[j])
							}
						}
						if cv[n] != last {
							t.Fatalf("%s: wrote past the row", name)
						}
					}
				}
			}
		}
	}
}

func normals(r *rand.Rand, n int) []float32 {
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(r.NormFloat64())
	}
	return d
}

// TestPermuteRuns checks Permute, written and added, against its
// definition (with AVX-512 and in Go), on permutations that keep the last dim (contiguous runs,
// short and long) and ones that move it (strided reads).
func TestPermuteRuns(t *testing.T) {
	c := New()
	r := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct{ shape, perm []int }{
		{[]int{3, 4, 20}, []int{1, 0, 2}}, // runs of 20: the axpy and copy paths
		{[]int{3, 4, 5}, []int{1, 0, 2}},  // runs of 5
		{[]int{2, 3, 4, 17}, []int{2, 0, 1, 3}},
		{[]int{3, 4, 20}, []int{0, 2, 1}}, // strided
		// short strided last dims (permuteShort): the sub-pixel
		// convolutions' interleave, and a plain transpose
		{[]int{2, 2, 3, 2, 3, 4}, []int{3, 2, 4, 0, 5, 1}},
		// the same with runs of 8, 13, 16 and 37 (vinterleave2: a
		// vector of each, a second masked one, none, two and a tail)
		{[]int{2, 2, 3, 2, 3, 8}, []int{3, 2, 4, 0, 5, 1}},
		{[]int{2, 2, 2, 1, 2, 13}, []int{3, 2, 4, 0, 5, 1}},
		{[]int{2, 2, 2, 1, 2, 16}, []int{3, 2, 4, 0, 5, 1}},
		{[]int{2, 2, 1, 1, 2, 37}, []int{3, 2, 4, 0, 5, 1}},
		{[]int{5, 3}, []int{1, 0}},
		{[]int{3, 9, 2}, []int{2, 1, 0}},
	} {
		n := 1
		for _, s := range tc.shape {
			n *= s
		}
		x := make([]float32, n)
		base := make([]float32, n)
		for i := range x {
			x[i], base[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
		}
		// want[out index] = x[in index], out dim i = in dim perm[i]
		in := make([]int, len(tc.shape))
		want := make([]float32, n)
		for i := range n {
			rem := i
			for d := len(tc.shape) - 1; d >= 0; d-- {
				in[d] = rem % tc.shape[d]
				rem /= tc.shape[d]
			}
			o := 0
			for d := range tc.perm {
				o = o*tc.shape[tc.perm[d]] + in[tc.perm[d]]
			}
			want[o] = x[i]
		}
		for _, mode := range kernelModes() {
			for _, acc := range []bool{false, true} {
				restore := setKernels(mode)
				xb, db := c.Alloc(n, false), c.Alloc(n, false)
				c.Upload(xb, 0, x)
				c.Upload(db, 0, base)
				c.Permute(db, xb, tc.shape, tc.perm, acc)
				restore()
				got := make([]float32, n)
				c.Download(got, db, 0)
				for i := range got {
					w := want[i]
					if acc {
						w += base[i]
					}
					if got[i] != w {
						t.Fatalf("shape %v perm %v acc %v kernels %s: [%d] = %v, want %v", tc.shape, tc.perm, acc, mode, i, got[i], w)
					}
				}
			}
		}
	}
}

// BenchmarkPermuteInterleave: the sub-pixel interleave of vqvae-32's 8->16
// upsampling (batch 32, 128 channels, 2x2 phases of 8x8), with AVX-512,
// with AVX2 and in Go.
func BenchmarkPermuteInterleave(b *testing.B) {
	c := New()
	defer SetThreads(SetThreads(1))
	shape, perm := []int{2, 2, 128, 32, 8, 8}, []int{3, 2, 4, 0, 5, 1}
	n := 2 * 2 * 128 * 32 * 64
	x, d := c.Alloc(n, false), c.Alloc(n, true)
	for _, vec := range []bool{true, false} {
		b.Run(map[bool]string{true: "vector", false: "go"}[vec], func(b *testing.B) {
			if vec && !haveVec && !haveVec256 {
				b.Skip("no vector kernels")
			}
			old, old2 := haveVec, haveVec256
			haveVec, haveVec256 = vec && haveVec, vec && haveVec256
			defer func() { haveVec, haveVec256 = old, old2 }()
			for b.Loop() {
				c.Permute(d, x, shape, perm, false)
			}
		})
	}
}
