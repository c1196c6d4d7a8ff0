package cpu

import (
	"fmt"
	"math"

	"github.com/golem-ml/golem/backend"
)

// Half-precision KV caches. A decoder's keys and values are read once per
// generated token for every position a sequence holds; with many sequences
// batched that traffic outweighs the weights'. Kept as IEEE float16 (as
// llama.cpp keeps them by default) they take half the memory and half the
// reading; attention converts them back to float32 as it loads them and
// does all its arithmetic in float32. Values beyond float16's range are
// saturated to +-65504 rather than made infinite.

// HalfBuf is a buffer of float16 values (their bit patterns).
type HalfBuf struct{ H []uint16 }

// Len reports the number of values.
func (b *HalfBuf) Len() int { return len(b.H) }

// AllocHalf returns a zeroed buffer of n float16 values.
func (c *CPU) AllocHalf(n int) backend.Buffer {
	c.mu.Lock()
	c.live += 2 * int64(n)
	c.peak = max(c.peak, c.live)
	c.misses++
	c.mu.Unlock()
	return &HalfBuf{H: make([]uint16, n)}
}

// CopyHalf copies rows x cols values into the float16 buffer dst (at dOff,
// rows dStride apart) from src (at sOff, rows sStride apart), a float32
// buffer (rounded to nearest, ties to even, saturated) or a float16 one.
func (c *CPU) CopyHalf(dst backend.Buffer, dOff, dStride int, src backend.Buffer, sOff, sStride, rows, cols int) {
	d := dst.(*HalfBuf).H
	if rows <= 0 || cols <= 0 {
		return
	}
	_ = d[dOff+(rows-1)*dStride+cols-1]
	switch s := src.(type) {
	case *HalfBuf:
		_ = s.H[sOff+(rows-1)*sStride+cols-1]
		Parallel(rows, max(1, 32768/cols), func(lo, hi int) {
			for r := lo; r < hi; r++ {
				copy(d[dOff+r*dStride:dOff+r*dStride+cols], s.H[sOff+r*sStride:])
			}
		})
	case *Buf:
		_ = s.D[sOff+(rows-1)*sStride+cols-1]
		Parallel(rows, max(1, 16384/cols), func(lo, hi int) {
			for r := lo; r < hi; r++ {
				toHalf(d[dOff+r*dStride:dOff+r*dStride+cols], s.D[sOff+r*sStride:sOff+r*sStride+cols])
			}
		})
	default:
		panic(fmt.Sprintf("cpu: CopyHalf from a %T", src))
	}
}

// HalfData returns the float16 bit patterns behind a half buffer, for this
// backend's tests.
func HalfData(b backend.Buffer) []uint16 { return b.(*HalfBuf).H }

// toHalf converts src to float16 in dst (of the same length).
func toHalf(dst []uint16, src []float32) {
	if len(src) == 0 {
		return
	}
	if haveHalf {
		vtohalf(&dst[0], &src[0], len(src))
		return
	}
	for i, v := range src {
		dst[i] = f32ToF16(v)
	}
}

// FromHalf converts float16 bit patterns to float32 (for tests, for
// reading a half cache back, and for float16 weights' rows and
// dequantized copies); with F16C (haveHalf2) by vfromhalf2, whose only
// difference, a signaling NaN made quiet, golem's float16 values never
// hold (f32ToF16's NaNs are quiet, and float16 weights refuse NaN).
func FromHalf(dst []float32, src []uint16) {
	if len(src) == 0 {
		return
	}
	if haveHalf2 && haveHalf {
		_ = dst[len(src)-1]
		vfromhalf2(&dst[0], &src[0], len(src))
		return
	}
	for i, h := range src {
		dst[i] = f16ToF32(h)
	}
}

const maxHalf = 65504

// f32ToF16 rounds f to the nearest float16 (ties to even), saturating
// at +-65504; NaN stays NaN. It is what vtohalf computes.
func f32ToF16(f float32) uint16 {
	if f > maxHalf {
		f = maxHalf
	} else if f < -maxHalf {
		f = -maxHalf
	}
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff { // NaN (infinities were saturated)
		return sign | 0x7e00 | uint16(man>>13)
	}
	e := exp - 127 + 15
	if e <= 0 { // a float16 subnormal, or zero
		if e < -10 {
			return sign
		}
		man |= 0x800000
		shift := uint(14 - e)
		h := man >> shift
		rem, halfway := man&(1<<shift-1), uint32(1)<<(shift-1)
		if rem > halfway || rem == halfway && h&1 == 1 {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | man>>13
	if rem := man & 0x1fff; rem > 0x1000 || rem == 0x1000 && h&1 == 1 {
		h++
	}
	return sign | uint16(h)
}

// f16ToF32 is the float32 of a float16 (exact).
func f16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp == 0:
		v := float32(man) / (1 << 24)
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
}

// attentionRowsHalf is AttentionRows over float16 keys and values: the
// blocked kernels of attn_gen.go where the head size has them (AVX-512),
// else AVX2's scores over blocks of 8 keys where it is a multiple of 8,
// else the per-key vector kernels, else values converted and the float32
// code.
func attentionRowsHalf(a backend.Attention, slot, n []int32, os, qs []float32, ks, vs []uint16) {
	D := a.D
	sk, wv := halfKernels(D)
	// Without AVX-512: AVX2's blocks of 8 keys where the head size is
	// whole vectors of 8.
	sk8 := sk == nil && haveHalf && !haveHalf512 && fastHalf && D%8 == 0
	attendPairs(a, slot, n, os, qs, func() (pairScores, pairSum) {
		var kf, vf []float32 // the fallback's converted keys and values
		return func(row, qh []float32, kv int) {
				nk := len(row)
				kh := ks[kv : kv+nk*D]
				switch {
				case sk != nil:
					// Whole blocks of 16 keys, then the rest one by one.
					blocks := nk / 16
					if blocks > 0 {
						sk(&row[0], &qh[0], &kh[0], blocks, a.Scale)
					}
					if r := blocks * 16; r < nk {
						vdotsh(&row[r], &qh[0], &kh[r*D], D, nk-r, D, a.Scale)
					}
				case sk8:
					// Whole blocks of 8 keys, then the rest one by one.
					blocks := nk / 8
					if blocks > 0 {
						vdotsh2x8(&row[0], &qh[0], &kh[0], D, blocks, D, a.Scale)
					}
					if r := blocks * 8; r < nk {
						vdotsh(&row[r], &qh[0], &kh[r*D], D, nk-r, D, a.Scale)
					}
				case haveHalf:
					vdotsh(&row[0], &qh[0], &kh[0], D, nk, D, a.Scale)
				default:
					kf = grow(kf, nk*D)
					FromHalf(kf, kh)
					scores(row, qh, kf, D, a.Scale)
				}
			}, func(oh, row []float32, kv int) {
				nk := len(row)
				vh := vs[kv : kv+nk*D]
				switch {
				case wv != nil:
					wv(&oh[0], &row[0], &vh[0], nk)
				case haveHalf:
					vwsumh(&oh[0], &row[0], &vh[0], D, nk, D)
				default:
					vf = grow(vf, nk*D)
					FromHalf(vf, vh)
					clear(oh)
					for j := range nk {
						axpy(oh, vf[j*D:j*D+D], row[j])
					}
				}
			}
	})
}

// halfKernels returns the generated kernels for head size d (see
// attn_gen.go), or nils when there are none.
func halfKernels(d int) (func(out, q *float32, k *uint16, blocks int, scale float32), func(o, p *float32, v *uint16, n int)) {
	if !haveHalf || !haveHalf512 || !fastHalf || d%16 != 0 {
		return nil, nil
	}
	return scoresHalf[d/16], wsumHalf[d/16]
}

// fastHalf enables the generated kernels (tests turn it off to check them
// against the per-key ones).
var fastHalf = true

// StoreRows writes keys (or values) into a slot cache: row r of src
// ([rows, H*D], float32) goes, head by head, to position pos[r] of slot
// slot[r] of dst ([slots, H, S, D]), a float32 or a float16 buffer
// (rounded as CopyHalf rounds); rows whose slot is negative are skipped.
// A decode step stores one row per sequence, a prefill all its rows.
func (c *CPU) StoreRows(dst backend.Buffer, S, H, D int, slot, pos []int32, src backend.Buffer) {
	s := f(src)
	rows := len(slot)
	if len(pos) != rows || len(s) < rows*H*D {
		panic(fmt.Sprintf("cpu: StoreRows: %d slots, %d positions, %d values for rows of %d x %d", rows, len(pos), len(s), H, D))
	}
	slots := dst.Len() / (H * S * D)
	for r := range rows {
		if slot[r] < 0 {
			continue
		}
		if int(slot[r]) >= slots || pos[r] < 0 || int(pos[r]) >= S {
			panic(fmt.Sprintf("cpu: StoreRows: row %d: position %d of slot %d, in %d slots of %d", r, pos[r], slot[r], slots, S))
		}
	}
	var dh []uint16
	var df []float32
	switch d := dst.(type) {
	case *HalfBuf:
		dh = d.H
	case *Buf:
		df = d.D
	default:
		panic(fmt.Sprintf("cpu: StoreRows into a %T", dst))
	}
	Parallel(rows, max(1, 4096/(H*D)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			if slot[r] < 0 {
				continue
			}
			for h := range H {
				o := ((int(slot[r])*H+h)*S + int(pos[r])) * D
				x := s[(r*H+h)*D : (r*H+h+1)*D]
				if dh != nil {
					toHalf(dh[o:o+D], x)
				} else {
					copy(df[o:o+D], x)
				}
			}
		}
	})
}
