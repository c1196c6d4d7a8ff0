package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/golem-ml/golem/internal/atomicfile"
)

// Tensor is a tensor to write. Data returns its bytes in Type's encoding
// (see Quantize); it is called once, when the tensor's turn comes, so that a
// large model is never whole in memory.
type Tensor struct {
	Name string
	Dims []int64 // ggml's ne: the innermost (contiguous) dimension first
	Type TensorType
	Data func() ([]byte, error)
}

// Write writes a GGUF file to path atomically: the metadata kv in order
// (general.alignment, if present, must be a uint32 power of two), then the
// tensor infos and data in order, each tensor's data padded to the
// alignment as llama.cpp requires.
func Write(path string, kv []KV, tensors []Tensor) error {
	err := atomicfile.Write(path, func(w io.Writer) error { return Encode(w, kv, tensors) })
	if err != nil {
		return fmt.Errorf("gguf: %s: %w", path, err)
	}
	return nil
}

type writer struct {
	w   *bufio.Writer
	err error
	pos int64
}

func (w *writer) bytes(b []byte) {
	if w.err == nil {
		_, w.err = w.w.Write(b)
		w.pos += int64(len(b))
	}
}

func (w *writer) u32(v uint32) { w.bytes(binary.LittleEndian.AppendUint32(nil, v)) }
func (w *writer) u64(v uint64) { w.bytes(binary.LittleEndian.AppendUint64(nil, v)) }
func (w *writer) str(s string) { w.u64(uint64(len(s))); w.bytes([]byte(s)) }

// Encode writes a GGUF file to w (see Write).
func Encode(out io.Writer, kv []KV, tensors []Tensor) error {
	align := int64(DefaultAlignment)
	keys := map[string]bool{}
	for _, e := range kv {
		if keys[e.Key] {
			return fmt.Errorf("metadata key %q twice", e.Key)
		}
		keys[e.Key] = true
		if t, et := e.Value.Type(); t > TypeFloat64 || et == TypeArray {
			return fmt.Errorf("metadata %q: %T is not a GGUF value", e.Key, e.Value.Any())
		}
		if e.Key == "general.alignment" {
			a, ok := e.Value.Any().(uint32)
			if !ok || a == 0 || a&(a-1) != 0 {
				return fmt.Errorf("metadata \"general.alignment\" is %v, want a uint32 power of two", e.Value.Any())
			}
			align = int64(a)
		}
	}
	offsets := make([]int64, len(tensors))
	sizes := make([]int64, len(tensors))
	var off int64
	names := map[string]bool{}
	for i, t := range tensors {
		switch {
		case names[t.Name]:
			return fmt.Errorf("tensor %q twice", t.Name)
		case t.Name == "" || len(t.Name) > MaxNameLen:
			return fmt.Errorf("tensor %q: name must be 1 to %d bytes", t.Name, MaxNameLen)
		case len(t.Dims) < 1 || len(t.Dims) > MaxDims:
			return fmt.Errorf("tensor %q: %d dimensions, want 1 to %d", t.Name, len(t.Dims), MaxDims)
		case t.Dims[0]%int64(t.Type.BlockSize()) != 0:
			return fmt.Errorf("tensor %q: first dimension %d is not a multiple of the %s block size %d", t.Name, t.Dims[0], t.Type, t.Type.BlockSize())
		}
		names[t.Name] = true
		n := int64(1)
		for _, d := range t.Dims {
			if d < 0 || (d > 0 && n > math.MaxInt64/d) {
				return fmt.Errorf("tensor %q: bad dimensions %v", t.Name, t.Dims)
			}
			n *= d
		}
		size, err := TensorBytes(t.Type, n)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		offsets[i], sizes[i] = off, size
		off += pad(size, align)
	}

	w := &writer{w: bufio.NewWriterSize(out, 1<<20)}
	w.bytes([]byte(Magic))
	w.u32(Version)
	w.u64(uint64(len(tensors)))
	w.u64(uint64(len(kv)))
	for _, e := range kv {
		w.str(e.Key)
		w.value(e.Value)
	}
	for i, t := range tensors {
		w.str(t.Name)
		w.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			w.u64(uint64(d))
		}
		w.u32(uint32(t.Type))
		w.u64(uint64(offsets[i]))
	}
	zeros := make([]byte, align)
	w.bytes(zeros[:pad(w.pos, align)-w.pos])
	for i, t := range tensors {
		if w.err != nil {
			break
		}
		b, err := t.Data()
		if err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if int64(len(b)) != sizes[i] {
			return fmt.Errorf("tensor %q: %d bytes of data, want %d for %v %s", t.Name, len(b), sizes[i], t.Dims, t.Type)
		}
		w.bytes(b)
		w.bytes(zeros[:pad(sizes[i], align)-sizes[i]])
	}
	if w.err == nil {
		w.err = w.w.Flush()
	}
	return w.err
}

func (w *writer) value(v Value) {
	t, et := v.Type()
	w.u32(uint32(t))
	if t != TypeArray {
		w.scalar(v.v)
		return
	}
	w.u32(uint32(et))
	switch a := v.v.(type) {
	case []uint8:
		writeArray(w, a)
	case []int8:
		writeArray(w, a)
	case []uint16:
		writeArray(w, a)
	case []int16:
		writeArray(w, a)
	case []uint32:
		writeArray(w, a)
	case []int32:
		writeArray(w, a)
	case []float32:
		writeArray(w, a)
	case []bool:
		writeArray(w, a)
	case []string:
		writeArray(w, a)
	case []uint64:
		writeArray(w, a)
	case []int64:
		writeArray(w, a)
	case []float64:
		writeArray(w, a)
	}
}

func writeArray[T Scalar](w *writer, a []T) {
	w.u64(uint64(len(a)))
	for _, x := range a {
		w.scalar(x)
	}
}

func (w *writer) scalar(v any) {
	switch x := v.(type) {
	case uint8:
		w.bytes([]byte{x})
	case int8:
		w.bytes([]byte{byte(x)})
	case uint16:
		w.bytes(binary.LittleEndian.AppendUint16(nil, x))
	case int16:
		w.bytes(binary.LittleEndian.AppendUint16(nil, uint16(x)))
	case uint32:
		w.u32(x)
	case int32:
		w.u32(uint32(x))
	case float32:
		w.u32(math.Float32bits(x))
	case bool:
		b := byte(0)
		if x {
			b = 1
		}
		w.bytes([]byte{b})
	case string:
		w.str(x)
	case uint64:
		w.u64(x)
	case int64:
		w.u64(uint64(x))
	case float64:
		w.u64(math.Float64bits(x))
	}
}
