package cpu

import (
	"fmt"

	"github.com/golem-ml/golem/backend"
)

var _ backend.WinogradS2 = (*CPU)(nil)

// Winograd's F(2x2, 2x2) for 4x4 stride-2 convolutions
// (backend.WinogradS2): B^T = [1 -1 0; 0 1 0; 0 -1 1], G = [1 0; 1 1;
// 0 1], A^T = [1 1 0; 0 1 1], each applied to the rows of a tile, then to
// its columns. As in winograd.go, every kernel is parallel over the
// images, each image copied into (or added from) a zero-bordered
// channel-last scratch of 4*ceil(OH/2)+2 x 4*ceil(OW/2)+2 positions
// (input side) or 2*ceil(OH/2) x 2*ceil(OW/2) (output side) by
// packStrided's transposes, so that no tile checks its bounds and every
// tap is a run of channels. The stride phases are never split out: phase
// (r, s)'s 3x3 tap (a, b) of tile (ty, tx) is the scratch's position
// (4ty+2a+r, 4tx+2b+s), so the input transforms read the scratch with a
// row stride of two rows and a tap stride of two positions.

// wg2AVX2 selects the tile kernels in AVX2 (conv256_amd64.s), on every
// machine that has it: AVX-512 ones too, there being no AVX-512 versions.
// Tests turn it off to run the Go ones.
var wg2AVX2 = haveAVX2FMA

// wg2Check panics unless g is a 4x4 stride-2 convolution of one group
// and no dilation.
func wg2Check(op string, g backend.Conv2D) {
	if g.KH != 4 || g.KW != 4 || g.SH != 2 || g.SW != 2 || g.DH != 1 || g.DW != 1 || g.Groups != 1 || g.Phased ||
		g.OH != (g.H+2*g.PH-4)/2+1 || g.OW != (g.W+2*g.PW-4)/2+1 || g.OH < 1 || g.OW < 1 {
		panic(fmt.Sprintf("cpu: %s: not a 4x4 stride-2 convolution of one group: %+v", op, g))
	}
}

// wg2Rows returns the scratch's rows and columns of an image on the
// input side, and how many of x's rows and columns (from 0) fall in it.
func wg2Rows(g backend.Conv2D) (SR, SC, hn, wn int) {
	TH, TW, _ := wgTiles(g)
	SR, SC = 4*TH+2, 4*TW+2
	return SR, SC, max(0, min(g.H, SR-g.PH)), max(0, min(g.W, SC-g.PW))
}

// WinogradS2Weight writes u [9, K, 4C] = G w_p G^T of each phase p of
// each 4x4 kernel of w [K, C, 4, 4].
func (c *CPU) WinogradS2Weight(K, C int, u, w backend.Buffer) {
	us, ws := f(u), f(w)
	KC := K * C
	S := backend.WinogradStride(4 * KC)
	wgLen("WinogradS2Weight", "u", us, backend.WinogradS2Len(4*KC))
	wgLen("WinogradS2Weight", "w", ws, 16*KC)
	Parallel(KC, 1024, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			k, ci := i/C, i%C
			g := (*[16]float32)(ws[i*16:])
			for p := range 4 {
				r, s := p>>1, p&1
				a, b := g[r*4+s], g[r*4+s+2]
				cc, d := g[(r+2)*4+s], g[(r+2)*4+s+2]
				o := k*4*C + p*C + ci
				for e, v := range [9]float32{a, a + b, b, a + cc, (a + b) + (cc + d), b + d, cc, cc + d, d} {
					us[e*S+o] = v
				}
			}
		}
	})
}

// WinogradS2WeightGrad adds G^T du_p G into dw [K, C, 4, 4], du [9, K,
// 4C].
func (c *CPU) WinogradS2WeightGrad(K, C int, dw, du backend.Buffer) {
	ws, us := f(dw), f(du)
	KC := K * C
	S := backend.WinogradStride(4 * KC)
	wgLen("WinogradS2WeightGrad", "du", us, backend.WinogradS2Len(4*KC))
	wgLen("WinogradS2WeightGrad", "dw", ws, 16*KC)
	Parallel(KC, 1024, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			k, ci := i/C, i%C
			g := (*[16]float32)(ws[i*16:])
			for p := range 4 {
				r, s := p>>1, p&1
				o := k*4*C + p*C + ci
				var q [9]float32
				for e := range q {
					q[e] = us[e*S+o]
				}
				s0, s1, s2 := q[0]+q[3], q[1]+q[4], q[2]+q[5] // rows 0 and 1 of A^T q
				u0, u1, u2 := q[3]+q[6], q[4]+q[7], q[5]+q[8] // rows 1 and 2
				g[r*4+s] += s0 + s1
				g[r*4+s+2] += s1 + s2
				g[(r+2)*4+s] += u0 + u1
				g[(r+2)*4+s+2] += u1 + u2
			}
		}
	})
}

// WinogradS2Input writes v [9, T, 4C] = B^T d_p B of every phase's tile
// d_p of x [N, C, H, W] (0 outside x), parallel over the images.
func (c *CPU) WinogradS2Input(g backend.Conv2D, v, x backend.Buffer) {
	wg2Check("WinogradS2Input", g)
	vs, xs := f(v), f(x)
	TH, TW, tp := wgTiles(g)
	C, HW := g.C, g.H*g.W
	S := backend.WinogradStride(g.N * tp * 4 * C)
	wgLen("WinogradS2Input", "v", vs, backend.WinogradS2Len(g.N*tp*4*C))
	wgLen("WinogradS2Input", "x", xs, g.N*C*HW)
	SR, SC, hn, wn := wg2Rows(g)
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
					o := (4*ty*SC + 4*tx) * C
					for p := range 4 {
						src := sc[o+((p>>1)*SC+p&1)*C : o+(5*SC+6)*C]
						dst := vs[(t*4+p)*C : (t*4+p)*C+8*S+C]
						if wg2AVX2 {
							wg2in256(&src[0], 2*ld, 2*C, &dst[0], S, C)
						} else {
							wg2inGo(src, 2*ld, 2*C, dst, S, C)
						}
					}
				}
			}
		}
	})
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

// WinogradS2InputGrad adds into dx [N, C, H, W] the adjoint of
// WinogradS2Input on dv [9, T, 4C]: B dv_p B^T of every phase's tile,
// added where it read x (into a channel-last scratch per image, then
// added into dx's planes).
func (c *CPU) WinogradS2InputGrad(g backend.Conv2D, dx, dv backend.Buffer) {
	wg2Check("WinogradS2InputGrad", g)
	vs, xs := f(dv), f(dx)
	TH, TW, tp := wgTiles(g)
	C, HW := g.C, g.H*g.W
	S := backend.WinogradStride(g.N * tp * 4 * C)
	wgLen("WinogradS2InputGrad", "dv", vs, backend.WinogradS2Len(g.N*tp*4*C))
	wgLen("WinogradS2InputGrad", "dx", xs, g.N*C*HW)
	SR, SC, hn, wn := wg2Rows(g)
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
					o := (4*ty*SC + 4*tx) * C
					for p := range 4 {
						dst := sc[o+((p>>1)*SC+p&1)*C : o+(5*SC+6)*C]
						src := vs[(t*4+p)*C : (t*4+p)*C+8*S+C]
						if wg2AVX2 {
							wg2ingrad256(&dst[0], 2*ld, 2*C, &src[0], S, C)
						} else {
							wg2ingradGo(dst, 2*ld, 2*C, src, S, C)
						}
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

// WinogradS2Output writes y [N, K, OH, OW] = beta*y + A^T m A of every
// tile of m [9, T, K], plus bias [K] (nil: none), parallel over the
// images: each tile's outputs into a channel-last scratch of the image,
// then copied (or added) into y's planes.
func (c *CPU) WinogradS2Output(g backend.Conv2D, y, m, bias backend.Buffer, beta float32) {
	wg2Check("WinogradS2Output", g)
	if beta != 0 && beta != 1 {
		panic(fmt.Sprintf("cpu: WinogradS2Output: beta %v, want 0 or 1", beta))
	}
	ys, ms, bs := f(y), f(m), f(bias)
	TH, TW, tp := wgTiles(g)
	K, L := g.K, g.OH*g.OW
	S := backend.WinogradStride(g.N * tp * K)
	wgLen("WinogradS2Output", "m", ms, backend.WinogradS2Len(g.N*tp*K))
	wgLen("WinogradS2Output", "y", ys, g.N*K*L)
	if bs != nil {
		wgLen("WinogradS2Output", "bias", bs, K)
	} else { // zeros from the pool: no garbage a step
		zb := c.Alloc(K, true)
		defer c.Free(zb)
		bs = f(zb)
	}
	ld := 2 * TW * K
	extra := 0
	if beta != 0 {
		extra = K * L // the image's planes, added into y
	}
	c.chunked(g.N, 2*TH*ld+extra, false, func(lo, hi int, sc []float32) {
		sc, ts := sc[:2*TH*ld], sc[2*TH*ld:]
		for n := lo; n < hi; n++ {
			for ty := range TH {
				for tx := range TW {
					t := n*tp + ty*TW + tx
					src := ms[t*K : t*K+8*S+K]
					dst := sc[2*ty*ld+2*tx*K : 2*ty*ld+2*tx*K+ld+2*K]
					if wg2AVX2 {
						wg2out256(&src[0], S, &dst[0], ld, &bs[0], K)
					} else {
						wg2outGo(src, S, dst, ld, bs, K)
					}
				}
			}
			img := ys[n*K*L : (n+1)*K*L]
			if beta != 0 {
				img = ts
			}
			if ld == g.OW*K { // even width: the image's L positions in a row
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

// WinogradS2OutputGrad writes dm [9, T, K] = A dy A^T of every tile of
// dy [N, K, OH, OW] (0 past OH or OW): WinogradS2Output's adjoint,
// through a channel-last copy of each image's dy.
func (c *CPU) WinogradS2OutputGrad(g backend.Conv2D, dm, dy backend.Buffer) {
	wg2Check("WinogradS2OutputGrad", g)
	ms, ys := f(dm), f(dy)
	TH, TW, tp := wgTiles(g)
	K, L := g.K, g.OH*g.OW
	S := backend.WinogradStride(g.N * tp * K)
	wgLen("WinogradS2OutputGrad", "dm", ms, backend.WinogradS2Len(g.N*tp*K))
	wgLen("WinogradS2OutputGrad", "dy", ys, g.N*K*L)
	ld := 2 * TW * K
	c.chunked(g.N, 2*TH*ld, true, func(lo, hi int, sc []float32) { // the odd edges' row and column stay 0
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
					src := sc[2*ty*ld+2*tx*K : 2*ty*ld+2*tx*K+ld+2*K]
					dst := ms[t*K : t*K+8*S+K]
					if wg2AVX2 {
						wg2outgrad256(&src[0], ld, &dst[0], S, K)
					} else {
						wg2outgradGo(src, ld, dst, S, K)
					}
				}
			}
		}
	})
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
