package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/golem-ml/golem/backend"
)

// refGemm is C = alpha*op(A)*op(B) + beta*C in float64, the plain way:
// each value a sum over p in order. op(A)'s rows and op(B)'s columns are
// copied out first, so the sums read memory in order (the products of two
// float32s are exact in float64, so the copy changes no value).
func refGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) []float64 {
	out := make([]float64, m*n)
	ar, bc := make([]float64, m*k), make([]float64, n*k)
	for i := 0; i < m; i++ {
		for p := 0; p < k; p++ {
			if transA {
				ar[i*k+p] = float64(a[p*lda+i])
			} else {
				ar[i*k+p] = float64(a[i*lda+p])
			}
		}
	}
	for j := 0; j < n; j++ {
		for p := 0; p < k; p++ {
			if transB {
				bc[j*k+p] = float64(b[j*ldb+p])
			} else {
				bc[j*k+p] = float64(b[p*ldb+j])
			}
		}
	}
	for i := 0; i < m; i++ {
		row := ar[i*k : i*k+k]
		for j := 0; j < n; j++ {
			col := bc[j*k : j*k+k]
			var s float64
			for p, av := range row {
				s += av * col[p]
			}
			v := float64(alpha) * s
			if beta != 0 {
				v += float64(beta) * float64(c[i*ldc+j])
			}
			out[i*n+j] = v
		}
	}
	return out
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = r.Float32()*2 - 1
	}
	return s
}

type gemmCase struct {
	transA, transB bool
	m, n, k        int
	lda, ldb, ldc  int
	alpha, beta    float32
}

func (g gemmCase) String() string {
	return fmt.Sprintf("tA=%v tB=%v m=%d n=%d k=%d lda=%d ldb=%d ldc=%d alpha=%g beta=%g", g.transA, g.transB, g.m, g.n, g.k, g.lda, g.ldb, g.ldc, g.alpha, g.beta)
}

// gemmData is a case's inputs and its float64 reference, made once and
// checked against every kernel (the reference is the slow part).
type gemmData struct {
	g       gemmCase
	a, b, c []float32
	want    []float64
}

// data draws a case's inputs from r. With beta 0 C starts full of NaN,
// which must not leak into the result.
func (g gemmCase) data(r *rand.Rand) gemmData {
	ar := g.m
	if g.transA {
		ar = g.k
	}
	br := g.k
	if g.transB {
		br = g.n
	}
	d := gemmData{g: g, a: randSlice(r, max(ar*g.lda, 1)), b: randSlice(r, max(br*g.ldb, 1)), c: randSlice(r, g.m*g.ldc+3)}
	if g.beta == 0 {
		for i := range d.c {
			d.c[i] = float32(math.NaN())
		}
	}
	d.want = refGemm(g.transA, g.transB, g.m, g.n, g.k, g.alpha, d.a, g.lda, d.b, g.ldb, g.beta, d.c, g.ldc)
	return d
}

// check runs one case on a copy of its C and compares with the float64
// reference; values outside the m x n window must stay untouched.
func (d gemmData) check(t *testing.T, sgemm func(bool, bool, int, int, int, float32, []float32, int, []float32, int, float32, []float32, int)) {
	t.Helper()
	g := d.g
	c := slices.Clone(d.c)
	sentinel := c[g.m*g.ldc]
	sgemm(g.transA, g.transB, g.m, g.n, g.k, g.alpha, d.a, g.lda, d.b, g.ldb, g.beta, c, g.ldc)
	tol := 1e-5 * float64(g.k+4) * float64(max(abs32(g.alpha), 1)+abs32(g.beta))
	for i := 0; i < g.m; i++ {
		for j := 0; j < g.ldc; j++ {
			got := c[i*g.ldc+j]
			if j >= g.n {
				if math.Float32bits(got) != math.Float32bits(d.c[i*g.ldc+j]) {
					t.Fatalf("%v: C[%d][%d] outside the %d columns changed", g, i, j, g.n)
				}
				continue
			}
			if w := d.want[i*g.n+j]; math.IsNaN(float64(got)) || math.Abs(float64(got)-w) > tol {
				t.Fatalf("%v: C[%d][%d] = %v, want %v", g, i, j, got, w)
			}
		}
	}
	if math.Float32bits(c[g.m*g.ldc]) != math.Float32bits(sentinel) {
		t.Fatalf("%v: wrote past the end of C", g)
	}
}

func abs32(x float32) float32 { return float32(math.Abs(float64(x))) }

// gemmCases covers tile edges (1, odd, one past a tile), every transpose,
// padded strides and the alpha/beta special cases.
func gemmCases() []gemmCase {
	sizes := [][3]int{
		{1, 1, 1}, {1, 7, 3}, {5, 1, 9}, {3, 5, 1}, {2, 2, 2}, {7, 13, 11},
		{14, 32, 16}, {15, 33, 17}, {13, 31, 5}, {28, 64, 8}, {29, 65, 37},
		{6, 16, 4}, {7, 17, 9}, {12, 24, 3}, {1, 100, 50}, {100, 1, 50},
		{64, 64, 32}, {33, 47, 400}, {130, 70, 777}, {200, 300, 10},
		{1030, 20, 5}, {16, 300, 20}, {45, 529, 3}, {2, 4300, 3},
	}
	var cs []gemmCase
	ab := [][2]float32{{1, 0}, {1, 1}, {-0.5, 2}, {2, 0}, {1, -1}}
	for i, s := range sizes {
		for combo := 0; combo < 4; combo++ {
			g := gemmCase{transA: combo&1 != 0, transB: combo&2 != 0, m: s[0], n: s[1], k: s[2]}
			pad := (i + combo) % 3 // stride padding
			if g.transA {
				g.lda = g.m + pad
			} else {
				g.lda = g.k + pad
			}
			if g.transB {
				g.ldb = g.k + pad
			} else {
				g.ldb = g.n + pad
			}
			g.ldc = g.n + (i+combo+1)%3
			g.alpha, g.beta = ab[(i+combo)%len(ab)][0], ab[(i+combo)%len(ab)][1]
			cs = append(cs, g)
		}
	}
	// k = 0 and alpha = 0 only scale C.
	cs = append(cs,
		gemmCase{m: 3, n: 4, k: 0, lda: 1, ldb: 4, ldc: 4, alpha: 1, beta: 0},
		gemmCase{m: 3, n: 4, k: 0, lda: 1, ldb: 4, ldc: 5, alpha: 1, beta: 0.5},
		gemmCase{m: 3, n: 4, k: 2, lda: 2, ldb: 4, ldc: 4, alpha: 0, beta: 0},
		gemmCase{m: 5, n: 9, k: 2, lda: 2, ldb: 9, ldc: 9, alpha: 0, beta: 3},
	)
	return cs
}

// forEachKernel runs f with each micro-kernel this machine can run forced,
// at 1 and 2 threads, and with the Go packing code if vector packing is
// used.
func forEachKernel(t *testing.T, f func(t *testing.T)) {
	for _, k := range gemmKernels {
		for _, th := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/threads=%d", k.name, th), func(t *testing.T) {
				prevK := useKernel(k.name)
				prevT := SetThreads(th)
				defer func() { useKernel(prevK); SetThreads(prevT) }()
				f(t)
			})
		}
	}
	if packStrided != nil && !isGoPack() {
		t.Run(gemmKernels[0].name+"/go-packing", func(t *testing.T) {
			ps, pr := packStrided, packRows
			packStrided, packRows = packStridedGo, packRowsGo
			defer func() { packStrided, packRows = ps, pr }()
			prevT := SetThreads(2)
			defer SetThreads(prevT)
			f(t)
		})
	}
}

// isGoPack reports whether packing runs the Go code already.
func isGoPack() bool {
	return reflect.ValueOf(packStrided).Pointer() == reflect.ValueOf(packStridedGo).Pointer()
}

func TestSgemm(t *testing.T) {
	t.Logf("kernels: %d, default %s", len(gemmKernels), GemmKernel())
	r := rand.New(rand.NewPCG(1, 2))
	var cases [][2]gemmData // inputs for Sgemm and for SgemmST
	for _, g := range gemmCases() {
		cases = append(cases, [2]gemmData{g.data(r), g.data(r)})
	}
	forEachKernel(t, func(t *testing.T) {
		for _, d := range cases {
			d[0].check(t, Sgemm)
			d[1].check(t, SgemmST)
		}
	})
}

// TestSgemmTrainingShapes checks the shapes a GPT training step uses,
// large enough to cross every cache block.
func TestSgemmTrainingShapes(t *testing.T) {
	shapes := []gemmCase{
		{m: 768, n: 384, k: 128}, {m: 768, n: 128, k: 384}, {transA: true, m: 128, n: 384, k: 768},
		{transB: true, m: 768, n: 128, k: 512}, {transB: true, m: 1100, n: 290, k: 900}, {m: 301, n: 65, k: 384},
		{transA: true, transB: true, m: 70, n: 530, k: 390},
	}
	r := rand.New(rand.NewPCG(3, 4))
	var cases []gemmData
	for i, g := range shapes {
		if testing.Short() && g.m*g.n*g.k > 1<<26 {
			continue
		}
		g.lda, g.ldb, g.ldc = g.k, g.n, g.n
		if g.transA {
			g.lda = g.m
		}
		if g.transB {
			g.ldb = g.k
		}
		g.alpha, g.beta = 1, float32(i%2)
		cases = append(cases, g.data(r))
	}
	forEachKernel(t, func(t *testing.T) {
		for _, d := range cases {
			d.check(t, Sgemm)
		}
	})
}

// TestSgemmDeterministic checks that repeated calls agree bit for bit, and
// so do 1 and 2 threads, since k is never split.
func TestSgemmDeterministic(t *testing.T) {
	for _, kern := range gemmKernels {
		prevK := useKernel(kern.name)
		r := rand.New(rand.NewPCG(5, 6))
		m, n, k := 301, 257, 1000
		a, b := randSlice(r, m*k), randSlice(r, k*n)
		c0 := randSlice(r, m*n)
		run := func(threads int) []float32 {
			prev := SetThreads(threads)
			defer SetThreads(prev)
			c := append([]float32(nil), c0...)
			Sgemm(false, true, m, n, k, 0.7, a, k, b, k, 0.3, c, n)
			return c
		}
		first := run(2)
		for _, th := range []int{2, 1, 2} {
			got := run(th)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(first[i]) {
					t.Fatalf("%s: threads=%d: C[%d] = %v, first run %v", kern.name, th, i, got[i], first[i])
				}
			}
		}
		useKernel(prevK)
	}
}

// TestSgemmAllocs checks that steady-state calls allocate nothing.
func TestSgemmAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	m, n, k := 200, 130, 300
	a, b, c := randSlice(r, m*k), randSlice(r, k*n), make([]float32, m*n)
	for _, th := range []int{1, 2} {
		prev := SetThreads(th)
		Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n) // warm up the pools
		allocs := testing.AllocsPerRun(20, func() {
			Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n)
			SgemmST(true, true, 64, 64, 32, 1, a, 64, b, 32, 1, c, 64)
		})
		SetThreads(prev)
		if allocs != 0 {
			t.Errorf("threads=%d: %v allocations per call, want 0", th, allocs)
		}
	}
}

func TestSgemmBadArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"short a", func() {
			Sgemm(false, false, 2, 2, 2, 1, make([]float32, 3), 2, make([]float32, 4), 2, 0, make([]float32, 4), 2)
		}},
		{"small ldb", func() {
			Sgemm(false, false, 2, 3, 2, 1, make([]float32, 4), 2, make([]float32, 6), 2, 0, make([]float32, 6), 3)
		}},
		{"huge stride", func() {
			Sgemm(false, false, 3, 2, 2, 1, make([]float32, 6), 1<<62, make([]float32, 4), 2, 0, make([]float32, 6), 2)
		}},
		{"negative", func() { Sgemm(false, false, -1, 2, 2, 1, nil, 2, nil, 2, 0, nil, 2) }},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			tc.f()
		}()
	}
}

func BenchmarkSgemm(b *testing.B) {
	for _, s := range [][3]int{{1024, 1024, 1024}, {768, 384, 128}, {64, 64, 32}} {
		m, n, k := s[0], s[1], s[2]
		r := rand.New(rand.NewPCG(1, 1))
		x, y, z := randSlice(r, m*k), randSlice(r, k*n), make([]float32, m*n)
		b.Run(fmt.Sprintf("%dx%dx%d", m, n, k), func(b *testing.B) {
			for b.Loop() {
				Sgemm(false, false, m, n, k, 1, x, k, y, n, 0, z, n)
			}
			b.ReportMetric(float64(2*m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkGemmKernel times the largest micro-kernel tile alone, on panels
// that stay in cache: the ceiling the blocked driver can reach. The bf16
// kernels are timed too (their kc values are kc/2 steps of pairs).
func BenchmarkGemmKernel(b *testing.B) {
	for _, kern := range append(gemmKernels[:len(gemmKernels)-1:len(gemmKernels)-1], bf16Kernels[:len(bf16Kernels)-1]...) {
		kc := kern.kc
		r := rand.New(rand.NewPCG(1, 1))
		a, bp, c := randSlice(r, kern.mr*kc), randSlice(r, kc*kern.nr), make([]float32, kern.mr*kern.nr)
		b.Run(kern.name, func(b *testing.B) {
			for b.Loop() {
				kern.compute(kc, a, bp, c, kern.nr, kern.mr, kern.nr, 1, 1)
			}
			b.ReportMetric(float64(2*kern.mr*kern.nr*kc)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// A product with a frozen B (packed once, kept) equals the same product
// with B packed on the fly, bit for bit, for every way the work is split;
// after Thaw a changed B is read again.
func TestMatMulFrozen(t *testing.T) {
	c := New()
	r := rand.New(rand.NewPCG(5, 6))
	for _, s := range [][3]int{{64, 768, 256}, {3, 1000, 70}, {300, 200, 129}, {17, 4100, 33}, {2, 64, 64}} {
		for _, tb := range []bool{false, true} {
			m, n, k := s[0], s[1], s[2]
			ldb := n
			if tb {
				ldb = k
			}
			a := randSlice(r, m*k)
			b := append(make([]float32, 5), randSlice(r, k*n)...) // at offset 5
			g := backend.Gemm{TransB: tb, M: m, N: n, K: k, Alpha: 1, LDA: k, LDB: ldb, LDC: n, OffB: 5}
			want, got := make([]float32, m*n), make([]float32, m*n)
			c.MatMul(g, &Buf{D: a}, &Buf{D: b}, &Buf{D: want})
			fb := &Buf{D: b}
			c.Freeze(fb)
			for range 2 { // packs, then reuses the packing
				c.MatMul(g, &Buf{D: a}, fb, &Buf{D: got})
				if !slices.Equal(got, want) {
					t.Fatalf("%dx%dx%d transB=%v: frozen B gives other values", m, n, k, tb)
				}
			}
			c.Thaw(fb)
			for i := range b {
				b[i] *= 2
			}
			c.MatMul(g, &Buf{D: a}, fb, &Buf{D: got})
			for i := range got {
				if got[i] != 2*want[i] {
					t.Fatalf("%dx%dx%d transB=%v: after Thaw, value %d is %v, want %v", m, n, k, tb, i, got[i], 2*want[i])
				}
			}
		}
	}
}
