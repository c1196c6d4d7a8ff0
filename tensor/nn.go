package tensor

import (
	"fmt"
	"math"
	"slices"

	"github.com/golem-ml/golem/backend"
)

// MatMul multiplies the last two dims: a [..., M, K] x b [..., K, N]. b may
// be 2-D and is then shared over a's batch; otherwise the batch dims must
// agree. transA/transB read a as [..., K, M] or b as [..., N, K].
func MatMul(a, b *Tensor, transA, transB bool) *Tensor {
	if len(a.shape) < 2 || len(b.shape) < 2 {
		panic(fmt.Sprintf("tensor: matmul of %v and %v", a.shape, b.shape))
	}
	ar, ac := a.Dim(-2), a.Dim(-1)
	br, bcn := b.Dim(-2), b.Dim(-1)
	M, K := ar, ac
	if transA {
		M, K = ac, ar
	}
	K2, N := br, bcn
	if transB {
		K2, N = bcn, br
	}
	batch := a.Len() / (ar * ac)
	bBatch := b.Len() / (br * bcn)
	if K != K2 || (bBatch != 1 && bBatch != batch) {
		panic(fmt.Sprintf("tensor: matmul of %v and %v (trans %v %v)", a.shape, b.shape, transA, transB))
	}
	shape := append(slices.Clone(a.shape[:len(a.shape)-2]), M, N)
	out := result(shape, a, b)
	sb := br * bcn
	if bBatch == 1 {
		sb = 0
	}
	g := backend.Gemm{TransA: transA, TransB: transB, M: M, N: N, K: K, Alpha: 1, Batch: batch,
		LDA: ac, LDB: bcn, LDC: N, StrideA: ar * ac, StrideB: sb, StrideC: M * N}
	if bBatch == 1 && !transA {
		// One big GEMM over all rows of a.
		g = backend.Gemm{TransB: transB, M: M * batch, N: N, K: K, Alpha: 1, Batch: 1, LDA: ac, LDB: bcn, LDC: N}
	}
	out.matmul(g, a.buf, b.buf, out.buf)
	if out.requiresGrad {
		out.back = func() {
			if a.requiresGrad {
				// dA = dC op(B)^T  (or for transA: dA = op(B) dC^T)
				ga := g
				da, beta := a.gemmGrad()
				ga.Beta = beta
				if !transA {
					ga.TransA, ga.TransB = false, !transB
					ga.M, ga.N, ga.K = g.M, K, N
					ga.LDA, ga.LDB, ga.LDC = N, bcn, ac
					ga.StrideA, ga.StrideB, ga.StrideC = g.StrideC, g.StrideB, g.StrideA
					out.matmul(ga, out.grad, b.buf, da)
				} else {
					// A is [K, M]: dA = op(B) dC^T.
					ga.TransA, ga.TransB = transB, true
					ga.M, ga.N, ga.K = K, M, N
					ga.LDA, ga.LDB, ga.LDC = bcn, N, ac
					ga.StrideA, ga.StrideB, ga.StrideC = g.StrideB, g.StrideC, g.StrideA
					out.matmul(ga, b.buf, out.grad, da)
				}
			}
			if b.requiresGrad {
				db, beta := b.gemmGrad()
				gb := backend.Gemm{Alpha: 1, Beta: beta, Batch: g.Batch, StrideA: g.StrideA, StrideB: g.StrideC, StrideC: g.StrideB}
				if g.Batch == 1 && batch > 1 {
					gb.Batch = 1
				}
				rowsA := g.M // rows of C over the (possibly folded) batch
				if !transB {
					// dB [K,N] = op(A)^T dC
					gb.TransA, gb.TransB = !transA, false
					gb.M, gb.N, gb.K = K, N, rowsA
					gb.LDA, gb.LDB, gb.LDC = ac, N, bcn
					out.matmul(gb, a.buf, out.grad, db)
				} else {
					// B is [N,K]: dB = dC^T op(A)
					gb.TransA, gb.TransB = true, transA
					gb.M, gb.N, gb.K = N, K, rowsA
					gb.LDA, gb.LDB, gb.LDC = N, ac, bcn
					gb.StrideA, gb.StrideB = g.StrideC, g.StrideA
					out.matmul(gb, out.grad, a.buf, db)
				}
			}
		}
	}
	return out
}

// Linear returns x W^T + bias for x [..., in], w [out, in] (PyTorch's
// layout) and bias [out] or nil. The bias is written into the output before
// the GEMM accumulates onto it, and its gradient is a GEMM with a ones row.
func Linear(x, w, bias *Tensor) *Tensor { return linear(x, w, bias, false) }

// LinearInOut is Linear for a weight stored [in, out] (GPT-2's Conv1D):
// x W + bias.
func LinearInOut(x, w, bias *Tensor) *Tensor { return linear(x, w, bias, true) }

func linear(x, w, bias *Tensor, inOut bool) *Tensor {
	in, outF := w.Dim(1), w.Dim(0)
	if inOut {
		in, outF = outF, in
	}
	if x.Dim(-1) != in || len(w.shape) != 2 || (bias != nil && bias.Len() != outF) {
		panic(fmt.Sprintf("tensor: linear of %v with weight %v", x.shape, w.shape))
	}
	rows := x.Len() / in
	shape := append(slices.Clone(x.shape[:len(x.shape)-1]), outF)
	var out *Tensor
	beta := float32(0)
	if bias != nil {
		out = result(shape, x, w, bias)
		x.be.Copy2D(out.buf, 0, outF, bias.buf, 0, 0, rows, outF, false)
		beta = 1
	} else {
		out = result(shape, x, w)
	}
	ldw := in
	if inOut {
		ldw = outF
	}
	out.matmul(backend.Gemm{TransB: !inOut, M: rows, N: outF, K: in, Alpha: 1, Beta: beta, Batch: 1, LDA: in, LDB: ldw, LDC: outF}, x.buf, w.buf, out.buf)
	if out.requiresGrad {
		out.back = func() {
			if x.requiresGrad {
				// dx = dy W ([out,in]) or dy W^T ([in,out]).
				dx, beta := x.gemmGrad()
				out.matmul(backend.Gemm{TransB: inOut, M: rows, N: in, K: outF, Alpha: 1, Beta: beta, Batch: 1, LDA: outF, LDB: ldw, LDC: in}, out.grad, w.buf, dx)
			}
			if w.requiresGrad {
				dw, beta := w.gemmGrad()
				if inOut {
					// dW [in,out] = x^T dy.
					out.matmul(backend.Gemm{TransA: true, M: in, N: outF, K: rows, Alpha: 1, Beta: beta, Batch: 1, LDA: in, LDB: outF, LDC: outF}, x.buf, out.grad, dw)
				} else {
					out.matmul(backend.Gemm{TransA: true, M: outF, N: in, K: rows, Alpha: 1, Beta: beta, Batch: 1, LDA: outF, LDB: in, LDC: in}, out.grad, x.buf, dw)
				}
			}
			if bias != nil && bias.requiresGrad {
				ones := x.be.Alloc(rows, false)
				x.be.Fill(ones, 1)
				x.be.MatMul(backend.Gemm{M: 1, N: outF, K: rows, Alpha: 1, Beta: 1, Batch: 1, LDA: rows, LDB: outF, LDC: outF}, ones, out.grad, bias.GradBuffer())
				x.be.Free(ones)
			}
		}
	}
	return out
}

// bf16 reports whether t's products run in bfloat16: its scope asks for
// it (Scope.SetBF16) and its backend can.
func (t *Tensor) bf16() bool {
	if !t.scope.BF16() {
		return false
	}
	_, ok := t.be.(backend.BF16Products)
	return ok
}

// matmul runs one of the GEMMs that make or differentiate t, in bfloat16
// where t.bf16().
func (t *Tensor) matmul(g backend.Gemm, a, b, c backend.Buffer) {
	if t.bf16() {
		t.be.(backend.BF16Products).MatMulBF16(g, a, b, c)
		return
	}
	t.be.MatMul(g, a, b, c)
}

func rowsCols(t *Tensor) (int, int) {
	c := t.Dim(-1)
	return t.Len() / max(c, 1), c
}

func bufOrNil(t *Tensor) backend.Buffer {
	if t == nil {
		return nil
	}
	return t.buf
}

func gradOrNil(t *Tensor) backend.Buffer {
	if t == nil || !t.requiresGrad {
		return nil
	}
	return t.GradBuffer()
}

func inputs(ts ...*Tensor) []*Tensor {
	out := ts[:0:0]
	for _, t := range ts {
		if t != nil {
			out = append(out, t)
		}
	}
	return out
}

// LayerNorm normalises over the last dim with optional weight and bias.
func LayerNorm(x, w, b *Tensor, eps float32) *Tensor {
	rows, cols := rowsCols(x)
	out := result(slices.Clone(x.shape), inputs(x, w, b)...)
	mean, rstd := out.saveBuf(rows, false), out.saveBuf(rows, false)
	x.be.LayerNorm(out.buf, mean, rstd, x.buf, bufOrNil(w), bufOrNil(b), rows, cols, eps)
	if out.requiresGrad {
		out.back = func() {
			x.be.LayerNormGrad(gradOrNil(x), gradOrNil(w), gradOrNil(b), x.buf, bufOrNil(w), mean, rstd, out.grad, rows, cols)
		}
	}
	return out
}

// RMSNorm normalises over the last dim by the root mean square.
func RMSNorm(x, w *Tensor, eps float32) *Tensor {
	rows, cols := rowsCols(x)
	out := result(slices.Clone(x.shape), inputs(x, w)...)
	rstd := out.saveBuf(rows, false)
	x.be.RMSNorm(out.buf, rstd, x.buf, bufOrNil(w), rows, cols, eps)
	if out.requiresGrad {
		out.back = func() {
			x.be.RMSNormGrad(gradOrNil(x), gradOrNil(w), x.buf, bufOrNil(w), rstd, out.grad, rows, cols)
		}
	}
	return out
}

// L2Normalize scales each row of the last dim to unit L2 norm.
func L2Normalize(x *Tensor, eps float32) *Tensor {
	rows, cols := rowsCols(x)
	out := result(slices.Clone(x.shape), x)
	norm := out.saveBuf(rows, false)
	x.be.L2Norm(out.buf, norm, x.buf, rows, cols, eps)
	if out.requiresGrad {
		out.back = func() { x.be.L2NormGrad(x.GradBuffer(), out.buf, norm, out.grad, rows, cols) }
	}
	return out
}

func softmax(x *Tensor, log bool) *Tensor {
	rows, cols := rowsCols(x)
	out := result(slices.Clone(x.shape), x)
	x.be.Softmax(out.buf, x.buf, rows, cols, log)
	if out.requiresGrad {
		out.back = func() { x.be.SoftmaxGrad(x.GradBuffer(), out.buf, out.grad, rows, cols, log) }
	}
	return out
}

// Softmax over the last dim.
func Softmax(x *Tensor) *Tensor { return softmax(x, false) }

// LogSoftmax over the last dim.
func LogSoftmax(x *Tensor) *Tensor { return softmax(x, true) }

// AttentionOptions configures Attention.
type AttentionOptions struct {
	Heads, KVHeads int     // query heads, key/value heads (KVHeads 0 = Heads)
	Causal         bool    // mask future keys
	Scale          float32 // 0 = 1/sqrt(head dim)
	KeyMask        []bool  // [B*S], false hides a key (padding); nil = none
	Window         int     // > 0: a sliding window, each query sees the last Window positions (Mistral)
	// KVLen, if positive, is how many of k and v's positions are keys:
	// the first KVLen of each row's k.Dim(1) (a cache with room to grow,
	// whose rows are k.Dim(1) positions apart); KeyMask is then
	// [B*KVLen]. 0 means all.
	KVLen int
}

// Attention is fused multi-head attention: q [B, T, H*D], k and v
// [B, S, HKV*D], output [B, T, H*D]. With S > T (a KV cache), the queries
// are the last T positions.
func Attention(q, k, v *Tensor, o AttentionOptions) *Tensor {
	if len(q.shape) != 3 || len(k.shape) != 3 || len(v.shape) != 3 {
		panic(fmt.Sprintf("tensor: attention wants [B,T,C]: %v %v %v", q.shape, k.shape, v.shape))
	}
	B, T, C := q.shape[0], q.shape[1], q.shape[2]
	S, rows := k.shape[1], k.shape[1]
	if o.KVLen > 0 {
		if o.KVLen > rows {
			panic(fmt.Sprintf("tensor: attention over %d keys of k %v", o.KVLen, k.shape))
		}
		S = o.KVLen
	}
	hkv := o.KVHeads
	if hkv == 0 {
		hkv = o.Heads
	}
	D := C / o.Heads
	if C%o.Heads != 0 || o.Heads%hkv != 0 || k.shape[0] != B || k.shape[2] != hkv*D || !slices.Equal(k.shape, v.shape) || S < T {
		panic(fmt.Sprintf("tensor: attention q %v k %v v %v heads %d/%d", q.shape, k.shape, v.shape, o.Heads, hkv))
	}
	if o.KeyMask != nil && len(o.KeyMask) != B*S {
		panic(fmt.Sprintf("tensor: attention key mask of %d for B=%d S=%d", len(o.KeyMask), B, S))
	}
	scale := o.Scale
	if scale == 0 {
		scale = float32(1 / math.Sqrt(float64(D)))
	}
	a := backend.Attention{B: B, T: T, S: S, HQ: o.Heads, HKV: hkv, D: D, Scale: scale, Causal: o.Causal, KeyMask: o.KeyMask, Window: o.Window, KVRows: rows}
	out := result([]int{B, T, C}, q, k, v)
	a.BF16 = out.bf16()
	p := out.saveBuf(B*o.Heads*T*S, false)
	q.be.Attention(a, out.buf, p, q.buf, k.buf, v.buf)
	if out.requiresGrad {
		out.back = func() {
			q.be.AttentionGrad(a, gradOrNil(q), gradOrNil(k), gradOrNil(v), q.buf, k.buf, v.buf, p, out.grad)
		}
	}
	return out
}

// AttentionQKV is Attention(q, k, v) for q, k and v side by side in the
// last dim of qkv [B, T, (Heads+2*KVHeads)*D], as a fused QKV projection
// (GPT-2's c_attn) makes them; output [B, T, Heads*D]. Where the backend
// can, they are read in place instead of sliced out.
func AttentionQKV(qkv *Tensor, o AttentionOptions) *Tensor {
	if len(qkv.shape) != 3 || o.Heads <= 0 {
		panic(fmt.Sprintf("tensor: attention of packed %v with %d heads", qkv.shape, o.Heads))
	}
	hkv := o.KVHeads
	if hkv == 0 {
		hkv = o.Heads
	}
	B, T, W := qkv.shape[0], qkv.shape[1], qkv.shape[2]
	D := W / (o.Heads + 2*hkv)
	pa, ok := qkv.be.(backend.PackedAttention)
	if !ok || W != (o.Heads+2*hkv)*D || o.Heads%hkv != 0 || D == 0 {
		q := Slice(qkv, 2, 0, o.Heads*D)
		k := Slice(qkv, 2, o.Heads*D, (o.Heads+hkv)*D)
		v := Slice(qkv, 2, (o.Heads+hkv)*D, W)
		return Attention(q, k, v, o)
	}
	if o.KeyMask != nil && len(o.KeyMask) != B*T {
		panic(fmt.Sprintf("tensor: attention key mask of %d for B=%d S=%d", len(o.KeyMask), B, T))
	}
	scale := o.Scale
	if scale == 0 {
		scale = float32(1 / math.Sqrt(float64(D)))
	}
	a := backend.Attention{B: B, T: T, S: T, HQ: o.Heads, HKV: hkv, D: D, Scale: scale, Causal: o.Causal, KeyMask: o.KeyMask, Window: o.Window}
	out := result([]int{B, T, o.Heads * D}, qkv)
	a.BF16 = out.bf16()
	p := out.saveBuf(B*o.Heads*T*T, false)
	pa.AttentionPacked(a, out.buf, p, qkv.buf)
	if out.requiresGrad {
		out.back = func() {
			dqkv, acc := qkv.outGrad()
			pa.AttentionPackedGrad(a, dqkv, qkv.buf, p, out.grad, acc)
		}
	}
	return out
}

// RoPEOptions configures RoPE.
type RoPEOptions struct {
	Heads int
	Theta float64
	Start int     // position of the first token (for a KV cache)
	Pos   []int32 // [B*T] explicit positions, overrides Start
	// InvFreq, if not nil, are the head's D/2 inverse frequencies (a
	// scaled RoPE such as Llama 3's), in place of Theta's.
	InvFreq []float32
}

// RoPE applies rotary position embeddings to x [B, T, H*D].
func RoPE(x *Tensor, o RoPEOptions) *Tensor {
	B, T, C := x.shape[0], x.shape[1], x.shape[2]
	r := backend.RoPE{B: B, T: T, H: o.Heads, D: C / o.Heads, Theta: o.Theta, Start: o.Start, Pos: o.Pos, InvFreq: o.InvFreq}
	out := result(slices.Clone(x.shape), x)
	x.be.RoPE(r, out.buf, x.buf, false)
	if out.requiresGrad {
		out.back = func() { x.be.RoPE(r, x.GradBuffer(), out.grad, true) }
	}
	return out
}

// Embedding gathers rows of table [V, C] for ids, giving [len(ids), C]
// (reshape as needed). An id out of range panics with its position.
func Embedding(table *Tensor, ids []int32) *Tensor {
	V, C := table.shape[0], table.shape[1]
	for i, id := range ids {
		if id < 0 || int(id) >= V {
			panic(fmt.Sprintf("tensor: embedding id %d at %d out of range [0,%d)", id, i, V))
		}
	}
	out := result([]int{len(ids), C}, table)
	table.be.Embedding(out.buf, table.buf, ids, C)
	if out.requiresGrad {
		out.back = func() { table.be.EmbeddingGrad(table.GradBuffer(), out.grad, ids, C) }
	}
	return out
}

// IgnoreIndex marks a target that does not count in CrossEntropy.
const IgnoreIndex = -100

// CrossEntropy is the mean next-token loss over logits [N, V] (any leading
// shape, flattened) for targets [N], fused with log-softmax. Targets < 0
// are ignored. weights, if not nil, weight each row (for masks and
// per-token weights); the mean divides by the sum of the counted weights.
func CrossEntropy(logits *Tensor, targets []int32, weights []float32) *Tensor {
	rows, cols := rowsCols(logits)
	if len(targets) != rows || (weights != nil && len(weights) != rows) {
		panic(fmt.Sprintf("tensor: cross-entropy of %v with %d targets", logits.shape, len(targets)))
	}
	var denom float64
	for i, t := range targets {
		if int(t) >= cols {
			panic(fmt.Sprintf("tensor: target %d at %d out of range [0,%d)", t, i, cols))
		}
		if t >= 0 {
			if weights != nil {
				denom += float64(weights[i])
			} else {
				denom++
			}
		}
	}
	inv := float32(0)
	if denom > 0 {
		inv = float32(1 / denom)
	}
	out := result([]int{}, logits)
	rowLoss, lse := out.saveBuf(rows, false), out.saveBuf(rows, false)
	logits.be.CrossEntropy(rowLoss, lse, logits.buf, targets, weights, rows, cols)
	logits.be.SumRows(out.buf, rowLoss, 1, rows)
	logits.be.Map(backend.Scale, inv, out.buf, out.buf)
	if out.requiresGrad {
		out.back = func() {
			d := logits.be.Alloc(rows, true)
			logits.be.SumRowsGrad(d, out.grad, 1, rows)
			logits.be.Map(backend.Scale, inv, d, d)
			logits.be.CrossEntropyGrad(logits.GradBuffer(), logits.buf, lse, d, targets, weights, rows, cols)
			logits.be.Free(d)
		}
	}
	return out
}

// TokenLogProbs returns log softmax(logits)[r, ids[r]] for each row: [N].
// Rows with a negative id give 0.
func TokenLogProbs(logits *Tensor, ids []int32) *Tensor {
	rows, cols := rowsCols(logits)
	if len(ids) != rows {
		panic(fmt.Sprintf("tensor: token log-probs of %v with %d ids", logits.shape, len(ids)))
	}
	out := result([]int{rows}, logits)
	lse := out.saveBuf(rows, false)
	logits.be.CrossEntropy(out.buf, lse, logits.buf, ids, nil, rows, cols)
	logits.be.Map(backend.Neg, 0, out.buf, out.buf)
	if out.requiresGrad {
		out.back = func() {
			d := logits.be.Alloc(rows, false)
			logits.be.Map(backend.Neg, 0, d, out.grad)
			logits.be.CrossEntropyGrad(logits.GradBuffer(), logits.buf, lse, d, ids, nil, rows, cols)
			logits.be.Free(d)
		}
	}
	return out
}

// LinearCrossEntropy is CrossEntropy(Linear(x, w, nil), targets, weights)
// fused: x [..., C], w [V, C]. It computes the logits, then the loss and
// its gradient with respect to the logits in one pass, keeping only that
// gradient; the backward pass is two GEMMs. The logits themselves are
// never returned, which is what a language model's training loss needs.
func LinearCrossEntropy(x, w *Tensor, targets []int32, weights []float32) *Tensor {
	C := x.Dim(-1)
	if len(w.shape) != 2 || w.shape[1] != C {
		panic(fmt.Sprintf("tensor: linear cross-entropy of %v with weight %v", x.shape, w.shape))
	}
	rows, V := x.Len()/max(C, 1), w.shape[0]
	inv := ceCheck(rows, V, targets, weights)
	out := result([]int{}, x, w)
	be := x.be
	logits := be.Alloc(rows*V, false)
	out.matmul(backend.Gemm{TransB: true, M: rows, N: V, K: C, Alpha: 1, Batch: 1, LDA: C, LDB: C, LDC: V}, x.buf, w.buf, logits)
	rowLoss := be.Alloc(rows, false)
	ip, fused := be.(backend.InPlaceCrossEntropy)
	switch {
	case !out.requiresGrad:
		lse := be.Alloc(rows, false)
		be.CrossEntropy(rowLoss, lse, logits, targets, weights, rows, V)
		be.Free(lse)
		be.Free(logits)
	case fused:
		ip.CrossEntropyInPlace(rowLoss, logits, targets, weights, rows, V, inv)
		out.saved = append(out.saved, logits)
	default:
		lse := be.Alloc(rows, false)
		be.CrossEntropy(rowLoss, lse, logits, targets, weights, rows, V)
		d, g := be.Alloc(rows, false), be.Alloc(rows*V, true)
		be.Fill(d, inv)
		be.CrossEntropyGrad(g, logits, lse, d, targets, weights, rows, V)
		be.Free(d)
		be.Free(lse)
		be.Free(logits)
		logits = g
		out.saved = append(out.saved, logits)
	}
	be.SumRows(out.buf, rowLoss, 1, rows)
	be.Free(rowLoss)
	be.Map(backend.Scale, inv, out.buf, out.buf)
	if out.requiresGrad {
		out.back = func() {
			var dl [1]float32
			be.Download(dl[:], out.grad, 0)
			if x.requiresGrad {
				// dx = dloss * G W
				dx, beta := x.gemmGrad()
				out.matmul(backend.Gemm{M: rows, N: C, K: V, Alpha: dl[0], Beta: beta, Batch: 1, LDA: V, LDB: C, LDC: C}, logits, w.buf, dx)
			}
			if w.requiresGrad {
				// dW = dloss * G^T x
				dw, beta := w.gemmGrad()
				out.matmul(backend.Gemm{TransA: true, M: V, N: C, K: rows, Alpha: dl[0], Beta: beta, Batch: 1, LDA: V, LDB: C, LDC: C}, logits, x.buf, dw)
			}
		}
	}
	return out
}

// ceCheck validates targets and weights for rows x cols logits and returns
// 1 / (the sum of the weights of the counted rows), or 0 if none count.
func ceCheck(rows, cols int, targets []int32, weights []float32) float32 {
	if len(targets) != rows || (weights != nil && len(weights) != rows) {
		panic(fmt.Sprintf("tensor: cross-entropy of %d rows with %d targets", rows, len(targets)))
	}
	var denom float64
	for i, t := range targets {
		if int(t) >= cols {
			panic(fmt.Sprintf("tensor: target %d at %d out of range [0,%d)", t, i, cols))
		}
		if t >= 0 {
			if weights != nil {
				denom += float64(weights[i])
			} else {
				denom++
			}
		}
	}
	if denom > 0 {
		return float32(1 / denom)
	}
	return 0
}
