package cpu

import (
	"fmt"
	"sync"

	"github.com/golem-ml/golem/backend"
)

// AttentionRows is attention for one new query per row, as a continuously
// batched decoder runs it over its KV cache: q and o are [B, HQ*D]; k and v
// hold slots of a.S positions each, head-major: [slots, HKV, S, D]; row b
// attends to the first n[b] positions of slot slot[b]. Unlike Attention
// with a key mask it never touches the positions a row does not have and
// keeps no probabilities, so its cost is the keys the rows actually hold,
// each head's read as one contiguous run. k and v are both float32
// buffers or both float16 ones (AllocHalf). a.T must be 1; a.B is the number
// of rows; a.Causal and a.KeyMask are ignored; a positive a.Window (a
// sliding window) keeps the last a.Window of a row's keys. For each row the arithmetic
// is that of Attention over the same keys without a mask, so a sequence
// decoded in a batch gets the values it gets alone.
func (c *CPU) AttentionRows(a backend.Attention, slot, n []int32, o, q, k, v backend.Buffer) {
	B, S, D, HQ, HKV := a.B, a.S, a.D, a.HQ, a.HKV
	if a.T != 1 || len(slot) != B || len(n) != B || HKV <= 0 || HQ%HKV != 0 || D <= 0 || S <= 0 {
		panic(fmt.Sprintf("cpu: AttentionRows: T=%d, %d slots and %d lengths for %d rows, %d/%d heads of %d, %d positions", a.T, len(slot), len(n), B, HQ, HKV, D, S))
	}
	qs, os := f(q), f(o)
	ldq, per := HQ*D, HKV*S*D
	slots := k.Len() / per
	for b := range B {
		if slot[b] < 0 || int(slot[b]) >= slots || n[b] < 1 || int(n[b]) > S {
			panic(fmt.Sprintf("cpu: AttentionRows: row %d: slot %d of %d with %d keys of %d positions", b, slot[b], slots, n[b], S))
		}
	}
	if v.Len() < slots*per || len(qs) < B*ldq || len(os) < B*ldq {
		panic(fmt.Sprintf("cpu: AttentionRows: buffers too small for %d rows of %d slots x %d positions", B, slots, S))
	}
	if kh, ok := k.(*HalfBuf); ok {
		attentionRowsHalf(a, slot, n, os, qs, kh.H, v.(*HalfBuf).H)
		return
	}
	ks, vs := f(k), f(v)
	attendPairs(a, slot, n, os, qs, func() (pairScores, pairSum) {
		return func(row, qh []float32, kv int) {
				scores(row, qh, ks[kv:kv+len(row)*D], D, a.Scale)
			}, func(oh, row []float32, kv int) {
				// The values in the same order as Attention (a product
				// with one row of probabilities): each key's term added
				// with one fused multiply-add.
				nk := len(row)
				vh := vs[kv : kv+nk*D]
				if haveVec {
					vwsum(&oh[0], &row[0], &vh[0], D, nk, D, false)
					return
				}
				clear(oh)
				for j := range nk {
					axpy(oh, vh[j*D:j*D+D], row[j])
				}
			}
	})
}

// pairScores sets row to the scaled scores of a (row, head) pair's query
// qh against the len(row) keys that start at element kv of the cache;
// pairSum sets oh to the sum of the values from kv weighted by row.
type (
	pairScores func(row, qh []float32, kv int)
	pairSum    func(oh, row []float32, kv int)
)

// attendPairs runs the attention of every (row, head) pair of a decode
// step with the kernels kernels returns (once per thread, so that they
// may keep scratch memory): scores, softmax, weighted sum of values.
func attendPairs(a backend.Attention, slot, n []int32, os, qs []float32, kernels func() (pairScores, pairSum)) {
	B, S, D, HQ, HKV := a.B, a.S, a.D, a.HQ, a.HKV
	ldq, group := HQ*D, HQ/HKV
	byKeys(B, HQ, n, func(lo, hi int) {
		sp := rowScratch.Get().(*[]float32)
		defer rowScratch.Put(sp)
		score, sum := kernels()
		for bh := lo; bh < hi; bh++ {
			b, h := bh/HQ, bh%HQ
			nk, first := int(n[b]), 0
			if a.Window > 0 && nk > a.Window { // a sliding window: the last a.Window keys
				first, nk = nk-a.Window, a.Window
			}
			if cap(*sp) < nk {
				*sp = make([]float32, nk)
			}
			row := (*sp)[:nk]
			kv := ((int(slot[b])*HKV+h/group)*S + first) * D
			qh, oh := qs[b*ldq+h*D:b*ldq+h*D+D], os[b*ldq+h*D:b*ldq+h*D+D]
			score(row, qh, kv)
			m := maxf(row)
			scal(row, 1/expSub(row, row, m, 1))
			sum(oh, row, kv)
		}
	})
}

// byKeys runs fn over the B*HQ (row, head) pairs of a decode step, split
// among the threads into contiguous runs of about equal numbers of keys:
// the rows of a continuously batched step hold very different numbers of
// positions, and an even split by rows would leave one thread waiting.
func byKeys(B, HQ int, n []int32, fn func(lo, hi int)) {
	const fixed = 4 // a pair's cost besides its keys, in keys
	t := Threads()
	total := 0
	for _, v := range n {
		total += (int(v) + fixed) * HQ
	}
	if t <= 1 || B*HQ < 2 || total < 2048 {
		fn(0, B*HQ)
		return
	}
	var cuts [17]int
	if t > len(cuts)-1 {
		t = len(cuts) - 1
	}
	// Cut c goes at the pair boundary nearest c/t of the keys.
	acc, c := 0, 1
	for i := 0; i < B*HQ && c < t; i++ {
		prev := acc
		acc += int(n[i/HQ]) + fixed
		for c < t && acc*t >= c*total {
			if target := c * total / t; acc-target > target-prev && cuts[c-1] < i {
				cuts[c] = i
			} else {
				cuts[c] = i + 1
			}
			c++
		}
	}
	for ; c <= t; c++ {
		cuts[c] = B * HQ
	}
	Parallel(t, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if cuts[i] < cuts[i+1] {
				fn(cuts[i], cuts[i+1])
			}
		}
	})
}

var rowScratch = sync.Pool{New: func() any { return new([]float32) }}

// scores sets out[j] = scale * dot(q, k[j*ldk:j*ldk+len(q)]), as dot
// computes it.
func scores(out, q, k []float32, ldk int, scale float32) {
	n, d := len(out), len(q)
	if n == 0 || d == 0 {
		clear(out)
		return
	}
	_ = k[(n-1)*ldk+d-1]
	if haveVec {
		vdots(&out[0], &q[0], &k[0], ldk, n, d, scale)
		return
	}
	for j := range out {
		out[j] = scale * dot(q, k[j*ldk:j*ldk+d])
	}
}
