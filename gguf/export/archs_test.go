package export

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/internal/testmodels"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/llama"
)

// llama3Scaling is a Llama 3 RoPE scaling that matters in a 64-token
// context with heads of 16 (theta 10000, wavelengths 6.3, 20, 63, 199...):
// the blend from wavelength 8 to 64 covers two frequencies, the five
// longer ones are divided by 8, so at position 40 the slowest rotations
// turn an eighth as far.
var llama3Scaling = llama.RopeScaling{Factor: 8, LowFreqFactor: 0.5, HighFreqFactor: 4, OriginalContext: 32}

// scaledModels returns a block model with Llama 3's RoPE scaling and the
// same weights without it.
func scaledModels(t *testing.T) (scaled, plain string) {
	t.Helper()
	return blockModelWith(t, "llama", func(c *gpt.Config) { s := llama3Scaling; c.RopeScaling = &s }), blockModel(t, "llama")
}

// longPrompt is a prompt of n tokens (ids spread over the vocabulary:
// vocab()'s, 100 to 50,099 in the full run).
func longPrompt(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = 100 + (i*7919)%(vocab()-257)
	}
	return p
}

// A Llama model with Llama 3's RoPE scaling exports with its factors as
// rope_freqs.weight (convert_hf_to_gguf.py's tensor, first) and loads back
// with the same scaling: the same inverse frequencies and, in F32, the
// folder's logits at every position of a 44-token prompt; without the
// scaling the logits there are others.
func TestGGUFRopeScalingRoundTrip(t *testing.T) {
	scaled, plain := scaledModels(t)
	file := filepath.Join(t.TempDir(), "scaled.gguf")
	exportTo(t, scaled, file, gguf.F32)
	f, err := gguf.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	ts := f.Tensors()
	factors, _, err := f.Float32(gpt.RopeFreqsTensor)
	f.Close()
	if err != nil || ts[0].Name != gpt.RopeFreqsTensor {
		t.Fatalf("first tensor %q, %s: %v", ts[0].Name, gpt.RopeFreqsTensor, err)
	}
	s := llama3Scaling
	if want := llama.FreqFactors(10000, 16, &s); !slices.Equal(factors, want) {
		t.Errorf("rope_freqs.weight %v, want %v", factors, want)
	}
	be := cpu.New()
	m := loadModel(t, be, file)
	if m.Config.RopeScaling == nil {
		t.Fatal("the scaling was not read back")
	}
	want, got := llama.InvFreq(10000, 16, &s), llama.InvFreq(10000, 16, m.Config.RopeScaling)
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-6*float64(want[i]) {
			t.Errorf("inverse frequency %d: %v read back, %v", i, got[i], want[i])
		}
	}
	ref := loadModel(t, be, scaled)
	unscaled := loadModel(t, be, plain)
	prompt := longPrompt(44)
	l := testmodels.Logits(ref, prompt)
	if e := testmodels.RelDiff(testmodels.Logits(m, prompt), l); e > 1e-5 {
		t.Errorf("the GGUF file's logits are %.2g off the folder's", e)
	}
	e := testmodels.RelDiff(testmodels.Logits(unscaled, prompt), l)
	t.Logf("without the scaling the logits are %.2g off", e)
	if e < 0.05 {
		t.Errorf("without the scaling the logits are only %.2g off: the test's context does not exercise it", e)
	}
}

// llama.cpp runs golem's export of a Llama model with Llama 3's RoPE
// scaling as golem runs the folder: the same 12 greedy tokens after a
// 44-token prompt, where the scaled frequencies decide them (golem's
// greedy tokens without the scaling, and llama.cpp's on the unscaled
// export, are others). The file llama.cpp's own writer makes of it
// (llama_model_quantize to Q8_0) reads back with the same scaling. And
// llama.cpp ignores a sliding window in a llama or qwen2 file's metadata.
func TestLlamaCppRopeScaling(t *testing.T) {
	node := needLlamaCpp(t)
	const n = 12
	scaled, plain := scaledModels(t)
	out := t.TempDir()
	files := []string{filepath.Join(out, "scaled.gguf"), filepath.Join(out, "plain.gguf")}
	var want [2][]int
	prompt := longPrompt(44)
	for i, dir := range []string{scaled, plain} {
		exportTo(t, dir, files[i], gguf.F32)
		m := loadModel(t, cpu.New(), dir)
		want[i] = greedy(t, m, prompt, n)
	}
	if slices.Equal(want[0], want[1]) {
		t.Fatalf("golem decodes %v with and without the scaling: the test's context does not exercise it", want[0])
	}
	// llama.cpp's llama and qwen2 read no sliding window: a window of 4
	// in their keys changes nothing it decodes (so golem writes Mistral's
	// nowhere, as convert_hf_to_gguf.py does: TestGGUFMistral).
	qwen := filepath.Join(out, "qwen2.gguf")
	exportTo(t, blockModel(t, "qwen2"), qwen, gguf.F32)
	windowed := map[string]string{
		files[1]: rewrite(t, files[1], setKV("llama.attention.sliding_window", gguf.Of(uint32(4))), nil),
		qwen:     rewrite(t, qwen, setKV("qwen2.attention.sliding_window", gguf.Of(uint32(4))), nil),
	}
	all := append(slices.Clone(files), qwen)
	for _, w := range windowed {
		all = append(all, w)
	}
	res := runLlamaCpp(t, node, n, prompt, all...)
	for f, w := range windowed {
		if a, b := res[f], res[w]; a.Error != "" || b.Error != "" || len(a.Tokens) != n || !slices.Equal(a.Tokens, b.Tokens) {
			t.Errorf("%s: llama.cpp decodes %v (%s), with a sliding window of 4 in its metadata %v (%s)", filepath.Base(f), a.Tokens, a.Error, b.Tokens, b.Error)
		}
	}
	for i, f := range files {
		r := res[f]
		if r.Error != "" {
			t.Fatalf("%s: llama.cpp refused it: %s", filepath.Base(f), r.Error)
		}
		t.Logf("%s: llama.cpp %v, golem %v", filepath.Base(f), r.Tokens, want[i])
		if !slices.Equal(r.Tokens, want[i]) {
			t.Errorf("%s: llama.cpp decodes %v, golem %v", filepath.Base(f), r.Tokens, want[i])
		}
	}
	q8 := filepath.Join(out, "scaled-llama.cpp-q8_0.gguf")
	llamaQuantize(t, files[0], q8, "q8_0")
	m := loadModel(t, cpu.New(), q8)
	s := llama3Scaling
	if m.Config.RopeScaling == nil || !slices.EqualFunc(llama.InvFreq(10000, 16, m.Config.RopeScaling), llama.InvFreq(10000, 16, &s),
		func(a, b float32) bool { return math.Abs(float64(a-b)) <= 1e-6*float64(b) }) {
		t.Errorf("llama.cpp's file: scaling %+v, want %+v", m.Config.RopeScaling, s)
	}
}

// A Mistral model exports as convert_hf_to_gguf.py writes one: the llama
// architecture and no sliding window, which llama.cpp's llama and qwen2
// would not read (a file with llama.attention.sliding_window 4, or
// qwen2's, decodes in llama.cpp as the file without it). So the file is
// the model without its window: the folder's logits while the window
// holds every position, the windowless model's past it; the export's
// note says so when the window is shorter than the context.
func TestGGUFMistral(t *testing.T) {
	mistral := func(w int) string {
		return blockModelWith(t, "llama", func(c *gpt.Config) { c.Arch, c.SlidingWindow = "mistral", w })
	}
	dir, file := mistral(8), filepath.Join(t.TempDir(), "mistral.gguf")
	r, err := Folder(dir, file, Options{Type: gguf.F32})
	if err != nil {
		t.Fatal(err)
	}
	if r.Arch != "llama" || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "sliding_window 8: llama.cpp's llama architecture attends to every position") {
		t.Errorf("report %+v", r)
	}
	f, err := gguf.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range f.KV() {
		if strings.Contains(kv.Key, "sliding_window") {
			t.Errorf("metadata %s", kv.Key)
		}
	}
	f.Close()
	be := cpu.New()
	m := loadModel(t, be, file)
	ref := loadModel(t, be, dir)
	plain := loadModel(t, be, blockModel(t, "llama"))
	if m.Config.Arch != "llama" || m.Config.SlidingWindow != 0 {
		t.Errorf("read back as %s with a window of %d", m.Config.Arch, m.Config.SlidingWindow)
	}
	short, long := longPrompt(8), longPrompt(44)
	if e := testmodels.RelDiff(testmodels.Logits(m, short), testmodels.Logits(ref, short)); e > 1e-5 {
		t.Errorf("within the window the file's logits are %.2g off the folder's", e)
	}
	if e := testmodels.RelDiff(testmodels.Logits(m, long), testmodels.Logits(plain, long)); e > 1e-5 {
		t.Errorf("the file's logits are %.2g off the windowless model's", e)
	}
	e := testmodels.RelDiff(testmodels.Logits(m, long), testmodels.Logits(ref, long))
	t.Logf("past the window the file's logits are %.2g off the folder's", e)
	if e < 0.01 {
		t.Errorf("past the window the file's logits are only %.2g off the folder's: the window does not bind", e)
	}
	if r, err := Folder(mistral(64), filepath.Join(t.TempDir(), "m.gguf"), Options{Type: gguf.F32}); err != nil || len(r.Notes) != 0 {
		t.Errorf("a window as long as the context: %+v, %v (want no note)", r, err)
	}
}

// A Llama folder with attention_bias exports its o_proj biases as
// llama.cpp names them (blk.N.attn_output.bias, beside attn_q/k/v.bias),
// and the file reads back as the folder: the same logits.
func TestGGUFLlamaAttentionBias(t *testing.T) {
	dir := testmodels.AttentionBiasLlama(t, fixture(t, "llama-tiny"), 1)
	file := filepath.Join(t.TempDir(), "m.gguf")
	exportTo(t, dir, file, gguf.F32)
	f, err := gguf.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"blk.0.attn_output.bias", "blk.1.attn_output.bias", "blk.1.attn_q.bias"} {
		if _, _, err := f.Float32(n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	f.Close()
	be := cpu.New()
	ids := longPrompt(12)
	if e := testmodels.RelDiff(testmodels.Logits(loadModel(t, be, file), ids), testmodels.Logits(loadModel(t, be, dir), ids)); e > 1e-5 {
		t.Errorf("the file's logits are %.2g off the folder's", e)
	}
}
