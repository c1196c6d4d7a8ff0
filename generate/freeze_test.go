package generate

import (
	"math"
	"slices"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/internal/testmodels"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/optim"
)

// freezeModel is a random Llama wide enough that every matrix is kept
// packed once frozen (the CPU packs operands of 4,096 values or more).
func freezeModel(t *testing.T, be *cpu.CPU, seed uint64) *gpt.Model {
	t.Helper()
	m, err := gpt.New(be, gpt.Config{Arch: "llama", Vocab: 300, Context: 64, Layers: 2, Heads: 4, KVHeads: 2, Hidden: 64,
		Intermediate: 160, Eps: 1e-5, RopeTheta: 10000, BOS: -1, EOS: -1}, seed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// packedBytes is the bytes of the packed copies the backend holds of m's
// weights.
func packedBytes(be *cpu.CPU, m *gpt.Model) int64 {
	var n int64
	for _, p := range m.Params() {
		n += be.FrozenBytes(p.Tensor.Buffer())
	}
	return n
}

func sameBits(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// Frozen weights (nn.FreezeBuffers: the CPU keeps them packed, as the
// inference commands do) give a batch of prompts the very tokens, greedy
// and sampled, and a prefill the very logits, bit for bit, that unfrozen
// weights give; thaw drops the packed copies.
func TestFrozenWeightsSameOutputs(t *testing.T) {
	be := cpu.New()
	m := freezeModel(t, be, 3)
	prompts := [][]int{{1, 2, 3, 4, 5}, {7}, {9, 8, 7, 6, 5, 4, 3}, {11, 12}}
	run := func() (greedy, sampled [][]int, logits []float32) {
		var err error
		if greedy, err = Tokens(m, prompts, Options{MaxTokens: 12}, nil); err != nil {
			t.Fatal(err)
		}
		if sampled, err = Tokens(m, prompts, Options{MaxTokens: 12, Temperature: 1, TopK: 50, Seed: 9}, nil); err != nil {
			t.Fatal(err)
		}
		return greedy, sampled, testmodels.Logits(m, []int{5, 6, 7, 8, 9, 10, 11, 12, 13, 14})
	}
	g0, s0, l0 := run()
	thaw, ok := nn.FreezeBuffers(m.Params(), nn.MaxFrozenBytes)
	if !ok {
		t.Fatal("FreezeBuffers froze nothing on the CPU")
	}
	g1, s1, l1 := run()
	if n := packedBytes(be, m); n == 0 {
		t.Fatal("no weight was kept packed: the comparison below compares nothing")
	}
	for i := range prompts {
		if !slices.Equal(g0[i], g1[i]) || !slices.Equal(s0[i], s1[i]) {
			t.Errorf("prompt %d: greedy %v and sampled %v unfrozen, %v and %v frozen", i, g0[i], s0[i], g1[i], s1[i])
		}
	}
	if !sameBits(l0, l1) {
		t.Errorf("a prefill's logits differ frozen: max relative difference %g", testmodels.RelDiff(l1, l0))
	}
	thaw()
	if n := packedBytes(be, m); n != 0 {
		t.Errorf("%d bytes still packed after thaw", n)
	}
	if _, ok := nn.FreezeBuffers(m.Params(), 1<<10); ok {
		t.Error("FreezeBuffers froze weights of more bytes than its limit")
	}
}

// A policy that samples frozen and is thawed before each optimizer step
// trains exactly as one never frozen: the same weights and the same
// logits after every step. Without the thaw the frozen copies go stale,
// which this test would see (checked on a third model).
func TestFreezeThawTrainsAsNeverFrozen(t *testing.T) {
	be := cpu.New()
	plain, thawed, stale := freezeModel(t, be, 4), freezeModel(t, be, 4), freezeModel(t, be, 4)
	opts := make([]*optim.AdamW, 3)
	for i, m := range []*gpt.Model{plain, thawed, stale} {
		opts[i] = optim.NewAdamW(m.Params(), 0.9, 0.99, 1e-8, 0.01)
	}
	nn.FreezeBuffers(stale.Params(), 0) // never thawed
	ids := []int{3, 1, 4, 1, 5, 9, 2, 6}
	for step := 1; step <= 3; step++ {
		thaw, _ := nn.FreezeBuffers(thawed.Params(), 0) // a rollout's sampling
		want := testmodels.Logits(plain, ids)
		if got := testmodels.Logits(thawed, ids); !sameBits(got, want) {
			t.Fatalf("step %d: frozen logits differ from the never-frozen model's: %g", step, testmodels.RelDiff(got, want))
		}
		testmodels.Logits(stale, ids)
		thaw()
		for i, m := range []*gpt.Model{plain, thawed, stale} { // the same synthetic gradient for each
			for j, p := range m.Params() {
				g := make([]float32, p.Tensor.Len())
				for k := range g {
					g[k] = float32(math.Sin(float64(step*7919 + j*104729 + k)))
				}
				p.Tensor.ZeroGrad()
				be.Upload(p.Tensor.GradBuffer(), 0, g)
			}
			opts[i].Update(1e-2)
		}
		for j, p := range plain.Params() {
			if !sameBits(p.Tensor.Host(), thawed.Params()[j].Tensor.Host()) {
				t.Fatalf("step %d: %s differs after the optimizer step", step, p.Name)
			}
		}
	}
	want := testmodels.Logits(plain, ids)
	if got := testmodels.Logits(thawed, ids); !sameBits(got, want) {
		t.Fatalf("after training: thawed logits differ: %g", testmodels.RelDiff(got, want))
	}
	if got := testmodels.Logits(stale, ids); sameBits(got, want) {
		t.Fatal("a model frozen through its optimizer steps gave the trained logits: the stale packed copies went unseen, so the test above checks nothing")
	}
}
