package export

import (
	"encoding/binary"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/internal/testmodels"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/safetensors"
)

// halves are where each type keeps its float16 d (and min) in a block,
// and the size randomBlocks gives them.
var halves = map[gguf.TensorType][]struct {
	at int
	v  float32
}{
	gguf.Q4_1: {{0, 0.01}, {2, -0.075}}, gguf.Q5_0: {{0, 0.005}}, gguf.Q5_1: {{0, 0.005}, {2, -0.08}},
	gguf.Q2_K: {{80, 0.005}, {82, 0.005}}, gguf.Q3_K: {{108, 0.0005}}, gguf.Q4_K: {{0, 3e-4}, {2, 3e-4}},
	gguf.Q5_K: {{0, 1.5e-4}, {2, 3e-4}}, gguf.Q6_K: {{208, 3e-5}}, gguf.IQ4_NL: {{0, 5e-4}},
}

// randomBlocks returns n values of type typ as random blocks: random codes
// and sub-block scales, the float16 scales and mins set so that the values
// are of the order of 0.05 (a random model's weights).
func randomBlocks(typ gguf.TensorType, n int, rng *rand.Rand) []byte {
	bs, bb := typ.BlockSize(), typ.BlockBytes()
	b := make([]byte, n/bs*bb)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	for k := 0; k < len(b); k += bb {
		for _, f := range halves[typ] {
			scale := f.v * (0.5 + rng.Float32())
			binary.LittleEndian.PutUint16(b[k+f.at:], safetensors.Float32ToFloat16(scale))
		}
	}
	return b
}

// A GGUF file whose matrices are Q4_1, Q5_0, Q5_1, IQ4_NL and the k-quants
// loads:
// on the CPU backend those matrices are kept as Q8_0 (dequantized and
// rounded; every one of them, the embedding too), and
// the model's logits are those of the same file dequantized to float32 on
// a backend without backend.Quantized, up to the rounding to 8 bits of the
// weights and the activations. gpt.GGUFSummary lists the file as Q8_0,
// what it runs as.
func TestGGUFLoadsKQuants(t *testing.T) {
	// Qwen2 (a tied head: one matrix of the vocabulary's 50,257 rows, not
	// two, for a test's time; 512 under -short); TestLlamaCppKQuants runs Llama's permuted
	// q and k rows.
	dir := sizedModel(t, "qwen2", 4, 256, 512)
	src := filepath.Join(t.TempDir(), "f32.gguf")
	exportTo(t, dir, src, gguf.F32)
	types := []gguf.TensorType{gguf.Q4_K, gguf.Q6_K, gguf.Q5_K, gguf.Q3_K, gguf.Q2_K, gguf.Q5_0, gguf.Q5_1, gguf.Q4_1, gguf.IQ4_NL}
	rng := rand.New(rand.NewPCG(1, 2))
	matrices, seen := 0, map[gguf.TensorType]bool{}
	file := rewrite(t, src, nil, func(ts []gguf.Tensor) []gguf.Tensor {
		for k := range ts {
			if len(ts[k].Dims) != 2 {
				continue
			}
			typ := types[matrices%len(types)]
			data := randomBlocks(typ, int(ts[k].Dims[0]*ts[k].Dims[1]), rng)
			ts[k].Type, ts[k].Data = typ, func() ([]byte, error) { return data, nil }
			matrices++
			seen[typ] = true
		}
		return ts
	})
	if len(seen) != len(types) {
		t.Fatalf("only %d of the %d types written", len(seen), len(types))
	}
	q := loadModel(t, cpu.New(), file)
	f := loadModel(t, plainBackend{cpu.New()}, file)
	if len(q.Quantized()) != matrices || len(f.Quantized()) != 0 {
		t.Errorf("kept quantized: %d of %d matrices (%d without backend.Quantized)", len(q.Quantized()), matrices, len(f.Quantized()))
	}
	prompt := inVocab([]int{15496, 11, 616, 3290, 318, 257})
	e := testmodels.RelDiff(testmodels.Logits(q, prompt), testmodels.Logits(f, prompt))
	t.Logf("Q8_0 on the CPU backend vs float32: logits within %.2g of the largest", e)
	if e > 0.05 {
		t.Errorf("logits off by %.3g of the largest", e)
	}
	if _, _, level, err := gpt.GGUFSummary(file); err != nil || level != "Q8_0" {
		t.Errorf("GGUFSummary: level %q, %v; want Q8_0", level, err)
	}

	// A NaN scale in the last block of a matrix is refused, the file and
	// the tensor named, on both backends.
	g, err := gguf.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := g.Tensor("blk.1.ffn_down.weight")
	g.Close()
	nan := rewrite(t, file, nil, func(ts []gguf.Tensor) []gguf.Tensor {
		for k := range ts {
			if ts[k].Name == info.Name {
				data, _ := ts[k].Data()
				data = append([]byte(nil), data...)
				binary.LittleEndian.PutUint16(data[len(data)-info.Type.BlockBytes()+halves[info.Type][0].at:], 0x7e00)
				ts[k].Data = func() ([]byte, error) { return data, nil }
			}
		}
		return ts
	})
	for _, be := range []backend.Backend{cpu.New(), plainBackend{cpu.New()}} {
		if _, err := gpt.Load(be, nan); err == nil || !strings.Contains(err.Error(), nan) || !strings.Contains(err.Error(), `tensor "blk.1.ffn_down.weight"`) || !strings.Contains(err.Error(), "NaN") {
			t.Errorf("%s scale NaN: %v", info.Type, err)
		}
	}
}
