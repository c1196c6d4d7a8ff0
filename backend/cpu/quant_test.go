package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/gguf"
)

var quantTypes = []struct {
	t backend.QuantType
	g gguf.TensorType
}{{backend.Q8_0, gguf.Q8_0}, {backend.Q4_0, gguf.Q4_0}, {backend.F16, gguf.F16}, {backend.BF16, gguf.BF16}}

// quantMatrix returns a rows x cols matrix of random values (a few
// outliers, one all-zero block), its ggml blocks and the buffer.
func quantMatrix(t *testing.T, c *CPU, qt backend.QuantType, gt gguf.TensorType, rows, cols int, seed uint64) ([]float32, backend.Buffer) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(r.NormFloat64())
		if r.IntN(97) == 0 {
			w[i] *= 20
		}
	}
	clear(w[:min(32, cols)])
	blocks, err := gguf.Quantize(gt, w)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.UploadQuant(qt, rows, cols, blocks)
	if err != nil {
		t.Fatal(err)
	}
	deq := make([]float32, len(w))
	if err := gguf.Dequantize(gt, blocks, deq); err != nil {
		t.Fatal(err)
	}
	return deq, b
}

// A quantized buffer reads back (Download, Embedding) as ggml dequantizes
// it, exactly.
func TestQuantDequantizesAsGGML(t *testing.T) {
	c := New()
	for _, qt := range quantTypes {
		deq, b := quantMatrix(t, c, qt.t, qt.g, 5, 96, 1)
		got := make([]float32, len(deq)-40)
		c.Download(got, b, 40)
		for i := range got {
			if got[i] != deq[40+i] {
				t.Fatalf("%v: value %d is %v, ggml's %v", qt.t, 40+i, got[i], deq[40+i])
			}
		}
		if typ, ok := c.QuantOf(b); !ok || typ != qt.t {
			t.Fatalf("QuantOf = %v %v", typ, ok)
		}
		y := c.Alloc(3*96, false)
		c.Embedding(y, b, []int32{4, 0, 2}, 96)
		for i, row := range []int{4, 0, 2} {
			for j := range 96 {
				if Data(y)[i*96+j] != deq[row*96+j] {
					t.Fatalf("%v: embedding row %d col %d", qt.t, row, j)
				}
			}
		}
	}
}

// Q8_0 and Q4_0 matrices take the bytes of their GGUF blocks (34 and 18
// a block: codes and a float16 scale), plus the rows that pad the last
// panel of 16: the kernels' layout keeps no wider copy of the scales.
func TestQuantBufIsGGMLSize(t *testing.T) {
	c := New()
	for _, qt := range quantTypes[:2] {
		for _, rows := range []int{16, 37} {
			_, b := quantMatrix(t, c, qt.t, qt.g, rows, 96, 2)
			q := b.(*QuantBuf)
			padded := (rows + 15) / 16 * 16
			if want := padded * 3 * qt.g.BlockBytes(); len(q.Q) != want {
				t.Errorf("%v %d x 96: %d bytes, want %d (%d rows of 3 blocks of %d)", qt.t, rows, len(q.Q), want, padded, qt.g.BlockBytes())
			}
		}
	}
}

// quantRef is a W^T with W dequantized, in float64, and the bound of the
// activations' rounding: |x~ - x| <= max|x of its block| / 254 for each
// value, times |w|.
func quantRef(a []float32, m, k int, w []float32, n int) (ref, bound []float64) {
	ref, bound = make([]float64, m*n), make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s, e float64
			for b := 0; b < k; b += 32 {
				var amax float64
				for p := b; p < b+32; p++ {
					amax = math.Max(amax, math.Abs(float64(a[i*k+p])))
				}
				for p := b; p < b+32; p++ {
					s += float64(a[i*k+p]) * float64(w[j*k+p])
					e += amax / 254 * math.Abs(float64(w[j*k+p]))
				}
			}
			ref[i*n+j], bound[i*n+j] = s, e
		}
	}
	return ref, bound
}

// The product with a quantized matrix is the scalar definition (the
// assembly kernel's sums differ from it in float32 rounding only), and is
// within the activations' 8-bit rounding of the float32 product with the
// dequantized matrix (F16: within float32 rounding of it), for one row
// (decoding) and many (a prefill), rows of an even and an odd number of
// blocks, alpha and beta.
func TestQuantMatMul(t *testing.T) {
	c := New()
	for _, qt := range quantTypes {
		for _, sz := range []struct{ m, n, k int }{{1, 37, 96}, {1, 64, 256}, {7, 45, 160}, {33, 19, 64}, {15, 16, 64}, {9, 33, 320}} {
			deq, b := quantMatrix(t, c, qt.t, qt.g, sz.n, sz.k, uint64(sz.k))
			r := rand.New(rand.NewPCG(uint64(sz.m), 3))
			a := make([]float32, sz.m*sz.k)
			for i := range a {
				a[i] = float32(r.NormFloat64())
			}
			ref, bound := quantRef(a, sz.m, sz.k, deq, sz.n)
			if qt.t == backend.F16 {
				// No rounding of the activations: float32's of the sums.
				for i := range bound {
					bound[i] = 1e-5 * (1 + math.Abs(ref[i]))
				}
			}
			run := func(fast bool, alpha, beta float32) []float32 {
				fastQuant = fast
				defer func() { fastQuant = true }()
				out := c.Alloc(sz.m*sz.n, false)
				c.Fill(out, 1)
				c.MatMul(backend.Gemm{TransB: true, M: sz.m, N: sz.n, K: sz.k, Alpha: alpha, Beta: beta, Batch: 1, LDA: sz.k, LDB: sz.k, LDC: sz.n},
					c.upload(a), b, out)
				return Data(out)
			}
			slow, fast := run(false, 1, 0), run(true, 1, 0)
			for i := range ref {
				if d := math.Abs(float64(fast[i] - slow[i])); d > 1e-5*(1+math.Abs(float64(slow[i]))) {
					t.Fatalf("%v %+v: out %d: kernel %v, scalar definition %v", qt.t, sz, i, fast[i], slow[i])
				}
				if d := math.Abs(float64(slow[i]) - ref[i]); d > bound[i]+1e-4 {
					t.Fatalf("%v %+v: out %d: %v, float product %v: off by %g, more than the rounding bound %g", qt.t, sz, i, slow[i], ref[i], d, bound[i])
				}
			}
			ab := run(true, 0.5, 2)
			for i := range ab {
				if want := 0.5*fast[i] + 2; math.Abs(float64(ab[i]-want)) > 1e-5*(1+math.Abs(float64(want))) {
					t.Fatalf("%v %+v: alpha 0.5 beta 2: out %d is %v, want %v", qt.t, sz, i, ab[i], want)
				}
			}
		}
	}
	if !haveVNNI && !haveQuantAVX2 {
		t.Log("no AVX-512 VNNI or AVX2 here: the scalar definition was compared with itself")
	}
}

// The products the kernel does not run (a backward pass: dx = dy W) read
// the matrix dequantized, as the float32 GEMM would.
func TestQuantMatMulBackward(t *testing.T) {
	c := New()
	deq, b := quantMatrix(t, c, backend.Q4_0, gguf.Q4_0, 6, 64, 9)
	dy := []float32{1, -2, 0.5, 3, 0, 1, 2, 2, -1, 0, 0, 4}
	g := backend.Gemm{M: 2, N: 64, K: 6, Alpha: 1, Batch: 1, LDA: 6, LDB: 64, LDC: 64}
	got, want := c.Alloc(128, true), c.Alloc(128, true)
	c.MatMul(g, c.upload(dy), b, got)
	c.MatMul(g, c.upload(dy), c.upload(deq), want)
	for i := range Data(got) {
		if Data(got)[i] != Data(want)[i] {
			t.Fatalf("dx[%d] = %v, want %v", i, Data(got)[i], Data(want)[i])
		}
	}
}

// UploadQuant refuses blocks of the wrong length, rows that are not whole
// blocks and non-finite scales, naming what is wrong.
func TestUploadQuantRefuses(t *testing.T) {
	c := New()
	good, _ := gguf.Quantize(gguf.Q8_0, make([]float32, 64))
	nan := append([]byte(nil), good...)
	nan[0], nan[1] = 0x00, 0x7e // float16 NaN
	for _, tc := range []struct {
		t          backend.QuantType
		rows, cols int
		b          []byte
		want       string
	}{
		{backend.Q8_0, 2, 32, good[:60], "takes 68 bytes, have 60"},
		{backend.Q8_0, 1, 48, good, "whole blocks"},
		{backend.Q8_0, 2, 32, nan, "block 0 (row 0) has scale NaN"},
		{backend.QuantType(9), 2, 32, good, "unknown quantized type"},
		{backend.F16, 1, 3, []byte{0, 0x3c, 0, 0x7c, 0, 0}, "F16 value 1 (row 0) is +Inf"},
		{backend.BF16, 2, 2, []byte{0x80, 0x3f, 0, 0, 0xc0, 0xff, 0, 0}, "BF16 value 2 (row 1) is NaN"},
	} {
		_, err := c.UploadQuant(tc.t, tc.rows, tc.cols, tc.b)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("UploadQuant(%v, %d, %d): %v, want %q", tc.t, tc.rows, tc.cols, err, tc.want)
		}
	}
}

func (c *CPU) upload(x []float32) backend.Buffer {
	b := c.Alloc(len(x), false)
	c.Upload(b, 0, x)
	return b
}

// BenchmarkQuantMatMul times x W^T with W one of Qwen2.5-0.5B's MLP
// matrices (4864 x 896) for a decode step (m=1) and a prefill (m=64), one
// thread; GMAC/cpu-s is multiply-adds per second of the thread's CPU time
// (a shared machine's other work left out). Q8_0 and Q4_0 run the
// assembly kernels (path=asm) and the Go definition (path=go), and so
// does BF16's decode step (bdot or bdot256, or bdotRowsGo).
func BenchmarkQuantMatMul(b *testing.B) {
	c := New()
	defer SetThreads(SetThreads(1))
	const n, k = 4864, 896
	for _, qt := range quantTypes {
		w := make([]float32, n*k)
		r := rand.New(rand.NewPCG(1, 2))
		for i := range w {
			w[i] = float32(r.NormFloat64())
		}
		blocks, _ := gguf.Quantize(qt.g, w)
		wb, err := c.UploadQuant(qt.t, n, k, blocks)
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range []int{1, 64} {
			x := c.upload(w[:m*k])
			y := c.Alloc(m*n, false)
			for _, fast := range []bool{true, false} {
				name := fmt.Sprintf("%v/m=%d", qt.t, m)
				if qt.t == backend.Q8_0 || qt.t == backend.Q4_0 || qt.t == backend.BF16 && m == 1 {
					name += map[bool]string{true: "/path=asm", false: "/path=go"}[fast]
				} else if !fast {
					continue
				}
				b.Run(name, func(b *testing.B) {
					fastQuant = fast
					defer func() { fastQuant = true }()
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					b.SetBytes(int64(len(blocks)))
					t0 := threadCPU()
					for range b.N {
						c.MatMul(backend.Gemm{TransB: true, M: m, N: n, K: k, Alpha: 1, Batch: 1, LDA: k, LDB: k, LDC: n}, x, wb, y)
					}
					cpu := float64(threadCPU()-t0) / 1e9
					b.ReportMetric(float64(b.N)*float64(2*m*n*k)/b.Elapsed().Seconds()/1e9, "GMAC*2/s")
					if cpu > 0 {
						b.ReportMetric(float64(b.N)*float64(m*n*k)/cpu/1e9, "GMAC/cpu-s")
					}
				})
			}
		}
	}
}

// The activations' rounding is ggml's quantize_row_q8_0 (gguf.Quantize's
// Q8_0 block, the reference both follow): the same codes and scale for
// random blocks and for exact halves, which go away from zero; a NaN
// makes the scale NaN (not a block of zeros that hides it).
func TestQuantizeBlockIsGGMLs(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	var blocks [][]float32
	for range 200 {
		x := make([]float32, 32)
		for j := range x {
			x[j] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(7)-3)))
		}
		blocks = append(blocks, x)
	}
	halves := make([]float32, 32)
	for j := range halves {
		halves[j] = float32(j%8) - 3.5 // -3.5 .. 3.5, scale 1
	}
	halves[31] = 127
	blocks = append(blocks, halves, make([]float32, 32))
	var q [32]int8
	for i, x := range blocks {
		want, err := gguf.Quantize(gguf.Q8_0, x)
		if err != nil {
			t.Fatal(err)
		}
		d := quantizeBlock(q[:], x)
		if wd := f16ToF32(uint16(want[0]) | uint16(want[1])<<8); d != wd {
			t.Fatalf("block %d: scale %v, ggml's %v", i, d, wd)
		}
		for j := range q {
			if q[j] != int8(want[2+j]) {
				t.Fatalf("block %d value %d (%v): code %d, ggml's %d", i, j, x[j], q[j], int8(want[2+j]))
			}
		}
	}
	halves[3] = float32(math.NaN())
	if d := quantizeBlock(q[:], halves); d == d {
		t.Fatalf("a NaN activation gives scale %v", d)
	}
}

// The assembly rounding (quantPack) gives quantizeRows the codes, scales
// and corrections of the scalar path, bit for bit: rows of an even and an
// odd number of blocks in groups of 4 and 1, a zero block, exact halves,
// huge and tiny values, a NaN (its block's scale NaN), both shifts; the
// AVX-512 kernel and the AVX2 one, each where the CPU has it.
func TestQuantizeRowsKernel(t *testing.T) {
	var kernels []string
	if haveVNNI {
		kernels = append(kernels, "quantPack")
	}
	if haveQuantAVX2 {
		kernels = append(kernels, "quantPackAVX2")
	}
	if kernels == nil {
		t.Skip("no AVX-512 VNNI or AVX2 here: quantizeRows has only its scalar path")
	}
	for _, kernel := range kernels {
		t.Run(kernel, func(t *testing.T) {
			defer func(v bool) { haveVNNI = v }(haveVNNI)
			haveVNNI = kernel == "quantPack"
			testQuantizeRowsKernel(t)
		})
	}
}

func testQuantizeRowsKernel(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	for _, k := range []int{64, 96, 896, 4864} {
		const m = 5
		a := make([]float32, m*k)
		for i := range a {
			a[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(9)-4)))
		}
		clear(a[32:64]) // a zero block
		for j := range 32 {
			a[k+j] = float32(j%8) - 3.5 // exact halves (scale 1)
		}
		a[k+31] = 127
		a[2*k+40] = float32(math.NaN())
		a[3*k+5] = 3e38
		for j := range 32 {
			a[4*k+32+j] = float32(j) * 1e-30 // a scale below float16's
		}
		for _, shift := range []int32{128, 8} {
			var fast, slow qrows
			quantizeRows(&fast, m, k, a, k, shift)
			fastQuant = false
			quantizeRows(&slow, m, k, a, k, shift)
			fastQuant = true
			for i := range m {
				g0, R := rowGroup(m, i)
				for b := range k / 32 {
					at := g0*k/32*10 + b*10*R
					if f, s := fast.pack[at+i-g0], slow.pack[at+i-g0]; f != s {
						t.Fatalf("k %d shift %d row %d block %d: correction %d, scalar %d", k, shift, i, b, int32(f), int32(s))
					}
					f, s := math.Float32frombits(fast.pack[at+R+i-g0]), math.Float32frombits(slow.pack[at+R+i-g0])
					if nan := f != f; nan != (s != s) || !nan && f != s {
						t.Fatalf("k %d row %d block %d: scale %v, scalar %v", k, i, b, f, s)
					}
					for g := range 8 {
						if f, s := fast.pack[at+2*R+8*(i-g0)+g], slow.pack[at+2*R+8*(i-g0)+g]; f != s {
							t.Fatalf("k %d row %d block %d: codes %d-%d are %08x, scalar %08x", k, i, b, 4*g, 4*g+3, f, s)
						}
					}
				}
			}
		}
	}
}

// rawQuant returns rows x cols of ggml blocks with random codes over the
// type's whole range (Q8_0's -128 too, which ggml's rounding never makes
// but a file may hold) and random float16 scales; row 0's first block is
// the extreme one (every Q8_0 code -128, every Q4_0 nibble 15).
func rawQuant(t backend.QuantType, rows, cols int, r *rand.Rand) []byte {
	bb := t.BlockBytes()
	b := make([]byte, rows*cols/32*bb)
	for i := 0; i < len(b); i += bb {
		h := f32ToF16(float32(r.NormFloat64() * 0.02))
		b[i], b[i+1] = byte(h), byte(h>>8)
		for j := 2; j < bb; j++ {
			b[i+j] = byte(r.Uint32())
		}
	}
	for j := 2; j < bb; j++ {
		b[j] = map[bool]byte{true: 0x80, false: 0xff}[t == backend.Q8_0]
	}
	return b
}

// The AVX2 kernels (quant_gen.go) give the Go definition's outputs bit for
// bit: their int32 block sums are exact (no VPMADDUBSW pair saturates,
// even at Q8_0's -128 and Q4_0's 15 against activations of +-127) and
// they scale and add in qdotRef's order. Every row count of the kernels'
// groups (1-9, 12, 15-17, 33), column counts that leave each tail of a
// panel (1, 7-9, 15-17, 31, 33), rows of 1, 2, 3 and 28 blocks, alpha and
// beta (beta 0: out is not read, its NaNs do not leak). On an AVX-512
// VNNI machine haveVNNI is turned off to reach them.
func TestQuantAVX2MatchesGo(t *testing.T) {
	if !haveQuantAVX2 {
		t.Skip("no AVX2, FMA and F16C here")
	}
	defer func(v bool) { haveVNNI = v }(haveVNNI)
	haveVNNI = false
	c := New()
	r := rand.New(rand.NewPCG(17, 17))
	for _, qt := range []backend.QuantType{backend.Q8_0, backend.Q4_0} {
		for _, k := range []int{32, 64, 96, 896} {
			for _, n := range []int{1, 7, 8, 9, 15, 16, 17, 31, 33} {
				wb, err := c.UploadQuant(qt, n, k, rawQuant(qt, n, k, r))
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 33} {
					if k == 896 && m > 9 && n != 33 {
						continue
					}
					a := make([]float32, m*k)
					for i := range a {
						a[i] = float32(r.NormFloat64())
					}
					for j := range 32 { // an extreme block: codes +-127
						a[j] = float32(1 - 2*(j%2))
					}
					for _, ab := range [][2]float32{{1, 0}, {0.37, -1.5}} {
						run := func(fast bool) []float32 {
							fastQuant = fast
							defer func() { fastQuant = true }()
							out := c.Alloc(m*n, false)
							c.Fill(out, float32(math.NaN()))
							if ab[1] != 0 {
								for i := range Data(out) {
									Data(out)[i] = float32(i%13) - 6
								}
							}
							c.MatMul(backend.Gemm{TransB: true, M: m, N: n, K: k, Alpha: ab[0], Beta: ab[1], Batch: 1, LDA: k, LDB: k, LDC: n},
								c.upload(a), wb, out)
							return Data(out)
						}
						fast, slow := run(true), run(false)
						for i := range slow {
							if math.Float32bits(fast[i]) != math.Float32bits(slow[i]) || slow[i] != slow[i] {
								t.Fatalf("%v m %d n %d k %d alpha %v beta %v: out[%d] = %v, Go path %v", qt, m, n, k, ab[0], ab[1], i, fast[i], slow[i])
							}
						}
					}
				}
			}
		}
	}
}

// BenchmarkQuantMatMulStream times a decoding step's products as a model
// runs them: one row of activations times 16 Q8_0 or Q4_0 matrices of
// 4864 x 896 in turn (74 or 39 MB, more than the caches hold), so each
// streams from memory; one thread, by the thread's CPU time (GB/cpu-s:
// the matrix bytes read per CPU-second).
func BenchmarkQuantMatMulStream(b *testing.B) {
	c := New()
	defer SetThreads(SetThreads(1))
	const n, k, copies = 4864, 896, 16
	w := make([]float32, n*k)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range w {
		w[i] = float32(r.NormFloat64())
	}
	x := c.upload(w[:k])
	y := c.Alloc(n, false)
	for _, qt := range quantTypes[:2] {
		blocks, _ := gguf.Quantize(qt.g, w)
		var wbs []backend.Buffer
		for range copies {
			wb, err := c.UploadQuant(qt.t, n, k, blocks)
			if err != nil {
				b.Fatal(err)
			}
			wbs = append(wbs, wb)
		}
		b.Run(qt.t.String(), func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			t0 := threadCPU()
			for i := range b.N {
				c.MatMul(backend.Gemm{TransB: true, M: 1, N: n, K: k, Alpha: 1, Batch: 1, LDA: k, LDB: k, LDC: n}, x, wbs[i%copies], y)
			}
			if cpu := float64(threadCPU()-t0) / 1e9; cpu > 0 {
				b.ReportMetric(float64(b.N)*float64(n*k)/cpu/1e9, "GMAC/cpu-s")
				b.ReportMetric(float64(b.N)*float64(len(blocks))/cpu/1e9, "GB/cpu-s")
			}
		})
	}
}
