package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/golem-ml/golem/backend"
)

// wg2Geoms are 4x4 stride-2 geometries: vqvae-32's encoder layer, odd
// outputs, paddings 0 to 3, channels with a masked tail (5, 3, 33, 20),
// batch 1 and 3.
func wg2Geoms() []backend.Conv2D {
	gs := []backend.Conv2D{
		{N: 2, C: 16, H: 16, W: 16, K: 24, PH: 1, PW: 1},
		{N: 3, C: 5, H: 7, W: 7, K: 3, PH: 1, PW: 1},
		{N: 1, C: 33, H: 9, W: 6, K: 4, PH: 0, PW: 0},
		{N: 3, C: 3, H: 5, W: 8, K: 20, PH: 2, PW: 2},
		{N: 1, C: 20, H: 4, W: 5, K: 9, PH: 3, PW: 3},
		{N: 2, C: 1, H: 2, W: 2, K: 1, PH: 1, PW: 1},
	}
	for i := range gs {
		g := &gs[i]
		g.KH, g.KW, g.SH, g.SW, g.DH, g.DW, g.Groups = 4, 4, 2, 2, 1, 1, 1
		g.OH, g.OW = (g.H+2*g.PH-4)/2+1, (g.W+2*g.PW-4)/2+1
	}
	return gs
}

// wg2Bound is the error TestWinogradS2Convolution allows tile m, relative
// to the sum of the magnitudes of an output's (or a gradient's) products:
// 2^-18 for F(2x2, 2x2), whose transforms only add, each transformed value
// a sum of up to 4 rounded in float32, so a transformed product's rounding
// is up to 16x one of the direct convolution's products (measured worst:
// logged, about 1.2e-6 for dx). F(4x4, 2x2)'s transforms' magnitudes
// (|A^T| |G| |B^T| summed over an output's products: 205 in 2-D against
// F(2x2, 2x2)'s 9) are 23x larger, so its bound is 2^-18 * 32 = 2^-13
// (measured worst: 4e-6, a weight gradient).
func wg2Bound(m int) float64 {
	if m == 4 {
		return 1.0 / (1 << 13)
	}
	return 1.0 / (1 << 18)
}

// TestWinogradS2Convolution computes 4x4 stride-2 convolutions through
// the six transforms of each tile (the transformed products summed in
// float64) and checks them against the definition in float64, with the
// AVX2 tile kernels and with Go's: forward, input gradient and weight
// gradient, each within wg2Bound of the sum of its products' magnitudes.
func TestWinogradS2Convolution(t *testing.T) {
	levels := []bool{false}
	if haveAVX2FMA {
		levels = append(levels, true)
	}
	c := New()
	for gi, g := range wg2Geoms() {
		r := rand.New(rand.NewPCG(81, uint64(gi)))
		C4 := 4 * g.C
		x, w, dy := randBuf(c, r, g.N*g.C*g.H*g.W), randBuf(c, r, g.K*g.C*16), randBuf(c, r, g.N*g.K*g.OH*g.OW)
		bias := randBuf(c, r, g.K)
		xs, ws, dys, bs := f(x), f(w), f(dy), f(bias)
		// the definition, and the magnitudes
		L := g.OH * g.OW
		y64, ys := make([]float64, g.N*g.K*L), make([]float64, g.N*g.K*L)
		dx64, dxs := make([]float64, len(xs)), make([]float64, len(xs))
		dw64, dws := make([]float64, len(ws)), make([]float64, len(ws))
		for n := range g.N {
			for k := range g.K {
				for oh := range g.OH {
					for ow := range g.OW {
						o := (n*g.K+k)*L + oh*g.OW + ow
						y64[o], ys[o] = float64(bs[k]), math.Abs(float64(bs[k]))
						for ci := range g.C {
							for i := range 4 {
								h := 2*oh - g.PH + i
								if h < 0 || h >= g.H {
									continue
								}
								for j := range 4 {
									ww := 2*ow - g.PW + j
									if ww < 0 || ww >= g.W {
										continue
									}
									xi, wi := ((n*g.C+ci)*g.H+h)*g.W+ww, ((k*g.C+ci)*4+i)*4+j
									xv, wv, dv := float64(xs[xi]), float64(ws[wi]), float64(dys[o])
									y64[o] += xv * wv
									ys[o] += math.Abs(xv * wv)
									dx64[xi] += dv * wv
									dxs[xi] += math.Abs(dv * wv)
									dw64[wi] += dv * xv
									dws[wi] += math.Abs(dv * xv)
								}
							}
						}
					}
				}
			}
		}
		for _, lv := range wg2Levels(levels) {
			m, avx := lv.m, lv.avx
			P := backend.WinogradS2Points(m)
			T := g.N * ((g.OH + m - 1) / m) * ((g.OW + m - 1) / m)
			old, old4 := wg2AVX2, wg4AVX2
			wg2AVX2, wg4AVX2 = avx, avx
			sU, sV, sM := backend.WinogradStride(g.K*C4), backend.WinogradStride(T*C4), backend.WinogradStride(T*g.K)
			u := c.Alloc(backend.WinogradS2Len(m, g.K*C4), false)
			v := c.Alloc(backend.WinogradS2Len(m, T*C4), false)
			mt := c.Alloc(backend.WinogradS2Len(m, T*g.K), false)
			c.WinogradS2Weight(m, g.K, g.C, u, w)
			c.WinogradS2Input(g, m, v, x)
			us, vs, ms := f(u), f(v), f(mt)
			// M = V U^T, dU = dM^T V, dV = dM U: naive float64 sums
			for e := range P {
				for ti := range T {
					for k := range g.K {
						s := 0.0
						for q := range C4 {
							s += float64(vs[e*sV+ti*C4+q]) * float64(us[e*sU+k*C4+q])
						}
						ms[e*sM+ti*g.K+k] = float32(s)
					}
				}
			}
			y := c.Alloc(g.N*g.K*L, false)
			c.WinogradS2Output(g, m, y, mt, bias, 0)
			dm := c.Alloc(backend.WinogradS2Len(m, T*g.K), false)
			c.WinogradS2OutputGrad(g, m, dm, dy)
			dms := f(dm)
			du, dv := c.Alloc(backend.WinogradS2Len(m, g.K*C4), true), c.Alloc(backend.WinogradS2Len(m, T*C4), true)
			du64, dv64 := make([]float64, len(f(du))), make([]float64, len(f(dv)))
			for e := range P {
				for ti := range T {
					for k := range g.K {
						d := float64(dms[e*sM+ti*g.K+k])
						for q := range C4 {
							du64[e*sU+k*C4+q] += d * float64(vs[e*sV+ti*C4+q])
							dv64[e*sV+ti*C4+q] += d * float64(us[e*sU+k*C4+q])
						}
					}
				}
			}
			for i, v := range du64 {
				f(du)[i] = float32(v)
			}
			for i, v := range dv64 {
				f(dv)[i] = float32(v)
			}
			dx, dw := c.Alloc(len(xs), true), c.Alloc(len(ws), true)
			c.WinogradS2InputGrad(g, m, dx, dv)
			c.WinogradS2WeightGrad(m, g.K, g.C, dw, du)
			worst := map[string]float64{}
			for _, chk := range []struct {
				name        string
				got         []float32
				want, scale []float64
			}{{"y", f(y), y64, ys}, {"dx", f(dx), dx64, dxs}, {"dw", f(dw), dw64, dws}} {
				for i, want := range chk.want {
					e := math.Abs(float64(chk.got[i])-want) / math.Max(chk.scale[i], 1e-30)
					worst[chk.name] = max(worst[chk.name], e)
					if e > wg2Bound(m) {
						t.Fatalf("%+v tile %d AVX2 %v: %s[%d] is %g, want %g (magnitude %g)", g, m, avx, chk.name, i, chk.got[i], want, chk.scale[i])
					}
				}
			}
			t.Logf("%+v tile %d AVX2 %v: worst error / magnitude: y %.2g, dx %.2g, dw %.2g", g, m, avx, worst["y"], worst["dx"], worst["dw"])
			// beta 1 adds onto y
			c.WinogradS2Output(g, m, y, mt, nil, 1)
			for i, v := range f(y) {
				want := 2*y64[i] - float64(bs[i/L%g.K])
				if math.Abs(float64(v)-want) > max(1e-5, 2*wg2Bound(m))*(2*ys[i]) {
					t.Fatalf("%+v tile %d AVX2 %v: y[%d] after beta 1 is %g, want %g", g, m, avx, i, v, want)
				}
			}
			for _, b := range []backend.Buffer{u, v, mt, y, dm, du, dv, dx, dw} {
				c.Free(b)
			}
			wg2AVX2, wg4AVX2 = old, old4
		}
	}
}

// wg2Levels is each tile (2, 4) at each of levels (AVX2 or not).
func wg2Levels(levels []bool) []struct {
	m   int
	avx bool
} {
	var out []struct {
		m   int
		avx bool
	}
	for _, m := range []int{2, 4} {
		for _, avx := range levels {
			out = append(out, struct {
				m   int
				avx bool
			}{m, avx})
		}
	}
	return out
}

// TestWinogradS2VectorMatchesGo runs the F(2x2, 2x2) and F(4x4, 2x2)
// transforms with the AVX2 tile kernels and with Go's (and Go's
// packStrided): the same sums in the same order, so the same values, bit
// for bit.
func TestWinogradS2VectorMatchesGo(t *testing.T) {
	if !haveAVX2FMA {
		t.Skip("no AVX2 here: only the Go kernels run")
	}
	c := New()
	r := rand.New(rand.NewPCG(83, 84))
	for _, g := range wg2Geoms() {
		for _, m := range []int{2, 4} {
			T := g.N * ((g.OH + m - 1) / m) * ((g.OW + m - 1) / m)
			x := randBuf(c, r, g.N*g.C*g.H*g.W)
			dv := randBuf(c, r, backend.WinogradS2Len(m, T*4*g.C))
			mt := randBuf(c, r, backend.WinogradS2Len(m, T*g.K))
			dy := randBuf(c, r, g.N*g.K*g.OH*g.OW)
			bias := randBuf(c, r, g.K)
			run := func(avx bool) [][]float32 {
				old, old4, ps := wg2AVX2, wg4AVX2, packStrided
				wg2AVX2, wg4AVX2 = avx, avx
				if !avx {
					packStrided = packStridedGo
				}
				defer func() { wg2AVX2, wg4AVX2, packStrided = old, old4, ps }()
				v := c.Alloc(backend.WinogradS2Len(m, T*4*g.C), true)
				c.WinogradS2Input(g, m, v, x)
				dx := randBufSeed(c, 7, g.N*g.C*g.H*g.W)
				c.WinogradS2InputGrad(g, m, dx, dv)
				y := c.Alloc(g.N*g.K*g.OH*g.OW, false)
				c.WinogradS2Output(g, m, y, mt, bias, 0)
				y1 := randBufSeed(c, 9, g.N*g.K*g.OH*g.OW)
				c.WinogradS2Output(g, m, y1, mt, nil, 1)
				dm := c.Alloc(backend.WinogradS2Len(m, T*g.K), true)
				c.WinogradS2OutputGrad(g, m, dm, dy)
				var out [][]float32
				for _, b := range []backend.Buffer{v, dx, y, y1, dm} {
					out = append(out, append([]float32(nil), f(b)...))
					c.Free(b)
				}
				return out
			}
			gov, vec := run(false), run(true)
			for k, name := range []string{"v", "dx", "y", "y beta 1 without bias", "dm"} {
				for i := range gov[k] {
					if math.Float32bits(vec[k][i]) != math.Float32bits(gov[k][i]) {
						t.Fatalf("%+v tile %d: %s[%d] is %g in AVX2, %g in Go", g, m, name, i, vec[k][i], gov[k][i])
					}
				}
			}
		}
	}
}

// TestWinogradS2TileKernels256 runs each AVX2 tile kernel, F(2x2, 2x2)'s
// and F(4x4, 2x2)'s, against its Go version on one tile of n channels,
// every n from 0 to 1000 (0 to 40 and 1000 under -short) so that every tail
// of the 8-lane chunks (and the masked last chunk) is run, on values with
// signed zeros among them. The runs lie apart (gaps between taps, rows
// and points) holding sentinels: a kernel that writes past its n channels
// changes one and fails. Bit for bit.
func TestWinogradS2TileKernels256(t *testing.T) {
	if !haveAVX2FMA {
		t.Skip("no AVX2 here")
	}
	r := rand.New(rand.NewPCG(85, 86))
	fill := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			switch r.IntN(8) {
			case 0:
				s[i] = 0
			case 1:
				s[i] = float32(math.Copysign(0, -1))
			default:
				s[i] = float32(r.NormFloat64())
			}
		}
		return s
	}
	same := func(name string, n int, a, b []float32) {
		t.Helper()
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				t.Fatalf("%s, n=%d: [%d] is %g in AVX2, %g in Go", name, n, i, a[i], b[i])
			}
		}
	}
	ns := make([]int, 1001) // every n; under -short 0 to 40 and 1000
	for i := range ns {
		ns[i] = i
	}
	if testing.Short() {
		ns = append(ns[:41], 1000)
	}
	for _, n := range ns {
		// taps: tap (a, b) at a*ld + b*cs, cs = n+3, ld = 3cs+5; points at e*ds, ds = n+7
		cs := n + 3
		ld, ds := 3*cs+5, n+7
		taps, pts := 2*ld+2*cs+n+1, 8*ds+n+1
		src := fill(taps)
		a, b := fill(pts), make([]float32, pts)
		copy(b, a)
		wg2in256(&src[0], ld, cs, &a[0], ds, n)
		wg2inGo(src, ld, cs, b, ds, n)
		same("wg2in", n, a, b)

		p := fill(pts)
		a = fill(taps)
		b = append([]float32(nil), a...)
		wg2ingrad256(&a[0], ld, cs, &p[0], ds, n)
		wg2ingradGo(b, ld, cs, p, ds, n)
		same("wg2ingrad", n, a, b)

		// wg2out: points at e*ds, outputs at 0, n, old, old+n with old = 2n+5
		old := 2*n + 5
		bias := fill(n + 1)
		a = fill(old + 2*n + 1)
		b = append([]float32(nil), a...)
		wg2out256(&p[0], ds, &a[0], old, &bias[0], n)
		wg2outGo(p, ds, b, old, bias, n)
		same("wg2out", n, a, b)

		dy := fill(old + 2*n + 1)
		a = fill(pts)
		b = append([]float32(nil), a...)
		wg2outgrad256(&dy[0], old, &a[0], ds, n)
		wg2outgradGo(dy, old, b, ds, n)
		same("wg2outgrad", n, a, b)

		// F(4x4, 2x2): taps (a, b) for a, b < 5 at a*ld4 + b*cs, ld4 =
		// 5cs+5; 25 points at e*ds; outputs (o, c) at o*old4 + c*n,
		// old4 = 4n+5
		ld4, old4 := 5*cs+5, 4*n+5
		taps4, pts4, outs4 := 4*ld4+4*cs+n+1, 24*ds+n+1, 3*old4+4*n+1
		src4 := fill(taps4)
		a = fill(pts4)
		b = append([]float32(nil), a...)
		wg4in256(&src4[0], ld4, cs, &a[0], ds, n)
		wg4inGo(src4, ld4, cs, b, ds, n)
		same("wg4in", n, a, b)

		p4 := fill(pts4)
		a = fill(taps4)
		b = append([]float32(nil), a...)
		wg4ingrad256(&a[0], ld4, cs, &p4[0], ds, n)
		wg4ingradGo(b, ld4, cs, p4, ds, n)
		same("wg4ingrad", n, a, b)

		a = fill(outs4)
		b = append([]float32(nil), a...)
		wg4out256(&p4[0], ds, &a[0], old4, &bias[0], n)
		wg4outGo(p4, ds, b, old4, bias, n)
		same("wg4out", n, a, b)

		dy4 := fill(outs4)
		a = fill(pts4)
		b = append([]float32(nil), a...)
		wg4outgrad256(&dy4[0], old4, &a[0], ds, n)
		wg4outgradGo(dy4, old4, b, ds, n)
		same("wg4outgrad", n, a, b)
	}
}

// F(4x4, 2x2)'s matrices as backend.WinogradS2 documents them.
var (
	wg4BT = [5][5]float64{{2, -1, -2, 1, 0}, {0, 2, 1, -1, 0}, {0, -2, 3, -1, 0}, {0, 1, 0, -1, 0}, {0, 2, -1, -2, 1}}
	wg4G  = [5][2]float64{{0.5, 0}, {0.5, 0.5}, {1.0 / 6, -1.0 / 6}, {-1.0 / 6, -1.0 / 3}, {0, 1}}
	wg4AT = [4][5]float64{{1, 1, 1, 1, 0}, {0, 1, -1, 2, 0}, {0, 1, 1, 4, 0}, {0, 1, -1, 8, 1}}
)

// TestWinogradF4Transforms checks F(4x4, 2x2)'s matrices in float64: the
// 1-D F(4, 2), A^T ((G g) * (B^T d)), is the correlation of d (5 values)
// by g (2) on random values, and so is the 2-D nesting A^T ((G g G^T) *
// (B^T d B)) A of a 5x5 tile by a 2x2 kernel; and the Go helpers (wg4b,
// wg4bT, wg4a, wg4aT, wg4g, wg4gT) compute those matrices and their
// transposes: exactly on unit vectors, G's sixths within float32's
// rounding.
func TestWinogradF4Transforms(t *testing.T) {
	r := rand.New(rand.NewPCG(87, 88))
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-12*(1+math.Abs(want)) {
			t.Fatalf("%s: %g, want %g", what, got, want)
		}
	}
	for range 100 {
		var d [5][5]float64
		var g [2][2]float64
		for i := range d {
			for j := range d[i] {
				d[i][j] = r.NormFloat64()
			}
		}
		for i := range g {
			for j := range g[i] {
				g[i][j] = r.NormFloat64()
			}
		}
		// 1-D on row 0
		var y1 [4]float64
		for o := range 4 {
			for e := range 5 {
				gg := wg4G[e][0]*g[0][0] + wg4G[e][1]*g[0][1]
				dd := 0.0
				for a := range 5 {
					dd += wg4BT[e][a] * d[0][a]
				}
				y1[o] += wg4AT[o][e] * gg * dd
			}
			near("1-D", y1[o], d[0][o]*g[0][0]+d[0][o+1]*g[0][1])
		}
		// 2-D: U = G g G^T, V = B^T d B, Y = A^T (U * V) A
		var u, v [5][5]float64
		for i := range 5 {
			for j := range 5 {
				for a := range 2 {
					for b := range 2 {
						u[i][j] += wg4G[i][a] * g[a][b] * wg4G[j][b]
					}
				}
				for a := range 5 {
					for b := range 5 {
						v[i][j] += wg4BT[i][a] * d[a][b] * wg4BT[j][b]
					}
				}
			}
		}
		for o := range 4 {
			for c := range 4 {
				y, want := 0.0, 0.0
				for i := range 5 {
					for j := range 5 {
						y += wg4AT[o][i] * u[i][j] * v[i][j] * wg4AT[c][j]
					}
				}
				for a := range 2 {
					for b := range 2 {
						want += d[o+a][c+b] * g[a][b]
					}
				}
				near("2-D", y, want)
			}
		}
	}
	// the helpers against the matrices, on unit vectors
	for k := range 5 {
		var x [5]float32
		x[k] = 1
		b := [5]float32{}
		b[0], b[1], b[2], b[3], b[4] = wg4b(x[0], x[1], x[2], x[3], x[4])
		bt := [5]float32{}
		bt[0], bt[1], bt[2], bt[3], bt[4] = wg4bT(x[0], x[1], x[2], x[3], x[4])
		a := [4]float32{}
		a[0], a[1], a[2], a[3] = wg4a(x[0], x[1], x[2], x[3], x[4])
		for i := range 5 {
			if float64(b[i]) != wg4BT[i][k] || float64(bt[i]) != wg4BT[k][i] {
				t.Fatalf("wg4b or wg4bT on e%d: %v, %v; B^T's column %d, row %d", k, b, bt, k, k)
			}
		}
		for o := range 4 {
			if float64(a[o]) != wg4AT[o][k] {
				t.Fatalf("wg4a on e%d: %v; A^T's column %d", k, a, k)
			}
		}
		if k < 4 {
			var m [5]float32
			m[0], m[1], m[2], m[3], m[4] = wg4aT(x[0], x[1], x[2], x[3])
			for e := range 5 {
				if float64(m[e]) != wg4AT[k][e] {
					t.Fatalf("wg4aT on e%d: %v; A^T's row %d", k, m, k)
				}
			}
		}
		gt0, gt1 := wg4gT(x[0], x[1], x[2], x[3], x[4])
		if math.Abs(float64(gt0)-wg4G[k][0]) > 1e-7 || math.Abs(float64(gt1)-wg4G[k][1]) > 1e-7 {
			t.Fatalf("wg4gT on e%d: %v %v; G's row %d", k, gt0, gt1, k)
		}
	}
	for k := range 2 {
		var h [5]float32
		h[0], h[1], h[2], h[3], h[4] = wg4g(float32(1-k), float32(k))
		for e := range 5 {
			if math.Abs(float64(h[e])-wg4G[e][k]) > 1e-7 {
				t.Fatalf("wg4g on e%d: %v; G's column %d", k, h, k)
			}
		}
	}
}
