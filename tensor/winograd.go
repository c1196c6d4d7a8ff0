package tensor

import (
	"sync/atomic"

	"github.com/golem-ml/golem/backend"
)

// Conv2d's 3x3 stride-1 convolutions (one group, no dilation, any
// padding) run as Winograd's F(2x2, 3x3) on a backend with
// backend.Winograd: the weight, the input tiles and the output tiles
// transformed, and between them 16 GEMMs over the transformed points
// (M = V U^T: [T, C] x [C, K], T the 2x2 output tiles of all the
// images), 2.25x fewer multiply-adds than the direct convolution's GEMM.
// The backward pass is the forward's exact adjoint, so it runs in the
// same transformed space: dM = A dY A^T once, then dU = dM^T V (16
// GEMMs) and dW += G^T dU G for the weight, dV = dM U (16 GEMMs) and dX
// += B dV B^T for the input: 2.25x fewer multiply-adds for each of the
// three products. The forward keeps V (16*T*C values) for the weight
// gradient and U (16*K*C) for the input gradient.

var winogradOff atomic.Bool

// winogradKeep bounds the transformed input V a convolution keeps for its
// weight gradient (4x its input's size, with the tiles' rounding): up to
// 16M values (64 MB; vqvae-32's are 1M) it is kept, beyond that the
// backward pass transforms x again, so that large convolutions hold no
// more memory than the implicit GEMM (which keeps x only).
var winogradKeep = 1 << 24

// SetWinograd turns Conv2d's Winograd path on (the default) or off, and
// returns the previous setting. Off, every convolution takes the GEMM
// over its column matrix: the reference the Winograd path is tested
// against, and a benchmark's baseline.
func SetWinograd(on bool) bool { return !winogradOff.Swap(!on) }

// winogradFor returns be's Winograd ability where it runs g.
func winogradFor(be backend.Backend, g backend.Conv2D) (backend.Winograd, bool) {
	if winogradOff.Load() || g.KH != 3 || g.KW != 3 || g.SH != 1 || g.SW != 1 || g.DH != 1 || g.DW != 1 || g.Groups != 1 {
		return nil, false
	}
	wg, ok := be.(backend.Winograd)
	return wg, ok
}

// wgScheme is one Winograd algorithm on one geometry: how many points
// its transforms have, the sizes of the GEMMs between them, and the six
// transforms (backend.Winograd's or backend.WinogradS2's, bound to g).
type wgScheme struct {
	points  int // 16 for F(2x2, 3x3), 9 for F(2x2, 2x2), 25 for F(4x4, 2x2)
	C, K, T int // the GEMMs' input channels (4C over F(2x2, 2x2)'s phases), output channels and tiles
	// weight writes u from w, weightGrad adds du's adjoint into dw
	weight, weightGrad func(a, b backend.Buffer)
	// input writes v from x, inputGrad adds dv's adjoint into dx
	input, inputGrad func(a, b backend.Buffer)
	// output writes y = beta*y + A^T m A (+ bias), outputGrad dm = A dy A^T
	output     func(y, m, bias backend.Buffer, beta float32)
	outputGrad func(dm, dy backend.Buffer)
}

// len is the length of a buffer of the scheme's points matrices of n
// values each, backend.WinogradStride(n) apart.
func (s wgScheme) len(n int) int { return (s.points-1)*backend.WinogradStride(n) + n }

// wgTiles is the number of F(2x2, .) output tiles of g.
func wgTiles(g backend.Conv2D) int { return wgTilesOf(g, 2) }

// wgTilesOf is the number of g's output tiles of m x m.
func wgTilesOf(g backend.Conv2D, m int) int { return g.N * ((g.OH + m - 1) / m) * ((g.OW + m - 1) / m) }

// f23 is F(2x2, 3x3) on g through wg.
func f23(wg backend.Winograd, g backend.Conv2D) wgScheme {
	return wgScheme{points: 16, C: g.C, K: g.K, T: wgTiles(g),
		weight:     func(u, w backend.Buffer) { wg.WinogradWeight(g.K, g.C, u, w) },
		weightGrad: func(dw, du backend.Buffer) { wg.WinogradWeightGrad(g.K, g.C, dw, du) },
		input:      func(v, x backend.Buffer) { wg.WinogradInput(g, v, x) },
		inputGrad:  func(dx, dv backend.Buffer) { wg.WinogradInputGrad(g, dx, dv) },
		output: func(y, m, bias backend.Buffer, beta float32) {
			if beta != 0 {
				panic("tensor: F(2x2, 3x3)'s output transform overwrites its output")
			}
			wg.WinogradOutput(g, y, m, bias)
		},
		outputGrad: func(dm, dy backend.Buffer) { wg.WinogradOutputGrad(g, dm, dy) },
	}
}

// winogradConv is Conv2d of x by w (+ bias) under s.
func winogradConv(s wgScheme, x, w, bias *Tensor, g backend.Conv2D) *Tensor {
	be := x.be
	C, K, T := s.C, s.K, s.T
	out := result([]int{g.N, g.K, g.OH, g.OW}, inputs(x, w, bias)...)
	keepU := out.requiresGrad && x.requiresGrad
	keepV := out.requiresGrad && w.requiresGrad && s.len(C*T) <= winogradKeep
	alloc := func(n int, keep bool) backend.Buffer {
		if keep {
			return out.saveBuf(n, false)
		}
		return be.Alloc(n, false)
	}
	sU, sV, sM := backend.WinogradStride(K*C), backend.WinogradStride(C*T), backend.WinogradStride(K*T)
	u, v := alloc(s.len(K*C), keepU), alloc(s.len(C*T), keepV)
	s.weight(u, w.buf)
	s.input(v, x.buf)
	m := be.Alloc(s.len(K*T), false)
	be.MatMul(backend.Gemm{TransB: true, M: T, N: K, K: C, Alpha: 1, Batch: s.points, LDA: C, LDB: C, LDC: K,
		StrideA: sV, StrideB: sU, StrideC: sM}, v, u, m)
	s.output(out.buf, m, bufOrNil(bias), 0)
	be.Free(m)
	if !keepU {
		be.Free(u)
	}
	if !keepV {
		be.Free(v)
	}
	if out.requiresGrad {
		out.back = func() {
			dm := be.Alloc(s.len(K*T), false)
			s.outputGrad(dm, out.grad)
			if w.requiresGrad {
				v := v
				if !keepV { // transformed again: too large to keep
					v = be.Alloc(s.len(C*T), false)
					defer be.Free(v)
					s.input(v, x.buf)
				}
				du := be.Alloc(s.len(K*C), false)
				be.MatMul(backend.Gemm{TransA: true, M: K, N: C, K: T, Alpha: 1, Batch: s.points, LDA: K, LDB: C, LDC: C,
					StrideA: sM, StrideB: sV, StrideC: sU}, dm, v, du)
				s.weightGrad(w.GradBuffer(), du)
				be.Free(du)
			}
			if bias != nil && bias.requiresGrad {
				channelSums(be, bias.GradBuffer(), out.grad, g.N, g.K, g.OH*g.OW)
			}
			if x.requiresGrad {
				dv := be.Alloc(s.len(C*T), false)
				be.MatMul(backend.Gemm{M: T, N: C, K: K, Alpha: 1, Batch: s.points, LDA: K, LDB: C, LDC: C,
					StrideA: sM, StrideB: sU, StrideC: sV}, dm, u, dv)
				s.inputGrad(x.GradBuffer(), dv)
				be.Free(dv)
			}
			be.Free(dm)
		}
	}
	return out
}
