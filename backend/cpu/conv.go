package cpu

import "github.com/golem-ml/golem/backend"

var _ backend.Im2Col = (*CPU)(nil)

// Im2Col writes the column matrix [G, C/G*KH*KW, N*OH*OW] of x (see
// backend.Conv2D), pad outside x, parallel over (row, image) blocks: row
// (c, i, j) of image n reads plane (n, c) only. Each output row is a
// strided run of an input row; a stride-1 run inside the input is a copy.
// The rows and columns inside the input are worked out once per kernel
// row and column, and the blocks walked by counters: the maps are small
// (8x8 in vqvae-32), where a division per block or a call per row costs
// as much as the copying. Where a block is a shifted copy of a plane (a
// stride-1 convolution as wide as its input, im2colShifted) or of a phase
// of one (a strided one as wide as its input over the stride,
// im2colPhases), it is copied as one run.
func (c *CPU) Im2Col(g backend.Conv2D, col, x backend.Buffer, pad float32) {
	cs, xs := f(col), f(x)
	L, HW := g.OH*g.OW, g.H*g.W
	kk := g.KH * g.KW
	rows, cols := convRanges(g)
	// A stride-1 convolution whose output is as wide as its input (3x3
	// padding 1, the sub-pixel phases) reads each kernel tap's plane as
	// the input plane shifted: one copy per plane, then the columns that
	// wrapped around a row edge set to pad.
	shifted := g.SH == 1 && g.SW == 1 && g.DW == 1 && g.OW == g.W
	if usePhases(g) {
		c.im2colPhases(g, cs, xs, pad)
		return
	}
	Parallel(g.C*kk*g.N, grain(L), func(lo, hi int) {
		r, n := lo/g.N, lo%g.N
		ch, i, j := r/kk, r%kk/g.KW, r%g.KW
		for b := lo; b < hi; b++ {
			dst := cs[b*L : (b+1)*L]
			img := xs[(n*g.C+ch)*HW : (n*g.C+ch+1)*HW]
			rr, cr := rows[i], cols[j]
			if shifted {
				im2colShifted(dst, img, rr, cr, g.W, pad)
			} else {
				im2colRows(dst, img, rr, cr, g, pad)
			}
			if n++; n == g.N {
				n = 0
				if j++; j == g.KW {
					j = 0
					if i++; i == g.KH {
						i = 0
						ch++
					}
				}
			}
		}
	})
}

// im2colPhases is Im2Col for a strided convolution whose output is as
// wide as its input over the stride (vqvae-32's 4x4 stride-2 padding-1
// layers, patch embeddings): x's planes are first split into their SH*SW
// phases (rows h = SH*r + py, columns w = SW*q + px), so that every
// kernel tap reads one phase plane at a shift, as im2colShifted copies.
func (c *CPU) im2colPhases(g backend.Conv2D, cs, xs []float32, pad float32) {
	HW, ph := g.H*g.W, g.H/g.SH*(g.W/g.SW)
	buf := c.Alloc(g.N*g.C*HW, false)
	defer c.Free(buf)
	sp := f(buf)
	splitPhases(g, sp, xs)
	rows, cols := phaseTaps(g)
	PW := g.W / g.SW
	L, kk := g.OH*g.OW, g.KH*g.KW
	Parallel(g.C*kk*g.N, grain(L), func(lo, hi int) {
		r, n := lo/g.N, lo%g.N
		ch, i, j := r/kk, r%kk/g.KW, r%g.KW
		for b := lo; b < hi; b++ {
			rt, ct := rows[i], cols[j]
			plane := sp[(n*g.C+ch)*HW+(rt.phase*g.SW+ct.phase)*ph:]
			im2colShifted(cs[b*L:(b+1)*L], plane[:ph], rt.s, ct.s, PW, pad)
			if n++; n == g.N {
				n = 0
				if j++; j == g.KW {
					j = 0
					if i++; i == g.KH {
						i = 0
						ch++
					}
				}
			}
		}
	})
}

// usePhases reports whether a strided convolution is as wide as its
// input over the stride, so that its column matrix reads x's stride
// phases at shifts (im2colPhases).
func usePhases(g backend.Conv2D) bool {
	shifted := g.SH == 1 && g.SW == 1 && g.DW == 1 && g.OW == g.W
	return !shifted && g.H%g.SH == 0 && g.W%g.SW == 0 && g.OW == g.W/g.SW
}

// splitPhases writes x's planes split into their SH*SW stride phases into
// sp (x's size): plane p's phase (py, px), rows h = SH*r + py and columns
// w = SW*q + px, is the (py*SW+px)-th run of H/SH*W/SW values of sp's
// plane p. With AVX2 (haveVec256) a stride-2 row is split into both its
// column phases in one pass (deinterleave2).
func splitPhases(g backend.Conv2D, sp, xs []float32) {
	HW, PH, PW := g.H*g.W, g.H/g.SH, g.W/g.SW
	ph := PH * PW // a phase plane's size
	Parallel(g.N*g.C, grain(HW), func(lo, hi int) {
		for p := lo; p < hi; p++ {
			img, dst := xs[p*HW:(p+1)*HW], sp[p*HW:(p+1)*HW]
			if haveVec256 && g.SW == 2 && PW >= 8 {
				// both column phases of a row in one pass
				for py := range g.SH {
					d0, d1 := dst[2*py*ph:(2*py+1)*ph], dst[(2*py+1)*ph:(2*py+2)*ph]
					for r := range PH {
						row := img[(r*g.SH+py)*g.W : (r*g.SH+py+1)*g.W]
						deinterleave2(d0[r*PW:(r+1)*PW], d1[r*PW:(r+1)*PW], row)
					}
				}
				continue
			}
			for py := range g.SH {
				for px := range g.SW {
					d := dst[(py*g.SW+px)*ph : (py*g.SW+px+1)*ph]
					for r := range PH {
						row := img[(r*g.SH+py)*g.W+px:]
						row = row[:(PW-1)*g.SW+1]
						dr := d[r*PW : (r+1)*PW]
						for q := range dr {
							dr[q] = row[q*g.SW]
						}
					}
				}
			}
		}
	})
}

// deinterleave2 writes a[i] = src[2i], b[i] = src[2i+1] for i <
// len(a) (len(b) == len(a), len(src) == 2*len(a)): deinterleave256's
// chunks of 8, the rest in Go.
func deinterleave2(a, b, src []float32) {
	n := len(a)
	b, src = b[:n], src[:2*n]
	n8 := n &^ 7
	if n8 > 0 {
		deinterleave256(&a[0], &b[0], &src[0], n8)
	}
	for i := n8; i < n; i++ {
		a[i], b[i] = src[2*i], src[2*i+1]
	}
}

// A tap is where one kernel row (column) of a phased convolution reads:
// its phase, and the span it reads of that phase's rows (columns) at
// stride 1.
type tap struct {
	phase int
	s     span
}

// phaseTaps returns g's taps for each kernel row and column: kernel row i
// reads phase row (i*DH-PH) mod SH at a shift of floor((i*DH-PH)/SH)
// phase rows; columns alike.
func phaseTaps(g backend.Conv2D) (rows, cols []tap) {
	taps := func(k, d, p, stride, n, out int) []tap {
		t := make([]tap, k)
		for i := range t {
			o := i*d - p
			ph := ((o % stride) + stride) % stride
			off := (o - ph) / stride
			lo, hi := validCols(off, 1, n, out)
			t[i] = tap{ph, span{off, lo, hi}}
		}
		return t
	}
	return taps(g.KH, g.DH, g.PH, g.SH, g.H/g.SH, g.OH), taps(g.KW, g.DW, g.PW, g.SW, g.W/g.SW, g.OW)
}

// im2colRows writes one block (kernel tap, image) of the column matrix
// row by row.
func im2colRows(dst, img []float32, rr, cr span, g backend.Conv2D, pad float32) {
	L := len(dst)
	for k := range dst[:rr.lo*g.OW] {
		dst[k] = pad
	}
	for k := rr.hi * g.OW; k < L; k++ {
		dst[k] = pad
	}
	for oh := rr.lo; oh < rr.hi; oh++ {
		d := dst[oh*g.OW : (oh+1)*g.OW]
		for k := range d[:cr.lo] {
			d[k] = pad
		}
		for k := cr.hi; k < len(d); k++ {
			d[k] = pad
		}
		if cr.lo >= cr.hi {
			continue
		}
		dv := d[cr.lo:cr.hi]
		src := img[(rr.off+oh*g.SH)*g.W+cr.off+cr.lo*g.SW:]
		switch g.SW {
		case 1:
			src = src[:len(dv)]
			for k, v := range src {
				dv[k] = v
			}
		case 2:
			src = src[:2*len(dv)-1]
			for k := range dv {
				dv[k] = src[2*k]
			}
		default:
			src = src[:(len(dv)-1)*g.SW+1]
			for k := range dv {
				dv[k] = src[k*g.SW]
			}
		}
	}
}

// im2colShifted writes one block of a stride-1 convolution whose output
// rows are W wide, as the input's: output (oh, ow) reads input (oh+rr.off,
// ow+cr.off), so the valid outputs, from the first to the last, are one
// run of the input plane; the columns of that run that wrapped to the
// next row, and the rows outside it, are pad.
func im2colShifted(dst, img []float32, rr, cr span, W int, pad float32) {
	if rr.lo >= rr.hi || cr.lo >= cr.hi {
		for k := range dst {
			dst[k] = pad
		}
		return
	}
	a, e := rr.lo*W+cr.lo, (rr.hi-1)*W+cr.hi // the first valid output, one past the last
	shift := rr.off*W + cr.off
	copy(dst[a:e], img[a+shift:e+shift])
	for k := range dst[:a] {
		dst[k] = pad
	}
	for k := e; k < len(dst); k++ {
		dst[k] = pad
	}
	if cr.lo == 0 && cr.hi == W {
		return
	}
	for oh := rr.lo; oh < rr.hi; oh++ {
		d := dst[oh*W : (oh+1)*W]
		for k := range d[:cr.lo] {
			d[k] = pad
		}
		for k := cr.hi; k < W; k++ {
			d[k] = pad
		}
	}
}

// Col2Im adds the column matrix col back into dx [N, C, H, W], parallel
// over the planes (n, c): each owns its plane and sums its KH*KW rows in
// order, so it is race free and bit-identical to a serial run.
func (c *CPU) Col2Im(g backend.Conv2D, dx, col backend.Buffer) {
	cs, xs := f(col), f(dx)
	L, HW := g.OH*g.OW, g.H*g.W
	kk := g.KH * g.KW
	rows, cols := convRanges(g)
	Parallel(g.N*g.C, grain(kk*L), func(lo, hi int) {
		for p := lo; p < hi; p++ {
			n, ch := p/g.C, p%g.C
			img := xs[p*HW : (p+1)*HW]
			for i, rr := range rows {
				for j, cr := range cols {
					if cr.lo >= cr.hi {
						continue
					}
					k := i*g.KW + j
					src := cs[((ch*kk+k)*g.N+n)*L : ((ch*kk+k)*g.N+n+1)*L]
					for oh := rr.lo; oh < rr.hi; oh++ {
						s := src[oh*g.OW+cr.lo : oh*g.OW+cr.hi]
						row := img[(rr.off+oh*g.SH)*g.W+cr.off+cr.lo*g.SW:]
						switch {
						case g.SW == 1 && len(s) >= 16: // shorter rows cost more in the call
							axpy(row[:len(s)], s, 1)
						case g.SW == 1:
							row = row[:len(s)]
							for k, v := range s {
								row[k] += v
							}
						case g.SW == 2:
							row = row[:2*len(s)-1]
							for k, v := range s {
								row[2*k] += v
							}
						default:
							row = row[:(len(s)-1)*g.SW+1]
							for k, v := range s {
								row[k*g.SW] += v
							}
						}
					}
				}
			}
		}
	})
}

// A span is where one kernel row (or column) reads inside the input: the
// outputs [lo, hi) read input row (column) off + o*stride.
type span struct{ off, lo, hi int }

// convRanges returns g's spans for each kernel row and each kernel column.
func convRanges(g backend.Conv2D) (rows, cols []span) {
	rows, cols = make([]span, g.KH), make([]span, g.KW)
	for i := range rows {
		off := i*g.DH - g.PH
		lo, hi := validCols(off, g.SH, g.H, g.OH)
		rows[i] = span{off, lo, hi}
	}
	for j := range cols {
		off := j*g.DW - g.PW
		lo, hi := validCols(off, g.SW, g.W, g.OW)
		cols[j] = span{off, lo, hi}
	}
	return rows, cols
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
