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

// plan maps the checkpoint's tensors to GGUF tensors by gpt.GGUFTensors
// (the names and layouts gpt.LoadGGUF reads back), checking each against
// the config, and refusing tensors it does not know.
func plan(dir string, c *gpt.Config, st *safetensors.Model, typ gguf.TensorType, r *Report) ([]gguf.Tensor, error) {
	if c.Arch != "gpt2" && c.Arch != "llama" && c.Arch != "qwen2" {
		return nil, fmt.Errorf("export: %s: architecture %q has no GGUF export (gpt2, llama, qwen2)", dir, c.Arch)
	}
	full := *c
	full.Bias = c.Bias || c.FixedBias() // GPT-2's checkpoint holds its biases, zero in a model without
	ts := gpt.GGUFTensors(&full)
	checkpoint := func(name string) string { return name }
	if c.Arch == "gpt2" {
		if _, ok := st.Info("transformer.wte.weight"); !ok { // GPT2Model's names
			checkpoint = func(name string) string { return strings.TrimPrefix(name, "transformer.") }
		}
		if c.Tied {
			// convert_hf_to_gguf.py writes GPT-2's tied head as its own tensor.
			head := ts[0]
			head.Name = "output.weight"
			ts = append(ts, head)
		}
	}
	used := map[string]bool{}
	var out []gguf.Tensor
	if c.RopeScaling != nil {
		// Llama 3's RoPE scaling: one factor per frequency, first, as
		// convert_hf_to_gguf.py's generate_extra_tensors yields it.
		x := llama.FreqFactors(c.RopeTheta, c.HeadDim(), c.RopeScaling)
		r.Types[gguf.F32]++
		out = append(out, gguf.Tensor{Name: gpt.RopeFreqsTensor, Dims: []int64{int64(len(x))}, Type: gguf.F32, Data: func() ([]byte, error) {
			return gguf.Quantize(gguf.F32, x)
		}})
	}
	for _, g := range ts {
		name := checkpoint(g.Param)
		info, ok := st.Info(name)
		if !ok {
			return nil, fmt.Errorf("export: %s: the checkpoint has no tensor %q (needed for %s)", dir, name, g.Name)
		}
		if shape := g.Shape(); !slices.Equal(info.Shape, shape) {
			return nil, fmt.Errorf("export: %s: tensor %q has shape %v, config.json says %v", dir, name, info.Shape, shape)
		}
		used[name] = true
		t := gguf.F32
		if len(g.Dims) == 2 {
			t = typ
			if g.Dims[0]%int64(t.BlockSize()) != 0 {
				t = gguf.F16
				r.Fallback = append(r.Fallback, g.Name)
			}
		}
		r.Types[t]++
		out = append(out, gguf.Tensor{Name: g.Name, Dims: g.Dims, Type: t, Data: func() ([]byte, error) {
			x, _, err := st.Float32(name)
			if err != nil {
				return nil, err
			}
			return gguf.Quantize(t, g.ToGGUF(x))
		}})
	}
	for _, n := range st.Names() {
		if !used[n] && !gpt.IsBuffer(n) && !(c.Tied && n == "lm_head.weight") {
			return nil, fmt.Errorf("export: %s: tensor %q has no place in a %s GGUF file", dir, n, c.Arch)
		}
	}
	return out, nil
}
