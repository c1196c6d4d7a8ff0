package safetensors

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/golem-ml/golem/internal/atomicfile"
)

// Tensor is a tensor to write. Its elements come from exactly one of F32, I64
// or Data (none for a tensor with no elements):
//   - F32 is converted to DType, which must be F32 (the default), F16, BF16 or F64;
//   - I64 is converted to DType, which must be an integer type or BOOL (I64 is
//     the default), and every value must fit it;
//   - Data holds the raw little-endian bytes of DType, row-major.
type Tensor struct {
	Name  string
	DType string
	Shape []int
	F32   []float32
	I64   []int64
	Data  []byte
}

// Bytes returns the size of t's data in the file, or -1 if t's dtype or shape
// is invalid.
func (t *Tensor) Bytes() int64 {
	n, err := t.byteSize(t.dtype())
	if err != nil {
		return -1
	}
	return n
}

func (t *Tensor) dtype() string {
	switch {
	case t.DType != "":
		return t.DType
	case t.I64 != nil:
		return I64
	}
	return F32
}

// byteSize checks the shape and returns the data size in bytes.
func (t *Tensor) byteSize(dtype string) (int64, error) {
	size := DTypeSize(dtype)
	if size == 0 {
		return 0, fmt.Errorf("unknown dtype %q", dtype)
	}
	count := int64(1)
	for _, d := range t.Shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v: negative dimension", t.Shape)
		}
		if d != 0 && count > math.MaxInt64/int64(size)/int64(d) {
			return 0, fmt.Errorf("shape %v: size overflows", t.Shape)
		}
		count *= int64(d)
	}
	return count * int64(size), nil
}

// check validates t and returns its dtype and data size in bytes.
func (t *Tensor) check() (string, int64, error) {
	if !utf8.ValidString(t.Name) {
		return "", 0, fmt.Errorf("name is not valid UTF-8")
	}
	if t.Name == metaKey {
		return "", 0, fmt.Errorf("name %s is reserved", metaKey)
	}
	dtype := t.dtype()
	nbytes, err := t.byteSize(dtype)
	if err != nil {
		return "", 0, err
	}
	count := nbytes / int64(DTypeSize(dtype))
	sources := 0
	for _, set := range []bool{t.F32 != nil, t.I64 != nil, t.Data != nil} {
		if set {
			sources++
		}
	}
	switch {
	case sources > 1:
		return "", 0, fmt.Errorf("more than one of F32, I64 and Data is set")
	case t.Data != nil:
		if int64(len(t.Data)) != nbytes {
			return "", 0, fmt.Errorf("Data holds %d bytes, %s%v needs %d", len(t.Data), dtype, t.Shape, nbytes)
		}
	case t.F32 != nil:
		if !isFloat(dtype) {
			return "", 0, fmt.Errorf("F32 values cannot be written as %s", dtype)
		}
		if int64(len(t.F32)) != count {
			return "", 0, fmt.Errorf("F32 holds %d values, shape %v needs %d", len(t.F32), t.Shape, count)
		}
	case t.I64 != nil:
		if !isInt(dtype) {
			return "", 0, fmt.Errorf("I64 values cannot be written as %s", dtype)
		}
		if int64(len(t.I64)) != count {
			return "", 0, fmt.Errorf("I64 holds %d values, shape %v needs %d", len(t.I64), t.Shape, count)
		}
		lo, hi := intRange(dtype)
		for i, v := range t.I64 {
			if v < lo || v > hi {
				return "", 0, fmt.Errorf("I64 element %d = %d does not fit %s", i, v, dtype)
			}
		}
	case count != 0:
		return "", 0, fmt.Errorf("no data (F32, I64 or Data) for %d elements", count)
	}
	return dtype, nbytes, nil
}

func intRange(dtype string) (lo, hi int64) {
	switch dtype {
	case BOOL:
		return 0, 1
	case U8:
		return 0, math.MaxUint8
	case I8:
		return math.MinInt8, math.MaxInt8
	case I16:
		return math.MinInt16, math.MaxInt16
	case U16:
		return 0, math.MaxUint16
	case I32:
		return math.MinInt32, math.MaxInt32
	case U32:
		return 0, math.MaxUint32
	case U64:
		return 0, math.MaxInt64
	}
	return math.MinInt64, math.MaxInt64
}

// layout is a tensor placed in a file.
type layout struct {
	t          *Tensor
	dtype      string
	begin, end int64
}

// plan validates tensors and orders them as the reference implementation
// does: by descending dtype (so wider elements come first and stay aligned),
// then by name.
func plan(tensors []Tensor) ([]layout, error) {
	ls := make([]layout, len(tensors))
	seen := make(map[string]bool, len(tensors))
	for i := range tensors {
		t := &tensors[i]
		if seen[t.Name] {
			return nil, fmt.Errorf("tensor %q: duplicate name", t.Name)
		}
		seen[t.Name] = true
		dtype, n, err := t.check()
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		ls[i] = layout{t: t, dtype: dtype, end: n}
	}
	sort.Slice(ls, func(i, j int) bool {
		ri, rj := dtypeInfo[ls[i].dtype].rank, dtypeInfo[ls[j].dtype].rank
		if ri != rj {
			return ri > rj
		}
		return ls[i].t.Name < ls[j].t.Name
	})
	var off int64
	for i := range ls {
		ls[i].begin, ls[i].end = off, off+ls[i].end
		off = ls[i].end
	}
	return ls, nil
}

// header returns the JSON header, padded with spaces to a multiple of 8 bytes,
// byte for byte as the reference implementation writes it (compact JSON,
// __metadata__ first, tensors in data order). Metadata keys are sorted.
func header(ls []layout, meta map[string]string) ([]byte, error) {
	b := []byte{'{'}
	if meta != nil {
		keys := make([]string, 0, len(meta))
		for k, v := range meta {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return nil, fmt.Errorf("metadata %q: not valid UTF-8", k)
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, `"__metadata__":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, meta[k])
		}
		b = append(b, '}')
	}
	for i, l := range ls {
		if i > 0 || meta != nil {
			b = append(b, ',')
		}
		b = appendJSONString(b, l.t.Name)
		b = append(b, `:{"dtype":"`...)
		b = append(b, l.dtype...)
		b = append(b, `","shape":[`...)
		for j, d := range l.t.Shape {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(d), 10)
		}
		b = append(b, `],"data_offsets":[`...)
		b = strconv.AppendInt(b, l.begin, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, l.end, 10)
		b = append(b, "]}"...)
	}
	b = append(b, '}')
	for len(b)%8 != 0 {
		b = append(b, ' ')
	}
	if len(b) > maxHeaderSize {
		return nil, fmt.Errorf("header of %d bytes exceeds the limit of %d", len(b), maxHeaderSize)
	}
	return b, nil
}

// appendJSONString appends s as a JSON string escaped the way serde_json
// escapes it: only '"', '\\' and control characters; other text verbatim.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// Encode writes tensors and metadata (which may be nil) to w in the
// safetensors format. The output depends only on its arguments, not on the
// order of tensors.
func Encode(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	if err := encode(w, tensors, metadata); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

func encode(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	ls, err := plan(tensors)
	if err != nil {
		return err
	}
	hdr, err := header(ls, metadata)
	if err != nil {
		return err
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(hdr)))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	buf := make([]byte, 0, 64<<10)
	for _, l := range ls {
		if err := writeData(w, buf, l); err != nil {
			return err
		}
	}
	return nil
}

// writeData writes one tensor's elements, converting through buf.
func writeData(w io.Writer, buf []byte, l layout) error {
	t := l.t
	if t.Data != nil {
		_, err := w.Write(t.Data)
		return err
	}
	size := DTypeSize(l.dtype)
	n := len(t.F32)
	if t.I64 != nil {
		n = len(t.I64)
	}
	le := binary.LittleEndian
	for i := 0; i < n; {
		buf = buf[:0]
		for ; i < n && len(buf)+size <= cap(buf); i++ {
			if t.F32 != nil {
				v := t.F32[i]
				switch l.dtype {
				case F32:
					buf = le.AppendUint32(buf, math.Float32bits(v))
				case F16:
					buf = le.AppendUint16(buf, Float32ToFloat16(v))
				case BF16:
					buf = le.AppendUint16(buf, Float32ToBFloat16(v))
				case F64:
					buf = le.AppendUint64(buf, math.Float64bits(float64(v)))
				}
				continue
			}
			v := uint64(t.I64[i])
			switch size {
			case 1:
				buf = append(buf, byte(v))
			case 2:
				buf = le.AppendUint16(buf, uint16(v))
			case 4:
				buf = le.AppendUint32(buf, uint32(v))
			case 8:
				buf = le.AppendUint64(buf, v)
			}
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// Write writes tensors and metadata (which may be nil; transformers writes
// {"format":"pt"}) to the safetensors file at path. It writes a temporary file
// in the same folder, syncs it and renames it over path, so a crash never
// leaves a partial checkpoint at path. Equal inputs give identical bytes.
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	err := atomicfile.Write(path, func(w io.Writer) error {
		return encode(w, tensors, metadata)
	})
	if err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	return nil
}
