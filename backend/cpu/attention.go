package cpu

import (
	"math"

	"github.com/golem-ml/golem/backend"
)

// Attention is fused scaled-dot-product attention, written like llm.c: per
// (batch, head) the scores are one small GEMM, the masked softmax runs in
// place, and the output is a second GEMM. The probabilities are kept for the
// backward pass.
func (c *CPU) Attention(a backend.Attention, o, p, q, k, v backend.Buffer) {
	os, ps, qs, ks, vs := f(o), f(p), f(q), f(k), f(v)
	T, S, D, HQ, HKV := a.T, a.S, a.D, a.HQ, a.HKV
	group := HQ / HKV
	Parallel(a.B*HQ, 1, func(lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			b, h := bh/HQ, bh%HQ
			kh := h / group
			qo := b*T*HQ*D + h*D
			ko := b*S*HKV*D + kh*D
			P := ps[bh*T*S : (bh+1)*T*S]
			SgemmST(false, true, T, S, D, a.Scale, qs[qo:], HQ*D, ks[ko:], HKV*D, 0, P, S)
			for t := 0; t < T; t++ {
				row := P[t*S : t*S+S]
				limit := S
				if a.Causal {
					limit = min(S, S-T+t+1)
				}
				m := float32(math.Inf(-1))
				for j := 0; j < limit; j++ {
					if a.KeyMask != nil && !a.KeyMask[b*S+j] {
						continue
					}
					m = max(m, row[j])
				}
				if math.IsInf(float64(m), -1) {
					clear(row)
					continue
				}
				var sum float32
				for j := 0; j < S; j++ {
					if j >= limit || (a.KeyMask != nil && !a.KeyMask[b*S+j]) {
						row[j] = 0
						continue
					}
					e := expf(row[j] - m)
					row[j] = e
					sum += e
				}
				inv := 1 / sum
				for j := 0; j < limit; j++ {
					row[j] *= inv
				}
			}
			SgemmST(false, false, T, D, S, 1, P, S, vs[ko:], HKV*D, 0, os[qo:], HQ*D)
		}
	})
}

// AttentionGrad accumulates dq, dk and dv. Work is split over (batch, kv
// head), so the query heads that share a kv head add into it in order.
func (c *CPU) AttentionGrad(a backend.Attention, dq, dk, dv, q, k, v, p, do backend.Buffer) {
	dqs, dks, dvs, qs, ks, vs, ps, dos := f(dq), f(dk), f(dv), f(q), f(k), f(v), f(p), f(do)
	T, S, D, HQ, HKV := a.T, a.S, a.D, a.HQ, a.HKV
	group := HQ / HKV
	Parallel(a.B*HKV, 1, func(lo, hi int) {
		scratch := c.Alloc(T*S, false)
		dP := f(scratch)
		for bk := lo; bk < hi; bk++ {
			b, kh := bk/HKV, bk%HKV
			ko := b*S*HKV*D + kh*D
			for h := kh * group; h < (kh+1)*group; h++ {
				bh := b*HQ + h
				qo := b*T*HQ*D + h*D
				P := ps[bh*T*S : (bh+1)*T*S]
				// dP = dO V^T; dV += P^T dO.
				SgemmST(false, true, T, S, D, 1, dos[qo:], HQ*D, vs[ko:], HKV*D, 0, dP, S)
				if dvs != nil {
					SgemmST(true, false, S, D, T, 1, P, S, dos[qo:], HQ*D, 1, dvs[ko:], HKV*D)
				}
				// dS = P * (dP - rowsum(dP*P)) * scale, in place.
				for t := 0; t < T; t++ {
					pr, dr := P[t*S:t*S+S], dP[t*S:t*S+S]
					s := dot(pr, dr)
					for j := range dr {
						dr[j] = pr[j] * (dr[j] - s) * a.Scale
					}
				}
				if dqs != nil {
					SgemmST(false, false, T, D, S, 1, dP, S, ks[ko:], HKV*D, 1, dqs[qo:], HQ*D)
				}
				if dks != nil {
					SgemmST(true, false, S, D, T, 1, dP, S, qs[qo:], HQ*D, 1, dks[ko:], HKV*D)
				}
			}
		}
		c.Free(scratch)
	})
}

// RoPE rotates pairs (i, i+D/2) of every head by position * theta^(-2i/D).
func (c *CPU) RoPE(r backend.RoPE, y, x backend.Buffer, grad bool) {
	ys, xs := f(y), f(x)
	half := r.D / 2
	invFreq := make([]float64, half)
	for i := range invFreq {
		// As transformers computes it: in float32.
		invFreq[i] = float64(float32(1 / math.Pow(r.Theta, float64(2*i)/float64(r.D))))
	}
	W := r.H * r.D
	Parallel(r.B*r.T, grain(W), func(lo, hi int) {
		for bt := lo; bt < hi; bt++ {
			pos := r.Start + bt%r.T
			if r.Pos != nil {
				pos = int(r.Pos[bt])
			}
			row := bt * W
			for i := 0; i < half; i++ {
				ang := float32(float32(pos) * float32(invFreq[i]))
				sn, cs := math.Sincos(float64(ang))
				cf, sf := float32(cs), float32(sn)
				for h := 0; h < r.H; h++ {
					o := row + h*r.D + i
					x0, x1 := xs[o], xs[o+half]
					if grad {
						ys[o] += x0*cf + x1*sf
						ys[o+half] += x1*cf - x0*sf
					} else {
						ys[o] = x0*cf - x1*sf
						ys[o+half] = x1*cf + x0*sf
					}
				}
			}
		}
	})
}
