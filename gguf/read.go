package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"

	"github.com/golem-ml/golem/internal/regfile"
)

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	Name   string
	Dims   []int64    // ggml's ne: the innermost (contiguous) dimension first
	Type   TensorType //
	Offset int64      // from the start of the data section
	Size   int64      // bytes
}

// Elements returns the number of values of the tensor.
func (t *TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// File is an open GGUF file whose header has been validated.
type File struct {
	path       string
	ra         io.ReaderAt
	closer     io.Closer
	size       int64
	version    uint32
	kv         []KV
	keys       map[string]int
	tensors    []TensorInfo
	names      map[string]int
	alignment  int64
	dataOffset int64
}

// Open opens the GGUF file at path and validates its header, metadata and
// tensor infos against the file's size. Only regular files are opened.
func Open(path string) (*File, error) {
	fh, fi, err := regfile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f, err := parse(path, fh, fi.Size())
	if err != nil {
		fh.Close()
		return nil, err
	}
	f.closer = fh
	return f, nil
}

// Parse reads and validates a GGUF file from r, which holds size bytes;
// name is used in errors. Tensors are read from r.
func Parse(name string, r io.ReaderAt, size int64) (*File, error) {
	return parse(name, r, size)
}

// reader reads the header, counting bytes so that every length and count
// can be checked against what is left of the file before it is used.
type reader struct {
	r    *bufio.Reader
	pos  int64
	size int64
	err  error
	buf  [8]byte
}

var errShort = errors.New("the file ends inside the header")

func (r *reader) left() int64 { return r.size - r.pos }

func (r *reader) read(n int) []byte {
	if r.err != nil {
		return r.buf[:n]
	}
	if int64(n) > r.left() {
		r.err = errShort
		return r.buf[:n]
	}
	if _, err := io.ReadFull(r.r, r.buf[:n]); err != nil {
		r.err = errShort
	}
	r.pos += int64(n)
	return r.buf[:n]
}

func (r *reader) u8() uint8   { return r.read(1)[0] }
func (r *reader) u16() uint16 { return binary.LittleEndian.Uint16(r.read(2)) }
func (r *reader) u32() uint32 { return binary.LittleEndian.Uint32(r.read(4)) }
func (r *reader) u64() uint64 { return binary.LittleEndian.Uint64(r.read(8)) }

// count reads a uint64 count of items at least minSize bytes each and
// checks they fit in the rest of the file.
func (r *reader) count(what string, minSize int64) (int64, error) {
	n := r.u64()
	if r.err != nil {
		return 0, r.err
	}
	if n > uint64(r.left()/minSize) {
		return 0, fmt.Errorf("%s is %d, more than the %d bytes left in the file can hold", what, n, r.left())
	}
	return int64(n), nil
}

func (r *reader) str(what string) (string, error) {
	n, err := r.count(what+": string length", 1)
	if err != nil {
		return "", err
	}
	// Most strings are short tokens (a vocabulary is 50,000 to 150,000
	// of them): copied once, out of the reader's buffer.
	if n <= int64(r.r.Size()) {
		b, err := r.r.Peek(int(n))
		if err != nil {
			return "", errShort
		}
		s := string(b)
		r.r.Discard(int(n))
		r.pos += n
		return s, nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.r, b); err != nil {
		return "", errShort
	}
	r.pos += n
	return string(b), nil
}

func parse(name string, ra io.ReaderAt, size int64) (*File, error) {
	fail := func(format string, a ...any) (*File, error) {
		return nil, fmt.Errorf("gguf: %s: "+format, append([]any{name}, a...)...)
	}
	r := &reader{r: bufio.NewReaderSize(io.NewSectionReader(ra, 0, size), 1<<16), size: size}
	magic := r.read(4)
	if r.err != nil || string(magic) != Magic {
		return fail("not a GGUF file (magic %q, want %q)", magic, Magic)
	}
	f := &File{path: name, ra: ra, size: size, keys: map[string]int{}, names: map[string]int{}, alignment: DefaultAlignment}
	f.version = r.u32()
	if r.err == nil && f.version != Version {
		return fail("GGUF version %d, only version %d is supported", f.version, Version)
	}
	// A tensor info is at least 8 (name length) + 4 (dims) + 8 (a dim) + 4
	// (type) + 8 (offset) bytes; a key/value at least 8 + 4 + 1.
	nt, err := r.count("tensor count", 32)
	if err != nil {
		return fail("header: %v", err)
	}
	nkv, err := r.count("metadata key/value count", 13)
	if err != nil {
		return fail("header: %v", err)
	}
	f.kv = make([]KV, 0, nkv)
	for i := range nkv {
		key, err := r.str(fmt.Sprintf("metadata key %d", i))
		if err != nil {
			return fail("metadata key %d: %v", i, err)
		}
		if _, dup := f.keys[key]; dup {
			return fail("metadata key %q appears twice", key)
		}
		v, err := r.value(key)
		if err != nil {
			return fail("metadata %q: %v", key, err)
		}
		f.keys[key] = len(f.kv)
		f.kv = append(f.kv, KV{key, v})
	}
	if i, ok := f.keys["general.alignment"]; ok {
		a, isU32 := f.kv[i].Value.Any().(uint32)
		if !isU32 || a == 0 || a&(a-1) != 0 {
			return fail("metadata \"general.alignment\" is %v, want a uint32 power of two", f.kv[i].Value.Any())
		}
		f.alignment = int64(a)
	}
	f.tensors = make([]TensorInfo, 0, nt)
	for i := range nt {
		t, err := r.tensorInfo()
		if err != nil {
			if t.Name != "" {
				return fail("tensor %d %q: %v", i, t.Name, err)
			}
			return fail("tensor %d: %v", i, err)
		}
		if _, dup := f.names[t.Name]; dup {
			return fail("tensor %q appears twice", t.Name)
		}
		f.names[t.Name] = len(f.tensors)
		f.tensors = append(f.tensors, t)
	}
	if r.err != nil {
		return fail("%v", r.err)
	}
	f.dataOffset = pad(r.pos, f.alignment)
	if err := f.checkData(); err != nil {
		return fail("%v", err)
	}
	return f, nil
}

// value reads a metadata value of the type that precedes it.
func (r *reader) value(key string) (Value, error) {
	t := ValueType(r.u32())
	if r.err != nil {
		return Value{}, r.err
	}
	if t == TypeArray {
		et := ValueType(r.u32())
		if r.err != nil {
			return Value{}, r.err
		}
		minSize := int64(et.size())
		switch {
		case et == TypeString:
			minSize = 8
		case et == TypeArray:
			return Value{}, errors.New("arrays of arrays are not supported")
		case minSize == 0:
			return Value{}, fmt.Errorf("unknown array element type %d", uint32(et))
		}
		n, err := r.count("array length", minSize)
		if err != nil {
			return Value{}, err
		}
		return r.array(et, int(n))
	}
	if t.size() == 0 && t != TypeString {
		return Value{}, fmt.Errorf("unknown value type %d", uint32(t))
	}
	return r.scalar(t)
}

func (r *reader) scalar(t ValueType) (Value, error) {
	var v any
	switch t {
	case TypeUint8:
		v = r.u8()
	case TypeInt8:
		v = int8(r.u8())
	case TypeUint16:
		v = r.u16()
	case TypeInt16:
		v = int16(r.u16())
	case TypeUint32:
		v = r.u32()
	case TypeInt32:
		v = int32(r.u32())
	case TypeFloat32:
		v = math.Float32frombits(r.u32())
	case TypeBool:
		b := r.u8()
		if r.err == nil && b > 1 {
			return Value{}, fmt.Errorf("bool is %d, want 0 or 1", b)
		}
		v = b == 1
	case TypeString:
		s, err := r.str("value")
		if err != nil {
			return Value{}, err
		}
		v = s
	case TypeUint64:
		v = r.u64()
	case TypeInt64:
		v = int64(r.u64())
	case TypeFloat64:
		v = math.Float64frombits(r.u64())
	}
	return Value{v}, r.err
}

func readArray[T Scalar](r *reader, n int, t ValueType) (Value, error) {
	out := make([]T, n)
	for i := range out {
		v, err := r.scalar(t)
		if err != nil {
			return Value{}, fmt.Errorf("element %d: %w", i, err)
		}
		out[i] = v.v.(T)
	}
	return Value{out}, nil
}

func (r *reader) array(t ValueType, n int) (Value, error) {
	switch t {
	case TypeUint8:
		return readArray[uint8](r, n, t)
	case TypeInt8:
		return readArray[int8](r, n, t)
	case TypeUint16:
		return readArray[uint16](r, n, t)
	case TypeInt16:
		return readArray[int16](r, n, t)
	case TypeUint32:
		return readArray[uint32](r, n, t)
	case TypeInt32:
		return readArray[int32](r, n, t)
	case TypeFloat32:
		return readArray[float32](r, n, t)
	case TypeBool:
		return readArray[bool](r, n, t)
	case TypeString: // (not boxed in a Value each, as readArray does)
		out := make([]string, n)
		for i := range out {
			s, err := r.str("value")
			if err != nil {
				return Value{}, fmt.Errorf("element %d: %w", i, err)
			}
			out[i] = s
		}
		return Value{out}, nil
	case TypeUint64:
		return readArray[uint64](r, n, t)
	case TypeInt64:
		return readArray[int64](r, n, t)
	default:
		return readArray[float64](r, n, t)
	}
}

// readable lists the tensor types golem reads, for errors.
const readable = "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and IQ4_NL"

func (r *reader) tensorInfo() (TensorInfo, error) {
	var t TensorInfo
	name, err := r.str("name")
	if err != nil {
		return t, err
	}
	t.Name = name
	if len(name) > MaxNameLen {
		return t, fmt.Errorf("name is %d bytes, more than ggml's %d", len(name), MaxNameLen)
	}
	nd := r.u32()
	if r.err != nil {
		return t, r.err
	}
	if nd < 1 || nd > MaxDims {
		return t, fmt.Errorf("%d dimensions, want 1 to %d", nd, MaxDims)
	}
	t.Dims = make([]int64, nd)
	n := uint64(1)
	for i := range t.Dims {
		d := r.u64()
		t.Dims[i] = int64(d)
		hi, lo := bits.Mul64(n, d)
		if r.err == nil && (hi != 0 || lo > math.MaxInt64) {
			return t, fmt.Errorf("dimensions %v...: too many elements", t.Dims[:i+1])
		}
		n = lo
	}
	t.Type = TensorType(r.u32())
	off := r.u64()
	if r.err != nil {
		return t, r.err
	}
	if !t.Type.Supported() {
		return t, fmt.Errorf("tensor type %s is not supported (golem reads %s)", t.Type, readable)
	}
	if bs := int64(t.Type.BlockSize()); t.Dims[0]%bs != 0 {
		return t, fmt.Errorf("first dimension (row length) %d is not a multiple of the %s block size %d", t.Dims[0], t.Type, bs)
	}
	t.Size, err = TensorBytes(t.Type, int64(n))
	if err != nil {
		return t, err
	}
	if off > math.MaxInt64 {
		return t, fmt.Errorf("offset %d is beyond any file", off)
	}
	t.Offset = int64(off)
	return t, nil
}

// checkData checks every tensor's data is aligned, inside the file and
// apart from the others.
func (f *File) checkData() error {
	avail := f.size - f.dataOffset
	order := make([]int, len(f.tensors))
	for i := range order {
		order[i] = i
	}
	for _, t := range f.tensors {
		if t.Offset%f.alignment != 0 {
			return fmt.Errorf("tensor %q: data offset %d is not a multiple of the alignment %d", t.Name, t.Offset, f.alignment)
		}
		if t.Offset > avail || t.Size > avail-t.Offset {
			return fmt.Errorf("tensor %q: data [%d, %d) ends beyond the file's %d data bytes (truncated?)", t.Name, t.Offset, t.Offset+min(t.Size, math.MaxInt64-t.Offset), max(avail, 0))
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := f.tensors[a].Offset - f.tensors[b].Offset; c != 0 {
			if c < 0 {
				return -1
			}
			return 1
		}
		return a - b
	})
	for i := 1; i < len(order); i++ {
		p, q := &f.tensors[order[i-1]], &f.tensors[order[i]]
		if p.Offset+p.Size > q.Offset && p.Size > 0 && q.Size > 0 {
			return fmt.Errorf("tensors %q and %q overlap (data [%d, %d) and [%d, %d))", p.Name, q.Name, p.Offset, p.Offset+p.Size, q.Offset, q.Offset+q.Size)
		}
	}
	return nil
}

func pad(n, align int64) int64 { return (n + align - 1) / align * align }

// Path returns the path (or name) the file was opened from.
func (f *File) Path() string { return f.path }

// Alignment returns the data alignment (general.alignment, default 32).
func (f *File) Alignment() int { return int(f.alignment) }

// DataOffset returns where the data section starts in the file.
func (f *File) DataOffset() int64 { return f.dataOffset }

// KV returns the metadata in file order.
func (f *File) KV() []KV { return slices.Clone(f.kv) }

// Get returns the metadata value of key.
func (f *File) Get(key string) (Value, bool) {
	i, ok := f.keys[key]
	if !ok {
		return Value{}, false
	}
	return f.kv[i].Value, true
}

// Tensors returns the tensor infos in file order.
func (f *File) Tensors() []TensorInfo { return slices.Clone(f.tensors) }

// Tensor returns the info of the named tensor.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.names[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.tensors[i], true
}

// Raw returns the named tensor's bytes.
func (f *File) Raw(name string) ([]byte, TensorInfo, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, t, fmt.Errorf("gguf: %s: no tensor %q", f.path, name)
	}
	b := make([]byte, t.Size)
	if n, err := f.ra.ReadAt(b, f.dataOffset+t.Offset); n < len(b) {
		if err == io.EOF || err == nil {
			err = errors.New("the file ends inside the tensor's data (truncated since it was opened?)")
		}
		return nil, t, fmt.Errorf("gguf: %s: tensor %q: %w", f.path, name, err)
	}
	return b, t, nil
}

// Float32 returns the named tensor's values, dequantized.
func (f *File) Float32(name string) ([]float32, TensorInfo, error) {
	b, t, err := f.Raw(name)
	if err != nil {
		return nil, t, err
	}
	out := make([]float32, t.Elements())
	if err := Dequantize(t.Type, b, out); err != nil {
		return nil, t, fmt.Errorf("gguf: %s: tensor %q: %w", f.path, name, err)
	}
	return out, t, nil
}

// Close closes the file.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	return f.closer.Close()
}
