package tensor

import "github.com/golem-ml/golem/backend"

// Conv2d's 4x4 stride-2 convolutions (one group, no dilation, any
// padding) run as Winograd's F(2x2, 2x2) or F(4x4, 2x2) over the input's
// four stride phases on a backend with backend.WinogradS2: P GEMMs over
// the transformed points (M = V U^T: [T, 4C] x [4C, K]) instead of one
// of depth 16C, 1.78x fewer multiply-adds with F(2x2, 2x2) (9 points for
// a tile of 4 outputs), 2.56x with F(4x4, 2x2) (25 for 16), which runs
// where the output is at least winogradS2F4Min a side; ConvTranspose2d's
// 4x4 stride-2 ones run as the adjoint of the convolution they invert
// (dM = A x A^T, the GEMMs dV = dM U, then B's adjoint adds dV into the
// output), with the same saving. Each backward pass is its forward's
// exact adjoint in the transformed space, as winograd.go's: the weight
// gradient dU = dM^T V and the input gradient (dV = dM U, or M = V U^T
// for the transposed convolution) are P GEMMs each too.
// tensor.SetWinograd(false) turns this path off with F(2x2, 3x3)'s.

// winogradS2Min is the fewest input or output channels the 4x4 stride-2
// Winograd path takes: below it the transforms and the thin GEMMs (4C or K of a
// few) cost more than the multiply-adds saved. vqvae-32's first and last
// layers (3 channels) are 1.3x and 1.5x slower through it than through
// the implicit GEMM; 6 channels break even, 8 are 1.15x faster, 128 are
// 1.75x (BenchmarkConv2dVQStride2 and the like, batch 32, one thread,
// Zen 1 AVX2). Tests lower it to run the path on small shapes.
var winogradS2Min = 8

// winogradS2F4Min is the smallest output grid (rows and columns) on
// which the path takes F(4x4, 2x2) (tile 4, 25 points for 16 outputs:
// 1.44x fewer multiply-adds than F(2x2, 2x2)'s 9 for 4) rather than
// F(2x2, 2x2): see winogradS2Tile.
const winogradS2F4Min = 8

// winogradS2Force, 2 or 4, makes every shape run in that tile (tests and
// benchmarks); 0 leaves the choice to winogradS2Tile.
var winogradS2Force = 0

// winogradS2For returns be's WinogradS2 ability where it runs g, and the
// tile it runs g in.
func winogradS2For(be backend.Backend, g backend.Conv2D) (backend.WinogradS2, int, bool) {
	if winogradOff.Load() || g.KH != 4 || g.KW != 4 || g.SH != 2 || g.SW != 2 || g.DH != 1 || g.DW != 1 || g.Groups != 1 ||
		g.C < winogradS2Min || g.K < winogradS2Min {
		return nil, 0, false
	}
	wg, ok := be.(backend.WinogradS2)
	return wg, winogradS2Tile(g), ok
}

// winogradS2Tile is the tile g runs in: 4 (F(4x4, 2x2)) where its output
// is at least winogradS2F4Min a side and its 4x4 tiles' points are at
// most 3/4 of its 2x2 tiles' (8x8, 11x11, 12x12 or 16x16, not 9x9 or
// 10x10, where the 4x4 tiles overhang the output), else 2 (F(2x2,
// 2x2)). Measured (BenchmarkConv2dS2Tile and BenchmarkConv2dVQStride2,
// 128 channels, batch 32, one thread, Zen 1, CPU time): on an 8x8 output
// F(4x4, 2x2) is 19% faster (51.7 against 63.7 ms a step), on 6x6 (its
// 4x4 tiles covering 8x8) 1.4x slower, on 4x4 (the same 1.44x fewer
// multiply-adds as on 8x8, in GEMMs of 32 tiles) even (18-19 ms
// against 17-20).
func winogradS2Tile(g backend.Conv2D) int {
	if winogradS2Force != 0 {
		return winogradS2Force
	}
	if g.OH >= winogradS2F4Min && g.OW >= winogradS2F4Min &&
		4*25*wgTilesOf(g, 4) <= 3*9*wgTilesOf(g, 2) {
		return 4
	}
	return 2
}

// fs2 is F(mxm, 2x2) on g's stride phases through wg.
func fs2(wg backend.WinogradS2, g backend.Conv2D, m int) wgScheme {
	return wgScheme{points: backend.WinogradS2Points(m), C: 4 * g.C, K: g.K, T: wgTilesOf(g, m),
		weight:     func(u, w backend.Buffer) { wg.WinogradS2Weight(m, g.K, g.C, u, w) },
		weightGrad: func(dw, du backend.Buffer) { wg.WinogradS2WeightGrad(m, g.K, g.C, dw, du) },
		input:      func(v, x backend.Buffer) { wg.WinogradS2Input(g, m, v, x) },
		inputGrad:  func(dx, dv backend.Buffer) { wg.WinogradS2InputGrad(g, m, dx, dv) },
		output: func(y, mt, bias backend.Buffer, beta float32) {
			wg.WinogradS2Output(g, m, y, mt, bias, beta)
		},
		outputGrad: func(dm, dy backend.Buffer) { wg.WinogradS2OutputGrad(g, m, dm, dy) },
	}
}

// winogradS2ConvTranspose is ConvTranspose2d of x [N, C, H, W] by w [C,
// K, 4, 4] (+ bias) through wg in tiles of m, g the convolution it inverts (from the
// output [N, K, OH, OW] to C channels at H x W; its weight is w as it
// is): out = B-adjoint(dM(x) U), dM(x) = A x A^T. Backward: V = B^T dy B
// once, then dx += A^T (V U^T) A and dW += G^T (dM^T V) G.
func winogradS2ConvTranspose(wg backend.WinogradS2, m int, x, w, bias *Tensor, g backend.Conv2D) *Tensor {
	be, s := x.be, fs2(wg, g, m)
	N, C, K4 := g.N, g.K, 4*g.C // g.K is x's channels, g.C the output's
	T := s.T
	out := result([]int{N, g.C, g.H, g.W}, inputs(x, w, bias)...)
	keepU := out.requiresGrad && x.requiresGrad
	keepM := out.requiresGrad && w.requiresGrad && s.len(C*T) <= winogradKeep
	alloc := func(n int, keep bool) backend.Buffer {
		if keep {
			return out.saveBuf(n, false)
		}
		return be.Alloc(n, false)
	}
	sU, sV, sM := backend.WinogradStride(C*K4), backend.WinogradStride(K4*T), backend.WinogradStride(C*T)
	u, dm := alloc(s.len(C*K4), keepU), alloc(s.len(C*T), keepM)
	s.weight(u, w.buf)
	s.outputGrad(dm, x.buf)
	dv := be.Alloc(s.len(K4*T), false)
	be.MatMul(backend.Gemm{M: T, N: K4, K: C, Alpha: 1, Batch: s.points, LDA: C, LDB: K4, LDC: K4,
		StrideA: sM, StrideB: sU, StrideC: sV}, dm, u, dv)
	if bias != nil {
		fillBias(be, out.buf, bias.buf, N, g.C, g.H*g.W)
	} else {
		be.Fill(out.buf, 0)
	}
	s.inputGrad(out.buf, dv)
	be.Free(dv)
	if !keepU {
		be.Free(u)
	}
	if !keepM {
		be.Free(dm)
	}
	if out.requiresGrad {
		out.back = func() {
			v := be.Alloc(s.len(K4*T), false)
			s.input(v, out.grad)
			if w.requiresGrad {
				dm := dm
				if !keepM { // transformed again: too large to keep
					dm = be.Alloc(s.len(C*T), false)
					defer be.Free(dm)
					s.outputGrad(dm, x.buf)
				}
				du := be.Alloc(s.len(C*K4), false)
				be.MatMul(backend.Gemm{TransA: true, M: C, N: K4, K: T, Alpha: 1, Batch: s.points, LDA: C, LDB: K4, LDC: K4,
					StrideA: sM, StrideB: sV, StrideC: sU}, dm, v, du)
				s.weightGrad(w.GradBuffer(), du)
				be.Free(du)
			}
			if bias != nil && bias.requiresGrad {
				channelSums(be, bias.GradBuffer(), out.grad, N, g.C, g.H*g.W)
			}
			if x.requiresGrad {
				m := be.Alloc(s.len(C*T), false)
				be.MatMul(backend.Gemm{TransB: true, M: T, N: C, K: K4, Alpha: 1, Batch: s.points, LDA: K4, LDB: K4, LDC: C,
					StrideA: sV, StrideB: sU, StrideC: sM}, v, u, m)
				dx, beta := x.gemmGrad()
				s.output(dx, m, nil, beta)
				be.Free(m)
			}
			be.Free(v)
		}
	}
	return out
}
