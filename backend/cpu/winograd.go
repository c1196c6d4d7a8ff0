package cpu

import (
	"fmt"

	"github.com/golem-ml/golem/backend"
)

var _ backend.Winograd = (*CPU)(nil)

// Winograd's F(2x2, 3x3) (backend.Winograd): the transforms of Lavin and
// Gray's paper,
//
//	B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
//	G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
//	A^T = [1 1 1 0; 0 1 -1 -1]
//
// each applied to the rows of a tile, then to its columns. Every kernel is
// parallel over planes (an image's channel), so the adjoints' overlapping
// tiles add into their own plane only; a plane is copied into (or added
// from) a zero-bordered scratch of 2*ceil(OH/2)+2 x 2*ceil(OW/2)+2 values,
// so that no tile checks its bounds. The copies between an image's planes
// and its channel-last scratch are packStrided's transposes (16x16 blocks
// in registers with AVX-512): a row of every plane at a time, or the
// whole image where its rows are contiguous in the scratch. A tile's
// transform is an AVX-512 kernel (winograd_amd64.s, 16 channels a
// vector), an AVX2 one where AVX-512 is absent (conv256_amd64.s, 8), or
// Go's: the same values from each.

// wgTiles returns the tiles along each axis and their count an image.
func wgTiles(g backend.Conv2D) (TH, TW, tp int) {
	TH, TW = (g.OH+1)/2, (g.OW+1)/2
	return TH, TW, TH * TW
}

func wgCheck(op string, g backend.Conv2D) {
	if g.KH != 3 || g.KW != 3 || g.SH != 1 || g.SW != 1 || g.DH != 1 || g.DW != 1 || g.Groups != 1 ||
		g.OH != g.H+2*g.PH-2 || g.OW != g.W+2*g.PW-2 || g.OH < 1 || g.OW < 1 {
		panic(fmt.Sprintf("cpu: %s: not a 3x3 stride-1 convolution of one group: %+v", op, g))
	}
}

func wgLen(op, what string, s []float32, n int) {
	if len(s) < n {
		panic(fmt.Sprintf("cpu: %s: %s holds %d values, want %d", op, what, len(s), n))
	}
}

// WinogradWeight writes u [16, K, C] = G w G^T of each 3x3 kernel of w
// [K, C, 3, 3].
func (c *CPU) WinogradWeight(K, C int, u, w backend.Buffer) {
	us, ws := f(u), f(w)
	KC := K * C
	S := backend.WinogradStride(KC)
	wgLen("WinogradWeight", "u", us, backend.WinogradLen(KC))
	wgLen("WinogradWeight", "w", ws, 9*KC)
	Parallel(KC, 1024, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			g := (*[9]float32)(ws[i*9:])
			var q [4][3]float32 // G g
			for j := range 3 {
				a, b, e := g[j], g[3+j], g[6+j]
				q[0][j], q[1][j], q[2][j], q[3][j] = a, 0.5*(a+b+e), 0.5*(a-b+e), e
			}
			for r := range 4 {
				a, b, e := q[r][0], q[r][1], q[r][2]
				o := 4*r*S + i
				us[o], us[o+S], us[o+2*S], us[o+3*S] = a, 0.5*(a+b+e), 0.5*(a-b+e), e
			}
		}
	})
}

// WinogradWeightGrad adds G^T du G into dw [K, C, 3, 3], du [16, K, C].
func (c *CPU) WinogradWeightGrad(K, C int, dw, du backend.Buffer) {
	ws, us := f(dw), f(du)
	KC := K * C
	S := backend.WinogradStride(KC)
	wgLen("WinogradWeightGrad", "du", us, backend.WinogradLen(KC))
	wgLen("WinogradWeightGrad", "dw", ws, 9*KC)
	Parallel(KC, 1024, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			var h [3][4]float32 // G^T du
			for j := range 4 {
				p0, p1, p2, p3 := us[j*S+i], us[(4+j)*S+i], us[(8+j)*S+i], us[(12+j)*S+i]
				h[0][j], h[1][j], h[2][j] = p0+0.5*(p1+p2), 0.5*(p1-p2), 0.5*(p1+p2)+p3
			}
			g := (*[9]float32)(ws[i*9:])
			for r := range 3 {
				p0, p1, p2, p3 := h[r][0], h[r][1], h[r][2], h[r][3]
				g[3*r] += p0 + 0.5*(p1+p2)
				g[3*r+1] += 0.5 * (p1 - p2)
				g[3*r+2] += 0.5*(p1+p2) + p3
			}
		}
	})
}

// WinogradInput writes v [16, T, C] = B^T d B of every input tile d of x
// [N, C, H, W] (0 outside x), parallel over the images: each image is
// copied channel-last into a zero-bordered scratch, so that every tap of
// a tile is a run of C values, and each tile is transformed 16 channels
// a vector (wgin).
func (c *CPU) WinogradInput(g backend.Conv2D, v, x backend.Buffer) {
	wgCheck("WinogradInput", g)
	vs, xs := f(v), f(x)
	TH, TW, tp := wgTiles(g)
	C, HW := g.C, g.H*g.W
	S := backend.WinogradStride(g.N * tp * C)
	wgLen("WinogradInput", "v", vs, backend.WinogradLen(g.N*tp*C))
	wgLen("WinogradInput", "x", xs, g.N*C*HW)
	PW := 2*TW + 2
	ld := PW * C
	c.chunked(g.N, (2*TH+2)*ld, true, func(lo, hi int, sc []float32) {
		for n := lo; n < hi; n++ {
			img := xs[n*C*HW : (n+1)*C*HW]
			for h := range g.H { // row h of every plane, transposed
				packStrided(sc[((h+g.PH)*PW+g.PW)*C:], C, img[h*g.W:], HW, g.W, C, C)
			}
			for ty := range TH {
				for tx := range TW {
					t := n*tp + ty*TW + tx
					src := sc[(2*ty*PW+2*tx)*C : (2*ty*PW+2*tx)*C+3*ld+4*C]
					dst := vs[t*C : t*C+15*S+C]
					if haveVec {
						wgin(&src[0], ld, &dst[0], S, C)
					} else if haveVec256 {
						wgin256(&src[0], ld, &dst[0], S, C)
					} else {
						wginGo(src, ld, dst, S, C)
					}
				}
			}
		}
	})
}

// wginGo is wgin in Go.
func wginGo(src []float32, ld int, dst []float32, ds, n int) {
	r0, r1, r2, r3 := src, src[ld:], src[2*ld:], src[3*ld:]
	for k := range n {
		j0, j1, j2, j3 := k, n+k, 2*n+k, 3*n+k
		// B^T d: rows
		a0, a1, a2, a3 := r0[j0]-r2[j0], r0[j1]-r2[j1], r0[j2]-r2[j2], r0[j3]-r2[j3]
		b0, b1, b2, b3 := r1[j0]+r2[j0], r1[j1]+r2[j1], r1[j2]+r2[j2], r1[j3]+r2[j3]
		c0, c1, c2, c3 := r2[j0]-r1[j0], r2[j1]-r1[j1], r2[j2]-r1[j2], r2[j3]-r1[j3]
		d0, d1, d2, d3 := r1[j0]-r3[j0], r1[j1]-r3[j1], r1[j2]-r3[j2], r1[j3]-r3[j3]
		// (B^T d) B: columns
		for e, v := range [16]float32{a0 - a2, a1 + a2, a2 - a1, a1 - a3, b0 - b2, b1 + b2, b2 - b1, b1 - b3,
			c0 - c2, c1 + c2, c2 - c1, c1 - c3, d0 - d2, d1 + d2, d2 - d1, d1 - d3} {
			dst[e*ds+k] = v
		}
	}
}

// WinogradInputGrad adds into dx [N, C, H, W] the adjoint of
// WinogradInput on dv [16, T, C]: B dv B^T of every tile, added where the
// tile read x (into a channel-last scratch per image, then added into
// dx's planes).
func (c *CPU) WinogradInputGrad(g backend.Conv2D, dx, dv backend.Buffer) {
	wgCheck("WinogradInputGrad", g)
	vs, xs := f(dv), f(dx)
	TH, TW, tp := wgTiles(g)
	C, HW := g.C, g.H*g.W
	S := backend.WinogradStride(g.N * tp * C)
	wgLen("WinogradInputGrad", "dv", vs, backend.WinogradLen(g.N*tp*C))
	wgLen("WinogradInputGrad", "dx", xs, g.N*C*HW)
	PW := 2*TW + 2
	ld := PW * C
	c.chunked(g.N, (2*TH+2)*ld+C*HW, false, func(lo, hi int, sc []float32) {
		sc, ts := sc[:(2*TH+2)*ld], sc[(2*TH+2)*ld:]
		for n := lo; n < hi; n++ {
			clear(sc)
			for ty := range TH {
				for tx := range TW {
					t := n*tp + ty*TW + tx
					dst := sc[(2*ty*PW+2*tx)*C : (2*ty*PW+2*tx)*C+3*ld+4*C]
					src := vs[t*C : t*C+15*S+C]
					if haveVec {
						wgingrad(&dst[0], ld, &src[0], S, C)
					} else if haveVec256 {
						wgingrad256(&dst[0], ld, &src[0], S, C)
					} else {
						wgingradGo(dst, ld, src, S, C)
					}
				}
			}
			for h := range g.H { // back to planes, row by row, then added
				packStrided(ts[h*g.W:], HW, sc[((h+g.PH)*PW+g.PW)*C:], C, C, g.W, g.W)
			}
			axpy(xs[n*C*HW:(n+1)*C*HW], ts, 1)
		}
	})
}

// wgingradGo is wgingrad in Go.
func wgingradGo(dst []float32, ld int, src []float32, ss, n int) {
	r := [4][]float32{dst, dst[ld:], dst[2*ld:], dst[3*ld:]}
	for k := range n {
		var p [16]float32
		for e := range p {
			p[e] = src[e*ss+k]
		}
		for j := range 4 {
			// column j of dv B^T, row by row
			var q [4]float32
			for i := range 4 {
				p0, p1, p2, p3 := p[4*i], p[4*i+1], p[4*i+2], p[4*i+3]
				q[i] = [4]float32{p0, p1 - p2 + p3, p1 + p2 - p0, -p3}[j]
			}
			o := j*n + k
			r[0][o] += q[0]
			r[1][o] += q[1] - q[2] + q[3]
			r[2][o] += q[1] + q[2] - q[0]
			r[3][o] -= q[3]
		}
	}
}

// WinogradOutput writes y [N, K, OH, OW] = A^T m A of every tile of m
// [16, T, K], plus bias [K] (nil: none), parallel over the images: each
// tile's outputs, 16 channels a vector (wgout), into a channel-last
// scratch of the image, then copied into y's planes.
func (c *CPU) WinogradOutput(g backend.Conv2D, y, m, bias backend.Buffer) {
	wgCheck("WinogradOutput", g)
	ys, ms, bs := f(y), f(m), f(bias)
	TH, TW, tp := wgTiles(g)
	K, L := g.K, g.OH*g.OW
	S := backend.WinogradStride(g.N * tp * K)
	wgLen("WinogradOutput", "m", ms, backend.WinogradLen(g.N*tp*K))
	wgLen("WinogradOutput", "y", ys, g.N*K*L)
	if bs != nil {
		wgLen("WinogradOutput", "bias", bs, K)
	} else {
		bs = make([]float32, K)
	}
	ld := 2 * TW * K
	c.chunked(g.N, 2*TH*ld, false, func(lo, hi int, sc []float32) {
		for n := lo; n < hi; n++ {
			for ty := range TH {
				for tx := range TW {
					t := n*tp + ty*TW + tx
					src := ms[t*K : t*K+15*S+K]
					dst := sc[2*ty*ld+2*tx*K : 2*ty*ld+2*tx*K+ld+2*K]
					if haveVec {
						wgout(&src[0], S, &dst[0], ld, &bs[0], K)
					} else if haveVec256 {
						wgout256(&src[0], S, &dst[0], ld, &bs[0], K)
					} else {
						wgoutGo(src, S, dst, ld, bs, K)
					}
				}
			}
			img := ys[n*K*L : (n+1)*K*L]
			if ld == g.OW*K { // even width: the image's L positions in a row
				packStrided(img, L, sc, K, K, L, L)
			} else {
				for oh := range g.OH {
					packStrided(img[oh*g.OW:], L, sc[oh*ld:], K, K, g.OW, g.OW)
				}
			}
		}
	})
}

// wgoutGo is wgout in Go.
func wgoutGo(src []float32, ss int, dst []float32, ld int, bias []float32, n int) {
	for k := range n {
		var s, u [4]float32
		for j := range 4 {
			m0, m1, m2, m3 := src[j*ss+k], src[(4+j)*ss+k], src[(8+j)*ss+k], src[(12+j)*ss+k]
			s[j], u[j] = m0+m1+m2, m1-m2-m3
		}
		b := bias[k]
		dst[k], dst[n+k] = s[0]+s[1]+s[2]+b, s[1]-s[2]-s[3]+b
		dst[ld+k], dst[ld+n+k] = u[0]+u[1]+u[2]+b, u[1]-u[2]-u[3]+b
	}
}

// WinogradOutputGrad writes dm [16, T, K] = A dy A^T of every tile of dy
// [N, K, OH, OW] (0 past OH or OW): WinogradOutput's adjoint, through a
// channel-last copy of each image's dy.
func (c *CPU) WinogradOutputGrad(g backend.Conv2D, dm, dy backend.Buffer) {
	wgCheck("WinogradOutputGrad", g)
	ms, ys := f(dm), f(dy)
	TH, TW, tp := wgTiles(g)
	K, L := g.K, g.OH*g.OW
	S := backend.WinogradStride(g.N * tp * K)
	wgLen("WinogradOutputGrad", "dm", ms, backend.WinogradLen(g.N*tp*K))
	wgLen("WinogradOutputGrad", "dy", ys, g.N*K*L)
	ld := 2 * TW * K
	c.chunked(g.N, 2*TH*ld, true, func(lo, hi int, sc []float32) { // the odd edges' row and column stay 0
		for n := lo; n < hi; n++ {
			img := ys[n*K*L : (n+1)*K*L]
			if ld == g.OW*K { // even width: the image's L positions in a row
				packStrided(sc, K, img, L, L, K, K)
			} else {
				for oh := range g.OH {
					packStrided(sc[oh*ld:], K, img[oh*g.OW:], L, g.OW, K, K)
				}
			}
			for ty := range TH {
				for tx := range TW {
					t := n*tp + ty*TW + tx
					src := sc[2*ty*ld+2*tx*K : 2*ty*ld+2*tx*K+ld+2*K]
					dst := ms[t*K : t*K+15*S+K]
					if haveVec {
						wgoutgrad(&src[0], ld, &dst[0], S, K)
					} else if haveVec256 {
						wgoutgrad256(&src[0], ld, &dst[0], S, K)
					} else {
						wgoutgradGo(src, ld, dst, S, K)
					}
				}
			}
		}
	})
}

// wgoutgradGo is wgoutgrad in Go.
func wgoutgradGo(src []float32, ld int, dst []float32, ds, n int) {
	for k := range n {
		a, b, c, d := src[k], src[n+k], src[ld+k], src[ld+n+k]
		e, h := a+c, b+d
		p, q := a-c, b-d
		for i, v := range [16]float32{a, a + b, a - b, -b, e, e + h, e - h, -h, p, p + q, p - q, -q, -c, -c - d, d - c, d} {
			dst[i*ds+k] = v
		}
	}
}
