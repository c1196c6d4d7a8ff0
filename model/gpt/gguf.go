package gpt

import (
	"fmt"
	"slices"
	"strings"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/model/llama"
	"github.com/golem-ml/golem/model/weights"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// GGUF models: llama.cpp's, Ollama's and golem export's files of the
// architectures golem has. The metadata gives the config, the tensors go
// onto the backend under golem's (Hugging Face) names with llama.cpp's
// layout changes undone: Llama's q and k rows back from adjacent RoPE
// pairs to halves, GPT-2's [out, in] float weights back to Conv1D's
// [in, out]. Q8_0, Q4_0, F16 and BF16 matrices stay as they are where the
// backend has backend.Quantized (their rows are permuted as bytes; such a
// GPT-2 layer keeps llama.cpp's [out, in] and runs as a plain linear
// layer), Q4_1, Q5_0, Q5_1, IQ4_NL and the k-quants become Q8_0 there.

// ConfigFromGGUF returns the model config a GGUF file's metadata describes
// (general.architecture gpt2, llama or qwen2 and its keys), checked as
// config.json is, with the vocabulary size, tied head (no output.weight,
// or one of token_embd's bytes) and biases read from the tensors. Errors
// name the file and the key.
func ConfigFromGGUF(f *gguf.File) (*Config, error) {
	where := f.Path()
	av, _ := f.Get("general.architecture")
	arch, _ := av.String()
	switch arch {
	case "gpt2", "llama", "qwen2":
	default:
		// Mistral's files say "llama" (llama.cpp has no sliding window for
		// them); golem's other config.json architectures have no GGUF
		// reader here.
		return nil, fmt.Errorf("gpt: %s: general.architecture %q is not one golem reads from GGUF (gpt2, llama, qwen2)", where, arch)
	}
	// num reads arch.key as a positive integer (whole) or a number; a
	// missing key is def, or an error when def is negative.
	num := func(key string, def float64, whole bool) (float64, error) {
		v, ok := f.Get(arch + "." + key)
		switch {
		case !ok && def >= 0:
			return def, nil
		case !ok:
			return 0, fmt.Errorf("gpt: %s: metadata %s.%s is missing", where, arch, key)
		case whole:
			if n, ok := v.Int(); ok && n > 0 && n <= 1<<30 {
				return float64(n), nil
			}
			return 0, fmt.Errorf("gpt: %s: metadata %s.%s is %v, want a positive integer", where, arch, key, v.Any())
		}
		x, ok := v.Float()
		if !ok {
			return 0, fmt.Errorf("gpt: %s: metadata %s.%s is %v, want a number", where, arch, key, v.Any())
		}
		return x, nil
	}
	integer := func(key string, def int) (int, error) { x, err := num(key, float64(def), true); return int(x), err }
	c := &Config{Arch: arch, BOS: -1, EOS: -1}
	var err error
	for _, k := range []struct {
		key string
		to  *int
	}{{"context_length", &c.Context}, {"embedding_length", &c.Hidden}, {"block_count", &c.Layers},
		{"feed_forward_length", &c.Intermediate}, {"attention.head_count", &c.Heads}} {
		if *k.to, err = integer(k.key, -1); err != nil {
			return nil, err
		}
	}
	if c.KVHeads, err = integer("attention.head_count_kv", c.Heads); err != nil {
		return nil, err
	}
	var eps float64
	if arch == "gpt2" {
		eps, err = num("attention.layer_norm_epsilon", -1, false)
		c.Activation, c.Bias = "gelu_new", has(f, "blk.0.attn_qkv.bias")
	} else {
		eps, err = num("attention.layer_norm_rms_epsilon", -1, false)
		c.Bias = has(f, "blk.0.attn_q.bias")
	}
	if err != nil {
		return nil, err
	}
	c.Eps = float32(eps)
	if arch != "gpt2" {
		if c.RopeTheta, err = num("rope.freq_base", 10000, false); err != nil {
			return nil, err
		}
		// Llama 3's RoPE scaling is rope_freqs.weight (read below, once
		// the head size is known); llama.cpp's other kinds (linear, yarn,
		// longrope) are rope.scaling.* keys golem has no model for.
		if v, ok := f.Get(arch + ".rope.scaling.type"); ok {
			if s, _ := v.String(); s != "" && s != "none" {
				return nil, fmt.Errorf("gpt: %s: metadata %s.rope.scaling.type is %q: golem runs Llama 3's RoPE scaling (rope_freqs.weight) only", where, arch, s)
			}
		}
		// A sliding window (Config.SlidingWindow) has no key llama.cpp's
		// llama or qwen2 read; one that says so is refused, not ignored.
		if _, ok := f.Get(arch + ".attention.sliding_window"); ok {
			return nil, fmt.Errorf("gpt: %s: metadata %s.attention.sliding_window: golem reads a sliding window (Mistral's) from a config.json, not from GGUF (run the Hugging Face folder)", where, arch)
		}
	}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok || len(emb.Dims) != 2 {
		return nil, fmt.Errorf("gpt: %s: no 2-D tensor \"token_embd.weight\"", where)
	}
	c.Vocab = int(min(emb.Dims[1], 1<<31))
	if v, err := integer("vocab_size", c.Vocab); err != nil {
		return nil, err
	} else if v != c.Vocab {
		return nil, fmt.Errorf("gpt: %s: metadata %s.vocab_size is %d, but token_embd.weight has %d rows", where, arch, v, c.Vocab)
	}
	if c.Heads > 0 && c.Hidden%c.Heads == 0 && arch != "gpt2" {
		if d, err := integer("rope.dimension_count", c.Hidden/c.Heads); err != nil {
			return nil, err
		} else if d != c.Hidden/c.Heads {
			return nil, fmt.Errorf("gpt: %s: metadata %s.rope.dimension_count is %d, not the head size %d: golem rotates whole heads", where, arch, d, c.Hidden/c.Heads)
		}
	}
	if has(f, RopeFreqsTensor) {
		if c.RopeScaling, err = ropeScalingFromGGUF(f, c); err != nil {
			return nil, err
		}
	}
	if c.Tied = !has(f, "output.weight"); !c.Tied {
		// convert_hf_to_gguf.py writes GPT-2's tied head as a tensor of
		// its own: the same bytes as token_embd.
		if c.Tied, err = sameTensor(f, "output.weight", "token_embd.weight"); err != nil {
			return nil, err
		}
	}
	for _, k := range []struct {
		key string
		to  *int
	}{{"bos_token_id", &c.BOS}, {"eos_token_id", &c.EOS}} {
		if v, ok := f.Get("tokenizer.ggml." + k.key); ok {
			if id, ok := v.Int(); ok && id >= 0 && int(id) < c.Vocab {
				*k.to = int(id)
			}
		}
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("gpt: %s: metadata: %w", where, err)
	}
	return c, nil
}

// sameTensor reports whether tensors a and b have the same type, dims
// and bytes.
func sameTensor(f *gguf.File, a, b string) (bool, error) {
	ia, _ := f.Tensor(a)
	ib, _ := f.Tensor(b)
	if ia.Type != ib.Type || !slices.Equal(ia.Dims, ib.Dims) {
		return false, nil
	}
	ra, _, err := f.Raw(a)
	if err != nil {
		return false, fmt.Errorf("gpt: %w", err)
	}
	rb, _, err := f.Raw(b)
	if err != nil {
		return false, fmt.Errorf("gpt: %w", err)
	}
	return string(ra) == string(rb), nil
}

func has(f *gguf.File, name string) bool { _, ok := f.Tensor(name); return ok }

// RopeFreqsTensor is llama.cpp's tensor of Llama 3's RoPE scaling: one
// factor per frequency (model/llama's FreqFactors).
const RopeFreqsTensor = "rope_freqs.weight"

// ropeScalingFromGGUF reads Llama 3's RoPE scaling from the factors of
// rope_freqs.weight (model/llama's ScalingFromFactors): nil when every
// factor is 1.
func ropeScalingFromGGUF(f *gguf.File, c *Config) (*llama.RopeScaling, error) {
	where := f.Path()
	if c.Arch != "llama" {
		return nil, fmt.Errorf("gpt: %s: tensor %q (Llama 3's RoPE scaling) in a %s model: llama.cpp reads it for the llama architecture only", where, RopeFreqsTensor, c.Arch)
	}
	info, _ := f.Tensor(RopeFreqsTensor)
	if c.Heads <= 0 || c.Hidden%c.Heads != 0 || len(info.Dims) != 1 || info.Dims[0] != int64(c.Hidden/c.Heads/2) {
		return nil, fmt.Errorf("gpt: %s: tensor %q has dims %v, want [%d] (half the head size)", where, RopeFreqsTensor, info.Dims, c.Hidden/max(1, c.Heads)/2)
	}
	x, _, err := f.Float32(RopeFreqsTensor)
	if err != nil {
		return nil, fmt.Errorf("gpt: %w", err)
	}
	s, err := llama.ScalingFromFactors(c.RopeTheta, c.Hidden/c.Heads, x)
	if err != nil {
		return nil, fmt.Errorf("gpt: %s: tensor %q: %w", where, RopeFreqsTensor, err)
	}
	return s, nil
}

// GGUFTensor is a tensor of a GGUF model file: its name there (llama.cpp's),
// its ggml dims (innermost first) as the config says they are, the
// parameter it holds (Param: golem's name, the Hugging Face checkpoint's)
// and the layout change between the two (ToGGUF, FromGGUF).
type GGUFTensor struct {
	Name  string
	Param string
	Dims  []int64
	rope  int  // heads whose rows are permuted (Llama's q and k), 0 for none
	hd    int  // the head size, with rope
	conv  bool // GPT-2's Conv1D weight: [in, out] in the checkpoint
}

// GGUFTensors lists the tensors a GGUF file of a model of config c holds,
// in the order golem export writes them: the one map between golem's (Hugging
// Face's) tensor names and llama.cpp's, which LoadGGUF reads a file by and
// gguf/export writes one by.
func GGUFTensors(c *Config) []GGUFTensor {
	H, F, V, hd := int64(c.Hidden), int64(c.Intermediate), int64(c.Vocab), int64(c.HeadDim())
	Q, KV := int64(c.Heads)*hd, int64(c.KVHeads)*hd
	var ts []GGUFTensor
	add := func(g, p string, dims ...int64) { ts = append(ts, GGUFTensor{Name: g, Param: p, Dims: dims}) }
	last := func() *GGUFTensor { return &ts[len(ts)-1] }
	switch c.Arch {
	case "gpt2":
		add("token_embd.weight", "transformer.wte.weight", H, V)
		add("position_embd.weight", "transformer.wpe.weight", H, int64(c.Context))
		for l := range c.Layers {
			b, h := fmt.Sprintf("blk.%d.", l), fmt.Sprintf("transformer.h.%d.", l)
			lin := func(g, p string, in, out int64) {
				add(b+g+".weight", h+p+".weight", in, out)
				last().conv = true
				if c.Bias {
					add(b+g+".bias", h+p+".bias", out)
				}
			}
			norm := func(g, p string) {
				add(b+g+".weight", h+p+".weight", H)
				if c.Bias {
					add(b+g+".bias", h+p+".bias", H)
				}
			}
			norm("attn_norm", "ln_1")
			lin("attn_qkv", "attn.c_attn", H, 3*H)
			lin("attn_output", "attn.c_proj", H, H)
			norm("ffn_norm", "ln_2")
			lin("ffn_up", "mlp.c_fc", H, F)
			lin("ffn_down", "mlp.c_proj", F, H)
		}
		add("output_norm.weight", "transformer.ln_f.weight", H)
		if c.Bias {
			add("output_norm.bias", "transformer.ln_f.bias", H)
		}
	default:
		add("token_embd.weight", "model.embed_tokens.weight", H, V)
		ends := []string{".weight"}
		if c.Bias {
			ends = append(ends, ".bias")
		}
		for l := range c.Layers {
			b, h := fmt.Sprintf("blk.%d.", l), fmt.Sprintf("model.layers.%d.", l)
			add(b+"attn_norm.weight", h+"input_layernorm.weight", H)
			for _, end := range ends {
				for _, x := range []struct {
					g, p  string
					out   int64
					heads int
				}{{"attn_q", "q_proj", Q, c.Heads}, {"attn_k", "k_proj", KV, c.KVHeads}, {"attn_v", "v_proj", KV, 0}} {
					dims := []int64{H, x.out}
					if end == ".bias" {
						dims = dims[1:]
					}
					add(b+x.g+end, h+"self_attn."+x.p+end, dims...)
					// llama.cpp runs Llama's RoPE on adjacent pairs,
					// transformers on halves; Qwen2's is NEOX (halves) in
					// both.
					if c.Arch != "qwen2" {
						last().rope, last().hd = x.heads, int(hd)
					}
				}
			}
			add(b+"attn_output.weight", h+"self_attn.o_proj.weight", Q, H)
			if llama.OutputBias(c.Arch, c.Bias) {
				add(b+"attn_output.bias", h+"self_attn.o_proj.bias", H)
			}
			add(b+"ffn_norm.weight", h+"post_attention_layernorm.weight", H)
			add(b+"ffn_gate.weight", h+"mlp.gate_proj.weight", H, F)
			add(b+"ffn_up.weight", h+"mlp.up_proj.weight", H, F)
			add(b+"ffn_down.weight", h+"mlp.down_proj.weight", F, H)
		}
		add("output_norm.weight", "model.norm.weight", H)
	}
	if !c.Tied {
		add("output.weight", "lm_head.weight", H, V)
	}
	return ts
}

// Shape is the tensor's shape in the checkpoint (row-major): a Conv1D
// weight's [in, out], the others' ggml dims reversed.
func (t GGUFTensor) Shape() []int {
	s := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		s[len(s)-1-i] = int(d)
	}
	if t.conv {
		s[0], s[1] = s[1], s[0]
	}
	return s
}

// ToGGUF changes x, the tensor's values as the checkpoint holds them, to
// llama.cpp's layout, as convert_hf_to_gguf.py does: Llama's q and k rows
// from halves to adjacent RoPE pairs (LlamaModel.permute), GPT-2's Conv1D
// weights transposed to [out, in]. FromGGUF undoes it.
func (t GGUFTensor) ToGGUF(x []float32) []float32 { return t.layout(x, false) }

// FromGGUF changes x, the tensor's values in a GGUF file, back to the
// checkpoint's layout.
func (t GGUFTensor) FromGGUF(x []float32) []float32 { return t.layout(x, true) }

func (t GGUFTensor) layout(x []float32, back bool) []float32 {
	switch {
	case t.conv && back:
		return gguf.Transpose(x, int(t.Dims[1]), int(t.Dims[0]))
	case t.conv:
		return gguf.Transpose(x, int(t.Dims[0]), int(t.Dims[1]))
	case t.rope > 0: // rows of Dims[0] values, or of one (a bias)
		return gguf.PermuteRoPE(x, t.rope, t.hd, len(x)/int(t.Dims[len(t.Dims)-1]), back)
	}
	return x
}

// LoadGGUF reads a GGUF model file. The config comes from the metadata
// (ConfigFromGGUF) and every tensor's dims are checked against it before
// anything is allocated, so memory stays bounded by the file's tensors;
// a missing tensor, an unexpected one, a type golem does not read (gguf
// names it), NaN or infinite float weights or scales, and data cut short
// are errors naming the file and the tensor. Q8_0, Q4_0, F16 and BF16 matrices
// stay in that form on a backend with backend.Quantized (no gradient: the
// model can be fine-tuned through LoRA only), and Q4_1, Q5_0, Q5_1, IQ4_NL and
// k-quant (Q2_K..Q6_K) ones are dequantized and rounded to Q8_0 there
// (requantized); on other backends they are all converted to float32.
func LoadGGUF(be backend.Backend, path string) (*Model, error) {
	return loadGGUF(be, path, false)
}

// loadGGUF is LoadGGUF; with bf16, the F32 matrices of the linear layers
// (and of an untied head) are rounded to bfloat16 as they are read
// (LoadBF16).
func loadGGUF(be backend.Backend, path string, bf16 bool) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gpt: %w", err)
	}
	defer f.Close()
	c, err := ConfigFromGGUF(f)
	if err != nil {
		return nil, err
	}
	want := GGUFTensors(c)
	known := map[string]bool{}
	if c.Tied {
		known["output.weight"] = true // a copy of token_embd.weight
	}
	known[RopeFreqsTensor] = true // read by ConfigFromGGUF
	for _, t := range want {
		known[t.Name] = true
		info, ok := f.Tensor(t.Name)
		if !ok {
			return nil, fmt.Errorf("gpt: %s: no tensor %q (a %s model of %d layers has one)", path, t.Name, c.Arch, c.Layers)
		}
		if !slices.Equal(info.Dims, t.Dims) {
			return nil, fmt.Errorf("gpt: %s: tensor %q has dims %v, but the metadata (%s) says %v", path, t.Name, info.Dims, ggufSizes(c), t.Dims)
		}
	}
	for _, t := range f.Tensors() {
		if !known[t.Name] {
			return nil, fmt.Errorf("gpt: %s: unexpected tensor %q (no place in a %s model of %d layers)", path, t.Name, c.Arch, c.Layers)
		}
	}
	in := nn.NewInit(be, 0)
	in.Placeholders = true // each takes memory as it is read
	m, err := build(be, *c, in)
	if err != nil {
		return nil, fmt.Errorf("gpt: %s: %w", path, err)
	}
	params := map[string]*tensor.Tensor{}
	for _, p := range m.Params() {
		params[p.Name] = p.Tensor
	}
	// The holders of the matrices a quantized tensor may replace.
	linears := map[string]nn.NamedLinear{}
	for _, l := range m.matrices() {
		linears[l.Name+".weight"] = l
	}
	embeds := map[*tensor.Tensor]*nn.Embedding{m.Embed.Weight: m.Embed}
	if m.Pos != nil {
		embeds[m.Pos.Weight] = m.Pos
	}
	qb, canQuant := be.(backend.Quantized)
	if bf16 && !canQuant {
		_, err := bf16Backend(be)
		return nil, err
	}
	for _, t := range want {
		info, _ := f.Tensor(t.Name)
		qt := map[gguf.TensorType]backend.QuantType{gguf.Q8_0: backend.Q8_0, gguf.Q4_0: backend.Q4_0, gguf.F16: backend.F16, gguf.BF16: backend.BF16}[info.Type]
		l, isLinear := linears[t.Param]
		e, isEmbed := embeds[params[t.Param]]
		if canQuant && (isLinear || isEmbed) && (qt != 0 || requantized(info.Type)) {
			rows, cols := int(t.Dims[1]), int(t.Dims[0])
			raw, _, err := f.Raw(t.Name)
			if err != nil {
				return nil, fmt.Errorf("gpt: %w", err)
			}
			if qt == 0 {
				// A type the backend has no kernel for (Q4_1, Q5_0, IQ4_NL,
				// Q5_1, the k-quants): dequantized and rounded to Q8_0
				// a few rows at a time; Q8_0's blocks of 32 lie inside
				// theirs.
				if raw, err = gguf.Convert(info.Type, raw, cols, gguf.Q8_0); err != nil {
					return nil, fmt.Errorf("gpt: %s: tensor %q: %w", path, t.Name, err)
				}
				qt = backend.Q8_0
			}
			if t.rope > 0 {
				raw = gguf.PermuteRoPE(raw, t.rope, t.hd, cols/qt.BlockSize()*qt.BlockBytes(), true)
			}
			buf, err := qb.UploadQuant(qt, rows, cols, raw)
			if err != nil {
				return nil, fmt.Errorf("gpt: %s: tensor %q: %w", path, t.Name, err)
			}
			w := tensor.FromBuffer(be, buf, rows, cols)
			if isLinear {
				nn.Replace(&l.Linear.Weight, w)
				l.Linear.InOut = false
			} else {
				nn.Replace(&e.Weight, w)
			}
			continue
		}
		data, _, err := f.Float32(t.Name)
		if err != nil {
			return nil, fmt.Errorf("gpt: %w", err)
		}
		if err := weights.Finite(data, path, t.Name); err != nil {
			return nil, fmt.Errorf("gpt: %w", err)
		}
		if bf16 && isLinear { // llama.cpp's [out, in], Llama's q and k rows permuted back
			if !t.conv {
				data = t.FromGGUF(data)
			}
			if err := setBF16(qb, l, data); err != nil {
				return nil, fmt.Errorf("gpt: %s: %w", path, err)
			}
			continue
		}
		params[t.Param].Set(t.FromGGUF(data))
	}
	for _, p := range m.Params() {
		if p.Tensor.Buffer() == nil {
			return nil, fmt.Errorf("gpt: %s: no tensor holds %q", path, p.Name)
		}
	}
	return m, nil
}

// requantized reports whether a matrix of type t is rounded to Q8_0 on a
// backend with backend.Quantized: the quantized types it has no kernel for.
// Q8_0 costs 8.5 bits a weight against the k-quants' 4.5 (Q4_K) to 6.6
// (Q6_K), and its rounding (at most 1/254 of a block's largest value) is a
// small fraction of theirs.
func requantized(t gguf.TensorType) bool {
	return t.BlockSize() > 1 && t != gguf.Q8_0 && t != gguf.Q4_0
}

// ggufSizes names the metadata a tensor's dims are checked against.
func ggufSizes(c *Config) string {
	return fmt.Sprintf("%s: embedding_length %d, feed_forward_length %d, head_count %d, head_count_kv %d, vocabulary %d", c.Arch, c.Hidden, c.Intermediate, c.Heads, c.KVHeads, c.Vocab)
}

// Quantized returns the names of the parameters the backend keeps
// quantized (loaded from a GGUF file's Q8_0, Q4_0, F16 or BF16 matrices,
// or made bfloat16 by KeepBF16): they
// cannot be trained or changed, only adapted through LoRA.
func (m *Model) Quantized() []string {
	qb, ok := m.Embed.Weight.Backend().(backend.Quantized)
	if !ok {
		return nil
	}
	var out []string
	for _, p := range m.Params() {
		if _, q := qb.QuantOf(p.Tensor.Buffer()); q {
			out = append(out, p.Name)
		}
	}
	return out
}

// GGUFSummary describes a GGUF model file from its metadata and tensor
// infos alone, without reading its weights: its config, its number of
// parameters (as the loaded model counts them: a tied head's copy once),
// and the type most of its matrices stay in when loaded (Q8_0, Q4_0, F16
// or BF16; "F32" when none; Q4_1, Q5_0, IQ4_NL, Q5_1 and k-quant matrices
// become Q8_0). A server
// lists a model with it before loading it.
func GGUFSummary(path string) (c *Config, params int64, level string, err error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, 0, "", fmt.Errorf("gpt: %w", err)
	}
	defer f.Close()
	if c, err = ConfigFromGGUF(f); err != nil {
		return nil, 0, "", err
	}
	tiedCopy := c.Tied && has(f, "output.weight")
	count := map[gguf.TensorType]int{}
	for _, t := range f.Tensors() {
		if tiedCopy && t.Name == "output.weight" {
			continue
		}
		params += t.Elements()
		typ := t.Type
		if requantized(typ) && len(t.Dims) == 2 {
			typ = gguf.Q8_0 // what LoadGGUF keeps it as
		}
		count[typ]++
	}
	level, best := "F32", 0
	for _, t := range []gguf.TensorType{gguf.Q8_0, gguf.Q4_0, gguf.F16, gguf.BF16} {
		if count[t] > best {
			best, level = count[t], strings.ToUpper(t.String())
		}
	}
	return c, params, level, nil
}
