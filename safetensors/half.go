package safetensors

import "math"

// Float16ToFloat32 converts an IEEE 754 half-precision value to float32 (exact).
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // infinity or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	}
	// zero or subnormal: mant * 2^-24, exact in float32.
	f := float32(mant) * (1.0 / (1 << 24))
	return math.Float32frombits(sign | math.Float32bits(f))
}

// Float32ToFloat16 converts f to IEEE 754 half precision, rounding to nearest,
// ties to even. Values too large become infinity; NaN stays NaN (quiet).
func Float32ToFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // biased half exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e > 0 {
		h := uint32(e)<<10 | mant>>13
		return sign | uint16(roundShifted(h, mant&0x1fff, 13))
	}
	// Subnormal half (or zero): the value is m * 2^(e-14) half units of 2^-24.
	shift := uint(14 - e)
	if shift > 25 {
		return sign // smaller than half the smallest subnormal (float32 subnormals included)
	}
	m := mant | 0x800000
	return sign | uint16(roundShifted(m>>shift, m&(1<<shift-1), shift))
}

// roundShifted rounds q (a value already shifted right by shift bits, whose
// dropped bits are rest) to nearest, ties to even. A carry out of the mantissa
// correctly moves to the next exponent (or to infinity).
func roundShifted(q, rest uint32, shift uint) uint32 {
	half := uint32(1) << (shift - 1)
	if rest > half || (rest == half && q&1 == 1) {
		q++
	}
	return q
}

// BFloat16ToFloat32 converts a bfloat16 value to float32 (exact).
func BFloat16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float32ToBFloat16 converts f to bfloat16, rounding to nearest, ties to even.
// NaN stays NaN (quiet).
func Float32ToBFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}
