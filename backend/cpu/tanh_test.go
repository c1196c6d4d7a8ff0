package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/golem-ml/golem/backend"
)

// tanhLens reach every path of vtanh256, vgelutanh256 and
// vgelutanhgrad256: none, a masked tail alone, one vector, a vector and a
// tail, two, and long rows.
var tanhLens = []int{0, 1, 7, 8, 9, 15, 16, 17, 33, 1000}

// The float64 definitions the kernels are held to: tanh, GELUTanh as
// 0.5 x (1 + tanh u) = x / (1 + e^(-2u)) (the second form, since the
// first cancels in float64 too below x = -10), and its derivative
// s (1 + x (1-s) 2u'), s = 1/(1 + e^(-2u)); a = -2u is returned for the
// tolerances, with scale, the sum of the derivative's two terms' sizes.
func geluTanh64(x float64) (y, a float64) {
	a = -2 * math.Sqrt(2/math.Pi) * (x + 0.044715*x*x*x)
	return x / (1 + math.Exp(a)), a
}

func geluTanhGrad64(x float64) (d, a, scale float64) {
	if math.IsInf(x, 0) { // the limits
		return map[bool]float64{true: 1, false: 0}[x > 0], -x, 1
	}
	a = -2 * math.Sqrt(2/math.Pi) * (x + 0.044715*x*x*x)
	s, oms := 1/(1+math.Exp(a)), 1/(1+math.Exp(-a)) // s and 1-s without Inf*0
	t := x * oms * 2 * math.Sqrt(2/math.Pi) * (1 + 3*0.044715*x*x)
	return s * (1 + t), a, s * (1 + math.Abs(t))
}

// ulp32 is the spacing of float32 at |w|.
func ulp32(w float64) float64 {
	a := float32(math.Abs(w))
	return float64(math.Nextafter32(a, float32(math.Inf(1))) - a)
}

// Tolerances against the float64 definitions. tanh: 3 ulp (the Go loop
// and the AVX2 kernel measure 2.47 at most over every 997th float32 of
// both signs up to 60, the old scalar 6.7): exp's polynomial, the FMA
// of m = 2^n q + 2^n - 1 and the division, each about an ulp. GELUTanh:
// 4e-7 (1 + |2u|) relative, its gradient 5e-7 (1 + |2u|) of the sum of
// its terms' sizes (1.6e-7 and 2.2e-7 measured over the same floats;
// 0.5 x (1 + tanh u) in float32, the old way, was 1.3e-4 at x = -4): the
// exp and division's few ulp, and -2u itself rounded to float32, an
// absolute error of |2u| ulp(1) that e^(-2u) turns into a relative one.
// Below 1e-37 (denormal results, and x under about -10 where e^(-2u)
// overflows to Inf and GELUTanh gives -0 for about -1e-38) errors are
// absolute; the gradient's below 1e-35 (it is 0 where -2u > 88, for a
// true value under 1.5e-36).
const (
	tanhULP     = 3
	geluTanhTol = 4e-7
	geluGradTol = 5e-7
)

func checkTanh(t *testing.T, what string, x, got float32) {
	t.Helper()
	w := math.Tanh(float64(x))
	if math.IsNaN(w) {
		if !math.IsNaN(float64(got)) {
			t.Fatalf("%s: tanh(%v) = %v, want NaN", what, x, got)
		}
		return
	}
	if e := math.Abs(float64(got) - w); e > tanhULP*ulp32(w) || math.Signbit(float64(got)) != math.Signbit(w) {
		t.Fatalf("%s: tanh(%v) = %v (%#x), want %v: %.2f ulp", what, x, got, math.Float32bits(got), w, e/ulp32(w))
	}
}

func checkGELUTanh(t *testing.T, what string, x, got float32) {
	t.Helper()
	w, a := geluTanh64(float64(x))
	if math.IsNaN(w) {
		if !math.IsNaN(float64(got)) {
			t.Fatalf("%s: gelu_tanh(%v) = %v, want NaN", what, x, got)
		}
		return
	}
	if e := math.Abs(float64(got) - w); e > geluTanhTol*(1+math.Abs(a))*math.Abs(w) && e > 1e-37 {
		t.Fatalf("%s: gelu_tanh(%v) = %v, want %v: relative error %.3g", what, x, got, w, e/math.Abs(w))
	}
}

// checkGELUTanhGrad checks got = d0 + g * GELUTanh'(x).
func checkGELUTanhGrad(t *testing.T, what string, x, d0, g, got float32) {
	t.Helper()
	dd, a, scale := geluTanhGrad64(float64(x))
	w := float64(d0) + float64(g)*dd
	if math.IsNaN(w) {
		if !math.IsNaN(float64(got)) {
			t.Fatalf("%s: %v + %v * gelu_tanh'(%v) = %v, want NaN", what, d0, g, x, got)
		}
		return
	}
	// The sum's own rounding: an ulp of w; the derivative's error times g.
	tol := geluGradTol*(1+math.Abs(a))*scale*math.Abs(float64(g)) + ulp32(w)
	if e := math.Abs(float64(got) - w); e > tol && e > 1e-35 {
		t.Fatalf("%s: %v + %v * gelu_tanh'(%v) = %v, want %v (error %.3g, bound %.3g)", what, d0, g, x, got, w, e, tol)
	}
}

// TestTanhGELUTanh: Tanh and GELUTanh forward, and GELUTanh's gradient
// (added into dx, and set without reading it), with each kernel set this
// machine runs (the Go loops, and the AVX2 kernels that AVX-512 machines
// run too), against their float64 definitions on tanhLens' lengths and on
// the special values in every lane of a vector and of a tail; none writes
// past n.
func TestTanhGELUTanh(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	var ins [][]float32
	for _, n := range tanhLens {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64() * 3)
			if r.IntN(8) == 0 {
				x[i] *= 8
			}
			if r.IntN(8) == 0 {
				x[i] *= 1e-3
			}
		}
		ins = append(ins, x)
	}
	sp := []float32{0, float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32,
		1e-40, -1e-40, 1e-20, -1e-20, 1e-4, -1e-4, 0.0625, -0.0625, 0.17, -0.35, 0.5, -1, 3.9566, 8.9, -9, 9.5, -20,
		-10.05, -13, 30, 1e13, -1e13, math.MaxFloat32, -math.MaxFloat32,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), math.Float32frombits(0xffc00000)}
	for off := range 8 {
		ins = append(ins, append(make([]float32, off), sp...))
	}
	c := New()
	for _, mode := range kernelModes() {
		restore := setKernels(mode)
		for _, x := range ins {
			n := len(x)
			what := fmt.Sprintf("%s, n=%d", mode, n)
			y, check := guarded(make([]float32, n))
			mapSlice(backend.Tanh, 0, y, x)
			check(t, "tanh")
			for i, v := range x {
				checkTanh(t, what, v, y[i])
			}
			y, check = guarded(make([]float32, n))
			mapSlice(backend.GELUTanh, 0, y, x)
			check(t, "gelu_tanh")
			for i, v := range x {
				checkGELUTanh(t, what, v, y[i])
			}
			g := normals(r, n)
			d0 := normals(r, n)
			d, check := guarded(append([]float32(nil), d0...))
			geluTanhGrad(d, x, g, false)
			check(t, "gelu_tanh grad")
			for i, v := range x {
				checkGELUTanhGrad(t, what, v, d0[i], g[i], d[i])
			}
			set, check := guarded(make([]float32, n))
			for i := range set {
				set[i] = float32(math.NaN())
			}
			geluTanhGrad(set, x, g, true)
			check(t, "gelu_tanh grad set")
			add := make([]float32, n)
			geluTanhGrad(add, x, g, false)
			for i := range set {
				if !same(set[i], add[i]) {
					t.Fatalf("%s: gelu_tanh'(%v): set %v, added into zeros %v", what, x[i], set[i], add[i])
				}
			}
			if n > 0 { // through the backend, as the tensor package calls it
				yb, db := make([]float32, n), make([]float32, n)
				c.Map(backend.GELUTanh, 0, &Buf{D: yb}, &Buf{D: x})
				c.MapGrad(backend.GELUTanh, 0, &Buf{D: db}, &Buf{D: x}, &Buf{D: yb}, &Buf{D: g}, false)
				for i := range yb {
					if !same(db[i], add[i]) {
						t.Fatalf("%s: MapGrad gelu_tanh'(%v) = %v, geluTanhGrad %v", what, x[i], db[i], add[i])
					}
				}
			}
		}
		restore()
	}
	// The edges by name: tanh(±Inf) and beyond 9 is ±1 exactly, a denormal
	// or tiny x is x, ±0 keep their sign; GELUTanh(+Inf) = +Inf and
	// GELUTanh(-Inf) is NaN (0.5 x (1 + tanh u) = -Inf * 0); its gradient
	// is 1/2 at 0, 1 far right and at +Inf, 0 far left and at -Inf.
	for _, mode := range kernelModes() {
		restore := setKernels(mode)
		x := []float32{float32(math.Inf(1)), float32(math.Inf(-1)), 9.5, -12, 1e-40, -1e-30, float32(math.Copysign(0, -1)), 0, 100}
		y := make([]float32, len(x))
		mapSlice(backend.Tanh, 0, y, x)
		want := []float32{1, -1, 1, -1, 1e-40, -1e-30, float32(math.Copysign(0, -1)), 0, 1}
		for i := range x {
			if !same(y[i], want[i]) {
				t.Fatalf("%s: tanh(%v) = %v, want %v", mode, x[i], y[i], want[i])
			}
		}
		mapSlice(backend.GELUTanh, 0, y, x[:2])
		if !same(y[0], float32(math.Inf(1))) || !math.IsNaN(float64(y[1])) {
			t.Fatalf("%s: gelu_tanh(±Inf) = %v, %v", mode, y[0], y[1])
		}
		gx := []float32{0, 30, 1e15, float32(math.Inf(1)), -30, -1e13, float32(math.Inf(-1)), float32(math.NaN())}
		d := make([]float32, len(gx))
		geluTanhGrad(d, gx, []float32{1, 1, 1, 1, 1, 1, 1, 1}, true)
		if d[0] != 0.5 || d[1] != 1 || d[2] != 1 || d[3] != 1 || d[4] != 0 || d[5] != 0 || d[6] != 0 || !math.IsNaN(float64(d[7])) {
			t.Fatalf("%s: gelu_tanh' at %v: %v", mode, gx, d)
		}
		restore()
	}
}

// TestTanhGELUTanhPosition: with the AVX2 kernels a value's result does
// not depend on where it falls in a slice (the vector loop and the masked
// tail agree bit for bit), so the worker pool's split of a tensor cannot
// change it.
func TestTanhGELUTanhPosition(t *testing.T) {
	if !haveAVX2FMA {
		t.Skip("no AVX2 and FMA here")
	}
	restore := setKernels("avx2")
	defer restore()
	r := rand.New(rand.NewPCG(33, 34))
	n := 203
	x, g := normals(r, n), normals(r, n)
	for i := range x {
		x[i] *= 4
	}
	var whole [3][]float32
	for k, op := range []backend.Unary{backend.Tanh, backend.GELUTanh} {
		whole[k] = make([]float32, n)
		mapSlice(op, 0, whole[k], x)
	}
	whole[2] = make([]float32, n)
	geluTanhGrad(whole[2], x, g, true)
	for _, w := range []int{1, 7, 8, 9} {
		for i0 := 0; i0 < n; i0 += w {
			i1 := min(i0+w, n)
			part := make([]float32, i1-i0)
			for k, op := range []backend.Unary{backend.Tanh, backend.GELUTanh} {
				mapSlice(op, 0, part, x[i0:i1])
				for i := range part {
					if !same(part[i], whole[k][i0+i]) {
						t.Fatalf("op %d, x=%v: %v whole, %v in pieces of %d", op, x[i0+i], whole[k][i0+i], part[i], w)
					}
				}
			}
			geluTanhGrad(part, x[i0:i1], g[i0:i1], true)
			for i := range part {
				if !same(part[i], whole[2][i0+i]) {
					t.Fatalf("x=%v: gradient %v whole, %v in pieces of %d", x[i0+i], whole[2][i0+i], part[i], w)
				}
			}
		}
	}
}

// BenchmarkTanhGELUTanh: ns a value of Tanh, GELUTanh and its gradient
// on a 16,384-value row (64 KB, in L2), with the Go loops and with each
// kernel set this machine runs.
func BenchmarkTanhGELUTanh(b *testing.B) {
	r := rand.New(rand.NewPCG(35, 36))
	n := 16384
	x, g, d := normals(r, n), normals(r, n), make([]float32, n)
	for i := range x {
		x[i] *= 3
	}
	for _, mode := range kernelModes() {
		for _, fn := range []string{"tanh", "gelu_tanh", "gelu_tanh_grad"} {
			b.Run(mode+"/"+fn, func(b *testing.B) {
				restore := setKernels(mode)
				defer restore()
				for b.Loop() {
					switch fn {
					case "tanh":
						mapSlice(backend.Tanh, 0, d, x)
					case "gelu_tanh":
						mapSlice(backend.GELUTanh, 0, d, x)
					default:
						geluTanhGrad(d, x, g, true)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/value")
			})
		}
	}
}
