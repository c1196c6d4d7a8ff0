//go:build !purego

package cpu

import "math"

// cvtPairs and pairRows are in bf16pack_amd64.s; both round as ToBF16.

//go:noescape
func cvtPairs(dst, src *float32, chunks int, m0, m1, ms int)

//go:noescape
func pairRows(dst *float32, ds int, src *float32, ss int, kc int, lmask, smask int)

// pairRound256 and cvtPairs256 are in bf16pack256_amd64.s (AVX2); both
// round as ToBF16.

//go:noescape
func pairRound256(dst, lo, hi *float32, n int)

//go:noescape
func cvtPairs256(dst, src *float32, n int)

//go:noescape
func splitPairs256(p *float32, n, n8 int)

//go:noescape
func pairRowsMask256(dst *float32, ds int, src *float32, ss int, kp, c int)

// splitPairs splits a packed panel of A for the AVX2 bf16 kernels
// (bgemm256s_*, see gemm_gen.go): its n = mr*kc/2 pairs (kc even) become
// their high values (pair AND 0xffff0000) in place and their low values
// (pair << 16) after them, at a[n:2n], which the panel's slot of mr*kc
// values holds.
func splitPairs(a []float32, mr, kc int) {
	n := mr * kc / 2
	a = a[:2*n]
	if n8 := n / 8; n8 > 0 {
		splitPairs256(&a[0], n, n8)
	}
	for i := n / 8 * 8; i < n; i++ {
		x := math.Float32bits(a[i])
		a[n+i] = math.Float32frombits(x << 16)
		a[i] = math.Float32frombits(x & 0xffff0000)
	}
}

func init() {
	if haveBF16 {
		pairStrided, pairRowsPack = packStridedPairs512, packRowsPairs512
	} else if haveBF16AVX2 {
		pairStrided, pairRowsPack = packStridedPairs256, packRowsPairs256
	}
}

// packRowsPairs256 is packRowsPairs by pairRound256, 8 lanes at a time
// (the lanes past a multiple of 8, and a last step of an odd kc, in Go),
// or by pairRowsMask256 for fewer than 8 lanes.
func packRowsPairs256(dst []float32, ds int, src []float32, ss, kc, cnt, width int) {
	n8 := cnt / 8
	if n8 == 0 && cnt > 0 && kc >= 2 {
		// Fewer than 8 lanes (a transposed A's micro-panels): masked
		// vectors for the whole pairs, Go for an odd kc's last step.
		_ = src[(kc-1)*ss+cnt-1]
		_ = dst[((kc+1)/2-1)*ds+width-1]
		pairRowsMask256(&dst[0], ds, &src[0], ss, kc/2, cnt)
		if width > cnt {
			for q := 0; q < kc/2; q++ {
				clear(dst[q*ds+cnt : q*ds+width])
			}
		}
		if kc%2 != 0 {
			q := kc / 2
			packRowsPairs(dst[q*ds:], ds, src[2*q*ss:], ss, 1, cnt, width)
		}
		return
	}
	if n8 == 0 || kc < 2 {
		packRowsPairs(dst, ds, src, ss, kc, cnt, width)
		return
	}
	_ = src[(kc-1)*ss+cnt-1]
	_ = dst[((kc+1)/2-1)*ds+width-1]
	for q := 0; q < (kc+1)/2; q++ {
		d := dst[q*ds : q*ds+width]
		lo := src[2*q*ss : 2*q*ss+cnt]
		if 2*q+1 < kc {
			hi := src[(2*q+1)*ss : (2*q+1)*ss+cnt]
			pairRound256(&d[0], &lo[0], &hi[0], n8)
			for i := 8 * n8; i < cnt; i++ {
				d[i] = pairBits(lo[i], hi[i])
			}
		} else {
			for i := range lo {
				d[i] = pairBits(lo[i], 0)
			}
		}
		clear(d[cnt:])
	}
}

// packStridedPairs256 is packStridedPairs for panels of up to 16 lanes:
// each row's values are paired in place along the row (cvtPairs256, 16
// values a step; the row's last values in Go), then the rows of pairs
// transposed as float32 values by packStrided256.
func packStridedPairs256(dst []float32, ds int, src []float32, ss, kc, cnt, width int) {
	kp := (kc + 1) / 2
	if cnt > 16 || kp > bf16KC/2 || kc == 0 {
		packStridedPairs(dst, ds, src, ss, kc, cnt, width)
		return
	}
	var rows [16 * bf16KC / 2]float32
	for i := 0; i < cnt; i++ {
		row := src[i*ss : i*ss+kc]
		r := rows[i*kp : i*kp+kp]
		if n := kc / 16; n > 0 {
			cvtPairs256(&r[0], &row[0], n)
		}
		convertPairsGo(r[kc/16*8:], row[kc/16*16:], kc%16)
	}
	packStrided256(dst, ds, rows[:max(cnt*kp, 1)], kp, kp, cnt, width)
}

// convertPairs sets dst[q] = pair(src[2q], src[2q+1]) for q < (n+1)/2,
// the value past an odd n read as zero.
func convertPairs(dst, src []float32, n int) {
	switch {
	case haveBF16:
		convertPairsVec(dst, src, n)
	case haveBF16AVX2 && n >= 16:
		_ = src[n-1]
		_ = dst[(n+1)/2-1]
		cvtPairs256(&dst[0], &src[0], n/16)
		convertPairsGo(dst[n/16*8:], src[n/16*16:], n%16)
	default:
		convertPairsGo(dst, src, n)
	}
}

// convertPairsVec is convertPairs by VCVTNE2PS2BF16.
func convertPairsVec(dst, src []float32, n int) {
	if n == 0 {
		return
	}
	_ = src[n-1]
	_ = dst[(n+1)/2-1]
	chunks, r := n/32, n%32
	m0, m1 := 1<<min(r, 16)-1, 1<<max(r-16, 0)-1
	ms := 1<<((r+1)/2) - 1
	cvtPairs(&dst[0], &src[0], chunks, m0, m1, ms)
}

// packStridedPairs512 is packStridedPairs by VCVTNE2PS2BF16 and 16x16
// transposes in registers (packTransposePairs), 16 lanes a call.
func packStridedPairs512(dst []float32, ds int, src []float32, ss, kc, cnt, width int) {
	if kc == 0 || width == 0 {
		return
	}
	_ = src[(cnt-1)*ss+kc-1]
	_ = dst[((kc+1)/2-1)*ds+width-1]
	for h := 0; h < width; h += 16 {
		c, w := min(max(cnt-h, 0), 16), min(width-h, 16)
		s := &src[0]
		if c > 0 {
			s = &src[h*ss]
		}
		packTransposePairs(&dst[h], ds, s, ss, kc, 1<<c-1, 1<<w-1)
	}
}

// packRowsPairs512 is packRowsPairs, 16 lanes a call (pairRows).
func packRowsPairs512(dst []float32, ds int, src []float32, ss, kc, cnt, width int) {
	if kc == 0 || width == 0 {
		return
	}
	_ = src[(kc-1)*ss+cnt-1]
	_ = dst[((kc+1)/2-1)*ds+width-1]
	for h := 0; h < width; h += 16 {
		c, w := min(max(cnt-h, 0), 16), min(width-h, 16)
		s := &src[0]
		if c > 0 {
			s = &src[h]
		}
		pairRows(&dst[h], ds, s, ss, kc, 1<<c-1, 1<<w-1)
	}
}

//go:noescape
func bdot(out, x *float32, w *uint16, kp, n, ldw int)

//go:noescape
func bdot256(out, x *float32, w *uint16, kp, n, ldw int)

// bdotRows sets out[j] to the product of the pairs x (convertPairs of a
// row of k values) and row j of the bfloat16 rows w (k apart); where k
// is even, by bdot where the CPU has AVX512_BF16, else by bdot256 where
// it has AVX2 and FMA.
func bdotRows(out, x []float32, w []uint16, k int) {
	if !(haveBF16 || haveBF16AVX2) || !fastQuant || k%2 != 0 || len(out) == 0 || k == 0 {
		bdotRowsGo(out, x, w, k)
		return
	}
	_ = w[len(out)*k-1]
	_ = x[k/2-1]
	if haveBF16 {
		bdot(&out[0], &x[0], &w[0], k/2, len(out), k)
	} else {
		bdot256(&out[0], &x[0], &w[0], k/2, len(out), k)
	}
}
