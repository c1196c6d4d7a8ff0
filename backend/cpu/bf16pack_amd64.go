//go:build !purego

package cpu

// cvtPairs and pairRows are in bf16pack_amd64.s; both round as ToBF16.

//go:noescape
func cvtPairs(dst, src *float32, chunks int, m0, m1, ms int)

//go:noescape
func pairRows(dst *float32, ds int, src *float32, ss int, kc int, lmask, smask int)

func init() {
	if haveBF16 {
		pairStrided, pairRowsPack = packStridedPairs512, packRowsPairs512
	}
}

// convertPairs sets dst[q] = pair(src[2q], src[2q+1]) for q < (n+1)/2,
// the value past an odd n read as zero.
func convertPairs(dst, src []float32, n int) {
	if haveBF16 {
		convertPairsVec(dst, src, n)
	} else {
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
