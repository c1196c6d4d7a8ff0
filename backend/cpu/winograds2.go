package cpu

import (
	"fmt"
	"unsafe"

	"github.com/golem-ml/golem/backend"
)

var _ backend.WinogradS2 = (*CPU)(nil)

// Winograd's F(2x2, 2x2) and F(4x4, 2x2) for 4x4 stride-2 convolutions
// (backend.WinogradS2, tile m = 2 or 4; the transforms are there), each
// applied to the rows of a tile, then to its columns. As in winograd.go,
// every kernel is parallel over the images, each image copied into (or
// added from) a zero-bordered channel-last scratch of 2m*ceil(OH/m)+2 x
// 2m*ceil(OW/m)+2 positions (input side) or m*ceil(OH/m) x m*ceil(OW/m)
// (output side) by packStrided's transposes, so that no tile checks its
// bounds and every tap is a run of channels. The stride phases are never
// split out: phase (r, s)'s tap (a, b) of tile (ty, tx) is the scratch's
// position (2m*ty+2a+r, 2m*tx+2b+s), so the input transforms read the
// scratch with a row stride of two rows and a tap stride of two
// positions. The loops are the same for both tiles; the tile kernels
// (wg2* for m = 2, wg4* for m = 4) and the weight transforms differ.
//
// F(4x4, 2x2)'s points are {0, 1, -1, 2, inf}. {0, 1, -1, 1/2, inf} is
// the other choice the 5 points allow; it is this one mirrored (a tile
// and its kernel reversed, 1/2 for 2 and inf for 0, its rows scaled by
// powers of 2), so both round the same way in float32: 2 is chosen for
// its integer B^T and A^T, the thirds all in G, which the weights alone
// go through. Its float32 error is larger than F(2x2, 2x2)'s: the sum of
// |A^T||G||B^T| over an output's products is 43/3 a side against 3,
// 205 against 9 in 2-D (winograds2_test.go measures it).

// wg2AVX2 selects the tile kernels in AVX2 (conv256_amd64.s), on every
// machine that has it: AVX-512 ones too, there being no AVX-512 versions.
// Tests turn it off to run the Go ones. wg4AVX2 is the same for
// F(4x4, 2x2)'s.
var wg2AVX2, wg4AVX2 = haveAVX2FMA, haveAVX2FMA

// wg2Check panics unless g is a 4x4 stride-2 convolution of one group
// and no dilation and m a tile backend.WinogradS2 has.
func wg2Check(op string, g backend.Conv2D, m int) {
	if g.KH != 4 || g.KW != 4 || g.SH != 2 || g.SW != 2 || g.DH != 1 || g.DW != 1 || g.Groups != 1 || g.Phased ||
		g.OH != (g.H+2*g.PH-4)/2+1 || g.OW != (g.W+2*g.PW-4)/2+1 || g.OH < 1 || g.OW < 1 {
		panic(fmt.Sprintf("cpu: %s: not a 4x4 stride-2 convolution of one group: %+v", op, g))
	}
	wg2Tile(op, m)
}

// wg2Tile panics unless m is 2 or 4.
func wg2Tile(op string, m int) {
	if m != 2 && m != 4 {
		panic(fmt.Sprintf("cpu: %s: tile %d, want 2 or 4", op, m))
	}
}

// wg2Tiles returns the tile rows and columns of g's output in tiles of
// m x m, and their product.
func wg2Tiles(g backend.Conv2D, m int) (TH, TW, tp int) {
	TH, TW = (g.OH+m-1)/m, (g.OW+m-1)/m
	return TH, TW, TH * TW
}

// wg2Rows returns the scratch's rows and columns of an image on the
// input side, and how many of x's rows and columns (from 0) fall in it.
func wg2Rows(g backend.Conv2D, m int) (SR, SC, hn, wn int) {
	TH, TW, _ := wg2Tiles(g, m)
	SR, SC = 2*m*TH+2, 2*m*TW+2
	return SR, SC, max(0, min(g.H, SR-g.PH)), max(0, min(g.W, SC-g.PW))
}

// wg4g is G's rows applied to (x0, x1), a row or column of a phase's 2x2
// kernel: G = [1/2 0; 1/2 1/2; 1/6 -1/6; -1/6 -1/3; 0 1] (a sixth by
// float32(1/6)'s product, not a division: a weight takes it twice).
//
// The helpers return their values, not an array: an array returned is
// stored a value at a time and read back 16 bytes at a time, which the
// store buffer cannot forward (the weight transform was 2.5x slower so
// on Zen 1).
func wg4g(x0, x1 float32) (h0, h1, h2, h3, h4 float32) {
	const sixth = float32(1.0 / 6)
	return x0 * 0.5, (x0 + x1) * 0.5, (x0 - x1) * sixth, -(x0 + x1 + x1) * sixth, x1
}

// wg4gT is wg4g's adjoint, G^T h.
func wg4gT(h0, h1, h2, h3, h4 float32) (x0, x1 float32) {
	const sixth = float32(1.0 / 6)
	return (h0+h1)*0.5 + (h2-h3)*sixth, h1*0.5 - (h2+h3+h3)*sixth + h4
}

// WinogradS2Weight writes u [P, K, 4C] = G w_p G^T of each phase p of
// each 4x4 kernel of w [K, C, 4, 4].
func (c *CPU) WinogradS2Weight(m, K, C int, u, w backend.Buffer) {
	wg2Tile("WinogradS2Weight", m)
	us, ws := f(u), f(w)
	KC := K * C
	S := backend.WinogradStride(4 * KC)
	wgLen("WinogradS2Weight", "u", us, backend.WinogradS2Len(m, 4*KC))
	wgLen("WinogradS2Weight", "w", ws, 16*KC)
	Parallel(4*K, max(1, 1024/C), func(lo, hi int) { // in u's order: each point's values a run
		for kp := lo; kp < hi; kp++ {
			k, p := kp/4, kp%4
			r, s := p>>1, p&1
			uk := us[kp*C:]
			wkk := wk(ws, k, C)
			for ci := range wkk {
				g := &wkk[ci]
				a, b := g[r*4+s], g[r*4+s+2]
				cc, d := g[(r+2)*4+s], g[(r+2)*4+s+2]
				if m == 2 {
					uk[ci], uk[S+ci], uk[2*S+ci] = a, a+b, b
					uk[3*S+ci], uk[4*S+ci], uk[5*S+ci] = a+cc, (a+b)+(cc+d), b+d
					uk[6*S+ci], uk[7*S+ci], uk[8*S+ci] = cc, cc+d, d
					continue
				}
				g0, g1, g2, g3, g4 := wg4g(a, cc) // G w: the columns' transforms
				h0, h1, h2, h3, h4 := wg4g(b, d)
				u0, u1, u2, u3, u4 := uk[:5*S], uk[5*S:10*S], uk[10*S:15*S], uk[15*S:20*S], uk[20*S:] // then each row's
				u0[ci], u0[S+ci], u0[2*S+ci], u0[3*S+ci], u0[4*S+ci] = wg4g(g0, h0)
				u1[ci], u1[S+ci], u1[2*S+ci], u1[3*S+ci], u1[4*S+ci] = wg4g(g1, h1)
				u2[ci], u2[S+ci], u2[2*S+ci], u2[3*S+ci], u2[4*S+ci] = wg4g(g2, h2)
				u3[ci], u3[S+ci], u3[2*S+ci], u3[3*S+ci], u3[4*S+ci] = wg4g(g3, h3)
				u4[ci], u4[S+ci], u4[2*S+ci], u4[3*S+ci], u4[4*S+ci] = wg4g(g4, h4)
			}
		}
	})
}

// wk is kernel k's C 4x4 kernels of w [K, C, 4, 4].
func wk(w []float32, k, C int) [][16]float32 {
	return unsafe.Slice((*[16]float32)(w[k*C*16:]), C)
}

// WinogradS2WeightGrad adds G^T du_p G into dw [K, C, 4, 4], du [P, K,
// 4C].
func (c *CPU) WinogradS2WeightGrad(m, K, C int, dw, du backend.Buffer) {
	wg2Tile("WinogradS2WeightGrad", m)
	ws, us := f(dw), f(du)
	KC := K * C
	S := backend.WinogradStride(4 * KC)
	wgLen("WinogradS2WeightGrad", "du", us, backend.WinogradS2Len(m, 4*KC))
	wgLen("WinogradS2WeightGrad", "dw", ws, 16*KC)
	Parallel(4*K, max(1, 1024/C), func(lo, hi int) { // in du's order, as WinogradS2Weight
		for kp := lo; kp < hi; kp++ {
			k, p := kp/4, kp%4
			r, s := p>>1, p&1
			uk := us[kp*C:]
			wkk := wk(ws, k, C)
			for ci := range wkk {
				g := &wkk[ci]
				var a, b, cc, d float32
				if m == 2 {
					q := uk[ci:]
					s0, s1, s2 := q[0]+q[3*S], q[S]+q[4*S], q[2*S]+q[5*S]     // rows 0 and 1 of A^T q
					u0, u1, u2 := q[3*S]+q[6*S], q[4*S]+q[7*S], q[5*S]+q[8*S] // rows 1 and 2
					a, b, cc, d = s0+s1, s1+s2, u0+u1, u1+u2
				} else { // the rows' adjoint, then the columns'
					q0, q1, q2, q3, q4 := uk[ci:], uk[5*S+ci:], uk[10*S+ci:], uk[15*S+ci:], uk[20*S+ci:]
					x0, y0 := wg4gT(q0[0], q0[S], q0[2*S], q0[3*S], q0[4*S])
					x1, y1 := wg4gT(q1[0], q1[S], q1[2*S], q1[3*S], q1[4*S])
					x2, y2 := wg4gT(q2[0], q2[S], q2[2*S], q2[3*S], q2[4*S])
					x3, y3 := wg4gT(q3[0], q3[S], q3[2*S], q3[3*S], q3[4*S])
					x4, y4 := wg4gT(q4[0], q4[S], q4[2*S], q4[3*S], q4[4*S])
					a, cc = wg4gT(x0, x1, x2, x3, x4)
					b, d = wg4gT(y0, y1, y2, y3, y4)
				}
				g[r*4+s] += a
				g[r*4+s+2] += b
				g[(r+2)*4+s] += cc
				g[(r+2)*4+s+2] += d
			}
		}
	})
}

// WinogradS2Input writes v [P, T, 4C] = B^T d_p B of every phase's tile
// d_p of x [N, C, H, W] (0 outside x), parallel over the images.
func (c *CPU) WinogradS2Input(g backend.Conv2D, m int, v, x backend.Buffer) {
	wg2Check("WinogradS2Input", g, m)
	vs, xs := f(v), f(x)
	TH, TW, tp := wg2Tiles(g, m)
	C, HW, P := g.C, g.H*g.W, backend.WinogradS2Points(m)
	S := backend.WinogradStride(g.N * tp * 4 * C)
	wgLen("WinogradS2Input", "v", vs, backend.WinogradS2Len(m, g.N*tp*4*C))
	wgLen("WinogradS2Input", "x", xs, g.N*C*HW)
	SR, SC, hn, wn := wg2Rows(g, m)
	ld := SC * C
	c.chunked(g.N, SR*ld, true, func(lo, hi int, sc []float32) {
		for n := lo; n < hi; n++ {
			img := xs[n*C*HW : (n+1)*C*HW]
			for h := range hn { // row h of every plane, transposed
				packStrided(sc[((h+g.PH)*SC+g.PW)*C:], C, img[h*g.W:], HW, wn, C, C)
			}
			for ty := range TH {
				for tx := range TW {
					t := n*tp + ty*TW + tx
					o := (2*m*ty*SC + 2*m*tx) * C
					for p := range 4 {
						src := sc[o+((p>>1)*SC+p&1)*C : o+((2*m+1)*SC+2*m+2)*C]
						dst := vs[(t*4+p)*C : (t*4+p)*C+(P-1)*S+C]
						wg2in(m, src, 2*ld, 2*C, dst, S, C)
					}
				}
			}
		}
	})
}

// wg2in is tile m's input kernel on one phase's tile: AVX2 or Go.
func wg2in(m int, src []float32, ld, cs int, dst []float32, ds, n int) {
	switch {
	case m == 2 && wg2AVX2:
		wg2in256(&src[0], ld, cs, &dst[0], ds, n)
	case m == 2:
		wg2inGo(src, ld, cs, dst, ds, n)
	case wg4AVX2:
		wg4in256(&src[0], ld, cs, &dst[0], ds, n)
	default:
		wg4inGo(src, ld, cs, dst, ds, n)
	}
}

// wg2inGo writes B^T d B of one phase's tile, n channels a tap: tap (a,
// b) at src[a*ld+b*cs:], point e at dst[e*ds:].
func wg2inGo(src []float32, ld, cs int, dst []float32, ds, n int) {
	for k := range n {
		d00, d01, d02 := src[k], src[cs+k], src[2*cs+k]
		d10, d11, d12 := src[ld+k], src[ld+cs+k], src[ld+2*cs+k]
		d20, d21, d22 := src[2*ld+k], src[2*ld+cs+k], src[2*ld+2*cs+k]
		a0, a1, a2 := d00-d10, d01-d11, d02-d12 // B^T d: rows
		c0, c1, c2 := d20-d10, d21-d11, d22-d12
		for e, v := range [9]float32{a0 - a1, a1, a2 - a1, d10 - d11, d11, d12 - d11, c0 - c1, c1, c2 - c1} {
			dst[e*ds+k] = v
		}
	}
}

// wg4b is F(4x4, 2x2)'s B^T on (x0, ..., x4), B^T = [2 -1 -2 1 0; 0 2 1
// -1 0; 0 -2 3 -1 0; 0 1 0 -1 0; 0 2 -1 -2 1], in adds only (2x as x+x,
// exact), in wg4in256's order.
func wg4b(x0, x1, x2, x3, x4 float32) (t0, t1, t2, t3, t4 float32) {
	u := x1 - x3
	a, b := x0-x2, x2-x1
	u2 := u + u
	return (a + a) - u, u + (x1 + x2), (b + b) + (x2 - x3), u, u2 + (x4 - x2)
}

// wg4inGo writes B^T d B of one phase's 5x5 tile, n channels a tap: tap
// (a, b) at src[a*ld+b*cs:], point e = 5i+j at dst[e*ds:]. B^T's columns
// first (into t), then its rows.
func wg4inGo(src []float32, ld, cs int, dst []float32, ds, n int) {
	for k := range n {
		var t [5][5]float32 // t[i][b]: B^T d's row i
		for b := range 5 {
			o := b*cs + k
			t[0][b], t[1][b], t[2][b], t[3][b], t[4][b] = wg4b(src[o], src[ld+o], src[2*ld+o], src[3*ld+o], src[4*ld+o])
		}
		for i := range 5 {
			o := 5*i*ds + k
			dst[o], dst[o+ds], dst[o+2*ds], dst[o+3*ds], dst[o+4*ds] = wg4b(t[i][0], t[i][1], t[i][2], t[i][3], t[i][4])
		}
	}
}

// WinogradS2InputGrad adds into dx [N, C, H, W] the adjoint of
// WinogradS2Input on dv [P, T, 4C]: B dv_p B^T of every phase's tile,
// added where it read x (into a channel-last scratch per image, then
// added into dx's planes).
func (c *CPU) WinogradS2InputGrad(g backend.Conv2D, m int, dx, dv backend.Buffer) {
	wg2Check("WinogradS2InputGrad", g, m)
	vs, xs := f(dv), f(dx)
	TH, TW, tp := wg2Tiles(g, m)
	C, HW, P := g.C, g.H*g.W, backend.WinogradS2Points(m)
	S := backend.WinogradStride(g.N * tp * 4 * C)
	wgLen("WinogradS2InputGrad", "dv", vs, backend.WinogradS2Len(m, g.N*tp*4*C))
	wgLen("WinogradS2InputGrad", "dx", xs, g.N*C*HW)
	SR, SC, hn, wn := wg2Rows(g, m)
	ld := SC * C
	part := hn < g.H || wn < g.W // some of x is read by no tile: its gradient is 0
	c.chunked(g.N, SR*ld+C*HW, false, func(lo, hi int, sc []float32) {
		sc, ts := sc[:SR*ld], sc[SR*ld:]
		if part {
			clear(ts)
		}
		for n := lo; n < hi; n++ {
			clear(sc)
			for ty := range TH {
				for tx := range TW {
					t := n*tp + ty*TW + tx
					o := (2*m*ty*SC + 2*m*tx) * C
					for p := range 4 {
						dst := sc[o+((p>>1)*SC+p&1)*C : o+((2*m+1)*SC+2*m+2)*C]
						src := vs[(t*4+p)*C : (t*4+p)*C+(P-1)*S+C]
						wg2ingrad(m, dst, 2*ld, 2*C, src, S, C)
					}
				}
			}
			for h := range hn { // back to planes, row by row, then added
				packStrided(ts[h*g.W:], HW, sc[((h+g.PH)*SC+g.PW)*C:], C, C, wn, wn)
			}
			axpy(xs[n*C*HW:(n+1)*C*HW], ts, 1)
		}
	})
}

// wg2ingrad is tile m's input-gradient kernel on one phase's tile.
func wg2ingrad(m int, dst []float32, ld, cs int, src []float32, ss, n int) {
	switch {
	case m == 2 && wg2AVX2:
		wg2ingrad256(&dst[0], ld, cs, &src[0], ss, n)
	case m == 2:
		wg2ingradGo(dst, ld, cs, src, ss, n)
	case wg4AVX2:
		wg4ingrad256(&dst[0], ld, cs, &src[0], ss, n)
	default:
		wg4ingradGo(dst, ld, cs, src, ss, n)
	}
}

// wg2ingradGo adds the adjoint of wg2inGo: dst's taps += B src B^T, point
// e of src at src[e*ss:].
func wg2ingradGo(dst []float32, ld, cs int, src []float32, ss, n int) {
	for k := range n {
		var q [3][3]float32 // rows of dv B^T: the columns' adjoint
		for i := range 3 {
			p0, p1, p2 := src[(3*i)*ss+k], src[(3*i+1)*ss+k], src[(3*i+2)*ss+k]
			q[i] = [3]float32{p0, p1 - p0 - p2, p2}
		}
		for b := range 3 { // then the rows'
			o := b*cs + k
			dst[o] += q[0][b]
			dst[ld+o] += q[1][b] - q[0][b] - q[2][b]
			dst[2*ld+o] += q[2][b]
		}
	}
}

// wg4bT is wg4b's adjoint, B (v0, ..., v4), in wg4ingrad256's order.
func wg4bT(v0, v1, v2, v3, v4 float32) (d0, d1, d2, d3, d4 float32) {
	d0, v22 := v0+v0, v2+v2
	u := (v1 - v0) + (v3 + (v4 + v4))
	return d0, u + (v1 - v22), ((v1 - d0) + (v22 + v2)) - v4, -(u + v2), v4
}

// wg4ingradGo adds the adjoint of wg4inGo: dst's taps += B src B^T, point
// e of src at src[e*ss:]. The rows' adjoint first (into q), then the
// columns'.
func wg4ingradGo(dst []float32, ld, cs int, src []float32, ss, n int) {
	for k := range n {
		var q [5][5]float32 // q[i][b]
		for i := range 5 {
			o := 5*i*ss + k
			q[i][0], q[i][1], q[i][2], q[i][3], q[i][4] = wg4bT(src[o], src[o+ss], src[o+2*ss], src[o+3*ss], src[o+4*ss])
		}
		for b := range 5 {
			o := b*cs + k
			d0, d1, d2, d3, d4 := wg4bT(q[0][b], q[1][b], q[2][b], q[3][b], q[4][b])
			dst[o] += d0
			dst[ld+o] += d1
			dst[2*ld+o] += d2
			dst[3*ld+o] += d3
			dst[4*ld+o] += d4
		}
	}
}

// WinogradS2Output writes y [N, K, OH, OW] = beta*y + A^T m A of every
// tile of mt [P, T, K], plus bias [K] (nil: none), parallel over the
// images: each tile's outputs into a channel-last scratch of the image,
// then copied (or added) into y's planes.
func (c *CPU) WinogradS2Output(g backend.Conv2D, m int, y, mt, bias backend.Buffer, beta float32) {
	wg2Check("WinogradS2Output", g, m)
	if beta != 0 && beta != 1 {
		panic(fmt.Sprintf("cpu: WinogradS2Output: beta %v, want 0 or 1", beta))
	}
	ys, ms, bs := f(y), f(mt), f(bias)
	TH, TW, tp := wg2Tiles(g, m)
	K, L, P := g.K, g.OH*g.OW, backend.WinogradS2Points(m)
	S := backend.WinogradStride(g.N * tp * K)
	wgLen("WinogradS2Output", "m", ms, backend.WinogradS2Len(m, g.N*tp*K))
	wgLen("WinogradS2Output", "y", ys, g.N*K*L)
	if bs != nil {
		wgLen("WinogradS2Output", "bias", bs, K)
	} else { // zeros from the pool: no garbage a step
		zb := c.Alloc(K, true)
		defer c.Free(zb)
		bs = f(zb)
	}
	ld := m * TW * K
	extra := 0
	if beta != 0 {
		extra = K * L // the image's planes, added into y
	}
	c.chunked(g.N, m*TH*ld+extra, false, func(lo, hi int, sc []float32) {
		sc, ts := sc[:m*TH*ld], sc[m*TH*ld:]
		for n := lo; n < hi; n++ {
			for ty := range TH {
				for tx := range TW {
					t := n*tp + ty*TW + tx
					src := ms[t*K : t*K+(P-1)*S+K]
					o := m*ty*ld + m*tx*K
					wg2out(m, src, S, sc[o:o+(m-1)*ld+m*K], ld, bs, K)
				}
			}
			img := ys[n*K*L : (n+1)*K*L]
			if beta != 0 {
				img = ts
			}
			if ld == g.OW*K { // width a multiple of m: the image's L positions in a row
				packStrided(img, L, sc, K, K, L, L)
			} else {
				for oh := range g.OH {
					packStrided(img[oh*g.OW:], L, sc[oh*ld:], K, K, g.OW, g.OW)
				}
			}
			if beta != 0 {
				axpy(ys[n*K*L:(n+1)*K*L], ts, 1)
			}
		}
	})
}

// wg2out is tile m's output kernel on one tile.
func wg2out(m int, src []float32, ss int, dst []float32, ld int, bias []float32, n int) {
	switch {
	case m == 2 && wg2AVX2:
		wg2out256(&src[0], ss, &dst[0], ld, &bias[0], n)
	case m == 2:
		wg2outGo(src, ss, dst, ld, bias, n)
	case wg4AVX2:
		wg4out256(&src[0], ss, &dst[0], ld, &bias[0], n)
	default:
		wg4outGo(src, ss, dst, ld, bias, n)
	}
}

// wg2outGo writes the 2x2 outputs A^T m A + bias of one tile, n channels
// a point: point e at src[e*ss:], the outputs at dst, dst[n:], dst[ld:],
// dst[ld+n:].
func wg2outGo(src []float32, ss int, dst []float32, ld int, bias []float32, n int) {
	for k := range n {
		var s, u [3]float32
		for j := range 3 {
			m0, m1, m2 := src[j*ss+k], src[(3+j)*ss+k], src[(6+j)*ss+k]
			s[j], u[j] = m0+m1, m1+m2
		}
		b := bias[k]
		dst[k], dst[n+k] = s[0]+s[1]+b, s[1]+s[2]+b
		dst[ld+k], dst[ld+n+k] = u[0]+u[1]+b, u[1]+u[2]+b
	}
}

// wg4a is F(4x4, 2x2)'s A^T on (x0, ..., x4), A^T = [1 1 1 1 0; 0 1 -1 2
// 0; 0 1 1 4 0; 0 1 -1 8 1], in adds only (2x, 4x, 8x by doubling,
// exact), in wg4out256's order.
func wg4a(x0, x1, x2, x3, x4 float32) (y0, y1, y2, y3 float32) {
	p, q := x1+x2, x1-x2
	x32 := x3 + x3
	x34 := x32 + x32
	x38 := x34 + x34
	return (x0 + p) + x3, q + x32, p + x34, (q + x38) + x4
}

// wg4outGo writes the 4x4 outputs A^T m A + bias of one tile, n channels
// a point: point e = 5i+j at src[e*ss:], output (o, c) at dst[o*ld+c*n:].
// A^T's rows over i first (into r), then over j.
func wg4outGo(src []float32, ss int, dst []float32, ld int, bias []float32, n int) {
	for k := range n {
		var r [4][5]float32 // r[o][j]
		for j := range 5 {
			o := j*ss + k
			r[0][j], r[1][j], r[2][j], r[3][j] = wg4a(src[o], src[o+5*ss], src[o+10*ss], src[o+15*ss], src[o+20*ss])
		}
		b := bias[k]
		for i := range 4 {
			y0, y1, y2, y3 := wg4a(r[i][0], r[i][1], r[i][2], r[i][3], r[i][4])
			o := i*ld + k
			dst[o], dst[o+n], dst[o+2*n], dst[o+3*n] = y0+b, y1+b, y2+b, y3+b
		}
	}
}

// WinogradS2OutputGrad writes dm [P, T, K] = A dy A^T of every tile of
// dy [N, K, OH, OW] (0 past OH or OW): WinogradS2Output's adjoint,
// through a channel-last copy of each image's dy.
func (c *CPU) WinogradS2OutputGrad(g backend.Conv2D, m int, dm, dy backend.Buffer) {
	wg2Check("WinogradS2OutputGrad", g, m)
	ms, ys := f(dm), f(dy)
	TH, TW, tp := wg2Tiles(g, m)
	K, L, P := g.K, g.OH*g.OW, backend.WinogradS2Points(m)
	S := backend.WinogradStride(g.N * tp * K)
	wgLen("WinogradS2OutputGrad", "dm", ms, backend.WinogradS2Len(m, g.N*tp*K))
	wgLen("WinogradS2OutputGrad", "dy", ys, g.N*K*L)
	ld := m * TW * K
	c.chunked(g.N, m*TH*ld, true, func(lo, hi int, sc []float32) { // the edges' rows and columns past OH, OW stay 0
		for n := lo; n < hi; n++ {
			img := ys[n*K*L : (n+1)*K*L]
			if ld == g.OW*K {
				packStrided(sc, K, img, L, L, K, K)
			} else {
				for oh := range g.OH {
					packStrided(sc[oh*ld:], K, img[oh*g.OW:], L, g.OW, K, K)
				}
			}
			for ty := range TH {
				for tx := range TW {
					t := n*tp + ty*TW + tx
					o := m*ty*ld + m*tx*K
					wg2outgrad(m, sc[o:o+(m-1)*ld+m*K], ld, ms[t*K:t*K+(P-1)*S+K], S, K)
				}
			}
		}
	})
}

// wg2outgrad is tile m's output-gradient kernel on one tile.
func wg2outgrad(m int, src []float32, ld int, dst []float32, ds, n int) {
	switch {
	case m == 2 && wg2AVX2:
		wg2outgrad256(&src[0], ld, &dst[0], ds, n)
	case m == 2:
		wg2outgradGo(src, ld, dst, ds, n)
	case wg4AVX2:
		wg4outgrad256(&src[0], ld, &dst[0], ds, n)
	default:
		wg4outgradGo(src, ld, dst, ds, n)
	}
}

// wg2outgradGo writes wg2outGo's adjoint: the 9 points of A dy A^T at
// dst[e*ds:] from dy's 2x2 tile at src, src[n:], src[ld:], src[ld+n:].
func wg2outgradGo(src []float32, ld int, dst []float32, ds, n int) {
	for k := range n {
		a, b, c, d := src[k], src[n+k], src[ld+k], src[ld+n+k]
		for e, v := range [9]float32{a, a + b, b, a + c, (a + b) + (c + d), b + d, c, c + d, d} {
			dst[e*ds+k] = v
		}
	}
}

// wg4aT is wg4a's adjoint, A (y0, ..., y3), in wg4outgrad256's order.
func wg4aT(y0, y1, y2, y3 float32) (m0, m1, m2, m3, m4 float32) {
	y12, y22, y32 := y1+y1, y2+y2, y3+y3
	y24, y34 := y22+y22, y32+y32
	y38 := y34 + y34
	return y0, (y0 + y1) + (y2 + y3), (y0 - y1) + (y2 - y3), (y0 + y12) + (y24 + y38), y3
}

// wg4outgradGo writes wg4outGo's adjoint: the 25 points of A dy A^T at
// dst[e*ds:] from dy's 4x4 tile, (o, c) at src[o*ld+c*n:]. The rows over
// o first (into r), then the columns.
func wg4outgradGo(src []float32, ld int, dst []float32, ds, n int) {
	for k := range n {
		var r [5][4]float32 // r[i][c]
		for c := range 4 {
			o := c*n + k
			r[0][c], r[1][c], r[2][c], r[3][c], r[4][c] = wg4aT(src[o], src[ld+o], src[2*ld+o], src[3*ld+o])
		}
		for i := range 5 {
			o := 5*i*ds + k
			dst[o], dst[o+ds], dst[o+2*ds], dst[o+3*ds], dst[o+4*ds] = wg4aT(r[i][0], r[i][1], r[i][2], r[i][3])
		}
	}
}
