package vit

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/model/weights"
	"github.com/golem-ml/golem/nn"
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

func randn(r *rand.Rand, n int) []float32 {
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(r.NormFloat64())
	}
	return d
}

// tiny returns a small config of each layout.
func tiny(arch string) Config {
	c := Config{Arch: arch, Image: 8, Patch: 4, Channels: 2, Hidden: 8, Layers: 2, Heads: 2, Intermediate: 12,
		Activation: "gelu", Eps: 1e-12, QKVBias: true}
	switch arch {
	case CLIP:
		c.Activation, c.Eps = "quick_gelu", 1e-5
	case ViT:
		c.Pooler = true
	case MAE:
		c.DecoderHidden, c.DecoderLayers, c.DecoderHeads, c.DecoderIntermediate = 4, 1, 2, 8
		c.MaskRatio, c.NormPixLoss = 0.5, true
	}
	return c
}

// CLIP's vision tower loaded from transformers' clip-tiny CLIPModel
// gives its image_embeds (the pooled class token through
// visual_projection, normalised) within 1e-4.
func TestCLIPVisionMatchesTransformers(t *testing.T) {
	dir := shared.Path(t, "fixtures/hf/clip-tiny")
	var full struct {
		Vision json.RawMessage `json:"vision_config"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &full); err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(full.Vision, CLIP)
	if err != nil {
		t.Fatal(err)
	}
	st, err := safetensors.OpenModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := CheckHeader(c, st, "model.safetensors", ""); err != nil {
		t.Fatal(err)
	}
	be := cpu.New()
	m, err := New(be, *c, 1)
	if err != nil {
		t.Fatal(err)
	}
	proj := tensor.New(be, 16, c.Hidden)
	ps := append(m.Params(), nn.Named{Name: "visual_projection.weight", Tensor: proj})
	if err := weights.Fill(st, ps, dir, func(n string) bool { return !strings.HasPrefix(n, "vision_model.") }); err != nil {
		t.Fatal(err)
	}
	g, err := safetensors.Open(filepath.Join(dir, "golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	pix, shape, _ := g.Float32("pixel_values")
	want, _, _ := g.Float32("image_embeds")
	var got []float32
	tensor.NoGrad(func() {
		f := m.Features(tensor.FromHost(be, pix, shape...))
		// transformers' image_embeds are the projections scaled to unit
		// length (the fixture's README calls them unnormalised; their
		// norms are 1).
		got = tensor.L2Normalize(tensor.Linear(f, proj, nil), 0).Host()
	})
	if e := relErr(got, want); e > 1e-4 {
		t.Fatalf("image_embeds differ from transformers by %.2g relative:\n got %v\nwant %v", e, got[:4], want[:4])
	}
	t.Logf("image_embeds within %.2g of transformers", relErr(got, want))
}

// The tensor names of each layout are transformers' (from
// modeling_vit.py, modeling_vit_mae.py and modeling_clip.py), checked
// here for a one-layer model of each.
func TestNamesAreTransformers(t *testing.T) {
	vitLayer := func(p string) []string {
		var out []string
		for _, n := range []string{"layernorm_before", "attention.attention.query", "attention.attention.key", "attention.attention.value",
			"attention.output.dense", "layernorm_after", "intermediate.dense", "output.dense"} {
			out = append(out, p+n+".weight", p+n+".bias")
		}
		return out
	}
	clipLayer := func(p string) []string {
		var out []string
		for _, n := range []string{"layer_norm1", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
			"layer_norm2", "mlp.fc1", "mlp.fc2"} {
			out = append(out, p+n+".weight", p+n+".bias")
		}
		return out
	}
	vitEmb := func(p string) []string {
		return []string{p + "embeddings.cls_token", p + "embeddings.position_embeddings",
			p + "embeddings.patch_embeddings.projection.weight", p + "embeddings.patch_embeddings.projection.bias"}
	}
	want := map[string][]string{
		ViT: slices.Concat(vitEmb(""), vitLayer("encoder.layer.0."), []string{"layernorm.weight", "layernorm.bias", "pooler.dense.weight", "pooler.dense.bias"}),
		MAE: slices.Concat(vitEmb("vit."), vitLayer("vit.encoder.layer.0."), []string{"vit.layernorm.weight", "vit.layernorm.bias",
			"decoder.decoder_embed.weight", "decoder.decoder_embed.bias", "decoder.mask_token", "decoder.decoder_pos_embed"},
			vitLayer("decoder.decoder_layers.0."), []string{"decoder.decoder_norm.weight", "decoder.decoder_norm.bias", "decoder.decoder_pred.weight", "decoder.decoder_pred.bias"}),
		CLIP: slices.Concat([]string{"vision_model.embeddings.class_embedding", "vision_model.embeddings.patch_embedding.weight",
			"vision_model.embeddings.position_embedding.weight", "vision_model.pre_layrnorm.weight", "vision_model.pre_layrnorm.bias"},
			clipLayer("vision_model.encoder.layers.0."), []string{"vision_model.post_layernorm.weight", "vision_model.post_layernorm.bias"}),
	}
	for arch, names := range want {
		c := tiny(arch)
		c.Layers = 1
		m, err := New(cpu.New(), c, 1)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range m.Params() {
			got = append(got, p.Name)
		}
		slices.Sort(got)
		slices.Sort(names)
		if !slices.Equal(got, names) {
			t.Errorf("%s: names\n got %v\nwant %v", arch, got, names)
		}
	}
}

// Save then Load gives the same parameters, config and outputs, for each
// layout; the saved config.json is transformers' for the layout.
func TestSaveLoadRoundTrip(t *testing.T) {
	be := cpu.New()
	r := rand.New(rand.NewPCG(1, 2))
	for _, arch := range []string{ViT, MAE, CLIP} {
		c := tiny(arch)
		m, err := New(be, c, 7)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := m.Save(dir); err != nil {
			t.Fatal(err)
		}
		m2, err := Load(be, dir)
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		if m2.Config != m.Config {
			t.Errorf("%s: config %+v after the round trip, want %+v", arch, m2.Config, m.Config)
		}
		p1, p2 := m.Params(), m2.Params()
		for i := range p1 {
			if p1[i].Name != p2[i].Name || !slices.Equal(p1[i].Tensor.Host(), p2[i].Tensor.Host()) {
				t.Fatalf("%s: parameter %s differs after the round trip", arch, p1[i].Name)
			}
		}
		pix := tensor.FromHost(be, randn(r, 3*c.Channels*c.Image*c.Image), 3, c.Channels, c.Image, c.Image)
		if !slices.Equal(m.Features(pix).Host(), m2.Features(pix).Host()) {
			t.Errorf("%s: features differ after the round trip", arch)
		}
		var h map[string]any
		b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
		if err := json.Unmarshal(b, &h); err != nil {
			t.Fatal(err)
		}
		class := map[string]string{ViT: "ViTModel", MAE: "ViTMAEForPreTraining", CLIP: "CLIPVisionModel"}[arch]
		if h["model_type"] != arch || h["architectures"].([]any)[0] != class || h["hidden_size"] != 8.0 || h["patch_size"] != 4.0 {
			t.Errorf("%s: config.json %s", arch, b)
		}
	}
}

// The patch embedding, computed as one Linear over Patchify's patches,
// is the stride-patch convolution transformers runs.
func TestPatchEmbeddingIsTheConvolution(t *testing.T) {
	be := cpu.New()
	c := tiny(ViT)
	m, err := New(be, c, 3)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	pix := tensor.FromHost(be, randn(r, 2*c.Channels*c.Image*c.Image), 2, c.Channels, c.Image, c.Image)
	m.Patch.Bias.Set(randn(r, c.Hidden))
	conv := m.Patch.Forward(pix)                                                          // [B, C, g, g]
	want := tensor.Transpose(tensor.Reshape(conv, 2, c.Hidden, c.Patches()), 1, 2).Host() // [B, N, C]
	pos := m.Pos.Host()[c.Hidden:]
	got := m.patchTokens(pix).Host()
	for i := range got {
		got[i] -= pos[i%len(pos)]
	}
	if e := relErr(got, want); e > 1e-6 {
		t.Fatalf("patch embedding differs from the convolution by %.2g", e)
	}
}

// MAE's sin-cos table is transformers' get_2d_sincos_pos_embed: the class
// token's row is zero; patch (row r, column c) has sin(c), cos(c) in the
// first half's first entries (the column goes first), sin(r) in the second.
func TestMAEPositions(t *testing.T) {
	c := tiny(MAE)
	m, err := New(cpu.New(), c, 1)
	if err != nil {
		t.Fatal(err)
	}
	C, g := c.Hidden, c.Image/c.Patch
	pos := m.Pos.Host()
	for _, v := range pos[:C] {
		if v != 0 {
			t.Fatalf("class token's position row %v, want zeros", pos[:C])
		}
	}
	r, col := 1, 0 // patch 1*g+0: row 1, column 0
	row := pos[(1+r*g+col)*C:]
	q := C / 4
	if row[0] != 0 || row[q] != 1 || math.Abs(float64(row[2*q])-math.Sin(1)) > 1e-6 || math.Abs(float64(row[3*q])-math.Cos(1)) > 1e-6 {
		t.Fatalf("position of row 1, column 0: %v", row[:C])
	}
	if m.Pos.RequiresGrad() || m.Decoder.Pos.RequiresGrad() {
		t.Fatal("MAE's sin-cos positions must not be trained")
	}
}

// ForwardMAE keeps the patches of smallest noise, hides the rest, and its
// loss is the mean squared error of the hidden patches' predictions
// against their normalised pixels in patchify order, recomputed here from
// the returned predictions.
func TestMAELoss(t *testing.T) {
	be := cpu.New()
	c := tiny(MAE)
	m, err := New(be, c, 5)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	B, N, P := 2, c.Patches(), c.PatchDim()
	px := randn(r, B*c.Channels*c.Image*c.Image)
	pix := tensor.FromHost(be, px, B, c.Channels, c.Image, c.Image)
	noise := []float32{0.9, 0.1, 0.5, 0.3, 0.2, 0.8, 0.4, 0.05}
	loss, predT, mask := m.ForwardMAE(pix, 0.5, noise)
	wantMask := []float32{1, 0, 1, 0, 0, 1, 1, 0}
	if !slices.Equal(mask, wantMask) {
		t.Fatalf("mask %v, want %v", mask, wantMask)
	}
	pred := predT.Host()
	if !slices.Equal(predT.Shape(), []int{B, N, P}) {
		t.Fatalf("pred shape %v", predT.Shape())
	}
	var sum float64
	cnt := 0
	g, S, p := c.Image/c.Patch, c.Image, c.Patch
	for b := range B {
		for n := range N {
			if mask[b*N+n] == 0 {
				continue
			}
			t := make([]float64, P)
			for y := range p {
				for x := range p {
					for ch := range c.Channels {
						t[(y*p+x)*c.Channels+ch] = float64(px[((b*c.Channels+ch)*S+(n/g)*p+y)*S+(n%g)*p+x])
					}
				}
			}
			var mean, v float64
			for _, x := range t {
				mean += x / float64(P)
			}
			for _, x := range t {
				v += (x - mean) * (x - mean) / float64(P-1)
			}
			for j, x := range t {
				d := float64(pred[(b*N+n)*P+j]) - (x-mean)/math.Sqrt(v+1e-6)
				sum += d * d
			}
			cnt += P
		}
	}
	want := sum / float64(cnt)
	if got := float64(loss.Host()[0]); math.Abs(got-want) > 1e-5*want {
		t.Fatalf("loss %v, want %v", got, want)
	}
	// Without gradients (each block's intermediates released as it ends),
	// the same loss.
	tensor.NoGrad(func() {
		l, _, _ := m.ForwardMAE(pix, 0.5, noise)
		if l.Host()[0] != loss.Host()[0] {
			t.Errorf("loss without gradients %v, with %v", l.Host()[0], loss.Host()[0])
		}
		tensor.Release(l)
	})
}

// gradCheck compares the gradients of loss() for a few elements of every
// parameter against central finite differences.
func gradCheck(t *testing.T, ps []nn.Named, loss func() *tensor.Tensor) {
	t.Helper()
	for _, p := range ps {
		p.Tensor.ZeroGrad()
	}
	l := loss()
	tensor.Backward(l)
	r := rand.New(rand.NewPCG(9, 9))
	for _, p := range nn.Trainable(ps) {
		grad := p.Tensor.Grad().Host()
		for range 2 {
			i := r.IntN(p.Tensor.Len())
			v := p.Tensor.Host()
			const h = 1e-2
			orig := v[i]
			var fp, fm float64
			tensor.NoGrad(func() {
				v[i] = orig + h
				p.Tensor.Set(v)
				fp = float64(loss().Host()[0])
				v[i] = orig - h
				p.Tensor.Set(v)
				fm = float64(loss().Host()[0])
			})
			v[i] = orig
			p.Tensor.Set(v)
			num := (fp - fm) / (2 * h)
			if d := math.Abs(num - float64(grad[i])); d > 2e-3+2e-2*math.Abs(num) {
				t.Errorf("%s[%d]: gradient %g, finite differences %g", p.Name, i, grad[i], num)
			}
		}
	}
}

// Every layout's gradients agree with finite differences: the ViT and
// CLIP encoders (through Features) and MAE's masked encoder, decoder and
// loss (the gathers of visible patches and mask tokens included).
func TestGradients(t *testing.T) {
	be := cpu.New()
	r := rand.New(rand.NewPCG(7, 8))
	for _, arch := range []string{ViT, CLIP, MAE} {
		c := tiny(arch)
		c.Eps = 1e-5
		m, err := New(be, c, 11)
		if err != nil {
			t.Fatal(err)
		}
		pix := tensor.FromHost(be, randn(r, 2*c.Channels*c.Image*c.Image), 2, c.Channels, c.Image, c.Image)
		w := tensor.FromHost(be, randn(r, 2*c.Hidden), 2, c.Hidden)
		noise := []float32{0.9, 0.1, 0.5, 0.3, 0.2, 0.8, 0.4, 0.05}
		loss := func() *tensor.Tensor {
			if arch == MAE {
				l, _, _ := m.ForwardMAE(pix, 0.5, noise)
				return l
			}
			f := m.Features(pix)
			if arch == ViT {
				f = m.Pool(m.Forward(pix))
			}
			return tensor.Sum(tensor.Mul(f, w))
		}
		t.Run(arch, func(t *testing.T) { gradCheck(t, m.Params(), loss) })
	}
}

// counting is the CPU backend counting the floats it has handed out and
// not taken back, and the most at once.
type counting struct {
	*cpu.CPU
	live, peak int
}

func (c *counting) Alloc(n int, zero bool) backend.Buffer {
	b := c.CPU.Alloc(n, zero)
	c.live += cap(b.(*cpu.Buf).D)
	c.peak = max(c.peak, c.live)
	return b
}

func (c *counting) Free(b backend.Buffer) {
	if bb, ok := b.(*cpu.Buf); ok {
		c.live -= cap(bb.D)
	}
	c.CPU.Free(b)
}

// Without gradients, a forward pass holds one block's intermediates at a
// time: the peak memory of 8 blocks is within 10% of 2 blocks' (it was
// about 3.5 times), features are the same as with gradients, and
// releasing the output gives back everything but the weights and input.
func TestNoGradMemoryIsOneBlock(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	var peaks []int
	for _, layers := range []int{2, 8} {
		be := &counting{CPU: cpu.New()}
		c := tiny(CLIP)
		c.Layers, c.Image, c.Patch = layers, 16, 2
		m, err := New(be, c, 1)
		if err != nil {
			t.Fatal(err)
		}
		px := randn(r, 4*c.Channels*c.Image*c.Image)
		want := m.Features(tensor.FromHost(be, px, 4, c.Channels, c.Image, c.Image)).Host()
		base := be.live
		be.peak = base
		var got []float32
		tensor.NoGrad(func() {
			s := tensor.NewScope()
			f := m.Features(s.FromHost(be, px, 4, c.Channels, c.Image, c.Image))
			got = f.Host()
			s.Close()
		})
		if e := relErr(got, want); e > 0 {
			t.Fatalf("%d layers: features without gradients differ by %.2g", layers, e)
		}
		if be.live > base {
			t.Errorf("%d layers: %d floats still held after the release", layers, be.live-base)
		}
		peaks = append(peaks, be.peak-base)
	}
	if float64(peaks[1]) > 1.1*float64(peaks[0]) {
		t.Fatalf("peak without gradients: %d floats for 2 blocks, %d for 8", peaks[0], peaks[1])
	}
	t.Logf("peak without gradients: %d floats for 2 blocks, %d for 8", peaks[0], peaks[1])
}
