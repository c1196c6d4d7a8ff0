package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/golem-ml/golem/backend"
)

func relErr(got, want float64) float64 {
	if got == want {
		return 0
	}
	return math.Abs(got-want) / math.Max(math.Abs(want), 1e-30)
}

// vecInputs returns slices of every length up to 70 (all tail cases) and
// some long ones, with values spread over the range the kernels see.
func vecInputs(r *rand.Rand) [][]float32 {
	var out [][]float32
	for _, n := range []int{0, 1, 2, 7, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 70, 1000, 4097} {
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

func TestVecExp(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, x := range vecInputs(r) {
		m := maxf(x)
		var wantMax float32 = float32(math.Inf(-1))
		var want float64
		for _, v := range x {
			wantMax = max(wantMax, v)
		}
		if m != wantMax {
			t.Fatalf("n=%d: max %v want %v", len(x), m, wantMax)
		}
		for _, v := range x {
			want += math.Exp(float64(v - m))
		}
		y := make([]float32, len(x)+1)
		y[len(x)] = 42
		s := expSub(y, x, m, 0.5)
		if e := relErr(float64(s), want); e > 1e-5 {
			t.Errorf("n=%d: expSub sum %v want %v", len(x), s, want)
		}
		if y[len(x)] != 42 {
			t.Errorf("n=%d: expSub wrote past the end", len(x))
		}
		for i, v := range x {
			w := 0.5 * math.Exp(float64(v-m))
			if e := relErr(float64(y[i]), w); e > 1e-6 && math.Abs(float64(y[i])-w) > 1e-37 {
				t.Fatalf("n=%d: exp(%v) = %v want %v", len(x), v-m, y[i], w)
			}
		}
		if s2 := expSum(x, m); relErr(float64(s2), want) > 1e-5 {
			t.Errorf("n=%d: expSum %v want %v", len(x), s2, want)
		}
	}
	// Special values: e^-inf = 0, e^+inf = +inf, NaN stays NaN, extremes.
	x := []float32{float32(math.Inf(-1)), float32(math.Inf(1)), float32(math.NaN()), -200, 200, 0, -87, 88}
	y := make([]float32, len(x))
	expSub(y, x, 0, 1)
	if y[0] != 0 || !math.IsInf(float64(y[1]), 1) || !math.IsNaN(float64(y[2])) || y[3] != 0 || !math.IsInf(float64(y[4]), 1) || y[5] != 1 {
		t.Errorf("special values: %v", y)
	}
	if relErr(float64(y[6]), math.Exp(-87)) > 1e-5 || relErr(float64(y[7]), math.Exp(88)) > 1e-5 {
		t.Errorf("extremes: %v", y[6:])
	}
}

func TestVecGELU(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, x := range vecInputs(r) {
		y := make([]float32, len(x))
		gelu(y, x)
		dy := make([]float32, len(x))
		dx := make([]float32, len(x))
		for i := range dy {
			dy[i] = float32(r.NormFloat64())
			dx[i] = 0.25
		}
		geluGrad(dx, x, dy)
		for i, v := range x {
			xf := float64(v)
			cdf := 0.5 * math.Erfc(-xf/math.Sqrt2)
			want := xf * cdf
			if e := math.Abs(float64(y[i]) - want); e > 1e-6*math.Abs(want)+1e-30 && e > 3e-5*math.Abs(want) {
				t.Fatalf("gelu(%v) = %v want %v", v, y[i], want)
			}
			g := cdf + xf*math.Exp(-0.5*xf*xf)/math.Sqrt(2*math.Pi)
			wg := 0.25 + float64(dy[i])*g
			if e := math.Abs(float64(dx[i]) - wg); e > 1e-5*(math.Abs(wg)+math.Abs(float64(dy[i]))) {
				t.Fatalf("gelu'(%v): dx %v want %v", v, dx[i], wg)
			}
		}
	}
}

// TestVecMatchesGo checks the assembly kernels against the Go loops.
func TestVecMatchesGo(t *testing.T) {
	if !haveVec {
		t.Skip("no AVX-512 here (vec256_test.go tests the AVX2 kernels)")
	}
	r := rand.New(rand.NewPCG(7, 8))
	for _, x := range vecInputs(r) {
		y1, y2 := make([]float32, len(x)), make([]float32, len(x))
		gelu(y1, x)
		for i, v := range x {
			y2[i] = v * phif(v)
		}
		for i := range x {
			if relErr(float64(y1[i]), float64(y2[i])) > 5e-5 && math.Abs(float64(y1[i]-y2[i])) > 1e-30 {
				t.Fatalf("gelu(%v): asm %v go %v", x[i], y1[i], y2[i])
			}
		}
	}
}

func BenchmarkVecGELU(b *testing.B) {
	x := make([]float32, 4096)
	for i := range x {
		x[i] = float32(i%200)/20 - 5
	}
	y := make([]float32, 4096)
	b.SetBytes(4 * 4096)
	for b.Loop() {
		gelu(y, x)
	}
}

func BenchmarkVecExpSub(b *testing.B) {
	x := make([]float32, 4096)
	for i := range x {
		x[i] = float32(i%200)/20 - 5
	}
	b.SetBytes(4 * 4096)
	for b.Loop() {
		expSub(x[:0], x[:0], 0, 1)
		expSum(x, 3)
	}
}

func TestVecAxpyDot(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, x := range vecInputs(r) {
		y := make([]float32, len(x)+1)
		want := make([]float64, len(x))
		var wd float64
		for i := range x {
			y[i] = float32(r.NormFloat64())
			want[i] = float64(y[i]) + 1.5*float64(x[i])
			wd += float64(x[i]) * float64(y[i])
		}
		d := dot(x, y)
		if math.Abs(float64(d)-wd) > 1e-4*(1+math.Abs(wd))+1e-5*float64(len(x)) {
			t.Errorf("n=%d: dot %v want %v", len(x), d, wd)
		}
		y[len(x)] = 7
		axpy(y[:len(x)], x, 1.5)
		for i := range x {
			if math.Abs(float64(y[i])-want[i]) > 1e-5*(1+math.Abs(want[i])) {
				t.Fatalf("n=%d: axpy[%d] %v want %v", len(x), i, y[i], want[i])
			}
		}
		if y[len(x)] != 7 {
			t.Errorf("n=%d: axpy wrote past the end", len(x))
		}
	}
}

// TestVecLayerNorm checks the assembly LayerNorm rows against the Go ones.
func TestVecLayerNorm(t *testing.T) {
	if !haveVec {
		t.Skip("no AVX-512 here (vec256_test.go tests the AVX2 kernels)")
	}
	r := rand.New(rand.NewPCG(11, 12))
	for _, x := range vecInputs(r) {
		n := len(x)
		if n == 0 {
			continue
		}
		w, b, g := normals(r, n), normals(r, n), normals(r, n)
		for _, affine := range []bool{false, true} {
			ws, bs := w, b
			if !affine {
				ws, bs = nil, nil
			}
			y1, y2 := make([]float32, n), make([]float32, n)
			m1, r1 := layerNormRow(y1, x, ws, bs, 1e-5)
			haveVec = false
			m2, r2 := layerNormRow(y2, x, ws, bs, 1e-5)
			dx2, pw2, pb2 := make([]float32, n), make([]float32, n), make([]float32, n)
			layerNormGradRow(dx2, x, g, ws, pw2, pb2, m2, r2)
			haveVec = true
			dx1, pw1, pb1 := make([]float32, n), make([]float32, n), make([]float32, n)
			layerNormGradRow(dx1, x, g, ws, pw1, pb1, m1, r1)
			if relErr(float64(m1), float64(m2)) > 1e-4 && math.Abs(float64(m1-m2)) > 1e-5 || relErr(float64(r1), float64(r2)) > 1e-4 {
				t.Fatalf("n=%d: mean/rstd %v %v, Go %v %v", n, m1, r1, m2, r2)
			}
			for _, c := range []struct {
				name string
				a, b []float32
			}{{"y", y1, y2}, {"dx", dx1, dx2}, {"dw", pw1, pw2}, {"db", pb1, pb2}} {
				for i := range c.a {
					if math.Abs(float64(c.a[i]-c.b[i])) > 1e-4*(1+math.Abs(float64(c.b[i]))) {
						t.Fatalf("n=%d affine=%v: %s[%d] = %v, Go %v", n, affine, c.name, i, c.a[i], c.b[i])
					}
				}
			}
		}
	}
}

// TestVecAdamW checks the assembly AdamW step against the Go one.
func TestVecAdamW(t *testing.T) {
	if !haveVec {
		t.Skip("no AVX-512 here (vec256_test.go tests the AVX2 kernels)")
	}
	r := rand.New(rand.NewPCG(13, 14))
	h := backend.AdamW{LR: 1e-3, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1, Step: 3}
	for _, x := range vecInputs(r) {
		n := len(x)
		g, m, v := normals(r, n), normals(r, n), normals(r, n)
		for i := range v {
			v[i] *= v[i]
		}
		p1, m1, v1 := append([]float32(nil), x...), append([]float32(nil), m...), append([]float32(nil), v...)
		p2, m2, v2 := append([]float32(nil), x...), append([]float32(nil), m...), append([]float32(nil), v...)
		adamw(h, p1, g, m1, v1)
		haveVec = false
		adamw(h, p2, g, m2, v2)
		haveVec = true
		for i := range p1 {
			if math.Abs(float64(p1[i]-p2[i])) > 1e-6*(1+math.Abs(float64(p2[i]))) || math.Abs(float64(m1[i]-m2[i])) > 1e-6 || math.Abs(float64(v1[i]-v2[i])) > 1e-6*(1+float64(v2[i])) {
				t.Fatalf("n=%d [%d]: p %v m %v v %v, Go %v %v %v", n, i, p1[i], m1[i], v1[i], p2[i], m2[i], v2[i])
			}
		}
	}
}

// The SiLU kernel against float64 and the Go loop.
func TestVecSiLU(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, x := range vecInputs(r) {
		y := make([]float32, len(x))
		mapSlice(backend.SiLU, 0, y, x)
		for i, v := range x {
			xf := float64(v)
			want := xf / (1 + math.Exp(-xf))
			if e := math.Abs(float64(y[i]) - want); e > 3e-6*math.Abs(want)+1e-30 {
				t.Fatalf("silu(%v) = %v want %v", v, y[i], want)
			}
			if g := v * sigmoidf(v); relErr(float64(y[i]), float64(g)) > 5e-6 && math.Abs(float64(y[i]-g)) > 1e-30 {
				t.Fatalf("silu(%v): %v, Go loop %v", v, y[i], g)
			}
		}
	}
}

// TestReLUGradBranchFree checks the branch-free ReLU gradient against its
// definition (g where x > 0) on the values at its edges: both zeros,
// denormals, infinities, NaNs, and random values (1,012 of them: a
// vector's tail of 4), with AVX-512 (vrelugrad) and in Go.
func TestReLUGradBranchFree(t *testing.T) {
	for _, mode := range kernelModes() {
		restore := setKernels(mode)
		testReLUGrad(t)
		restore()
	}
}

func testReLUGrad(t *testing.T) {
	x := []float32{0, float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), math.Float32frombits(0xffc00000),
		math.MaxFloat32, -math.MaxFloat32, 1, -1}
	r := rand.New(rand.NewPCG(7, 8))
	for range 1000 {
		x = append(x, float32(r.NormFloat64()))
	}
	g, d, want := make([]float32, len(x)), make([]float32, len(x)), make([]float32, len(x))
	for i := range x {
		g[i] = float32(r.NormFloat64())
		d[i] = float32(r.NormFloat64())
		want[i] = d[i]
		if x[i] > 0 {
			want[i] += g[i]
		}
	}
	reluGrad(d, x, g)
	for i := range x {
		if d[i] != want[i] {
			t.Fatalf("avx512 %v avx2 %v: x=%v g=%v: got %v, want %v", haveVec, haveVec256, x[i], g[i], d[i], want[i])
		}
	}
}

// TestReLUVectorMatchesGo checks ReLU with AVX-512 (vrelu) against Go's
// max(x, 0), bit for bit, on the values at its edges (both zeros: -0
// gives +0; denormals, infinities, NaNs: NaN stays NaN) and random ones
// (1,012: a vector's tail of 4).
func TestReLUVectorMatchesGo(t *testing.T) {
	if !haveVec {
		t.Skip("no AVX-512 here: only the Go loop runs")
	}
	x := []float32{0, float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), math.Float32frombits(0xffc00000),
		math.MaxFloat32, -math.MaxFloat32, 1, -1}
	r := rand.New(rand.NewPCG(9, 10))
	for range 1000 {
		x = append(x, float32(r.NormFloat64()))
	}
	for _, n := range []int{len(x), 16, 5, 1} {
		got := make([]float32, n)
		mapSlice(backend.ReLU, 0, got, x[:n])
		for i, v := range x[:n] {
			want := max(v, 0)
			if math.Float32bits(got[i]) != math.Float32bits(want) && !(want != want && got[i] != got[i]) {
				t.Fatalf("n=%d: ReLU(%v) is %v (bits %#x) with AVX-512, %v (bits %#x) in Go",
					n, v, got[i], math.Float32bits(got[i]), want, math.Float32bits(want))
			}
		}
	}
}

// BenchmarkReLU: one pass over 1M values, with AVX-512 and in Go.
func BenchmarkReLU(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 1 << 20
	x, y := make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	for _, vec := range []bool{true, false} {
		b.Run(map[bool]string{true: "vector", false: "go"}[vec], func(b *testing.B) {
			if vec && !haveVec && !haveVec256 {
				b.Skip("no vector kernels")
			}
			old, old2 := haveVec, haveVec256
			haveVec, haveVec256 = vec && haveVec, vec && haveVec256
			defer func() { haveVec, haveVec256 = old, old2 }()
			for range b.N {
				mapSlice(backend.ReLU, 0, y, x)
			}
		})
	}
}

// BenchmarkReLUGrad: one pass over 1M values, with AVX-512 and in Go.
func BenchmarkReLUGrad(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 1 << 20
	x, g, d := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range x {
		x[i], g[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
	}
	for _, vec := range []bool{true, false} {
		b.Run(map[bool]string{true: "vector", false: "go"}[vec], func(b *testing.B) {
			if vec && !haveVec && !haveVec256 {
				b.Skip("no vector kernels")
			}
			old, old2 := haveVec, haveVec256
			haveVec, haveVec256 = vec && haveVec, vec && haveVec256
			defer func() { haveVec, haveVec256 = old, old2 }()
			for range b.N {
				reluGrad(d, x, g)
			}
		})
	}
}

// scal and softmaxGrad (softmax's normalization and attention's dS) give
// the Go loops' values bit for bit, tails included, and write nothing
// past the slice; the Go loops are the expressions they replaced in the
// attention kernels.
func TestVecScalSoftmaxGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, x := range vecInputs(r) {
		n := len(x)
		p := make([]float32, n)
		for i := range p {
			p[i] = r.Float32()
		}
		got := append(append([]float32(nil), x...), 7)
		scal(got[:n], 0.37)
		for i, v := range x {
			if w := v * 0.37; math.Float32bits(got[i]) != math.Float32bits(w) {
				t.Fatalf("n=%d: scal[%d] = %v, want %v", n, i, got[i], w)
			}
		}
		if got[n] != 7 {
			t.Fatalf("n=%d: scal wrote past the end", n)
		}
		got = append(append([]float32(nil), x...), 7)
		s, scale := float32(0.61), float32(0.125)
		softmaxGrad(got[:n], p, s, scale)
		for i, v := range x {
			if w := p[i] * (v - s) * scale; math.Float32bits(got[i]) != math.Float32bits(w) {
				t.Fatalf("n=%d: softmaxGrad[%d] = %v, want %v", n, i, got[i], w)
			}
		}
		if got[n] != 7 {
			t.Fatalf("n=%d: wrote past the end", n)
		}
	}
}

// GELU and its gradient take two vectors a step (PHI2, GELUGRAD2) and
// one for the rest: both give the same values, bit for bit, so a value
// does not depend on where it falls in its slice (each value of a long
// slice equals that of a 16-value slice holding it).
func TestVecGELUTwoAStep(t *testing.T) {
	if !haveVec {
		t.Skip("no AVX-512 here (vec256_test.go tests the AVX2 kernels)")
	}
	r := rand.New(rand.NewPCG(13, 14))
	n := 4096 + 48 + 5
	x, dy := make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * 3)
		dy[i] = float32(r.NormFloat64())
	}
	x[40], x[41], x[42], x[43] = float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 0
	y, dx := make([]float32, n), make([]float32, n)
	gelu(y, x)
	geluGrad(dx, x, dy)
	// Set, over values that are not zeros: what adding into zeros gives.
	set := make([]float32, n)
	for i := range set {
		set[i] = float32(math.NaN())
	}
	geluGradSet(set, x, dy)
	for i := range set {
		if math.Float32bits(set[i]) != math.Float32bits(dx[i]) {
			t.Fatalf("x=%v: gradient set %v, added into zeros %v", x[i], set[i], dx[i])
		}
	}
	for i0 := 0; i0 < n; i0 += 16 {
		i1 := min(i0+16, n)
		y1, dx1 := make([]float32, i1-i0), make([]float32, i1-i0)
		gelu(y1, x[i0:i1])
		geluGrad(dx1, x[i0:i1], dy[i0:i1])
		for i := range y1 {
			if math.Float32bits(y1[i]) != math.Float32bits(y[i0+i]) || math.Float32bits(dx1[i]) != math.Float32bits(dx[i0+i]) {
				t.Fatalf("x=%v: gelu %v, %v alone; gradient %v, %v alone", x[i0+i], y[i0+i], y1[i], dx[i0+i], dx1[i])
			}
		}
	}
}
