package gpt_test

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/internal/testmodels"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/safetensors"
)

// A Llama checkpoint with attention_bias has a bias on o_proj too
// (transformers' LlamaAttention: bias=config.attention_bias on all four
// projections; Qwen2Attention's o_proj has none). golem reads it, and its
// logits are those of testdata/torch_llama.py (plain PyTorch, reading the
// same folder; skipped without torch); the o_proj bias changes them; a
// save writes it and reads back bit for bit.
func TestLlamaAttentionBias(t *testing.T) {
	src := shared.Path(t, "fixtures/hf/llama-tiny")
	dir := testmodels.AttentionBiasLlama(t, src, 1)
	be := cpu.New()
	m, err := gpt.Load(be, dir)
	if err != nil {
		t.Fatal(err)
	}
	ids := []int{464, 2068, 7586, 21831, 18045, 625, 262, 16931}
	got := testmodels.Logits(m, ids)

	zero, err := gpt.Load(be, testmodels.AttentionBiasLlama(t, src, 0))
	if err != nil {
		t.Fatal(err)
	}
	if e := testmodels.RelDiff(testmodels.Logits(zero, ids), got); e < 1e-3 {
		t.Errorf("the o_proj bias moves the logits by %.2g only: not applied", e)
	}

	out := filepath.Join(t.TempDir(), "saved")
	if err := m.Save(out); err != nil {
		t.Fatal(err)
	}
	st, err := safetensors.OpenModel(out)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := safetensors.OpenModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"model.layers.0.self_attn.o_proj.bias", "model.layers.1.self_attn.o_proj.bias"} {
		a, _, err1 := st.Float32(n)
		b, _, err2 := orig.Float32(n)
		if err1 != nil || err2 != nil || !slices.Equal(a, b) {
			t.Errorf("%s saved: %v %v, or not the folder's", n, err1, err2)
		}
	}
	st.Close()
	orig.Close()
	back, err := gpt.Load(be, out)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(testmodels.Logits(back, ids), got) {
		t.Error("the saved model's logits differ from the folder's")
	}

	if testing.Short() {
		t.Skip("the PyTorch reference is in the full tier (it starts PyTorch); the bias's effect and its round trip are checked above")
	}
	py := "/usr/bin/python3"
	if exec.Command(py, "-c", "import torch").Run() != nil {
		t.Skip("skipping the PyTorch reference: /usr/bin/python3 has no torch")
	}
	js, _ := json.Marshal([][]int{ids})
	b, err := exec.Command(py, "testdata/torch_llama.py", string(js), dir).Output()
	if err != nil {
		t.Fatalf("torch_llama.py: %v", err)
	}
	var refs []struct {
		Logits []float32 `json:"logits"`
	}
	if err := json.Unmarshal(b, &refs); err != nil || len(refs) != 1 || len(refs[0].Logits) != len(got) {
		t.Fatalf("torch_llama.py: %v, %d results", err, len(refs))
	}
	if e := testmodels.RelDiff(got, refs[0].Logits); e > 1e-5 {
		t.Errorf("logits differ from PyTorch's by %.2g", e)
	} else {
		t.Logf("logits relative error %.2g against PyTorch", e)
	}
}
