package cpu

import (
	"math"

	"github.com/golem-ml/golem/backend"
)

var _ backend.BatchNorm = (*CPU)(nil)

// BatchNorm normalises each channel of x [N, C, L] over N and L: parallel
// over channels, each summing its N planes in order (float64), so a run is
// bit-identical whatever the thread count.
func (c *CPU) BatchNorm(y, mean, rstd, x, w, b backend.Buffer, N, C, L int, eps float32) {
	ys, xs, ms, rs := f(y), f(x), f(mean), f(rstd)
	var ws, bs []float32
	if w != nil {
		ws = f(w)
	}
	if b != nil {
		bs = f(b)
	}
	Parallel(C, max(1, grain(N*L)), func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			var s float64
			for n := range N {
				s += sum64(xs[(n*C+ch)*L : (n*C+ch+1)*L])
			}
			mu := s / float64(N*L)
			var v float64
			for n := range N {
				for _, e := range xs[(n*C+ch)*L : (n*C+ch+1)*L] {
					d := float64(e) - mu
					v += d * d
				}
			}
			r := 1 / math.Sqrt(v/float64(N*L)+float64(eps))
			ms[ch], rs[ch] = float32(mu), float32(r)
			scale, shift := float32(r), float32(-mu*r) // y = x*scale + shift
			if ws != nil {
				scale, shift = scale*ws[ch], shift*ws[ch]
			}
			if bs != nil {
				shift += bs[ch]
			}
			for n := range N {
				o := (n*C + ch) * L
				yr, xr := ys[o:o+L], xs[o:o+L]
				for i, e := range xr {
					yr[i] = e*scale + shift
				}
			}
		}
	})
}

// BatchNormGrad accumulates BatchNorm's gradients: with xh = (x-mean)*rstd,
// db += sum dy, dw += sum dy*xh and dx += w*rstd*(dy - mean(dy) -
// xh*mean(dy*xh)), the sums over a channel's N planes.
func (c *CPU) BatchNormGrad(dx, dw, db, x, w, mean, rstd, dy backend.Buffer, N, C, L int) {
	xs, ms, rs, gs := f(x), f(mean), f(rstd), f(dy)
	var dxs, dws, dbs, ws []float32
	if dx != nil {
		dxs = f(dx)
	}
	if dw != nil {
		dws = f(dw)
	}
	if db != nil {
		dbs = f(db)
	}
	if w != nil {
		ws = f(w)
	}
	Parallel(C, max(1, grain(N*L)), func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			mu, r := ms[ch], rs[ch]
			var sg, sgx float64
			for n := range N {
				o := (n*C + ch) * L
				g, xr := gs[o:o+L], xs[o:o+L]
				var a, bb float32
				for i, e := range xr {
					a += g[i]
					bb += g[i] * (e - mu)
				}
				sg += float64(a)
				sgx += float64(bb)
			}
			sgx *= float64(r) // sum dy*xh
			if dbs != nil {
				dbs[ch] += float32(sg)
			}
			if dws != nil {
				dws[ch] += float32(sgx)
			}
			if dxs == nil {
				continue
			}
			k := r
			if ws != nil {
				k *= ws[ch]
			}
			mg := float32(sg / float64(N*L))
			mgx := float32(sgx / float64(N*L))
			// dx += k*(dy - mg - (x-mu)*r*mgx)
			a, bcoef := k*r*mgx, k*(mg-mu*r*mgx)
			for n := range N {
				o := (n*C + ch) * L
				d, g, xr := dxs[o:o+L], gs[o:o+L], xs[o:o+L]
				for i, e := range xr {
					d[i] += k*g[i] - a*e - bcoef
				}
			}
		}
	})
}

// ChannelAffine writes y = x*scale[c] + shift[c] for x [N, C, L],
// parallel over the planes.
func (c *CPU) ChannelAffine(y, x, scale, shift backend.Buffer, N, C, L int) {
	ys, xs, sc, sh := f(y), f(x), f(scale), f(shift)
	Parallel(N*C, grain(L), func(lo, hi int) {
		for p := lo; p < hi; p++ {
			a, b := sc[p%C], sh[p%C]
			yr, xr := ys[p*L:(p+1)*L], xs[p*L:(p+1)*L]
			for i, e := range xr {
				yr[i] = e*a + b
			}
		}
	})
}

// sum64 is x's sum, accumulated in float64.
func sum64(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	return s
}
