package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// ToBF16 follows VCVTNE2PS2BF16's definition: round to nearest even,
// denormals to signed zero, NaN kept quiet, overflow to infinity.
func TestToBF16(t *testing.T) {
	for _, c := range []struct {
		in   uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1
		{0x3f808000, 0x3f80}, // tie, even below
		{0x3f818000, 0x3f82}, // tie, even above
		{0x3f808001, 0x3f81}, // above the tie
		{0x3f807fff, 0x3f80}, // below the tie
		{0xbf818000, 0xbf82}, // negative tie
		{0x00000000, 0x0000},
		{0x80000000, 0x8000},
		{0x007fffff, 0x0000}, // largest denormal: DAZ
		{0x807fffff, 0x8000},
		{0x00800000, 0x0080}, // smallest normal
		{0x7f7fffff, 0x7f80}, // rounds up to infinity
		{0x7f800000, 0x7f80},
		{0xff800000, 0xff80},
		{0x7f800001, 0x7fc0}, // signalling NaN made quiet
		{0xffc00000, 0xffc0},
	} {
		if got := ToBF16(math.Float32frombits(c.in)); got != c.want {
			t.Errorf("ToBF16(%#08x) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	// Round trip: every bfloat16 that is not a denormal comes back.
	for h := 0; h < 1<<16; h++ {
		f := FromBF16(uint16(h))
		if e := h & 0x7f80; e == 0 || (e == 0x7f80 && h&0x7f != 0) {
			continue
		}
		if got := ToBF16(f); got != uint16(h) {
			t.Fatalf("ToBF16(FromBF16(%#04x)) = %#04x", h, got)
		}
	}
}

// refGemmBF16 is SgemmBF16's definition written the plain way, one value
// of C at a time: k cut into blocks of bf16KC, each block summed in pairs
// as VDPBF16PS sums them (genericComputeBF16's comment; a block of odd
// length ends with a pair padded with zero), then alpha times
// the sum plus beta times C (beta 1 after the first block). The blocks
// are gemmBlocked's: the fewest of at most bf16KC, of equal size.
func refGemmBF16(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) []float32 {
	out := make([]float32, m*n)
	kb := blockSize(k, bf16KC, 1)
	var end int
	at := func(i, p int) float32 {
		if p >= end {
			return 0
		}
		if transA {
			return FromBF16(ToBF16(a[p*lda+i]))
		}
		return FromBF16(ToBF16(a[i*lda+p]))
	}
	bt := func(p, j int) float32 {
		if p >= end {
			return 0
		}
		if transB {
			return FromBF16(ToBF16(b[j*ldb+p]))
		}
		return FromBF16(ToBF16(b[p*ldb+j]))
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			v := c[i*ldc+j]
			for p0 := 0; p0 < k; p0 += kb {
				var acc float32
				end = min(p0+kb, k)
				for p := p0; p < end; p += 2 {
					acc = ftz(acc + at(i, p+1)*bt(p+1, j))
					acc = ftz(acc + at(i, p)*bt(p, j))
				}
				be := beta
				if p0 > 0 {
					be = 1
				}
				w := alpha * acc
				if be != 0 {
					w += be * v
				}
				v = w
			}
			out[i*n+j] = v
		}
	}
	return out
}

// forEachBF16Kernel runs f with each bf16 kernel this machine can run
// forced (the assembly one where the CPU has AVX512_BF16, and the Go one),
// at 1 and 2 threads.
func forEachBF16Kernel(t *testing.T, f func(t *testing.T)) {
	for _, k := range bf16Kernels {
		for _, th := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/threads=%d", k.name, th), func(t *testing.T) {
				prevK := useBF16Kernel(k.name)
				prevT := SetThreads(th)
				defer func() { useBF16Kernel(prevK); SetThreads(prevT) }()
				f(t)
			})
		}
	}
}

// Every bf16 kernel gives the definition's values bit for bit, on every
// shape, transpose and stride of the float32 GEMM's tests (their alphas
// and betas are powers of two, where the assembly's fused epilogue rounds
// as the definition's two steps do; the inputs are normal numbers, where
// DAZ and FTZ do not act), with k past one block (777). NaNs in C with
// beta 0 do not leak, and C outside its window is untouched.
func TestSgemmBF16Definition(t *testing.T) {
	if len(bf16Kernels) == 1 {
		t.Logf("no AVX512_BF16 here: only the Go kernel is checked")
	}
	forEachBF16Kernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for _, g := range gemmCases() {
			ar, br := g.m, g.k
			if g.transA {
				ar = g.k
			}
			if g.transB {
				br = g.n
			}
			a := randSlice(r, max(ar*g.lda, 1))
			b := randSlice(r, max(br*g.ldb, 1))
			c := randSlice(r, g.m*g.ldc+3)
			if g.beta == 0 {
				for i := range c {
					c[i] = float32(math.NaN())
				}
			}
			before := append([]float32(nil), c...)
			want := refGemmBF16(g.transA, g.transB, g.m, g.n, g.k, g.alpha, a, g.lda, b, g.ldb, g.beta, c, g.ldc)
			if g.k == 0 || g.alpha == 0 {
				for i := range want { // C only scaled, zeroed for beta 0
					want[i] = 0
					if g.beta != 0 {
						want[i] = g.beta * before[i/g.n*g.ldc+i%g.n]
					}
				}
			}
			SgemmBF16(g.transA, g.transB, g.m, g.n, g.k, g.alpha, a, g.lda, b, g.ldb, g.beta, c, g.ldc)
			for i := 0; i < g.m; i++ {
				for j := 0; j < g.ldc; j++ {
					got := c[i*g.ldc+j]
					w := before[i*g.ldc+j]
					if j < g.n {
						w = want[i*g.n+j]
					}
					if math.Float32bits(got) != math.Float32bits(w) {
						t.Fatalf("%v: C[%d][%d] = %v (%#08x), want %v (%#08x)", g, i, j, got, math.Float32bits(got), w, math.Float32bits(w))
					}
				}
			}
			if math.Float32bits(c[g.m*g.ldc]) != math.Float32bits(before[g.m*g.ldc]) {
				t.Fatalf("%v: wrote past the end of C", g)
			}
		}
	})
}

// SgemmBF16 is Sgemm within bfloat16's rounding of the inputs (each
// product off by at most 2^-8 relative, plus float32's summation), and it
// really rounds: most values differ from Sgemm's.
func TestSgemmBF16NearFloat32(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	m, n, k := 67, 129, 1100
	a, b := randSlice(r, m*k), randSlice(r, k*n)
	c, c32 := make([]float32, m*n), make([]float32, m*n)
	SgemmBF16(false, true, m, n, k, 1, a, k, b, k, 0, c, n)
	Sgemm(false, true, m, n, k, 1, a, k, b, k, 0, c32, n)
	want := refGemm(false, true, m, n, k, 1, a, k, b, k, 0, nil, n)
	differ := 0
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var mag float64
			for p := 0; p < k; p++ {
				mag += math.Abs(float64(a[i*k+p]) * float64(b[j*k+p]))
			}
			got := c[i*n+j]
			if e := math.Abs(float64(got) - want[i*n+j]); e > (1.0/256+float64(k)*0x1p-24)*mag {
				t.Fatalf("C[%d][%d] = %v, want %v within bf16's %g", i, j, got, want[i*n+j], mag/256)
			}
			if got != c32[i*n+j] {
				differ++
			}
		}
	}
	if differ < m*n*9/10 {
		t.Fatalf("only %d of %d values differ from Sgemm's: are the inputs rounded to bf16?", differ, m*n)
	}
}
