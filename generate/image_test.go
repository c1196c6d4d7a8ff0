package generate

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/model/vit"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// tinyLLaVA is a random LLaVA model: a CLIP tower on 16 x 16 images of
// 8 x 8 patches (4 image tokens) and a small Llama of 50 tokens.
func tinyLLaVA(t *testing.T) *llava.Model {
	t.Helper()
	be := cpu.New()
	v, err := vit.New(be, vit.Config{Arch: vit.CLIP, Image: 16, Patch: 8, Channels: 3, Hidden: 16, Layers: 1, Heads: 2,
		Intermediate: 32, Activation: "gelu", Eps: 1e-5}, 3)
	if err != nil {
		t.Fatal(err)
	}
	lm, err := gpt.New(be, gpt.Config{Arch: "llama", Vocab: 50, Context: 64, Layers: 2, Heads: 2, KVHeads: 2, Hidden: 32,
		Intermediate: 64, Eps: 1e-5, RopeTheta: 10000, BOS: -1, EOS: -1}, 4)
	if err != nil {
		t.Fatal(err)
	}
	m, err := llava.New(v, lm, -1, 5)
	if err != nil {
		t.Fatal(err)
	}
	// A projector of weights N(0, 1) rather than 0.02, so that what the
	// image is changes what the model says.
	r := rand.New(rand.NewPCG(7, 8))
	for _, p := range nn.Params(m.Projector) {
		w := make([]float32, p.Tensor.Len())
		for i := range w {
			w[i] = float32(r.NormFloat64())
		}
		p.Tensor.CopyFrom(tensor.FromHost(be, w, p.Tensor.Shape()...))
	}
	return m
}

// Each row of a batch sees its own image (Options.RowPrompts): greedy
// answers of two prompts about two images, in one padded batch, are the
// answers of each alone, token for token, and the image changes the
// answer (so a batch that gave both rows one image would fail).
func TestRowPromptsEqualAlone(t *testing.T) {
	m := tinyLLaVA(t)
	r := rand.New(rand.NewPCG(1, 2))
	var sps []*nn.SoftPrompt
	for k := range 2 {
		pix := make([]float32, m.PixelSize())
		for i := range pix {
			pix[i] = float32(2*k-1) + float32(r.NormFloat64()) // darker, then lighter
		}
		sp, err := m.PromptEmbeds([]int{1, 2}, pix) // the text before the image, then its 4 tokens
		if err != nil {
			t.Fatal(err)
		}
		sps = append(sps, sp)
	}
	prompts := [][]int{{3, 4, 5}, {8}} // of two lengths: row 1 is padded
	o := Options{MaxTokens: 12}
	o.RowPrompts = sps
	both, err := Tokens(m.LM, prompts, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	alone := func(b, img int) []int {
		o := Options{MaxTokens: 12, RowPrompts: []*nn.SoftPrompt{sps[img]}}
		out, err := Tokens(m.LM, prompts[b:b+1], o, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out[0]
	}
	for b := range prompts {
		if want := alone(b, b); !slices.Equal(both[b], want) {
			t.Errorf("row %d in the batch: %v; alone: %v", b, both[b], want)
		}
		if slices.Equal(alone(b, 0), alone(b, 1)) {
			t.Errorf("row %d: the answer is the same for both images (%v): the test cannot tell them apart", b, alone(b, 0))
		}
	}
	// One row's prompt as a soft prompt for both is what RowPrompts of it
	// twice gives.
	same, err := Tokens(m.LM, prompts, Options{MaxTokens: 12, SoftPrompt: sps[1]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := Tokens(m.LM, prompts, Options{MaxTokens: 12, RowPrompts: []*nn.SoftPrompt{sps[1], sps[1]}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(same, twice, slices.Equal) {
		t.Errorf("a soft prompt: %v; the same as each row's: %v", same, twice)
	}

	short, err := m.PromptEmbeds([]int{1}, make([]float32, m.PixelSize()))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{RowPrompts: sps[:1]}, "1 rows' prompts for 2 prompts"},
		{Options{RowPrompts: []*nn.SoftPrompt{sps[0], short}}, "row 1's prompt has 5 embeddings, row 0's 6"},
		{Options{RowPrompts: sps, SoftPrompt: sps[0]}, "set one"},
	} {
		if _, err := Tokens(m.LM, prompts, c.o, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}
