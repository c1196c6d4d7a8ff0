package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// encodeBytes returns the file Encode writes.
func encodeBytes(t *testing.T, tensors []Tensor, meta map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Encode(&b, tensors, meta); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// file builds a safetensors file from a header string and data, as the spec
// describes it: little-endian u64 length, header, data.
func file(hdr string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	return append(append(b, hdr...), data...)
}

func f32bytes(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// TestReferenceLayout checks the exact bytes against cases of the reference
// implementation's own test suite (safetensors/src/tensor.rs).
func TestReferenceLayout(t *testing.T) {
	data := f32bytes(0, 1, 2, 3, 4, 5)
	cases := []struct {
		name    string
		tensors []Tensor
		meta    map[string]string
		want    []byte
	}{
		{"serialization", []Tensor{{Name: "attn.0", Shape: []int{1, 2, 3}, F32: []float32{0, 1, 2, 3, 4, 5}}}, nil,
			file(`{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`, data)},
		{"forced alignment", []Tensor{{Name: "attn0", DType: F32, Shape: []int{1, 1, 2, 3}, Data: data}}, nil,
			file(`{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       `, data)},
		{"empty", nil, nil, file(`{}      `, nil)},
		{"empty with metadata", nil, map[string]string{"framework": "pt"},
			file(`{"__metadata__":{"framework":"pt"}}     `, nil)},
	}
	for _, c := range cases {
		if got := encodeBytes(t, c.tensors, c.meta); !bytes.Equal(got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

// TestHeaderLayout checks ordering (wider dtypes first, then by name), sorted
// metadata, serde_json-style escaping and 8-byte alignment of every tensor.
func TestHeaderLayout(t *testing.T) {
	ts := []Tensor{
		{Name: "b", DType: U8, Shape: []int{3}, I64: []int64{1, 2, 3}},
		{Name: "a", DType: BF16, Shape: []int{1}, F32: []float32{1}},
		{Name: "z", Shape: []int{1}, F32: []float32{2}},
		{Name: "y", Shape: []int{}, I64: []int64{7}},
		{Name: "x\"<é>\n\x01", Shape: []int{0, 4}},
	}
	got := encodeBytes(t, ts, map[string]string{"k2": "v", "k1": "<&>"})
	want := `{"__metadata__":{"k1":"<&>","k2":"v"},` +
		`"y":{"dtype":"I64","shape":[],"data_offsets":[0,8]},` +
		`"x\"<é>\n\u0001":{"dtype":"F32","shape":[0,4],"data_offsets":[8,8]},` +
		`"z":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},` +
		`"a":{"dtype":"BF16","shape":[1],"data_offsets":[12,14]},` +
		`"b":{"dtype":"U8","shape":[3],"data_offsets":[14,17]}}`
	n := binary.LittleEndian.Uint64(got)
	hdr := string(got[8 : 8+n])
	if n%8 != 0 || strings.TrimRight(hdr, " ") != want || len(hdr)-len(want) >= 8 {
		t.Fatalf("header\n got %q\nwant %q", hdr, want)
	}
	var parsed map[string]any
	if err := json.Unmarshal([]byte(hdr), &parsed); err != nil {
		t.Fatalf("header is not JSON: %v", err)
	}
	if len(parsed) != 6 {
		t.Errorf("header has %d entries", len(parsed))
	}
	// The same tensors in another order give the same bytes.
	slices.Reverse(ts)
	if again := encodeBytes(t, ts, map[string]string{"k1": "<&>", "k2": "v"}); !bytes.Equal(again, got) {
		t.Error("output depends on the order of tensors")
	}
}

// TestRoundTrip writes every dtype and reads it back bit for bit.
func TestRoundTrip(t *testing.T) {
	vals := []float32{0, float32(math.Copysign(0, -1)), 1, -2.5, 3.14159265, 1e-8, 65504, 1e30,
		float32(math.Inf(1)), float32(math.Inf(-1)), math.SmallestNonzeroFloat32, math.MaxFloat32}
	ints := []int64{0, 1, -1, math.MaxInt64, math.MinInt64, 1 << 40}
	ts := []Tensor{
		{Name: "f32", Shape: []int{3, 4}, F32: vals},
		{Name: "f16", DType: F16, Shape: []int{12}, F32: vals},
		{Name: "bf16", DType: BF16, Shape: []int{2, 6}, F32: vals},
		{Name: "f64", DType: F64, Shape: []int{12}, F32: vals},
		{Name: "i64", Shape: []int{2, 3}, I64: ints},
		{Name: "i32", DType: I32, Shape: []int{3}, I64: []int64{math.MinInt32, 0, math.MaxInt32}},
		{Name: "i16", DType: I16, Shape: []int{2}, I64: []int64{-32768, 32767}},
		{Name: "i8", DType: I8, Shape: []int{2}, I64: []int64{-128, 127}},
		{Name: "u8", DType: U8, Shape: []int{2}, I64: []int64{0, 255}},
		{Name: "bool", DType: BOOL, Shape: []int{3}, I64: []int64{1, 0, 1}},
		{Name: "u32", DType: U32, Shape: []int{1}, I64: []int64{math.MaxUint32}},
		{Name: "raw", DType: I16, Shape: []int{2}, Data: []byte{1, 0, 0xff, 0xff}},
		{Name: "scalar", Shape: nil, F32: []float32{42}},
		{Name: "empty", DType: BF16, Shape: []int{0}},
	}
	path := filepath.Join(t.TempDir(), "rt.safetensors")
	meta := map[string]string{"format": "pt", "step": "100"}
	if err := Write(path, ts, meta); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.Metadata(); len(got) != 2 || got["step"] != "100" {
		t.Errorf("metadata %v", got)
	}
	if len(f.Names()) != len(ts) {
		t.Fatalf("names %v", f.Names())
	}
	for _, tt := range ts {
		info, ok := f.Info(tt.Name)
		if !ok || info.DType != tt.dtype() || !slices.Equal(info.Shape, append([]int{}, tt.Shape...)) {
			t.Errorf("%s: info %+v, want %s %v", tt.Name, info, tt.dtype(), tt.Shape)
		}
		raw, _, err := f.Raw(tt.Name)
		if err != nil {
			t.Fatal(err)
		}
		if e := f.tensors[tt.Name]; e.begin%int64(DTypeSize(e.dtype)) != 0 {
			t.Errorf("%s: data at file offset %d is not aligned", tt.Name, e.begin)
		}
		switch {
		case tt.F32 != nil:
			got, shape, err := f.Float32(tt.Name)
			if err != nil || !slices.Equal(shape, info.Shape) {
				t.Fatalf("%s: %v %v", tt.Name, shape, err)
			}
			for i, x := range tt.F32 {
				want := x
				switch tt.DType {
				case F16:
					want = Float16ToFloat32(Float32ToFloat16(x))
				case BF16:
					want = BFloat16ToFloat32(Float32ToBFloat16(x))
				}
				if math.Float32bits(got[i]) != math.Float32bits(want) {
					t.Errorf("%s[%d] = %v, want %v", tt.Name, i, got[i], want)
				}
			}
			dst := make([]float32, len(tt.F32))
			if err := f.Float32Into(tt.Name, dst); err != nil || !slices.Equal(dst, got) && !slices.ContainsFunc(dst, isNaN) {
				t.Errorf("%s: Float32Into %v", tt.Name, err)
			}
			if err := f.Float32Into(tt.Name, make([]float32, len(tt.F32)+1)); err == nil {
				t.Errorf("%s: Float32Into with a wrong length: no error", tt.Name)
			}
		case tt.I64 != nil:
			got, _, err := f.Int64(tt.Name)
			if err != nil || !slices.Equal(got, tt.I64) {
				t.Errorf("%s: %v, want %v (%v)", tt.Name, got, tt.I64, err)
			}
		case tt.Data != nil:
			if !bytes.Equal(raw, tt.Data) {
				t.Errorf("%s: raw %v", tt.Name, raw)
			}
			got, _, _ := f.Int64(tt.Name)
			if !slices.Equal(got, []int64{1, -1}) {
				t.Errorf("%s: %v", tt.Name, got)
			}
		default:
			if len(raw) != 0 {
				t.Errorf("%s: %d bytes", tt.Name, len(raw))
			}
		}
	}
	// Writing again gives the same bytes.
	first, _ := os.ReadFile(path)
	if err := Write(path, ts, meta); err != nil {
		t.Fatal(err)
	}
	if second, _ := os.ReadFile(path); !bytes.Equal(first, second) {
		t.Error("writing twice gives different files")
	}
	f.Close()
	if _, _, err := f.Float32("f32"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("read after Close: %v", err)
	}
}

func isNaN(x float32) bool { return x != x }

// TestWriteErrors checks invalid tensors are refused and the old file kept.
func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	good := []Tensor{{Name: "w", Shape: []int{2}, F32: []float32{1, 2}}}
	if err := Write(path, good, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	bad := map[string][]Tensor{
		"length":       {{Name: "w", Shape: []int{3}, F32: []float32{1, 2}}},
		"dtype":        {{Name: "w", DType: "F8", Shape: []int{1}, Data: []byte{0}}},
		"float as int": {{Name: "w", DType: I32, Shape: []int{1}, F32: []float32{1}}},
		"int as float": {{Name: "w", DType: F32, Shape: []int{1}, I64: []int64{1}}},
		"range":        {{Name: "w", DType: U8, Shape: []int{1}, I64: []int64{256}}},
		"negative":     {{Name: "w", Shape: []int{-1}}},
		"overflow":     {{Name: "w", Shape: []int{math.MaxInt / 2, 4}}},
		"two sources":  {{Name: "w", Shape: []int{1}, F32: []float32{1}, Data: []byte{0, 0, 0, 0}}},
		"no data":      {{Name: "w", Shape: []int{1}}},
		"raw length":   {{Name: "w", DType: I16, Shape: []int{2}, Data: []byte{1, 2, 3}}},
		"duplicate":    {good[0], good[0]},
		"reserved":     {{Name: "__metadata__", Shape: []int{0}}},
		"utf8":         {{Name: "\xff", Shape: []int{0}}},
	}
	for what, ts := range bad {
		err := Write(path, ts, nil)
		if err == nil {
			t.Errorf("%s: no error", what)
			continue
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `"`) {
			t.Errorf("%s: error %q should name the file and the tensor", what, err)
		}
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Error("failed writes changed the file")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

// TestSharded writes a checkpoint in shards, reads it back through the index,
// then rewrites it as one file and checks the stale shards are gone.
func TestSharded(t *testing.T) {
	var ts []Tensor
	for i, n := range []int{100, 50, 300, 10, 10, 60} {
		v := make([]float32, n)
		for j := range v {
			v[j] = float32(i*1000 + j)
		}
		ts = append(ts, Tensor{Name: "layer." + string(rune('a'+i)) + ".weight", Shape: []int{n}, F32: v})
	}
	ts = append(ts, Tensor{Name: "ids", Shape: []int{2}, I64: []int64{5, 6}})
	dir := filepath.Join(t.TempDir(), "model")
	if err := WriteSharded(dir, ts, 800); err != nil {
		t.Fatal(err)
	}
	// bytes: a=400, b=200 (600); c=1200 alone; d,e,f,ids=40+40+240+16 (336)
	wantFiles := map[string][]string{
		"model-00001-of-00003.safetensors": {"layer.a.weight", "layer.b.weight"},
		"model-00002-of-00003.safetensors": {"layer.c.weight"},
		"model-00003-of-00003.safetensors": {"ids", "layer.d.weight", "layer.e.weight", "layer.f.weight"},
	}
	for name, want := range wantFiles {
		f, err := Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(f.Names(), want) || f.Metadata()["format"] != "pt" {
			t.Errorf("%s holds %v %v, want %v", name, f.Names(), f.Metadata(), want)
		}
		f.Close()
	}
	idx, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	wantIdx := "{\n  \"metadata\": {\n    \"total_size\": 2136\n  },\n  \"weight_map\": {\n    \"ids\": \"model-00003-of-00003.safetensors\",\n"
	if !strings.HasPrefix(string(idx), wantIdx) || !strings.HasSuffix(string(idx), "}\n}\n") {
		t.Errorf("index:\n%s", idx)
	}

	check := func(wantFiles int) {
		t.Helper()
		m, err := OpenModel(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if len(m.Files()) != wantFiles || len(m.Names()) != len(ts) || m.Metadata()["format"] != "pt" {
			t.Fatalf("files %v, names %v", m.Files(), m.Names())
		}
		for _, tt := range ts {
			if tt.I64 != nil {
				got, _, err := m.Int64(tt.Name)
				if err != nil || !slices.Equal(got, tt.I64) {
					t.Errorf("%s: %v %v", tt.Name, got, err)
				}
				continue
			}
			got, shape, err := m.Float32(tt.Name)
			if err != nil || !slices.Equal(got, tt.F32) || !slices.Equal(shape, tt.Shape) {
				t.Errorf("%s: %v %v", tt.Name, shape, err)
			}
			if info, ok := m.Info(tt.Name); !ok || info.DType != F32 {
				t.Errorf("%s: info %+v", tt.Name, info)
			}
		}
		if _, _, err := m.Float32("missing"); err == nil || !strings.Contains(err.Error(), `"missing"`) {
			t.Errorf("missing tensor: %v", err)
		}
	}
	check(3)

	// A single shard is written as model.safetensors; old shards and index go.
	if err := WriteSharded(dir, ts, 1<<20); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != ModelFile {
		t.Errorf("folder holds %v, want only %s", entries, ModelFile)
	}
	check(1)
	// And back to shards: model.safetensors goes.
	if err := WriteSharded(dir, ts, 800); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ModelFile)); !os.IsNotExist(err) {
		t.Errorf("stale %s kept: %v", ModelFile, err)
	}
	check(3)
}

// TestOpenModelErrors checks broken indexes give errors naming the problem.
func TestOpenModelErrors(t *testing.T) {
	dir := t.TempDir()
	if err := Write(filepath.Join(dir, "s.safetensors"), []Tensor{{Name: "w", Shape: []int{1}, F32: []float32{1}}}, nil); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"":                                     "neither",
		`{`:                                    "unexpected end",
		`{"weight_map":{}}`:                    "weight_map missing",
		`{"weight_map":{"w":"../x"}}`:          "not a file name",
		`{"weight_map":{"w":"gone.bin"}}`:      "gone.bin",
		`{"weight_map":{"v":"s.safetensors"}}`: `"v"`,
	}
	for index, want := range cases {
		os.Remove(filepath.Join(dir, IndexFile))
		if index != "" {
			os.WriteFile(filepath.Join(dir, IndexFile), []byte(index), 0o644)
		}
		m, err := OpenModel(dir)
		if err == nil {
			m.Close()
			t.Errorf("index %q: no error", index)
		} else if !strings.Contains(err.Error(), want) {
			t.Errorf("index %q: error %q, want it to mention %q", index, err, want)
		}
	}
}
