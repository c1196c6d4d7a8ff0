package gpt

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/model/llama"
	"github.com/golem-ml/golem/tensor"
)

// torchPython returns a python3 that has torch, or skips the test (CI
// installs no torch: the transformers goldens of ../shared are the
// oracle there, once bench/peer/make_arch_fixtures.py has made them).
func torchPython(t *testing.T) string {
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if path, err := exec.LookPath(p); err == nil && exec.Command(path, "-c", "import torch").Run() == nil {
			return path
		}
	}
	t.Skip("skipping: needs python3 with torch (Debian's python3-torch) for the PyTorch reference")
	return ""
}

// TestMatchesTorchReference checks Llama 3's rope scaling, Mistral's
// sliding window and Qwen2.5's tied head with theta 1e6 against
// testdata/torch_llama.py, an independent PyTorch implementation that
// reads the model golem saved: the inverse frequencies and the logits of
// two sequences longer than the window.
func TestMatchesTorchReference(t *testing.T) {
	if testing.Short() {
		t.Skip("full tier: starts PyTorch for each case; TestMatchesTransformers checks the architectures against transformers' goldens in the short tier")
	}
	py := torchPython(t)
	scaled := &llama.RopeScaling{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 32}
	cases := []struct {
		name string
		edit func(*Config)
	}{
		{"llama3-scaled", func(c *Config) { c.RopeScaling, c.RopeTheta = scaled, 500000 }},
		{"mistral-window", func(c *Config) { c.Arch, c.SlidingWindow = "mistral", 4 }},
		{"mistral-window-scaled", func(c *Config) { c.Arch, c.SlidingWindow, c.RopeScaling = "mistral", 3, scaled }},
		{"qwen2.5-tied", func(c *Config) { c.Arch, c.Bias, c.Tied, c.RopeTheta = "qwen2", true, true, 1e6 }},
	}
	const B, T = 2, 12
	r := rand.New(rand.NewPCG(3, 4))
	ids := make([]int32, B*T)
	rows := make([][]int32, B)
	for b := range B {
		for i := range T {
			ids[b*T+i] = int32(r.IntN(perfConfig("llama").Vocab))
		}
		rows[b] = ids[b*T : (b+1)*T]
	}
	js, _ := json.Marshal(rows)
	args := []string{"testdata/torch_llama.py", string(js)}
	models := make([]*Model, len(cases))
	for i, c := range cases {
		cfg := perfConfig("llama")
		cfg.Hidden, cfg.Heads, cfg.KVHeads = 64, 4, 2 // head size 16: 8 frequencies, kept, blended and divided
		c.edit(&cfg)
		m, err := New(cpu.New(), cfg, 11)
		if err != nil {
			t.Fatal(err)
		}
		for j, p := range m.Params() { // biases away from 0
			if strings.HasSuffix(p.Name, ".bias") {
				randomize(p.Tensor, uint64(j))
			}
		}
		dir := filepath.Join(t.TempDir(), c.name)
		if err := m.Save(dir); err != nil {
			t.Fatal(err)
		}
		models[i], args = m, append(args, dir)
	}
	out, err := exec.Command(py, args...).Output()
	if err != nil {
		t.Fatalf("torch_llama.py: %v %s", err, stderrOf(err))
	}
	var refs []struct {
		InvFreq []float32 `json:"inv_freq"`
		Logits  []float32 `json:"logits"`
	}
	if err := json.Unmarshal(out, &refs); err != nil || len(refs) != len(cases) {
		t.Fatalf("torch_llama.py gave %d results for %d models: %v", len(refs), len(cases), err)
	}
	for i, c := range cases {
		m, ref, cfg := models[i], refs[i], models[i].Config
		if len(ref.InvFreq) != cfg.HeadDim()/2 || len(ref.Logits) != B*T*cfg.Vocab {
			t.Fatalf("%s: torch gave %d frequencies and %d logits", c.name, len(ref.InvFreq), len(ref.Logits))
		}
		if e := relErr(llama.InvFreq(cfg.RopeTheta, cfg.HeadDim(), cfg.RopeScaling), ref.InvFreq); e > 1e-6 {
			t.Errorf("%s: inverse frequencies differ by %g: torch %v", c.name, e, ref.InvFreq)
		}
		var got []float32
		tensor.NoGrad(func() { got = m.Logits(m.Forward(ids, B, T, Options{})).Host() })
		if e := relErr(got, ref.Logits); e > 1e-5 {
			t.Errorf("%s: logits differ from torch's by %g", c.name, e)
		} else {
			t.Logf("%s: logits relative error %.2g", c.name, e)
		}
	}
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return fmt.Sprint(err)
}
