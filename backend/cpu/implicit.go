package cpu

import (
	"fmt"
	"sync"

	"github.com/golem-ml/golem/backend"
)

var _ backend.ConvGemm = (*CPU)(nil)

// ConvMatMul is MatMul with op(B) the column matrix of x under g (or its
// transpose, p.TransB), which the GEMM's packing reads straight from x:
// an implicit GEMM. The column matrix ([C*KH*KW, N*OH*OW], 16 MB for
// vqvae-32's 4x4 stride-2 layers at batch 32) is never written and read
// back; each packed panel of B (kc rows of 32 columns, in L1 or L2) is
// filled from the image instead. The panels hold the values Im2Col would
// have written, so the result is MatMul's on Im2Col's matrix, bit for
// bit. A strided convolution as wide as its input over the stride reads
// x split into its stride phases first (one copy of x, as Im2Col).
func (c *CPU) ConvMatMul(p backend.Gemm, g backend.Conv2D, a, x, cc backend.Buffer) {
	CKK, NL := g.C*g.KH*g.KW, g.N*g.OH*g.OW
	n, k := p.N, p.K
	if p.TransB {
		n, k = k, n
	}
	if g.Groups != 1 || p.Batch > 1 || k != CKK || n != NL {
		panic(fmt.Sprintf("cpu: ConvMatMul: a %dx%d product (TransB %v, batch %d) over the %dx%d column matrix of %d groups",
			p.K, p.N, p.TransB, p.Batch, CKK, NL, g.Groups))
	}
	xs := f(x)
	if len(xs) < g.N*g.C*g.H*g.W {
		panic(fmt.Sprintf("cpu: ConvMatMul: an image of %d values for %dx%dx%dx%d", len(xs), g.N, g.C, g.H, g.W))
	}
	src := newColSource(c, g, xs)
	defer src.release()
	A, C := f(a), f(cc)
	if p.TransA {
		checkMatrix("a", p.K, p.M, A[p.OffA:], p.LDA)
	} else {
		checkMatrix("a", p.M, p.K, A[p.OffA:], p.LDA)
	}
	checkMatrix("c", p.M, p.N, C[p.OffC:], p.LDC)
	gemmFrom(Threads(), activeKernel, p.TransA, p.TransB, p.M, p.N, p.K, p.Alpha, A[p.OffA:], p.LDA, nil, 0, p.Beta, C[p.OffC:], p.LDC, nil, src, imageA{})
}

// ConvWeightGrad is ConvMatMul's weight gradient with dy read where it
// lies: dw [K, C*KH*KW] = dy' col(x)^T (+ dw with beta 1), dy' = dy [N,
// K, OH*OW] as [K, N*OH*OW], whose packing copies each image's run of a
// row, so that no channel-major copy of dy is made. The same values in
// the same order as ConvMatMul on the copy: bit for bit its result.
func (c *CPU) ConvWeightGrad(g backend.Conv2D, dw, dy, x backend.Buffer, beta float32) {
	if g.Groups != 1 {
		panic(fmt.Sprintf("cpu: ConvWeightGrad: %d groups", g.Groups))
	}
	CKK, L := g.C*g.KH*g.KW, g.OH*g.OW
	xs, ys, ws := f(x), f(dy), f(dw)
	if len(xs) < g.N*g.C*g.H*g.W || len(ys) < g.N*g.K*L || len(ws) < g.K*CKK {
		panic(fmt.Sprintf("cpu: ConvWeightGrad: %d, %d and %d values for an image %dx%dx%dx%d, its gradient %dx%dx%d and a weight %dx%d",
			len(xs), len(ys), len(ws), g.N, g.C, g.H, g.W, g.N, g.K, L, g.K, CKK))
	}
	src := newColSource(c, g, xs)
	defer src.release()
	gemmFrom(Threads(), activeKernel, false, true, g.K, CKK, g.N*L, 1, ys, L, nil, 0, beta, ws, CKK, nil, src, imageA{plane: L, stride: g.K * L})
}

// ConvPhases reports whether ConvMatMul and ConvWeightGrad over g read x
// split into its stride phases (usePhases).
func (c *CPU) ConvPhases(g backend.Conv2D) bool { return g.Groups == 1 && usePhases(g) }

// SplitPhases writes x split into its stride phases into sp, for
// ConvMatMul and ConvWeightGrad with g.Phased.
func (c *CPU) SplitPhases(g backend.Conv2D, sp, x backend.Buffer) {
	n := g.N * g.C * g.H * g.W
	ss, xs := f(sp), f(x)
	if !c.ConvPhases(g) || len(ss) < n || len(xs) < n {
		panic(fmt.Sprintf("cpu: SplitPhases: %d and %d values for %+v", len(ss), len(xs), g))
	}
	splitPhases(g, ss, xs)
}

// colPanels holds packStrided's scratch rows (*[]float32).
var colPanels sync.Pool

// A colSource is a convolution's column matrix read from its image: row r
// (c, i, j), column (n, oh, ow) holds x's plane (n, c) at plane row
// rs.off + oh*sh and plane column cs.off + ow*sw where oh is in [rs.lo,
// rs.hi) and ow in [cs.lo, cs.hi), 0 elsewhere. The planes are x's, or,
// for a convolution as wide as its input over the stride, the stride
// phases of x's planes (sh = sw = 1).
type colSource struct {
	x          []float32 // the image, or its phases
	buf        backend.Buffer
	c          *CPU
	L, OW      int // output positions an image, output columns
	nstride    int // values an image in x
	sh, sw, wp int // strides and the plane's width
	shifted    bool
	rows       []colRow
	panel      sync.Pool // *[]float32 scratch of packStrided
}

// A colRow is where one row of the column matrix reads: its plane's
// offset in an image's values, and its row and column spans; for a
// shifted source also the first valid output and one past the last (a
// and e: none when a >= e), and the shift from output to plane.
type colRow struct {
	base    int
	rs, cs  span
	a, e    int
	shift   int
	wrapped bool // some columns between a and e are not valid
}

// colRows caches each geometry's rows (the convolutions repeat every step).
var colRows sync.Map // backend.Conv2D -> []colRow

func newColSource(c *CPU, g backend.Conv2D, xs []float32) *colSource {
	s := &colSource{x: xs, c: c, L: g.OH * g.OW, OW: g.OW, nstride: g.C * g.H * g.W, sh: g.SH, sw: g.SW, wp: g.W}
	phases := usePhases(g)
	if phases {
		if !g.Phased {
			s.buf = c.Alloc(g.N*g.C*g.H*g.W, false)
			s.x = f(s.buf)
			splitPhases(g, s.x, xs)
		}
		s.sh, s.sw, s.wp = 1, 1, g.W/g.SW
	}
	s.shifted = s.sh == 1 && s.sw == 1 && s.OW == s.wp
	if r, ok := colRows.Load(g); ok {
		s.rows = r.([]colRow)
		return s
	}
	kk, HW := g.KH*g.KW, g.H*g.W
	s.rows = make([]colRow, g.C*kk)
	if phases {
		rows, cols := phaseTaps(g)
		ph := g.H / g.SH * s.wp
		for r := range s.rows {
			ch, i, j := r/kk, r%kk/g.KW, r%g.KW
			rt, ct := rows[i], cols[j]
			s.rows[r] = colRow{base: ch*HW + (rt.phase*g.SW+ct.phase)*ph, rs: rt.s, cs: ct.s}
		}
	} else {
		rows, cols := convRanges(g)
		for r := range s.rows {
			ch, i, j := r/kk, r%kk/g.KW, r%g.KW
			s.rows[r] = colRow{base: ch * HW, rs: rows[i], cs: cols[j]}
		}
	}
	for r := range s.rows {
		cr := &s.rows[r]
		if s.shifted && cr.rs.lo < cr.rs.hi && cr.cs.lo < cr.cs.hi {
			W := s.OW
			cr.a, cr.e = cr.rs.lo*W+cr.cs.lo, (cr.rs.hi-1)*W+cr.cs.hi
			cr.shift = cr.rs.off*W + cr.cs.off
			cr.wrapped = (cr.cs.lo > 0 || cr.cs.hi < W) && cr.rs.hi-cr.rs.lo > 1
		}
	}
	n := 0
	colRows.Range(func(any, any) bool { n++; return true })
	if n >= 64 {
		colRows.Clear()
	}
	colRows.Store(g, s.rows)
	return s
}

func (s *colSource) release() {
	if s.buf != nil {
		s.c.Free(s.buf)
		s.buf = nil
	}
}

// row writes len(dst) values of the column matrix's row r from column j.
func (s *colSource) row(dst []float32, r, j int) {
	cr := &s.rows[r]
	n, pos := j/s.L, j%s.L
	for len(dst) > 0 {
		cnt := min(len(dst), s.L-pos)
		img := s.x[n*s.nstride+cr.base:]
		if s.shifted {
			s.shiftedRun(dst[:cnt], img, cr, pos)
		} else {
			s.rowRuns(dst[:cnt], img, cr, pos)
		}
		dst, n, pos = dst[cnt:], n+1, 0
	}
}

// shiftedRun writes the outputs [pos, pos+len(d)) of one image of a
// stride-1 row as wide as its plane: output q reads plane value q +
// shift, so the valid outputs, from the first to the last, are one run of
// the plane; the columns of it that wrapped around a row edge are 0 (as
// im2colShifted).
func (s *colSource) shiftedRun(d, img []float32, cr *colRow, pos int) {
	a, e := max(cr.a, pos), min(cr.e, pos+len(d))
	if a >= e {
		clear(d)
		return
	}
	if a > pos {
		clear(d[:a-pos])
	}
	copy(d[a-pos:e-pos], img[a+cr.shift:e+cr.shift])
	if e-pos < len(d) {
		clear(d[e-pos:])
	}
	if cr.wrapped {
		s.unwrap(d, cr, pos, a, e)
	}
}

// unwrap sets to 0 the outputs in [a, e) of a shifted run (d holds the
// outputs from pos on) whose columns lie outside the row's column span.
func (s *colSource) unwrap(d []float32, cr *colRow, pos, a, e int) {
	W := s.OW
	zero := func(c int) { // column c of every output row
		q := a/W*W + c
		if q < a {
			q += W
		}
		for ; q < e; q += W {
			d[q-pos] = 0
		}
	}
	for c := range cr.cs.lo {
		zero(c)
	}
	for c := cr.cs.hi; c < W; c++ {
		zero(c)
	}
}

// rowRuns writes the outputs [pos, pos+len(d)) of one image output row
// by output row.
func (s *colSource) rowRuns(d, img []float32, cr *colRow, pos int) {
	rs, cs, OW := cr.rs, cr.cs, s.OW
	end := pos + len(d)
	for q := pos; q < end; {
		oh, ow0 := q/OW, q%OW
		e := min(end, (oh+1)*OW)
		seg := d[q-pos : e-pos] // outputs ow0 .. ow0+len(seg) of row oh
		q = e
		if oh < rs.lo || oh >= rs.hi {
			clear(seg)
			continue
		}
		lo, hi := min(max(cs.lo-ow0, 0), len(seg)), min(max(cs.hi-ow0, 0), len(seg))
		clear(seg[:lo])
		clear(seg[max(hi, lo):])
		if lo >= hi {
			continue
		}
		v := seg[lo:hi]
		src := img[(rs.off+oh*s.sh)*s.wp+cs.off+(ow0+lo)*s.sw:]
		if s.sw == 1 {
			copy(v, src[:len(v)])
			continue
		}
		src = src[:(len(v)-1)*s.sw+1]
		for k := range v {
			v[k] = src[k*s.sw]
		}
	}
}

// packRows is packRows (gemm.go) over the column matrix: kc rows p of
// width values at dst[p*ds:], the first cnt the column matrix's row p0+p
// from column j0, the rest 0.
func (s *colSource) packRows(dst []float32, ds, p0, j0, kc, cnt, width int) {
	if n, pos := j0/s.L, j0%s.L; s.shifted && pos+cnt <= s.L {
		// one image's outputs [pos, pos+cnt): shiftedRun inlined
		img := s.x[n*s.nstride:]
		end := pos + cnt
		rows := s.rows[p0 : p0+kc]
		for p := range rows {
			cr := &rows[p]
			d := dst[p*ds : p*ds+width]
			a, e := max(cr.a, pos), min(cr.e, end)
			if a >= e {
				clear(d)
				continue
			}
			if a > pos {
				clear(d[:a-pos])
			}
			b := cr.base + cr.shift
			if e-a == 32 { // a whole panel: an inlined copy
				*(*[32]float32)(d[a-pos:]) = *(*[32]float32)(img[a+b:])
			} else {
				copy(d[a-pos:e-pos], img[a+b:e+b])
			}
			if e-pos < width {
				clear(d[e-pos:])
			}
			if cr.wrapped {
				s.unwrap(d, cr, pos, a, e)
			}
		}
		return
	}
	for p := range kc {
		d := dst[p*ds : p*ds+width]
		s.row(d[:cnt], p0+p, j0)
		clear(d[cnt:])
	}
}

// packStrided is packStrided (gemm.go) over the transposed column matrix:
// kc steps p of width values at dst[p*ds:], value i the column matrix's
// row j0+i at column p0+p for i < cnt, 0 beyond. The rows are written
// whole into a scratch first, then packed by packStrided's transposes.
func (s *colSource) packStrided(dst []float32, ds, j0, p0, kc, cnt, width int) {
	tp, _ := colPanels.Get().(*[]float32)
	if tp == nil {
		tp = new([]float32)
	}
	t := grow(*tp, cnt*kc)
	for i := range cnt {
		s.row(t[i*kc:(i+1)*kc], j0+i, p0)
	}
	packStrided(dst, ds, t, kc, kc, cnt, width)
	*tp = t
	colPanels.Put(tp)
}
