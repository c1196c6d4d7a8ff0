package resnet

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/tensor"
)

func tinyConfig(ch int, norm string) Config {
	c := Presets()["tiny"]
	c.Channels, c.Norm = ch, norm
	return c
}

func randImages(n, c, h, w int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	x := make([]float32, n*c*h*w)
	for i := range x {
		x[i] = r.Float32()
	}
	return x
}

// The layout: names as Hugging Face's ResNetModel, strides halving the
// resolution from the second stage on, [B, Dim] features.
func TestShapesAndNames(t *testing.T) {
	be := cpu.New()
	m, err := New(be, tinyConfig(1, "batch"), 1)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string][]int{}
	for _, p := range m.Params() {
		names[p.Name] = p.Tensor.Shape()
	}
	for n, sh := range map[string][]int{
		"embedder.embedder.convolution.weight":                         {16, 1, 3, 3},
		"embedder.embedder.normalization.running_var":                  {16},
		"encoder.stages.1.layers.0.shortcut.convolution.weight":        {32, 16, 1, 1},
		"encoder.stages.2.layers.0.layer.1.normalization.weight":       {64},
		"encoder.stages.2.layers.0.layer.0.convolution.weight":         {64, 32, 3, 3},
		"encoder.stages.1.layers.0.shortcut.normalization.bias":        {32},
		"encoder.stages.0.layers.0.layer.0.normalization.running_mean": {16},
	} {
		if got, ok := names[n]; !ok || len(got) != len(sh) || got[0] != sh[0] {
			t.Errorf("%s: shape %v, want %v", n, got, sh)
		}
	}
	if _, ok := names["encoder.stages.0.layers.0.shortcut.convolution.weight"]; ok {
		t.Error("stage 0's first block has a shortcut projection but keeps width and resolution")
	}
	x := tensor.FromHost(be, randImages(2, 1, 28, 28, 1), 2, 1, 28, 28)
	if sh := m.FeatureMap(x).Shape(); sh[2] != 7 || sh[3] != 7 || sh[1] != 64 {
		t.Errorf("feature map %v, want [2 64 7 7]", sh)
	}
	if sh := m.Features(x).Shape(); len(sh) != 2 || sh[0] != 2 || sh[1] != 64 {
		t.Errorf("features %v, want [2 64]", sh)
	}
}

// Save then Load gives the same features (BatchNorm's running statistics
// included), and the clone is independent of its original.
func TestSaveLoad(t *testing.T) {
	for _, norm := range []string{"batch", "group"} {
		be := cpu.New()
		m, err := New(be, tinyConfig(3, norm), 7)
		if err != nil {
			t.Fatal(err)
		}
		x := tensor.FromHost(be, randImages(4, 3, 16, 16, 2), 4, 3, 16, 16)
		tensor.NoGrad(func() { m.Features(x) }) // training mode: moves the running statistics
		m.SetTraining(false)
		var want []float32
		tensor.NoGrad(func() { want = m.Features(x).Host() })
		dir := t.TempDir()
		if err := m.Save(dir); err != nil {
			t.Fatal(err)
		}
		l, err := Load(be, dir)
		if err != nil {
			t.Fatal(err)
		}
		if l.Config.Seed != 7 {
			t.Errorf("%s: init_seed %d, want 7", norm, l.Config.Seed)
		}
		var got []float32
		tensor.NoGrad(func() { got = l.Features(x).Host() })
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: feature %d: loaded %v, saved %v", norm, i, got[i], want[i])
			}
		}
		c := m.Clone()
		c.Params()[0].Tensor.Set(make([]float32, c.Params()[0].Tensor.Len()))
		if m.Params()[0].Tensor.Host()[0] == 0 {
			t.Errorf("%s: changing the clone changed the original", norm)
		}
	}
}

func TestBadFolder(t *testing.T) {
	be := cpu.New()
	m, _ := New(be, tinyConfig(1, "batch"), 1)
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.json")
	orig, _ := os.ReadFile(cfg)
	for _, c := range []struct{ from, to, want string }{
		{`"norm": "batch"`, `"norm": "layer"`, `"norm" is "layer"`},
		{`"num_channels": 1`, `"num_channels": 0`, `"num_channels" is 0`},
		{`"model_type": "golem_resnet"`, `"model_type": "gpt2"`, `"model_type" is "gpt2"`},
		{`"num_channels": 1`, `"num_channels": 3`, `has shape [16 1 3 3], model wants [16 3 3 3]`},
		{`"norm": "batch"`, `"norm": "group"`, `unexpected tensor`},
		{`"norm": "batch"`, `"norm": "batch", "extra": 1`, `unknown field "extra"`},
	} {
		os.WriteFile(cfg, []byte(strings.Replace(string(orig), c.from, c.to, 1)), 0o644)
		_, err := Load(be, dir)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), dir) {
			t.Errorf("%s -> %s: error %v, want one naming %s and %q", c.from, c.to, err, dir, c.want)
		}
	}
}

// CellFeatures averages the last feature map over n x n cells: one cell
// is Features, and on a 4x4 map (16x16 images) 2x2 cells are the means of
// its 2x2 blocks, channel by channel.
func TestCellFeatures(t *testing.T) {
	be := cpu.New()
	m, err := New(be, tinyConfig(1, "batch"), 1)
	if err != nil {
		t.Fatal(err)
	}
	m.SetTraining(false)
	x := tensor.FromHost(be, randImages(2, 1, 16, 16, 2), 2, 1, 16, 16)
	var fm, global, one, four []float32
	tensor.NoGrad(func() {
		fm = m.FeatureMap(x).Host() // [2, 64, 4, 4]
		global = m.Features(x).Host()
		one = m.CellFeatures(x, 1).Host()
		f := m.CellFeatures(x, 2)
		if sh := f.Shape(); len(sh) != 2 || sh[0] != 2 || sh[1] != 64*4 {
			t.Fatalf("2x2 cell features %v, want [2 256]", sh)
		}
		four = f.Host()
	})
	for i := range global {
		if d := one[i] - global[i]; d > 1e-5 || d < -1e-5 {
			t.Fatalf("one cell, value %d: %v, Features %v", i, one[i], global[i])
		}
	}
	for b := range 2 {
		for c := range 64 {
			for cell := range 4 {
				r, q := cell/2, cell%2
				var want float32
				for y := 2 * r; y < 2*r+2; y++ {
					for xx := 2 * q; xx < 2*q+2; xx++ {
						want += fm[((b*64+c)*4+y)*4+xx] / 4
					}
				}
				if got := four[(b*64+c)*4+cell]; got-want > 1e-5 || want-got > 1e-5 {
					t.Fatalf("image %d channel %d cell %d: %v, want the block's mean %v", b, c, cell, got, want)
				}
			}
		}
	}
}
