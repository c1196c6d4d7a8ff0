// Package gguf reads and writes GGUF (version 3), the single-file model
// format of llama.cpp, ggml and Ollama: a header, typed metadata key/values
// (general.architecture, the model's sizes, its tokenizer and chat
// template), tensor infos, then the tensors' data, each aligned to
// general.alignment bytes (32 by default).
//
// Tensors are F32, F16, BF16, Q8_0 or Q4_0, which Quantize writes and
// Dequantize reads, or Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K or
// IQ4_NL, which Dequantize reads (the types of llama.cpp's Q4_K_M, Q5_K_M,
// Q6_K, Q3_K_M and Q2_K files). Q8_0 and Q4_0 store blocks of 32 values with one float16 scale
// each, exactly as ggml's reference quantize_row_q8_0_ref /
// quantize_row_q4_0_ref and dequantize_row_q8_0 / dequantize_row_q4_0 do:
// Quantize and Dequantize give the same bytes and values as llama.cpp, and
// the other types' values are ggml's dequantize_row_* values.
//
// Open checks a file strictly before it trusts it: every count and length
// is checked against the bytes left in the file before anything is
// allocated from it, tensor types must be known, and every tensor's data
// must be aligned, inside the file and apart from the others. Errors name
// the file and the field. Write lays tensors out as llama.cpp requires
// (in order, each padded to the alignment) and writes atomically.
package gguf

import (
	"fmt"
)

// Magic is the first four bytes of a GGUF file.
const Magic = "GGUF"

// Version is the GGUF version this package reads and writes.
const Version = 3

// DefaultAlignment is the data alignment when general.alignment is absent.
const DefaultAlignment = 32

// MaxDims is the most dimensions a tensor has (GGML_MAX_DIMS).
const MaxDims = 4

// MaxNameLen is the longest tensor name ggml accepts (GGML_MAX_NAME - 1).
const MaxNameLen = 63

// ValueType is the type of a metadata value.
type ValueType uint32

// Metadata value types, numbered as in the GGUF specification.
const (
	TypeUint8 ValueType = iota
	TypeInt8
	TypeUint16
	TypeInt16
	TypeUint32
	TypeInt32
	TypeFloat32
	TypeBool
	TypeString
	TypeArray
	TypeUint64
	TypeInt64
	TypeFloat64
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("ValueType(%d)", uint32(t))
}

// size returns the encoded size of a fixed-size value type (0 for string
// and array).
func (t ValueType) size() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// Value is a metadata value: a scalar (uint8, int8, uint16, int16, uint32,
// int32, float32, bool, string, uint64, int64 or float64) or an array of
// one of them ([]uint8 ... []string). Arrays of arrays are not supported
// (llama.cpp writes none).
type Value struct {
	v any
}

// Scalar is a Go type that is a GGUF scalar value type.
type Scalar interface {
	uint8 | int8 | uint16 | int16 | uint32 | int32 | float32 | bool | string | uint64 | int64 | float64
}

// Of returns the value v.
func Of[T Scalar](v T) Value { return Value{v} }

// ArrayOf returns the array value v.
func ArrayOf[T Scalar](v []T) Value { return Value{v} }

// Any returns the Go value: a scalar or a slice of scalars.
func (v Value) Any() any { return v.v }

// Type returns the value's type and, for an array, its elements' type.
func (v Value) Type() (t, elem ValueType) {
	switch v.v.(type) {
	case uint8:
		return TypeUint8, 0
	case int8:
		return TypeInt8, 0
	case uint16:
		return TypeUint16, 0
	case int16:
		return TypeInt16, 0
	case uint32:
		return TypeUint32, 0
	case int32:
		return TypeInt32, 0
	case float32:
		return TypeFloat32, 0
	case bool:
		return TypeBool, 0
	case string:
		return TypeString, 0
	case uint64:
		return TypeUint64, 0
	case int64:
		return TypeInt64, 0
	case float64:
		return TypeFloat64, 0
	case []uint8:
		return TypeArray, TypeUint8
	case []int8:
		return TypeArray, TypeInt8
	case []uint16:
		return TypeArray, TypeUint16
	case []int16:
		return TypeArray, TypeInt16
	case []uint32:
		return TypeArray, TypeUint32
	case []int32:
		return TypeArray, TypeInt32
	case []float32:
		return TypeArray, TypeFloat32
	case []bool:
		return TypeArray, TypeBool
	case []string:
		return TypeArray, TypeString
	case []uint64:
		return TypeArray, TypeUint64
	case []int64:
		return TypeArray, TypeInt64
	case []float64:
		return TypeArray, TypeFloat64
	}
	return ^ValueType(0), 0
}

// String returns a string value.
func (v Value) String() (string, bool) {
	s, ok := v.v.(string)
	return s, ok
}

// Int returns an integer value of any integer type as an int64 (a uint64
// above the int64 range is not ok).
func (v Value) Int() (int64, bool) {
	switch x := v.v.(type) {
	case uint8:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case int16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint64:
		if x > 1<<63-1 {
			return 0, false
		}
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}

// Float returns a float32 or float64 value.
func (v Value) Float() (float64, bool) {
	switch x := v.v.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// KV is one metadata key/value.
type KV struct {
	Key   string
	Value Value
}

// TensorType is a ggml tensor type.
type TensorType uint32

// The tensor types this package reads, numbered as ggml does. It writes
// (quantizes to) the first five; the others it reads and dequantizes
// (kquant.go): the legacy Q4_1, Q5_0 and Q5_1 blocks of 32 values, the
// k-quants' super-blocks of 256 (QK_K) that llama.cpp's Q4_K_M, Q5_K_M and
// Q6_K files hold, and IQ4_NL, the fallback some llama.cpp versions write
// for Q3_K and Q2_K rows that are not whole super-blocks.
const (
	F32  TensorType = 0
	F16  TensorType = 1
	Q4_0 TensorType = 2
	Q8_0 TensorType = 8
	BF16 TensorType = 30

	Q4_1 TensorType = 3
	Q5_0 TensorType = 6
	Q5_1 TensorType = 7
	Q2_K TensorType = 10
	Q3_K TensorType = 11
	Q4_K TensorType = 12
	Q5_K TensorType = 13
	Q6_K TensorType = 14

	IQ4_NL TensorType = 20
)

// ggmlTypeNames names ggml's types, so that an unsupported one is named in
// errors.
var ggmlTypeNames = map[TensorType]string{
	0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
	10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K",
	16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS",
	24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
}

func (t TensorType) String() string {
	if s, ok := ggmlTypeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("%d (unknown)", uint32(t))
}

// ParseTensorType returns the supported type named s (f32, f16, bf16, q8_0
// or q4_0, either case).
func ParseTensorType(s string) (TensorType, error) {
	switch s {
	case "f32", "F32":
		return F32, nil
	case "f16", "F16":
		return F16, nil
	case "bf16", "BF16":
		return BF16, nil
	case "q8_0", "Q8_0":
		return Q8_0, nil
	case "q4_0", "Q4_0":
		return Q4_0, nil
	}
	return 0, fmt.Errorf("gguf: unknown tensor type %q (want f32, f16, bf16, q8_0 or q4_0)", s)
}

// Supported reports whether this package reads t (and writes its bytes).
func (t TensorType) Supported() bool {
	return t.BlockBytes() > 0
}

// Writable reports whether Quantize converts float32 values to t (F32,
// F16, BF16, Q8_0, Q4_0): the types golem export and golem quantize write.
func (t TensorType) Writable() bool {
	switch t {
	case F32, F16, BF16, Q8_0, Q4_0:
		return true
	}
	return false
}

// KQuant reports whether t is a k-quant (Q2_K to Q6_K): super-blocks of
// QKK values, so a row must be a multiple of 256 values.
func (t TensorType) KQuant() bool { return t >= Q2_K && t <= Q6_K }

// BlockSize is the number of values in one block of the type: 256 for the
// k-quants, 32 for the other quantized types, 1 otherwise.
func (t TensorType) BlockSize() int {
	switch {
	case t.KQuant():
		return QKK
	case t == Q8_0 || t == Q4_0 || t == Q4_1 || t == Q5_0 || t == Q5_1 || t == IQ4_NL:
		return QK
	}
	return 1
}

// BlockBytes is the encoded size of one block of the type.
func (t TensorType) BlockBytes() int {
	switch t {
	case F32:
		return 4
	case F16, BF16:
		return 2
	case Q8_0:
		return 2 + QK
	case Q4_0:
		return 2 + QK/2
	case Q4_1:
		return 4 + QK/2 // d, m, nibbles
	case Q5_0:
		return 2 + 4 + QK/2 // d, the fifth bits, nibbles
	case Q5_1:
		return 4 + 4 + QK/2
	case Q2_K:
		return QKK/16 + QKK/4 + 4 // scales, 2-bit codes, d, dmin
	case Q3_K:
		return QKK/8 + QKK/4 + 12 + 2 // high bits, low 2 bits, scales, d
	case Q4_K:
		return 4 + 12 + QKK/2 // d, dmin, scales, nibbles
	case Q5_K:
		return 4 + 12 + QKK/8 + QKK/2 // d, dmin, scales, fifth bits, nibbles
	case Q6_K:
		return QKK/2 + QKK/4 + QKK/16 + 2 // low 4 bits, high 2 bits, scales, d
	case IQ4_NL:
		return 2 + QK/2 // d, nibbles indexing a table
	}
	return 0
}
