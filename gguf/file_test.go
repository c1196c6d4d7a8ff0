package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// allValues has one key of every value type, arrays of every element type
// included.
func allValues() []KV {
	return []KV{
		{"general.architecture", Of("llama")},
		{"u8", Of(uint8(200))}, {"i8", Of(int8(-100))}, {"u16", Of(uint16(60000))}, {"i16", Of(int16(-30000))},
		{"u32", Of(uint32(4e9))}, {"i32", Of(int32(-2e9))}, {"f32", Of(float32(1.5))}, {"bool", Of(true)},
		{"str", Of("héllo\x00world")}, {"u64", Of(uint64(1 << 63))}, {"i64", Of(int64(-1 << 62))}, {"f64", Of(math.Pi)},
		{"a.u8", ArrayOf([]uint8{1, 2})}, {"a.i8", ArrayOf([]int8{-1})}, {"a.u16", ArrayOf([]uint16{})},
		{"a.i16", ArrayOf([]int16{-2, 3})}, {"a.u32", ArrayOf([]uint32{7})}, {"a.i32", ArrayOf([]int32{1, -1, 3})},
		{"a.f32", ArrayOf([]float32{0.25})}, {"a.bool", ArrayOf([]bool{true, false})},
		{"a.str", ArrayOf([]string{"a", "", "Ġthe"})}, {"a.u64", ArrayOf([]uint64{9})},
		{"a.i64", ArrayOf([]int64{-9})}, {"a.f64", ArrayOf([]float64{2.5})},
	}
}

func ramp(n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(i%37-18) / 16
	}
	return x
}

func testTensors(t *testing.T) ([]Tensor, map[string][]float32) {
	t.Helper()
	vals := map[string][]float32{}
	var ts []Tensor
	for _, c := range []struct {
		name string
		typ  TensorType
		dims []int64
	}{
		{"token_embd.weight", Q8_0, []int64{64, 3}},
		{"blk.0.attn_norm.weight", F32, []int64{5}}, // 20 bytes: padded
		{"blk.0.ffn_up.weight", Q4_0, []int64{32, 2}},
		{"blk.0.ffn_down.weight", F16, []int64{3, 2, 1, 1}},
		{"output.weight", BF16, []int64{7}},
	} {
		n := 1
		for _, d := range c.dims {
			n *= int(d)
		}
		x := ramp(n)
		b, err := Quantize(c.typ, x)
		if err != nil {
			t.Fatal(err)
		}
		vals[c.name] = x
		ts = append(ts, Tensor{Name: c.name, Dims: c.dims, Type: c.typ, Data: func() ([]byte, error) { return b, nil }})
	}
	return ts, vals
}

// Every value type and tensor type survives a write and a read, at the
// default alignment and at 64; tensors are laid out as llama.cpp requires
// (in order, each at the previous one's end padded to the alignment).
func TestRoundTrip(t *testing.T) {
	for _, align := range []uint32{0, 64} {
		kv := allValues()
		if align != 0 {
			kv = append(kv, KV{"general.alignment", Of(align)})
		}
		ts, vals := testTensors(t)
		path := filepath.Join(t.TempDir(), "m.gguf")
		if err := Write(path, kv, ts); err != nil {
			t.Fatal(err)
		}
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if !reflect.DeepEqual(f.KV(), kv) {
			t.Errorf("metadata:\n got %v\nwant %v", f.KV(), kv)
		}
		a := int64(max(align, DefaultAlignment))
		if f.Alignment() != int(a) || f.DataOffset()%a != 0 {
			t.Errorf("alignment %d, data at %d", f.Alignment(), f.DataOffset())
		}
		var next int64
		for i, ti := range f.Tensors() {
			if ti.Name != ts[i].Name || !reflect.DeepEqual(ti.Dims, ts[i].Dims) || ti.Type != ts[i].Type {
				t.Errorf("tensor %d: %+v, want %s %v %s", i, ti, ts[i].Name, ts[i].Dims, ts[i].Type)
			}
			if ti.Offset != next {
				t.Errorf("tensor %q at %d, llama.cpp expects %d", ti.Name, ti.Offset, next)
			}
			next = ti.Offset + pad(ti.Size, a)
			got, _, err := f.Float32(ti.Name)
			if err != nil {
				t.Fatal(err)
			}
			want := vals[ti.Name]
			for j := range want {
				if e := math.Abs(float64(got[j] - want[j])); e > 0.15 || (ti.Type == F32 && e != 0) {
					t.Fatalf("%s[%d] = %g, want %g", ti.Name, j, got[j], want[j])
				}
			}
		}
		if fi, _ := os.Stat(path); fi.Size() != f.DataOffset()+next {
			t.Errorf("file is %d bytes, want %d", fi.Size(), f.DataOffset()+next)
		}
	}
}

// raw builds GGUF bytes field by field, for files golem would never write.
type raw struct{ bytes.Buffer }

func (r *raw) u32(v uint32) *raw { binary.Write(&r.Buffer, binary.LittleEndian, v); return r }
func (r *raw) u64(v uint64) *raw { binary.Write(&r.Buffer, binary.LittleEndian, v); return r }
func (r *raw) str(s string) *raw { r.u64(uint64(len(s))); r.WriteString(s); return r }
func (r *raw) head(nt, nkv uint64) *raw {
	r.WriteString("GGUF")
	return r.u32(3).u64(nt).u64(nkv)
}

// tensor writes one tensor info.
func (r *raw) tensor(name string, typ uint32, off uint64, dims ...uint64) *raw {
	r.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		r.u64(d)
	}
	return r.u32(typ).u64(off)
}

// data pads to 32 and appends n bytes.
func (r *raw) data(n int) []byte {
	for r.Len()%32 != 0 {
		r.WriteByte(0)
	}
	r.Write(make([]byte, n))
	return r.Bytes()
}

func valid(t testing.TB) []byte {
	var b bytes.Buffer
	ts, _ := testTensors(&testing.T{})
	if err := Encode(&b, allValues(), ts); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Hostile and broken files are refused with an error naming the file and
// the field, without allocating what their counts claim (each case would
// ask for exabytes), and without a panic.
func TestHostileFiles(t *testing.T) {
	good := valid(t)
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "not a GGUF file"},
		{"bad magic", append([]byte("GGML"), good[4:]...), "not a GGUF file"},
		{"only magic", []byte("GGUF"), "header: the file ends inside the header"},
		{"old version", append(append([]byte("GGUF"), 2, 0, 0, 0), good[8:]...), "GGUF version 2"},
		{"huge tensor count", new(raw).head(1<<62, 0).Bytes(), "tensor count is 4611686018427387904"},
		{"huge kv count", new(raw).head(0, 1<<60).Bytes(), "metadata key/value count is"},
		{"huge key length", append(new(raw).head(0, 1).u64(1<<61).Bytes(), make([]byte, 32)...), "metadata key 0: metadata key 0: string length is 2305843009213693952, more than the 32 bytes left"},
		{"huge string", new(raw).head(0, 1).str("k").u32(8).u64(1 << 62).Bytes(), `metadata "k": value: string length is`},
		{"huge array", new(raw).head(0, 1).str("tokenizer.ggml.tokens").u32(9).u32(8).u64(1 << 40).Bytes(), `metadata "tokenizer.ggml.tokens": array length is 1099511627776`},
		{"array of arrays", new(raw).head(0, 1).str("k").u32(9).u32(9).u64(1).Bytes(), `"k": arrays of arrays`},
		{"unknown value type", new(raw).head(0, 1).str("k").u32(13).u64(0).Bytes(), `metadata "k": unknown value type 13`},
		{"bad bool", append(new(raw).head(0, 1).str("k").u32(7).Bytes(), 2), `"k": bool is 2`},
		{"truncated kv", new(raw).head(0, 1).str("k").u32(4).Bytes(), `"k": the file ends inside the header`},
		{"duplicate key", new(raw).head(0, 2).str("k").u32(0).Bytes(), ""}, // filled below
		{"bad alignment", new(raw).head(0, 1).str("general.alignment").u32(4).u32(48).Bytes(), `"general.alignment" is 48`},
		{"alignment type", new(raw).head(0, 1).str("general.alignment").u32(10).u64(32).Bytes(), `"general.alignment" is 32, want a uint32`},
		{"unknown tensor type", new(raw).head(1, 0).tensor("blk.0.ffn_up.weight", 16, 0, 256, 1).data(144), `tensor 0 "blk.0.ffn_up.weight": tensor type IQ2_XXS is not supported (golem reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and IQ4_NL)`},
		{"k-quant row of 896", new(raw).head(1, 0).tensor("blk.0.attn_q.weight", 12, 0, 896, 2).data(144 * 7), `tensor 0 "blk.0.attn_q.weight": first dimension (row length) 896 is not a multiple of the Q4_K block size 256`},
		{"truncated k-quant data", new(raw).head(1, 0).tensor("blk.0.ffn_down.weight", 14, 0, 512, 2).data(210*4 - 1), `tensor "blk.0.ffn_down.weight": data [0, 840) ends beyond the file's 839 data bytes (truncated?)`},
		{"unnamed tensor type", new(raw).head(1, 0).tensor("w", 99, 0, 4).data(16), `"w": tensor type 99 (unknown) is not supported`},
		{"5 dims", new(raw).head(1, 0).tensor("w", 0, 0, 1, 1, 1, 1, 1).data(4), `"w": 5 dimensions`},
		{"element overflow", new(raw).head(1, 0).tensor("w", 0, 0, 1<<40, 1<<40).data(4), `"w": dimensions [1099511627776 1099511627776]...: too many elements`},
		{"byte overflow", new(raw).head(1, 0).tensor("w", 0, 0, 1<<62).data(4), `"w": 4611686018427387904 values of F32 are more bytes`},
		{"partial block", new(raw).head(1, 0).tensor("w", 8, 0, 48).data(68), `"w": first dimension (row length) 48 is not a multiple of the Q8_0 block size 32`},
		{"truncated data", new(raw).head(1, 0).tensor("w", 0, 0, 8, 4).data(127), `tensor "w": data [0, 128) ends beyond the file's 127 data bytes (truncated?)`},
		{"offset beyond", new(raw).head(1, 0).tensor("w", 0, 1<<40, 4).data(16), `tensor "w": data [1099511627776, 1099511627792) ends beyond`},
		{"huge offset", new(raw).head(1, 0).tensor("w", 0, 1<<63, 4).data(16), `"w": offset 9223372036854775808 is beyond any file`},
		{"misaligned", new(raw).head(1, 0).tensor("w", 0, 4, 4).data(64), `tensor "w": data offset 4 is not a multiple of the alignment 32`},
		{"overlap", new(raw).head(2, 0).tensor("a", 0, 0, 16).tensor("b", 0, 32, 8).data(96), `tensors "a" and "b" overlap (data [0, 64) and [32, 64))`},
		{"duplicate tensor", new(raw).head(2, 0).tensor("a", 0, 0, 8).tensor("a", 0, 32, 8).data(64), `tensor "a" appears twice`},
		{"long name", new(raw).head(1, 0).tensor(strings.Repeat("x", 64), 0, 0, 8).data(32), "name is 64 bytes, more than ggml's 63"},
		{"truncated header", good[:len(good)/3], "m.gguf: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := c.b
			if c.name == "duplicate key" {
				b = append(new(raw).head(0, 2).str("k").u32(0).Bytes(), 1)
				b = append(append(b, new(raw).str("k").u32(0).Bytes()...), 2)
				c.want = `metadata key "k" appears twice`
			}
			path := filepath.Join(t.TempDir(), "m.gguf")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			f, err := Open(path)
			runtime.ReadMemStats(&after)
			if err == nil {
				f.Close()
				t.Fatalf("opened")
			}
			// The bufio reader (64 KiB) and small change: nothing sized
			// by a count the file claims.
			if a := after.TotalAlloc - before.TotalAlloc; a > 256<<10+uint64(len(b))*4 {
				t.Errorf("opening a %d-byte file allocated %d bytes", len(b), a)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q\nwant the path and %q", err, c.want)
			}
		})
	}
}

// A folder or a FIFO in place of the file is refused, not read.
func TestNotRegular(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "not a regular file: a folder") {
		t.Errorf("folder: %v", err)
	}
}

// The file shrinking after Open is an error when a tensor is read, not
// short data.
func TestTruncatedAfterOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(path, valid(t), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Truncate(path, f.DataOffset()+8); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Float32("output.weight"); err == nil || !strings.Contains(err.Error(), "truncated since it was opened") {
		t.Errorf("reading a truncated tensor: %v", err)
	}
}

func TestWriteRefuses(t *testing.T) {
	one := func() ([]byte, error) { return make([]byte, 4), nil }
	for _, c := range []struct {
		kv   []KV
		ts   []Tensor
		want string
	}{
		{[]KV{{"general.alignment", Of(uint32(3))}}, nil, "power of two"},
		{[]KV{{"k", Of(true)}, {"k", Of(false)}}, nil, `"k" twice`},
		{[]KV{{"k", Value{}}}, nil, "not a GGUF value"},
		{nil, []Tensor{{Name: "w", Dims: []int64{1}, Type: F32, Data: one}, {Name: "w", Dims: []int64{1}, Type: F32, Data: one}}, `"w" twice`},
		{nil, []Tensor{{Name: "w", Dims: []int64{2}, Type: F32, Data: one}}, "4 bytes of data, want 8"},
		{nil, []Tensor{{Name: "w", Dims: []int64{48}, Type: Q4_0, Data: one}}, "not a multiple of the Q4_0 block size"},
		{nil, []Tensor{{Name: "w", Dims: []int64{1}, Type: TensorType(16), Data: one}}, "unsupported tensor type IQ2_XXS"},
	} {
		err := Encode(new(bytes.Buffer), c.kv, c.ts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: %v, want %q", c.kv, c.ts, err, c.want)
		}
	}
}

// FuzzParse: no input panics, allocates beyond its size, or opens with a
// tensor outside the data; a file that opens reads every tensor.
func FuzzParse(f *testing.F) {
	f.Add(valid(f))
	f.Add(new(raw).head(1, 0).tensor("w", 8, 0, 32).data(34))
	f.Add(new(raw).head(2, 0).tensor("a", 0, 0, 16).tensor("b", 0, 32, 8).data(96))
	f.Add(new(raw).head(0, 1).str("k").u32(9).u32(8).u64(2).Bytes())
	// One tensor of each type golem reads but does not write.
	for _, typ := range []TensorType{Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL} {
		f.Add(new(raw).head(1, 0).tensor("w", uint32(typ), 0, uint64(typ.BlockSize()), 2).data(2 * typ.BlockBytes()))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := Parse("fuzz.gguf", bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "gguf: fuzz.gguf: ") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		for _, ti := range g.Tensors() {
			if g.DataOffset()+ti.Offset+ti.Size > int64(len(b)) {
				t.Fatalf("tensor %q beyond the file", ti.Name)
			}
			if _, _, err := g.Float32(ti.Name); err != nil {
				t.Fatal(err)
			}
		}
	})
}
