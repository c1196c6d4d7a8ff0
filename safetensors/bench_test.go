package safetensors

import (
	"path/filepath"
	"testing"
)

// benchFile writes a 16 MiB checkpoint of one tensor in dtype.
func benchFile(b *testing.B, dtype string) *File {
	v := make([]float32, 4<<20)
	for i := range v {
		v[i] = float32(i) * 1e-3
	}
	path := filepath.Join(b.TempDir(), "b.safetensors")
	if err := Write(path, []Tensor{{Name: "w", DType: dtype, Shape: []int{len(v)}, F32: v}}, nil); err != nil {
		b.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}

func benchRead(b *testing.B, dtype string) {
	f := benchFile(b, dtype)
	dst := make([]float32, 4<<20)
	b.SetBytes(int64(len(dst) * 4))
	for b.Loop() {
		if err := f.Float32Into("w", dst); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFloat32FromF32(b *testing.B)  { benchRead(b, F32) }
func BenchmarkFloat32FromBF16(b *testing.B) { benchRead(b, BF16) }
func BenchmarkFloat32FromF16(b *testing.B)  { benchRead(b, F16) }

func BenchmarkWriteBF16(b *testing.B) {
	v := make([]float32, 4<<20)
	path := filepath.Join(b.TempDir(), "w.safetensors")
	b.SetBytes(int64(len(v) * 4))
	for b.Loop() {
		if err := Write(path, []Tensor{{Name: "w", DType: BF16, Shape: []int{len(v)}, F32: v}}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
