package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/golem-ml/golem/backend"
)

// randomHalves returns n float16 values: normal ones of every exponent,
// subnormals, signed zeros and the largest, never an infinity or a NaN
// (UploadQuant refuses those).
func randomHalves(r *rand.Rand, n int) []uint16 {
	h := make([]uint16, n)
	for i := range h {
		switch r.IntN(16) {
		case 0:
			h[i] = uint16(r.IntN(0x400)) | uint16(r.IntN(2))<<15 // subnormal or zero
		case 1:
			h[i] = 0x7bff | uint16(r.IntN(2))<<15 // +-65504
		default:
			for h[i] = uint16(r.Uint32()); h[i]&0x7c00 == 0x7c00; h[i] = uint16(r.Uint32()) {
			}
		}
	}
	return h
}

// The vector packings of float16 panels (VCVTPH2PS; AVX-512's 16x16
// transposes, AVX2's 8x8) are the Go packing bit for bit, for every step
// count around a vector's 16 and 8 (the masked or Go-packed tail), every
// row count up to 16 and widths past it (zero lanes), and write nothing
// outside the lanes and steps they pack.
func TestPackHalfVector(t *testing.T) {
	packs := map[string]func(dst []float32, ds int, src []uint16, ss, kc, cnt, width int){}
	if haveHalf512 {
		packs["avx512"] = packHalfStrided512
	}
	if haveHalf2 {
		packs["avx2"] = packHalfStrided256
	}
	if len(packs) == 0 {
		t.Skip("no float16 vector loads here: the Go packing is the only one")
	}
	for name, pack := range packs {
		t.Run(name, func(t *testing.T) { testPackHalf(t, pack) })
	}
}

func testPackHalf(t *testing.T, pack func(dst []float32, ds int, src []uint16, ss, kc, cnt, width int)) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, kc := range []int{1, 2, 7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 32, 33, 48, 63, 100, 256} {
		for cnt := 1; cnt <= 16; cnt++ {
			for _, width := range []int{cnt, roundUp(cnt, 8), roundUp(cnt, 16), 32} {
				if width < cnt {
					continue
				}
				ss := kc + r.IntN(3)
				src := randomHalves(r, (cnt-1)*ss+kc)
				ds := width + 3
				want := make([]float32, kc*ds)
				got := make([]float32, kc*ds)
				for i := range want {
					want[i], got[i] = -7, -7
				}
				packHalfStridedGo(want, ds, src, ss, kc, cnt, width)
				pack(got, ds, src, ss, kc, cnt, width)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("kc %d, %d rows, width %d: value %d (step %d, lane %d) is %v, want %v", kc, cnt, width, i, i/ds, i%ds, got[i], want[i])
					}
				}
			}
		}
	}
}

// The float16 prefill product (gemmHalf) is the float32 GEMM on the matrix
// widened, bit for bit (the same blocks, the same kernel), and within
// float32 rounding of the float64 definition: with every kernel the
// machine has, the vector and the Go packing, one and two threads, every
// row count from 1 to 70 and a prompt's 129, widths that end a panel, a
// vector or neither, step counts of one k block, a partial vector and two
// blocks, strides past the widths, alpha and beta, and a prompt too long
// to pack at once (maxHalfA) in parts.
func TestGemmHalf(t *testing.T) {
	c := New()
	sizes := []struct{ m, n, k int }{{129, 300, 300}, {65, 33, 17}, {97, 257, 64}, {70, 31, 513}}
	for m := 1; m <= 70; m++ {
		sizes = append(sizes, struct{ m, n, k int }{m, 16 + m%19, 1 + m*7%45})
	}
	for _, kern := range gemmKernels {
		for _, fast := range []bool{true, false} {
			for _, th := range []int{1, 2} {
				t.Run(fmt.Sprintf("%s/fast=%v/threads=%d", kern.name, fast, th), func(t *testing.T) {
					prevK, prevT := useKernel(kern.name), SetThreads(th)
					fastQuant = fast
					defer func() { useKernel(prevK); SetThreads(prevT); fastQuant = true }()
					for si, sz := range sizes {
						if si >= 4 && (th > 1 || !fast) && si%5 != 0 {
							continue // the row sweep once in full
						}
						testGemmHalf(t, c, sz.m, sz.n, sz.k, uint64(si))
					}
					// A long prompt in parts of whole row blocks.
					defer func(prev int) { maxHalfA = prev }(maxHalfA)
					maxHalfA = 1
					testGemmHalf(t, c, 2*kern.mc+5, 40, 70, 99)
				})
			}
		}
	}
}

// halfDefs holds testGemmHalf's float64 definitions by m, n, k and seed.
var halfDefs = struct {
	sync.Mutex
	m map[[4]int][2][]float64
}{m: map[[4]int][2][]float64{}}

func testGemmHalf(t *testing.T, c *CPU, m, n, k int, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 5))
	h := randomHalves(r, n*k)
	for i := range h { // keep the sums finite: no +-65504 beside large activations
		if h[i]&0x7fff > 0x5800 {
			h[i] &^= 0x4000
		}
	}
	wb, err := c.UploadQuant(backend.F16, n, k, halfBytes(h))
	if err != nil {
		t.Fatal(err)
	}
	w := wb.(*QuantBuf)
	wide := make([]float32, n*k)
	FromHalf(wide, h)
	lda, ldc := k+3, n+2
	a := make([]float32, m*lda)
	for i := range a {
		a[i] = float32(r.NormFloat64())
	}
	c0 := make([]float32, m*ldc)
	for i := range c0 {
		c0[i] = float32(r.NormFloat64())
	}
	// The definition's sums and magnitudes, for both alphas and betas,
	// made once for every kernel and thread count (the inputs are the
	// seed's).
	key := [4]int{m, n, k, int(seed)}
	halfDefs.Lock()
	def, ok := halfDefs.m[key]
	if !ok {
		def = [2][]float64{make([]float64, m*n), make([]float64, m*n)}
		for i := range m {
			for j := range n {
				var s, mag float64
				for p := range k {
					v := float64(a[i*lda+p]) * float64(wide[j*k+p])
					s += v
					mag += math.Abs(v)
				}
				def[0][i*n+j], def[1][i*n+j] = s, mag
			}
		}
		halfDefs.m[key] = def
	}
	halfDefs.Unlock()
	sum, mags := def[0], def[1]
	for _, ab := range [][2]float32{{1, 0}, {0.5, 2}} {
		alpha, beta := ab[0], ab[1]
		got := append([]float32(nil), c0...)
		want := append([]float32(nil), c0...)
		gemmHalf(m, n, k, alpha, a, lda, w, beta, got, ldc)
		gemm(1, activeKernel, false, true, m, n, k, alpha, a, lda, wide, k, beta, want, ldc, nil)
		for i := range m {
			for j := range n {
				g, e := got[i*ldc+j], want[i*ldc+j]
				if math.Float32bits(g) != math.Float32bits(e) {
					t.Fatalf("%dx%dx%d alpha %v beta %v: c[%d][%d] = %v, the float32 GEMM's %v", m, n, k, alpha, beta, i, j, g, e)
				}
				s, mag := sum[i*n+j], mags[i*n+j]
				ref := float64(alpha)*s + float64(beta)*float64(c0[i*ldc+j])
				if d := math.Abs(float64(g) - ref); d > 1e-6*(float64(k)*mag+math.Abs(ref))+1e-30 {
					t.Fatalf("%dx%dx%d: c[%d][%d] = %v, definition %v (off by %g)", m, n, k, i, j, g, ref, d)
				}
			}
			if ldc > n && math.Float32bits(got[i*ldc+n]) != math.Float32bits(c0[i*ldc+n]) {
				t.Fatalf("%dx%dx%d: wrote c[%d][%d], past the %d columns", m, n, k, i, n, n)
			}
		}
	}
}

// halfBytes is h as a GGUF F16 tensor's bytes.
func halfBytes(h []uint16) []byte {
	b := make([]byte, 2*len(h))
	for i, v := range h {
		b[2*i], b[2*i+1] = byte(v), byte(v>>8)
	}
	return b
}

// A prompt's product through MatMul (more rows than dotRows) takes the
// prefill path and agrees with the product over the widened matrix.
func TestMatMulHalfPrefill(t *testing.T) {
	c := New()
	m, n, k := 80, 40, 96
	r := rand.New(rand.NewPCG(9, 9))
	h := randomHalves(r, n*k)
	for i := range h {
		h[i] &^= 0x4000 // small values
	}
	wb, err := c.UploadQuant(backend.F16, n, k, halfBytes(h))
	if err != nil {
		t.Fatal(err)
	}
	if m <= wb.(*QuantBuf).dotRows() {
		t.Fatalf("%d rows take the decoding path", m)
	}
	wide := make([]float32, n*k)
	FromHalf(wide, h)
	a := make([]float32, m*k)
	for i := range a {
		a[i] = float32(r.NormFloat64())
	}
	out := c.Alloc(m*n, false)
	c.MatMul(backend.Gemm{TransB: true, M: m, N: n, K: k, Alpha: 1, Batch: 1, LDA: k, LDB: k, LDC: n}, c.upload(a), wb, out)
	want := make([]float32, m*n)
	Sgemm(false, true, m, n, k, 1, a, k, wide, k, 0, want, n)
	for i, v := range Data(out) {
		if math.Float32bits(v) != math.Float32bits(want[i]) {
			t.Fatalf("out %d = %v, want %v", i, v, want[i])
		}
	}
}

// A sequence decodes the same alone and in a batch: matmulHalf with m =
// 1..64 rows (matmulWide's dots) gives each row bit for bit what that row
// alone (m = 1) gives, with and without the assembly kernels, alpha and
// beta applied, on every tail of k and with threads splitting W's rows.
func TestMatMulHalfBatchRows(t *testing.T) {
	c := New()
	r := rand.New(rand.NewPCG(31, 32))
	for _, fast := range []bool{true, false} {
		fastQuant = fast
		for _, threads := range []int{1, 2} {
			prevT := SetThreads(threads)
			for _, k := range []int{1, 5, 8, 31, 33, 100, 136} {
				n := 23
				h := randomHalves(r, n*k)
				for i := range h {
					h[i] &^= 0x4000 // finite, moderate
				}
				wb, err := c.UploadQuant(backend.F16, n, k, halfBytes(h))
				if err != nil {
					t.Fatal(err)
				}
				w := wb.(*QuantBuf)
				const M = 64
				lda, ldc := k+3, n+2
				a := randSlice(r, M*lda)
				c0 := randSlice(r, M*ldc)
				for _, beta := range []float32{0, 0.5} {
					// Each row alone.
					alone := append([]float32(nil), c0...)
					for i := range M {
						matmulHalf(1, n, k, 0.75, a[i*lda:], lda, w, beta, alone[i*ldc:], ldc)
					}
					for m := 2; m <= M; m++ {
						got := append([]float32(nil), c0...)
						matmulHalf(m, n, k, 0.75, a, lda, w, beta, got, ldc)
						for i := range m {
							for j := range ldc {
								g, want := got[i*ldc+j], alone[i*ldc+j]
								if j >= n {
									want = c0[i*ldc+j] // untouched
								}
								if math.Float32bits(g) != math.Float32bits(want) {
									t.Fatalf("fast=%v threads=%d k=%d beta=%v m=%d: row %d col %d: %v, alone %v", fast, threads, k, beta, m, i, j, g, want)
								}
							}
						}
						for i := m * ldc; i < len(got); i++ {
							if got[i] != c0[i] {
								t.Fatalf("fast=%v k=%d m=%d: wrote row %d", fast, k, m, i/ldc)
							}
						}
					}
				}
			}
			SetThreads(prevT)
		}
	}
	fastQuant = true
}
