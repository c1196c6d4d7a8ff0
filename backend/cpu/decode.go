package cpu

import (
	"fmt"
	"sync"

	"github.com/golem-ml/golem/backend"
)

// AttentionRows is attention for one new query per row, as a continuously
// batched decoder runs it over its KV cache: q and o are [B, HQ*D], k and
// v are [B, S, HKV*D] (S = a.S columns per row), and row b attends only to
// the keys of its own columns [start[b], end). Unlike Attention with a key
// mask, it never touches the columns outside a row's span and keeps no
// probabilities, so its cost is the keys the rows actually have. a.T must
// be 1; a.Causal and a.KeyMask are ignored. For each row the arithmetic is
// that of Attention over the same keys without a mask, so a sequence
// decoded in a batch gets the values it gets alone.
func (c *CPU) AttentionRows(a backend.Attention, start []int32, end int, o, q, k, v backend.Buffer) {
	B, S, D, HQ, HKV := a.B, a.S, a.D, a.HQ, a.HKV
	if a.T != 1 || len(start) != B || end > S || HKV <= 0 || HQ%HKV != 0 {
		panic(fmt.Sprintf("cpu: AttentionRows: T=%d, %d starts for %d rows, end %d of %d columns, %d/%d heads", a.T, len(start), B, end, S, HQ, HKV))
	}
	for b, s := range start {
		if s < 0 || int(s) >= end {
			panic(fmt.Sprintf("cpu: AttentionRows: row %d starts at column %d, not before the end %d", b, s, end))
		}
	}
	qs, ks, vs, os := f(q), f(k), f(v), f(o)
	group := HQ / HKV
	ldq, ldk := HQ*D, HKV*D
	Parallel(B*HQ, 4, func(lo, hi int) {
		sp := rowScratch.Get().(*[]float32)
		defer rowScratch.Put(sp)
		if cap(*sp) < S {
			*sp = make([]float32, S)
		}
		for bh := lo; bh < hi; bh++ {
			b, h := bh/HQ, bh%HQ
			j0 := int(start[b])
			n := end - j0
			kb := ks[(b*S+j0)*ldk+h/group*D:]
			vb := vs[(b*S+j0)*ldk+h/group*D:]
			qr := qs[b*ldq+h*D : b*ldq+h*D+D]
			row := (*sp)[:n]
			scores(row, qr, kb, ldk, a.Scale)
			m := maxf(row)
			inv := 1 / expSub(row, row, m, 1)
			for j := range row {
				row[j] *= inv
			}
			or := os[b*ldq+h*D : b*ldq+h*D+D]
			clear(or)
			j := 0
			if haveVec {
				for ; j+4 <= n; j += 4 {
					p := [4]float32{row[j], row[j+1], row[j+2], row[j+3]}
					_ = vb[(j+3)*ldk+D-1]
					vaxpy4(&or[0], &vb[j*ldk], ldk, D, &p)
				}
			}
			for ; j < n; j++ {
				if row[j] != 0 {
					axpy(or, vb[j*ldk:j*ldk+D], row[j])
				}
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
