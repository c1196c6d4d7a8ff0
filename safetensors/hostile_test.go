package safetensors

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostileFiles checks that broken or malicious files give an error that
// names the file and the problem, and never panic.
func TestHostileFiles(t *testing.T) {
	valid := file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}}`, make([]byte, 16))
	hugeLen := binary.LittleEndian.AppendUint64(nil, 1<<62)
	cases := []struct {
		name string
		data []byte
		want string // part of the error
	}{
		{"empty", nil, "shorter than the 8-byte"},
		{"short", []byte{1, 2, 3}, "shorter than the 8-byte"},
		{"huge header length", append(hugeLen, `{}`...), "exceeds the limit"},
		{"header past end", append(binary.LittleEndian.AppendUint64(nil, 1000), `{}`...), "truncated"},
		{"truncated data", valid[:len(valid)-3], `tensor "b"`},
		{"trailing bytes", append(valid[:len(valid):len(valid)], 0), "trailing"},
		{"not JSON", file(`{"a":`, nil), "invalid JSON"},
		{"not an object", file(`[1,2]`, nil), "not a JSON object"},
		{"garbage after", file(`{} x`, nil), "header byte"},
		{"second value", file(`{}{}`, nil), "after the JSON object"},
		{"invalid UTF-8", file("{\"\xff\":1}", nil), "UTF-8"},
		{"entry not object", file(`{"a":3}`, nil), `tensor "a"`},
		{"unknown dtype", file(`{"a":{"dtype":"F7","shape":[1],"data_offsets":[0,1]}}`, []byte{0}), `unknown dtype "F7"`},
		{"missing shape", file(`{"a":{"dtype":"U8","data_offsets":[0,1]}}`, []byte{0}), `missing "shape"`},
		{"null offsets", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":null}}`, []byte{0}), `missing "data_offsets"`},
		{"unknown field", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}`, []byte{0}), `unknown field "x"`},
		{"negative dim", file(`{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}`, []byte{0}), "negative"},
		{"float dim", file(`{"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}`, []byte{0}), `"shape"`},
		{"shape overflow", file(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, make([]byte, 4)), "overflows"},
		{"byte size overflow", file(`{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}}`, make([]byte, 8)), "overflows"},
		{"huge dim", file(`{"a":{"dtype":"U8","shape":[99999999999999999999],"data_offsets":[0,1]}}`, []byte{0}), `"shape"`},
		{"size mismatch", file(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, make([]byte, 8)), "needs 12"},
		{"offsets past end", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[100,101]}}`, []byte{0}), "outside the data area"},
		{"offsets reversed", file(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}}`, []byte{0}), "outside"},
		{"offsets overflow", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551615,0]}}`, []byte{0}), "outside"},
		{"three offsets", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}`, []byte{0}), "[begin, end]"},
		{"overlap", file(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}`, make([]byte, 3)), "overlap"},
		{"same bytes twice", file(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, make([]byte, 2)), "overlap"},
		{"gap", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, make([]byte, 2)), "gap"},
		{"duplicate tensor", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{0}), "duplicate"},
		{"metadata not strings", file(`{"__metadata__":{"a":1}}`, nil), "__metadata__"},
		{"metadata twice", file(`{"__metadata__":{},"__metadata__":{}}`, nil), "duplicate"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		path := filepath.Join(dir, "bad.safetensors")
		if err := os.WriteFile(path, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := Open(path)
		if err == nil {
			f.Close()
			t.Errorf("%s: no error", c.name)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, c.want) {
			t.Errorf("%s: error %q, want the path and %q", c.name, msg, c.want)
		}
	}
	// The valid base file opens, so the cases above fail for their own reason.
	f, err := parse("valid", valid)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Float32("nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("missing tensor: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "absent.safetensors")); err == nil || !strings.Contains(err.Error(), "absent.safetensors") {
		t.Errorf("absent file: %v", err)
	}
	if _, err := Open(dir); err == nil {
		t.Error("folder opened as a file")
	}
}

// FuzzOpen checks that no input makes the reader panic, and that whatever it
// accepts it can read in full and writes back to a file it reads the same.
func FuzzOpen(f *testing.F) {
	f.Add(file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}}`, make([]byte, 16)))
	f.Add(file(`{"__metadata__":{"format":"pt"},"x":{"dtype":"BF16","shape":[1,2],"data_offsets":[0,4]}}`, []byte{0x80, 0x3f, 0, 0xc0}))
	f.Add(file(`{"a":{"dtype":"F16","shape":[],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[0],"data_offsets":[2,2]}}`, []byte{0, 0x3c}))
	f.Add(file(`{}      `, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := parse("fuzz", data)
		if err != nil {
			return
		}
		var ts []Tensor
		for _, name := range sf.Names() {
			raw, info, err := sf.Raw(name)
			if err != nil {
				t.Fatal(err)
			}
			if isFloat(info.DType) {
				if _, _, err := sf.Float32(name); err != nil {
					t.Fatal(err)
				}
			} else if isInt(info.DType) && info.DType != U64 {
				if _, _, err := sf.Int64(name); err != nil {
					t.Fatal(err)
				}
			}
			ts = append(ts, Tensor{Name: name, DType: info.DType, Shape: info.Shape, Data: raw})
		}
		var b strings.Builder
		if err := Encode(&b, ts, sf.Metadata()); err != nil {
			t.Fatalf("cannot write back what was read: %v", err)
		}
		again, err := parse("rewritten", []byte(b.String()))
		if err != nil {
			t.Fatalf("rewritten file does not read: %v", err)
		}
		for _, name := range sf.Names() {
			r1, i1, _ := sf.Raw(name)
			r2, i2, err := again.Raw(name)
			if err != nil || string(r1) != string(r2) || i1.DType != i2.DType || len(i1.Shape) != len(i2.Shape) {
				t.Fatalf("tensor %q changed on rewrite", name)
			}
		}
	})
}
