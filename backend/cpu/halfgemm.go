package cpu

// The float16 weights' prefill product. A prompt's activations (more than
// dotRows rows) times a float16 matrix W^T runs the float32 GEMM's
// micro-kernel with W as its B operand, each block of W (kc of its columns,
// halfTile of its rows) widened and packed into the kernel's panels in one
// pass (VCVTPH2PS loads, 16x16 transposes in registers: packTransposeHalf)
// into a buffer that stays in L2 while every row of the prompt passes over
// it, and the activations packed once for all of W's tiles. It had widened
// a tile of 128 whole rows of W (up to 4 MB for Llama-3.2-1B's MLP) by
// the scalar FromHalf and packed it again from there, which took more of
// the CPU than the multiply-adds. The blocks are gemmBlocked's, so the
// product is bit for bit the float32 GEMM's on W widened.

// halfTile is how many rows of W (columns of the product) a thread
// packs and multiplies at a time: a block of kc x 256 values (256 KB)
// and the activations' block (kc x mc) stay in L2 together.
const halfTile = 256

// maxHalfA is the most activations (values) gemmHalf packs at once: a
// longer prompt goes through in parts of whole blocks of rows, each over
// all of W, so that the packed activations are no larger than a shared
// operand of Sgemm (maxShared).
var maxHalfA = maxShared

// gemmHalf is c = alpha * a W^T + beta * c for W a float16 matrix [n, k]
// (w, of matching shape), on the float32 GEMM's kernel.
func gemmHalf(m, n, k int, alpha float32, a []float32, lda int, w *QuantBuf, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	_ = a[(m-1)*lda+k-1]
	_ = c[(m-1)*ldc+n-1]
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	kern := activeKernel
	// Parts of whole blocks of rows: a value of C is the same whichever
	// tile computes it.
	if part := max(maxHalfA/k/kern.mc, 1) * kern.mc; m > part {
		for i0 := 0; i0 < m; i0 += part {
			gemmHalf(min(part, m-i0), n, k, alpha, a[i0*lda:], lda, w, beta, c[i0*ldc:], ldc)
		}
		return
	}
	kcb := blockSize(k, kern.kc, 1)
	// Tiles of whole panels, at least one a thread.
	t := Threads()
	tile := min(halfTile, roundUp((n+t-1)/t, kern.nr))
	tiles := (n + tile - 1) / tile
	pre := getPack()
	defer putPack(pre)
	pre.a = grow(pre.a, m*k)
	preA := pre.a
	workers := min(t, max(1, m*k/minShared))
	Parallel(workers, 1, func(lo, hi int) {
		for u := lo; u < hi; u++ {
			prepackA(preA, kern, false, a, lda, m, k, u, workers, imageA{})
		}
	})
	Parallel(tiles, 1, func(lo, hi int) {
		buf := getPack()
		defer putPack(buf)
		buf.b = grow(buf.b, kcb*packedWidth(kern, tile))
		for ti := lo; ti < hi; ti++ {
			r0 := ti * tile
			nt := min(tile, n-r0)
			for pc := 0; pc < k; pc += kcb {
				kc := min(kcb, k-pc)
				pb := buf.b[:kc*packedWidth(kern, nt)]
				packHalfB(kern, pb, w.H[r0*k+pc:], k, kc, nt)
				bet := beta
				if pc > 0 {
					bet = 1
				}
				gemmBlocked(kern, buf, false, true, m, nt, kc, alpha, nil, lda, nil, k, bet, c[r0:], ldc, preA[pc*m:pc*m+m*kc], pb, nt, 0, nil, imageA{})
			}
		}
	})
}

// packHalfB packs the float16 matrix src, nc rows of kc values at stride
// ld, as packB packs op(B) = src^T (B stored n x k): panels of kern.nr of
// its rows, the last one padded with zeros to whole vectors, each holding
// kc steps of widened values.
func packHalfB(kern *gemmKernel, dst []float32, src []uint16, ld, kc, nc int) {
	pack := packHalfStridedGo
	if haveHalf && fastQuant {
		pack = packHalfStrided512
		if !haveHalf512 {
			pack = packHalfStrided256
		}
	}
	o := 0
	for j := 0; j < nc; j += kern.nr {
		w := min(kern.nr, nc-j)
		wp := roundUp(w, kern.vec)
		pack(dst[o:o+kc*wp], wp, src[j*ld:], ld, kc, w, wp)
		o += kc * wp
	}
}

// packHalfStridedGo is packStrided over float16 values: it sets
// dst[p*ds+i] to src[i*ss+p] widened for p < kc and i < cnt, and to zero
// for cnt <= i < width.
func packHalfStridedGo(dst []float32, ds int, src []uint16, ss, kc, cnt, width int) {
	for i := 0; i < cnt; i++ {
		for p, h := range src[i*ss : i*ss+kc] {
			dst[p*ds+i] = f16ToF32(h)
		}
	}
	if width > cnt {
		for p := 0; p < kc; p++ {
			clear(dst[p*ds+cnt : p*ds+width])
		}
	}
}
