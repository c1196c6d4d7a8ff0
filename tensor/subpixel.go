package tensor

import (
	"math"
	"sync"

	"github.com/golem-ml/golem/backend"
)

// A transposed convolution (and so a convolution's input gradient) of
// stride s and a kernel k a multiple of s is s*s ordinary stride-1
// convolutions with k/s x k/s kernels, one per output phase (oh mod s,
// ow mod s), whose outputs interleave: output row o = s*a + r takes the
// taps t = t0 + s*u (t0 = (r+p) mod s) at input rows i = a + q - u (q =
// (r+p) div s). Each phase is an im2col of x and one GEMM of full depth
// (Cin*k*k/(s*s)); the phases land in a channel-major scratch that one
// permute interleaves into NCHW. The column-matrix path instead writes a
// Cout*k*k x N*H*W matrix with a GEMM of depth Cin and adds it back with
// col2im's scatter; sub-pixel writes Cin*k*k x N*H*W values by im2col, so
// it is taken where Cin <= Cout (vqvae-32's 4x4 stride-2 decoder and
// encoder layers, 128 to 128, and the 3x3 convolutions' input gradients,
// 64 to 128).
type subPixel struct {
	N, Cin, Cout, sy, sx int
	ckk, L               int              // a phase's GEMM depth and columns (N*OH/sy*OW/sx)
	phases               []backend.Conv2D // each phase's im2col of x
	kk                   int              // kh*kw
	idx                  []int32          // w as [Cout, Cin, kh, kw] gathered as [phase, Cout, Cin*kh/sy*kw/sx]
}

var (
	spMu    sync.Mutex
	spCache = map[spKey]*subPixel{}
)

type spKey struct {
	N, Cin, H, W, Cout, kh, kw, OH, OW int
	o                                  ConvOptions
}

// subPixelPlan returns the sub-pixel plan of the transposed convolution
// of x [N, Cin, H, W] by w [Cin, Cout, kh, kw] to [N, Cout, OH, OW], or
// nil where it does not apply or would cost more: groups, dilation, a
// kernel that is not a multiple of the stride, an output that is not, a
// 1x1 stride-1 kernel (a plain GEMM already), Cin > Cout, or a weight too
// large for its int32 gather index.
func subPixelPlan(N, Cin, H, W, Cout, kh, kw, OH, OW int, o ConvOptions) *subPixel {
	sy, sx := o.Stride[0], o.Stride[1]
	if o.Groups != 1 || o.Dilation != [2]int{1, 1} || kh%sy != 0 || kw%sx != 0 || OH%sy != 0 || OW%sx != 0 ||
		kh*kw == 1 || Cin > Cout || int64(Cin)*int64(Cout)*int64(kh*kw) >= math.MaxInt32 {
		return nil
	}
	key := spKey{N, Cin, H, W, Cout, kh, kw, OH, OW, o}
	spMu.Lock()
	defer spMu.Unlock()
	sp, ok := spCache[key]
	if !ok {
		if len(spCache) >= 64 {
			clear(spCache)
		}
		sp = newSubPixel(N, Cin, H, W, Cout, kh, kw, OH, OW, o)
		spCache[key] = sp
	}
	return sp
}

func newSubPixel(N, Cin, H, W, Cout, kh, kw, OH, OW int, o ConvOptions) *subPixel {
	sy, sx := o.Stride[0], o.Stride[1]
	nuy, nux := kh/sy, kw/sx
	sp := &subPixel{N: N, Cin: Cin, Cout: Cout, sy: sy, sx: sx, ckk: Cin * nuy * nux, L: N * (OH / sy) * (OW / sx), kk: kh * kw}
	sp.idx = make([]int32, 0, sy*sx*Cout*sp.ckk)
	for ry := range sy {
		t0y, qy := (ry+o.Padding[0])%sy, (ry+o.Padding[0])/sy
		for rx := range sx {
			t0x, qx := (rx+o.Padding[1])%sx, (rx+o.Padding[1])/sx
			if qy > nuy-1 || qx > nux-1 {
				return nil // the phase would start past its first tap: not worth a case
			}
			sp.phases = append(sp.phases, backend.Conv2D{N: N, C: Cin, H: H, W: W, K: Cout, KH: nuy, KW: nux,
				SH: 1, SW: 1, PH: nuy - 1 - qy, PW: nux - 1 - qx, DH: 1, DW: 1, Groups: 1, OH: OH / sy, OW: OW / sx})
			for k := range Cout {
				for c := range Cin {
					for vy := range nuy {
						ty := t0y + sy*(nuy-1-vy)
						for vx := range nux {
							tx := t0x + sx*(nux-1-vx)
							sp.idx = append(sp.idx, int32(((k*Cin+c)*kh+ty)*kw+tx))
						}
					}
				}
			}
		}
	}
	return sp
}

// run writes (beta 0) or adds (beta 1) the transposed convolution of x by
// w into y [N, Cout, OH, OW].
func (sp *subPixel) run(be backend.Backend, w, x, y backend.Buffer, beta float32) {
	P := len(sp.phases)
	// w [Cin, Cout, kh*kw] as [Cout, Cin, kh*kw] (runs of kh*kw), so that
	// the gather of each phase's taps reads it in order
	wt := be.Alloc(sp.Cin*sp.Cout*sp.kk, false)
	be.Permute(wt, w, []int{sp.Cin, sp.Cout, sp.kk}, []int{1, 0, 2}, false)
	wp := be.Alloc(len(sp.idx), false)
	be.Embedding(wp, wt, sp.idx, 1)
	be.Free(wt)
	var col backend.Buffer // the phases' column matrix, reused (nil where the GEMMs read x implicitly)
	alloc := func(n int) backend.Buffer {
		if col == nil {
			col = be.Alloc(n, false)
		}
		return col
	}
	t := be.Alloc(P*sp.Cout*sp.L, false)
	for r, g := range sp.phases {
		newCols(be, g, x, alloc).matMul(be, backend.Gemm{M: sp.Cout, N: sp.L, K: sp.ckk, Alpha: 1, Batch: 1, LDA: sp.ckk, LDB: sp.L, LDC: sp.L,
			OffA: r * sp.Cout * sp.ckk, OffC: r * sp.Cout * sp.L}, wp, t)
	}
	if col != nil {
		be.Free(col)
	}
	be.Free(wp)
	// t is [sy, sx, Cout, N, OH/sy, OW/sx]; y is [N, Cout, OH/sy, sy, OW/sx, sx]
	g := sp.phases[0]
	shape, perm := squeeze([]int{sp.sy, sp.sx, sp.Cout, sp.N, g.OH, g.OW}, []int{3, 2, 4, 0, 5, 1})
	be.Permute(y, t, shape, perm, beta != 0)
	be.Free(t)
}

// squeeze drops the dims of size 1 from a permute's shape and renumbers
// perm, so that a permute's last dim is a real one.
func squeeze(shape, perm []int) ([]int, []int) {
	newIdx := make([]int, len(shape))
	var s []int
	for i, d := range shape {
		newIdx[i] = len(s)
		if d != 1 {
			s = append(s, d)
		}
	}
	var p []int
	for _, i := range perm {
		if shape[i] != 1 {
			p = append(p, newIdx[i])
		}
	}
	if len(s) == 0 {
		return []int{1}, []int{0}
	}
	return s, p
}
