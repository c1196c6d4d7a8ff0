package export

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/golem-ml/golem/internal/memtmp"
	"github.com/golem-ml/golem/internal/testmodels"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tokenizer"
)

// blockModel writes a Llama or Qwen2 model golem builds with random
// weights whose every matrix is whole Q8_0/Q4_0 blocks (widths 64 and
// 128), with a fixture's tokenizer (of vocab() tokens), so that a quantized export quantizes
// all of them (the fixtures' widths 24 and 48 fall back to F16).
func blockModel(t *testing.T, arch string) string { return blockModelWith(t, arch, nil) }

// blockModelWith is blockModel with its config changed by edit first.
func blockModelWith(t *testing.T, arch string, edit func(*gpt.Config)) string {
	t.Helper()
	return sizedModelWith(t, arch, 4, 64, 128, edit)
}

// sizedModel is blockModel with heads query heads (half as many KV
// heads), hidden size hidden and MLP size inter.
func sizedModel(t *testing.T, arch string, heads, hidden, inter int) string {
	t.Helper()
	return sizedModelWith(t, arch, heads, hidden, inter, nil)
}

// madeModels are the folders sizedModel made, by their arguments, made
// once per test binary (TestMain removes madeRoot): the tests only read
// them, and each of the seven a short run asks for took 0.2 s of CPU.
var (
	madeMu     sync.Mutex
	madeModels = map[string]string{}
	madeRoot   string
)

// sizedModelWith is sizedModel with its config changed by edit first.
func sizedModelWith(t *testing.T, arch string, heads, hidden, inter int, edit func(*gpt.Config)) string {
	t.Helper()
	src := shared.Path(t, "fixtures/hf/"+arch+"-tiny")
	dir := ""
	if edit != nil {
		dir = t.TempDir()
	} else {
		madeMu.Lock()
		defer madeMu.Unlock()
		key := fmt.Sprintf("%s-%d-%d-%d", arch, heads, hidden, inter)
		if d, ok := madeModels[key]; ok {
			return d
		}
		dir = filepath.Join(madeRootLocked(t), key)
		defer func() {
			if !t.Failed() {
				madeModels[key] = dir
			}
		}()
	}
	c := gpt.Config{Arch: arch, Vocab: vocab(), Context: 64, Layers: 2, Heads: heads, KVHeads: heads / 2, Hidden: hidden,
		Intermediate: inter, Eps: 1e-5, RopeTheta: 10000, Bias: arch == "qwen2", Tied: arch == "qwen2", BOS: -1, EOS: -1}
	if edit != nil {
		edit(&c)
	}
	m, err := gpt.New(cpu.New(), c, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Sharpen the attention (see sharpened) so that it decides the tokens.
	for _, p := range m.Params() {
		for _, k := range []string{"q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight"} {
			if strings.HasSuffix(p.Name, k) {
				x := p.Tensor.Host()
				for i := range x {
					x[i] *= 8
				}
				p.Tensor.Set(x)
			}
		}
	}
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(src, "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tokenizerJSON(t, src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestMain(m *testing.M) {
	done := memtmp.Use("export")
	code := m.Run()
	if madeRoot != "" {
		os.RemoveAll(madeRoot)
	}
	done()
	os.Exit(code)
}

// A GGUF file golem exports loads back as the model it came from: F32
// gives the folder's logits (so every tensor is where it was, Llama's
// q/k rows permuted back), F16 and the quantized types are within their
// rounding, Q8_0 and Q4_0 matrices stay quantized on the backend, and the
// tokenizer read from the file's metadata encodes text and renders chats
// as the folder's does.
func TestGGUFLoadsAsFolder(t *testing.T) {
	prompt := goldenPrompt(t, shared.Path(t, "fixtures/hf/gpt2-tiny"))
	// Bounds on the largest logit error relative to the largest logit:
	// F16 rounds weights to 11 bits, Q8_0 weights and activations to 8
	// bits a block, Q4_0 weights to 4 (measured: 1e-3, 0.03 and 0.3 on the
	// sharpened block models).
	// BF16 rounds weights and activations to 8 bits.
	bound := map[gguf.TensorType]float64{gguf.F32: 1e-5, gguf.F16: 0.01, gguf.BF16: 0.05, gguf.Q8_0: 0.05, gguf.Q4_0: 0.5}
	type model struct{ name, dir string }
	models := []model{{"block-llama", blockModel(t, "llama")}, {"block-qwen2", blockModel(t, "qwen2")}}
	// GPT-2's whole vocabulary goes through the file on gpt2-tiny; under
	// -short the other two are fixture's copies with 512 tokens (the same
	// layouts and tokenizer code).
	models = append(models, model{"gpt2-tiny", shared.Path(t, "fixtures/hf/gpt2-tiny")})
	for _, n := range []string{"llama-tiny", "qwen2-tiny"} {
		models = append(models, model{n, fixture(t, n)})
	}
	out := t.TempDir()
	be := cpu.New()
	for _, md := range models {
		ref := loadModel(t, be, md.dir)
		prompt := prompt
		if md.name != "gpt2-tiny" {
			prompt = inVocab(prompt)
		}
		want := testmodels.Logits(ref, prompt)
		var wantTok *tokenizer.Tokenizer
		if !strings.HasPrefix(md.name, "block-") {
			var err error
			if wantTok, err = tokenizer.Load(md.dir); err != nil {
				t.Fatal(err)
			}
		}
		// Every type on one model whose matrices are whole blocks; the
		// layouts (F32) and the quantized types on the others (the
		// fixtures' rows of 24 and 48 fall back to F16).
		types := []gguf.TensorType{gguf.F32, gguf.F16, gguf.BF16, gguf.Q8_0, gguf.Q4_0}
		switch md.name {
		case "block-qwen2":
			types = []gguf.TensorType{gguf.F32, gguf.Q4_0}
		case "qwen2-tiny":
			types = []gguf.TensorType{gguf.F32, gguf.Q8_0}
		case "gpt2-tiny", "llama-tiny":
			types = []gguf.TensorType{gguf.F32}
		}
		for _, typ := range types {
			file := filepath.Join(out, md.name+"-"+typ.String()+".gguf")
			r, err := Folder(md.dir, file, Options{Type: typ})
			if err != nil {
				t.Fatal(err)
			}
			m := loadModel(t, be, file)
			// (BOS and EOS may come from tokenizer_config.json's tokens.)
			mc, rc := m.Config, ref.Config
			mc.BOS, mc.EOS, rc.BOS, rc.EOS = 0, 0, 0, 0
			if mc != rc {
				t.Fatalf("%s: config %+v, want %+v", file, mc, rc)
			}
			if nq, want := len(m.Quantized()), r.Types[gguf.Q8_0]+r.Types[gguf.Q4_0]+r.Types[gguf.F16]+r.Types[gguf.BF16]; nq != want {
				t.Errorf("%s: %d matrices kept as the file has them, the file has %d Q8_0, Q4_0, F16 and BF16 ones", file, nq, want)
			}
			e := testmodels.RelDiff(testmodels.Logits(m, prompt), want)
			t.Logf("%s: logits within %.2g of the float32 model's (bound %g)", filepath.Base(file), e, bound[typ])
			if e > bound[typ] {
				t.Errorf("%s: logits off by %.3g of the largest, more than %g", filepath.Base(file), e, bound[typ])
			}
			if typ != gguf.F32 || strings.HasPrefix(md.name, "block-") {
				continue // block models have qwen2-tiny's tokenizer
			}
			tok, err := tokenizer.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			text := "Hello, my dog is cute <|endoftext|> and 12345 dollars!\n  ok"
			if g, w := tok.Encode(text), wantTok.Encode(text); !slices.Equal(g, w) {
				t.Errorf("%s: the GGUF's tokenizer encodes %v, the folder's %v", file, g, w)
			}
		}
	}
}

// Without backend.Quantized, quantized tensors are dequantized on load:
// the same model, in float32.
func TestGGUFLoadsWithoutQuantized(t *testing.T) {
	dir := blockModel(t, "qwen2")
	file := filepath.Join(t.TempDir(), "m.gguf")
	exportTo(t, dir, file, gguf.Q4_0)
	prompt := inVocab([]int{15496, 11, 616, 3290, 318})
	q := loadModel(t, cpu.New(), file)
	f := loadModel(t, plainBackend{cpu.New()}, file)
	if len(f.Quantized()) != 0 || len(q.Quantized()) == 0 {
		t.Fatalf("quantized parameters: %d without the ability, %d with it", len(f.Quantized()), len(q.Quantized()))
	}
	// The two differ only by the activations' rounding to 8 bits.
	e := testmodels.RelDiff(testmodels.Logits(q, prompt), testmodels.Logits(f, prompt))
	t.Logf("quantized kernel vs dequantized weights: logits within %.2g", e)
	if e > 0.05 {
		t.Errorf("quantized kernel vs dequantized weights: logits off by %.3g", e)
	}
}

// plainBackend hides the CPU backend's optional abilities.
type plainBackend struct{ backend.Backend }

// KeepBF16 keeps a model's matrices (linear layers and an untied head,
// GPT-2's Conv1D ones transposed) as bfloat16 on the backend: half their
// bytes, and logits within bfloat16's rounding of the float32 model's,
// for a prefill (the bf16 GEMM) and one token (bdot), not equal to them.
func TestKeepBF16(t *testing.T) {
	be := cpu.New()
	for _, name := range []string{"gpt2-tiny", "llama-tiny", "qwen2-tiny"} {
		dir := shared.Path(t, "fixtures/hf/"+name)
		prompt := goldenPrompt(t, dir)
		ref := loadModel(t, be, dir)
		m := loadModel(t, be, dir)
		bytes := func() (n int) {
			for _, p := range m.Params() {
				if q, ok := be.QuantOf(p.Tensor.Buffer()); ok && q == backend.BF16 {
					n += 2 * p.Tensor.Len()
				} else if len(p.Tensor.Shape()) == 2 && p.Tensor != m.Embed.Weight && (m.Pos == nil || p.Tensor != m.Pos.Weight) {
					n += 4 * p.Tensor.Len()
				}
			}
			return n
		}
		before := bytes()
		n, err := m.KeepBF16()
		if err != nil {
			t.Fatal(err)
		}
		if after := bytes(); n == 0 || len(m.Quantized()) != n || 2*after != before {
			t.Fatalf("%s: %d matrices kept as bfloat16 (%d quantized): their bytes %d, before %d", name, n, len(m.Quantized()), after, before)
		}
		for _, ids := range [][]int{prompt, prompt[:1]} {
			want, got := testmodels.Logits(ref, ids), testmodels.Logits(m, ids)
			e := testmodels.RelDiff(got, want)
			t.Logf("%s, %d tokens: logits within %.2g of the float32 model's", name, len(ids), e)
			if e > 0.05 || e == 0 {
				t.Errorf("%s, %d tokens: logits off by %.3g of the largest: want bfloat16's rounding, above 0 and within 0.05", name, len(ids), e)
			}
		}
	}
}

// LoadBF16 of a GGUF file rounds its F32 matrices to bfloat16 as it reads
// them (the backend never holds them in float32): the model Load then
// KeepBF16 give, bit for bit (GPT-2's [out, in] matrices, Llama's
// permuted q and k rows).
func TestLoadBF16GGUF(t *testing.T) {
	for _, name := range []string{"gpt2-tiny", "llama-tiny"} {
		file := filepath.Join(t.TempDir(), "m.gguf")
		exportTo(t, fixture(t, name), file, gguf.F32)
		old := cpu.New()
		ref := loadModel(t, old, file)
		if _, err := ref.KeepBF16(); err != nil {
			t.Fatal(err)
		}
		be := cpu.New()
		m, err := gpt.LoadBF16(be, file)
		if err != nil {
			t.Fatal(err)
		}
		if st := be.MemStats(); st.Peak != st.Live || old.MemStats().Peak <= st.Peak {
			t.Errorf("%s: LoadBF16 peaked at %d bytes and holds %d (Load then KeepBF16 peaked at %d): a float32 matrix was allocated", name, st.Peak, st.Live, old.MemStats().Peak)
		}
		if got, want := m.Quantized(), ref.Quantized(); len(got) == 0 || !slices.Equal(got, want) {
			t.Errorf("%s: kept %v, KeepBF16 keeps %v", name, got, want)
		}
		prompt := inVocab([]int{15496, 11, 616, 3290, 318})
		if !slices.Equal(testmodels.Logits(m, prompt), testmodels.Logits(ref, prompt)) {
			t.Errorf("%s: logits differ from Load then KeepBF16's", name)
		}
	}
}
