package export

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tokenizer"
)

// rewrite writes a copy of the GGUF file src with its metadata and tensor
// list edited.
func rewrite(t *testing.T, src string, kv func([]gguf.KV) []gguf.KV, ts func([]gguf.Tensor) []gguf.Tensor) string {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var tensors []gguf.Tensor
	for _, info := range f.Tensors() {
		name := info.Name
		tensors = append(tensors, gguf.Tensor{Name: name, Dims: info.Dims, Type: info.Type, Data: func() ([]byte, error) {
			b, _, err := f.Raw(name)
			return b, err
		}})
	}
	kvs := f.KV()
	if kv != nil {
		kvs = kv(kvs)
	}
	if ts != nil {
		tensors = ts(tensors)
	}
	out := filepath.Join(t.TempDir(), "bad.gguf")
	if err := gguf.Write(out, kvs, tensors); err != nil {
		t.Fatal(err)
	}
	return out
}

func setKV(key string, v gguf.Value) func([]gguf.KV) []gguf.KV {
	return func(kvs []gguf.KV) []gguf.KV {
		for i := range kvs {
			if kvs[i].Key == key {
				kvs[i].Value = v
				return kvs
			}
		}
		return append(kvs, gguf.KV{Key: key, Value: v})
	}
}

func dropKV(key string) func([]gguf.KV) []gguf.KV {
	return func(kvs []gguf.KV) []gguf.KV {
		var out []gguf.KV
		for _, kv := range kvs {
			if kv.Key != key {
				out = append(out, kv)
			}
		}
		return out
	}
}

// editTensor replaces one tensor's bytes through edit.
func editTensor(name string, edit func([]byte)) func([]gguf.Tensor) []gguf.Tensor {
	return func(ts []gguf.Tensor) []gguf.Tensor {
		for i := range ts {
			if ts[i].Name == name {
				data := ts[i].Data
				ts[i].Data = func() ([]byte, error) {
					b, err := data()
					if err == nil {
						b = bytes.Clone(b)
						edit(b)
					}
					return b, err
				}
			}
		}
		return ts
	}
}

// A GGUF file golem cannot run, or whose metadata disagrees with its
// tensors, is refused quickly (before the model is allocated) with an
// error naming the file and the key or tensor; nothing panics.
func TestGGUFLoadRefuses(t *testing.T) {
	src := filepath.Join(t.TempDir(), "qwen2.gguf")
	exportTo(t, fixture(t, "qwen2-tiny"), src, gguf.Q8_0)
	nanF16 := func(b []byte) { b[0], b[1] = 0x00, 0x7e }
	nanF32 := func(b []byte) { binary.LittleEndian.PutUint32(b, math.Float32bits(float32(math.NaN()))) }
	extra := func(ts []gguf.Tensor) []gguf.Tensor {
		return append(ts, gguf.Tensor{Name: "rope_freqs.weight", Dims: []int64{4}, Type: gguf.F32, Data: func() ([]byte, error) { return make([]byte, 16), nil }})
	}
	for _, c := range []struct {
		name string
		kv   func([]gguf.KV) []gguf.KV
		ts   func([]gguf.Tensor) []gguf.Tensor
		want string
	}{
		{"unknown architecture", setKV("general.architecture", gguf.Of("mamba")), nil, `general.architecture "mamba" is not one golem reads from GGUF (gpt2, llama, qwen2)`},
		{"mistral architecture", setKV("general.architecture", gguf.Of("mistral")), nil, `general.architecture "mistral" is not one golem reads from GGUF`},
		{"sliding window", setKV("qwen2.attention.sliding_window", gguf.Of(uint32(4096))), nil, `metadata qwen2.attention.sliding_window: golem reads a sliding window (Mistral's) from a config.json, not from GGUF`},
		{"rope scaling key", setKV("qwen2.rope.scaling.type", gguf.Of("yarn")), nil, `metadata qwen2.rope.scaling.type is "yarn": golem runs Llama 3's RoPE scaling (rope_freqs.weight) only`},
		{"width disagrees", setKV("qwen2.feed_forward_length", gguf.Of(uint32(96))), nil, `tensor "blk.0.ffn_gate.weight" has dims [32 64], but the metadata (qwen2: embedding_length 32, feed_forward_length 96`},
		{"head size disagrees", setKV("qwen2.embedding_length", gguf.Of(uint32(48))), nil, `metadata qwen2.rope.dimension_count is 8, not the head size 12`},
		{"more layers", setKV("qwen2.block_count", gguf.Of(uint32(3))), nil, `no tensor "blk.2.attn_norm.weight" (a qwen2 model of 3 layers has one)`},
		{"fewer layers", setKV("qwen2.block_count", gguf.Of(uint32(1))), nil, `unexpected tensor "blk.1.attn_norm.weight"`},
		{"huge context", setKV("qwen2.context_length", gguf.Of(uint32(1<<30))), nil, `"max_position_embeddings" is 1073741824, more than golem's limit`},
		{"missing key", dropKV("qwen2.attention.head_count"), nil, `metadata qwen2.attention.head_count is missing`},
		{"key of the wrong type", setKV("qwen2.context_length", gguf.Of("long")), nil, `metadata qwen2.context_length is long, want a positive integer`},
		{"heads do not divide", setKV("qwen2.attention.head_count", gguf.Of(uint32(5))), nil, `"hidden_size" 32 is not divisible by "num_attention_heads" 5`},
		{"rope scaling in qwen2", nil, extra, `tensor "rope_freqs.weight" (Llama 3's RoPE scaling) in a qwen2 model: llama.cpp reads it for the llama architecture only`},
		{"NaN weight", nil, editTensor("blk.0.attn_norm.weight", nanF32), `tensor "blk.0.attn_norm.weight": element 0 is NaN`},
		{"NaN scale", nil, editTensor("blk.0.ffn_up.weight", nanF16), `tensor "blk.0.ffn_up.weight": cpu: Q8_0 block 0 (row 0) has scale NaN`},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := rewrite(t, src, c.kv, c.ts)
			start := time.Now()
			_, err := gpt.Load(cpu.New(), file)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), file) {
				t.Fatalf("error %v\nwant %q and the file", err, c.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("refused after %v", d)
			}
		})
	}

	// A tensor of a type golem does not read: the Q8_0 type id patched to
	// IQ2_XXS's (16) in the tensor info; and to Q4_K's (12), which golem
	// reads, but not in rows of 32 values (a k-quant's are whole
	// super-blocks of 256).
	for _, c := range []struct {
		id   uint32
		want string
	}{
		{16, `"blk.0.ffn_up.weight": tensor type IQ2_XXS is not supported (golem reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and IQ4_NL)`},
		{12, `"blk.0.ffn_up.weight": first dimension (row length) 32 is not a multiple of the Q4_K block size 256`},
		{99, `"blk.0.ffn_up.weight": tensor type 99 (unknown) is not supported`},
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		name := []byte("blk.0.ffn_up.weight")
		i := bytes.Index(b, name) + len(name)
		nd := int(binary.LittleEndian.Uint32(b[i:]))
		binary.LittleEndian.PutUint32(b[i+4+8*nd:], c.id)
		bad := filepath.Join(t.TempDir(), "bad.gguf")
		os.WriteFile(bad, b, 0o644)
		if _, err := gpt.Load(cpu.New(), bad); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), bad) {
			t.Errorf("type %d: %v\nwant %q", c.id, err, c.want)
		}
	}
	// A file cut inside its tensor data.
	b, _ := os.ReadFile(src)
	cut := filepath.Join(t.TempDir(), "cut.gguf")
	os.WriteFile(cut, b[:len(b)*2/3], 0o644)
	if _, err := gpt.Load(cpu.New(), cut); err == nil || !strings.Contains(err.Error(), cut) {
		t.Errorf("truncated file: %v", err)
	}
	// A tokenizer golem does not read (SentencePiece).
	sp := rewrite(t, src, setKV("tokenizer.ggml.model", gguf.Of("llama")), nil)
	if _, err := tokenizer.Load(sp); err == nil || !strings.Contains(err.Error(), `tokenizer.ggml.model is "llama"; golem reads byte-level BPE tokenizers ("gpt2") only`) {
		t.Errorf("SentencePiece tokenizer: %v", err)
	}
}
