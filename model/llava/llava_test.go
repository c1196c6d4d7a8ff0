package llava

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/vit"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// tinyOf is a random tiny LLaVA: a CLIP tower on 8 x 8 images of 4 x 4
// patches (4 image tokens) of width 16, and a language model of arch (GPT-2
// tied) of width 32 over vocab tokens, with biases or not.
func tinyOf(t *testing.T, arch string, vocab int, bias bool) *Model {
	t.Helper()
	be := cpu.New()
	vc := vit.Config{Arch: vit.CLIP, Image: 8, Patch: 4, Channels: 3, Hidden: 16, Layers: 1, Heads: 2, Intermediate: 32, Activation: "gelu", Eps: 1e-5}
	v, err := vit.New(be, vc, 1)
	if err != nil {
		t.Fatal(err)
	}
	c := gpt.Config{Arch: arch, Vocab: vocab, Context: 64, Layers: 1, Heads: 2, KVHeads: 2, Hidden: 32, Intermediate: 64,
		Eps: 1e-5, Activation: "gelu", Bias: bias, Tied: arch == "gpt2", RopeTheta: 1e4, BOS: -1, EOS: -1}
	lm, err := gpt.New(be, c, 2)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(v, lm, -1, 3)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// tiny is tinyOf over 50 tokens, with biases.
func tiny(t *testing.T, arch string) *Model { return tinyOf(t, arch, 50, true) }

func pixels(m *Model, B int) []float32 {
	p := make([]float32, B*m.PixelSize())
	for i := range p {
		p[i] = float32(math.Sin(float64(i) * 0.37))
	}
	return p
}

func TestSaveLoadRoundTrip(t *testing.T) {
	for _, arch := range []string{"llama", "gpt2"} {
		m := tiny(t, arch)
		dir := t.TempDir()
		if err := m.Save(dir); err != nil {
			t.Fatal(err)
		}
		if !IsLLaVA(dir) {
			t.Fatal("IsLLaVA is false on a saved folder")
		}
		b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
		for _, want := range []string{`"model_type": "llava"`, `"image_token_index": 50`, `"vision_feature_layer": -1`} {
			if !strings.Contains(string(b), want) {
				t.Errorf("config.json lacks %s:\n%s", want, b)
			}
		}
		got, err := Load(cpu.New(), dir)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		a, bps := m.Params(), got.Params()
		if len(a) != len(bps) {
			t.Fatalf("%d params, loaded %d", len(a), len(bps))
		}
		for i := range a {
			names[a[i].Name] = true
			x, y := a[i].Tensor.Host(), bps[i].Tensor.Host()
			for j := range x {
				if x[j] != y[j] {
					t.Fatalf("%s[%d]: %g, loaded %g", a[i].Name, j, x[j], y[j])
				}
			}
		}
		for _, n := range []string{"model.vision_tower.vision_model.embeddings.patch_embedding.weight", "model.multi_modal_projector.linear_1.weight", "model.multi_modal_projector.linear_2.bias"} {
			if !names[n] {
				t.Errorf("no parameter %q", n)
			}
		}
	}
}

func TestLoadRefusesAMismatchedConfig(t *testing.T) {
	m := tiny(t, "llama")
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "config.json")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(b), `"vision_feature_layer": -1`, `"vision_feature_layer": -3`, 1)), 0o644)
	if _, err := Load(cpu.New(), dir); err == nil || !strings.Contains(err.Error(), "vision_feature_layer") || !strings.Contains(err.Error(), "config.json") {
		t.Fatalf("err = %v, want one naming config.json's vision_feature_layer", err)
	}
}

// vision_feature_layer picks the tower's hidden state the projector
// reads: -2 (LLaVA 1.5's) is the penultimate block's output, not the
// last's; it survives Save and Load, and a config.json without it means
// transformers' default, -2.
func TestFeatureLayer(t *testing.T) {
	m := tiny(t, "llama") // a tower of 1 layer: -2 is the embeddings
	m2, err := New(m.Vision, m.LM, -2, 3)
	if err != nil {
		t.Fatal(err)
	}
	feats := func(m *Model) []float32 {
		var out []float32
		tensor.NoGrad(func() {
			s := tensor.NewScope()
			defer s.Close()
			img, err := m.ImageFeatures(s, pixels(m, 1), 1)
			if err != nil {
				t.Fatal(err)
			}
			out = img.Host()
		})
		return out
	}
	a, b := feats(m), feats(m2) // the same projector (seed 3), other features
	same := true
	for i := range a {
		same = same && a[i] == b[i]
	}
	if same {
		t.Fatal("vision_feature_layer -2 gives the same features as -1")
	}
	// -2 of a one-layer tower is hidden state 0: the embeddings.
	tensor.NoGrad(func() {
		s := tensor.NewScope()
		defer s.Close()
		x := s.FromHost(m.LM.Embed.Weight.Backend(), pixels(m, 1), 1, 3, 8, 8)
		h0, hm2 := m.Vision.Hidden(x, 0).Host(), m.Vision.Hidden(x, -2).Host()
		last, fwd := m.Vision.Hidden(x, -1).Host(), m.Vision.Forward(x).Host()
		for i := range h0 {
			if h0[i] != hm2[i] || last[i] != fwd[i] {
				t.Fatalf("hidden state -2 is not 0 or -1 is not Forward's at %d", i)
			}
		}
	})
	dir := t.TempDir()
	if err := m2.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := Load(cpu.New(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Config.FeatureLayer != -2 {
		t.Fatalf("loaded vision_feature_layer %d, want -2", got.Config.FeatureLayer)
	}
	if c := feats(got); c[0] != b[0] || c[len(c)-1] != b[len(b)-1] {
		t.Fatal("the loaded model's features differ from the saved model's")
	}
	p := filepath.Join(dir, "config.json")
	j, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(j), `"vision_feature_layer": -2,`, ``, 1)), 0o644)
	if c, err := LoadConfig(dir); err != nil || c.FeatureLayer != -2 {
		t.Fatalf("without vision_feature_layer: %v, %+v; want transformers' default -2", err, c)
	}
}

// The image's tokens land where the placeholder was: "ab<image>c" with
// one token per byte puts the 4 image tokens at positions 2..5, the text
// before them at 0..1 and "c" after them.
func TestImageLandsAtPlaceholder(t *testing.T) {
	m := tiny(t, "llama")
	enc := func(s string) []int {
		ids := make([]int, len(s))
		for i := range s {
			ids[i] = int(s[i]-'a') + 1
		}
		return ids
	}
	before, after, err := Split("ab<image>c", enc)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 2 || len(after) != 1 || before[1] != 2 || after[0] != 3 {
		t.Fatalf("split: %v / %v", before, after)
	}
	tensor.NoGrad(func() {
		s := tensor.NewScope()
		defer s.Close()
		img, err := m.ImageFeatures(s, pixels(m, 1), 1)
		if err != nil {
			t.Fatal(err)
		}
		x := m.Prefix(before, img).Host()
		C := m.Config.Text.Hidden
		if len(x) != (2+4)*C {
			t.Fatalf("prefix of %d values, want %d", len(x), 6*C)
		}
		emb := m.LM.Embed.Weight.Host()
		for p, id := range before { // positions 0, 1: the tokens "a", "b"
			for j := range C {
				if x[p*C+j] != emb[id*C+j] {
					t.Fatalf("position %d is not token %d's embedding", p, id)
				}
			}
		}
		feats := img.Host()
		for j := range 4 * C { // positions 2..5: the image
			if x[2*C+j] != feats[j] {
				t.Fatalf("position %d is not image token %d", 2+j/C, j/C)
			}
		}
	})
	for _, bad := range []string{"no image", "<image><image>"} {
		if _, _, err := Split(bad, enc); err == nil || !strings.Contains(err.Error(), "<image>") {
			t.Errorf("Split(%q): err = %v", bad, err)
		}
	}
}

func TestImageTheTowerCannotTake(t *testing.T) {
	m := tiny(t, "llama")
	s := tensor.NewScope()
	defer s.Close()
	if _, err := m.ImageFeatures(s, make([]float32, 10), 1); err == nil || !strings.Contains(err.Error(), "3 x 8 x 8") {
		t.Fatalf("err = %v, want one naming the tower's 3 x 8 x 8", err)
	}
}

// Stage 1 (the language model frozen) sends gradients to the projector
// only; stage 2 to the projector and the language model; never to the
// vision tower.
func TestGradientsFlow(t *testing.T) {
	for _, stage := range []string{"align", "instruct"} {
		m := tiny(t, "llama")
		if stage == "align" {
			m.LM.Freeze()
		}
		s := tensor.NewScope()
		img, err := m.ImageFeatures(s, pixels(m, 2), 2)
		if err != nil {
			t.Fatal(err)
		}
		ids := []int32{5, 6, 7, 8, 9, 10}
		tgt := []int32{6, 7, 8, 9, 10, 11}
		loss := m.LM.Loss(ids, tgt, 2, 3, gpt.Options{Embeds: m.Prefix([]int{1}, img), Scope: s})
		tensor.Backward(loss)
		for _, p := range m.Params() {
			g := p.Tensor.Grad()
			nonzero := false
			if g != nil {
				for _, v := range g.Host() {
					nonzero = nonzero || v != 0
				}
			}
			want := strings.HasPrefix(p.Name, ProjectorPrefix) || stage == "instruct" && (strings.HasPrefix(p.Name, LMPrefix) || p.Name == "lm_head.weight")
			if want && !nonzero && !strings.HasSuffix(p.Name, "embed_tokens.weight") {
				t.Errorf("%s: %s has no gradient", stage, p.Name)
			}
			if !want && g != nil {
				t.Errorf("%s: %s has a gradient", stage, p.Name)
			}
		}
		s.Close()
	}
}

// Render writes the format train/vlm.go trains in: the system text, user
// turns as UserTurn, answers after a space with end (the last one left
// open); misplaced system messages and unknown roles are errors.
func TestRender(t *testing.T) {
	got, err := Render([]tokenizer.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: Placeholder + "\nWhat is it?"},
		{Role: "assistant", Content: " a circle "}, {Role: "user", Content: "Colour?"}}, "<|im_end|>")
	want := "Be brief. USER: <image>\nWhat is it?\nASSISTANT: a circle<|im_end|>USER: Colour?\nASSISTANT:"
	if err != nil || got != want {
		t.Fatalf("Render: %q, %v; want %q", got, err, want)
	}
	if got, _ := Render([]tokenizer.Message{{Role: "user", Content: "hi"}, {Role: "assistant", Content: "It is"}}, "\n"); got != "USER: hi\nASSISTANT: It is" {
		t.Errorf("an answer last: %q, want it left open", got)
	}
	for _, msgs := range [][]tokenizer.Message{{{Role: "user", Content: "a"}, {Role: "system", Content: "b"}}, {{Role: "tool", Content: "x"}}} {
		if _, err := Render(msgs, "\n"); err == nil || !strings.Contains(err.Error(), "messages[") {
			t.Errorf("Render(%v): %v, want an error naming the message", msgs, err)
		}
	}
}

// Prompt is Render of alternating user and assistant turns, the
// placeholder opening the first with image, every answer closed.
func TestPrompt(t *testing.T) {
	for _, c := range []struct {
		image bool
		turns []string
		want  string
	}{
		{true, []string{"Describe the image."}, "USER: <image>\nDescribe the image.\nASSISTANT:"},
		{false, []string{"What is it?", " a circle ", "Colour?"}, "USER: What is it?\nASSISTANT: a circle<|im_end|>USER: Colour?\nASSISTANT:"},
		{true, []string{"What is it?", "a circle"}, "USER: <image>\nWhat is it?\nASSISTANT: a circle<|im_end|>"},
		{false, nil, ""},
	} {
		if got := Prompt("<|im_end|>", c.image, c.turns...); got != c.want {
			t.Errorf("Prompt(%v, %q) = %q, want %q", c.image, c.turns, got, c.want)
		}
	}
}
