package cpu

import "github.com/golem-ml/golem/backend"

// Im2Col writes the column matrix [G, C/G*KH*KW, N*OH*OW] of x (see
// backend.Conv2D), pad outside x,, parallel over its rows: row (c, i, j) reads channel c
// only. Each output row of the image is a strided run of the input row;
// the stride-1 run is a copy.
func (c *CPU) Im2Col(g backend.Conv2D, col, x backend.Buffer, pad float32) {
	cs, xs := f(col), f(x)
	L := g.OH * g.OW
	kk := g.KH * g.KW
	Parallel(g.C*kk, grain(g.N*L), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			ch, i, j := r/kk, r%kk/g.KW, r%g.KW
			dst := cs[r*g.N*L : (r+1)*g.N*L]
			for n := range g.N {
				img := xs[(n*g.C+ch)*g.H*g.W : (n*g.C+ch+1)*g.H*g.W]
				for oh := range g.OH {
					d := dst[(n*g.OH+oh)*g.OW : (n*g.OH+oh+1)*g.OW]
					h := oh*g.SH - g.PH + i*g.DH
					if h < 0 || h >= g.H {
						for k := range d {
							d[k] = pad
						}
						continue
					}
					row := img[h*g.W : (h+1)*g.W]
					w0 := j*g.DW - g.PW
					if g.SW == 1 && w0 >= 0 && w0+g.OW <= g.W {
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
		}
	})
}

// Col2Im adds the column matrix col back into dx [N, C, H, W], parallel
// over channels (each owns its planes, so it is race free and sums in
// the same order as a serial run).
func (c *CPU) Col2Im(g backend.Conv2D, dx, col backend.Buffer) {
	cs, xs := f(col), f(dx)
	L := g.OH * g.OW
	kk := g.KH * g.KW
	Parallel(g.C, grain(kk*g.N*L), func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			for k := range kk {
				r := ch*kk + k
				i, j := k/g.KW, k%g.KW
				src := cs[r*g.N*L : (r+1)*g.N*L]
				for n := range g.N {
					img := xs[(n*g.C+ch)*g.H*g.W : (n*g.C+ch+1)*g.H*g.W]
					for oh := range g.OH {
						h := oh*g.SH - g.PH + i*g.DH
						if h < 0 || h >= g.H {
							continue
						}
						s := src[(n*g.OH+oh)*g.OW : (n*g.OH+oh+1)*g.OW]
						row := img[h*g.W : (h+1)*g.W]
						w0 := j*g.DW - g.PW
						if g.SW == 1 && w0 >= 0 && w0+g.OW <= g.W {
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
		}
	})
}
