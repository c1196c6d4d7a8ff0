package cpu

import (
	"fmt"
	"math"

	"github.com/golem-ml/golem/backend"
)

// expf is e^x in float32, accurate to about 2 ulp: x = n*ln2 + r with
// |r| <= ln2/2, e^r by a degree-6 polynomial, then scaled by 2^n.
func expf(x float32) float32 {
	if x > 88.72 {
		return float32(math.Inf(1))
	}
	if x < -87.3 {
		if x != x {
			return x
		}
		if x < -103.9 {
			return 0
		}
		return float32(math.Exp(float64(x)))
	}
	const log2e = 1.44269504088896341
	n := float32(math.Floor(float64(x*log2e + 0.5)))
	// Cody-Waite: ln2 = c1 + c2.
	r := x - n*0.693359375
	r -= n * -2.12194440e-4
	p := expPoly(r)
	p = p*r*r + r + 1
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}

// expPoly is the polynomial of expf and tanhf after the range reduction
// (e^r = 1 + r + r^2 expPoly(r) for |r| <= ln2/2), Horner's scheme in
// float32 as the AVX2 and AVX-512 kernels evaluate it.
func expPoly(r float32) float32 {
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	return p*r + 5.0000001201e-1
}

func sigmoidf(x float32) float32 { return 1 / (1 + expf(-x)) }

// tanhf is tanh in float32, as the AVX2 kernel vtanh256 computes it (the
// reference for it, within 2 ulp of float64's math.Tanh): with a = |x|
// clamped to 9 (tanh(9) rounds to 1) and m = e^(-2a) - 1 from expf's range
// reduction and polynomial without its leading 1 (e^r - 1 = r + r^2 p(r),
// then m = 2^n (e^r - 1) + 2^n - 1), tanh a = -m/(2+m), the sign of x put
// back. Small a keeps its relative accuracy (m = r + r^2 p with n = 0,
// no 1 - e^(-2a) cancellation; denormals come back as they are), +-Inf
// gives +-1, NaN stays NaN.
func tanhf(x float32) float32 {
	a := min(float32(math.Abs(float64(x))), 9) // NaN stays NaN
	z := -2 * a
	const log2e = 1.44269504088896341
	n := float32(math.Floor(float64(z*log2e + 0.5)))
	r := z - n*0.693359375
	r -= n * -2.12194440e-4
	p := expPoly(r)
	q := p*(r*r) + r
	s := math.Float32frombits(uint32(int32(n)+127) << 23) // n in [-26, 0]
	m := s*q + (s - 1)
	t := float32(math.Abs(float64(m / (2 + m))))
	return float32(math.Copysign(float64(t), float64(x)))
}

// GELUTanh as a sigmoid: 0.5*x*(1 + tanh u) = x / (1 + e^(-2u)), u =
// sqrt(2/pi)*(x + 0.044715 x^3), so -2u = x*(gtA + gtB*x^2). Its
// derivative, with s = 1/(1+e^(-2u)) and 1-s = e^(-2u)*s (no 1-s
// cancellation), is s*(1 + x*(1-s)*2u'), 2u' = gtK + gtG*x^2. The
// negative tail keeps its relative accuracy (1 + tanh u cancels there).
const (
	gtA = -1.5957691216057308   // -2 sqrt(2/pi)
	gtB = -0.071354816272600249 // -2 sqrt(2/pi) * 0.044715
	gtK = 1.5957691216057308    // 2 sqrt(2/pi)
	gtG = 0.21406444881780073   // 3 * 0.044715 * 2 sqrt(2/pi)
)

// geluTanhf is GELUTanh(x), as vgelutanh256 computes it.
func geluTanhf(x float32) float32 {
	x2 := x * x
	return x / (1 + expf(x*(gtA+gtB*x2)))
}

// geluTanhGradf is GELUTanh'(x), as vgelutanhgrad256 computes it. Where
// -2u > 88 (x below about -10.04) it is 0: the true value is below 1.5e-36
// there, and e^(-2u) would overflow (Inf*0 for 1-s) or, with s a denormal,
// lose s's tiny size against a huge x*2u' (x = -1e13 gave -1.2); where
// -2u < -88 it is 1 (s rounds to 1, x*(1-s)*2u' below an ulp), +Inf's
// limit too.
func geluTanhGradf(x float32) float32 {
	x2 := x * x
	a := x * (gtA + gtB*x2)
	if a > 88 {
		return 0
	}
	if a < -88 {
		return 1
	}
	e := expf(a) // NaN stays NaN
	s := 1 / (1 + e)
	return s * (1 + x*(e*s)*(gtK+gtG*x2))
}

func mapOne(op backend.Unary, a float32, x float32) float32 {
	switch op {
	case backend.Neg:
		return -x
	case backend.Exp:
		return expf(x)
	case backend.Log:
		return float32(math.Log(float64(x)))
	case backend.Tanh:
		return tanhf(x)
	case backend.Sigmoid:
		return sigmoidf(x)
	case backend.ReLU:
		return max(x, 0)
	case backend.GELUTanh:
		return geluTanhf(x)
	case backend.GELU:
		return x * phif(x)
	case backend.SiLU:
		return x * sigmoidf(x)
	case backend.Sqrt:
		return float32(math.Sqrt(float64(x)))
	case backend.Square:
		return x * x
	case backend.Abs:
		return float32(math.Abs(float64(x)))
	case backend.Scale:
		return a * x
	case backend.AddScalar:
		return x + a
	case backend.ClampMin:
		return max(x, a)
	case backend.ClampMax:
		return min(x, a)
	case backend.PowScalar:
		return float32(math.Pow(float64(x), float64(a)))
	case backend.Recip:
		return 1 / x
	}
	panic(fmt.Sprintf("cpu: unknown unary op %d", op))
}

// gradOne returns dy/dx at x (with y = f(x)).
func gradOne(op backend.Unary, a float32, x, y float32) float32 {
	switch op {
	case backend.Neg:
		return -1
	case backend.Exp:
		return y
	case backend.Log:
		return 1 / x
	case backend.Tanh:
		return 1 - y*y
	case backend.Sigmoid:
		return y * (1 - y)
	case backend.ReLU:
		if x > 0 {
			return 1
		}
		return 0
	case backend.GELUTanh:
		return geluTanhGradf(x)
	case backend.GELU:
		z := float32(math.Abs(float64(x))) * 0.70710678
		return phif(x) + x*expf(-z*z)*0.3989422804014327
	case backend.SiLU:
		s := sigmoidf(x)
		return s * (1 + x*(1-s))
	case backend.Sqrt:
		return 0.5 / y
	case backend.Square:
		return 2 * x
	case backend.Abs:
		if x > 0 {
			return 1
		} else if x < 0 {
			return -1
		}
		return 0
	case backend.Scale:
		return a
	case backend.AddScalar:
		return 1
	case backend.ClampMin:
		if x >= a {
			return 1
		}
		return 0
	case backend.ClampMax:
		if x <= a {
			return 1
		}
		return 0
	case backend.PowScalar:
		return a * float32(math.Pow(float64(x), float64(a-1)))
	case backend.Recip:
		return -y * y
	}
	panic(fmt.Sprintf("cpu: unknown unary op %d", op))
}

// Map applies op elementwise. Each op has its own loop, so the choice of
// function is made once per chunk, not once per value.
func (c *CPU) Map(op backend.Unary, a float32, dst, x backend.Buffer) {
	d, xs := f(dst), f(x)
	Parallel(len(d), 16384, func(lo, hi int) { mapSlice(op, a, d[lo:hi], xs[lo:hi]) })
}

func mapSlice(op backend.Unary, a float32, d, x []float32) {
	x = x[:len(d)]
	switch op {
	case backend.Neg:
		for i, v := range x {
			d[i] = -v
		}
	case backend.Exp:
		expSub(d, x, 0, 1)
	case backend.Tanh:
		if (haveVec || haveVec256) && len(x) > 0 {
			vtanh256(&d[0], &x[0], len(x)) // AVX-512 machines run the AVX2 kernel
			break
		}
		for i, v := range x {
			d[i] = tanhf(v)
		}
	case backend.Sigmoid:
		for i, v := range x {
			d[i] = sigmoidf(v)
		}
	case backend.ReLU:
		if haveVec && len(x) > 0 {
			vrelu(&d[0], &x[0], len(x)) // the same values, NaN and -0 included
			break
		}
		if haveVec256 && len(x) > 0 {
			vrelu256(&d[0], &x[0], len(x))
			break
		}
		for i, v := range x {
			d[i] = max(v, 0)
		}
	case backend.GELUTanh:
		if (haveVec || haveVec256) && len(x) > 0 {
			vgelutanh256(&d[0], &x[0], len(x)) // AVX-512 machines run the AVX2 kernel
			break
		}
		for i, v := range x {
			d[i] = geluTanhf(v)
		}
	case backend.GELU:
		gelu(d, x)
	case backend.SiLU:
		if haveVec && len(x) > 0 {
			vsilu(&d[0], &x[0], len(x))
			break
		}
		if haveVec256 && len(x) > 0 {
			vsilu256(&d[0], &x[0], len(x))
			break
		}
		for i, v := range x {
			d[i] = v * sigmoidf(v)
		}
	case backend.Square:
		for i, v := range x {
			d[i] = v * v
		}
	case backend.Scale:
		for i, v := range x {
			d[i] = a * v
		}
	case backend.AddScalar:
		for i, v := range x {
			d[i] = v + a
		}
	case backend.ClampMin:
		for i, v := range x {
			d[i] = max(v, a)
		}
	case backend.ClampMax:
		for i, v := range x {
			d[i] = min(v, a)
		}
	default:
		for i, v := range x {
			d[i] = mapOne(op, a, v)
		}
	}
}

// MapGrad accumulates the gradient of op.
// MapGrad goes through dx mapGradPiece values at a time; without acc it
// clears each piece just before adding into it, so the zeros are written
// to L1 instead of a pass over dx through memory beforehand (the GELU of
// a 1,536-wide MLP has 25 MB of gradient at 4,096 tokens).
func (c *CPU) MapGrad(op backend.Unary, a float32, dx, x, y, dy backend.Buffer, acc bool) {
	d, xs, ys, g := f(dx), f(x), f(y), f(dy)
	Parallel(len(d), 16384, func(lo, hi int) {
		for s := lo; s < hi; s += mapGradPiece {
			e := min(hi, s+mapGradPiece)
			var xx, yy []float32
			if xs != nil {
				xx = xs[s:e]
			}
			if ys != nil {
				yy = ys[s:e]
			}
			if !acc && op == backend.GELU && xx != nil {
				// GELU's gradient writes a new dx without reading it.
				geluGradSet(d[s:e], xx, g[s:e])
				continue
			}
			if !acc && op == backend.GELUTanh && xx != nil {
				geluTanhGrad(d[s:e], xx, g[s:e], true) // as GELU's
				continue
			}
			if !acc {
				clear(d[s:e])
			}
			mapGradSlice(op, a, d[s:e], xx, yy, g[s:e])
		}
	})
}

// mapGradPiece is how many values of dx MapGrad clears and fills at a
// time: 16 KB, a third of L1.
const mapGradPiece = 4096

func mapGradSlice(op backend.Unary, a float32, d, x, y, g []float32) {
	g = g[:len(d)]
	switch op {
	case backend.Neg:
		for i, gv := range g {
			d[i] -= gv
		}
		return
	case backend.Scale:
		axpy(d, g, a)
		return
	case backend.AddScalar:
		axpy(d, g, 1)
		return
	case backend.Exp, backend.Tanh, backend.Sigmoid, backend.Sqrt, backend.Recip:
		if y != nil {
			y = y[:len(d)]
			switch op {
			case backend.Exp:
				for i, gv := range g {
					d[i] += gv * y[i]
				}
			case backend.Tanh:
				for i, gv := range g {
					d[i] += gv * (1 - y[i]*y[i])
				}
			case backend.Sigmoid:
				for i, gv := range g {
					d[i] += gv * y[i] * (1 - y[i])
				}
			case backend.Sqrt:
				for i, gv := range g {
					d[i] += gv * 0.5 / y[i]
				}
			case backend.Recip:
				for i, gv := range g {
					d[i] -= gv * y[i] * y[i]
				}
			}
			return
		}
	}
	if x == nil {
		for i, gv := range g {
			var yi float32
			if y != nil {
				yi = y[i]
			}
			d[i] += gv * gradOne(op, a, 0, yi)
		}
		return
	}
	x = x[:len(d)]
	switch op {
	case backend.GELU:
		geluGrad(d, x, g)
	case backend.ReLU:
		reluGrad(d, x, g)
	case backend.Square:
		for i, gv := range g {
			d[i] += 2 * gv * x[i]
		}
	case backend.SiLU:
		for i, gv := range g {
			s := sigmoidf(x[i])
			d[i] += gv * s * (1 + x[i]*(1-s))
		}
	case backend.GELUTanh:
		geluTanhGrad(d, x, g, false)
	default:
		for i, gv := range g {
			var yi float32
			if y != nil {
				yi = y[i]
			}
			d[i] += gv * gradOne(op, a, x[i], yi)
		}
	}
}

// geluTanhGrad adds g * GELUTanh'(x) into d; with set it sets d = g *
// GELUTanh'(x) without reading d, bit for bit what adding into zeros
// gives. With AVX2 and FMA (AVX-512 machines too) it is vgelutanhgrad256,
// 8 values a vector.
func geluTanhGrad(d, x, g []float32, set bool) {
	if len(d) == 0 {
		return
	}
	x, g = x[:len(d)], g[:len(d)]
	if haveVec || haveVec256 {
		vgelutanhgrad256(&d[0], &x[0], &g[0], len(d), set)
		return
	}
	if set {
		clear(d)
	}
	for i, gv := range g {
		d[i] += gv * geluTanhGradf(x[i])
	}
}

// reluGrad adds g where x > 0 into d without a branch: activations are
// as often negative as not, and a mispredicted branch per value cost more
// than the pass's memory traffic. x > 0 (+Inf included, NaN not) is
// 0 < bits(x) <= bits(+Inf), tested as one unsigned compare by a sign.
//
// With AVX-512 (haveVec) it is vrelugrad: a compare and a masked add, 16
// values a vector. A zero d stays as it was where x <= 0 (the Go loop
// adds +0 there, turning -0 into +0): the same values otherwise.
func reluGrad(d, x, g []float32) {
	x, g = x[:len(d)], g[:len(d)]
	if haveVec && len(d) > 0 {
		vrelugrad(&d[0], &x[0], &g[0], len(d))
		return
	}
	if haveVec256 && len(d) > 0 {
		vrelugrad256(&d[0], &x[0], &g[0], len(d)) // a compare and a blend, 8 values a vector
		return
	}
	for i, xv := range x {
		t := math.Float32bits(xv) - 1
		mask := uint32((int64(t) - 0x7f800000) >> 63)
		d[i] += math.Float32frombits(math.Float32bits(g[i]) & mask)
	}
}

func binOne(op backend.Binary, a, b float32) float32 {
	switch op {
	case backend.Add:
		return a + b
	case backend.Sub:
		return a - b
	case backend.Mul:
		return a * b
	case backend.Div:
		return a / b
	case backend.Max:
		return max(a, b)
	case backend.Min:
		return min(a, b)
	}
	panic(fmt.Sprintf("cpu: unknown binary op %d", op))
}

// bcIter walks the output of a broadcast op row by row (the last dim), with
// the starting offsets into a and b of each row.
func bcRows(bc backend.Bcast, lo, hi int, fn func(row, ao, bo int)) {
	n := len(bc.Shape)
	var idx [backend.MaxDims]int
	r := lo
	for i := n - 2; i >= 0; i-- {
		idx[i] = r % bc.Shape[i]
		r /= bc.Shape[i]
	}
	for row := lo; row < hi; row++ {
		ao, bo := 0, 0
		for i := 0; i < n-1; i++ {
			ao += idx[i] * bc.AStride[i]
			bo += idx[i] * bc.BStride[i]
		}
		fn(row, ao, bo)
		for i := n - 2; i >= 0; i-- {
			idx[i]++
			if idx[i] < bc.Shape[i] {
				break
			}
			idx[i] = 0
		}
	}
}

func bcSize(bc backend.Bcast) (rows, cols int) {
	n := len(bc.Shape)
	if n == 0 {
		return 1, 1
	}
	cols = bc.Shape[n-1]
	rows = 1
	for _, s := range bc.Shape[:n-1] {
		rows *= s
	}
	return
}

// dense reports whether a and b both have the output's shape (no
// broadcasting), so a binary op is one flat loop.
func dense(bc backend.Bcast) bool {
	s := 1
	for i := len(bc.Shape) - 1; i >= 0; i-- {
		if bc.Shape[i] != 1 && (bc.AStride[i] != s || bc.BStride[i] != s) {
			return false
		}
		s *= bc.Shape[i]
	}
	return true
}

// Binary applies op with broadcasting.
func (c *CPU) Binary(op backend.Binary, bc backend.Bcast, dst, a, b backend.Buffer) {
	d, as, bs := f(dst), f(a), f(b)
	if dense(bc) && (op == backend.Add || op == backend.Mul || op == backend.Sub) {
		Parallel(len(d), 16384, func(lo, hi int) {
			dd, av, bv := d[lo:hi], as[lo:hi], bs[lo:hi]
			switch op {
			case backend.Add:
				for j := range dd {
					dd[j] = av[j] + bv[j]
				}
			case backend.Sub:
				for j := range dd {
					dd[j] = av[j] - bv[j]
				}
			case backend.Mul:
				for j := range dd {
					dd[j] = av[j] * bv[j]
				}
			}
		})
		return
	}
	rows, cols := bcSize(bc)
	n := len(bc.Shape)
	var sa, sb int
	if n > 0 {
		sa, sb = bc.AStride[n-1], bc.BStride[n-1]
	}
	Parallel(rows, grain(cols), func(lo, hi int) {
		bcRows(bc, lo, hi, func(row, ao, bo int) {
			out := d[row*cols : row*cols+cols]
			switch {
			case sa == 1 && sb == 1:
				av, bv := as[ao:ao+cols], bs[bo:bo+cols]
				switch op {
				case backend.Add:
					for j := range out {
						out[j] = av[j] + bv[j]
					}
				case backend.Mul:
					for j := range out {
						out[j] = av[j] * bv[j]
					}
				default:
					for j := range out {
						out[j] = binOne(op, av[j], bv[j])
					}
				}
			default:
				for j := range out {
					out[j] = binOne(op, as[ao+j*sa], bs[bo+j*sb])
				}
			}
		})
	})
}

// BinaryGrad accumulates gradients of op into da and db. To stay race free
// and deterministic when a or b is broadcast, the accumulation into a
// broadcast operand runs serially over the rows.
func (c *CPU) BinaryGrad(op backend.Binary, bc backend.Bcast, da, db, a, b, dy backend.Buffer) {
	rows, cols := bcSize(bc)
	n := len(bc.Shape)
	var sa, sb int
	if n > 0 {
		sa, sb = bc.AStride[n-1], bc.BStride[n-1]
	}
	as, bs, g := f(a), f(b), f(dy)
	if dense(bc) && (op == backend.Add || op == backend.Sub || op == backend.Mul) {
		da, db := f(da), f(db)
		Parallel(len(g), 16384, func(lo, hi int) {
			gv := g[lo:hi]
			switch op {
			case backend.Add, backend.Sub:
				if da != nil {
					axpy(da[lo:hi], gv, 1)
				}
				if db != nil {
					if op == backend.Add {
						axpy(db[lo:hi], gv, 1)
					} else {
						axpy(db[lo:hi], gv, -1)
					}
				}
			case backend.Mul:
				if da != nil {
					d, bv := da[lo:hi], bs[lo:hi]
					for j, v := range gv {
						d[j] += v * bv[j]
					}
				}
				if db != nil {
					d, av := db[lo:hi], as[lo:hi]
					for j, v := range gv {
						d[j] += v * av[j]
					}
				}
			}
		})
		return
	}
	do := func(target []float32, forA bool) {
		if target == nil {
			return
		}
		st := sb
		if forA {
			st = sa
		}
		body := func(lo, hi int) {
			bcRows(bc, lo, hi, func(row, ao, bo int) {
				gr := g[row*cols : row*cols+cols]
				off := bo
				if forA {
					off = ao
				}
				for j, gv := range gr {
					av, bv := as[ao+j*sa], bs[bo+j*sb]
					var d float32
					switch op {
					case backend.Add:
						d = gv
					case backend.Sub:
						if forA {
							d = gv
						} else {
							d = -gv
						}
					case backend.Mul:
						if forA {
							d = gv * bv
						} else {
							d = gv * av
						}
					case backend.Div:
						if forA {
							d = gv / bv
						} else {
							d = -gv * av / (bv * bv)
						}
					case backend.Max:
						if (av >= bv) == forA {
							d = gv
						}
					case backend.Min:
						if (av <= bv) == forA {
							d = gv
						}
					}
					target[off+j*st] += d
				}
			})
		}
		if isBroadcast(bc, forA) {
			body(0, rows)
		} else {
			Parallel(rows, grain(cols), body)
		}
	}
	do(f(da), true)
	do(f(db), false)
}

func isBroadcast(bc backend.Bcast, forA bool) bool {
	st := bc.BStride
	if forA {
		st = bc.AStride
	}
	for i, s := range st {
		if s == 0 && bc.Shape[i] > 1 {
			return true
		}
	}
	return false
}

// Where selects elementwise.
func (c *CPU) Where(cond []bool, dst, a, b backend.Buffer) {
	d, as, bs := f(dst), f(a), f(b)
	for i := range d {
		if cond[i] {
			d[i] = as[i]
		} else {
			d[i] = bs[i]
		}
	}
}

// WhereGrad routes dy to the selected side.
func (c *CPU) WhereGrad(cond []bool, da, db, dy backend.Buffer) {
	das, dbs, g := f(da), f(db), f(dy)
	for i, gv := range g {
		if cond[i] {
			if das != nil {
				das[i] += gv
			}
		} else if dbs != nil {
			dbs[i] += gv
		}
	}
}

// SumRows sums each row.
func (c *CPU) SumRows(dst, x backend.Buffer, rows, cols int) {
	d, xs := f(dst), f(x)
	Parallel(rows, grain(cols), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			var s float32
			for _, v := range xs[r*cols : r*cols+cols] {
				s += v
			}
			d[r] = s
		}
	})
}

// SumRowsGrad broadcasts dy over each row.
func (c *CPU) SumRowsGrad(dx, dy backend.Buffer, rows, cols int) {
	d, g := f(dx), f(dy)
	Parallel(rows, grain(cols), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			gv := g[r]
			row := d[r*cols : r*cols+cols]
			for j := range row {
				row[j] += gv
			}
		}
	})
}

// SumSquares returns sum(x*x) in float64. Blocks of 4096 values are summed
// in float32 in parallel and their sums added in order, so the result does
// not depend on the thread count.
func (c *CPU) SumSquares(x backend.Buffer) float64 {
	xs := f(x)
	const blk = 4096
	nb := (len(xs) + blk - 1) / blk
	if nb <= 1 {
		return float64(dot(xs, xs))
	}
	part := c.Alloc(nb, false)
	ps := f(part)
	Parallel(nb, 16, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			b := xs[i*blk : min((i+1)*blk, len(xs))]
			ps[i] = dot(b, b)
		}
	})
	var s float64
	for _, p := range ps {
		s += float64(p)
	}
	c.Free(part)
	return s
}
