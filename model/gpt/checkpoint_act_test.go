package gpt

import (
	"slices"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/tensor"
)

// TestCheckpointActivations: with CheckpointActivations a training step's
// gradients equal the plain step's bit for bit (dropout on, its masks
// seeded; full model and LoRA), and a 6-layer model holds less memory
// after forward and peaks lower.
func TestCheckpointActivations(t *testing.T) {
	step := func(ck, lora bool, layers int) (grads [][]float32, held, peak int64) {
		be := cpu.New()
		m, err := New(be, Config{Arch: "llama", Vocab: 64, Context: 32, Layers: layers, Heads: 2, KVHeads: 2, Hidden: 32, Intermediate: 96,
			Eps: 1e-5, RopeTheta: 1e4, BOS: -1, EOS: -1, Dropout: 0.1}, 1)
		if err != nil {
			t.Fatal(err)
		}
		if lora {
			if _, err := m.AttachLoRA(LoRAConfig{R: 2, Alpha: 4, Dropout: 0.1, Targets: []string{"all-linear"}}, 2); err != nil {
				t.Fatal(err)
			}
			for i, p := range m.LoRAParams() {
				randomize(p.Tensor, uint64(i+5))
			}
			m.SetLoRASeed(9)
		}
		m.CheckpointActivations = ck
		const B, T = 4, 32
		ids, tg := make([]int32, B*T), make([]int32, B*T)
		for i := range ids {
			ids[i], tg[i] = int32(i*7%64), int32(i*11%64)
		}
		base := be.MemStats().Live
		be.ResetPeak()
		s := tensor.NewScope()
		loss := m.Loss(ids, tg, B, T, Options{Train: true, Seed: 3, Scope: s})
		held = be.MemStats().Live - base
		tensor.Backward(loss)
		peak = be.MemStats().Peak - base
		ps := m.Params()
		if lora {
			ps = m.LoRAParams()
		}
		for _, p := range ps {
			if p.Tensor.HasGrad() {
				grads = append(grads, p.Tensor.Grad().Host())
			}
		}
		s.Close()
		return grads, held, peak
	}
	for _, lora := range []bool{false, true} {
		a, _, _ := step(false, lora, 2)
		b, _, _ := step(true, lora, 2)
		if len(a) == 0 || len(a) != len(b) {
			t.Fatalf("LoRA %v: %d and %d gradients", lora, len(a), len(b))
		}
		for i := range a {
			if !slices.Equal(a[i], b[i]) {
				t.Errorf("LoRA %v: parameter %d: gradients differ with checkpointing", lora, i)
			}
		}
	}
	_, heldOff, peakOff := step(false, false, 6)
	_, heldOn, peakOn := step(true, false, 6)
	t.Logf("6 layers: held after forward %d -> %d bytes, peak %d -> %d", heldOff, heldOn, peakOff, peakOn)
	if heldOn*2 > heldOff || peakOn >= peakOff {
		t.Errorf("checkpointing: held after forward %d -> %d bytes, peak %d -> %d: want half held or less and a lower peak", heldOff, heldOn, peakOff, peakOn)
	}
}
