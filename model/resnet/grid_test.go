package resnet

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/tensor"
)

func gridConfig() GridConfig {
	return GridConfig{Backbone: tinyConfig(3, "batch"), Grid: 3, ImageSize: 32,
		Heads: []Head{{"occupied", []string{"no", "yes"}}, {"colour", []string{"red", "green", "blue"}}}}
}

// CellPool averages each cell's area: on a map the grid divides (6x6 in
// 3x3) a cell is its 4 positions at 1/4 each; on one it does not (8x8)
// border positions are shared by the cells they straddle, and every
// column still sums to 1.
func TestCellPool(t *testing.T) {
	m := CellPool(6, 6, 3)
	for c := range 9 {
		r, col := c/3, c%3
		for y := range 6 {
			for x := range 6 {
				want := float32(0)
				if y/2 == r && x/2 == col {
					want = 0.25
				}
				if got := m[(y*6+x)*9+c]; math.Abs(float64(got-want)) > 1e-6 {
					t.Fatalf("6x6 cell %d position (%d,%d): %v, want %v", c, y, x, got, want)
				}
			}
		}
	}
	m = CellPool(8, 8, 3)
	for c := range 9 {
		var sum float64
		for p := range 64 {
			sum += float64(m[p*9+c])
		}
		if math.Abs(sum-1) > 1e-5 {
			t.Errorf("8x8 cell %d: weights sum to %v, want 1", c, sum)
		}
	}
	// position (2,2) of 8 covers [0.25, 0.375) on each axis, of which
	// [0.25, 1/3) is cell 0's: its weight there is (1/12)^2 / (1/3)^2.
	if w, want := m[(2*8+2)*9+0], 1.0/16; math.Abs(float64(w)-want) > 1e-6 {
		t.Errorf("8x8 position (2,2) in cell 0: %v, want %v", w, want)
	}
}

// Forward gives every head's logits for each cell of each image, and Save
// then LoadGrid gives the same logits.
func TestGridForwardSaveLoad(t *testing.T) {
	be := cpu.New()
	g, err := NewGrid(be, gridConfig(), 3)
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.FromHost(be, randImages(2, 3, 32, 32, 5), 2, 3, 32, 32)
	tensor.NoGrad(func() { g.Forward(x) }) // moves BatchNorm's running statistics
	g.SetTraining(false)
	var want [][]float32
	tensor.NoGrad(func() {
		for i, l := range g.Forward(x) {
			if sh := l.Shape(); sh[0] != 18 || sh[1] != len(g.Config.Heads[i].Classes) {
				t.Errorf("head %d: logits %v, want [18 %d]", i, sh, len(g.Config.Heads[i].Classes))
			}
			want = append(want, l.Host())
		}
	})
	dir := t.TempDir()
	if err := g.Save(dir); err != nil {
		t.Fatal(err)
	}
	l, err := LoadGrid(be, dir)
	if err != nil {
		t.Fatal(err)
	}
	tensor.NoGrad(func() {
		for i, got := range l.Forward(x) {
			for j, v := range got.Host() {
				if v != want[i][j] {
					t.Fatalf("head %d logit %d: loaded %v, saved %v", i, j, v, want[i][j])
				}
			}
		}
	})
	names := map[string]bool{}
	for _, p := range l.Params() {
		names[p.Name] = true
	}
	for _, n := range []string{"resnet.embedder.embedder.convolution.weight", "classifier.1.weight", "classifier.0.bias"} {
		if !names[n] {
			t.Errorf("no parameter %s", n)
		}
	}
}

// A cell's logits see that cell: an object drawn in one cell changes that
// cell's logits more than a far cell's.
func TestGridCellsAreLocal(t *testing.T) {
	be := cpu.New()
	g, err := NewGrid(be, gridConfig(), 4)
	if err != nil {
		t.Fatal(err)
	}
	g.SetTraining(false)
	blank := make([]float32, 3*36*36)
	dot := append([]float32(nil), blank...)
	for c := range 3 {
		for y := 2; y < 10; y++ {
			for x := 2; x < 10; x++ {
				dot[c*36*36+y*36+x] = 1 // inside cell 0 (top left)
			}
		}
	}
	var a, b []float32
	tensor.NoGrad(func() {
		a = g.Forward(tensor.FromHost(be, blank, 1, 3, 36, 36))[0].Host()
		b = g.Forward(tensor.FromHost(be, dot, 1, 3, 36, 36))[0].Host()
	})
	diff := func(cell int) float64 {
		return math.Abs(float64(a[cell*2]-b[cell*2])) + math.Abs(float64(a[cell*2+1]-b[cell*2+1]))
	}
	if diff(0) == 0 || diff(8) >= diff(0) {
		t.Errorf("a square in cell 0 changed cell 0's logits by %v and cell 8's by %v", diff(0), diff(8))
	}
}

func TestGridBadFolder(t *testing.T) {
	be := cpu.New()
	g, _ := NewGrid(be, gridConfig(), 1)
	dir := t.TempDir()
	if err := g.Save(dir); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.json")
	orig, _ := os.ReadFile(cfg)
	for _, c := range []struct{ from, to, want string }{
		{`"grid": 3`, `"grid": 0`, `"grid" is 0`},
		{`"model_type": "golem_resnet_grid"`, `"model_type": "golem_resnet"`, `"model_type" is "golem_resnet"`},
		{`"norm": "batch"`, `"norm": "layer"`, `"backbone": "norm" is "layer"`},
		{`"name": "colour"`, `"name": "occupied"`, `name "occupied" given twice`},
		{`"blue"`, `"blue", "white"`, `"classifier.1.weight" has shape [3 64], model wants [4 64]`},
	} {
		os.WriteFile(cfg, []byte(strings.Replace(string(orig), c.from, c.to, 1)), 0o644)
		_, err := LoadGrid(be, dir)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), dir) {
			t.Errorf("%s -> %s: error %v, want one naming %s and %q", c.from, c.to, err, dir, c.want)
		}
	}
}
