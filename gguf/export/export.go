// Package export writes a golem / Hugging Face model folder (config.json,
// model.safetensors, tokenizer.json) as one GGUF file that llama.cpp and
// Ollama load: llama.cpp's metadata keys for the architecture (gpt2, llama,
// qwen2), its tensor names and layouts, and the tokenizer (a byte-level BPE
// as tokenizer.ggml.model "gpt2") with the chat template.
//
// It does what llama.cpp's convert_hf_to_gguf.py does for these
// architectures: Llama's q/k projections are permuted from transformers'
// rotate-half RoPE layout to llama.cpp's interleaved pairs (Qwen2 uses
// llama.cpp's NEOX RoPE and is not permuted); GPT-2's Conv1D weights are
// transposed; 2-D weights take the requested type and norms and biases stay
// F32; a matrix whose rows are not a whole number of 32-value blocks falls
// back from Q8_0/Q4_0 to F16.
package export

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/internal/regfile"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/llama"
	"github.com/golem-ml/golem/model/load"
	"github.com/golem-ml/golem/safetensors"
	"github.com/golem-ml/golem/tokenizer"
)

// Options control an export.
type Options struct {
	Type gguf.TensorType // the type of the 2-D weights (F32, F16, BF16, Q8_0 or Q4_0)
	Name string          // general.name; the folder's name when empty
	// Backend merges a LoRA adapter folder into its base before the
	// export (the CPU backend when nil).
	Backend backend.Backend
}

// Report says what was written.
type Report struct {
	Arch     string
	Tensors  int
	Types    map[gguf.TensorType]int // tensors of each type
	Fallback []string                // matrices written F16 because their rows are not whole Q8_0/Q4_0 blocks
	Notes    []string                // differences llama.cpp will show
}

// llama.cpp's token types (tokenizer.ggml.token_type).
const (
	tokenNormal  int32 = 1
	tokenControl int32 = 3
	tokenUnused  int32 = 5
)

// fileTypes are llama.cpp's general.file_type values (LLAMA_FTYPE_*).
var fileTypes = map[gguf.TensorType]uint32{gguf.F32: 0, gguf.F16: 1, gguf.Q4_0: 2, gguf.Q8_0: 7, gguf.BF16: 32}

// Folder writes the model folder dir as the GGUF file out. A LoRA adapter
// folder is merged into its base model (model/load) and written as the
// merged model: the file `golem sft --merge`'s OUT/merged gives.
func Folder(dir, out string, o Options) (*Report, error) {
	if !o.Type.Writable() {
		return nil, fmt.Errorf("export: tensor type %s is not one golem writes (f32, f16, bf16, q8_0, q4_0)", o.Type)
	}
	if gpt.IsAdapter(dir) {
		return adapter(dir, out, o)
	}
	cfg, err := gpt.LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	st, err := safetensors.OpenModel(dir)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer st.Close()
	r := &Report{Types: map[gguf.TensorType]int{}}
	if cfg.Arch == "mistral" {
		// convert_hf_to_gguf.py writes MistralForCausalLM as llama, its
		// sliding window nowhere: llama.cpp's llama (and qwen2) read no
		// sliding window key and attend to every position.
		if w := cfg.SlidingWindow; w > 0 && w < cfg.Context {
			r.Notes = append(r.Notes, fmt.Sprintf("sliding_window %d: llama.cpp's llama architecture attends to every position, so past %d tokens its outputs are not the model's (transformers') but those without the window", w, w))
		}
		c := *cfg
		c.Arch, c.SlidingWindow = "llama", 0
		cfg = &c
	}
	kv, err := Header(cfg, dir, o)
	if err != nil {
		return nil, err
	}
	r.Arch = cfg.Arch
	if cfg.Activation != "" && cfg.Activation != "gelu_new" { // a choice only GPT-2 has
		r.Notes = append(r.Notes, fmt.Sprintf("activation %q: llama.cpp's gpt2 uses the tanh GELU (gelu_new)", cfg.Activation))
	}
	tensors, err := plan(dir, cfg, st, o.Type, r)
	if err != nil {
		return nil, err
	}
	r.Tensors = len(tensors)
	if err := gguf.Write(out, kv, tensors); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return r, nil
}

// Header returns the metadata of a GGUF file of a model of config c whose
// tokenizer (tokenizer.json and tokenizer_config.json) is in the folder
// tok: the general and architecture keys and the tokenizer's, as Folder
// writes them. o.Name is general.name (the folder's name when empty). With
// GGUFTensors it writes a model file from weights of any source (the
// benchmarks' random ones).
func Header(c *gpt.Config, tok string, o Options) ([]gguf.KV, error) {
	kv, err := metadata(tok, c, o)
	if err != nil {
		return nil, err
	}
	t, err := tokenizerKV(tok, c)
	if err != nil {
		return nil, err
	}
	return append(kv, t...), nil
}

// adapter exports the adapter folder dir merged into its base, through a
// temporary model folder beside out.
func adapter(dir, out string, o Options) (*Report, error) {
	be := o.Backend
	if be == nil {
		be = cpu.New()
	}
	l, err := load.Model(be, dir, load.Options{})
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if l.SoftPrompt != nil {
		return nil, fmt.Errorf("export: %s is a prompt-tuning adapter: a GGUF file has no place for its soft prompt (export a LoRA adapter or a model)", dir)
	}
	if o.Name == "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		o.Name = filepath.Base(abs)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".golem-merged-*")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := l.Model.Save(tmp, l.Tok.EndIDs()...); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := l.Tok.SaveForModel(tmp, l.Model.Config.Context); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return Folder(tmp, out, o)
}

// metadata returns the general and architecture keys.
func metadata(dir string, c *gpt.Config, o Options) ([]gguf.KV, error) {
	name := o.Name
	if name == "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		name = filepath.Base(abs)
	}
	a := c.Arch
	if c.RopeScaling != nil && a != "llama" {
		// llama.cpp's Llama 3 scaling is the llama architecture's
		// rope_freqs.weight: refuse, not a file that computes another model.
		return nil, fmt.Errorf("export: %s: RoPE scaling (rope_scaling) in a %s model: llama.cpp reads Llama 3's scaling (rope_freqs.weight) for the llama architecture only", dir, a)
	}
	if c.SlidingWindow > 0 {
		return nil, fmt.Errorf("export: %s: a sliding window of %d: llama.cpp's %s has none (Folder writes a Mistral model as llama.cpp does, without it)", dir, c.SlidingWindow, a)
	}
	kv := []gguf.KV{
		{Key: "general.architecture", Value: gguf.Of(a)},
		{Key: "general.type", Value: gguf.Of("model")},
		{Key: "general.name", Value: gguf.Of(name)},
		{Key: "general.file_type", Value: gguf.Of(fileTypes[o.Type])},
	}
	if o.Type == gguf.Q8_0 || o.Type == gguf.Q4_0 {
		kv = append(kv, gguf.KV{Key: "general.quantization_version", Value: gguf.Of(uint32(2))})
	}
	u := func(k string, v int) gguf.KV { return gguf.KV{Key: a + "." + k, Value: gguf.Of(uint32(v))} }
	kv = append(kv,
		u("vocab_size", c.Vocab),
		u("context_length", c.Context),
		u("embedding_length", c.Hidden),
		u("block_count", c.Layers),
		u("feed_forward_length", c.Intermediate),
		u("attention.head_count", c.Heads),
	)
	if c.LearnedPositions() { // GPT-2: LayerNorm, no RoPE
		return append(kv, gguf.KV{Key: a + ".attention.layer_norm_epsilon", Value: gguf.Of(c.Eps)}), nil
	}
	return append(kv,
		u("attention.head_count_kv", c.KVHeads),
		gguf.KV{Key: a + ".attention.layer_norm_rms_epsilon", Value: gguf.Of(c.Eps)},
		gguf.KV{Key: a + ".rope.freq_base", Value: gguf.Of(float32(c.RopeTheta))},
		u("rope.dimension_count", c.HeadDim()),
	), nil
}

// maxTokenizerConfig bounds tokenizer_config.json.
const maxTokenizerConfig = 16 << 20

// tokenizerKV returns the tokenizer keys: the vocabulary (padded with
// unused "[PADn]" tokens to the model's vocabulary size, as llama.cpp's
// converter does), token types, merges, the pre-tokenizer, special token
// ids and the chat template.
func tokenizerKV(dir string, c *gpt.Config) ([]gguf.KV, error) {
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	tokens, merges, ok := tok.ByteLevelVocab()
	if !ok {
		return nil, fmt.Errorf("export: %s: a character tokenizer has no GGUF form (llama.cpp reads byte-level BPE tokenizers; train one with golem tokenizer train)", dir)
	}
	if len(tokens) > c.Vocab {
		return nil, fmt.Errorf("export: %s: the tokenizer has %d tokens but config.json \"vocab_size\" is %d", dir, len(tokens), c.Vocab)
	}
	types := make([]int32, c.Vocab)
	for id := range c.Vocab {
		switch {
		case id >= len(tokens) || tokens[id] == "":
			if id >= len(tokens) {
				tokens = append(tokens, "")
			}
			tokens[id] = fmt.Sprintf("[PAD%d]", id)
			types[id] = tokenUnused
		case tok.IsSpecial(id):
			types[id] = tokenControl
		default:
			types[id] = tokenNormal
		}
	}
	pre := map[tokenizer.Pattern]string{
		tokenizer.PatternGPT2: "gpt-2", tokenizer.PatternCL100K: "llama-bpe",
		tokenizer.PatternQwen2: "qwen2", tokenizer.PatternO200K: "gpt-4o",
	}[tok.Pattern()]
	tc, err := readTokenizerConfig(dir)
	if err != nil {
		return nil, err
	}
	kv := []gguf.KV{
		{Key: "tokenizer.ggml.model", Value: gguf.Of("gpt2")},
		{Key: "tokenizer.ggml.pre", Value: gguf.Of(pre)},
		{Key: "tokenizer.ggml.tokens", Value: gguf.ArrayOf(tokens)},
		{Key: "tokenizer.ggml.token_type", Value: gguf.ArrayOf(types)},
		{Key: "tokenizer.ggml.merges", Value: gguf.ArrayOf(merges)},
	}
	special := func(key string, id int, name string) {
		if id < 0 && name != "" {
			if sid, ok := tok.SpecialID(name); ok {
				id = sid
			}
		}
		if id >= 0 && id < c.Vocab {
			kv = append(kv, gguf.KV{Key: "tokenizer.ggml." + key, Value: gguf.Of(uint32(id))})
		}
	}
	special("bos_token_id", c.BOS, tc.token("bos_token"))
	special("eos_token_id", c.EOS, tc.token("eos_token"))
	special("padding_token_id", -1, tc.token("pad_token"))
	kv = append(kv,
		gguf.KV{Key: "tokenizer.ggml.add_bos_token", Value: gguf.Of(false)},
		gguf.KV{Key: "tokenizer.chat_template", Value: gguf.Of(tc.template())},
	)
	return kv, nil
}

type tokenizerConfig map[string]json.RawMessage

func readTokenizerConfig(dir string) (tokenizerConfig, error) {
	path := filepath.Join(dir, "tokenizer_config.json")
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil, nil
	}
	b, err := regfile.ReadFile(path, maxTokenizerConfig)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	var tc tokenizerConfig
	if err := json.Unmarshal(b, &tc); err != nil {
		return nil, fmt.Errorf("export: %s: %w", path, err)
	}
	return tc, nil
}

// token returns a special token's text: "<|endoftext|>" or
// {"content": "<|endoftext|>", ...}.
func (tc tokenizerConfig) token(key string) string {
	var s string
	if json.Unmarshal(tc[key], &s) == nil {
		return s
	}
	var o struct{ Content string }
	json.Unmarshal(tc[key], &o)
	return o.Content
}

// template returns the chat template: tokenizer_config.json's (a string, or
// the "default" of a list of named templates), else golem's ChatML.
func (tc tokenizerConfig) template() string {
	var s string
	if json.Unmarshal(tc["chat_template"], &s) == nil && s != "" {
		return s
	}
	var named []struct{ Name, Template string }
	if json.Unmarshal(tc["chat_template"], &named) == nil {
		for _, n := range named {
			if n.Name == "default" {
				return n.Template
			}
		}
	}
	return tokenizer.ChatTemplate
}

// source is one checkpoint tensor and how it becomes a GGUF tensor.
type source struct {
	gguf       string
	hf         string
	shape      []int                       // the checkpoint's shape
	fix        func(x []float32) []float32 // layout change, or nil
	transposed bool                        // fix transposes a matrix
}

// plan maps the checkpoint's tensors to GGUF tensors, checking each against
// the config, and refusing tensors it does not know.
func plan(dir string, c *gpt.Config, st *safetensors.Model, typ gguf.TensorType, r *Report) ([]gguf.Tensor, error) {
	var srcs []source
	var skip func(name string) bool
	H, F, V, hd := c.Hidden, c.Intermediate, c.Vocab, c.HeadDim()
	add := func(g, h string, fix func([]float32) []float32, shape ...int) {
		srcs = append(srcs, source{gguf: g, hf: h, shape: shape, fix: fix})
	}
	addT := func(g, h string, rows, cols int) {
		srcs = append(srcs, source{gguf: g, hf: h, shape: []int{rows, cols}, fix: transpose(rows, cols), transposed: true})
	}
	has := func(name string) bool { _, ok := st.Info(name); return ok }
	switch c.Arch {
	case "gpt2":
		p := ""
		if has("transformer.wte.weight") {
			p = "transformer."
		}
		add("token_embd.weight", p+"wte.weight", nil, V, H)
		add("position_embd.weight", p+"wpe.weight", nil, c.Context, H)
		for l := range c.Layers {
			b, h := fmt.Sprintf("blk.%d.", l), fmt.Sprintf("%sh.%d.", p, l)
			add(b+"attn_norm.weight", h+"ln_1.weight", nil, H)
			add(b+"attn_norm.bias", h+"ln_1.bias", nil, H)
			addT(b+"attn_qkv.weight", h+"attn.c_attn.weight", H, 3*H)
			add(b+"attn_qkv.bias", h+"attn.c_attn.bias", nil, 3*H)
			addT(b+"attn_output.weight", h+"attn.c_proj.weight", H, H)
			add(b+"attn_output.bias", h+"attn.c_proj.bias", nil, H)
			add(b+"ffn_norm.weight", h+"ln_2.weight", nil, H)
			add(b+"ffn_norm.bias", h+"ln_2.bias", nil, H)
			addT(b+"ffn_up.weight", h+"mlp.c_fc.weight", H, F)
			add(b+"ffn_up.bias", h+"mlp.c_fc.bias", nil, F)
			addT(b+"ffn_down.weight", h+"mlp.c_proj.weight", F, H)
			add(b+"ffn_down.bias", h+"mlp.c_proj.bias", nil, H)
		}
		add("output_norm.weight", p+"ln_f.weight", nil, H)
		add("output_norm.bias", p+"ln_f.bias", nil, H)
		if has("lm_head.weight") && !c.Tied {
			add("output.weight", "lm_head.weight", nil, V, H)
		} else {
			// convert_hf_to_gguf.py writes GPT-2's tied head as its own tensor.
			add("output.weight", p+"wte.weight", nil, V, H)
		}
		skip = func(n string) bool {
			return strings.HasSuffix(n, ".attn.bias") || strings.HasSuffix(n, ".attn.masked_bias") || n == "lm_head.weight"
		}
	case "llama", "qwen2":
		add("token_embd.weight", "model.embed_tokens.weight", nil, V, H)
		// llama.cpp's llama uses RoPE on adjacent pairs, transformers on
		// halves: permute q and k as LlamaModel.permute does. Qwen2 runs
		// NEOX RoPE (halves) in llama.cpp and is written as it is.
		var permQ, permK func([]float32) []float32
		if c.Arch == "llama" {
			permQ, permK = permute(c.Heads, hd, H), permute(c.KVHeads, hd, H)
		}
		biasQ, biasK := permQ, permK
		if c.Arch == "llama" {
			biasQ, biasK = permute(c.Heads, hd, 1), permute(c.KVHeads, hd, 1)
		}
		for l := range c.Layers {
			b, h := fmt.Sprintf("blk.%d.", l), fmt.Sprintf("model.layers.%d.", l)
			add(b+"attn_norm.weight", h+"input_layernorm.weight", nil, H)
			add(b+"attn_q.weight", h+"self_attn.q_proj.weight", permQ, c.Heads*hd, H)
			add(b+"attn_k.weight", h+"self_attn.k_proj.weight", permK, c.KVHeads*hd, H)
			add(b+"attn_v.weight", h+"self_attn.v_proj.weight", nil, c.KVHeads*hd, H)
			for _, x := range []struct {
				g, h string
				fix  func([]float32) []float32
				n    int
			}{{"attn_q", "q_proj", biasQ, c.Heads * hd}, {"attn_k", "k_proj", biasK, c.KVHeads * hd}, {"attn_v", "v_proj", nil, c.KVHeads * hd}, {"attn_output", "o_proj", nil, H}} {
				if has(h + "self_attn." + x.h + ".bias") {
					add(b+x.g+".bias", h+"self_attn."+x.h+".bias", x.fix, x.n)
				}
			}
			add(b+"attn_output.weight", h+"self_attn.o_proj.weight", nil, H, c.Heads*hd)
			add(b+"ffn_norm.weight", h+"post_attention_layernorm.weight", nil, H)
			add(b+"ffn_gate.weight", h+"mlp.gate_proj.weight", nil, F, H)
			add(b+"ffn_up.weight", h+"mlp.up_proj.weight", nil, F, H)
			add(b+"ffn_down.weight", h+"mlp.down_proj.weight", nil, H, F)
		}
		add("output_norm.weight", "model.norm.weight", nil, H)
		if !c.Tied {
			add("output.weight", "lm_head.weight", nil, V, H)
		}
		skip = func(n string) bool {
			return strings.HasSuffix(n, "rotary_emb.inv_freq") || (c.Tied && n == "lm_head.weight")
		}
	default:
		return nil, fmt.Errorf("export: %s: architecture %q has no GGUF export (gpt2, llama, qwen2)", dir, c.Arch)
	}

	used := map[string]bool{}
	var out []gguf.Tensor
	if c.RopeScaling != nil {
		// Llama 3's RoPE scaling: one factor per frequency, first, as
		// convert_hf_to_gguf.py's generate_extra_tensors yields it.
		x := llama.FreqFactors(c.RopeTheta, hd, c.RopeScaling)
		r.Types[gguf.F32]++
		out = append(out, gguf.Tensor{Name: gpt.RopeFreqsTensor, Dims: []int64{int64(len(x))}, Type: gguf.F32, Data: func() ([]byte, error) {
			return gguf.Quantize(gguf.F32, x)
		}})
	}
	for _, s := range srcs {
		info, ok := st.Info(s.hf)
		if !ok {
			return nil, fmt.Errorf("export: %s: the checkpoint has no tensor %q (needed for %s)", dir, s.hf, s.gguf)
		}
		if !slices.Equal(info.Shape, s.shape) {
			return nil, fmt.Errorf("export: %s: tensor %q has shape %v, config.json says %v", dir, s.hf, info.Shape, s.shape)
		}
		used[s.hf] = true
		// ggml's dims are the reverse of the row-major shape after the
		// layout change (a transposed GPT-2 weight is [out, in]).
		shape := slices.Clone(s.shape)
		if s.transposed {
			shape[0], shape[1] = shape[1], shape[0]
		}
		dims := make([]int64, len(shape))
		for i, d := range shape {
			dims[len(shape)-1-i] = int64(d)
		}
		t := gguf.F32
		if len(dims) == 2 {
			t = typ
			if dims[0]%int64(t.BlockSize()) != 0 {
				t = gguf.F16
				r.Fallback = append(r.Fallback, s.gguf)
			}
		}
		r.Types[t]++
		s := s
		out = append(out, gguf.Tensor{Name: s.gguf, Dims: dims, Type: t, Data: func() ([]byte, error) {
			x, _, err := st.Float32(s.hf)
			if err != nil {
				return nil, err
			}
			if s.fix != nil {
				x = s.fix(x)
			}
			return gguf.Quantize(t, x)
		}})
	}
	for _, n := range st.Names() {
		if !used[n] && !skip(n) {
			return nil, fmt.Errorf("export: %s: tensor %q has no place in a %s GGUF file", dir, n, c.Arch)
		}
	}
	return out, nil
}

// transpose returns the change from a row-major [rows, cols] matrix to
// [cols, rows] (GPT-2's Conv1D [in, out] weights to [out, in]).
func transpose(rows, cols int) func([]float32) []float32 {
	return func(x []float32) []float32 { return gguf.Transpose(x, rows, cols) }
}

// permute returns convert_hf_to_gguf.py's LlamaModel.permute (see
// gguf.PermuteRoPE) for a weight of heads*hd rows of cols values (cols 1
// for a bias).
func permute(heads, hd, cols int) func([]float32) []float32 {
	return func(x []float32) []float32 { return gguf.PermuteRoPE(x, heads, hd, cols, false) }
}
