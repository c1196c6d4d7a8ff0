package cpu

import (
	"math"
	"sort"

	"github.com/golem-ml/golem/backend"
)

// Softmax (or log-softmax) over the last dim.
func (c *CPU) Softmax(dst, x backend.Buffer, rows, cols int, log bool) {
	d, xs := f(dst), f(x)
	Parallel(rows, grain(cols), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			softmaxRow(d[r*cols:r*cols+cols], xs[r*cols:r*cols+cols], log)
		}
	})
}

func rowMax(x []float32) float32 { return maxf(x) }

// softmaxRow writes softmax(x) (or log-softmax) to y and returns the
// log-sum-exp of x.
func softmaxRow(y, x []float32, log bool) float32 {
	m := rowMax(x)
	if log {
		lse := m + float32(math.Log(float64(expSum(x, m))))
		for j, v := range x {
			y[j] = v - lse
		}
		return lse
	}
	s := expSub(y, x, m, 1)
	scal(y, 1/s)
	return m + float32(math.Log(float64(s)))
}

// SoftmaxGrad accumulates the gradient of softmax or log-softmax.
func (c *CPU) SoftmaxGrad(dx, y, dy backend.Buffer, rows, cols int, log bool) {
	d, ys, g := f(dx), f(y), f(dy)
	Parallel(rows, grain(cols), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			dr, yr, gr := d[r*cols:r*cols+cols], ys[r*cols:r*cols+cols], g[r*cols:r*cols+cols]
			if log {
				var s float32
				for _, v := range gr {
					s += v
				}
				for j, v := range yr {
					dr[j] += gr[j] - expf(v)*s
				}
			} else {
				s := dot(gr, yr)
				for j := range dr {
					dr[j] += yr[j] * (gr[j] - s)
				}
			}
		}
	})
}

// LayerNorm normalises each row.
func (c *CPU) LayerNorm(y, mean, rstd, x, w, b backend.Buffer, rows, cols int, eps float32) {
	ys, ms, rs, xs, ws, bs := f(y), f(mean), f(rstd), f(x), f(w), f(b)
	Parallel(rows, grain(cols), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			ms[r], rs[r] = layerNormRow(ys[r*cols:r*cols+cols], xs[r*cols:r*cols+cols], ws, bs, eps)
		}
	})
}

// layerNormRow normalises one row and returns its mean and 1/std.
func layerNormRow(yr, xr, ws, bs []float32, eps float32) (float32, float32) {
	cols := len(xr)
	if cols == 0 {
		return 0, 0
	}
	if haveVec || haveVec256 {
		var wp, bp *float32
		if ws != nil {
			wp = &ws[:cols][0]
		}
		if bs != nil {
			bp = &bs[:cols][0]
		}
		if haveVec {
			return vlnfwd(&yr[:cols][0], &xr[0], wp, bp, cols, eps)
		}
		return vlnfwd256(&yr[:cols][0], &xr[0], wp, bp, cols, eps)
	}
	var s float32
	for _, v := range xr {
		s += v
	}
	mu := s / float32(cols)
	var v2 float32
	for _, v := range xr {
		d := v - mu
		v2 += d * d
	}
	rsd := float32(1 / math.Sqrt(float64(v2/float32(cols)+eps)))
	for j, v := range xr {
		n := (v - mu) * rsd
		if ws != nil {
			n *= ws[j]
		}
		if bs != nil {
			n += bs[j]
		}
		yr[j] = n
	}
	return mu, rsd
}

// LayerNormGrad accumulates dx, dw and db. The parameter gradients are
// summed per thread chunk into scratch rows, then added in chunk order, so
// results are deterministic for a thread count.
func (c *CPU) LayerNormGrad(dx, dw, db, x, w, mean, rstd, dy backend.Buffer, rows, cols int) {
	dxs, dws, dbs, xs, ws, ms, rs, g := f(dx), f(dw), f(db), f(x), f(w), f(mean), f(rstd), f(dy)
	c.rowChunks(rows, cols, 2, func(lo, hi int, scratch []float32) {
		pw, pb := scratch[:cols], scratch[cols:]
		for r := lo; r < hi; r++ {
			var dr []float32
			if dxs != nil {
				dr = dxs[r*cols : r*cols+cols]
			}
			layerNormGradRow(dr, xs[r*cols:r*cols+cols], g[r*cols:r*cols+cols], ws, pw, pb, ms[r], rs[r])
		}
	}, func(scratch []float32) {
		if dws != nil {
			axpy(dws, scratch[:cols], 1)
		}
		if dbs != nil {
			axpy(dbs, scratch[cols:], 1)
		}
	})
}

// layerNormGradRow adds the row's parameter gradients into pw and pb and,
// if dr is not nil, its input gradient into dr.
func layerNormGradRow(dr, xr, gr, ws, pw, pb []float32, mu, rsd float32) {
	cols := len(xr)
	if cols == 0 {
		return
	}
	if haveVec || haveVec256 {
		var dp, wp *float32
		if dr != nil {
			dp = &dr[:cols][0]
		}
		if ws != nil {
			wp = &ws[:cols][0]
		}
		if haveVec {
			vlngrad(dp, &xr[0], &gr[:cols][0], wp, &pw[:cols][0], &pb[:cols][0], cols, mu, rsd)
		} else {
			vlngrad256(dp, &xr[0], &gr[:cols][0], wp, &pw[:cols][0], &pb[:cols][0], cols, mu, rsd)
		}
		return
	}
	var sg, sgn float32
	for j, gv := range gr {
		n := (xr[j] - mu) * rsd
		gw := gv
		if ws != nil {
			gw *= ws[j]
		}
		sg += gw
		sgn += gw * n
		pw[j] += gv * n
		pb[j] += gv
	}
	if dr == nil {
		return
	}
	inv := 1 / float32(cols)
	for j, gv := range gr {
		n := (xr[j] - mu) * rsd
		gw := gv
		if ws != nil {
			gw *= ws[j]
		}
		dr[j] += rsd * (gw - inv*sg - n*inv*sgn)
	}
}

// chunked runs body over [0,n) in the contiguous chunks Parallel(n, 1,
// body) would make, each with its own scratch of size values (zeroed when
// zero), taken from the pool before the chunks start and given back after
// they all end. A chunk that took its scratch as it started would hold it
// at the same time as its neighbours or not, as the workers happen to
// interleave, so a loop whose shapes repeat could still miss the pool at
// its thousandth step (train/ssl's memory test did, under SimCLR's image
// prefetch); this way every call holds one scratch a chunk.
func (c *CPU) chunked(n, size int, zero bool, body func(lo, hi int, scratch []float32)) {
	if n <= 0 {
		return
	}
	t := min(Threads(), n, 16)
	chunk := (n + t - 1) / t
	t = (n + chunk - 1) / chunk
	var scratch [16]backend.Buffer
	for i := range t {
		scratch[i] = c.Alloc(size, zero)
	}
	Parallel(t, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			body(i*chunk, min(n, (i+1)*chunk), f(scratch[i]))
		}
	})
	for i := range t {
		c.Free(scratch[i])
	}
}

// rowChunks runs body over row chunks in parallel, each with its own zeroed
// scratch of k*cols values, then calls reduce on each scratch in chunk order.
func (c *CPU) rowChunks(rows, cols, k int, body func(lo, hi int, scratch []float32), reduce func(scratch []float32)) {
	t := Threads()
	if rows < 2*t {
		t = 1
	}
	chunk := (rows + t - 1) / t
	var scratch [16]backend.Buffer
	t = min(t, 16)
	for i := 0; i < t; i++ {
		scratch[i] = c.Alloc(k*cols, true)
	}
	Parallel(t, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			body(i*chunk, min(rows, (i+1)*chunk), f(scratch[i]))
		}
	})
	for i := 0; i < t; i++ {
		reduce(f(scratch[i]))
		c.Free(scratch[i])
	}
}

// RMSNorm normalises each row by its root mean square.
func (c *CPU) RMSNorm(y, rstd, x, w backend.Buffer, rows, cols int, eps float32) {
	ys, rs, xs, ws := f(y), f(rstd), f(x), f(w)
	Parallel(rows, grain(cols), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, yr := xs[r*cols:r*cols+cols], ys[r*cols:r*cols+cols]
			ss := dot(xr, xr)
			rsd := float32(1 / math.Sqrt(float64(ss/float32(cols)+eps)))
			rs[r] = rsd
			for j, v := range xr {
				n := v * rsd
				if ws != nil {
					n *= ws[j]
				}
				yr[j] = n
			}
		}
	})
}

// RMSNormGrad accumulates dx and dw.
func (c *CPU) RMSNormGrad(dx, dw, x, w, rstd, dy backend.Buffer, rows, cols int) {
	dxs, dws, xs, ws, rs, g := f(dx), f(dw), f(x), f(w), f(rstd), f(dy)
	c.rowChunks(rows, cols, 1, func(lo, hi int, pw []float32) {
		for r := lo; r < hi; r++ {
			xr, gr := xs[r*cols:r*cols+cols], g[r*cols:r*cols+cols]
			rsd := rs[r]
			var s float32
			for j, gv := range gr {
				gw := gv
				if ws != nil {
					gw *= ws[j]
				}
				s += gw * xr[j]
				pw[j] += gv * xr[j] * rsd
			}
			if dxs != nil {
				dr := dxs[r*cols : r*cols+cols]
				k := s * rsd * rsd * rsd / float32(cols)
				for j, gv := range gr {
					gw := gv
					if ws != nil {
						gw *= ws[j]
					}
					dr[j] += gw*rsd - xr[j]*k
				}
			}
		}
	}, func(pw []float32) {
		if dws != nil {
			axpy(dws, pw, 1)
		}
	})
}

// L2Norm scales each row to unit length.
func (c *CPU) L2Norm(y, norm, x backend.Buffer, rows, cols int, eps float32) {
	ys, ns, xs := f(y), f(norm), f(x)
	Parallel(rows, grain(cols), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, yr := xs[r*cols:r*cols+cols], ys[r*cols:r*cols+cols]
			n := max(float32(math.Sqrt(float64(dot(xr, xr)))), eps)
			ns[r] = n
			inv := 1 / n
			for j, v := range xr {
				yr[j] = v * inv
			}
		}
	})
}

// L2NormGrad accumulates dx (the clamped case, norm == eps, is treated as a
// plain scale).
func (c *CPU) L2NormGrad(dx, y, norm, dy backend.Buffer, rows, cols int) {
	dxs, ys, ns, g := f(dx), f(y), f(norm), f(dy)
	Parallel(rows, grain(cols), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			yr, gr, dr := ys[r*cols:r*cols+cols], g[r*cols:r*cols+cols], dxs[r*cols:r*cols+cols]
			s := dot(yr, gr)
			inv := 1 / ns[r]
			for j := range dr {
				dr[j] += (gr[j] - yr[j]*s) * inv
			}
		}
	})
}

// Embedding gathers rows of table.
func (c *CPU) Embedding(y, table backend.Buffer, ids []int32, cols int) {
	if q, ok := table.(*QuantBuf); ok {
		ys := f(y)
		Parallel(len(ids), grain(cols), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				q.dequantRows(ys[i*cols:i*cols+cols], int(ids[i]), int(ids[i])+1)
			}
		})
		return
	}
	ys, ts := f(y), f(table)
	if cols == 1 { // a gather of values (tensor's rearranged weights), not rows
		Parallel(len(ids), grain(1), func(lo, hi int) {
			for i, id := range ids[lo:hi] {
				ys[lo+i] = ts[id]
			}
		})
		return
	}
	Parallel(len(ids), grain(cols), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			id := int(ids[i])
			copy(ys[i*cols:i*cols+cols], ts[id*cols:id*cols+cols])
		}
	})
}

// EmbeddingGrad scatter-adds rows of dy into dtable. It is parallel over
// column ranges, so each thread owns its slice of every row: race free and
// in the same order as a serial run.
func (c *CPU) EmbeddingGrad(dtable, dy backend.Buffer, ids []int32, cols int) {
	ds, g := f(dtable), f(dy)
	Parallel(cols, 64, func(lo, hi int) {
		for i, id := range ids {
			axpy(ds[int(id)*cols+lo:int(id)*cols+hi], g[i*cols+lo:i*cols+hi], 1)
		}
	})
}

// CrossEntropy computes per-row losses and saves the log-sum-exp.
func (c *CPU) CrossEntropy(loss, lse, logits backend.Buffer, target []int32, weight []float32, rows, cols int) {
	ls, es, xs := f(loss), f(lse), f(logits)
	Parallel(rows, grain(cols), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			t := target[r]
			if t < 0 {
				ls[r], es[r] = 0, 0
				continue
			}
			xr := xs[r*cols : r*cols+cols]
			m := maxf(xr)
			e := m + float32(math.Log(float64(expSum(xr, m))))
			es[r] = e
			w := float32(1)
			if weight != nil {
				w = weight[r]
			}
			ls[r] = w * (e - xr[t])
		}
	})
}

// CrossEntropyGrad accumulates the gradient of the per-row losses.
func (c *CPU) CrossEntropyGrad(dlogits, logits, lse, dloss backend.Buffer, target []int32, weight []float32, rows, cols int) {
	ds, xs, es, g := f(dlogits), f(logits), f(lse), f(dloss)
	Parallel(rows, grain(cols), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			t := target[r]
			if t < 0 {
				continue
			}
			w := g[r]
			if weight != nil {
				w *= weight[r]
			}
			if w == 0 {
				continue
			}
			xr, dr := xs[r*cols:r*cols+cols], ds[r*cols:r*cols+cols]
			e := es[r]
			for j, v := range xr {
				dr[j] += w * expf(v-e)
			}
			dr[t] -= w
		}
	})
}

// CrossEntropyInPlace computes the per-row losses like CrossEntropy and
// then overwrites each row of logits with the gradient of
// scale*sum(loss): scale*weight[r]*(softmax(logits[r]) - onehot(target[r])),
// and zero for ignored rows. It reads and writes every row once while it is
// in cache, so a fused linear + cross-entropy never needs a separate
// gradient buffer.
func (c *CPU) CrossEntropyInPlace(loss, logits backend.Buffer, target []int32, weight []float32, rows, cols int, scale float32) {
	ls, xs := f(loss), f(logits)
	Parallel(rows, grain(cols), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr := xs[r*cols : r*cols+cols]
			t := target[r]
			if t < 0 {
				ls[r] = 0
				clear(xr)
				continue
			}
			w := float32(1)
			if weight != nil {
				w = weight[r]
			}
			m := maxf(xr)
			lse := m + float32(math.Log(float64(expSum(xr, m))))
			ls[r] = w * (lse - xr[t])
			expSub(xr, xr, lse, scale*w)
			xr[t] -= scale * w
		}
	})
}

// splitmix64 is the generator behind dropout masks: counter based, so a
// mask depends only on the seed and the element index, not on threading.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Dropout zeroes each value with probability p and scales the rest.
func (c *CPU) Dropout(dst, mask, x backend.Buffer, p float32, seed uint64) {
	d, m, xs := f(dst), f(mask), f(x)
	scale := 1 / (1 - p)
	thr := uint64(float64(p) * (1 << 53))
	Parallel(len(d), 16384, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if splitmix64(seed^uint64(i)*0x2545f4914f6cdd1d)>>11 < thr {
				m[i], d[i] = 0, 0
			} else {
				m[i], d[i] = 1, xs[i]*scale
			}
		}
	})
}

// AdamWStep updates one parameter.
func (c *CPU) AdamWStep(h backend.AdamW, param, grad, m, v backend.Buffer) {
	c.AdamWSteps([]backend.AdamW{h}, []backend.Buffer{param}, []backend.Buffer{grad}, []backend.Buffer{m}, []backend.Buffer{v})
}

// AdamWSteps updates many parameters, parameter i with hyperparameters
// hs[i], in one parallel pass over all their values.
func (c *CPU) AdamWSteps(hs []backend.AdamW, params, grads, ms, vs []backend.Buffer) {
	offs := make([]int, len(params)+1)
	for i, p := range params {
		offs[i+1] = offs[i] + p.Len()
	}
	Parallel(offs[len(params)], 16384, func(lo, hi int) {
		i := sort.SearchInts(offs, lo+1) - 1
		for ; i < len(params) && offs[i] < hi; i++ {
			a, b := max(lo, offs[i])-offs[i], min(hi, offs[i+1])-offs[i]
			adamw(hs[i], f(params[i])[a:b], f(grads[i])[a:b], f(ms[i])[a:b], f(vs[i])[a:b])
		}
	})
}

func adamw(h backend.AdamW, ps, gs, ms, vs []float32) {
	bc1 := 1 - math.Pow(float64(h.Beta1), float64(h.Step))
	bc2 := 1 - math.Pow(float64(h.Beta2), float64(h.Step))
	stepSize := float32(float64(h.LR) / bc1)
	bc2s := float32(math.Sqrt(bc2))
	decay := 1 - h.LR*h.WeightDecay
	b1, b2, eps := h.Beta1, h.Beta2, h.Eps
	if len(ps) == 0 {
		return
	}
	gs, ms, vs = gs[:len(ps)], ms[:len(ps)], vs[:len(ps)]
	if haveVec || haveVec256 {
		hp := [6]float32{b1, b2, eps, stepSize, bc2s, decay}
		if haveVec {
			vadamw(&ps[0], &gs[0], &ms[0], &vs[0], len(ps), &hp)
		} else {
			vadamw256(&ps[0], &gs[0], &ms[0], &vs[0], len(ps), &hp)
		}
		return
	}
	for i, g := range gs {
		mi := b1*ms[i] + (1-b1)*g
		vi := b2*vs[i] + (1-b2)*g*g
		ms[i], vs[i] = mi, vi
		denom := float32(math.Sqrt(float64(vi)))/bc2s + eps
		ps[i] = ps[i]*decay - stepSize*mi/denom
	}
}
