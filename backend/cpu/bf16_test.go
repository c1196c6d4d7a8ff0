package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"testing"

	"github.com/golem-ml/golem/backend"
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
	// op(A)'s rows and op(B)'s columns rounded to bfloat16 once, in order.
	ar, bc := make([]float32, m*k), make([]float32, n*k)
	for i := 0; i < m; i++ {
		for p := 0; p < k; p++ {
			if transA {
				ar[i*k+p] = FromBF16(ToBF16(a[p*lda+i]))
			} else {
				ar[i*k+p] = FromBF16(ToBF16(a[i*lda+p]))
			}
		}
	}
	for j := 0; j < n; j++ {
		for p := 0; p < k; p++ {
			if transB {
				bc[j*k+p] = FromBF16(ToBF16(b[j*ldb+p]))
			} else {
				bc[j*k+p] = FromBF16(ToBF16(b[p*ldb+j]))
			}
		}
	}
	var end int
	at := func(row []float32, p int) float32 {
		if p >= end {
			return 0
		}
		return row[p]
	}
	for i := 0; i < m; i++ {
		row := ar[i*k : i*k+k]
		for j := 0; j < n; j++ {
			col := bc[j*k : j*k+k]
			v := c[i*ldc+j]
			for p0 := 0; p0 < k; p0 += kb {
				var acc float32
				end = min(p0+kb, k)
				for p := p0; p < end; p += 2 {
					acc = ftz(acc + at(row, p+1)*at(col, p+1))
					acc = ftz(acc + at(row, p)*at(col, p))
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
	if !isGoPairPack() {
		t.Run(bf16Kernels[0].name+"/go-packing", func(t *testing.T) {
			ps, pr := pairStrided, pairRowsPack
			pairStrided, pairRowsPack = packStridedPairs, packRowsPairs
			defer func() { pairStrided, pairRowsPack = ps, pr }()
			f(t)
		})
	}
}

// isGoPairPack reports whether bf16 packing runs the Go code already.
func isGoPairPack() bool {
	return reflect.ValueOf(pairStrided).Pointer() == reflect.ValueOf(packStridedPairs).Pointer()
}

// The vector packing (VCVTNE2PS2BF16) rounds as ToBF16 on the values
// where rounding has cases: ties both ways, denormals, zeros, NaNs,
// infinities and overflow; and it packs as the Go code does, at every
// count and width around a vector (a panel of B's, padded to whole
// vectors, and a tile of A's, as wide as its rows), with k past a block.
func TestPackPairsVector(t *testing.T) {
	if isGoPairPack() {
		t.Skip("no AVX512_BF16 nor AVX2: packing runs the Go code")
	}
	checkPairPacking(t)
}

// checkPairPacking is TestPackPairsVector's check of pairStrided and
// pairRowsPack against packStridedPairs and packRowsPairs.
func checkPairPacking(t *testing.T) {
	special := []uint32{0x3f808000, 0x3f818000, 0x3f808001, 0x3f807fff, 0xbf818000, 0, 0x80000000,
		0x007fffff, 0x807fffff, 0x00000001, 0x00800000, 0x7f7fffff, 0xff7fffff, 0x7f800000, 0xff800000,
		0x7f800001, 0xffc00000, 0x7fffffff, 0x3f7fffff, 0x477fe000}
	r := rand.New(rand.NewPCG(5, 6))
	for _, kc := range []int{1, 2, 3, 15, 16, 17, 31, 32, 33, 64, 77, 512, 1001} {
		for _, cw := range [][2]int{{1, 16}, {5, 16}, {6, 6}, {7, 8}, {13, 13}, {14, 14}, {14, 16}, {16, 16}, {17, 17}, {17, 32}, {32, 32}, {33, 48}, {45, 45}} {
			cnt, width := cw[0], cw[1]
			src := make([]float32, 50*1100)
			for i := range src {
				if i%3 == 0 {
					src[i] = math.Float32frombits(special[r.IntN(len(special))])
				} else {
					src[i] = float32(r.NormFloat64())
				}
			}
			for _, ss := range []int{kc, kc + 3} {
				kp := (kc + 1) / 2
				want, got := make([]float32, kp*width+5), make([]float32, kp*width+5)
				for i := range got {
					want[i], got[i] = 7, 7
				}
				packStridedPairs(want, width, src, ss, kc, cnt, width)
				pairStrided(got, width, src, ss, kc, cnt, width)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("strided kc=%d cnt=%d width=%d ss=%d: [%d] = %#08x, want %#08x", kc, cnt, width, ss, i, math.Float32bits(got[i]), math.Float32bits(want[i]))
					}
				}
				rs := cnt + ss%5
				packRowsPairs(want, width, src, rs, kc, cnt, width)
				pairRowsPack(got, width, src, rs, kc, cnt, width)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("rows kc=%d cnt=%d ss=%d: [%d] = %#08x, want %#08x", kc, cnt, rs, i, math.Float32bits(got[i]), math.Float32bits(want[i]))
					}
				}
			}
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
	type bf16Case struct {
		g       gemmCase
		a, b, c []float32
		want    []float32
	}
	r := rand.New(rand.NewPCG(7, 8))
	var cases []bf16Case // inputs and the definition's values, made once
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
		want := refGemmBF16(g.transA, g.transB, g.m, g.n, g.k, g.alpha, a, g.lda, b, g.ldb, g.beta, c, g.ldc)
		if g.k == 0 || g.alpha == 0 {
			for i := range want { // C only scaled, zeroed for beta 0
				want[i] = 0
				if g.beta != 0 {
					want[i] = g.beta * c[i/g.n*g.ldc+i%g.n]
				}
			}
		}
		cases = append(cases, bf16Case{g, a, b, c, want})
	}
	forEachBF16Kernel(t, func(t *testing.T) {
		for _, d := range cases {
			g, before, want := d.g, d.c, d.want
			c := slices.Clone(before)
			SgemmBF16(g.transA, g.transB, g.m, g.n, g.k, g.alpha, d.a, g.lda, d.b, g.ldb, g.beta, c, g.ldc)
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

// BenchmarkSgemmBF16 times SgemmBF16 beside Sgemm on the products of a
// training step of bench's small config (4096 rows of 384 values, a
// 1536-wide MLP) in its three forms: forward, input and weight gradients;
// on one thread, and GFLOP/cpu-s counts the thread's CPU time only (a
// shared machine's other work left out).
func BenchmarkSgemmBF16(b *testing.B) {
	defer SetThreads(SetThreads(1))
	m, n, k := 4096, 1536, 384
	r := rand.New(rand.NewPCG(1, 1))
	x, w, y := randSlice(r, m*k), randSlice(r, n*k), make([]float32, m*n)
	dx, dw := make([]float32, m*k), make([]float32, n*k)
	for _, g := range []struct {
		name  string
		sgemm func(bool, bool, int, int, int, float32, []float32, int, []float32, int, float32, []float32, int)
	}{{"float32", Sgemm}, {"bf16", SgemmBF16}} {
		for _, c := range []struct {
			name string
			run  func()
		}{
			{"forward", func() { g.sgemm(false, true, m, n, k, 1, x, k, w, k, 0, y, n) }},
			{"dx", func() { g.sgemm(false, false, m, k, n, 1, y, n, w, k, 0, dx, k) }},
			{"dw", func() { g.sgemm(true, false, n, k, m, 1, y, n, x, k, 0, dw, k) }},
		} {
			b.Run(g.name+"/"+c.name, func(b *testing.B) {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				t0 := threadCPU()
				for b.Loop() {
					c.run()
				}
				b.ReportMetric(float64(2*m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				if cpu := float64(threadCPU()-t0) / 1e9; cpu > 0 {
					b.ReportMetric(float64(2*m*n*k)*float64(b.N)/cpu/1e9, "GFLOP/cpu-s")
				}
			})
		}
	}
}

// A product with a BF16 weight buffer is SgemmBF16's with the weights
// widened: bit for bit for a prefill's rows (tiles of SgemmBF16), within
// float32's summation order for a decoding row (bdot's lanes); the
// buffer holds 2 bytes a value.
func TestBF16WeightsProducts(t *testing.T) {
	c := New()
	r := rand.New(rand.NewPCG(9, 9))
	for _, sz := range []struct{ m, n, k int }{{1, 37, 96}, {3, 40, 33}, {4, 19, 250}, {9, 45, 160}, {130, 200, 64}} {
		w := make([]byte, 2*sz.n*sz.k)
		wf := make([]float32, sz.n*sz.k)
		for i := range wf {
			h := ToBF16(float32(r.NormFloat64()))
			w[2*i], w[2*i+1] = byte(h), byte(h>>8)
			wf[i] = FromBF16(h)
		}
		b, err := c.UploadQuant(backend.BF16, sz.n, sz.k, w)
		if err != nil {
			t.Fatal(err)
		}
		if q := b.(*QuantBuf); len(q.H) != sz.n*sz.k || q.Q != nil {
			t.Fatalf("BF16 buffer holds %d values and %d more", len(q.H), len(q.Q))
		}
		a := randSlice(r, sz.m*sz.k)
		out := c.Alloc(sz.m*sz.n, false)
		c.MatMul(backend.Gemm{TransB: true, M: sz.m, N: sz.n, K: sz.k, Alpha: 1, Batch: 1, LDA: sz.k, LDB: sz.k, LDC: sz.n}, c.upload(a), b, out)
		want, f32 := make([]float32, sz.m*sz.n), make([]float32, sz.m*sz.n)
		SgemmBF16(false, true, sz.m, sz.n, sz.k, 1, a, sz.k, wf, sz.k, 0, want, sz.n)
		Sgemm(false, true, sz.m, sz.n, sz.k, 1, a, sz.k, wf, sz.k, 0, f32, sz.n)
		differ := 0
		for i, g := range Data(out) {
			if sz.m > 4 && math.Float32bits(g) != math.Float32bits(want[i]) {
				t.Fatalf("%+v: out %d = %v, SgemmBF16 %v", sz, i, g, want[i])
			}
			if d := math.Abs(float64(g - want[i])); d > 1e-5*(1+math.Abs(float64(want[i]))) {
				t.Fatalf("%+v: out %d = %v, SgemmBF16 %v", sz, i, g, want[i])
			}
			if g != f32[i] {
				differ++
			}
		}
		if differ == 0 {
			t.Fatalf("%+v: the float32 product's values exactly: the activations were not rounded", sz)
		}
	}
}

// The bf16 kernels flush each denormal sum to zero as VDPBF16PS does
// (the AVX2 one by MXCSR's FTZ bit during its k loop), bit for bit with
// the Go kernel where the products are normal and their sums are not:
// values of magnitude 2^-63 to 2^-62 (products 2^-126 to 2^-124, the
// smallest normals) with random signs, whose sums cancel into the
// denormals. Without the flush the values differ (checked below by the
// same sums without it), and after the kernels Go's arithmetic keeps its
// denormals: MXCSR is back as it was.
// denormalOperands are 2^-120 and 2^-10, whose product is the denormal
// 2^-130 (a variable: the compiler does not fold it).
var denormalOperands = [2]float32{0x1p-120, 0x1p-10}

func TestSgemmBF16FlushesDenormalSums(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	m, n, k := 13, 37, 301
	small := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(math.Ldexp(1+r.Float64(), -63))
			if r.IntN(2) == 0 {
				s[i] = -s[i]
			}
		}
		return s
	}
	a, b := small(m*k), small(k*n)
	want := make([]float32, m*n)
	prev := useBF16Kernel("go")
	SgemmBF16(false, false, m, n, k, 1, a, k, b, n, 0, want, n)
	useBF16Kernel(prev)
	// The definition's sums without the flush: they must differ somewhere.
	unflushed := 0
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var acc float32
			for p := 0; p < k; p += 2 {
				if p+1 < k {
					acc += FromBF16(ToBF16(a[i*k+p+1])) * FromBF16(ToBF16(b[(p+1)*n+j]))
				}
				acc += FromBF16(ToBF16(a[i*k+p])) * FromBF16(ToBF16(b[p*n+j]))
			}
			if acc != want[i*n+j] {
				unflushed++
			}
		}
	}
	if unflushed == 0 {
		t.Fatal("no sum was denormal: the inputs do not test the flush")
	}
	for _, kern := range bf16Kernels {
		prev := useBF16Kernel(kern.name)
		got := make([]float32, m*n)
		SgemmBF16(false, false, m, n, k, 1, a, k, b, n, 0, got, n)
		useBF16Kernel(prev)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: C[%d] = %g (%#08x), the Go kernel's %g (%#08x)", kern.name, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
			}
		}
		if z := denormalOperands[0] * denormalOperands[1]; math.Float32bits(z) != 0x00080000 {
			t.Fatalf("%s: 2^-120 * 2^-10 = %g after the kernel: MXCSR still flushes", kern.name, z)
		}
	}
}

// bdotRows (the bf16 weights' decoding products: bdot on AVX512_BF16,
// bdot256 on AVX2 and FMA) agrees with bdotRowsGo within float32's
// summation (the vector code sums lanes and then across them, in another
// order than the Go loop's: within 2*(k/2+8) roundings of 2^-24 of the
// sum of the products' magnitudes), on row lengths that reach every
// tail of the vector loops (32, 8 and masked 1-7 pairs), rows of odd
// length (the Go code) included; and it really runs the vector code
// where there is one: the results are not all bit for bit the Go ones.
func TestBdotRows(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	differ := 0
	for _, k := range []int{0, 1, 2, 3, 7, 14, 15, 16, 17, 18, 30, 31, 32, 34, 62, 63, 64, 66, 78, 126, 128, 130, 2000, 4098} {
		for _, n := range []int{0, 1, 3, 17} {
			xs := randSlice(r, k)
			x := make([]float32, (k+1)/2)
			convertPairs(x, xs, k)
			w := make([]uint16, n*k)
			for i := range w {
				w[i] = ToBF16(float32(r.NormFloat64()))
			}
			got, want := make([]float32, n), make([]float32, n)
			bdotRows(got, x, w, k)
			bdotRowsGo(want, x, w, k)
			for j := range n {
				var mag float64
				for p := range k {
					mag += math.Abs(float64(FromBF16(ToBF16(xs[p]))) * float64(FromBF16(w[j*k+p])))
				}
				if d := math.Abs(float64(got[j] - want[j])); d > 2*float64(k/2+8)*0x1p-24*mag {
					t.Fatalf("k=%d n=%d: out[%d] = %v, bdotRowsGo %v (sum of magnitudes %v)", k, n, j, got[j], want[j], mag)
				}
				if got[j] != want[j] {
					differ++
				}
			}
		}
	}
	if (haveBF16 || haveBF16AVX2) && differ == 0 {
		t.Fatal("every value is bdotRowsGo's, bit for bit: is the vector code running?")
	}
}

// convertPairs (a decoding row's pairs: VCVTNE2PS2BF16 on AVX512_BF16,
// cvtPairs256 on AVX2) pairs and rounds as convertPairsGo, bit for bit,
// on ties, denormals, zeros, NaNs, infinities and overflow, at every
// length around its 16-value steps.
func TestConvertPairs(t *testing.T) {
	special := []uint32{0x3f808000, 0x3f818000, 0x3f808001, 0x3f807fff, 0xbf818000, 0, 0x80000000,
		0x007fffff, 0x807fffff, 0x00000001, 0x00800000, 0x7f7fffff, 0xff7fffff, 0x7f800000, 0xff800000,
		0x7f800001, 0xffc00000, 0x7fffffff, 0x3f7fffff, 0x477fe000, 0xff800001}
	r := rand.New(rand.NewPCG(15, 16))
	for _, n := range []int{0, 1, 2, 7, 15, 16, 17, 31, 32, 33, 47, 48, 64, 1000, 1001} {
		src := make([]float32, n)
		for i := range src {
			if i%2 == 0 {
				src[i] = math.Float32frombits(special[r.IntN(len(special))])
			} else {
				src[i] = float32(r.NormFloat64())
			}
		}
		want, got := make([]float32, (n+1)/2+1), make([]float32, (n+1)/2+1)
		want[len(want)-1], got[len(got)-1] = 7, 7
		convertPairsGo(want, src, n)
		convertPairs(got, src, n)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("n=%d: [%d] = %#08x, want %#08x", n, i, math.Float32bits(got[i]), math.Float32bits(want[i]))
			}
		}
	}
}
