package export

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/safetensors"
	"github.com/golem-ml/golem/tokenizer"
)

// llamaCppNames are the llama.cpp names of the Hugging Face modules of
// golem's architectures, as gguf-py's TensorNameMap gives them to
// convert_hf_to_gguf.py (a block's modules after "blk.N."): the test's
// oracle, written apart from gpt.GGUFTensors.
var llamaCppNames = map[string]string{
	"transformer.wte": "token_embd", "transformer.wpe": "position_embd", "transformer.ln_f": "output_norm", "lm_head": "output",
	"ln_1": "attn_norm", "attn.c_attn": "attn_qkv", "attn.c_proj": "attn_output", "ln_2": "ffn_norm", "mlp.c_fc": "ffn_up", "mlp.c_proj": "ffn_down",
	"model.embed_tokens": "token_embd", "model.norm": "output_norm", "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q",
	"self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
	"mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
}

// block splits a block's parameter name into its index and module.
var block = regexp.MustCompile(`^(?:transformer\.h|model\.layers)\.(\d+)\.(.+)$`)

// llamaCppName is the llama.cpp name of the parameter param.
func llamaCppName(param string) string {
	module, end := strings.TrimSuffix(param, filepath.Ext(param)), filepath.Ext(param)
	if m := block.FindStringSubmatch(module); m != nil {
		return "blk." + m[1] + "." + llamaCppNames[m[2]] + end
	}
	return llamaCppNames[module] + end
}

// smallConfig is a config of arch with 2 blocks of width 32 and a
// vocabulary of 320.
func smallConfig(arch string) gpt.Config {
	return gpt.Config{Arch: arch, Vocab: 320, Context: 16, Layers: 2, Heads: 4, KVHeads: 2, Hidden: 32, Intermediate: 48,
		Eps: 1e-5, RopeTheta: 10000, BOS: -1, EOS: -1}
}

// smallModel writes a model of config c, every value of it its own (New's
// biases and norms are 0 and 1), with a small trained tokenizer, to a
// folder.
func smallModel(t *testing.T, c gpt.Config) (*gpt.Model, string) {
	t.Helper()
	tok, err := tokenizer.Train(tokenizer.TrainOptions{Texts: []string{"the names of the tensors, the names of the tensors"}, VocabSize: 300})
	if err != nil {
		t.Fatal(err)
	}
	m, err := gpt.New(cpu.New(), c, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range m.Params() {
		x := p.Tensor.Host()
		for j := range x {
			x[j] = float32(i) + float32(j)/float32(len(x))
		}
		p.Tensor.Set(x)
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := tok.Save(dir); err != nil {
		t.Fatal(err)
	}
	return m, dir
}

// gpt.GGUFTensors is the one map between golem's (Hugging Face's) tensor
// names and llama.cpp's: gpt.LoadGGUF reads a file by it and Folder writes
// one by it. For every architecture golem has, with biases and without,
// with a tied head and an untied one: it names each of the model's
// parameters once, with its shape, under a llama.cpp name of its own; the
// file Folder writes holds those names in its order; and the file loads
// back as the model, every parameter equal bit for bit under its name
// (Llama's q and k rows and GPT-2's Conv1D weights changed and changed
// back). A parameter the map misses, a name either side spells otherwise,
// or a layout change one side does and the other does not undo fails.
func TestGGUFNamesRoundTrip(t *testing.T) {
	if err := (&gpt.Config{Arch: "?"}).Validate(); err == nil || !strings.Contains(err.Error(), "(want gpt2, llama, mistral or qwen2)") {
		t.Fatalf("golem's architectures are not the four this test runs (%v): give a new one its GGUF names in gpt.GGUFTensors, and a case here", err)
	}
	gpt2 := func(edit func(*gpt.Config)) func(*gpt.Config) {
		return func(c *gpt.Config) {
			c.KVHeads, c.Bias, c.Tied = c.Heads, true, true
			if edit != nil {
				edit(c)
			}
		}
	}
	be := cpu.New()
	for _, v := range []struct {
		name, arch string
		edit       func(*gpt.Config)
	}{
		{"gpt2", "gpt2", gpt2(nil)},
		{"gpt2-untied", "gpt2", gpt2(func(c *gpt.Config) { c.Tied = false })},
		{"gpt2-no-bias", "gpt2", gpt2(func(c *gpt.Config) { c.Bias = false })},
		{"llama", "llama", func(c *gpt.Config) {}},
		{"llama-bias-tied", "llama", func(c *gpt.Config) { c.Bias, c.Tied = true, true }},
		{"qwen2", "qwen2", func(c *gpt.Config) { c.Bias, c.Tied = true, true }},
		{"qwen2-untied", "qwen2", func(c *gpt.Config) { c.Bias = true }},
		{"mistral", "mistral", func(c *gpt.Config) { c.SlidingWindow = 16 }},
	} {
		t.Run(v.name, func(t *testing.T) {
			c := smallConfig(v.arch)
			v.edit(&c)
			ref, dir := smallModel(t, c)
			params := map[string][]int{}
			for _, p := range ref.Params() {
				params[p.Name] = p.Tensor.Shape()
			}
			table := gpt.GGUFTensors(&c)
			names := map[string]bool{}
			for _, g := range table {
				if want := llamaCppName(g.Param); g.Name != want || names[g.Name] {
					t.Errorf("%s is named %s, llama.cpp's name is %s (or it is named twice)", g.Param, g.Name, want)
				}
				names[g.Name] = true
				shape, ok := params[g.Param]
				if !ok {
					t.Errorf("%s: its parameter %q is not the model's (or is named twice)", g.Name, g.Param)
				} else if !slices.Equal(shape, g.Shape()) {
					t.Errorf("%s: shape %v, the parameter %q's %v", g.Name, g.Shape(), g.Param, shape)
				}
				delete(params, g.Param)
			}
			for p := range params {
				t.Errorf("parameter %q has no GGUF name", p)
			}
			file := filepath.Join(t.TempDir(), "m.gguf")
			if _, err := Folder(dir, file, Options{Type: gguf.F32}); err != nil {
				t.Fatal(err)
			}
			f, err := gguf.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			var got, want []string
			for _, ti := range f.Tensors() {
				got = append(got, ti.Name)
			}
			f.Close()
			full := c // a GPT-2 without biases has zero ones in its checkpoint and file (config.Arch.FixedBias)
			full.Bias = c.Bias || c.FixedBias()
			for _, g := range gpt.GGUFTensors(&full) {
				want = append(want, g.Name)
			}
			if c.Arch == "gpt2" && c.Tied {
				want = append(want, "output.weight") // convert_hf_to_gguf.py's copy of token_embd
			}
			if !slices.Equal(got, want) {
				t.Errorf("the file's tensors %v\nthe map's %v", got, want)
			}
			m, err := gpt.Load(be, file)
			if err != nil {
				t.Fatal(err)
			}
			back := map[string][]float32{}
			for _, p := range m.Params() {
				back[p.Name] = p.Tensor.Host()
			}
			for _, p := range ref.Params() {
				if x, ok := back[p.Name]; !ok || !slices.Equal(x, p.Tensor.Host()) {
					t.Errorf("%s: read back %v (%d values), not the model's", p.Name, ok, len(x))
				}
			}
			for _, p := range ref.Params() {
				delete(back, p.Name)
			}
			for n, x := range back {
				if c.Bias || !strings.HasSuffix(n, ".bias") || slices.ContainsFunc(x, func(v float32) bool { return v != 0 }) {
					t.Errorf("%s read back: not the model's", n)
				}
			}
		})
	}
}

// A GPT-2 checkpoint saved from GPT2Model, its names without
// "transformer." (the Hugging Face hub's gpt2 is one), exports as the
// GPT2LMHeadModel one does: the same tensors, byte for byte.
func TestExportGPT2ModelNames(t *testing.T) {
	c := smallConfig("gpt2")
	c.KVHeads, c.Bias, c.Tied = c.Heads, true, true
	_, src := smallModel(t, c)
	bare := folder(t, src, nil, func(ts []safetensors.Tensor) []safetensors.Tensor {
		for i := range ts {
			ts[i].Name = strings.TrimPrefix(ts[i].Name, "transformer.")
		}
		return ts
	})
	dir := t.TempDir()
	files := []string{filepath.Join(dir, "lm.gguf"), filepath.Join(dir, "bare.gguf")}
	exportTo(t, src, files[0], gguf.F32)
	exportTo(t, bare, files[1], gguf.F32)
	var fs [2]*gguf.File
	for i, name := range files {
		f, err := gguf.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fs[i] = f
	}
	if a, b := fs[0].Tensors(), fs[1].Tensors(); len(a) != len(b) || len(a) == 0 {
		t.Fatalf("%d tensors, %d from the bare names", len(a), len(b))
	}
	for _, ti := range fs[0].Tensors() {
		a, _, err1 := fs[0].Raw(ti.Name)
		b, _, err2 := fs[1].Raw(ti.Name)
		if err1 != nil || err2 != nil || !slices.Equal(a, b) {
			t.Errorf("%s: differs from the bare names' (%v, %v)", ti.Name, err1, err2)
		}
	}
}
