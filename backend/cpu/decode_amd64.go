//go:build !purego

package cpu

import "golang.org/x/sys/cpu"

//go:noescape
func vdots(out, q, k *float32, ldk, n, d int, scale float32)

//go:noescape
func vwsum(o, p, v *float32, ldv, n, d int, acc bool)

// The float16 kernels run on AVX-512 with 16-bit masked loads
// (haveHalf512: decode_amd64.s, halfgemm_amd64.s) or, without AVX-512, on
// AVX2 with FMA and F16C (haveHalf2: half_avx2_amd64.s); haveHalf is
// either, and where both are there AVX-512's run. vdotsh, vwsumh and
// vtohalf run the one the CPU has (callers check haveHalf first).
var (
	haveHalf512 = haveVec && cpu.X86.HasAVX512BW
	haveHalf2   = cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C
	haveHalf    = haveHalf512 || haveHalf2
)

// vdotsh sets out[j] = scale * dot(q[:d], k[j*ldk:j*ldk+d]) for j < n,
// over float16 keys (vdotsh512 or vdotsh2).
func vdotsh(out, q *float32, k *uint16, ldk, n, d int, scale float32) {
	if haveHalf512 {
		vdotsh512(out, q, k, ldk, n, d, scale)
		return
	}
	vdotsh2(out, q, k, ldk, n, d, scale)
}

// vwsumh sets o[:d] to the sum over j < n of p[j] * v[j*ldv:j*ldv+d],
// over float16 values (vwsumh512 or vwsumh2).
func vwsumh(o, p *float32, v *uint16, ldv, n, d int) {
	if haveHalf512 {
		vwsumh512(o, p, v, ldv, n, d)
		return
	}
	vwsumh2(o, p, v, ldv, n, d)
}

// vtohalf converts n values of src to float16 in dst, as f32ToF16 does
// (vtohalf512 or vtohalf2).
func vtohalf(dst *uint16, src *float32, n int) {
	if haveHalf512 {
		vtohalf512(dst, src, n)
		return
	}
	vtohalf2(dst, src, n)
}

//go:noescape
func vdotsh512(out, q *float32, k *uint16, ldk, n, d int, scale float32)

//go:noescape
func vwsumh512(o, p *float32, v *uint16, ldv, n, d int)

//go:noescape
func vtohalf512(dst *uint16, src *float32, n int)

//go:noescape
func vdotsh2(out, q *float32, k *uint16, ldk, n, d int, scale float32)

//go:noescape
func vwsumh2(o, p *float32, v *uint16, ldv, n, d int)

//go:noescape
func vtohalf2(dst *uint16, src *float32, n int)

// vdotsh2x8 is vdotsh2 over blocks of 8 keys, for d a multiple of 8 (its
// sums are ordered otherwise: half_avx2_amd64.s).
//
//go:noescape
func vdotsh2x8(out, q *float32, k *uint16, ldk, blocks, d int, scale float32)

// vfromhalf2 widens n float16 values of src into dst (VCVTPH2PS): as
// f16ToF32, but that a signaling NaN comes out quiet.
//
//go:noescape
func vfromhalf2(dst *float32, src *uint16, n int)

// vdotsh2r3 and vdotsh2r2 are vdotsh2 (scale 1) for 3 and 2 rows of
// activations x (ldx apart) at once against the same float16 rows of k,
// each widened once for all the rows: out[r*ldo+j] = dot(x[r*ldx:][:d],
// k[j*ldk:][:d]), each row summed in vdotsh2's order (bit for bit
// vdotsh2's for that row alone).
//
//go:noescape
func vdotsh2r3(out *float32, ldo int, x *float32, ldx int, k *uint16, ldk, n, d int)

//go:noescape
func vdotsh2r2(out *float32, ldo int, x *float32, ldx int, k *uint16, ldk, n, d int)
