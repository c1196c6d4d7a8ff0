package gpt

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/safetensors"
)

// tinyFolder saves a tiny random model of arch (2 layers) and returns its
// folder.
func tinyFolder(t testing.TB, arch string) string {
	t.Helper()
	c := tinyConfig(arch)
	c.Layers, c.KVHeads = 2, 1
	if arch == "gpt2" {
		c.KVHeads = c.Heads
	}
	m, err := New(cpu.New(), c, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// editConfig sets fields of dir's config.json (a nil value deletes one).
func editConfig(t testing.TB, dir string, set map[string]any) {
	t.Helper()
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// loadBounded loads dir and fails the test if that allocated more than
// limit bytes.
func loadBounded(t *testing.T, dir string, limit uint64) error {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m, err := Load(cpu.New(), dir)
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > limit {
		t.Errorf("loading allocated %d MB, more than %d MB", got>>20, limit>>20)
	}
	if err == nil && m == nil {
		t.Error("no model and no error")
	}
	return err
}

// Configs that would size an absurd model, or one the weights disagree
// with, or do arithmetic on bad numbers, are refused with an error naming
// config.json and the field, in bounded memory. Before, n_layer 1e9 grew
// past 10 GB, sizes of 1e12 panicked in makeslice, and a negative epsilon
// loaded (and produced NaN).
func TestHostileConfigs(t *testing.T) {
	cases := []struct {
		arch string
		set  map[string]any
		want string
	}{
		{"gpt2", map[string]any{"n_layer": 1000000000}, `"n_layer" is 1000000000, more than`},
		{"gpt2", map[string]any{"n_layer": 4000}, `"n_layer" is 4000, but model.safetensors has 2 layers`},
		{"gpt2", map[string]any{"n_layer": 1}, `"n_layer" is 1, but model.safetensors has 2 layers`},
		{"gpt2", map[string]any{"vocab_size": 1000000000000}, `"vocab_size" is 1000000000000, more than`},
		{"gpt2", map[string]any{"vocab_size": 4000000}, `"vocab_size" is 4000000, but model.safetensors has "transformer.wte.weight" of shape [40 16]`},
		{"gpt2", map[string]any{"n_positions": 1000000000000}, `"n_positions" is 1000000000000, more than`},
		{"gpt2", map[string]any{"n_positions": 1 << 20}, `"n_positions" is 1048576, but model.safetensors has "transformer.wpe.weight"`},
		{"gpt2", map[string]any{"n_inner": 1000000000000}, `"n_inner" is 1000000000000, more than`},
		{"gpt2", map[string]any{"n_inner": 1 << 18}, `"n_inner" is 262144, but`},
		{"gpt2", map[string]any{"n_embd": 1 << 16, "n_inner": 64}, `"n_embd" is 65536, but`},
		{"gpt2", map[string]any{"n_head": 3}, `"n_embd" 16 is not divisible by "n_head" 3`},
		{"gpt2", map[string]any{"n_head": -2}, `"n_head" is -2, must be positive`},
		{"gpt2", map[string]any{"layer_norm_epsilon": -1e-5}, `"layer_norm_epsilon" is -1e-05, must be in (0, 1)`},
		{"gpt2", map[string]any{"layer_norm_epsilon": 1e-300}, `"layer_norm_epsilon" is 0`},
		{"gpt2", map[string]any{"resid_pdrop": 1.5}, `"resid_pdrop" is 1.5`},
		{"gpt2", map[string]any{"n_layer": 1e9}, `n_layer`}, // a float: json refuses it for an int
		{"llama", map[string]any{"num_hidden_layers": 1000000000}, `"num_hidden_layers" is 1000000000, more than`},
		{"llama", map[string]any{"num_hidden_layers": 3}, `"num_hidden_layers" is 3, but model.safetensors has 2 layers`},
		{"llama", map[string]any{"vocab_size": 1000000000000}, `"vocab_size" is 1000000000000`},
		{"llama", map[string]any{"max_position_embeddings": 1000000000000}, `"max_position_embeddings" is 1000000000000, more than`},
		{"llama", map[string]any{"intermediate_size": 1000000000000}, `"intermediate_size" is 1000000000000, more than`},
		{"llama", map[string]any{"intermediate_size": 1 << 18}, `"intermediate_size" is 262144, but model.safetensors has "model.layers.0.mlp.gate_proj.weight"`},
		{"llama", map[string]any{"num_key_value_heads": 2}, `"num_key_value_heads" 2 x head size 8 is 16, but model.safetensors has "model.layers.0.self_attn.k_proj.weight" of shape [8 16]`},
		{"llama", map[string]any{"num_key_value_heads": 3}, `"num_attention_heads" 2 is not a multiple of "num_key_value_heads" 3`},
		{"llama", map[string]any{"hidden_size": 1 << 16, "head_dim": nil}, `"hidden_size" is 65536, but`},
		{"llama", map[string]any{"num_attention_heads": 16, "head_dim": nil}, `RoPE needs an even head size, have 1`},
		{"llama", map[string]any{"rms_norm_eps": -1}, `"rms_norm_eps" is -1, must be in (0, 1)`},
		{"llama", map[string]any{"rope_theta": -10000}, `"rope_theta" is -10000`},
		{"gpt2", map[string]any{"tie_word_embeddings": false}, `has no tensor "lm_head.weight"`},
	}
	for _, c := range cases {
		dir := tinyFolder(t, c.arch)
		editConfig(t, dir, c.set)
		err := loadBounded(t, dir, 16<<20)
		cfg := filepath.Join(dir, "config.json")
		if err == nil || !strings.Contains(err.Error(), cfg) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: %v\nwant the path and %q", c.arch, c.set, err, c.want)
		}
	}
}

// NaN or infinite weights are refused at load with the tensor's name;
// they loaded and decoding produced NaN logits (NUL characters).
func TestNonFiniteWeights(t *testing.T) {
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		dir := tinyFolder(t, "llama")
		path := filepath.Join(dir, safetensors.ModelFile)
		f, err := safetensors.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		var ts []safetensors.Tensor
		for _, n := range f.Names() {
			v, shape, err := f.Float32(n)
			if err != nil {
				t.Fatal(err)
			}
			if n == "model.layers.1.mlp.up_proj.weight" {
				v[7] = bad
			}
			ts = append(ts, safetensors.Tensor{Name: n, Shape: shape, F32: v})
		}
		f.Close()
		if err := safetensors.Write(path, ts, nil); err != nil {
			t.Fatal(err)
		}
		_, err = Load(cpu.New(), dir)
		if err == nil || !strings.Contains(err.Error(), `"model.layers.1.mlp.up_proj.weight": element 7`) || !strings.Contains(err.Error(), dir) {
			t.Errorf("weight %g: %v", bad, err)
		}
	}
}

// FuzzLoad loads a folder of any config.json and model.safetensors: never
// a panic, an error that says where, and memory bounded by the file's size
// whatever the config claims. The seeds (run by go test) are the two
// architectures' tiny models and hostile edits of their configs.
func FuzzLoad(f *testing.F) {
	for _, arch := range []string{"gpt2", "llama"} {
		dir := tinyFolder(f, arch)
		st, err := os.ReadFile(filepath.Join(dir, safetensors.ModelFile))
		if err != nil {
			f.Fatal(err)
		}
		cfg, err := os.ReadFile(filepath.Join(dir, "config.json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(cfg, st)
		var m map[string]any
		json.Unmarshal(cfg, &m)
		for _, k := range []string{"vocab_size", "n_layer", "n_positions", "n_embd", "n_inner", "num_hidden_layers", "max_position_embeddings",
			"hidden_size", "intermediate_size", "num_key_value_heads", "num_attention_heads", "n_head"} {
			if _, ok := m[k]; !ok {
				continue
			}
			for _, v := range []any{1000000000000, 1 << 20, 0, -1, 3} {
				e := map[string]any{}
				for k, v := range m {
					e[k] = v
				}
				e[k] = v
				b, _ := json.Marshal(e)
				f.Add(b, st)
			}
		}
		f.Add(cfg, st[:len(st)-5])
		f.Add([]byte(`{"model_type":"llama","rms_norm_eps":-1}`), st)
	}
	f.Fuzz(func(t *testing.T, cfg, st []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, safetensors.ModelFile), st, 0o644); err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m, err := Load(cpu.New(), dir)
		runtime.ReadMemStats(&after)
		// float32 parameters from at least 2 bytes each, the file read
		// once, Go's and json's own overhead.
		if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(8<<20+8*len(st)+64*len(cfg)); got > limit {
			t.Fatalf("loading a %d-byte checkpoint allocated %d bytes", len(st), got)
		}
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "gpt: ") && !strings.HasPrefix(msg, "safetensors: ") {
				t.Fatalf("error without its package and file: %v", err)
			}
			return
		}
		n := 0
		for _, p := range m.Params() {
			n += p.Tensor.Len()
		}
		if n > len(st)/2 {
			t.Fatalf("%d parameters from a %d-byte file", n, len(st))
		}
	})
}

// A reward or value model's folder goes through the same checks as a
// language model's (one loader): a config its weights disagree with is
// refused from the header, naming config.json and the field, in bounded
// memory. Before, LoadScorer built the config's model first
// (intermediate_size 262144 allocated 96 MB, then failed on a shape,
// naming no field).
func TestHostileScorerConfigs(t *testing.T) {
	for _, c := range []struct {
		arch string
		set  map[string]any
		want string
	}{
		{"gpt2", map[string]any{"n_layer": 4000}, `"n_layer" is 4000, but model.safetensors has 2 layers`},
		{"llama", map[string]any{"intermediate_size": 1 << 18}, `"intermediate_size" is 262144, but model.safetensors has "model.layers.0.mlp.gate_proj.weight"`},
	} {
		lm, err := Load(cpu.New(), tinyFolder(t, c.arch))
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := NewScorer(lm, 1).Save(dir); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadScorer(cpu.New(), dir); err != nil {
			t.Fatalf("%s: the scorer as saved: %v", c.arch, err)
		}
		editConfig(t, dir, c.set)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err = LoadScorer(cpu.New(), dir)
		runtime.ReadMemStats(&after)
		if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
			t.Errorf("%s: loading allocated %d MB", c.arch, got>>20)
		}
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "config.json")) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: %v\nwant the path and %q", c.arch, c.set, err, c.want)
		}
	}
}
