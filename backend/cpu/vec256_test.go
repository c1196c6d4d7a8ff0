package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/golem-ml/golem/backend"
)

// vecAtInit is haveVec as the machine set it, before tests change it.
var vecAtInit = haveVec

// kernelModes lists the kernel sets this machine can run: "go" (the Go
// loops), "avx512" (vec_amd64.s) and "avx2" (vec256_amd64.s, which AVX-512
// machines run too when forced).
func kernelModes() []string {
	m := []string{"go"}
	if vecAtInit {
		m = append(m, "avx512")
	}
	if haveAVX2FMA {
		m = append(m, "avx2")
	}
	return m
}

// setKernels selects a kernel set of kernelModes and returns what undoes it.
func setKernels(mode string) (restore func()) {
	v, v2 := haveVec, haveVec256
	haveVec, haveVec256 = mode == "avx512", mode == "avx2"
	return func() { haveVec, haveVec256 = v, v2 }
}

// vec256Lens are lengths that reach every tail of the AVX2 kernels: 0,
// a partial vector, one vector, one and two plus a partial, the two-
// and four-vector loops with each remainder, and long rows.
var vec256Lens = []int{0, 1, 2, 7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 32, 33, 39, 40, 47, 63, 64, 65, 100, 1000, 4097}

func vec256Inputs(r *rand.Rand) [][]float32 {
	var out [][]float32
	for _, n := range vec256Lens {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64() * 4)
			if r.IntN(10) == 0 {
				x[i] *= 10
			}
		}
		out = append(out, x)
	}
	return out
}

// withAVX2 runs f with the AVX2 kernels forced and again with the Go
// loops, or skips where the machine has no AVX2 and FMA.
func withAVX2(t *testing.T, f func(avx2 bool)) {
	t.Helper()
	if !haveAVX2FMA {
		t.Skip("no AVX2 and FMA here")
	}
	for _, mode := range []string{"avx2", "go"} {
		restore := setKernels(mode)
		f(mode == "avx2")
		restore()
	}
}

// guarded returns a copy of x with a sentinel after it, and checks it.
func guarded(x []float32) ([]float32, func(t *testing.T, what string)) {
	g := append(append(make([]float32, 0, len(x)+1), x...), 12345)
	return g[:len(x)], func(t *testing.T, what string) {
		t.Helper()
		if g[len(x)] != 12345 {
			t.Fatalf("n=%d: %s wrote past the end", len(x), what)
		}
	}
}

func same(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || a != a && b != b
}

// TestVec256Exp: expSub, expSum and maxf with AVX2 against the Go loops,
// with TestVecExp's tolerances (the polynomials differ in their range
// reduction: Go's Cody-Waite in two roundings, EXP256's two FMAs), and
// the special values.
func TestVec256Exp(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	ins := vec256Inputs(r)
	type res struct {
		m, s, s2 float32
		y        []float32
	}
	var got [2][]res
	withAVX2(t, func(avx2 bool) {
		k := map[bool]int{true: 0, false: 1}[avx2]
		for _, x := range ins {
			m := maxf(x)
			y, check := guarded(make([]float32, len(x)))
			s := expSub(y, x, m, 0.5)
			check(t, "expSub")
			got[k] = append(got[k], res{m, s, expSum(x, m), y})
		}
	})
	for i, x := range ins {
		a, g := got[0][i], got[1][i]
		if !same(a.m, g.m) {
			t.Fatalf("n=%d: max %v, Go %v", len(x), a.m, g.m)
		}
		if relErr(float64(a.s), float64(g.s)) > 1e-5 || relErr(float64(a.s2), float64(g.s2)) > 1e-5 {
			t.Fatalf("n=%d: sums %v %v, Go %v %v", len(x), a.s, a.s2, g.s, g.s2)
		}
		for j := range x {
			if relErr(float64(a.y[j]), float64(g.y[j])) > 1e-6 && math.Abs(float64(a.y[j]-g.y[j])) > 1e-37 {
				t.Fatalf("n=%d: exp(%v) %v, Go %v", len(x), x[j]-a.m, a.y[j], g.y[j])
			}
		}
	}
	// Special values in every lane of a vector and of a tail, e^x near
	// the denormal and overflow edges (2^n scaled in two steps).
	sp := []float32{float32(math.Inf(-1)), float32(math.Inf(1)), float32(math.NaN()), -200, 200, 0, -87, 88,
		-88.5, 88.7, -100, -103.5, -95, 1e-8, -1e-8, 0.5}
	restore := setKernels("avx2")
	defer restore()
	for off := range 8 {
		x := append(make([]float32, off), sp...)
		y := make([]float32, len(x))
		expSub(y, x, 0, 1)
		for i, v := range x {
			w := expf(v)
			if !same(y[i], w) && relErr(float64(y[i]), float64(w)) > 1e-6 && math.Abs(float64(y[i]-w)) > 1e-37 {
				t.Fatalf("offset %d: exp(%v) = %v, Go %v", off, v, y[i], w)
			}
		}
		if m := maxf(x[:len(x)-1]); !same(m, float32(math.Inf(1))) && m == m {
			t.Fatalf("max of %v: %v", x, m)
		}
	}
}

// TestVec256GELU: GELU and its gradient with AVX2 against the Go loops
// (TestVecMatchesGo's 5e-5 relative for GELU, TestVecGELU's 1e-5 of
// |dx|+|dy| for the gradient); the set form equals adding into zeros bit
// for bit, and a value does not depend on where it falls in a slice (the
// two-vector loop, the one-vector step and the masked tail agree).
func TestVec256GELU(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	ins := vec256Inputs(r)
	sp := []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 0, float32(math.Copysign(0, -1)), -30, 30, 1e-20}
	ins = append(ins, sp)
	var ys, dxs [2][][]float32
	withAVX2(t, func(avx2 bool) {
		k := map[bool]int{true: 0, false: 1}[avx2]
		r := rand.New(rand.NewPCG(1, 1))
		for _, x := range ins {
			y, check := guarded(make([]float32, len(x)))
			gelu(y, x)
			check(t, "gelu")
			dy := normals(r, len(x))
			dx, check2 := guarded(make([]float32, len(x)))
			for i := range dx {
				dx[i] = 0.25
			}
			geluGrad(dx, x, dy)
			check2(t, "geluGrad")
			ys[k], dxs[k] = append(ys[k], y), append(dxs[k], dx)
		}
	})
	r2 := rand.New(rand.NewPCG(1, 1))
	for i, x := range ins {
		dy := normals(r2, len(x))
		for j, v := range x {
			a, g := ys[0][i][j], ys[1][i][j]
			if !same(a, g) && relErr(float64(a), float64(g)) > 5e-5 && math.Abs(float64(a-g)) > 1e-30 {
				t.Fatalf("gelu(%v): avx2 %v, Go %v", v, a, g)
			}
			a, g = dxs[0][i][j], dxs[1][i][j]
			if !same(a, g) && math.Abs(float64(a-g)) > 1e-5*(math.Abs(float64(g))+math.Abs(float64(dy[j]))) {
				t.Fatalf("gelu'(%v): dx avx2 %v, Go %v", v, a, g)
			}
		}
	}
	restore := setKernels("avx2")
	defer restore()
	n := 4096 + 24 + 5
	x, dy := normals(r, n), normals(r, n)
	for i := range x {
		x[i] *= 3
	}
	copy(x[40:], sp)
	y, dx := make([]float32, n), make([]float32, n)
	gelu(y, x)
	geluGrad(dx, x, dy)
	set := make([]float32, n)
	for i := range set {
		set[i] = float32(math.NaN())
	}
	geluGradSet(set, x, dy)
	for i := range set {
		if !same(set[i], dx[i]) {
			t.Fatalf("x=%v: gradient set %v, added into zeros %v", x[i], set[i], dx[i])
		}
	}
	for _, w := range []int{1, 7, 8, 9} {
		for i0 := 0; i0 < n; i0 += w {
			i1 := min(i0+w, n)
			y1, dx1 := make([]float32, i1-i0), make([]float32, i1-i0)
			gelu(y1, x[i0:i1])
			geluGrad(dx1, x[i0:i1], dy[i0:i1])
			for i := range y1 {
				if !same(y1[i], y[i0+i]) || !same(dx1[i], dx[i0+i]) {
					t.Fatalf("x=%v: gelu %v, %v in %d; gradient %v, %v in %d", x[i0+i], y[i0+i], y1[i], w, dx[i0+i], dx1[i], w)
				}
			}
		}
	}
}

// TestVec256Elementwise: the kernels whose arithmetic is Go's, op for op,
// match it bit for bit with AVX2 (scal, softmaxGrad, ReLU and its
// gradient, the interleave); axpy, dot and SiLU (FMA or another exp) to
// TestVecAxpyDot's and TestVecSiLU's tolerances; none writes past n.
func TestVec256Elementwise(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	ins := vec256Inputs(r)
	edge := []float32{0, float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), math.Float32frombits(0xffc00000), 1, -1}
	ins = append(ins, edge)
	type out struct{ scal, soft, relu, rgrad, silu, axpy, ilv, ilvAcc []float32 }
	var o [2][]out
	var dots [2][]float32
	withAVX2(t, func(avx2 bool) {
		k := map[bool]int{true: 0, false: 1}[avx2]
		r := rand.New(rand.NewPCG(2, 2))
		for _, x := range ins {
			n := len(x)
			p, g, d := normals(r, n), normals(r, n), normals(r, n)
			if n > 0 {
				d[0] = float32(math.Copysign(0, -1)) // d keeps -0 where x <= 0
			}
			var v out
			var c func(*testing.T, string)
			v.scal, c = guarded(x)
			scal(v.scal, 0.37)
			c(t, "scal")
			v.soft, c = guarded(x)
			softmaxGrad(v.soft, p, 0.61, 0.125)
			c(t, "softmaxGrad")
			v.relu, c = guarded(make([]float32, n))
			mapSlice(backend.ReLU, 0, v.relu, x)
			c(t, "relu")
			v.rgrad, c = guarded(d)
			reluGrad(v.rgrad, x, g)
			c(t, "reluGrad")
			v.silu, c = guarded(make([]float32, n))
			mapSlice(backend.SiLU, 0, v.silu, x)
			c(t, "silu")
			v.axpy, c = guarded(d)
			axpy(v.axpy, x, 1.5)
			c(t, "axpy")
			dots[k] = append(dots[k], dot(x, g))
			if n > 0 {
				v.ilv, c = guarded(make([]float32, 2*n))
				ilv(v.ilv, x, g, false)
				c(t, "interleave")
				v.ilvAcc, c = guarded(append(append([]float32(nil), d...), p...))
				ilv(v.ilvAcc, x, g, true)
				c(t, "interleave acc")
			}
			o[k] = append(o[k], v)
		}
	})
	for i, x := range ins {
		a, g := o[0][i], o[1][i]
		for _, c := range []struct {
			name string
			a, g []float32
			tol  float64
		}{{"scal", a.scal, g.scal, 0}, {"softmaxGrad", a.soft, g.soft, 0}, {"relu", a.relu, g.relu, 0},
			{"reluGrad", a.rgrad, g.rgrad, 0}, {"silu", a.silu, g.silu, 5e-6}, {"axpy", a.axpy, g.axpy, 1e-6},
			{"interleave", a.ilv, g.ilv, 0}, {"interleave acc", a.ilvAcc, g.ilvAcc, 0}} {
			for j := range c.a {
				if same(c.a[j], c.g[j]) {
					continue
				}
				if c.name == "reluGrad" && c.a[j] == c.g[j] {
					continue // Go's loop adds +0 where x <= 0, turning a -0 in d into +0; the kernels keep d
				}
				if c.name == "axpy" && math.Abs(float64(c.a[j]-c.g[j])) <= 1e-5*(1+math.Abs(float64(c.g[j]))) {
					continue // one FMA against Go's two roundings: TestVecAxpyDot's bound
				}
				if c.tol == 0 || relErr(float64(c.a[j]), float64(c.g[j])) > c.tol && math.Abs(float64(c.a[j]-c.g[j])) > 1e-30 {
					t.Fatalf("n=%d: %s[%d] (x=%v): avx2 %v (%#x), Go %v (%#x)", len(x), c.name, j, x[j%len(x)],
						c.a[j], math.Float32bits(c.a[j]), c.g[j], math.Float32bits(c.g[j]))
				}
			}
		}
		if d := math.Abs(float64(dots[0][i] - dots[1][i])); d > 1e-4*(1+math.Abs(float64(dots[1][i])))+1e-5*float64(len(x)) && !(dots[0][i] != dots[0][i]) {
			t.Fatalf("n=%d: dot avx2 %v, Go %v", len(x), dots[0][i], dots[1][i])
		}
	}
}

// ilv runs the interleave kernel of the kernel set in use (permuteShort's
// two runs), or its Go definition.
func ilv(d, a, b []float32, acc bool) {
	n := len(a)
	switch {
	case haveVec:
		vinterleave2(&d[0], &a[0], &b[0], n, acc)
	case haveVec256:
		vinterleave2256(&d[0], &a[0], &b[0], n, acc)
	default:
		for i := range n {
			if acc {
				d[2*i] += a[i]
				d[2*i+1] += b[i]
			} else {
				d[2*i], d[2*i+1] = a[i], b[i]
			}
		}
	}
}

// TestVec256LayerNormAdamW: LayerNorm's rows (forward and backward, with
// and without the affine) and AdamW with AVX2 against Go, with
// TestVecLayerNorm's and TestVecAdamW's tolerances; vaxpy4256 against its
// definition (four FMAs in order against Go's four roundings: 1e-5).
func TestVec256LayerNormAdamW(t *testing.T) {
	if !haveAVX2FMA {
		t.Skip("no AVX2 and FMA here")
	}
	r := rand.New(rand.NewPCG(27, 28))
	h := backend.AdamW{LR: 1e-3, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1, Step: 3}
	for _, x := range vec256Inputs(r) {
		n := len(x)
		w, b, g := normals(r, n), normals(r, n), normals(r, n)
		for _, affine := range []bool{false, true} {
			ws, bs := w, b
			if !affine {
				ws, bs = nil, nil
			}
			var y, dx, pw, pb [2][]float32
			var m, rs [2]float32
			for _, mode := range []string{"go", "avx2"} { // Go's mean and rstd for both gradients
				k := map[string]int{"avx2": 0, "go": 1}[mode]
				restore := setKernels(mode)
				var c1, c2, c3, c4 func(*testing.T, string)
				y[k], c1 = guarded(make([]float32, n))
				m[k], rs[k] = layerNormRow(y[k], x, ws, bs, 1e-5)
				dx[k], c2 = guarded(make([]float32, n))
				pw[k], c3 = guarded(make([]float32, n))
				pb[k], c4 = guarded(make([]float32, n))
				layerNormGradRow(dx[k], x, g, ws, pw[k], pb[k], m[1], rs[1])
				for _, c := range []func(*testing.T, string){c1, c2, c3, c4} {
					c(t, "layerNorm "+mode)
				}
				restore()
			}
			if n > 0 && (relErr(float64(m[0]), float64(m[1])) > 1e-4 && math.Abs(float64(m[0]-m[1])) > 1e-5 || relErr(float64(rs[0]), float64(rs[1])) > 1e-4) {
				t.Fatalf("n=%d: mean/rstd %v %v, Go %v %v", n, m[0], rs[0], m[1], rs[1])
			}
			for _, c := range []struct {
				name string
				a, b []float32
			}{{"y", y[0], y[1]}, {"dx", dx[0], dx[1]}, {"dw", pw[0], pw[1]}, {"db", pb[0], pb[1]}} {
				for i := range c.a {
					if math.Abs(float64(c.a[i]-c.b[i])) > 1e-4*(1+math.Abs(float64(c.b[i]))) {
						t.Fatalf("n=%d affine=%v: %s[%d] = %v, Go %v", n, affine, c.name, i, c.a[i], c.b[i])
					}
				}
			}
			// No dx: the parameter gradients alone.
			restore := setKernels("avx2")
			pw2, pb2 := make([]float32, n), make([]float32, n)
			layerNormGradRow(nil, x, g, ws, pw2, pb2, m[1], rs[1])
			restore()
			for i := range pw2 {
				if !same(pw2[i], pw[0][i]) || !same(pb2[i], pb[0][i]) {
					t.Fatalf("n=%d: without dx, dw/db [%d] %v %v, with %v %v", n, i, pw2[i], pb2[i], pw[0][i], pb[0][i])
				}
			}
		}
		gm, mm, vm := normals(r, n), normals(r, n), normals(r, n)
		for i := range vm {
			vm[i] *= vm[i]
		}
		var p, mo, vo [2][]float32
		for k, mode := range []string{"avx2", "go"} {
			restore := setKernels(mode)
			var c1, c2, c3 func(*testing.T, string)
			p[k], c1 = guarded(x)
			mo[k], c2 = guarded(mm)
			vo[k], c3 = guarded(vm)
			adamw(h, p[k], gm, mo[k], vo[k])
			c1(t, "adamw p")
			c2(t, "adamw m")
			c3(t, "adamw v")
			restore()
		}
		for i := range p[0] {
			if math.Abs(float64(p[0][i]-p[1][i])) > 1e-6*(1+math.Abs(float64(p[1][i]))) || math.Abs(float64(mo[0][i]-mo[1][i])) > 1e-6 || math.Abs(float64(vo[0][i]-vo[1][i])) > 1e-6*(1+float64(vo[1][i])) {
				t.Fatalf("n=%d [%d]: p %v m %v v %v, Go %v %v %v", n, i, p[0][i], mo[0][i], vo[0][i], p[1][i], mo[1][i], vo[1][i])
			}
		}
		// vaxpy4256 over 4 rows of ldb = n+3.
		if n == 0 {
			continue
		}
		ldb := n + 3
		bm := normals(r, 3*ldb+n)
		xs := [4]float32{0.5, -1.25, 2, 0.125}
		c, check := guarded(normals(r, n))
		want := make([]float64, n)
		for j := range want {
			want[j] = float64(c[j])
			for q := range 4 {
				want[j] += float64(xs[q]) * float64(bm[q*ldb+j])
			}
		}
		vaxpy4256(&c[0], &bm[0], ldb, n, &xs)
		check(t, "vaxpy4256")
		for j := range want {
			if math.Abs(float64(c[j])-want[j]) > 1e-5*(1+math.Abs(want[j])) {
				t.Fatalf("n=%d: vaxpy4256[%d] = %v, want %v", n, j, c[j], want[j])
			}
		}
	}
}
