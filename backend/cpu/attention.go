package cpu

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/golem-ml/golem/backend"
)

// attnBlock is the number of query rows attention handles at a time. With a
// causal mask, the rows of a block only see the keys up to their last row,
// so the scores and their gradients skip most of the masked upper triangle.
// attnBlockBF16 is attnBlock for bf16 products: four whole 14-row tiles of
// the bf16 kernel (64 rows ran five tiles of 12 and 13); bench's small
// config trained 4-7% less CPU time a step with it than with 64 (one
// thread, three alternating rounds under load).
var (
	attnBlock     = 64
	attnBlockBF16 = 56
)

// blockRows returns a's query rows a block: attnBlock, or attnBlockBF16
// for bf16 products.
func blockRows(a *backend.Attention) int {
	if a.BF16 {
		return attnBlockBF16
	}
	return attnBlock
}

// attnIO locates the heads of q, k and v (or of their gradients): head h
// of row t of batch b of q starts at q[b*qb+t*ldq+h*D], and likewise for k
// and v. Separate tensors and one packed QKV tensor are both such layouts.
type attnIO struct {
	q, k, v       []float32
	ldq, ldk, ldv int
	qb, kb, vb    int
}

func separateIO(a *backend.Attention, q, k, v []float32) attnIO {
	ldq, ldk := a.HQ*a.D, a.HKV*a.D
	rows := max(a.S, a.KVRows)
	return attnIO{q: q, k: k, v: v, ldq: ldq, ldk: ldk, ldv: ldk, qb: a.T * ldq, kb: rows * ldk, vb: rows * ldk}
}

func packedIO(a *backend.Attention, qkv []float32) attnIO {
	if qkv == nil {
		return attnIO{}
	}
	w := (a.HQ + 2*a.HKV) * a.D
	q, k := a.HQ*a.D, (a.HQ+a.HKV)*a.D
	return attnIO{q: qkv, k: qkv[q:], v: qkv[k:], ldq: w, ldk: w, ldv: w, qb: a.T * w, kb: a.T * w, vb: a.T * w}
}

// Attention is fused scaled-dot-product attention, written like llm.c: per
// (batch, head) and block of query rows, the scores are one small GEMM
// over the keys the block can see, the masked softmax runs in place, and
// the output is a second GEMM. The probabilities are kept for the backward
// pass; entries a block cannot see (past its last row's limit) are never
// written or read. A block of fewer than 4 rows (decoding) uses dot
// products instead of GEMMs.
func (c *CPU) Attention(a backend.Attention, o, p, q, k, v backend.Buffer) {
	c.attention(&a, separateIO(&a, f(q), f(k), f(v)), f(o), f(p))
}

// AttentionPacked is Attention with q, k and v side by side in the last
// dim of one [B, T, (HQ+2*HKV)*D] buffer, as a fused QKV projection writes
// them (so S = T), read in place.
func (c *CPU) AttentionPacked(a backend.Attention, o, p, qkv backend.Buffer) {
	c.attention(&a, packedIO(&a, f(qkv)), f(o), f(p))
}

// AttentionPackedGrad accumulates the gradients of AttentionPacked into
// dqkv, laid out like qkv, or without acc writes them.
func (c *CPU) AttentionPackedGrad(a backend.Attention, dqkv, qkv, p, do backend.Buffer, acc bool) {
	c.attentionGrad(&a, packedIO(&a, f(dqkv)), packedIO(&a, f(qkv)), f(p), f(do), acc)
}

func (c *CPU) attention(a *backend.Attention, in attnIO, os, ps []float32) {
	T, S, D, HQ, HKV := a.T, a.S, a.D, a.HQ, a.HKV
	group := HQ / HKV
	ldo := HQ * D
	qs, ks, vs := in.q, in.k, in.v
	ldq, ldk, ldv := in.ldq, in.ldk, in.ldv
	sgemm := attnGemm(a)
	blk := blockRows(a)
	Parallel(a.B*HQ, 1, func(lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			b, h := bh/HQ, bh%HQ
			kh := h / group
			qo, oo := b*in.qb+h*D, b*T*ldo+h*D
			ko, vo := b*in.kb+kh*D, b*in.vb+kh*D
			P := ps[bh*T*S : (bh+1)*T*S]
			for t0 := 0; t0 < T; t0 += blk {
				t1 := min(T, t0+blk)
				kEnd := keyEnd(a, t1)
				if t1-t0 < 4 && !a.BF16 {
					for t := t0; t < t1; t++ {
						row := P[t*S : t*S+kEnd]
						qr := qs[qo+t*ldq : qo+t*ldq+D]
						for j := range row {
							row[j] = a.Scale * dot(qr, ks[ko+j*ldk:ko+j*ldk+D])
						}
						attnSoftmax(a, row, b, t)
						or := os[oo+t*ldo : oo+t*ldo+D]
						clear(or)
						for j, pj := range row {
							if pj != 0 {
								axpy(or, vs[vo+j*ldv:vo+j*ldv+D], pj)
							}
						}
					}
					continue
				}
				sgemm(false, true, t1-t0, kEnd, D, a.Scale, qs[qo+t0*ldq:], ldq, ks[ko:], ldk, 0, P[t0*S:], S)
				for t := t0; t < t1; t++ {
					attnSoftmax(a, P[t*S:t*S+kEnd], b, t)
				}
				sgemm(false, false, t1-t0, D, kEnd, 1, P[t0*S:], S, vs[vo:], ldv, 0, os[oo+t0*ldo:], ldo)
			}
		}
	})
}

// attnGemm returns the GEMM of a's products: SgemmBF16ST for a.BF16
// (the operands rounded to bfloat16, float32 sums; the softmax stays
// float32), else SgemmST.
func attnGemm(a *backend.Attention) func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if a.BF16 {
		return SgemmBF16ST
	}
	return SgemmST
}

// keyEnd returns how many keys the query rows before t1 can see.
func keyEnd(a *backend.Attention, t1 int) int {
	if a.Causal {
		return min(a.S, a.S-a.T+t1)
	}
	return a.S
}

// attnSoftmax turns the scores of query t of batch b (the keys its block
// can see) into probabilities in place: masked keys (by the key mask, the
// causal mask or the sliding window) get 0, and a row that sees no key is
// all 0.
func attnSoftmax(a *backend.Attention, row []float32, b, t int) {
	limit := len(row)
	if a.Causal {
		limit = min(limit, a.S-a.T+t+1)
	}
	lo := 0
	if a.Window > 0 {
		lo = min(max(0, a.S-a.T+t+1-a.Window), limit)
		clear(row[:lo])
	}
	if a.KeyMask == nil {
		if lo == limit {
			clear(row)
			return
		}
		seen := row[lo:limit]
		m := maxf(seen)
		scal(seen, 1/expSub(seen, seen, m, 1))
		clear(row[limit:])
		return
	}
	mask := a.KeyMask[b*a.S : b*a.S+len(row)]
	m := float32(math.Inf(-1))
	for j := lo; j < limit; j++ {
		if mask[j] {
			m = max(m, row[j])
		}
	}
	if math.IsInf(float64(m), -1) {
		clear(row)
		return
	}
	var sum float32
	for j := range row {
		if j < lo || j >= limit || !mask[j] {
			row[j] = 0
			continue
		}
		e := expf(row[j] - m)
		row[j] = e
		sum += e
	}
	scal(row[lo:limit], 1/sum)
}

// AttentionGrad accumulates dq, dk and dv. Work is split over (batch, kv
// head), so the query heads that share a kv head add into it in order.
// Each block of query rows touches only the keys it could see.
func (c *CPU) AttentionGrad(a backend.Attention, dq, dk, dv, q, k, v, p, do backend.Buffer) {
	c.attentionGrad(&a, separateIO(&a, f(dq), f(dk), f(dv)), separateIO(&a, f(q), f(k), f(v)), f(p), f(do), true)
}

// attentionGrad adds the gradients into g, or without acc writes them: the
// worker of a kv head clears that head's rows of dk and dv and of its
// query heads' dq first, as it comes to them (cache-sized pieces, where
// zeroing the whole of a new gradient beforehand was a pass through
// memory on one thread).
func (c *CPU) attentionGrad(a *backend.Attention, g, in attnIO, ps, dos []float32, acc bool) {
	T, S, D, HQ, HKV := a.T, a.S, a.D, a.HQ, a.HKV
	group := HQ / HKV
	ldo := HQ * D
	blk := min(T, blockRows(a))
	sgemm := attnGemm(a)
	c.chunked(a.B*HKV, blk*S, false, func(lo, hi int, dP []float32) {
		for bk := lo; bk < hi; bk++ {
			b, kh := bk/HKV, bk%HKV
			ko, vo := b*in.kb+kh*D, b*in.vb+kh*D
			gko, gvo := b*g.kb+kh*D, b*g.vb+kh*D
			if !acc {
				clearHeads(g.q, b*g.qb+kh*group*D, g.ldq, T, group*D)
				clearHeads(g.k, gko, g.ldk, S, D)
				clearHeads(g.v, gvo, g.ldv, S, D)
			}
			for h := kh * group; h < (kh+1)*group; h++ {
				bh := b*HQ + h
				qo, gqo, oo := b*in.qb+h*D, b*g.qb+h*D, b*T*ldo+h*D
				P := ps[bh*T*S : (bh+1)*T*S]
				for t0 := 0; t0 < T; t0 += blk {
					t1 := min(T, t0+blk)
					rb, kEnd := t1-t0, keyEnd(a, t1)
					Pb := P[t0*S:]
					dob := dos[oo+t0*ldo:]
					// dP = dO V^T; dV += P^T dO.
					sgemm(false, true, rb, kEnd, D, 1, dob, ldo, in.v[vo:], in.ldv, 0, dP, kEnd)
					if g.v != nil {
						sgemm(true, false, kEnd, D, rb, 1, Pb, S, dob, ldo, 1, g.v[gvo:], g.ldv)
					}
					// dS = P * (dP - rowsum(dP*P)) * scale, in place.
					for i := 0; i < rb; i++ {
						pr, dr := Pb[i*S:i*S+kEnd], dP[i*kEnd:i*kEnd+kEnd]
						softmaxGrad(dr, pr, dot(pr, dr), a.Scale)
					}
					if g.q != nil {
						sgemm(false, false, rb, D, kEnd, 1, dP, kEnd, in.k[ko:], in.ldk, 1, g.q[gqo+t0*g.ldq:], g.ldq)
					}
					if g.k != nil {
						sgemm(true, false, kEnd, D, rb, 1, dP, kEnd, in.q[qo+t0*in.ldq:], in.ldq, 1, g.k[gko:], g.ldk)
					}
				}
			}
		}
	})
}

// clearHeads zeroes w values of each of rows rows of s from off, ld
// apart (nothing when s is nil: that gradient is not wanted).
func clearHeads(s []float32, off, ld, rows, w int) {
	if s == nil {
		return
	}
	for t := 0; t < rows; t++ {
		clear(s[off+t*ld : off+t*ld+w])
	}
}

// RoPE rotates pairs (i, i+D/2) of every head by position * theta^(-2i/D).
func (c *CPU) RoPE(r backend.RoPE, y, x backend.Buffer, grad bool) {
	ys, xs := f(y), f(x)
	half := r.D / 2
	maxPos := r.Start + r.T - 1
	for _, p := range r.Pos {
		maxPos = max(maxPos, int(p))
	}
	tab := ropeTable(r.Theta, r.D, maxPos+1, r.InvFreq)
	W := r.H * r.D
	Parallel(r.B*r.T, grain(W), func(lo, hi int) {
		for bt := lo; bt < hi; bt++ {
			pos := r.Start + bt%r.T
			if r.Pos != nil {
				pos = int(r.Pos[bt])
			}
			row := bt * W
			cs, sn := tab.cos[pos*half:pos*half+half], tab.sin[pos*half:pos*half+half]
			for i := 0; i < half; i++ {
				cf, sf := cs[i], sn[i]
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

// ropeTab holds cos and sin of every position's angles for one theta and
// head dim: [positions][D/2].
type ropeTab struct {
	n        int // positions
	cos, sin []float32
}

type ropeKey struct {
	theta   float64
	d       int
	invFreq string // the inverse frequencies' bits, "" for theta's
}

var (
	ropeMu   sync.Mutex
	ropeTabs = map[ropeKey]*ropeTab{}
)

// ropeTable returns the angles' cos and sin for at least n positions,
// computed as transformers does (inverse frequencies and angles in
// float32) once for all calls; a table is replaced, never changed, when it
// grows, so callers may keep reading the one they got.
func ropeTable(theta float64, d, n int, inv []float32) *ropeTab {
	key := ropeKey{theta: theta, d: d}
	if inv != nil {
		if len(inv) != d/2 {
			panic(fmt.Sprintf("cpu: RoPE: %d inverse frequencies for head size %d", len(inv), d))
		}
		b := make([]byte, 0, 4*len(inv))
		for _, f := range inv {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
		}
		key.invFreq = string(b)
	}
	ropeMu.Lock()
	defer ropeMu.Unlock()
	t := ropeTabs[key]
	if t != nil && t.n >= n {
		return t
	}
	half := d / 2
	n = max(n, 2*tabLen(t), 256)
	invFreq := inv
	if invFreq == nil {
		invFreq = make([]float32, half)
		for i := range invFreq {
			invFreq[i] = float32(1 / math.Pow(theta, float64(2*i)/float64(d)))
		}
	}
	nt := &ropeTab{n: n, cos: make([]float32, n*half), sin: make([]float32, n*half)}
	for p := range n {
		for i, f := range invFreq {
			sn, cs := math.Sincos(float64(float32(p) * f))
			nt.cos[p*half+i], nt.sin[p*half+i] = float32(cs), float32(sn)
		}
	}
	ropeTabs[key] = nt
	return nt
}

func tabLen(t *ropeTab) int {
	if t == nil {
		return 0
	}
	return t.n
}
