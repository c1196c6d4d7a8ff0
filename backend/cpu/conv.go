package cpu

import "github.com/golem-ml/golem/backend"

var _ backend.Im2Col = (*CPU)(nil)

// Im2Col writes the column matrix [G, C/G*KH*KW, N*OH*OW] of x (see
// backend.Conv2D), pad outside x, parallel over (row, image) blocks: row
// (c, i, j) of image n reads plane (n, c) only. Each output row is a
// strided run of an input row; a stride-1 run inside the input is a copy.
func (c *CPU) Im2Col(g backend.Conv2D, col, x backend.Buffer, pad float32) {
	cs, xs := f(col), f(x)
	L := g.OH * g.OW
	kk := g.KH * g.KW
	Parallel(g.C*kk*g.N, grain(L), func(lo, hi int) {
		for b := lo; b < hi; b++ {
			r, n := b/g.N, b%g.N
			ch, i, j := r/kk, r%kk/g.KW, r%g.KW
			dst := cs[b*L : (b+1)*L]
			img := xs[(n*g.C+ch)*g.H*g.W : (n*g.C+ch+1)*g.H*g.W]
			w0 := j*g.DW - g.PW
			inside := g.SW == 1 && w0 >= 0 && w0+g.OW <= g.W
			for oh := range g.OH {
				d := dst[oh*g.OW : (oh+1)*g.OW]
				h := oh*g.SH - g.PH + i*g.DH
				if h < 0 || h >= g.H {
					for k := range d {
						d[k] = pad
					}
					continue
				}
				row := img[h*g.W : (h+1)*g.W]
				if inside {
					copy(d, row[w0:w0+g.OW])
					continue
				}
				for ow := range d {
					w := w0 + ow*g.SW
					if w < 0 || w >= g.W {
						d[ow] = pad
					} else {
						d[ow] = row[w]
					}
				}
			}
		}
	})
}

// Col2Im adds the column matrix col back into dx [N, C, H, W], parallel
// over the planes (n, c): each owns its plane and sums its KH*KW rows in
// order, so it is race free and bit-identical to a serial run.
func (c *CPU) Col2Im(g backend.Conv2D, dx, col backend.Buffer) {
	cs, xs := f(col), f(dx)
	L := g.OH * g.OW
	kk := g.KH * g.KW
	Parallel(g.N*g.C, grain(kk*L), func(lo, hi int) {
		for p := lo; p < hi; p++ {
			n, ch := p/g.C, p%g.C
			img := xs[p*g.H*g.W : (p+1)*g.H*g.W]
			for k := range kk {
				i, j := k/g.KW, k%g.KW
				src := cs[((ch*kk+k)*g.N+n)*L : ((ch*kk+k)*g.N+n+1)*L]
				w0 := j*g.DW - g.PW
				inside := g.SW == 1 && w0 >= 0 && w0+g.OW <= g.W
				for oh := range g.OH {
					h := oh*g.SH - g.PH + i*g.DH
					if h < 0 || h >= g.H {
						continue
					}
					s := src[oh*g.OW : (oh+1)*g.OW]
					row := img[h*g.W : (h+1)*g.W]
					if inside {
						axpy(row[w0:w0+g.OW], s, 1)
						continue
					}
					for ow, v := range s {
						w := w0 + ow*g.SW
						if w >= 0 && w < g.W {
							row[w] += v
						}
					}
				}
			}
		}
	})
}
