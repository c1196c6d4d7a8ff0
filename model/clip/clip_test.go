package clip

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/safetensors"
	"github.com/golem-ml/golem/tensor"
)

// relErr is max|a-b| / max|b|: the error relative to the reference's scale.
func relErr(a, b []float32) float64 {
	var d, s float64
	for i := range b {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
		s = math.Max(s, math.Abs(float64(b[i])))
	}
	return d / math.Max(s, 1e-30)
}

type golden struct {
	pix   *tensor.Tensor
	ids   []int32
	B, T  int
	store *safetensors.File
}

func loadGolden(t *testing.T) (*Model, *golden) {
	t.Helper()
	dir := shared.Path(t, "fixtures/hf/clip-tiny")
	be := cpu.New()
	m, err := Load(be, dir)
	if err != nil {
		t.Fatal(err)
	}
	g, err := safetensors.Open(filepath.Join(dir, "golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	pix, shape, err := g.Float32("pixel_values")
	if err != nil {
		t.Fatal(err)
	}
	ids64, ishape, err := g.Int64("input_ids")
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int32, len(ids64))
	for i, v := range ids64 {
		ids[i] = int32(v)
	}
	return m, &golden{pix: tensor.FromHost(be, pix, shape...), ids: ids, B: ishape[0], T: ishape[1], store: g}
}

func (g *golden) get(t *testing.T, name string) []float32 {
	t.Helper()
	v, _, err := g.store.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// CLIPModel loaded from transformers' clip-tiny gives its image and text
// embeddings, logits and symmetric contrastive loss within 1e-4, and the
// loss's gradient for every parameter but the token table within 1e-3
// (the key biases', zero in exact arithmetic, within 1e-6 of zero).
func TestMatchesTransformers(t *testing.T) {
	m, g := loadGolden(t)
	out := m.Forward(g.pix, g.ids, g.B, g.T)
	for _, c := range []struct {
		name string
		got  *tensor.Tensor
	}{
		{"image_embeds", out.ImageEmbeds}, {"text_embeds", out.TextEmbeds},
		{"logits_per_image", out.LogitsPerImage}, {"loss", out.Loss},
	} {
		want := g.get(t, c.name)
		if e := relErr(c.got.Host(), want); e > 1e-4 {
			t.Errorf("%s differs from transformers by %.2g relative: got %v, want %v", c.name, e, c.got.Host(), want)
		} else {
			t.Logf("%s within %.2g", c.name, e)
		}
	}
	tensor.Backward(out.Loss)
	checked, worst := 0, 0.0
	for _, p := range m.Params() {
		if p.Name == "text_model.embeddings.token_embedding.weight" {
			continue
		}
		want := g.get(t, "grad."+p.Name)
		got := p.Tensor.Grad().Host()
		checked++
		if strings.HasSuffix(p.Name, "k_proj.bias") {
			// A key bias adds the same score to every key of a query,
			// which the softmax ignores: its gradient is zero, and both
			// sides hold rounding noise (transformers' is below 2e-8).
			for i := range got {
				if math.Abs(float64(got[i])) > 1e-6 || math.Abs(float64(want[i])) > 1e-6 {
					t.Errorf("grad.%s[%d] = %g (transformers %g), want about 0", p.Name, i, got[i], want[i])
				}
			}
			continue
		}
		e := relErr(got, want)
		if e > 1e-3 {
			t.Errorf("grad.%s differs from transformers by %.2g relative", p.Name, e)
		}
		worst = max(worst, e)
	}
	if checked != 77 {
		t.Errorf("checked %d gradients, the fixture has 77", checked)
	}
	t.Logf("%d gradients within %.2g", checked, worst)
}

// Save then Load gives the same parameters and outputs, and a config.json
// that parses back to the same config.
func TestSaveLoadRoundTrip(t *testing.T) {
	m, g := loadGolden(t)
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	m2, err := Load(cpu.New(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if m2.Config != m.Config {
		t.Fatalf("config %+v after the round trip, want %+v", m2.Config, m.Config)
	}
	p1, p2 := m.Params(), m2.Params()
	if len(p1) != len(p2) {
		t.Fatalf("%d parameters after the round trip, want %d", len(p2), len(p1))
	}
	for i := range p1 {
		if p1[i].Name != p2[i].Name || !slices.Equal(p1[i].Tensor.Host(), p2[i].Tensor.Host()) {
			t.Fatalf("parameter %s differs after the round trip", p1[i].Name)
		}
	}
	var l1, l2 []float32
	tensor.NoGrad(func() {
		l1 = m.Forward(g.pix, g.ids, g.B, g.T).LogitsPerImage.Host()
		l2 = m2.Forward(g.pix, g.ids, g.B, g.T).LogitsPerImage.Host()
	})
	if !slices.Equal(l1, l2) {
		t.Fatalf("logits %v after the round trip, want %v", l2, l1)
	}
}

// A text is pooled at its first end-of-text token (the largest id for
// eos 2), at its last token without one; padding after it changes nothing.
func TestPooling(t *testing.T) {
	ids := []int32{5, 9, 7, 9, 1, 3, 4, 6, 2, 8, 0, 0}
	if got := PoolPositions(ids, 3, 4, 9); !slices.Equal(got, []int32{1, 3, 3}) {
		t.Errorf("eos 9: %v, want [1 3 3]", got)
	}
	if got := PoolPositions(ids, 3, 4, 2); !slices.Equal(got, []int32{1, 3, 1}) {
		t.Errorf("eos 2 (argmax): %v, want [1 3 1]", got)
	}
	m, g := loadGolden(t)
	eos := int32(m.Config.Text.EOS)
	// The first text, its end-of-text token moved one earlier and padded.
	T := g.T
	a := slices.Clone(g.ids[:T])
	b := append(slices.Clone(a[:T-2]), eos, int32(m.Config.Text.Pad))
	c := append(slices.Clone(a[:T-2]), eos, 77)
	var fb, fc []float32
	tensor.NoGrad(func() {
		fb = m.TextFeatures(b, 1, T).Host()
		fc = m.TextFeatures(c, 1, T).Host()
	})
	if !slices.Equal(fb, fc) {
		t.Fatal("tokens after the end-of-text token changed the text's feature")
	}
}

// Bad folders are refused naming config.json and the field.
func TestLoadRefusesBadConfig(t *testing.T) {
	dir := shared.Path(t, "fixtures/hf/clip-tiny")
	cfg, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, to, want string }{
		{`"projection_dim": 16`, `"projection_dim": 4096`, `"projection_dim"`},
		{`"vocab_size": 49408`, `"vocab_size": 16000000`, `"vocab_size"`},
		{`"max_position_embeddings": 16`, `"max_position_embeddings": 60000`, `"max_position_embeddings"`},
		{`"patch_size": 8`, `"patch_size": 4`, `vision_config`},
		{`"hidden_act": "quick_gelu"`, `"hidden_act": "relu6"`, `"hidden_act" "relu6"`},
		{`"model_type": "clip"`, `"model_type": "siglip"`, `model_type "siglip"`},
	} {
		d := t.TempDir()
		c := strings.Replace(string(cfg), tc.from, tc.to, 1)
		if c == string(cfg) {
			t.Fatalf("%q not in config.json", tc.from)
		}
		os.WriteFile(filepath.Join(d, "config.json"), []byte(c), 0o644)
		os.Symlink(filepath.Join(dir, "model.safetensors"), filepath.Join(d, "model.safetensors"))
		_, err := Load(cpu.New(), d)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "config.json") {
			t.Errorf("%s: Load: %v, want an error naming config.json and %s", tc.to, err, tc.want)
		}
	}
}
