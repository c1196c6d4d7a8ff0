package gpt

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/model/llama"
	"github.com/golem-ml/golem/tensor"
)

// The config.json files of the models people use at this size, as
// published (trimmed of fields golem does not read).
const (
	llama32Config = `{"architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": 128000,
  "eos_token_id": 128001, "head_dim": 64, "hidden_act": "silu", "hidden_size": 2048, "intermediate_size": 8192,
  "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32,
  "num_hidden_layers": 16, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0, "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16", "vocab_size": 128256}`
	qwen25Config = `{"architectures": ["Qwen2ForCausalLM"], "bos_token_id": 151643, "eos_token_id": 151643,
  "hidden_act": "silu", "hidden_size": 896, "intermediate_size": 4864, "max_position_embeddings": 32768,
  "max_window_layers": 24, "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24,
  "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
  "tie_word_embeddings": true, "torch_dtype": "bfloat16", "use_sliding_window": false, "vocab_size": 151936}`
	mistralConfig = `{"architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
  "hidden_size": 4096, "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mistral",
  "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
  "rope_theta": 10000.0, "sliding_window": 4096, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 32000}`
)

func TestRealConfigs(t *testing.T) {
	c, err := ParseConfig([]byte(llama32Config))
	if err != nil {
		t.Fatal(err)
	}
	want := llama.RopeScaling{Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 8192}
	if c.RopeScaling == nil || *c.RopeScaling != want || c.RopeTheta != 500000 || !c.Tied || c.SlidingWindow != 0 {
		t.Errorf("Llama 3.2: %+v, scaling %+v", c, c.RopeScaling)
	}
	c, err = ParseConfig([]byte(qwen25Config))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Tied || c.RopeTheta != 1e6 || c.RopeScaling != nil || c.SlidingWindow != 0 || !c.Bias || c.KVHeads != 2 {
		t.Errorf("Qwen2.5: %+v (want tied, theta 1e6, no window: use_sliding_window is false)", c)
	}
	c, err = ParseConfig([]byte(mistralConfig))
	if err != nil {
		t.Fatal(err)
	}
	if c.Arch != "mistral" || c.SlidingWindow != 4096 || c.Tied || c.Bias {
		t.Errorf("Mistral: %+v", c)
	}
	if archs[c.Arch].causalLM != "MistralForCausalLM" {
		t.Errorf("Mistral's class %q", archs[c.Arch].causalLM)
	}
	// Mistral v0.2 and later: no window.
	c, err = ParseConfig([]byte(strings.Replace(mistralConfig, `"sliding_window": 4096`, `"sliding_window": null`, 1)))
	if err != nil || c.SlidingWindow != 0 {
		t.Errorf("sliding_window null: %v, window %d", err, c.SlidingWindow)
	}
	// The older spelling ("type") and transformers 5's rope_parameters.
	for _, js := range []string{
		strings.Replace(llama32Config, `"rope_type": "llama3"`, `"type": "llama3"`, 1),
		strings.Replace(strings.Replace(llama32Config, `"rope_scaling"`, `"rope_parameters"`, 1), `"rope_type": "llama3"`, `"rope_type": "llama3", "rope_theta": 500000.0`, 1),
	} {
		c, err := ParseConfig([]byte(js))
		if err != nil || c.RopeScaling == nil || *c.RopeScaling != want || c.RopeTheta != 500000 {
			t.Errorf("%v: %+v", err, c)
		}
	}
}

func TestArchConfigErrors(t *testing.T) {
	for _, c := range []struct{ from, to, want string }{
		{`"rope_type": "llama3"`, `"rope_type": "yarn"`, `rope_type "yarn" not supported`},
		{`"high_freq_factor": 4.0`, `"high_freq_factor": 0.5`, "rope_scaling.high_freq_factor"},
		{`"factor": 32.0`, `"factor": -1`, "rope_scaling.factor"},
		{`"original_max_position_embeddings": 8192`, `"original_max_position_embeddings": 0`, "rope_scaling.original_max_position_embeddings"},
	} {
		_, err := ParseConfig([]byte(strings.Replace(llama32Config, c.from, c.to, 1)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.to, err, c.want)
		}
	}
	if _, err := ParseConfig([]byte(strings.Replace(mistralConfig, `"sliding_window": 4096`, `"sliding_window": -2`, 1))); err == nil || !strings.Contains(err.Error(), "sliding_window") {
		t.Errorf("negative window: %v", err)
	}
	if _, err := ParseConfig([]byte(strings.Replace(qwen25Config, `"use_sliding_window": false`, `"use_sliding_window": true`, 1))); err == nil || !strings.Contains(err.Error(), "use_sliding_window") {
		t.Errorf("Qwen2's sliding window: %v", err)
	}
}

// TestArchConfigRoundTrip: config.json as golem writes it reads back to
// the same config, rope scaling and window included.
func TestArchConfigRoundTrip(t *testing.T) {
	for _, arch := range []string{"mistral", "llama"} {
		c := perfConfig(arch)
		c.RopeScaling = &llama.RopeScaling{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 16}
		b, err := c.JSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseConfig(b)
		if err != nil {
			t.Fatalf("%s\n%s", err, b)
		}
		if *back.RopeScaling != *c.RopeScaling || back.SlidingWindow != c.SlidingWindow || back.Arch != arch {
			t.Errorf("%s: wrote %+v, read %+v\n%s", arch, c, back, b)
		}
	}
}

// TestSlidingWindowIsRelative checks the window against what it means,
// with one layer: RoPE's scores depend only on how far apart two
// positions are, so a windowed model's output at position t equals the
// unwindowed model's at the end of the last W tokens alone.
func TestSlidingWindowIsRelative(t *testing.T) {
	c := perfConfig("mistral")
	c.Layers, c.RopeScaling = 1, nil
	m, err := New(cpu.New(), c, 7)
	if err != nil {
		t.Fatal(err)
	}
	full := perfConfig("llama")
	full.Layers = 1
	plain, err := New(cpu.New(), full, 7) // the same weights, no window
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	const N, W = 14, 5
	ids := make([]int32, N)
	for i := range ids {
		ids[i] = int32(r.IntN(c.Vocab))
	}
	C := c.Hidden
	tensor.NoGrad(func() {
		got := m.Forward(ids, 1, N, Options{}).Host()
		nowin := plain.Forward(ids, 1, N, Options{}).Host()
		differ := false
		for p := range N {
			lo := max(0, p-W+1)
			h := plain.Forward(ids[lo:p+1], 1, p+1-lo, Options{}).Host()
			want := h[(p-lo)*C:]
			if e := relErr(got[p*C:(p+1)*C], want); e > 1e-5 {
				t.Fatalf("position %d: windowed output differs from the last %d tokens' by %g", p, W, e)
			}
			if relErr(got[p*C:(p+1)*C], nowin[p*C:(p+1)*C]) > 1e-3 {
				differ = true
			}
		}
		if !differ {
			t.Fatal("the window changed nothing")
		}
	})
}
