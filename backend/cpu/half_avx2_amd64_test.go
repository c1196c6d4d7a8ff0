//go:build !purego

package cpu

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// The AVX2/F16C float16 kernels of half_avx2_amd64.s against Go models of
// their arithmetic, bit for bit: each model does the kernel's fused
// multiply-adds (fma32, one rounding) and additions in the kernel's order.
// They run wherever the CPU has AVX2, FMA and F16C, AVX-512 or not.

func skipNoHalf2(t *testing.T) {
	t.Helper()
	if !haveHalf2 {
		t.Skip("no AVX2, FMA and F16C on this CPU")
	}
}

// halfTails are lengths that end every loop of the kernels: none, the
// scalar tail alone, a vector of 8 and around it, the 32-value step and
// around it, the 64-column chunk and around it, and a long one.
var halfTails = []int{0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40, 63, 64, 65, 72, 80, 96, 100, 128, 129, 1000}

// fma32 is a*b+c rounded once to float32: the product is exact in
// float64, the sum's rounding error is recovered (TwoSum) and, where the
// float64 sum is inexact, it is moved one float64 step toward the exact
// value, so that rounding it to float32 is rounding the exact value (a
// float64 sum can sit on a float32 tie only when it is exact).
func fma32(a, b, c float32) float32 {
	p, cc := float64(a)*float64(b), float64(c)
	s := p + cc
	bb := s - p
	e := (p - (s - bb)) + (cc - bb)
	if e > 0 {
		s = math.Nextafter(s, math.Inf(1))
	} else if e < 0 {
		s = math.Nextafter(s, math.Inf(-1))
	}
	return float32(s)
}

// fma32 against math/big's exact arithmetic rounded to 24 bits, nearest
// even, on random inputs and on sums placed at and around float32 ties.
func TestFMA32(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	exact := func(a, b, c float32) float32 {
		x := new(big.Float).SetPrec(200).SetFloat64(float64(a))
		x.Mul(x, new(big.Float).SetPrec(200).SetFloat64(float64(b)))
		x.Add(x, new(big.Float).SetPrec(200).SetFloat64(float64(c)))
		f, _ := x.SetMode(big.ToNearestEven).SetPrec(24).Float32()
		return f
	}
	for i := range 300000 {
		a, b, c := float32(r.NormFloat64()), float32(r.NormFloat64()), float32(r.NormFloat64())
		switch i % 3 {
		case 1: // c cancels most of the product: a long exact sum
			c = -a * b * (1 + float32(r.IntN(5)-2)/(1<<20))
		case 2: // b a power of two: a*b exact, plus a c half a step of it away
			b = float32(math.Ldexp(1, r.IntN(20)-10))
			c = float32(math.Ldexp(float64(a*b), -24)) * float32(r.IntN(3)+1) / 2
		}
		if got, want := fma32(a, b, c), exact(a, b, c); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("fma32(%v, %v, %v) = %v, exact %v", a, b, c, got, want)
		}
	}
	if got := fma32(1, 1.0/(1<<24), 1); got != 1 { // a tie, to even
		t.Fatalf("tie to even: %v", got)
	}
	if got, want := fma32(1.0/(1<<24)+1.0/(1<<40), 1, 1), math.Nextafter32(1, 2); got != want { // just past it
		t.Fatalf("past the tie: %v, want %v", got, want)
	}
}

// dotsh2Model is vdotsh2's arithmetic for one key.
func dotsh2Model(q []float32, k []uint16, scale float32) float32 {
	var acc [4][8]float32
	d, i := len(q), 0
	for ; d-i >= 32; i += 32 {
		for a := range 4 {
			for l := range 8 {
				acc[a][l] = fma32(f16ToF32(k[i+8*a+l]), q[i+8*a+l], acc[a][l])
			}
		}
	}
	for ; d-i >= 8; i += 8 {
		for l := range 8 {
			acc[0][l] = fma32(f16ToF32(k[i+l]), q[i+l], acc[0][l])
		}
	}
	var t float32
	for ; i < d; i++ {
		t = fma32(f16ToF32(k[i]), q[i], t)
	}
	var v [8]float32
	for l := range 8 {
		v[l] = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l])
	}
	h := [4]float32{v[0] + v[4], v[1] + v[5], v[2] + v[6], v[3] + v[7]}
	s := (h[0] + h[2]) + (h[1] + h[3])
	return (s + t) * scale
}

// halfRows returns n rows of d float16 values, ld apart, of moderate size
// (random normals rounded) with a few of every kind mixed in.
func halfRows(r *rand.Rand, n, d, ld int) []uint16 {
	h := make([]uint16, max(0, (n-1)*ld+d))
	for i := range h {
		h[i] = f32ToF16(float32(r.NormFloat64()))
		if r.IntN(20) == 0 {
			h[i] = randomHalves(r, 1)[0] &^ 0x4000 // subnormals, zeros, wide exponents kept finite in sums
		}
	}
	return h
}

func TestVdotsh2(t *testing.T) {
	skipNoHalf2(t)
	r := rand.New(rand.NewPCG(11, 12))
	for _, d := range halfTails {
		for _, n := range []int{0, 1, 3, 33} {
			ld := d + r.IntN(3)
			k := halfRows(r, n, d, ld)
			q := randSlice(r, d)
			got := make([]float32, n+1)
			got[n] = -7
			if n > 0 {
				qp := &got[0] // any valid pointer when d is 0
				if d > 0 {
					qp = &q[0]
				}
				kp := new(uint16)
				if len(k) > 0 {
					kp = &k[0]
				}
				vdotsh2(&got[0], qp, kp, ld, n, d, 0.125)
			}
			if got[n] != -7 {
				t.Fatalf("d=%d n=%d: wrote past the scores", d, n)
			}
			for j := range n {
				want := dotsh2Model(q, k[j*ld:j*ld+d], 0.125)
				if math.Float32bits(got[j]) != math.Float32bits(want) {
					t.Fatalf("d=%d n=%d key %d: %v, model %v", d, n, j, got[j], want)
				}
				var ref float64
				for i := range d {
					ref += float64(q[i]) * float64(f16ToF32(k[j*ld+i]))
				}
				if e := math.Abs(float64(got[j]) - 0.125*ref); e > 1e-5*(1+math.Abs(ref)) {
					t.Fatalf("d=%d key %d: %v, float64 %v", d, j, got[j], 0.125*ref)
				}
			}
		}
	}
}

func TestVwsumh2(t *testing.T) {
	skipNoHalf2(t)
	r := rand.New(rand.NewPCG(13, 14))
	for _, d := range halfTails {
		for _, n := range []int{0, 1, 5, 40} {
			ld := d + r.IntN(3)
			v := halfRows(r, n, d, ld)
			p := randSlice(r, max(n, 1))
			got := make([]float32, d+1)
			for i := range got {
				got[i] = float32(math.NaN()) // every value must be written
			}
			if d > 0 {
				vp := new(uint16)
				if len(v) > 0 {
					vp = &v[0]
				}
				vwsumh2(&got[0], &p[0], vp, ld, n, d)
			}
			if !math.IsNaN(float64(got[d])) {
				t.Fatalf("d=%d n=%d: wrote past the output", d, n)
			}
			for c := range d {
				var want float32
				for j := range n {
					want = fma32(p[j], f16ToF32(v[j*ld+c]), want)
				}
				if math.Float32bits(got[c]) != math.Float32bits(want) {
					t.Fatalf("d=%d n=%d column %d: %v, model %v", d, n, c, got[c], want)
				}
			}
		}
	}
}

// vtohalf2 is f32ToF16 bit for bit, on every length's tail, every
// float16's neighbourhood and ties, random bit patterns, the saturation
// and NaN, and writes nothing past n.
func TestVtohalf2(t *testing.T) {
	skipNoHalf2(t)
	r := rand.New(rand.NewPCG(15, 16))
	var src []float32
	for range 100000 {
		src = append(src, math.Float32frombits(r.Uint32()))
	}
	for h := range 1 << 16 {
		f := f16ToF32(uint16(h))
		src = append(src, f, math.Nextafter32(f, 0), math.Float32frombits(math.Float32bits(f)+1<<12))
	}
	src = append(src, 65504, 65519, 65520, 1e30, -1e30, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 0, float32(math.Copysign(0, -1)))
	lengths := append([]int{len(src)}, halfTails...)
	for _, n := range lengths {
		off := r.IntN(len(src) - n + 1)
		got := make([]uint16, n+1)
		got[n] = 0xabcd
		if n > 0 {
			vtohalf2(&got[0], &src[off], n)
		}
		if got[n] != 0xabcd {
			t.Fatalf("n=%d: wrote past the end", n)
		}
		for i := range n {
			if want := f32ToF16(src[off+i]); got[i] != want {
				t.Fatalf("n=%d: %v (%#08x): vector %#04x, Go %#04x", n, src[off+i], math.Float32bits(src[off+i]), got[i], want)
			}
		}
	}
}

// The dispatchers run AVX2's kernels when AVX-512's are off (as on a
// CPU without them), with the results above.
func TestHalfDispatchAVX2(t *testing.T) {
	skipNoHalf2(t)
	defer func(prev bool) { haveHalf512 = prev }(haveHalf512)
	haveHalf512 = false
	r := rand.New(rand.NewPCG(17, 18))
	for _, d := range []int{7, 64, 80} {
		t.Run(fmt.Sprint(d), func(t *testing.T) {
			k, q := halfRows(r, 3, d, d), randSlice(r, d)
			out := make([]float32, 3)
			vdotsh(&out[0], &q[0], &k[0], d, 3, d, 1)
			for j := range 3 {
				if want := dotsh2Model(q, k[j*d:j*d+d], 1); out[j] != want {
					t.Fatalf("key %d: %v, model %v", j, out[j], want)
				}
			}
			h := make([]uint16, d)
			vtohalf(&h[0], &q[0], d)
			for i := range d {
				if h[i] != f32ToF16(q[i]) {
					t.Fatalf("value %d: %#04x, want %#04x", i, h[i], f32ToF16(q[i]))
				}
			}
		})
	}
}

// dotsh2x8Model is vdotsh2x8's arithmetic for one key.
func dotsh2x8Model(q []float32, k []uint16, scale float32) float32 {
	var l [8]float32
	for i := 0; i < len(q); i += 8 {
		for j := range 8 {
			l[j] = fma32(f16ToF32(k[i+j]), q[i+j], l[j])
		}
	}
	return (((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))) * scale
}

func TestVdotsh2x8(t *testing.T) {
	skipNoHalf2(t)
	r := rand.New(rand.NewPCG(19, 20))
	for _, d := range []int{0, 8, 16, 24, 32, 64, 80, 128, 256} {
		for _, blocks := range []int{1, 2, 5} {
			n := 8 * blocks
			ld := d + 8*r.IntN(2)
			k := halfRows(r, n, d, ld)
			q := randSlice(r, max(d, 1))
			got := make([]float32, n+1)
			got[n] = -7
			kp := new(uint16)
			if len(k) > 0 {
				kp = &k[0]
			}
			vdotsh2x8(&got[0], &q[0], kp, ld, blocks, d, 0.25)
			if got[n] != -7 {
				t.Fatalf("d=%d %d blocks: wrote past the scores", d, blocks)
			}
			for j := range n {
				want := dotsh2x8Model(q[:d], k[j*ld:j*ld+d], 0.25)
				if math.Float32bits(got[j]) != math.Float32bits(want) {
					t.Fatalf("d=%d %d blocks, key %d: %v, model %v", d, blocks, j, got[j], want)
				}
			}
		}
	}
}

// vfromhalf2 is f16ToF32 bit for bit on every float16 (a signaling NaN
// comes out as the same NaN made quiet), on every length's tail, and
// writes nothing past n; FromHalf runs it.
func TestVfromhalf2(t *testing.T) {
	skipNoHalf2(t)
	src := make([]uint16, 1<<16)
	for h := range src {
		src[h] = uint16(h)
	}
	want := func(h uint16) uint32 {
		b := math.Float32bits(f16ToF32(h))
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			b |= 1 << 22 // quiet
		}
		return b
	}
	r := rand.New(rand.NewPCG(21, 22))
	for _, n := range append([]int{len(src)}, halfTails...) {
		off := r.IntN(len(src) - n + 1)
		got := make([]float32, n+1)
		got[n] = -7
		if n > 0 {
			vfromhalf2(&got[0], &src[off], n)
		}
		if got[n] != -7 {
			t.Fatalf("n=%d: wrote past the end", n)
		}
		for i := range n {
			if b := math.Float32bits(got[i]); b != want(src[off+i]) {
				t.Fatalf("n=%d: %#04x: %#08x, want %#08x", n, src[off+i], b, want(src[off+i]))
			}
		}
	}
	all := make([]float32, len(src))
	FromHalf(all, src)
	for h, v := range all {
		if math.Float32bits(v) != want(uint16(h)) {
			t.Fatalf("FromHalf(%#04x) = %#08x", h, math.Float32bits(v))
		}
	}
}

// BenchmarkFromHalf widens a 4096 x 896 float16 matrix (a dequantized
// copy of one of Qwen2.5-0.5B's), by F16C and by the Go loop, in values
// per CPU-nanosecond on one thread.
func BenchmarkFromHalf(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	src := randomHalves(r, 4096*896)
	dst := make([]float32, len(src))
	for _, vec := range []bool{true, false} {
		b.Run(fmt.Sprintf("f16c=%v", vec), func(b *testing.B) {
			if vec && !haveHalf2 {
				b.Skip("no F16C")
			}
			defer func(prev bool) { haveHalf = prev }(haveHalf)
			haveHalf = vec
			cpu0 := processCPU()
			for b.Loop() {
				FromHalf(dst, src)
			}
			b.ReportMetric(float64(len(src))*float64(b.N)/float64(processCPU()-cpu0), "values/CPU-ns")
		})
	}
}

// vdotsh2r3 and vdotsh2r2 against vdotsh2 (scale 1) row by row, bit for
// bit, on every tail of d, with sentinels between and after the rows of
// out; and halfDots' grouping (threes, a pair, a last row) for 1..64 rows
// of activations against vdotsh row by row (vdotsh2 on an AVX2-only CPU,
// where halfDots groups the rows; with AVX-512 it takes vdotsh512 for
// every row, whose sums are in another order).
func TestVdotsh2Rows(t *testing.T) {
	skipNoHalf2(t)
	r := rand.New(rand.NewPCG(21, 22))
	const sentinel = -7.25
	for _, d := range halfTails {
		if d == 0 {
			continue
		}
		for _, n := range []int{1, 2, 3, 33} {
			ld := d + r.IntN(3)
			k := halfRows(r, n, d, ld)
			for _, R := range []int{2, 3} {
				ldx, ldo := d+r.IntN(3), n+1+r.IntN(2)
				x := randSlice(r, (R-1)*ldx+d)
				got := make([]float32, R*ldo)
				for i := range got {
					got[i] = sentinel
				}
				if R == 3 {
					vdotsh2r3(&got[0], ldo, &x[0], ldx, &k[0], ld, n, d)
				} else {
					vdotsh2r2(&got[0], ldo, &x[0], ldx, &k[0], ld, n, d)
				}
				for i := range R {
					want := make([]float32, n)
					vdotsh2(&want[0], &x[i*ldx], &k[0], ld, n, d, 1)
					for j := range ldo {
						g := got[i*ldo+j]
						if j >= n {
							if g != sentinel {
								t.Fatalf("R=%d d=%d n=%d: row %d: wrote past the outputs at %d", R, d, n, i, j)
							}
							continue
						}
						if math.Float32bits(g) != math.Float32bits(want[j]) {
							t.Fatalf("R=%d d=%d n=%d: row %d, W row %d: %v, vdotsh2 %v", R, d, n, i, j, g, want[j])
						}
					}
				}
			}
		}
	}
	for _, d := range []int{1, 7, 9, 33, 100} {
		n := 5
		k := halfRows(r, n, d, d)
		dots := halfDots(d)
		for nx := 1; nx <= 64; nx++ {
			ldx := d + 1
			x := randSlice(r, (nx-1)*ldx+d)
			got := make([]float32, nx*n+1)
			got[nx*n] = sentinel
			dots(got[:nx*n], x, ldx, nx, k)
			if got[nx*n] != sentinel {
				t.Fatalf("d=%d nx=%d: wrote past the outputs", d, nx)
			}
			want := make([]float32, n)
			for i := range nx {
				vdotsh(&want[0], &x[i*ldx], &k[0], d, n, d, 1)
				for j := range n {
					if math.Float32bits(got[i*n+j]) != math.Float32bits(want[j]) {
						t.Fatalf("d=%d nx=%d: row %d, W row %d: %v, vdotsh %v", d, nx, i, j, got[i*n+j], want[j])
					}
				}
			}
		}
	}
}
