package cpu

import "math"

// The exp-heavy loops of softmax, cross-entropy and GELU, over whole
// slices. On amd64 with AVX-512 they run the kernels of vec_amd64.s; the Go
// loops here use the same formulas and are the reference for them. With
// AVX2 and FMA but no AVX-512 (haveVec256) they run vec256_amd64.s's.

// expSub sets y[i] = s*e^(x[i]-m) and returns the sum of e^(x[i]-m). y may
// be x.
func expSub(y, x []float32, m, s float32) float32 {
	if len(x) == 0 {
		return 0
	}
	y = y[:len(x)]
	if haveVec {
		return vexpsub(&y[0], &x[0], len(x), m, s)
	}
	if haveVec256 {
		return vexpsub256(&y[0], &x[0], len(x), m, s)
	}
	var sum float32
	for i, v := range x {
		e := expf(v - m)
		sum += e
		y[i] = s * e
	}
	return sum
}

// expSum returns the sum of e^(x[i]-m).
func expSum(x []float32, m float32) float32 {
	if len(x) == 0 {
		return 0
	}
	if haveVec {
		return vexpsum(&x[0], len(x), m)
	}
	if haveVec256 {
		return vexpsum256(&x[0], len(x), m)
	}
	var sum float32
	for _, v := range x {
		sum += expf(v - m)
	}
	return sum
}

// maxf returns the largest value of x (-Inf for none).
func maxf(x []float32) float32 {
	if haveVec && len(x) > 0 {
		return vmax(&x[0], len(x))
	}
	if haveVec256 && len(x) > 0 {
		return vmax256(&x[0], len(x))
	}
	m := float32(math.Inf(-1))
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	return m
}

// scal multiplies x by a (softmax's normalization).
func scal(x []float32, a float32) {
	if haveVec && len(x) > 0 {
		vscal(&x[0], len(x), a)
		return
	}
	if haveVec256 && len(x) > 0 {
		vscal256(&x[0], len(x), a)
		return
	}
	for i := range x {
		x[i] *= a
	}
}

// softmaxGrad sets d[i] = p[i] * (d[i] - s) * scale: a softmax's input
// gradient from its output p and output gradient d, with s the sum of
// p*d over the row (attention's backward, in place of dP).
func softmaxGrad(d, p []float32, s, scale float32) {
	if len(d) == 0 {
		return
	}
	p = p[:len(d)]
	if haveVec {
		vsoftgrad(&d[0], &p[0], len(d), s, scale)
		return
	}
	if haveVec256 {
		vsoftgrad256(&d[0], &p[0], len(d), s, scale)
		return
	}
	for i, pv := range p {
		d[i] = pv * (d[i] - s) * scale
	}
}

// gelu sets y = x*Phi(x), the exact GELU.
func gelu(y, x []float32) {
	if len(x) == 0 {
		return
	}
	y = y[:len(x)]
	if haveVec {
		vgelu(&y[0], &x[0], len(x))
		return
	}
	if haveVec256 {
		vgelu256(&y[0], &x[0], len(x))
		return
	}
	for i, v := range x {
		y[i] = v * phif(v)
	}
}

// geluGrad adds dy*GELU'(x) into dx.
func geluGrad(dx, x, dy []float32) { geluGradTo(dx, x, dy, false) }

// geluGradSet sets dx = dy * GELU'(x) without reading dx: a new
// gradient, bit for bit geluGrad's into zeros, without zeroing it first.
func geluGradSet(dx, x, dy []float32) { geluGradTo(dx, x, dy, true) }

func geluGradTo(dx, x, dy []float32, set bool) {
	if len(x) == 0 {
		return
	}
	dx, dy = dx[:len(x)], dy[:len(x)]
	if haveVec {
		vgelugrad(&dx[0], &x[0], &dy[0], len(x), set)
		return
	}
	if haveVec256 {
		vgelugrad256(&dx[0], &x[0], &dy[0], len(x), set)
		return
	}
	if set {
		clear(dx)
	}
	for i, v := range x {
		z := float32(math.Abs(float64(v))) * 0.70710678
		dx[i] += dy[i] * (phif(v) + v*expf(-z*z)*0.3989422804014327)
	}
}

// phif is the standard normal CDF: 0.5*erfc(|x|/sqrt2), mirrored for x > 0,
// with the erfc of Numerical Recipes (fractional error below 1.2e-7), so
// the far negative tail keeps its relative accuracy.
func phif(x float32) float32 {
	z := float32(math.Abs(float64(x))) * 0.70710678
	t := 1 / (1 + 0.5*z)
	p := float32(0.17087277)
	p = p*t - 0.82215223
	p = p*t + 1.48851587
	p = p*t - 1.13520398
	p = p*t + 0.27886807
	p = p*t - 0.18628806
	p = p*t + 0.09678418
	p = p*t + 0.37409196
	p = p*t + 1.00002368
	p = p*t - 1.26551223
	e := 0.5 * t * expf(p-z*z)
	if x < 0 {
		return e
	}
	return 1 - e
}
