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
			lo, hi := validCols(w0, g.SW, g.W, g.OW)
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
				for k := range lo {
					d[k] = pad
				}
				if g.SW == 1 {
					copy(d[lo:hi], row[w0+lo:w0+hi])
				} else {
					for ow := lo; ow < hi; ow++ {
						d[ow] = row[w0+ow*g.SW]
					}
				}
				for k := hi; k < len(d); k++ {
					d[k] = pad
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
				lo, hi := validCols(w0, g.SW, g.W, g.OW)
				for oh := range g.OH {
					h := oh*g.SH - g.PH + i*g.DH
					if h < 0 || h >= g.H || lo >= hi {
						continue
					}
					s := src[oh*g.OW : (oh+1)*g.OW]
					row := img[h*g.W : (h+1)*g.W]
					if g.SW == 1 && hi-lo >= 16 { // shorter rows cost more in the call
						axpy(row[w0+lo:w0+hi], s[lo:hi], 1)
						continue
					}
					for ow := lo; ow < hi; ow++ {
						row[w0+ow*g.SW] += s[ow]
					}
				}
			}
		}
	})
}

// validCols is the range [lo, hi) of output columns ow whose input column
// w0 + ow*stride lies inside [0, W) (lo = hi when none does).
func validCols(w0, stride, W, OW int) (lo, hi int) {
	if w0 < 0 {
		lo = (-w0 + stride - 1) / stride
	}
	hi = OW
	if last := w0 + (OW-1)*stride; last >= W {
		hi = (W - w0 + stride - 1) / stride
	}
	lo, hi = min(lo, OW), max(min(hi, OW), 0)
	if hi < lo {
		hi = lo
	}
	return lo, hi
}
