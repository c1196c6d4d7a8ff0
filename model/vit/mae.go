package vit

import (
	"fmt"
	"math"
	"slices"

	"github.com/golem-ml/golem/tensor"
)

// ForwardMAE is ViTMAEForPreTraining's forward pass on images pixels
// [B, C, H, W]: each image keeps int(N*(1-maskRatio)) patches, those of
// smallest noise ([B*N] in [0, 1), transformers' noise argument; nil draws
// it from the model's generator), the encoder runs over them alone, the
// decoder predicts every patch's pixels, and the loss is the mean squared
// error over the hidden patches (targets normalised per patch with
// norm_pix_loss). It returns the loss (a scalar), the predictions
// [B, N, p*p*C] of every patch (transformers' logits: a patch's values
// ordered row, column, channel, as its patchify does) and the mask [B*N]
// (1 for a hidden patch, 0 for a visible one).
func (m *Model) ForwardMAE(pixels *tensor.Tensor, maskRatio float64, noise []float32) (loss, pred *tensor.Tensor, mask []float32) {
	c := &m.Config
	if m.Decoder == nil {
		panic("vit: ForwardMAE needs an MAE model (model_type vit_mae)")
	}
	if !(maskRatio >= 0 && maskRatio < 1) {
		panic(fmt.Sprintf("vit: mask ratio %g outside [0, 1)", maskRatio))
	}
	x := m.patchTokens(pixels)
	B, N, C := x.Dim(0), x.Dim(1), x.Dim(2)
	if noise == nil {
		noise = make([]float32, B*N)
		for i := range noise {
			noise[i] = m.rand.Float32()
		}
	}
	if len(noise) != B*N {
		panic(fmt.Sprintf("vit: noise of %d values for %d images of %d patches", len(noise), B, N))
	}
	keep := int(float64(N) * (1 - maskRatio))
	// rank[b*N+n] is patch n's place in image b's order by noise: the
	// first keep are visible.
	rank := make([]int, B*N)
	visible := make([]int32, 0, B*keep) // rows of x [B*N, C] the encoder sees, in order
	hidden := make([]int32, 0, B*(N-keep))
	mask = make([]float32, B*N)
	order := make([]int, N)
	for b := range B {
		for n := range order {
			order[n] = n
		}
		nb := noise[b*N : (b+1)*N]
		slices.SortStableFunc(order, func(i, j int) int {
			switch {
			case nb[i] < nb[j]:
				return -1
			case nb[i] > nb[j]:
				return 1
			}
			return 0
		})
		for r, n := range order {
			rank[b*N+n] = r
			if r < keep {
				visible = append(visible, int32(b*N+n))
			}
		}
		for n := range N {
			if rank[b*N+n] >= keep {
				mask[b*N+n] = 1
				hidden = append(hidden, int32(b*N+n))
			}
		}
	}
	x = tensor.Reshape(tensor.Embedding(tensor.Reshape(x, B*N, C), visible), B, keep, C)
	h := m.Norm.Forward(m.encode(x)) // [B, 1+keep, C]

	// The decoder: every patch's token in place (its encoding if visible,
	// the mask token if hidden), the class token first.
	d := m.Decoder
	D := c.DecoderHidden
	z := d.Embed.Forward(h)
	table := tensor.Concat(0, tensor.Reshape(tensor.Slice(z, 1, 1, 1+keep), B*keep, D), tensor.Reshape(d.MaskToken, 1, D))
	rows := make([]int32, B*N)
	for b := range B {
		for n := range N {
			if r := rank[b*N+n]; r < keep {
				rows[b*N+n] = int32(b*keep + r)
			} else {
				rows[b*N+n] = int32(B * keep)
			}
		}
	}
	full := tensor.Reshape(tensor.Embedding(table, rows), B, N, D)
	y := tensor.Add(tensor.Concat(1, tensor.Slice(z, 1, 0, 1), full), d.Pos)
	y = d.Norm.Forward(Encode(y, Blocks(d.Layers), c.DecoderHeads, false))
	pred = tensor.Slice(d.Pred.Forward(y), 1, 1, 1+N) // [B, N, P]

	P := c.PatchDim()
	target := m.targets(pixels, hidden)
	if len(hidden) == 0 {
		loss = tensor.Scalar(pixels.Backend(), 0)
	} else {
		got := tensor.Embedding(tensor.Reshape(pred, B*N, P), hidden)
		loss = tensor.Mean(tensor.Square(tensor.Sub(got, tensor.FromHost(pixels.Backend(), target, len(hidden), P))))
	}
	return loss, pred, mask
}

// targets returns the values of the patches rows (indices into the
// images' B*N patches) in transformers' patchify order (row, column,
// channel), each normalised to mean 0 and unbiased variance 1 (plus
// 1e-6) with norm_pix_loss.
func (m *Model) targets(pixels *tensor.Tensor, rows []int32) []float32 {
	c := &m.Config
	px := pixels.Host()
	p, g, C, S := c.Patch, c.Image/c.Patch, c.Channels, c.Image
	N, P := g*g, c.PatchDim()
	out := make([]float32, len(rows)*P)
	for i, row := range rows {
		b, n := int(row)/N, int(row)%N
		gy, gx := n/g, n%g
		t := out[i*P : (i+1)*P]
		for y := range p {
			for x := range p {
				for ch := range C {
					t[(y*p+x)*C+ch] = px[((b*C+ch)*S+gy*p+y)*S+gx*p+x]
				}
			}
		}
		if c.NormPixLoss {
			var mean float64
			for _, v := range t {
				mean += float64(v)
			}
			mean /= float64(P)
			var ss float64
			for _, v := range t {
				ss += (float64(v) - mean) * (float64(v) - mean)
			}
			std := math.Sqrt(ss/float64(max(P-1, 1)) + 1e-6)
			for j, v := range t {
				t[j] = float32((float64(v) - mean) / std)
			}
		}
	}
	return out
}
