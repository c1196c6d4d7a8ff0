package ssl

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/tensor"
)

// Features returns enc's features, in evaluation mode, of the first limit
// images of ds (all when limit <= 0): n rows of d values, and the images'
// labels. With grid 1 (or 0) a row is the encoder's own features
// (enc.Dim()); with grid n > 1 it is the last feature map averaged over
// n x n cells (d = enc.Dim()*n*n), which only a convolutional encoder has
// (model/resnet's CellFeatures). An encoder of one input channel
// (colorize's) gets colour images as gray; any other channel mismatch is
// an error.
func Features(ctx context.Context, enc Encoder, ds vision.Dataset, spec string, limit, batch, grid int) ([]float32, int, []int, error) {
	var tr []vision.Transform
	first, err := ds.Load(0)
	if err != nil {
		return nil, 0, nil, err
	}
	switch c := enc.InputChannels(); {
	case c == first.C:
	case c == 1:
		tr = append(tr, grayTransform{})
	default:
		return nil, 0, nil, fmt.Errorf("ssl: %s has %d-channel images, the encoder takes %d", spec, first.C, c)
	}
	grid = max(grid, 1)
	features, d := enc.Features, enc.Dim()
	if grid > 1 {
		ce, ok := enc.(interface {
			CellFeatures(x *tensor.Tensor, n int) *tensor.Tensor
		})
		if !ok {
			return nil, 0, nil, fmt.Errorf("ssl: features pooled over %dx%d cells need a convolutional encoder (a ResNet); this one is %s", grid, grid, describe(enc))
		}
		features = func(x *tensor.Tensor) *tensor.Tensor { return ce.CellFeatures(x, grid) }
		d *= grid * grid
	}
	enc.SetTraining(false)
	be := enc.Params()[0].Tensor.Backend()
	var feats []float32
	labels, err := eachBatch(ctx, ds, spec, limit, batch, tr, func(b *vision.Batch) {
		tensor.NoGrad(func() {
			s := tensor.NewScope()
			defer s.Close()
			f := features(s.FromHost(be, b.X, b.N, b.C, b.H, b.W))
			off := len(feats)
			feats = append(feats, make([]float32, f.Len())...)
			f.HostInto(feats[off:])
		})
	})
	return feats, d, labels, err
}

// Pixels returns the raw pixels of the first limit images of ds (all when
// limit <= 0), one row each, and their labels: the raw-pixel baseline.
func Pixels(ctx context.Context, ds vision.Dataset, spec string, limit int) ([]float32, int, []int, error) {
	var x []float32
	d := 0
	labels, err := eachBatch(ctx, ds, spec, limit, 512, nil, func(b *vision.Batch) {
		x = append(x, b.X...)
		d = b.C * b.H * b.W
	})
	return x, d, labels, err
}

// eachBatch loads the first limit images of ds in order, in batches, on
// all cores, and returns their labels; every image needs one.
func eachBatch(ctx context.Context, ds vision.Dataset, spec string, limit, batch int, tr []vision.Transform, fn func(*vision.Batch)) ([]int, error) {
	if limit <= 0 || limit > ds.Len() {
		limit = ds.Len()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var labels []int
	l := vision.NewLoader(firstN{ds, limit}, vision.LoaderConfig{BatchSize: max(batch, 1), Transforms: tr})
	ch, wait := l.Epoch(ctx, 0)
	for b := range ch {
		for k, y := range b.Labels {
			if y < 0 {
				cancel()
				for range ch {
				}
				wait()
				return nil, fmt.Errorf("ssl: %s: %s has no label (a probe needs labelled images)", spec, ds.Name(b.Samples[k]))
			}
		}
		labels = append(labels, b.Labels...)
		fn(b)
	}
	return labels, wait()
}

// firstN is the first n images of a data set.
type firstN struct {
	vision.Dataset
	n int
}

func (f firstN) Len() int { return f.n }

// grayTransform turns an image into its one-channel luma.
type grayTransform struct{}

func (grayTransform) Apply(m *vision.Image, _ *rand.Rand) (*vision.Image, error) {
	return vision.Gray(m), nil
}
