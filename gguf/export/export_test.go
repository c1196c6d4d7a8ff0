package export

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/internal/testmodels"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/safetensors"
	"github.com/golem-ml/golem/tokenizer"
)

// Every tensor golem writes reads back through the gguf reader, equal to
// the checkpoint's (after llama.cpp's layout change) in F32 and within the
// type's error bound otherwise; the metadata says what llama.cpp needs.
func TestExportReadsBack(t *testing.T) {
	dir := fixture(t, "qwen2-tiny")
	st, err := safetensors.OpenModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.F16, gguf.BF16, gguf.Q8_0, gguf.Q4_0} {
		path := filepath.Join(t.TempDir(), "m.gguf")
		r, err := Folder(dir, path, Options{Type: typ})
		if err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if r.Tensors != 26 || len(f.Tensors()) != 26 || len(r.Fallback) != 0 {
			t.Fatalf("%s: %d tensors written, %d read, fallback %v", typ, r.Tensors, len(f.Tensors()), r.Fallback)
		}
		hf := map[string]string{"token_embd.weight": "model.embed_tokens.weight", "blk.1.attn_k.bias": "model.layers.1.self_attn.k_proj.bias",
			"blk.0.ffn_down.weight": "model.layers.0.mlp.down_proj.weight", "output_norm.weight": "model.norm.weight", "blk.1.attn_q.weight": "model.layers.1.self_attn.q_proj.weight"}
		for _, ti := range f.Tensors() {
			got, _, err := f.Float32(ti.Name)
			if err != nil {
				t.Fatal(err)
			}
			want, ok := hf[ti.Name]
			if !ok {
				continue
			}
			x, shape, err := st.Float32(want)
			if err != nil {
				t.Fatal(err)
			}
			if len(shape) == 1 && ti.Type != gguf.F32 || len(shape) == 2 && ti.Type != typ {
				t.Errorf("%s: %s is %s", typ, ti.Name, ti.Type)
			}
			if int64(shape[len(shape)-1]) != ti.Dims[0] {
				t.Errorf("%s: dims %v for shape %v", ti.Name, ti.Dims, shape)
			}
			for b := 0; b < len(x); b += 32 {
				var amax float64
				for _, v := range x[b:min(b+32, len(x))] {
					amax = max(amax, math.Abs(float64(v)))
				}
				bound := map[gguf.TensorType]float64{gguf.F32: 0, gguf.F16: amax * 0x1p-11, gguf.BF16: amax * 0x1p-8, gguf.Q8_0: amax/254 + amax*0x1p-11, gguf.Q4_0: amax/8 + amax*0x1p-11}[ti.Type]
				for i := b; i < min(b+32, len(x)); i++ {
					if e := math.Abs(float64(got[i] - x[i])); e > bound {
						t.Fatalf("%s %s[%d] = %g, checkpoint %g (error %g > %g)", typ, ti.Name, i, got[i], x[i], e, bound)
					}
				}
			}
		}
		meta := map[string]any{
			"general.architecture": "qwen2", "general.file_type": map[gguf.TensorType]uint32{gguf.F32: 0, gguf.F16: 1, gguf.BF16: 32, gguf.Q8_0: 7, gguf.Q4_0: 2}[typ],
			"qwen2.context_length": uint32(64), "qwen2.embedding_length": uint32(32), "qwen2.block_count": uint32(2),
			"qwen2.feed_forward_length": uint32(64), "qwen2.attention.head_count": uint32(4), "qwen2.attention.head_count_kv": uint32(2),
			"qwen2.attention.layer_norm_rms_epsilon": float32(1e-6), "qwen2.rope.freq_base": float32(1e6), "qwen2.rope.dimension_count": uint32(8),
			"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "gpt-2", "tokenizer.ggml.eos_token_id": uint32(vocab() - 1),
			"tokenizer.chat_template": tokenizer.ChatTemplate,
		}
		for k, w := range meta {
			if v, ok := f.Get(k); !ok || v.Any() != w {
				t.Errorf("%s: %s = %v (%T), want %v", typ, k, v.Any(), v.Any(), w)
			}
		}
		toks, _ := f.Get("tokenizer.ggml.tokens")
		merges, _ := f.Get("tokenizer.ggml.merges")
		types, _ := f.Get("tokenizer.ggml.token_type")
		nMerges := 50000
		if testing.Short() {
			nMerges = cutMerges
		}
		if tk := toks.Any().([]string); len(tk) != vocab() || tk[vocab()-1] != "<|endoftext|>" || tk[220] != "Ġ" || len(merges.Any().([]string)) != nMerges || types.Any().([]int32)[vocab()-1] != 3 {
			t.Errorf("tokenizer: %d tokens, %d merges", len(toks.Any().([]string)), len(merges.Any().([]string)))
		}
		f.Close()
	}
}

// folder makes a copy of the fixture src (files linked) with config.json
// edited by cfg and the checkpoint rewritten by tensors (linked when nil).
func folder(t *testing.T, src string, cfg func(map[string]any), tensors func([]safetensors.Tensor) []safetensors.Tensor) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		if err := os.Symlink(filepath.Join(src, f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	json.Unmarshal(b, &c)
	if cfg != nil {
		cfg(c)
	}
	b, _ = json.Marshal(c)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if tensors == nil {
		if err := os.Symlink(filepath.Join(src, "model.safetensors"), filepath.Join(dir, "model.safetensors")); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), tensors(testmodels.Tensors(t, src)), nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

// exportTo exports the model folder dir to the GGUF file out as typ.
func exportTo(t *testing.T, dir, out string, typ gguf.TensorType) {
	t.Helper()
	if _, err := Folder(dir, out, Options{Type: typ}); err != nil {
		t.Fatal(err)
	}
}

// loadModel reads the model (a folder or a GGUF file) at path onto be.
func loadModel(t *testing.T, be backend.Backend, path string) *gpt.Model {
	t.Helper()
	m, err := gpt.Load(be, path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A folder that is not a model golem can export, or whose checkpoint
// disagrees with its config.json, is refused with an error naming the
// folder and the tensor or field; no file is left behind.
func TestExportRefuses(t *testing.T) {
	src := fixture(t, "llama-tiny")
	var same func([]safetensors.Tensor) []safetensors.Tensor
	for _, c := range []struct {
		name    string
		cfg     func(map[string]any)
		tensors func([]safetensors.Tensor) []safetensors.Tensor
		want    string
	}{
		{"unknown architecture", func(c map[string]any) { c["model_type"] = "gemma" }, same, `model_type "gemma" not supported`},
		{"rope scaling in qwen2", func(c map[string]any) {
			c["model_type"] = "qwen2"
			c["rope_scaling"] = map[string]any{"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 32}
		}, same, "RoPE scaling (rope_scaling) in a qwen2 model: llama.cpp reads Llama 3's scaling (rope_freqs.weight) for the llama architecture only"},
		{"shape disagrees", func(c map[string]any) { c["intermediate_size"] = 96 }, same, `tensor "model.layers.0.mlp.gate_proj.weight" has shape [64 24], config.json says [96 24]`},
		{"missing tensor", nil, func(ts []safetensors.Tensor) []safetensors.Tensor {
			return ts[1:] // lm_head.weight
		}, `the checkpoint has no tensor "lm_head.weight" (needed for output.weight)`},
		{"unknown tensor", nil, func(ts []safetensors.Tensor) []safetensors.Tensor {
			return append(ts, safetensors.Tensor{Name: "model.layers.0.self_attn.q_norm.weight", Shape: []int{6}, F32: make([]float32, 6)})
		}, `tensor "model.layers.0.self_attn.q_norm.weight" has no place in a llama GGUF file`},
		{"fewer layers", func(c map[string]any) { c["num_hidden_layers"] = 1 }, same, `tensor "model.layers.1.input_layernorm.weight" has no place`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := folder(t, src, c.cfg, c.tensors)
			out := filepath.Join(t.TempDir(), "m.gguf")
			_, err := Folder(dir, out, Options{Type: gguf.F16})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("error %v\nwant %q and the folder", err, c.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("%s left behind: %v", out, err)
			}
		})
	}
	// A character tokenizer has no GGUF form.
	dir := folder(t, src, nil, nil)
	os.Remove(filepath.Join(dir, "tokenizer.json"))
	if err := tokenizer.NewChar("abc").Save(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Folder(dir, filepath.Join(dir, "m.gguf"), Options{Type: gguf.F32}); err == nil || !strings.Contains(err.Error(), "a character tokenizer has no GGUF form") {
		t.Errorf("character tokenizer: %v", err)
	}
	if _, err := Folder(src, filepath.Join(dir, "m.gguf"), Options{Type: gguf.TensorType(12)}); err == nil || !strings.Contains(err.Error(), "Q4_K is not one golem writes") {
		t.Errorf("Q4_K: %v", err)
	}
}

// tokenizer_config.json's chat template goes into the file as it is.
func TestExportChatTemplate(t *testing.T) {
	src := fixture(t, "qwen2-tiny")
	dir := folder(t, src, nil, nil)
	const tmpl = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
	os.Remove(filepath.Join(dir, "tokenizer_config.json"))
	b, _ := json.Marshal(map[string]any{"chat_template": tmpl, "eos_token": map[string]any{"content": "<|endoftext|>"}})
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.gguf")
	if _, err := Folder(dir, path, Options{Type: gguf.F32, Name: "chat"}); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for k, w := range map[string]any{"tokenizer.chat_template": tmpl, "general.name": "chat", "tokenizer.ggml.eos_token_id": uint32(vocab() - 1)} {
		if v, _ := f.Get(k); v.Any() != w {
			t.Errorf("%s = %v, want %v", k, v.Any(), w)
		}
	}
	// golem reads the template back from the file and renders as the
	// folder's tokenizer does.
	msgs := []tokenizer.Message{{Role: "user", Content: "hi there"}, {Role: "assistant", Content: "hello"}}
	want, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tokenizer.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	g, _, err1 := got.RenderChat(msgs, false)
	w, _, err2 := want.RenderChat(msgs, false)
	if err1 != nil || err2 != nil || !slices.Equal(g, w) || !got.HasChatTemplate() {
		t.Errorf("the GGUF's tokenizer renders %v (%v), the folder's %v (%v)", g, err1, w, err2)
	}
}
