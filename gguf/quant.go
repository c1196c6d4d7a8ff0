package gguf

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/golem-ml/golem/safetensors"
)

// QK is the number of values in one Q8_0, Q4_0, Q4_1, Q5_0 or Q5_1 block
// (ggml's QK8_0, QK4_0, ...).
const QK = 32

// QKK is the number of values in one k-quant super-block (ggml's QK_K).
const QKK = 256

// TensorBytes returns the encoded size of n values of type t, or an error if
// t is not supported or n is not a whole number of its blocks.
func TensorBytes(t TensorType, n int64) (int64, error) {
	if !t.Supported() {
		return 0, fmt.Errorf("unsupported tensor type %s", t)
	}
	bs := int64(t.BlockSize())
	if n < 0 || n%bs != 0 {
		return 0, fmt.Errorf("%d values are not a whole number of %s blocks of %d", n, t, bs)
	}
	if n/bs > math.MaxInt64/int64(t.BlockBytes()) {
		return 0, fmt.Errorf("%d values of %s are more bytes than any file holds", n, t)
	}
	return n / bs * int64(t.BlockBytes()), nil
}

// Quantize returns x as type t's bytes: float32, float16 and bfloat16 round
// to nearest even (as ggml converts), Q8_0 and Q4_0 quantize each block of
// 32 values as ggml's quantize_row_q8_0_ref and quantize_row_q4_0_ref do.
// len(x) must be a multiple of t.BlockSize().
func Quantize(t TensorType, x []float32) ([]byte, error) {
	if !t.Writable() {
		return nil, fmt.Errorf("gguf: quantize: golem reads %s but does not quantize to it (f32, f16, bf16, q8_0, q4_0)", t)
	}
	size, err := TensorBytes(t, int64(len(x)))
	if err != nil {
		return nil, fmt.Errorf("gguf: quantize: %w", err)
	}
	if t == Q8_0 || t == Q4_0 {
		for i, v := range x {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("gguf: quantize: value %d is %g: %s cannot quantize a value that is not finite", i, v, t)
			}
		}
	}
	b := make([]byte, size)
	switch t {
	case F32:
		for i, v := range x {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
	case F16:
		for i, v := range x {
			binary.LittleEndian.PutUint16(b[2*i:], safetensors.Float32ToFloat16(v))
		}
	case BF16:
		for i, v := range x {
			binary.LittleEndian.PutUint16(b[2*i:], safetensors.Float32ToBFloat16(v))
		}
	case Q8_0:
		for i := 0; i < len(x)/QK; i++ {
			quantizeQ8_0(x[i*QK:(i+1)*QK], b[i*(2+QK):(i+1)*(2+QK)])
		}
	case Q4_0:
		for i := 0; i < len(x)/QK; i++ {
			quantizeQ4_0(x[i*QK:(i+1)*QK], b[i*(2+QK/2):(i+1)*(2+QK/2)])
		}
	}
	return b, nil
}

// quantizeQ8_0 is ggml's quantize_row_q8_0_ref for one block: d = amax/127
// stored as float16, q = roundf(x/d) (half away from zero).
func quantizeQ8_0(x []float32, b []byte) {
	var amax float32
	for _, v := range x {
		amax = max(amax, abs32(v))
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	binary.LittleEndian.PutUint16(b, safetensors.Float32ToFloat16(d))
	for j, v := range x {
		x0 := float32(v * id) // rounded to float32, never fused
		b[2+j] = byte(int8(math.Round(float64(x0))))
	}
}

// quantizeQ4_0 is ggml's quantize_row_q4_0_ref for one block: d = m/-8
// where m is the value of largest magnitude (sign kept), stored as float16;
// q = min(15, trunc(x/d + 8.5)); value j in the low nibble of byte j, value
// j+16 in its high nibble.
func quantizeQ4_0(x []float32, b []byte) {
	var amax, m float32
	for _, v := range x {
		if amax < abs32(v) {
			amax, m = abs32(v), v
		}
	}
	d := m / -8
	var id float32
	if d != 0 {
		id = 1 / d
	}
	binary.LittleEndian.PutUint16(b, safetensors.Float32ToFloat16(d))
	q := func(v float32) byte {
		x0 := float32(v * id)
		return byte(min(15, int8(float32(x0+8.5)))) // C's (int8_t) truncates toward zero
	}
	for j := 0; j < QK/2; j++ {
		b[2+j] = q(x[j]) | q(x[j+QK/2])<<4
	}
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// Dequantize converts n values of type t from b (exactly their bytes) into out
// (len n), as ggml's to-float conversions do (dequantize_row_q8_0: q*d;
// dequantize_row_q4_0: (q-8)*d; the other quantized types: kquant.go).
func Dequantize(t TensorType, b []byte, out []float32) error {
	size, err := TensorBytes(t, int64(len(out)))
	if err != nil {
		return fmt.Errorf("gguf: dequantize: %w", err)
	}
	if int64(len(b)) != size {
		return fmt.Errorf("gguf: dequantize: %d bytes for %d %s values, want %d", len(b), len(out), t, size)
	}
	switch t {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = safetensors.Float16ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = safetensors.BFloat16ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case Q8_0:
		for i := 0; i < len(out)/QK; i++ {
			blk := b[i*(2+QK):]
			d := safetensors.Float16ToFloat32(binary.LittleEndian.Uint16(blk))
			for j := 0; j < QK; j++ {
				out[i*QK+j] = float32(int8(blk[2+j])) * d
			}
		}
	case Q4_0:
		for i := 0; i < len(out)/QK; i++ {
			blk := b[i*(2+QK/2):]
			d := safetensors.Float16ToFloat32(binary.LittleEndian.Uint16(blk))
			for j := 0; j < QK/2; j++ {
				out[i*QK+j] = float32(int(blk[2+j]&0x0f)-8) * d
				out[i*QK+j+QK/2] = float32(int(blk[2+j]>>4)-8) * d
			}
		}
	default:
		dequantizeMore(t, b, out)
	}
	return nil
}

// Convert returns the values of type from in b, rows of row values, as
// type to (Dequantize, then Quantize), a few rows at a time, so that at
// most 64K of them are ever float32 at once: a Q6_K embedding of 262M
// values becomes Q8_0 without a gigabyte of float32 on the way.
func Convert(from TensorType, b []byte, row int, to TensorType) ([]byte, error) {
	if row <= 0 || row%from.BlockSize() != 0 || row%to.BlockSize() != 0 {
		return nil, fmt.Errorf("gguf: convert: rows of %d values are not whole blocks of %s and %s", row, from, to)
	}
	rb := int(row / from.BlockSize() * from.BlockBytes())
	if rb == 0 || len(b)%rb != 0 {
		return nil, fmt.Errorf("gguf: convert: %d bytes are not whole rows of %d %s values", len(b), row, from)
	}
	rows := len(b) / rb
	size, err := TensorBytes(to, int64(rows)*int64(row))
	if err != nil {
		return nil, fmt.Errorf("gguf: convert: %w", err)
	}
	chunk := max(1, 1<<16/row)
	buf := make([]float32, chunk*row)
	out := make([]byte, 0, size)
	for r := 0; r < rows; r += chunk {
		n := min(chunk, rows-r)
		x := buf[:n*row]
		if err := Dequantize(from, b[r*rb:(r+n)*rb], x); err != nil {
			return nil, err
		}
		for i, v := range x {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("gguf: convert: row %d, value %d is %g: NaN or infinite values are refused", r+i/row, i%row, v)
			}
		}
		q, err := Quantize(to, x)
		if err != nil {
			return nil, err
		}
		out = append(out, q...)
	}
	return out, nil
}
