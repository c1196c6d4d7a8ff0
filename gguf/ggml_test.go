package gguf

import (
	"bytes"
	"context"
	"math"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golem-ml/golem/internal/shared"
)

// ggmlBase finds ggml's library in node-llama-cpp's prebuilt llama.cpp
// (.ci/e2e-deps.sh installs it in e2e/node_modules) and python3 to drive
// it. Without them the test is skipped, except under CI=true.
func ggmlBase(t *testing.T) (python, lib string) {
	t.Helper()
	missing := func(what string) {
		msg := what + " is missing: run .ci/e2e-deps.sh (installs gguf/e2e's node-llama-cpp, llama.cpp's prebuilt library)"
		shared.Missing(t, msg)
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		missing("python3")
	}
	libs, _ := filepath.Glob("e2e/node_modules/@node-llama-cpp/linux-x64/bins/*/libggml-base.so")
	if len(libs) == 0 {
		missing("node-llama-cpp's linux-x64 libggml-base.so")
	}
	return python, libs[0]
}

// A GGUF file ggml itself wrote (gguf_write_to_file, every value type, tensors converted and quantized by ggml) reads back exactly,
// and golem's Quantize gives the same bytes as ggml for F16, BF16, Q8_0 and
// Q4_0.
func TestReadsGGMLFile(t *testing.T) {
	python, lib := ggmlBase(t)
	path := filepath.Join(t.TempDir(), "ggml.gguf")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, python, "e2e/ggml_write.py", lib, path).CombinedOutput(); err != nil {
		t.Fatalf("ggml_write.py: %v\n%s", err, out)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]any{
		"general.architecture": "llama", "str": "héllo",
		"u8": uint8(200), "i8": int8(-100), "u16": uint16(60000), "i16": int16(-30000), "u32": uint32(4000000000),
		"i32": int32(-2000000000), "f32": float32(1.5), "bool": true, "u64": uint64(1 << 63), "i64": int64(-1 << 62), "f64": 3.25,
		"a.i32": []int32{1, -1, 3}, "a.f32": []float32{0.25, -2}, "a.str": []string{"a", "", "Ġthe"},
	}
	if len(f.KV()) != len(want) {
		t.Errorf("%d keys, want %d", len(f.KV()), len(want))
	}
	for k, w := range want {
		if v, ok := f.Get(k); !ok || !reflect.DeepEqual(v.Any(), w) {
			t.Errorf("%s = %#v, want %#v", k, v.Any(), w)
		}
	}
	if f.Alignment() != 32 || f.DataOffset()%32 != 0 {
		t.Errorf("alignment %d, data at %d", f.Alignment(), f.DataOffset())
	}
	x := make([]float32, 64*3)
	for i := range x {
		x[i] = float32(float64((37*i)%101-50) / 16 * float64(1+i%5))
		if i < 32 {
			x[i] = float32(i-16) / 2
		}
	}
	x[0] = -8
	for _, c := range []struct {
		name string
		typ  TensorType
	}{{"f32", F32}, {"f16", F16}, {"bf16", BF16}, {"q8_0", Q8_0}, {"q4_0", Q4_0}} {
		raw, ti, err := f.Raw(c.name)
		if err != nil {
			t.Fatal(err)
		}
		if ti.Type != c.typ || !reflect.DeepEqual(ti.Dims, []int64{64, 3}) || ti.Offset%32 != 0 {
			t.Errorf("%s: %+v", c.name, ti)
		}
		mine, err := Quantize(c.typ, x)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, mine) {
			for i := range raw {
				if raw[i] != mine[i] {
					t.Errorf("%s: golem's bytes differ from ggml's from byte %d: % x vs % x", c.name, i, mine[i:min(i+8, len(mine))], raw[i:min(i+8, len(raw))])
					break
				}
			}
		}
	}
}

// The types golem reads but does not write (Q4_1, Q5_0, Q5_1, Q2_K to
// Q6_K, IQ4_NL), quantized by ggml: golem's Dequantize gives exactly the values
// ggml's own dequantize_row_* gives.
func TestDequantizeAsGGML(t *testing.T) {
	python, lib := ggmlBase(t)
	path := filepath.Join(t.TempDir(), "ggml.gguf")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, python, "e2e/ggml_write.py", lib, path).CombinedOutput(); err != nil {
		t.Fatalf("ggml_write.py: %v\n%s", err, out)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, typ := range []TensorType{Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL} {
		name := strings.ToLower(typ.String()[:2]) + typ.String()[2:]
		if typ == IQ4_NL {
			name = "iq4_nl"
		}
		got, ti, err := f.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := f.Float32(name + ".deq")
		if err != nil {
			t.Fatal(err)
		}
		if ti.Type != typ || len(got) != 768 {
			t.Fatalf("%s: %+v", name, ti)
		}
		bad := 0
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				if bad < 3 {
					t.Errorf("%s: value %d is %g, ggml's %g", typ, i, got[i], want[i])
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d values differ from ggml's", typ, bad, len(got))
		}
		// And they are the values ggml quantized (not, say, all zero): the
		// error is well below the values' own size.
		var sq, sx float64
		for i, v := range got {
			x := float64((37*i)%101-50) / 16 * float64(1+i%5)
			sq += (float64(v) - x) * (float64(v) - x)
			sx += x * x
		}
		rel := math.Sqrt(sq / sx)
		t.Logf("%s: rms error %.3g of the values' rms", typ, rel)
		if rel > 0.5 {
			t.Errorf("%s: rms error %.3g of the values' rms", typ, rel)
		}
	}
}
