package resnet

import (
	"fmt"
	"math"
	"slices"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/model/weights"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// GridModelType is config.json's model_type of a Grid.
const GridModelType = "golem_resnet_grid"

// Head is one attribute a Grid classifies in every cell, with its
// classes' names.
type Head struct {
	Name    string   `json:"name"`
	Classes []string `json:"classes"`
}

// GridConfig is a Grid's config.json: the ResNet backbone's config, the
// grid's side and the heads.
type GridConfig struct {
	ModelType string `json:"model_type"`
	Backbone  Config `json:"backbone"`
	Grid      int    `json:"grid"`       // cells a side: the image is cut into Grid x Grid equal cells
	ImageSize int    `json:"image_size"` // the square side images are fit to before the backbone
	Heads     []Head `json:"heads"`
}

// Validate checks the config, naming the config.json field at fault.
func (c *GridConfig) Validate() error {
	if c.ModelType != GridModelType {
		return fmt.Errorf("\"model_type\" is %q, want %q", c.ModelType, GridModelType)
	}
	if err := c.Backbone.Validate(); err != nil {
		return fmt.Errorf("\"backbone\": %w", err)
	}
	if c.Grid < 1 || c.Grid > 16 {
		return fmt.Errorf("\"grid\" is %d, want 1 to 16", c.Grid)
	}
	if c.ImageSize < c.Grid || c.ImageSize > 1024 {
		return fmt.Errorf("\"image_size\" is %d, want %d to 1024", c.ImageSize, c.Grid)
	}
	if len(c.Heads) == 0 || len(c.Heads) > 16 {
		return fmt.Errorf("\"heads\" has %d heads, want 1 to 16", len(c.Heads))
	}
	for i, h := range c.Heads {
		if h.Name == "" || len(h.Classes) < 2 || len(h.Classes) > 1024 {
			return fmt.Errorf("\"heads\"[%d] (%q): want a name and 2 to 1024 classes, have %d", i, h.Name, len(h.Classes))
		}
		if slices.ContainsFunc(c.Heads[:i], func(o Head) bool { return o.Name == h.Name }) {
			return fmt.Errorf("\"heads\"[%d]: name %q given twice", i, h.Name)
		}
	}
	return nil
}

// Grid is a ResNet that classifies every cell of a Grid x Grid grid over
// the image: each cell's features are the backbone's last feature map
// averaged over the cell's area (a map position's weight is the share of
// the cell it covers), and one linear layer per head, shared by all
// cells, maps them to the head's classes. Sharing the heads over the
// cells makes what a cell holds independent of where it is.
type Grid struct {
	Config   GridConfig   `nn:"-"`
	Backbone *Model       `nn:"resnet"`
	Heads    []*nn.Linear `nn:"classifier"`
	be       backend.Backend
}

// NewGrid returns a Grid initialised from seed (the heads normal with std
// 1/sqrt(width), biases zero).
func NewGrid(be backend.Backend, c GridConfig, seed uint64) (*Grid, error) {
	c.ModelType = GridModelType
	c.Backbone.ModelType = ModelType
	c.Backbone.Seed = seed
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("resnet grid: %w", err)
	}
	return buildGrid(be, c, nn.NewInit(be, seed)), nil
}

func buildGrid(be backend.Backend, c GridConfig, in *nn.Init) *Grid {
	g := &Grid{Config: c, be: be, Backbone: build(be, c.Backbone, in)}
	d := g.Backbone.Dim()
	for _, h := range c.Heads {
		g.Heads = append(g.Heads, nn.NewLinear(in, d, len(h.Classes), true, 1/math.Sqrt(float64(d))))
	}
	return g
}

// Params returns the parameters (and BatchNorm's running statistics)
// under their checkpoint names.
func (g *Grid) Params() []nn.Named { return nn.Params(g) }

// SetTraining switches the backbone's BatchNorm (see Model.SetTraining).
func (g *Grid) SetTraining(on bool) { g.Backbone.SetTraining(on) }

// Backend is the backend the model's parameters live on.
func (g *Grid) Backend() backend.Backend { return g.be }

// Cells is the number of cells, Grid x Grid, row-major.
func (g *Grid) Cells() int { return g.Config.Grid * g.Config.Grid }

// CellPool returns the [h*w, n*n] matrix that averages an h x w feature
// map over each of n x n equal cells: entry (p, c) is the share of cell
// c's area that map position p covers, so each column sums to 1.
func CellPool(h, w, n int) []float32 {
	// overlap of [a0, a1) and [b0, b1)
	ov := func(a0, a1, b0, b1 float64) float64 { return max(0, min(a1, b1)-max(a0, b0)) }
	m := make([]float32, h*w*n*n)
	for y := range h {
		for x := range w {
			for r := range n {
				for c := range n {
					fy := ov(float64(y)/float64(h), float64(y+1)/float64(h), float64(r)/float64(n), float64(r+1)/float64(n))
					fx := ov(float64(x)/float64(w), float64(x+1)/float64(w), float64(c)/float64(n), float64(c+1)/float64(n))
					m[(y*w+x)*n*n+r*n+c] = float32(fy * fx * float64(n*n))
				}
			}
		}
	}
	return m
}

// Forward returns each head's logits for images x [B, C, S, S] (S the
// config's image_size; any size runs): [B*cells, classes], the rows cell
// by cell of each image in turn.
func (g *Grid) Forward(x *tensor.Tensor) []*tensor.Tensor {
	n := g.Config.Grid
	c := cells(g.Backbone.FeatureMap(x), n, g.be) // [B, D, n*n]
	B, D := c.Dim(0), c.Dim(1)
	feats := tensor.Reshape(tensor.Transpose(c, 1, 2), B*n*n, D)
	out := make([]*tensor.Tensor, len(g.Heads))
	for i, l := range g.Heads {
		out[i] = l.Forward(feats)
	}
	return out
}

// Save writes config.json and model.safetensors into dir.
func (g *Grid) Save(dir string) error { return weights.SaveFolder(dir, g.Config, g.Params()) }

// LoadGrid reads a Grid folder written by Save: config.json checked
// strictly, every tensor there with its shape and none more, nothing NaN
// or infinite. BatchNorm is left in evaluation mode.
func LoadGrid(be backend.Backend, dir string) (*Grid, error) {
	var c GridConfig
	if err := weights.ReadConfig(dir, &c, func() error { return c.Validate() }); err != nil {
		return nil, fmt.Errorf("resnet grid: %w", err)
	}
	in := nn.NewInit(be, 0)
	in.Zero = true
	g := buildGrid(be, c, in)
	if err := weights.FillFolder(dir, g.Params()); err != nil {
		return nil, fmt.Errorf("resnet grid: %w", err)
	}
	g.SetTraining(false)
	return g, nil
}

// Predict returns each cell's most likely class of every head for images
// x [B, C, S, S], without gradients: [B*cells][heads], the cells of each
// image in turn, row-major. BatchNorm runs as the model is set
// (SetTraining).
func (g *Grid) Predict(x *tensor.Tensor) [][]int32 {
	var out [][]int32
	tensor.NoGrad(func() {
		logits := g.Forward(x)
		out = make([][]int32, logits[0].Dim(0))
		for i := range out {
			out[i] = make([]int32, len(logits))
		}
		for h, l := range logits {
			for i, c := range Argmax(l.Host(), l.Dim(1)) {
				out[i][h] = c
			}
		}
	})
	return out
}

// Argmax returns the index of the largest entry of each row of v, rows of
// k values (the first, on ties).
func Argmax(v []float32, k int) []int32 {
	out := make([]int32, len(v)/k)
	for i := range out {
		row := v[i*k : (i+1)*k]
		best := 0
		for j, x := range row {
			if x > row[best] {
				best = j
			}
		}
		out[i] = int32(best)
	}
	return out
}
