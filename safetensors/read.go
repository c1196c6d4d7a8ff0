package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/golem-ml/golem/internal/regfile"
)

// maxHeaderSize bounds the JSON header, as the reference implementation does.
const maxHeaderSize = 100_000_000

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	DType string // "F32", "BF16", "I64", ...
	Shape []int  // empty for a scalar
}

// entry is a validated header entry; begin and end are file offsets.
type entry struct {
	dtype      string
	shape      []int
	begin, end int64
}

func (e *entry) info() TensorInfo {
	return TensorInfo{DType: e.dtype, Shape: slices.Clone(e.shape)}
}

// File is an open safetensors file. Tensors are read from it by offset
// (pread), not through a shared memory map: a file truncated or rewritten
// while it is read gives an error (see Changed), never a SIGBUS. Its
// methods may be called from several goroutines at once, but not
// concurrently with Close.
type File struct {
	path    string
	r       io.ReaderAt // nil once closed
	closer  io.Closer   // the open file; nil for a file parsed from memory
	stat    os.FileInfo // of the file when it was opened; nil if from memory
	tensors map[string]*entry
	names   []string
	meta    map[string]string
}

// Open opens the safetensors file at path and validates its header. Only
// the header is read; tensors are read when asked for. The file must be
// closed with Close. A path that is not a regular file (a FIFO, a folder)
// is refused without blocking.
func Open(path string) (*File, error) {
	fh, st, err := regfile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := parseFrom(path, fh, st.Size())
	if err != nil {
		fh.Close()
		return nil, err
	}
	f.closer, f.stat = fh, st
	return f, nil
}

// parse validates buf, the whole content of the file called name.
func parse(name string, buf []byte) (*File, error) {
	return parseFrom(name, bytes.NewReader(buf), int64(len(buf)))
}

// parseFrom reads and validates the header of r, a file of size bytes
// called name.
func parseFrom(name string, r io.ReaderAt, size int64) (*File, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("safetensors: %s: %s", name, fmt.Sprintf(format, args...))
	}
	if size < 8 {
		return nil, fail("file is %d bytes, shorter than the 8-byte header length", size)
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fail("reading the header length: %v", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > maxHeaderSize {
		return nil, fail("header length %d exceeds the limit of %d bytes", n, maxHeaderSize)
	}
	if n > uint64(size-8) {
		return nil, fail("header length %d exceeds the %d bytes that follow it (truncated file?)", n, size-8)
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, fail("reading the %d-byte header: %v (truncated while read?)", n, err)
	}
	base := 8 + int64(n)
	dataLen := size - base
	if !utf8.Valid(hdr) {
		return nil, fail("header is not valid UTF-8")
	}

	f := &File{path: name, r: r, tensors: map[string]*entry{}}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	jsonErr := func(err error) error {
		return fail("header byte %d: invalid JSON: %v", dec.InputOffset(), err)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fail("header is not a JSON object")
	}
	seenMeta := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonErr(err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fail("header byte %d: expected a tensor name", dec.InputOffset())
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, jsonErr(err)
		}
		if key == metaKey {
			if seenMeta {
				return nil, fail("header: duplicate %s", metaKey)
			}
			seenMeta = true
			if err := json.Unmarshal(raw, &f.meta); err != nil {
				return nil, fail("header: %s must map strings to strings: %v", metaKey, err)
			}
			continue
		}
		if f.tensors[key] != nil {
			return nil, fail("header: duplicate tensor %q", key)
		}
		e, err := parseEntry(raw, dataLen)
		if err != nil {
			return nil, fail("tensor %q: %v", key, err)
		}
		e.begin += base
		e.end += base
		f.tensors[key] = e
		f.names = append(f.names, key)
	}
	if _, err := dec.Token(); err != nil {
		return nil, jsonErr(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fail("header byte %d: unexpected data after the JSON object", dec.InputOffset())
	}

	// The tensors must tile the data area exactly, in offset order.
	byOffset := slices.Clone(f.names)
	sort.Slice(byOffset, func(i, j int) bool {
		a, b := f.tensors[byOffset[i]], f.tensors[byOffset[j]]
		if a.begin != b.begin {
			return a.begin < b.begin
		}
		return a.end < b.end
	})
	pos, prev := base, ""
	for _, name := range byOffset {
		e := f.tensors[name]
		switch {
		case e.begin < pos:
			return nil, fail("tensor %q: data_offsets [%d,%d] overlap tensor %q", name, e.begin-base, e.end-base, prev)
		case e.begin > pos:
			return nil, fail("tensor %q: data_offsets [%d,%d] leave a gap after byte %d", name, e.begin-base, e.end-base, pos-base)
		}
		pos, prev = e.end, name
	}
	if pos != size {
		return nil, fail("tensors cover %d bytes but the data area holds %d (trailing bytes)", pos-base, dataLen)
	}
	sort.Strings(f.names)
	return f, nil
}

// parseEntry validates one tensor's header entry against a data area of
// dataLen bytes. Offsets in the result are relative to the data area.
func parseEntry(raw json.RawMessage, dataLen int64) (*entry, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, errors.New(`want an object {"dtype","shape","data_offsets"}`)
	}
	for k := range fields {
		if k != "dtype" && k != "shape" && k != "data_offsets" {
			return nil, fmt.Errorf("unknown field %q", k)
		}
	}
	var (
		dtype   string
		shape   []int64
		offsets []uint64
	)
	for _, fld := range []struct {
		name string
		dst  any
	}{{"dtype", &dtype}, {"shape", &shape}, {"data_offsets", &offsets}} {
		v, ok := fields[fld.name]
		if !ok || string(v) == "null" {
			return nil, fmt.Errorf("missing %q", fld.name)
		}
		if err := json.Unmarshal(v, fld.dst); err != nil {
			return nil, fmt.Errorf("%q: %v", fld.name, err)
		}
	}
	size := DTypeSize(dtype)
	if size == 0 {
		return nil, fmt.Errorf("unknown dtype %q", dtype)
	}
	e := &entry{dtype: dtype, shape: make([]int, len(shape))}
	count := uint64(1)
	for i, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("shape %v: negative dimension", shape)
		}
		if uint64(d) > math.MaxInt || (d != 0 && count > math.MaxInt/uint64(d)) {
			return nil, fmt.Errorf("shape %v: element count overflows", shape)
		}
		e.shape[i] = int(d)
		count *= uint64(d)
	}
	if count > math.MaxInt/uint64(size) {
		return nil, fmt.Errorf("shape %v: byte size overflows", shape)
	}
	nbytes := count * uint64(size)
	if len(offsets) != 2 {
		return nil, fmt.Errorf("data_offsets %v: want [begin, end]", offsets)
	}
	b, end := offsets[0], offsets[1]
	if b > end || end > uint64(dataLen) {
		return nil, fmt.Errorf("data_offsets [%d,%d] outside the data area of %d bytes (truncated file?)", b, end, dataLen)
	}
	if end-b != nbytes {
		return nil, fmt.Errorf("data_offsets [%d,%d] span %d bytes but %s%v needs %d", b, end, end-b, dtype, shape, nbytes)
	}
	e.begin, e.end = int64(b), int64(end)
	return e, nil
}

// Path returns the path the file was opened from.
func (f *File) Path() string { return f.path }

// Names returns the names of the file's tensors, sorted.
func (f *File) Names() []string { return slices.Clone(f.names) }

// Info returns the dtype and shape of the named tensor.
func (f *File) Info(name string) (TensorInfo, bool) {
	e, ok := f.tensors[name]
	if !ok {
		return TensorInfo{}, false
	}
	return e.info(), true
}

// Metadata returns a copy of the header's __metadata__ (nil when absent).
func (f *File) Metadata() map[string]string {
	if f.meta == nil {
		return nil
	}
	m := make(map[string]string, len(f.meta))
	for k, v := range f.meta {
		m[k] = v
	}
	return m
}

func (f *File) lookup(name string) (*entry, error) {
	if f.r == nil {
		return nil, fmt.Errorf("safetensors: %s: file is closed", f.path)
	}
	e, ok := f.tensors[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: %s: no tensor %q", f.path, name)
	}
	return e, nil
}

// readAt fills b with the bytes of e from offset off of its data. A short
// read means the file shrank after it was opened.
func (f *File) readAt(name string, e *entry, b []byte, off int64) error {
	if len(b) == 0 {
		return nil
	}
	if _, err := f.r.ReadAt(b, e.begin+off); err != nil {
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("file truncated while being read (rewritten in place?)")
		}
		return fmt.Errorf("safetensors: %s: tensor %q: bytes [%d,%d): %w", f.path, name, e.begin+off, e.begin+off+int64(len(b)), err)
	}
	return nil
}

// raw reads e's bytes into a new slice.
func (f *File) raw(name string, e *entry) ([]byte, error) {
	b := make([]byte, e.end-e.begin)
	if err := f.readAt(name, e, b, 0); err != nil {
		return nil, err
	}
	return b, nil
}

// Raw returns a copy of the named tensor's bytes (little-endian,
// row-major) and its info.
func (f *File) Raw(name string) ([]byte, TensorInfo, error) {
	e, err := f.lookup(name)
	if err != nil {
		return nil, TensorInfo{}, err
	}
	b, err := f.raw(name, e)
	if err != nil {
		return nil, TensorInfo{}, err
	}
	return b, e.info(), nil
}

// Float32 returns the named floating-point tensor (F32, F16, BF16 or F64)
// converted to a new float32 slice, and its shape.
func (f *File) Float32(name string) ([]float32, []int, error) {
	e, err := f.lookup(name)
	if err != nil {
		return nil, nil, err
	}
	out := make([]float32, (e.end-e.begin)/int64(DTypeSize(e.dtype)))
	if err := f.float32Into(name, e, out); err != nil {
		return nil, nil, err
	}
	return out, slices.Clone(e.shape), nil
}

// Float32Into converts the named floating-point tensor into dst, which must
// have exactly as many elements as the tensor.
func (f *File) Float32Into(name string, dst []float32) error {
	e, err := f.lookup(name)
	if err != nil {
		return err
	}
	if n := (e.end - e.begin) / int64(DTypeSize(e.dtype)); n != int64(len(dst)) {
		return fmt.Errorf("safetensors: %s: tensor %q has %d elements %v, destination has %d", f.path, name, n, e.shape, len(dst))
	}
	return f.float32Into(name, e, dst)
}

// chunkBytes is how much of a tensor that needs converting is read at once.
const chunkBytes = 1 << 20

var chunkPool = sync.Pool{New: func() any { return new([chunkBytes]byte) }}

// float32Into reads e into out (its element count): float32 straight into
// out's memory, other dtypes a chunk at a time through a pooled buffer.
func (f *File) float32Into(name string, e *entry, out []float32) error {
	if !isFloat(e.dtype) {
		return fmt.Errorf("safetensors: %s: tensor %q: dtype %s is not a floating-point type", f.path, name, e.dtype)
	}
	if len(out) == 0 {
		return nil
	}
	if e.dtype == F32 && littleEndian {
		return f.readAt(name, e, unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), 4*len(out)), 0)
	}
	size := DTypeSize(e.dtype)
	buf := chunkPool.Get().(*[chunkBytes]byte)
	defer chunkPool.Put(buf)
	per := chunkBytes / size
	for i := 0; i < len(out); i += per {
		j := min(i+per, len(out))
		b := buf[:(j-i)*size]
		if err := f.readAt(name, e, b, int64(i*size)); err != nil {
			return err
		}
		if err := decodeFloat32(out[i:j], e.dtype, b); err != nil {
			return fmt.Errorf("safetensors: %s: tensor %q: %w", f.path, name, err)
		}
	}
	return nil
}

// Int64 returns the named integer or boolean tensor converted to a new int64
// slice, and its shape.
func (f *File) Int64(name string) ([]int64, []int, error) {
	e, err := f.lookup(name)
	if err != nil {
		return nil, nil, err
	}
	b, err := f.raw(name, e)
	if err != nil {
		return nil, nil, err
	}
	out := make([]int64, len(b)/DTypeSize(e.dtype))
	if err := decodeInt64(out, e.dtype, b); err != nil {
		return nil, nil, fmt.Errorf("safetensors: %s: tensor %q: %w", f.path, name, err)
	}
	return out, slices.Clone(e.shape), nil
}

// Changed returns an error when the file at Path is no longer the one
// opened, as it was then: another file renamed over it, or the same file
// rewritten (its size or modification time differ). Tensors read before
// Changed returns nil are the file as it was opened, provided the file's
// modification time was already in the past when it was opened (a write
// within the filesystem's timestamp granularity of the previous one may
// not move it). It returns nil for a file parsed from memory.
func (f *File) Changed() error {
	if f.stat == nil {
		return nil
	}
	now, err := os.Stat(f.path)
	if err != nil {
		return fmt.Errorf("safetensors: %s: changed while being read: %w", f.path, err)
	}
	switch {
	case !os.SameFile(now, f.stat):
		return fmt.Errorf("safetensors: %s: replaced by another file while being read", f.path)
	case now.Size() != f.stat.Size() || !now.ModTime().Equal(f.stat.ModTime()):
		return fmt.Errorf("safetensors: %s: rewritten while being read (%d bytes modified %s, now %d bytes modified %s)",
			f.path, f.stat.Size(), f.stat.ModTime().Format(time.RFC3339Nano), now.Size(), now.ModTime().Format(time.RFC3339Nano))
	}
	return nil
}

// ModTime returns the file's modification time when it was opened (zero
// for a file parsed from memory).
func (f *File) ModTime() time.Time {
	if f.stat == nil {
		return time.Time{}
	}
	return f.stat.ModTime()
}

// Close closes the file.
func (f *File) Close() error {
	if f.r == nil {
		return nil
	}
	f.r = nil
	if f.closer == nil {
		return nil
	}
	err := f.closer.Close()
	f.closer = nil
	return err
}

// littleEndian reports whether float32 memory matches the file's byte order.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// f16Table maps every half-precision code to its float32 value.
var f16Table = sync.OnceValue(func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = Float16ToFloat32(uint16(i))
	}
	return &t
})

// decodeFloat32 converts little-endian floats of dtype in b into out.
func decodeFloat32(out []float32, dtype string, b []byte) error {
	le := binary.LittleEndian
	switch dtype {
	case F32:
		if littleEndian && len(out) > 0 {
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), 4*len(out)), b)
			return nil
		}
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
	case F16:
		table := f16Table()
		for i := range out {
			out[i] = table[le.Uint16(b[2*i:])]
		}
	case BF16:
		for i := range out {
			out[i] = BFloat16ToFloat32(le.Uint16(b[2*i:]))
		}
	case F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(le.Uint64(b[8*i:])))
		}
	default:
		return fmt.Errorf("dtype %s is not a floating-point type", dtype)
	}
	return nil
}

// decodeInt64 converts little-endian integers of dtype in b into out.
func decodeInt64(out []int64, dtype string, b []byte) error {
	le := binary.LittleEndian
	switch dtype {
	case I64:
		for i := range out {
			out[i] = int64(le.Uint64(b[8*i:]))
		}
	case U64:
		for i := range out {
			v := le.Uint64(b[8*i:])
			if v > math.MaxInt64 {
				return fmt.Errorf("element %d: U64 value %d overflows int64", i, v)
			}
			out[i] = int64(v)
		}
	case I32:
		for i := range out {
			out[i] = int64(int32(le.Uint32(b[4*i:])))
		}
	case U32:
		for i := range out {
			out[i] = int64(le.Uint32(b[4*i:]))
		}
	case I16:
		for i := range out {
			out[i] = int64(int16(le.Uint16(b[2*i:])))
		}
	case U16:
		for i := range out {
			out[i] = int64(le.Uint16(b[2*i:]))
		}
	case I8:
		for i := range out {
			out[i] = int64(int8(b[i]))
		}
	case U8, BOOL:
		for i := range out {
			out[i] = int64(b[i])
		}
	default:
		return fmt.Errorf("dtype %s is not an integer type", dtype)
	}
	return nil
}
