package gpt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/safetensors"
	"github.com/golem-ml/golem/tensor"
)

// peftLoRATensors lists what PEFT's save_pretrained writes for
// get_peft_model(base, LoraConfig(r=r)) with the default target modules of
// the architecture: per layer, the adapter's lora_A [r, in] and lora_B
// [out, r] under "base_model.model." + the module's name, adapter name
// stripped. For GPT-2's Conv1D c_attn, in and out come from its [in, out]
// weight (48 -> 144); Llama's v_proj is narrower than q_proj (2 of 4 heads).
func peftLoRATensors(arch string, layers, r int) map[string][]int {
	out := map[string][]int{}
	for i := 0; i < layers; i++ {
		if arch == "gpt2" {
			p := fmt.Sprintf("base_model.model.transformer.h.%d.attn.c_attn.", i)
			out[p+"lora_A.weight"] = []int{r, 48}
			out[p+"lora_B.weight"] = []int{144, r}
			continue
		}
		p := fmt.Sprintf("base_model.model.model.layers.%d.self_attn.", i)
		out[p+"q_proj.lora_A.weight"] = []int{r, 24}
		out[p+"q_proj.lora_B.weight"] = []int{24, r}
		out[p+"v_proj.lora_A.weight"] = []int{r, 24}
		out[p+"v_proj.lora_B.weight"] = []int{12, r}
	}
	return out
}

func randomize(t *tensor.Tensor, seed uint64) {
	in := nn.NewInit(t.Backend(), seed)
	t.Set(in.Normal(0.05, t.Shape()...).Host())
}

func hiddenOf(m *Model, ids []int32, o Options) []float32 {
	var out []float32
	tensor.NoGrad(func() {
		h := m.Logits(m.Forward(ids, 1, len(ids), o))
		out = h.Host()
		tensor.Release(h)
	})
	return out
}

func TestLoRAPEFTLayoutAndRoundTrip(t *testing.T) {
	for _, name := range []string{"gpt2-tiny", "llama-tiny"} {
		t.Run(name, func(t *testing.T) {
			base := shared.Path(t, "fixtures/hf/"+name)
			be := cpu.New()
			m, err := Load(be, base)
			if err != nil {
				t.Fatal(err)
			}
			ids := []int32{464, 2068, 7586, 21831, 18045, 625, 262}
			before := hiddenOf(m, ids, Options{})
			c := LoRAConfig{R: 8, Alpha: 16, Dropout: 0.05}
			ps, err := m.AttachLoRA(c, 1)
			if err != nil {
				t.Fatal(err)
			}
			if rel := relErr(hiddenOf(m, ids, Options{}), before); rel != 0 {
				t.Errorf("a fresh LoRA (B = 0) changed the output by %g", rel)
			}
			for _, p := range m.Params() {
				if p.Tensor.RequiresGrad() {
					t.Errorf("base parameter %s not frozen", p.Name)
				}
			}
			for i, p := range ps {
				randomize(p.Tensor, uint64(i+10))
			}
			adapted := hiddenOf(m, ids, Options{})
			if relErr(adapted, before) < 1e-4 {
				t.Fatal("the adapter does not change the output")
			}
			dir := t.TempDir()
			if err := m.SaveLoRA(dir, c, base); err != nil {
				t.Fatal(err)
			}
			// Names and shapes as PEFT writes them.
			f, err := safetensors.Open(filepath.Join(dir, AdapterModelFile))
			if err != nil {
				t.Fatal(err)
			}
			want := peftLoRATensors(m.Config.Arch, m.Config.Layers, 8)
			got := f.Names()
			if len(got) != len(want) {
				t.Errorf("%d tensors, PEFT writes %d: %v", len(got), len(want), got)
			}
			for n, shape := range want {
				info, ok := f.Info(n)
				if !ok {
					t.Errorf("tensor %s missing", n)
				} else if !slices.Equal(info.Shape, shape) || info.DType != "F32" {
					t.Errorf("%s: %s %v, want F32 %v", n, info.DType, info.Shape, shape)
				}
			}
			f.Close()
			var cfg map[string]any
			b, _ := os.ReadFile(filepath.Join(dir, AdapterConfigFile))
			if err := json.Unmarshal(b, &cfg); err != nil {
				t.Fatal(err)
			}
			wantTargets := []any{"q_proj", "v_proj"}
			if name == "gpt2-tiny" {
				wantTargets = []any{"c_attn"}
			}
			if cfg["peft_type"] != "LORA" || cfg["task_type"] != "CAUSAL_LM" || cfg["r"] != 8.0 || cfg["lora_alpha"] != 16.0 ||
				!slices.Equal(cfg["target_modules"].([]any), wantTargets) || cfg["fan_in_fan_out"] != (name == "gpt2-tiny") {
				t.Errorf("adapter_config.json: %s", b)
			}
			// Loading the adapter onto the base gives the adapted model back.
			m2, a, err := loadAdapter(be, dir)
			if err != nil {
				t.Fatal(err)
			}
			if a.Type != "LORA" || a.LoRA.R != 8 {
				t.Errorf("adapter read as %+v", a.LoRA)
			}
			if rel := relErr(hiddenOf(m2, ids, Options{}), adapted); rel > 1e-6 {
				t.Errorf("reloaded adapter: outputs differ by %g", rel)
			}
			// Merging computes the same function without the adapter.
			m2.MergeLoRA()
			if len(m2.LoRAParams()) != 0 {
				t.Error("adapters left after merging")
			}
			if rel := relErr(hiddenOf(m2, ids, Options{}), adapted); rel > 1e-4 {
				t.Errorf("merged model: outputs differ by %g", rel)
			}
		})
	}
}

func TestLoRAErrors(t *testing.T) {
	be := cpu.New()
	m, err := New(be, Config{Arch: "llama", Vocab: 50, Context: 16, Layers: 1, Heads: 2, KVHeads: 2, Hidden: 8, Intermediate: 16, Eps: 1e-5, RopeTheta: 1e4, BOS: -1, EOS: -1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.AttachLoRA(LoRAConfig{R: 4, Alpha: 8, Targets: []string{"c_attn"}}, 1); err == nil {
		t.Error("a target matching no module was accepted")
	}
	if _, err := m.AttachLoRA(LoRAConfig{R: 0, Alpha: 8}, 1); err == nil {
		t.Error("rank 0 accepted")
	}
	ps, err := m.AttachLoRA(LoRAConfig{R: 2, Alpha: 4, Targets: []string{"all-linear"}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2*7 {
		t.Errorf("all-linear: %d tensors, want 14 (7 modules)", len(ps))
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, AdapterConfigFile), []byte(`{"peft_type":"IA3","base_model_name_or_path":"x"}`), 0o644)
	if _, err := ReadAdapterConfig(dir); err == nil {
		t.Error("an IA3 adapter was accepted")
	}
}

func TestPromptTuningRoundTrip(t *testing.T) {
	be := cpu.New()
	base := t.TempDir()
	m, err := New(be, Config{Arch: "gpt2", Vocab: 40, Context: 32, Layers: 1, Heads: 2, KVHeads: 2, Hidden: 8, Intermediate: 32, Eps: 1e-5, Activation: "gelu", Bias: true, Tied: true, BOS: -1, EOS: -1}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(base); err != nil {
		t.Fatal(err)
	}
	sp := nn.NewSoftPrompt(nn.NewInit(be, 5), 4, 8, m.Embed.Weight)
	dir := t.TempDir()
	if err := m.SavePromptTuning(dir, sp, base); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(dir, AdapterModelFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := f.Names(); len(n) != 1 || n[0] != "prompt_embeddings" {
		t.Errorf("tensors %v, PEFT writes [prompt_embeddings]", n)
	}
	if info, _ := f.Info("prompt_embeddings"); !slices.Equal(info.Shape, []int{4, 8}) {
		t.Errorf("prompt_embeddings %v, want [4 8]", info.Shape)
	}
	f.Close()
	_, a, err := loadAdapter(be, dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.Type != "PROMPT_TUNING" || a.SoftPrompt == nil || relErr(a.SoftPrompt.Weight.Host(), sp.Weight.Host()) != 0 {
		t.Errorf("soft prompt not read back: %+v", a)
	}
	// A config whose num_virtual_tokens disagrees with the file is refused
	// before anything is allocated, naming the file and the tensor.
	cfg := filepath.Join(dir, AdapterConfigFile)
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, bytes.Replace(b, []byte(`"num_virtual_tokens": 4`), []byte(`"num_virtual_tokens": 5`), 1), 0o644)
	_, _, err = loadAdapter(be, dir)
	if err == nil || !strings.Contains(err.Error(), AdapterModelFile) || !strings.Contains(err.Error(), `"prompt_embeddings"`) || !strings.Contains(err.Error(), "[5 8]") {
		t.Errorf("num_virtual_tokens 5 over a [4 8] prompt: %v", err)
	}
}

// loadAdapter reads the adapter in dir over its base model, as model/load
// does (which this package's tests cannot import).
func loadAdapter(be backend.Backend, dir string) (*Model, *Adapter, error) {
	a, err := ReadAdapterConfig(dir)
	if err != nil {
		return nil, nil, err
	}
	m, err := Load(be, a.Base)
	if err != nil {
		return nil, nil, err
	}
	return m, a, a.Apply(m, dir)
}

// TestWithoutLoRA: with the adapters off the model computes its base's
// function bit for bit (the LoRA stages' frozen reference), and they are
// back on afterwards.
func TestWithoutLoRA(t *testing.T) {
	be := cpu.New()
	m, err := New(be, Config{Arch: "llama", Vocab: 50, Context: 16, Layers: 2, Heads: 2, KVHeads: 2, Hidden: 8, Intermediate: 16, Eps: 1e-5, RopeTheta: 1e4, BOS: -1, EOS: -1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	ids := []int32{3, 14, 15, 9, 26}
	base := hiddenOf(m, ids, Options{})
	ps, err := m.AttachLoRA(LoRAConfig{R: 2, Alpha: 4, Targets: []string{"all-linear"}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		randomize(p.Tensor, uint64(i+10))
	}
	adapted := hiddenOf(m, ids, Options{})
	if relErr(adapted, base) < 1e-4 {
		t.Fatal("the adapter does not change the output")
	}
	var off []float32
	m.WithoutLoRA(func() { off = hiddenOf(m, ids, Options{}) })
	if !slices.Equal(off, base) {
		t.Errorf("adapters off: outputs differ from the base's by %g", relErr(off, base))
	}
	if got := hiddenOf(m, ids, Options{}); !slices.Equal(got, adapted) {
		t.Errorf("adapters not back on after WithoutLoRA: differ by %g", relErr(got, adapted))
	}
}

// TestShare: a shared model holds the same weight tensors through layers
// of its own: the same outputs, its adapters not the original's, and its
// embedding the one its body holds (a tied head reads it).
func TestShare(t *testing.T) {
	for _, arch := range []string{"llama", "gpt2"} {
		be := cpu.New()
		m, err := New(be, Config{Arch: arch, Vocab: 50, Context: 16, Layers: 2, Heads: 2, KVHeads: 2, Hidden: 8, Intermediate: 16, Eps: 1e-5, RopeTheta: 1e4,
			Tied: arch == "gpt2", BOS: -1, EOS: -1}, 1)
		if err != nil {
			t.Fatal(err)
		}
		ids := []int32{3, 14, 15, 9, 26}
		base := hiddenOf(m, ids, Options{})
		c := m.Share()
		for i, p := range c.Params() {
			if p.Tensor != m.Params()[i].Tensor {
				t.Fatalf("%s: %s is a copy", arch, p.Name)
			}
		}
		if c.Embed == m.Embed || c.Blocks[0] == m.Blocks[0] || c.Modules()[0].Linear == m.Modules()[0].Linear {
			t.Fatalf("%s: the layers are the original's", arch)
		}
		if reflect.ValueOf(c.Body).Elem().FieldByName("Embed").Interface() != c.Embed || reflect.ValueOf(c.Body).Elem().FieldByName("Blocks").Index(0).Interface() != c.Blocks[0] {
			t.Fatalf("%s: the copy's embedding is not its body's", arch)
		}
		ps, err := c.AttachLoRA(LoRAConfig{R: 2, Alpha: 4, Targets: []string{"all-linear"}}, 1)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range ps {
			randomize(p.Tensor, uint64(i+10))
		}
		if len(m.LoRAParams()) != 0 {
			t.Fatalf("%s: the adapter was attached to the original", arch)
		}
		if got := hiddenOf(m, ids, Options{}); !slices.Equal(got, base) {
			t.Errorf("%s: the original's outputs changed by %g", arch, relErr(got, base))
		}
		if relErr(hiddenOf(c, ids, Options{}), base) < 1e-4 {
			t.Errorf("%s: the copy's adapter does not change its output", arch)
		}
		var off []float32
		c.WithoutLoRA(func() { off = hiddenOf(c, ids, Options{}) })
		if !slices.Equal(off, base) {
			t.Errorf("%s: the copy without its adapter differs from the original by %g", arch, relErr(off, base))
		}
	}
}
