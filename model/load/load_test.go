package load

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/model/vit"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// adapterOver writes a LoRA adapter (B zero: the base's outputs) over the
// model folder base into dir, naming its base as baseName, and returns the
// model it was attached to.
func adapterOver(t *testing.T, dir, base, baseName string) *gpt.Model {
	return adapterOverWith(t, dir, base, baseName, false)
}

// adapterOverWith is adapterOver with, if moved, an adapter whose B is not
// zero: it changes the base's outputs.
func adapterOverWith(t *testing.T, dir, base, baseName string, moved bool) *gpt.Model {
	t.Helper()
	m, err := gpt.Load(cpu.New(), base)
	if err != nil {
		t.Fatal(err)
	}
	c := gpt.LoRAConfig{R: 2, Alpha: 4}
	if _, err := m.AttachLoRA(c, 1); err != nil {
		t.Fatal(err)
	}
	for i, p := range m.LoRAParams() {
		if !moved {
			break
		}
		v := p.Tensor.Host()
		for j := range v {
			v[j] = float32((i+j)%7-3) * 0.05
		}
		p.Tensor.Set(v)
	}
	if err := m.SaveLoRA(dir, c, baseName); err != nil {
		t.Fatal(err)
	}
	return m
}

// An adapter's base is found relative to the adapter folder, through a
// chain of adapters; the tokenizer comes from the base when the adapter
// has none; LoRA is merged unless kept; bad chains fail naming the file.
func TestAdapterChains(t *testing.T) {
	base := shared.Path(t, "fixtures/hf/gpt2-tiny")
	root := t.TempDir()
	a1, a2 := filepath.Join(root, "a1"), filepath.Join(root, "a2")
	adapterOver(t, a1, base, base)
	adapterOver(t, a2, base, "../a1") // an adapter trained over an adapter
	be := cpu.New()
	l, err := Model(be, a2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Adapter == nil || l.Adapter.Base != filepath.Join(a2, "../a1") || l.Base != base || l.SoftPrompt != nil {
		t.Fatalf("adapter %v, base %q, soft prompt %v", l.Adapter, l.Base, l.SoftPrompt)
	}
	if len(l.Model.LoRAParams()) != 0 {
		t.Error("the LoRA adapter was not merged")
	}
	for _, p := range l.Model.Params() {
		if !p.Tensor.RequiresGrad() {
			t.Fatalf("merged: %s is frozen, as a model folder's parameters are not", p.Name)
		}
	}
	if l.Tok.VocabSize() == 0 {
		t.Error("no tokenizer from the base")
	}
	kept, err := Model(be, a1, Options{KeepLoRA: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(kept.Model.LoRAParams()) == 0 {
		t.Error("KeepLoRA: the adapter was merged")
	}
	files, err := Files(a2)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 6 || files[0] != filepath.Join(a2, gpt.AdapterConfigFile) || files[4] != filepath.Join(base, "config.json") {
		t.Errorf("Files(%s) = %v, want both adapters' two files, then the base's config and weights", a2, files)
	}

	self := filepath.Join(root, "self")
	adapterOver(t, self, base, ".")
	for _, c := range []struct{ dir, want string }{
		{self, "self/adapter_config.json: adapters over adapters more than 8 deep"},
		{root, "config.json: no such file"}, // neither a model nor an adapter
	} {
		if _, err := Model(be, c.dir, Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Model(%s): %v, want an error with %q", c.dir, err, c.want)
		}
	}
	missing := filepath.Join(root, "missing")
	adapterOver(t, missing, base, "../gone")
	if _, err := Model(be, missing, Options{}); err == nil || !strings.Contains(err.Error(), "adapter "+missing+": base model") {
		t.Errorf("an adapter whose base is gone: %v", err)
	}
}

// A LLaVA folder loads as its language model with the whole model beside
// it; an adapter over it is refused, naming both folders.
func TestLLaVAFolder(t *testing.T) {
	be := cpu.New()
	tok, err := tokenizer.Train(tokenizer.TrainOptions{Texts: []string{"USER: <image>\nWhat is it?\nASSISTANT: a red circle"}, VocabSize: 280, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	v, err := vit.New(be, vit.Config{Arch: vit.CLIP, Image: 8, Patch: 4, Channels: 3, Hidden: 16, Layers: 1, Heads: 2, Intermediate: 32, Activation: "gelu", Eps: 1e-5}, 1)
	if err != nil {
		t.Fatal(err)
	}
	lm, err := gpt.New(be, gpt.Config{Arch: "llama", Vocab: tok.VocabSize(), Context: 64, Layers: 1, Heads: 2, KVHeads: 2, Hidden: 32, Intermediate: 64,
		Eps: 1e-5, RopeTheta: 1e4, BOS: -1, EOS: -1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := llava.New(v, lm, -1, 3)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "vlm")
	if err := vm.Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := llava.SaveTokenizer(tok, dir, &vm.Config); err != nil { // <image> at the vocabulary's end
		t.Fatal(err)
	}
	l, err := Model(be, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if l.VLM == nil || l.Model != l.VLM.LM || l.VLM.Tokens() != 4 || l.Base != dir {
		t.Fatalf("VLM %v, Model %p, base %q", l.VLM, l.Model, l.Base)
	}
	if _, ok := l.Tok.SpecialID(llava.Placeholder); ok || l.Tok.VocabSize() != tok.VocabSize() {
		t.Errorf("the tokenizer read has %d tokens (want %d), or <image> (%v)", l.Tok.VocabSize(), tok.VocabSize(), ok)
	}
	a := l.Model.Params()[0].Tensor.Host()
	b := lm.Params()[0].Tensor.Host()
	if a[0] != b[0] || a[len(a)-1] != b[len(b)-1] {
		t.Error("the language model's weights differ from those saved")
	}
	ad := filepath.Join(t.TempDir(), "lora")
	c := gpt.LoRAConfig{R: 2, Alpha: 4}
	if _, err := lm.AttachLoRA(c, 1); err != nil {
		t.Fatal(err)
	}
	if err := lm.SaveLoRA(ad, c, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Model(be, ad, Options{}); err == nil || !strings.Contains(err.Error(), "LLaVA") || !strings.Contains(err.Error(), ad) {
		t.Errorf("an adapter over a LLaVA folder: %v", err)
	}
}

// With BF16 an adapter's base model folder is read straight into bfloat16
// (the backend never holds a float32 matrix: its peak live bytes are what
// it keeps) and the adapter stays unmerged over it, giving the float32
// merged model's logits to bfloat16's precision; an adapter over a model
// whose modules already hold one is refused rather than replacing it.
func TestAdapterOverBF16Base(t *testing.T) {
	base := shared.Path(t, "fixtures/hf/gpt2-tiny")
	dir := filepath.Join(t.TempDir(), "a")
	m := adapterOverWith(t, dir, base, base, true)
	if _, err := m.AttachLoRA(gpt.LoRAConfig{R: 2, Alpha: 4}, 2); err == nil || !strings.Contains(err.Error(), "already has a LoRA adapter") {
		t.Errorf("a second adapter over the same modules: %v, want a refusal", err)
	}

	be := cpu.New()
	l, err := Model(be, dir, Options{BF16: true})
	if err != nil {
		t.Fatal(err)
	}
	if st := be.MemStats(); st.Peak != st.Live {
		t.Errorf("loading peaked at %d bytes on the backend and holds %d: a float32 copy of the base was allocated", st.Peak, st.Live)
	}
	if len(l.Model.Quantized()) == 0 || len(l.Model.LoRAParams()) == 0 {
		t.Fatalf("bfloat16 matrices %d, LoRA tensors %d: want the base in bf16 and the adapter unmerged", len(l.Model.Quantized()), len(l.Model.LoRAParams()))
	}
	merged, err := Model(cpu.New(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := gpt.Load(cpu.New(), base)
	if err != nil {
		t.Fatal(err)
	}
	ids := []int32{464, 2068, 7586, 21831, 18045, 625}
	got, want, without := logits(l.Model, ids), logits(merged.Model, ids), logits(plain, ids)
	if d, a := maxDiff(got, want), maxDiff(without, want); d > 0.05 || d*5 > a {
		t.Errorf("bf16 base with the adapter unmerged: logits %.4f from the float32 merged model's (the adapter moves them %.4f)", d, a)
	}
}

func logits(m *gpt.Model, ids []int32) []float32 {
	var out []float32
	tensor.NoGrad(func() {
		s := tensor.NewScope()
		defer s.Close()
		out = m.Logits(m.Forward(ids, 1, len(ids), gpt.Options{Scope: s})).Host()
	})
	return out
}

func maxDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}
