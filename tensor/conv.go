package tensor

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/golem-ml/golem/backend"
)

// ConvOptions are the options of Conv2d, ConvTranspose2d and the pooling
// ops, as PyTorch names them. Zero values mean stride 1, padding 0,
// dilation 1, groups 1, output padding 0.
type ConvOptions struct {
	Stride, Padding, Dilation [2]int
	Groups                    int
	OutputPadding             [2]int // ConvTranspose2d only
}

func (o ConvOptions) norm() ConvOptions {
	for i := range 2 {
		if o.Stride[i] == 0 {
			o.Stride[i] = 1
		}
		if o.Dilation[i] == 0 {
			o.Dilation[i] = 1
		}
	}
	if o.Groups == 0 {
		o.Groups = 1
	}
	return o
}

// convOut is the output size of a convolution along one dimension.
func convOut(in, k, s, p, d int) int { return (in+2*p-d*(k-1)-1)/s + 1 }

// geom returns the backend description of a convolution of x [N, C, H, W]
// to K channels with a kh x kw kernel, checking the options.
func geom(op string, N, C, H, W, K, kh, kw int, o ConvOptions) backend.Conv2D {
	g := backend.Conv2D{N: N, C: C, H: H, W: W, K: K, KH: kh, KW: kw,
		SH: o.Stride[0], SW: o.Stride[1], PH: o.Padding[0], PW: o.Padding[1],
		DH: o.Dilation[0], DW: o.Dilation[1], Groups: o.Groups}
	if o.Stride[0] < 1 || o.Stride[1] < 1 || o.Dilation[0] < 1 || o.Dilation[1] < 1 || o.Padding[0] < 0 || o.Padding[1] < 0 || o.Groups < 1 {
		panic(fmt.Sprintf("tensor: %s: bad options %+v", op, o))
	}
	if kh < 1 || kw < 1 {
		panic(fmt.Sprintf("tensor: %s: empty %dx%d kernel", op, kh, kw))
	}
	if C%o.Groups != 0 || K%o.Groups != 0 {
		panic(fmt.Sprintf("tensor: %s: %d input and %d output channels are not multiples of groups %d", op, C, K, o.Groups))
	}
	g.OH = convOut(H, kh, g.SH, g.PH, g.DH)
	g.OW = convOut(W, kw, g.SW, g.PW, g.DW)
	if g.OH < 1 || g.OW < 1 {
		panic(fmt.Sprintf("tensor: %s: input %dx%d is smaller than the %dx%d kernel (padding %v, dilation %v)", op, H, W, kh, kw, o.Padding, o.Dilation))
	}
	return g
}

// The index path: where a backend has no backend.Im2Col, the column matrix
// is a gather of x (Embedding with one column) through an index computed
// once per geometry, and col2im its scatter-add (EmbeddingGrad). Index n
// (one past x) reads a padding value.
var (
	idxMu    sync.Mutex
	idxCache = map[backend.Conv2D][]int32{}
)

// colIndex returns, for each entry of the column matrix [G, C/G*KH*KW,
// N*OH*OW] (backend.Conv2D's layout), the index into x it reads, or
// N*C*H*W for padding.
func colIndex(g backend.Conv2D) []int32 {
	if int64(g.N)*int64(g.C)*int64(g.H)*int64(g.W) >= math.MaxInt32 || int64(g.C*g.KH*g.KW)*int64(g.N*g.OH*g.OW) >= math.MaxInt32 {
		panic(fmt.Sprintf("tensor: convolution of %dx%dx%dx%d is too large for a backend without Im2Col", g.N, g.C, g.H, g.W))
	}
	idxMu.Lock()
	defer idxMu.Unlock()
	if idx, ok := idxCache[g]; ok {
		return idx
	}
	L := g.OH * g.OW
	pad := int32(g.N * g.C * g.H * g.W)
	idx := make([]int32, 0, g.C*g.KH*g.KW*g.N*L)
	for c := range g.C {
		for i := range g.KH {
			for j := range g.KW {
				for n := range g.N {
					for oh := range g.OH {
						h := oh*g.SH - g.PH + i*g.DH
						for ow := range g.OW {
							w := ow*g.SW - g.PW + j*g.DW
							if h < 0 || h >= g.H || w < 0 || w >= g.W {
								idx = append(idx, pad)
							} else {
								idx = append(idx, int32(((n*g.C+c)*g.H+h)*g.W+w))
							}
						}
					}
				}
			}
		}
	}
	if len(idxCache) >= 64 {
		clear(idxCache)
	}
	idxCache[g] = idx
	return idx
}

// padded returns a copy of x's n values followed by v.
func padded(be backend.Backend, x backend.Buffer, n int, v float32) backend.Buffer {
	p := be.Alloc(n+1, false)
	be.Copy2D(p, 0, 0, x, 0, 0, 1, n, false)
	be.Upload(p, n, []float32{v})
	return p
}

// im2colBuf writes the column matrix of x (backend.Conv2D's layout) into
// col, pad outside x: the backend's Im2Col, else a gather.
func im2colBuf(be backend.Backend, g backend.Conv2D, col, x backend.Buffer, pad float32) {
	if ic, ok := be.(backend.Im2Col); ok {
		ic.Im2Col(g, col, x, pad)
		return
	}
	n := g.N * g.C * g.H * g.W
	xp := padded(be, x, n, pad)
	be.Embedding(col, xp, colIndex(g), 1)
	be.Free(xp)
}

// col2imBuf adds the column matrix col into dx [N, C, H, W]: the
// backend's Col2Im, else a scatter-add.
func col2imBuf(be backend.Backend, g backend.Conv2D, dx, col backend.Buffer) {
	if ic, ok := be.(backend.Im2Col); ok {
		ic.Col2Im(g, dx, col)
		return
	}
	n := g.N * g.C * g.H * g.W
	d := be.Alloc(n+1, true)
	be.EmbeddingGrad(d, col, colIndex(g), 1)
	be.Copy2D(dx, 0, 0, d, 0, 0, 1, n, true)
	be.Free(d)
}

func colLen(g backend.Conv2D) int { return g.C * g.KH * g.KW * g.N * g.OH * g.OW }

// im2col returns the column matrix of x as [G, C/G*KH*KW, N*OH*OW], with
// pad where the kernel reads outside x.
func im2col(x *Tensor, g backend.Conv2D, pad float32) *Tensor {
	out := result([]int{g.Groups, g.C / g.Groups * g.KH * g.KW, g.N * g.OH * g.OW}, x)
	im2colBuf(x.be, g, out.buf, x.buf, pad)
	if out.requiresGrad {
		out.back = func() { col2imBuf(x.be, g, x.GradBuffer(), out.grad) }
	}
	return out
}

func dims4(op string, t *Tensor, what string) (int, int, int, int) {
	if len(t.shape) != 4 {
		panic(fmt.Sprintf("tensor: %s: %s has shape %v, want 4 dims", op, what, t.shape))
	}
	return t.shape[0], t.shape[1], t.shape[2], t.shape[3]
}

// addChannelBias adds bias [C] to y [N, C, H, W].
func addChannelBias(op string, y, bias *Tensor) *Tensor {
	if bias == nil {
		return y
	}
	if bias.Len() != y.shape[1] {
		panic(fmt.Sprintf("tensor: %s: bias of shape %v for %d channels", op, bias.shape, y.shape[1]))
	}
	return Add(y, Reshape(bias, 1, y.shape[1], 1, 1))
}

// The GEMMs of a convolution of geometry g, weight w [K, C/G*KH*KW]
// (as rows), image y [N, K, OH*OW] and column matrix col [G, C/G*KH*KW,
// N*OH*OW]. Each is one GEMM per group over all the images at once (N*OH*OW
// columns), so the weight is packed once, not once per image, and the
// product is large enough to split over the threads; the image side is
// channel-major, yc = y as [K, N*OH*OW] (channelMajor, one permuted copy).
// Conv2d's forward pass is colToImage, its input gradient imageToCol then
// col2im; ConvTranspose2d's forward pass is imageToCol then col2im, its
// input gradient im2col then colToImage. Both weight gradients are
// weightGrad.

// channelMajor returns a pool buffer holding y [N, K, L] as [K, N*L].
func channelMajor(be backend.Backend, y backend.Buffer, N, K, L int) backend.Buffer {
	yc := be.Alloc(N*K*L, false)
	be.Permute(yc, y, []int{N, K, L}, []int{1, 0, 2}, false)
	return yc
}

// cols is the column matrix [G, C/G*KH*KW, N*OH*OW] of an image x under
// g as the GEMMs read it: on a backend with backend.ConvGemm and one
// group, straight from x by the GEMM's packing (an implicit GEMM: col is
// nil, nothing is written and read back); otherwise written out into col
// by im2colBuf.
type cols struct {
	g      backend.Conv2D
	x, col backend.Buffer
	split  bool // x is the image split into its stride phases, from alloc (g.Phased)
}

// implicitCols reports whether the GEMMs over g's column matrix read it
// straight from the image.
func implicitCols(be backend.Backend, g backend.Conv2D) bool {
	_, ok := be.(backend.ConvGemm)
	return ok && g.Groups == 1
}

// newCols returns the column matrix of x under g (pad 0): x itself where
// the GEMMs read it implicitly, or x split into its stride phases once
// for all of them (into a buffer from alloc) where they read those
// (ConvGemm.ConvPhases), else written into a buffer from alloc.
func newCols(be backend.Backend, g backend.Conv2D, x backend.Buffer, alloc func(n int) backend.Buffer) cols {
	if implicitCols(be, g) {
		cg := be.(backend.ConvGemm)
		if !cg.ConvPhases(g) {
			return cols{g: g, x: x}
		}
		sp := alloc(g.N * g.C * g.H * g.W)
		cg.SplitPhases(g, sp, x)
		g.Phased = true
		return cols{g: g, x: sp, split: true}
	}
	col := alloc(colLen(g))
	im2colBuf(be, g, col, x, 0)
	return cols{g: g, x: x, col: col}
}

// matMul runs p with op(B) the column matrix (OffB a group's offset into
// it, p.LDB its row stride).
func (c cols) matMul(be backend.Backend, p backend.Gemm, a, out backend.Buffer) {
	if c.col == nil {
		p.OffB, p.LDB, p.StrideB = 0, 0, 0
		be.(backend.ConvGemm).ConvMatMul(p, c.g, a, c.x, out)
		return
	}
	be.MatMul(p, a, c.col, out)
}

// colToImage: y[n, group] = W_group col_group[:, n] (+ y when beta is 1),
// one GEMM per group into a channel-major scratch [K, N*OH*OW], then
// permuted into NCHW y.
func colToImage(be backend.Backend, g backend.Conv2D, w backend.Buffer, col cols, y backend.Buffer, beta float32) {
	Kg, CKK, L := g.K/g.Groups, g.C/g.Groups*g.KH*g.KW, g.OH*g.OW
	NL := g.N * L
	t := be.Alloc(g.K*NL, false)
	for gi := range g.Groups {
		col.matMul(be, backend.Gemm{M: Kg, N: NL, K: CKK, Alpha: 1, Batch: 1, LDA: CKK, LDB: NL, LDC: NL,
			OffA: gi * Kg * CKK, OffB: gi * CKK * NL, OffC: gi * Kg * NL}, w, t)
	}
	be.Permute(y, t, []int{g.K, g.N, L}, []int{1, 0, 2}, beta != 0)
	be.Free(t)
}

// imageToCol: col_group = W_group^T yc_group (col overwritten), yc the
// image channel-major [K, N*OH*OW].
func imageToCol(be backend.Backend, g backend.Conv2D, w, yc, col backend.Buffer) {
	Kg, CKK, NL := g.K/g.Groups, g.C/g.Groups*g.KH*g.KW, g.N*g.OH*g.OW
	for gi := range g.Groups {
		be.MatMul(backend.Gemm{TransA: true, M: CKK, N: NL, K: Kg, Alpha: 1, Batch: 1, LDA: CKK, LDB: NL, LDC: NL,
			OffA: gi * Kg * CKK, OffB: gi * Kg * NL, OffC: gi * CKK * NL}, w, yc, col)
	}
}

// weightGrad adds dW_group += dy'_group col_group^T into w (when it needs
// a gradient), dy' = dy [N, K, OH*OW] as [K, N*OH*OW]: read in place where
// the column matrix is implicit (backend.ConvGemm's ConvWeightGrad), else
// yc(), dy's channel-major copy. It adds dy's per-channel sums into b
// (when not nil and it needs one).
func weightGrad(be backend.Backend, g backend.Conv2D, w, b *Tensor, dy backend.Buffer, yc func() backend.Buffer, col cols) {
	if w.requiresGrad {
		Kg, CKK, NL := g.K/g.Groups, g.C/g.Groups*g.KH*g.KW, g.N*g.OH*g.OW
		dw, beta := w.gemmGrad()
		if col.col == nil {
			be.(backend.ConvGemm).ConvWeightGrad(col.g, dw, dy, col.x, beta)
		} else {
			be.MatMul(backend.Gemm{TransB: true, M: Kg, N: CKK, K: NL, Alpha: 1, Beta: beta, Batch: g.Groups,
				LDA: NL, LDB: NL, LDC: CKK, StrideA: Kg * NL, StrideB: CKK * NL, StrideC: Kg * CKK}, yc(), col.col, dw)
		}
	}
	if b != nil && b.requiresGrad {
		channelSums(be, b.GradBuffer(), dy, g.N, g.K, g.OH*g.OW)
	}
}

// channelSums adds the per-channel sums of y [N, C, L] into s [C]: each
// plane's sum, then the images' sums of each channel (a GEMM with a ones
// row).
func channelSums(be backend.Backend, s, y backend.Buffer, N, C, L int) {
	p := be.Alloc(N*C, false)
	be.SumRows(p, y, N*C, L)
	ones := be.Alloc(N, false)
	be.Fill(ones, 1)
	be.MatMul(backend.Gemm{M: 1, N: C, K: N, Alpha: 1, Beta: 1, Batch: 1, LDA: N, LDB: C, LDC: C}, ones, p, s)
	be.Free(ones)
	be.Free(p)
}

// fillBias writes bias [C] into every plane of y [N, C, L] (a GEMM with a
// ones row, so the convolution's GEMM can add onto it).
func fillBias(be backend.Backend, y, bias backend.Buffer, N, C, L int) {
	ones := be.Alloc(L, false)
	be.Fill(ones, 1)
	be.MatMul(backend.Gemm{M: C, N: L, K: 1, Alpha: 1, Batch: N, LDA: 1, LDB: L, LDC: L, StrideC: C * L}, bias, ones, y)
	be.Free(ones)
}

func checkBias(op string, bias *Tensor, C int) {
	if bias != nil && bias.Len() != C {
		panic(fmt.Sprintf("tensor: %s: bias of shape %v for %d channels", op, bias.shape, C))
	}
}

// Conv2d is a 2-D convolution (cross-correlation, as PyTorch's) of x
// [N, C, H, W] with weight [K, C/groups, KH, KW] plus bias [K] (or nil),
// giving [N, K, OH, OW]. It is per group one GEMM over all the images
// on the column matrix [G, C/G*KH*KW, N*OH*OW], permuted into NCHW; the
// column matrix is read straight from x by the GEMM's packing on a
// backend with backend.ConvGemm (one group), else written by im2col (that
// many floats from the backend's pool, kept for the backward pass).
// A 3x3 stride-1 convolution of one group runs as Winograd's F(2x2, 3x3)
// instead where the backend has backend.Winograd (winograd.go), a 4x4
// stride-2 one as F(2x2, 2x2) where it has backend.WinogradS2
// (winograds2.go).
// Backward: dX = col2im(W^T dY'), or the transposed convolution of dY by
// W in sub-pixel phases where that applies (subpixel.go), dW = dY' col^T
// with dY' = dY as [K, N*OH*OW] (read in place by ConvWeightGrad, else
// one permuted copy), db dY's per-channel sums.
func Conv2d(x, w, bias *Tensor, o ConvOptions) *Tensor {
	o = o.norm()
	N, C, H, W := dims4("conv2d", x, "input")
	K, Cg, kh, kw := dims4("conv2d", w, "weight")
	if Cg*o.Groups != C {
		panic(fmt.Sprintf("tensor: conv2d: weight %v for %d input channels in %d groups", w.shape, C, o.Groups))
	}
	checkBias("conv2d", bias, K)
	g := geom("conv2d", N, C, H, W, K, kh, kw, o)
	be := x.be
	if wg, ok := winogradFor(be, g); ok {
		return winogradConv(f23(wg, g), x, w, bias, g) // winograd.go
	}
	if wg, m, ok := winogradS2For(be, g); ok {
		return winogradConv(fs2(wg, g, m), x, w, bias, g) // winograd.go, winograds2.go
	}
	out := result([]int{N, K, g.OH, g.OW}, inputs(x, w, bias)...)
	// the column matrix, or x (or its stride phases) where the GEMMs read
	// it implicitly: kept for the weight gradient
	col := newCols(be, g, x.buf, func(n int) backend.Buffer { return out.saveBuf(n, false) })
	beta := float32(0)
	if bias != nil {
		fillBias(be, out.buf, bias.buf, N, K, g.OH*g.OW)
		beta = 1
	}
	colToImage(be, g, w.buf, col, out.buf, beta)
	if col.split && !out.requiresGrad {
		out.saved = slices.DeleteFunc(out.saved, func(b backend.Buffer) bool { return b == col.x })
		be.Free(col.x) // no weight gradient to read it
	}
	if out.requiresGrad {
		out.back = func() {
			var yc backend.Buffer // dY channel-major, made where a GEMM needs it
			ycOf := func() backend.Buffer {
				if yc == nil {
					yc = channelMajor(be, out.grad, N, K, g.OH*g.OW)
				}
				return yc
			}
			if x.requiresGrad {
				// dX is the transposed convolution of dY by w
				if sp := subPixelPlan(N, K, g.OH, g.OW, C, kh, kw, H, W, o); sp != nil {
					dx, beta := x.gemmGrad()
					sp.run(be, w.buf, out.grad, dx, beta)
				} else {
					dcol := be.Alloc(colLen(g), false)
					imageToCol(be, g, w.buf, ycOf(), dcol)
					col2imBuf(be, g, x.GradBuffer(), dcol)
					be.Free(dcol)
				}
			}
			weightGrad(be, g, w, bias, out.grad, ycOf, col)
			if yc != nil {
				be.Free(yc)
			}
		}
	}
	return out
}

// ConvTranspose2d is Conv2d's adjoint (its forward is a convolution's
// input gradient): x [N, C, H, W], weight [C, K/groups, KH, KW] as PyTorch
// stores it, bias [K] or nil; the output is [N, K, OH, OW] with OH =
// (H-1)*stride - 2*padding + dilation*(KH-1) + output_padding + 1. It is
// a GEMM W^T x' per group (x' = x as [C, N*H*W], kept for the weight
// gradient) into a column matrix (K*KH*KW x N*H*W floats, freed at once;
// the backward pass makes it again from dY) and col2im, or, where that
// applies, s*s stride-1 convolutions whose outputs interleave
// (subpixel.go). A 4x4 stride-2 one of one group runs as Winograd's
// F(2x2, 2x2) where the backend has backend.WinogradS2 (winograds2.go).
func ConvTranspose2d(x, w, bias *Tensor, o ConvOptions) *Tensor {
	o = o.norm()
	N, C, H, W := dims4("conv_transpose2d", x, "input")
	Cw, Kg, kh, kw := dims4("conv_transpose2d", w, "weight")
	if Cw != C {
		panic(fmt.Sprintf("tensor: conv_transpose2d: weight %v for %d input channels", w.shape, C))
	}
	for i, op := range o.OutputPadding {
		if op < 0 || (op >= o.Stride[i] && op >= o.Dilation[i]) {
			panic(fmt.Sprintf("tensor: conv_transpose2d: output padding %v must be smaller than stride %v or dilation %v", o.OutputPadding, o.Stride, o.Dilation))
		}
	}
	K := Kg * o.Groups
	checkBias("conv_transpose2d", bias, K)
	OH := (H-1)*o.Stride[0] - 2*o.Padding[0] + o.Dilation[0]*(kh-1) + o.OutputPadding[0] + 1
	OW := (W-1)*o.Stride[1] - 2*o.Padding[1] + o.Dilation[1]*(kw-1) + o.OutputPadding[1] + 1
	if OH < 1 || OW < 1 {
		panic(fmt.Sprintf("tensor: conv_transpose2d: output %dx%d is empty", OH, OW))
	}
	// The convolution whose input gradient this is: from [N, K, OH, OW]
	// to C channels, with weight [C, K/G*KH*KW].
	g := geom("conv_transpose2d", N, K, OH, OW, C, kh, kw, o)
	if g.OH != H || g.OW != W {
		panic(fmt.Sprintf("tensor: conv_transpose2d: geometry %dx%d -> %dx%d does not invert", H, W, OH, OW))
	}
	be := x.be
	if wg, m, ok := winogradS2For(be, g); ok {
		return winogradS2ConvTranspose(wg, m, x, w, bias, g) // winograds2.go
	}
	out := result([]int{N, K, OH, OW}, inputs(x, w, bias)...)
	beta := float32(0)
	if bias != nil {
		fillBias(be, out.buf, bias.buf, N, K, OH*OW)
		beta = 1
	}
	// x channel-major, kept for the weight gradient when it needs one
	// and its GEMM does not read x in place (implicitCols)
	var xc backend.Buffer
	keep := out.requiresGrad && w.requiresGrad && !implicitCols(be, g)
	if sp := subPixelPlan(N, C, H, W, K, kh, kw, OH, OW, o); sp != nil {
		sp.run(be, w.buf, x.buf, out.buf, beta)
		if keep {
			xc = channelMajor(be, x.buf, N, C, H*W)
		}
	} else {
		if bias == nil {
			be.Fill(out.buf, 0)
		}
		xc = channelMajor(be, x.buf, N, C, H*W)
		col := be.Alloc(colLen(g), false)
		imageToCol(be, g, w.buf, xc, col)
		col2imBuf(be, g, out.buf, col)
		be.Free(col)
	}
	if keep {
		out.saved = append(out.saved, xc)
	} else if xc != nil {
		be.Free(xc)
	}
	if out.requiresGrad {
		out.back = func() {
			dcol := newCols(be, g, out.grad, func(n int) backend.Buffer { return be.Alloc(n, false) })
			if x.requiresGrad {
				dx, beta := x.gemmGrad()
				colToImage(be, g, w.buf, dcol, dx, beta)
			}
			weightGrad(be, g, w, nil, x.buf, func() backend.Buffer { return xc }, dcol)
			if dcol.col != nil {
				be.Free(dcol.col)
			}
			if dcol.split {
				be.Free(dcol.x)
			}
			if bias != nil && bias.requiresGrad {
				channelSums(be, bias.GradBuffer(), out.grad, N, K, OH*OW)
			}
		}
	}
	return out
}

// poolGeom is the geometry of a pool over x [N, C, H, W] seen as N*C
// images of one channel, and its window size.
func poolGeom(op string, x *Tensor, k, s, p [2]int) backend.Conv2D {
	N, C, H, W := dims4(op, x, "input")
	if s == [2]int{} {
		s = k
	}
	if k[0] < 1 || k[1] < 1 || p[0]*2 > k[0] || p[1]*2 > k[1] {
		panic(fmt.Sprintf("tensor: %s: kernel %v with padding %v (padding at most half the kernel)", op, k, p))
	}
	return geom(op, N*C, 1, H, W, 1, k[0], k[1], ConvOptions{Stride: s, Padding: p}.norm())
}

// windows returns the pooling windows of x as [KH*KW, N*C*OH*OW]: row j
// holds window element j (row-major in the window) of every output.
func windows(x *Tensor, g backend.Conv2D, pad float32) *Tensor {
	col := im2col(Reshape(x, g.N, 1, g.H, g.W), g, pad) // [1, KH*KW, N*C*L]
	return Reshape(col, g.KH*g.KW, g.N*g.OH*g.OW)
}

// MaxPool2d takes the maximum over each kernel window of x [N, C, H, W]
// (stride 0 means the kernel size; padding reads -inf). The gradient goes
// to the first maximum of a window, as PyTorch's. It is a running
// maximum over the window's rows of the column matrix: KH*KW-1 Maximum
// ops of the output's size.
func MaxPool2d(x *Tensor, kernel, stride, padding [2]int) *Tensor {
	g := poolGeom("max_pool2d", x, kernel, stride, padding)
	win := windows(x, g, float32(math.Inf(-1)))
	m := Slice(win, 0, 0, 1)
	for j := 1; j < g.KH*g.KW; j++ {
		m = Maximum(m, Slice(win, 0, j, j+1)) // ties keep the earlier: the first maximum
	}
	return Reshape(m, x.shape[0], x.shape[1], g.OH, g.OW)
}

// AvgPool2d averages each kernel window of x [N, C, H, W] (stride 0 means
// the kernel size), counting padding as zeros (PyTorch's default
// count_include_pad=True): the mean of the column matrix's rows.
func AvgPool2d(x *Tensor, kernel, stride, padding [2]int) *Tensor {
	g := poolGeom("avg_pool2d", x, kernel, stride, padding)
	y := meanRows(windows(x, g, 0))
	return Reshape(y, x.shape[0], x.shape[1], g.OH, g.OW)
}

// meanRows returns the mean of the rows of x [k, R] as [1, R]: a GEMM
// with a row of ones scaled by 1/k (backward: the outer product of the
// ones and dy, added).
func meanRows(x *Tensor) *Tensor {
	k, R := x.shape[0], x.shape[1]
	out := result([]int{1, R}, x)
	ones := x.be.Alloc(k, false)
	x.be.Fill(ones, 1)
	x.be.MatMul(backend.Gemm{M: 1, N: R, K: k, Alpha: 1 / float32(k), Batch: 1, LDA: k, LDB: R, LDC: R}, ones, x.buf, out.buf)
	x.be.Free(ones)
	if out.requiresGrad {
		out.back = func() {
			ones := x.be.Alloc(k, false)
			x.be.Fill(ones, 1)
			dx, beta := x.gemmGrad()
			x.be.MatMul(backend.Gemm{M: k, N: R, K: 1, Alpha: 1 / float32(k), Beta: beta, Batch: 1, LDA: 1, LDB: R, LDC: R}, ones, out.grad, dx)
			x.be.Free(ones)
		}
	}
	return out
}

// GlobalAvgPool2d is AdaptiveAvgPool2d to 1x1: the mean of each channel of
// x [N, C, H, W], giving [N, C, 1, 1].
func GlobalAvgPool2d(x *Tensor) *Tensor {
	N, C, H, W := dims4("adaptive_avg_pool2d", x, "input")
	return Reshape(MeanLast(Reshape(x, N, C, H*W)), N, C, 1, 1)
}

// affine returns y*w + b with w and b [C] (either nil) over y [N, C, ...].
func affine(op string, y, w, b *Tensor) *Tensor {
	C := y.shape[1]
	sh := []int{1, C}
	for range len(y.shape) - 2 {
		sh = append(sh, 1)
	}
	if w != nil {
		if w.Len() != C {
			panic(fmt.Sprintf("tensor: %s: weight of shape %v for %d channels", op, w.shape, C))
		}
		y = Mul(y, Reshape(w, sh...))
	}
	if b != nil {
		if b.Len() != C {
			panic(fmt.Sprintf("tensor: %s: bias of shape %v for %d channels", op, b.shape, C))
		}
		y = Add(y, Reshape(b, sh...))
	}
	return y
}

// GroupNorm normalises x [N, C, ...] over each of groups groups of
// channels (and all positions), with biased variance, then applies the
// per-channel weight and bias (either may be nil).
func GroupNorm(x *Tensor, groups int, w, b *Tensor, eps float32) *Tensor {
	if len(x.shape) < 2 || groups < 1 || x.shape[1]%groups != 0 {
		panic(fmt.Sprintf("tensor: group_norm: %d groups for input %v", groups, x.shape))
	}
	N := x.shape[0]
	y := Reshape(LayerNorm(Reshape(x, N*groups, -1), nil, nil, eps), x.shape...)
	return affine("group_norm", y, w, b)
}

// BatchNorm2d normalises each channel of x [N, C, H, W]. With training it
// uses the batch's mean and biased variance, and, if runMean and runVar
// are not nil, updates them in place as running = (1-momentum)*running +
// momentum*batch, with the unbiased variance (PyTorch's). Without, it
// uses runMean and runVar. w and b may be nil.
func BatchNorm2d(x, w, b, runMean, runVar *Tensor, training bool, momentum, eps float32) *Tensor {
	N, C, H, W := dims4("batch_norm2d", x, "input")
	for _, r := range []*Tensor{runMean, runVar} {
		if r != nil && r.Len() != C {
			panic(fmt.Sprintf("tensor: batch_norm2d: running statistics of shape %v for %d channels", r.shape, C))
		}
	}
	if !training {
		if runMean == nil || runVar == nil {
			panic("tensor: batch_norm2d: evaluation needs running statistics")
		}
		sh := []int{1, C, 1, 1}
		var scale, shift *Tensor
		rstd := Recip(Sqrt(AddScalar(runVar.Detach(), eps)))
		scale = rstd
		if w != nil {
			scale = Mul(w, rstd)
		}
		shift = Neg(Mul(runMean.Detach(), scale))
		if b != nil {
			shift = Add(shift, b)
		}
		if bn, ok := x.be.(backend.BatchNorm); ok && (!GradEnabled() || !shift.requiresGrad && !x.requiresGrad) {
			// no gradient: one pass of the fused kernel (the probes'
			// frozen encoders)
			out := result(slices.Clone(x.shape), x, scale, shift)
			bn.ChannelAffine(out.buf, x.buf, scale.buf, shift.buf, N, C, H*W)
			return out
		}
		return Add(Mul(x, Reshape(scale, sh...)), Reshape(shift, sh...))
	}
	L := N * H * W
	if L < 2 && runVar != nil {
		panic(fmt.Sprintf("tensor: batch_norm2d: training needs more than one value per channel, got input %v", x.shape))
	}
	if bn, ok := x.be.(backend.BatchNorm); ok {
		return batchNormFused(bn, x, w, b, runMean, runVar, momentum, eps)
	}
	xc := Reshape(Permute(Reshape(x, N, C, H*W), 1, 0, 2), C, L) // [C, N*H*W]
	y := Permute(Reshape(LayerNorm(xc, nil, nil, eps), C, N, H*W), 1, 0, 2)
	if runMean != nil && runVar != nil {
		NoGrad(func() {
			d := xc.Detach()
			mean := MeanLast(d)
			v := Scale(SumLast(Square(Sub(d, Reshape(mean, C, 1)))), 1/float32(L-1))
			m := Add(Scale(runMean, 1-momentum), Scale(mean, momentum))
			nv := Add(Scale(runVar, 1-momentum), Scale(v, momentum))
			runMean.CopyFrom(m)
			runVar.CopyFrom(nv)
			for _, t := range []*Tensor{m, nv} {
				Release(t)
			}
		})
	}
	return affine("batch_norm2d", Reshape(y, N, C, H, W), w, b)
}

// batchNormFused is BatchNorm2d's training pass on a backend with the
// BatchNorm ability: one kernel each way, on NCHW as it is. The running
// statistics ([C] each) are updated on the host from the batch's mean and
// 1/std.
func batchNormFused(bn backend.BatchNorm, x, w, b, runMean, runVar *Tensor, momentum, eps float32) *Tensor {
	N, C, H, W := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	for _, t := range []*Tensor{w, b} {
		if t != nil && t.Len() != C {
			panic(fmt.Sprintf("tensor: batch_norm2d: weight or bias of shape %v for %d channels", t.shape, C))
		}
	}
	out := result(slices.Clone(x.shape), inputs(x, w, b)...)
	mean, rstd := out.saveBuf(C, false), out.saveBuf(C, false)
	bn.BatchNorm(out.buf, mean, rstd, x.buf, bufOrNil(w), bufOrNil(b), N, C, H*W, eps)
	if out.requiresGrad {
		out.back = func() {
			bn.BatchNormGrad(gradOrNil(x), gradOrNil(w), gradOrNil(b), x.buf, bufOrNil(w), mean, rstd, out.grad, N, C, H*W)
		}
	}
	if runMean != nil && runVar != nil {
		be, L := x.be, float64(N*H*W)
		mu, r := make([]float32, C), make([]float32, C)
		be.Download(mu, mean, 0)
		be.Download(r, rstd, 0)
		rm, rv := runMean.Host(), runVar.Host()
		for c := range C {
			v := (1/(float64(r[c])*float64(r[c])) - float64(eps)) * L / (L - 1) // unbiased
			rm[c] = (1-momentum)*rm[c] + momentum*mu[c]
			rv[c] = (1-momentum)*rv[c] + momentum*float32(v)
		}
		be.Upload(runMean.buf, 0, rm)
		be.Upload(runVar.buf, 0, rv)
	}
	return out
}
