package tensor

import "github.com/golem-ml/golem/backend"

// Conv2d's 4x4 stride-2 convolutions (one group, no dilation, any
// padding) run as Winograd's F(2x2, 2x2) over the input's four stride
// phases on a backend with backend.WinogradS2: 9 GEMMs over the
// transformed points (M = V U^T: [T, 4C] x [4C, K]) instead of one of
// depth 16C, 1.78x fewer multiply-adds; ConvTranspose2d's 4x4 stride-2
// ones run as the adjoint of the convolution they invert (dM = A x A^T,
// the GEMMs dV = dM U, then B's adjoint adds dV into the output), with the
// same saving. Each backward pass is its forward's exact adjoint in the
// transformed space, as winograd.go's: the weight gradient dU = dM^T V
// and the input gradient (dV = dM U, or M = V U^T for the transposed
// convolution) are 9 GEMMs each too. tensor.SetWinograd(false) turns
// this path off with F(2x2, 3x3)'s.

// winogradS2Min is the fewest input or output channels the F(2x2, 2x2)
// path takes: below it the transforms and the thin GEMMs (4C or K of a
// few) cost more than the multiply-adds saved. vqvae-32's first and last
// layers (3 channels) are 1.3x and 1.5x slower through it than through
// the implicit GEMM; 6 channels break even, 8 are 1.15x faster, 128 are
// 1.75x (BenchmarkConv2dVQStride2 and the like, batch 32, one thread,
// Zen 1 AVX2). Tests lower it to run the path on small shapes.
var winogradS2Min = 8

// winogradS2For returns be's WinogradS2 ability where it runs g.
func winogradS2For(be backend.Backend, g backend.Conv2D) (backend.WinogradS2, bool) {
	if winogradOff.Load() || g.KH != 4 || g.KW != 4 || g.SH != 2 || g.SW != 2 || g.DH != 1 || g.DW != 1 || g.Groups != 1 ||
		g.C < winogradS2Min || g.K < winogradS2Min {
		return nil, false
	}
	wg, ok := be.(backend.WinogradS2)
	return wg, ok
}

// wgTiles is the number of F(2x2, .) output tiles of g.
func wgTiles(g backend.Conv2D) int { return g.N * ((g.OH + 1) / 2) * ((g.OW + 1) / 2) }

// winogradS2Conv is Conv2d of x by w (+ bias) under g through wg.
func winogradS2Conv(wg backend.WinogradS2, x, w, bias *Tensor, g backend.Conv2D) *Tensor {
	be := x.be
	N, C4, K := g.N, 4*g.C, g.K
	T := wgTiles(g)
	out := result([]int{N, K, g.OH, g.OW}, inputs(x, w, bias)...)
	keepU := out.requiresGrad && x.requiresGrad
	keepV := out.requiresGrad && w.requiresGrad && backend.WinogradS2Len(C4*T) <= winogradKeep
	alloc := func(n int, keep bool) backend.Buffer {
		if keep {
			return out.saveBuf(n, false)
		}
		return be.Alloc(n, false)
	}
	sU, sV, sM := backend.WinogradStride(K*C4), backend.WinogradStride(C4*T), backend.WinogradStride(K*T)
	u, v := alloc(backend.WinogradS2Len(K*C4), keepU), alloc(backend.WinogradS2Len(C4*T), keepV)
	wg.WinogradS2Weight(K, g.C, u, w.buf)
	wg.WinogradS2Input(g, v, x.buf)
	m := be.Alloc(backend.WinogradS2Len(K*T), false)
	be.MatMul(backend.Gemm{TransB: true, M: T, N: K, K: C4, Alpha: 1, Batch: 9, LDA: C4, LDB: C4, LDC: K,
		StrideA: sV, StrideB: sU, StrideC: sM}, v, u, m)
	wg.WinogradS2Output(g, out.buf, m, bufOrNil(bias), 0)
	be.Free(m)
	if !keepU {
		be.Free(u)
	}
	if !keepV {
		be.Free(v)
	}
	if out.requiresGrad {
		out.back = func() {
			dm := be.Alloc(backend.WinogradS2Len(K*T), false)
			wg.WinogradS2OutputGrad(g, dm, out.grad)
			if w.requiresGrad {
				v := v
				if !keepV { // transformed again: too large to keep
					v = be.Alloc(backend.WinogradS2Len(C4*T), false)
					defer be.Free(v)
					wg.WinogradS2Input(g, v, x.buf)
				}
				du := be.Alloc(backend.WinogradS2Len(K*C4), false)
				be.MatMul(backend.Gemm{TransA: true, M: K, N: C4, K: T, Alpha: 1, Batch: 9, LDA: K, LDB: C4, LDC: C4,
					StrideA: sM, StrideB: sV, StrideC: sU}, dm, v, du)
				wg.WinogradS2WeightGrad(K, g.C, w.GradBuffer(), du)
				be.Free(du)
			}
			if bias != nil && bias.requiresGrad {
				channelSums(be, bias.GradBuffer(), out.grad, N, K, g.OH*g.OW)
			}
			if x.requiresGrad {
				dv := be.Alloc(backend.WinogradS2Len(C4*T), false)
				be.MatMul(backend.Gemm{M: T, N: C4, K: K, Alpha: 1, Batch: 9, LDA: K, LDB: C4, LDC: C4,
					StrideA: sM, StrideB: sU, StrideC: sV}, dm, u, dv)
				wg.WinogradS2InputGrad(g, x.GradBuffer(), dv)
				be.Free(dv)
			}
			be.Free(dm)
		}
	}
	return out
}

// winogradS2ConvTranspose is ConvTranspose2d of x [N, C, H, W] by w [C,
// K, 4, 4] (+ bias) through wg, g the convolution it inverts (from the
// output [N, K, OH, OW] to C channels at H x W; its weight is w as it
// is): out = B-adjoint(dM(x) U), dM(x) = A x A^T. Backward: V = B^T dy B
// once, then dx += A^T (V U^T) A and dW += G^T (dM^T V) G.
func winogradS2ConvTranspose(wg backend.WinogradS2, x, w, bias *Tensor, g backend.Conv2D) *Tensor {
	be := x.be
	N, C, K4 := g.N, g.K, 4*g.C // g.K is x's channels, g.C the output's
	T := wgTiles(g)
	out := result([]int{N, g.C, g.H, g.W}, inputs(x, w, bias)...)
	keepU := out.requiresGrad && x.requiresGrad
	keepM := out.requiresGrad && w.requiresGrad && backend.WinogradS2Len(C*T) <= winogradKeep
	alloc := func(n int, keep bool) backend.Buffer {
		if keep {
			return out.saveBuf(n, false)
		}
		return be.Alloc(n, false)
	}
	sU, sV, sM := backend.WinogradStride(C*K4), backend.WinogradStride(K4*T), backend.WinogradStride(C*T)
	u, dm := alloc(backend.WinogradS2Len(C*K4), keepU), alloc(backend.WinogradS2Len(C*T), keepM)
	wg.WinogradS2Weight(C, g.C, u, w.buf)
	wg.WinogradS2OutputGrad(g, dm, x.buf)
	dv := be.Alloc(backend.WinogradS2Len(K4*T), false)
	be.MatMul(backend.Gemm{M: T, N: K4, K: C, Alpha: 1, Batch: 9, LDA: C, LDB: K4, LDC: K4,
		StrideA: sM, StrideB: sU, StrideC: sV}, dm, u, dv)
	if bias != nil {
		fillBias(be, out.buf, bias.buf, N, g.C, g.H*g.W)
	} else {
		be.Fill(out.buf, 0)
	}
	wg.WinogradS2InputGrad(g, out.buf, dv)
	be.Free(dv)
	if !keepU {
		be.Free(u)
	}
	if !keepM {
		be.Free(dm)
	}
	if out.requiresGrad {
		out.back = func() {
			v := be.Alloc(backend.WinogradS2Len(K4*T), false)
			wg.WinogradS2Input(g, v, out.grad)
			if w.requiresGrad {
				dm := dm
				if !keepM { // transformed again: too large to keep
					dm = be.Alloc(backend.WinogradS2Len(C*T), false)
					defer be.Free(dm)
					wg.WinogradS2OutputGrad(g, dm, x.buf)
				}
				du := be.Alloc(backend.WinogradS2Len(C*K4), false)
				be.MatMul(backend.Gemm{TransA: true, M: C, N: K4, K: T, Alpha: 1, Batch: 9, LDA: C, LDB: K4, LDC: K4,
					StrideA: sM, StrideB: sV, StrideC: sU}, dm, v, du)
				wg.WinogradS2WeightGrad(C, g.C, w.GradBuffer(), du)
				be.Free(du)
			}
			if bias != nil && bias.requiresGrad {
				channelSums(be, bias.GradBuffer(), out.grad, N, g.C, g.H*g.W)
			}
			if x.requiresGrad {
				m := be.Alloc(backend.WinogradS2Len(C*T), false)
				be.MatMul(backend.Gemm{TransB: true, M: T, N: C, K: K4, Alpha: 1, Batch: 9, LDA: K4, LDB: K4, LDC: C,
					StrideA: sV, StrideB: sU, StrideC: sM}, v, u, m)
				dx, beta := x.gemmGrad()
				wg.WinogradS2Output(g, dx, m, nil, beta)
				be.Free(m)
			}
			be.Free(v)
		}
	}
	return out
}
