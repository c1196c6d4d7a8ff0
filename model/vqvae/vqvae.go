// Package vqvae is a VQ-VAE image tokenizer (van den Oord et al., 2017):
// a convolutional encoder (4x4 stride-2 convolutions, residual blocks, a
// 1x1 projection to the code width), a vector quantizer (a K x D codebook;
// each encoder vector replaced by its nearest code under L2, the
// straight-through estimator carrying the decoder's gradient back to the
// encoder, the commitment loss beta*||z - sg(e)||^2) and a mirrored
// decoder (a 3x3 convolution, residual blocks, 4x4 stride-2 transposed
// convolutions). An image of S x S pixels becomes a grid of
// S/2^downsamples squared code ids (its tokens) and back.
//
// The codebook is learned one of two ways: with Decay > 0 by exponential
// moving averages of the vectors each code is assigned, Laplace-smoothed
// counts (the paper's appendix and Sonnet's VectorQuantizerEMA, without
// Sonnet's zero-debiasing: the averages start at count 1 and the code
// itself), or with Decay == 0 by gradient descent on the codebook loss
// ||sg(z) - e||^2 (the PyTorch peer's vqvae-32 bench model). Codes no
// input picked for DeadAfter steps are restarted from random encoder
// outputs of the batch.
//
// A model folder is config.json and model.safetensors; the codebook, the
// EMA state (ema_count, ema_sum) and each code's steps since last use are
// saved with the weights, so a resumed run goes on exactly.
package vqvae

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/model/weights"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// ModelType is config.json's model_type for this architecture.
const ModelType = "golem_vqvae"

// Config is a VQ-VAE's config.json.
type Config struct {
	ModelType   string  `json:"model_type"`
	Channels    int     `json:"num_channels"`         // image channels (1 gray, 3 RGB)
	ImageSize   int     `json:"image_size"`           // the square image side it trains at (any multiple of 2^num_downsamples runs)
	Hidden      int     `json:"hidden_size"`          // the convolutions' width
	ResHidden   int     `json:"residual_hidden_size"` // a residual block's inner width
	ResBlocks   int     `json:"num_residual_blocks"`  // residual blocks in the encoder and in the decoder
	Downsamples int     `json:"num_downsamples"`      // 4x4 stride-2 convolutions: the grid is image_size / 2^this
	CodeDim     int     `json:"embedding_dim"`        // D, a code's width
	Codes       int     `json:"num_embeddings"`       // K, the codebook's size
	Beta        float64 `json:"commitment_cost"`      // the commitment loss's weight
	Decay       float64 `json:"decay"`                // EMA decay of the codebook; 0 learns it by its loss
	Epsilon     float64 `json:"epsilon"`              // Laplace smoothing of the EMA counts
	DeadAfter   int     `json:"dead_code_steps"`      // restart codes unused this many steps; 0 never
	Seed        uint64  `json:"init_seed"`            // the seed of its initialisation
}

// Presets returns the named configs: "vqvae-32" (the PyTorch peer's
// vqvae-32: 32x32 RGB, width 128, two residual blocks of inner width 64,
// two downsamplings to an 8x8 grid, a 512 x 64 codebook, beta 0.25; here
// with EMA codebook updates, decay 0.99, and restarts after 100 unused
// steps; 0.98M parameters) and "tiny" (width 32, one residual block, a
// 64 x 16 codebook: 0.05M parameters, for tests and quick runs).
func Presets() map[string]Config {
	base := Config{ModelType: ModelType, Channels: 3, ImageSize: 32, Downsamples: 2, Beta: 0.25, Decay: 0.99, Epsilon: 1e-5, DeadAfter: 100}
	big, tiny := base, base
	big.Hidden, big.ResHidden, big.ResBlocks, big.CodeDim, big.Codes = 128, 64, 2, 64, 512
	tiny.Hidden, tiny.ResHidden, tiny.ResBlocks, tiny.CodeDim, tiny.Codes = 32, 16, 1, 16, 64
	tiny.DeadAfter = 20
	return map[string]Config{"vqvae-32": big, "tiny": tiny}
}

// PresetNames lists Presets' names, sorted.
func PresetNames() []string {
	var n []string
	for k := range Presets() {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Validate checks the config, naming the config.json field at fault.
func (c *Config) Validate() error {
	if c.ModelType != ModelType {
		return fmt.Errorf("\"model_type\" is %q, want %q", c.ModelType, ModelType)
	}
	for _, f := range []struct {
		name   string
		v, max int
	}{{"num_channels", c.Channels, 4}, {"hidden_size", c.Hidden, 4096}, {"residual_hidden_size", c.ResHidden, 4096},
		{"num_downsamples", c.Downsamples, 6}, {"embedding_dim", c.CodeDim, 4096}, {"num_embeddings", c.Codes, 1 << 20}} {
		if f.v < 1 || f.v > f.max {
			return fmt.Errorf("%q is %d, want 1 to %d", f.name, f.v, f.max)
		}
	}
	if c.ResBlocks < 0 || c.ResBlocks > 64 {
		return fmt.Errorf("\"num_residual_blocks\" is %d, want 0 to 64", c.ResBlocks)
	}
	if c.ImageSize < 1 || c.ImageSize%(1<<c.Downsamples) != 0 || c.ImageSize > 4096 {
		return fmt.Errorf("\"image_size\" is %d, want a multiple of 2^num_downsamples = %d, up to 4096", c.ImageSize, 1<<c.Downsamples)
	}
	if !(c.Beta >= 0 && c.Beta <= 100) {
		return fmt.Errorf("\"commitment_cost\" is %v, want 0 to 100", c.Beta)
	}
	if !(c.Decay >= 0 && c.Decay < 1) {
		return fmt.Errorf("\"decay\" is %v, want 0 (codebook loss) or in (0, 1) (EMA)", c.Decay)
	}
	if !(c.Epsilon > 0 && c.Epsilon < 1) && c.Decay > 0 {
		return fmt.Errorf("\"epsilon\" is %v, want in (0, 1)", c.Epsilon)
	}
	if c.DeadAfter < 0 {
		return fmt.Errorf("\"dead_code_steps\" is %d, want 0 (never) or more", c.DeadAfter)
	}
	return nil
}

// Grid is the side of the token grid of a size x size image.
func (c *Config) Grid(size int) int { return size >> c.Downsamples }

// Res is a residual block: x + conv1x1(relu(conv3x3(relu(x)))).
type Res struct {
	Conv1 *nn.Conv2d `nn:"conv1"`
	Conv2 *nn.Conv2d `nn:"conv2"`
}

func newRes(in *nn.Init, c, h int) *Res {
	return &Res{Conv1: nn.NewConv2d(in, c, h, 3, 3, true, pad(1, 1)), Conv2: nn.NewConv2d(in, h, c, 1, 1, true, pad(1, 0))}
}

// Forward applies the block.
func (r *Res) Forward(x *tensor.Tensor) *tensor.Tensor {
	return tensor.Add(x, r.Conv2.Forward(tensor.ReLU(r.Conv1.Forward(tensor.ReLU(x)))))
}

func pad(stride, p int) tensor.ConvOptions {
	return tensor.ConvOptions{Stride: [2]int{stride, stride}, Padding: [2]int{p, p}}
}

// Encoder maps images [B, C, S, S] to vectors [B, D, S/2^n, S/2^n].
type Encoder struct {
	Down []*nn.Conv2d `nn:"down"`
	Res  []*Res       `nn:"res"`
	Proj *nn.Conv2d   `nn:"proj"`
}

// Forward encodes x: downsampling convolutions with ReLU between them,
// the residual blocks, the projection.
func (e *Encoder) Forward(x *tensor.Tensor) *tensor.Tensor {
	for i, d := range e.Down {
		x = d.Forward(x)
		if i < len(e.Down)-1 {
			x = tensor.ReLU(x)
		}
	}
	for _, r := range e.Res {
		x = r.Forward(x)
	}
	return e.Proj.Forward(x)
}

// Decoder maps quantized vectors [B, D, h, w] back to images.
type Decoder struct {
	Proj *nn.Conv2d            `nn:"proj"`
	Res  []*Res                `nn:"res"`
	Up   []*nn.ConvTranspose2d `nn:"up"`
}

// Forward decodes q: the 3x3 projection, the residual blocks, ReLU, then
// upsampling transposed convolutions with ReLU between them.
func (d *Decoder) Forward(q *tensor.Tensor) *tensor.Tensor {
	x := d.Proj.Forward(q)
	for _, r := range d.Res {
		x = r.Forward(x)
	}
	for _, u := range d.Up {
		x = u.Forward(tensor.ReLU(x))
	}
	return x
}

// Quantizer is the codebook and its training state.
type Quantizer struct {
	Codebook *tensor.Tensor `nn:"embedding"`    // [K, D]
	Count    *tensor.Tensor `nn:"ema_count"`    // [K] the EMA of each code's assignments (Decay > 0)
	Sum      *tensor.Tensor `nn:"ema_sum"`      // [K, D] the EMA of their sum (Decay > 0)
	Unused   *tensor.Tensor `nn:"unused_steps"` // [K] steps since each code was last picked
	cfg      *Config
	dist     []float32 // the GEMM's host copy, reused
}

// Model is the VQ-VAE.
type Model struct {
	Config    Config     `nn:"-"`
	Encoder   *Encoder   `nn:"encoder"`
	Quantizer *Quantizer `nn:"quantizer"`
	Decoder   *Decoder   `nn:"decoder"`
	be        backend.Backend
}

// New returns a VQ-VAE initialised from seed: convolutions as PyTorch's
// default, the codebook N(0, 0.1^2) as the peer's.
func New(be backend.Backend, c Config, seed uint64) (*Model, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("vqvae: %w", err)
	}
	c.Seed = seed
	return build(be, c, nn.NewInit(be, seed)), nil
}

func build(be backend.Backend, c Config, in *nn.Init) *Model {
	m := &Model{Config: c, be: be, Encoder: &Encoder{}, Decoder: &Decoder{}}
	prev := c.Channels
	for range c.Downsamples {
		m.Encoder.Down = append(m.Encoder.Down, nn.NewConv2d(in, prev, c.Hidden, 4, 4, true, pad(2, 1)))
		prev = c.Hidden
	}
	for range c.ResBlocks {
		m.Encoder.Res = append(m.Encoder.Res, newRes(in, c.Hidden, c.ResHidden))
	}
	m.Encoder.Proj = nn.NewConv2d(in, c.Hidden, c.CodeDim, 1, 1, true, pad(1, 0))
	q := &Quantizer{Codebook: in.Normal(0.1, c.Codes, c.CodeDim), Unused: tensor.New(be, c.Codes)}
	if c.Decay > 0 {
		q.Codebook.SetRequiresGrad(false)
		q.Count = in.Const(1, c.Codes).SetRequiresGrad(false)
		q.Sum = q.Codebook.Clone()
	}
	m.Quantizer = q
	m.Quantizer.cfg = &m.Config
	m.Decoder.Proj = nn.NewConv2d(in, c.CodeDim, c.Hidden, 3, 3, true, pad(1, 1))
	for range c.ResBlocks {
		m.Decoder.Res = append(m.Decoder.Res, newRes(in, c.Hidden, c.ResHidden))
	}
	for i := range c.Downsamples {
		out := c.Hidden
		if i == c.Downsamples-1 {
			out = c.Channels
		}
		m.Decoder.Up = append(m.Decoder.Up, nn.NewConvTranspose2d(in, c.Hidden, out, 4, 4, true, pad(2, 1)))
	}
	return m
}

// Params returns the parameters and the quantizer's state (which does not
// require gradients under EMA) under their checkpoint names.
func (m *Model) Params() []nn.Named { return nn.Params(m) }

// Output is one forward pass.
type Output struct {
	Recon  *tensor.Tensor // [B, C, S, S]
	Loss   *tensor.Tensor // reconstruction MSE + beta * commitment (+ the codebook loss without EMA)
	MSE    *tensor.Tensor // the reconstruction's mean squared error
	Commit *tensor.Tensor // mean ||z - sg(e)||^2 per value
	Z      *tensor.Tensor // the encoder's vectors, [B*h*w, D], rows in grid order
	Codes  []int32        // each vector's code, B x h x w
	Grid   [2]int         // h, w
}

// Encode returns the encoder's vectors of x [B, C, S, S] as rows [B*h*w,
// D] (image by image, row by row) and the grid's h and w.
func (m *Model) Encode(x *tensor.Tensor) (*tensor.Tensor, int, int) {
	c := m.Config
	if len(x.Shape()) != 4 || x.Dim(1) != c.Channels {
		panic(fmt.Sprintf("vqvae: input of shape %v, want [B, %d, H, W]", x.Shape(), c.Channels))
	}
	z := m.Encoder.Forward(x)
	B, h, w := z.Dim(0), z.Dim(2), z.Dim(3)
	return tensor.Reshape(tensor.Permute(z, 0, 2, 3, 1), B*h*w, c.CodeDim), h, w
}

// Decode maps quantized rows [B*h*w, D] back to images [B, C, S, S].
func (m *Model) Decode(q *tensor.Tensor, B, h, w int) *tensor.Tensor {
	return m.Decoder.Forward(tensor.Permute(tensor.Reshape(q, B, h, w, m.Config.CodeDim), 0, 3, 1, 2))
}

// Forward runs images x [B, C, S, S] through the encoder, the quantizer
// (straight-through) and the decoder, with the losses against x. It does
// not update the codebook: a training step calls Quantizer.Update.
func (m *Model) Forward(x *tensor.Tensor) Output {
	z, h, w := m.Encode(x)
	st, commit, cb, codes := m.Quantizer.Quantize(z)
	recon := m.Decode(st, x.Dim(0), h, w)
	rec := mse(recon, x)
	loss := tensor.Add(rec, tensor.Scale(commit, float32(m.Config.Beta)))
	if cb != nil {
		loss = tensor.Add(loss, cb)
	}
	return Output{Recon: recon, Loss: loss, MSE: rec, Commit: commit, Z: z, Codes: codes, Grid: [2]int{h, w}}
}

// Quantize replaces each row of z [N, D] by its nearest code: st (the
// codes' vectors forward, z's gradient unchanged backward: z + sg(e - z)),
// the commitment loss mean((z - sg(e))^2), the codebook loss
// mean((sg(z) - e)^2) when the codebook learns by gradient (Decay == 0;
// nil under EMA) and the codes.
func (q *Quantizer) Quantize(z *tensor.Tensor) (st, commit, codebook *tensor.Tensor, codes []int32) {
	codes = q.Nearest(z)
	e := tensor.Embedding(q.Codebook, codes)
	commit = mse(z, e.Detach())
	st = tensor.Add(z, tensor.Sub(e, z).Detach())
	if q.cfg.Decay == 0 {
		codebook = mse(e, z.Detach())
	}
	return st, commit, codebook, codes
}

func mse(a, b *tensor.Tensor) *tensor.Tensor { return tensor.Mean(tensor.Square(tensor.Sub(a, b))) }

// Tokens returns the code grid of images x [B, C, S, S]: B x h x w ids.
// x belongs to the caller's scope, which the encoder's tensors join.
func (m *Model) Tokens(x *tensor.Tensor) ([]int32, int, int) {
	var codes []int32
	var h, w int
	tensor.NoGrad(func() {
		var z *tensor.Tensor
		z, h, w = m.Encode(x)
		codes = m.Quantizer.Nearest(z)
	})
	return codes, h, w
}

// FromTokens decodes B grids of h x w code ids into images [B, C, S, S];
// an id outside the codebook is an error naming its position.
func (m *Model) FromTokens(s *tensor.Scope, ids []int32, B, h, w int) (*tensor.Tensor, error) {
	if most := m.Config.Grid(4096); h < 1 || w < 1 || h > most || w > most {
		return nil, fmt.Errorf("vqvae: a %dx%d token grid, want 1 to %d a side (4096 pixels)", h, w, most)
	}
	if len(ids) != B*h*w {
		return nil, fmt.Errorf("vqvae: %d ids for %d grids of %dx%d", len(ids), B, h, w)
	}
	for i, id := range ids {
		if id < 0 || int(id) >= m.Config.Codes {
			return nil, fmt.Errorf("vqvae: token %d (row %d, column %d) is %d, want 0 to %d", i, i/w%h, i%w, id, m.Config.Codes-1)
		}
	}
	var out *tensor.Tensor
	tensor.NoGrad(func() {
		q := s.Adopt(tensor.Embedding(m.Quantizer.Codebook, ids))
		out = m.Decode(q, B, h, w)
	})
	return out, nil
}

// Nearest returns each row of z [N, D]'s nearest code under L2:
// argmin_k ||e_k||^2 - 2 z.e_k (||z||^2, the same for every k, left out),
// the dot products by one GEMM.
func (q *Quantizer) Nearest(z *tensor.Tensor) []int32 {
	K, D := q.cfg.Codes, q.cfg.CodeDim
	N := z.Dim(0)
	s := z.Scope().Child() // the dot products live only until they are read
	tensor.NoGrad(func() { q.dist = s.Adopt(tensor.MatMul(z.Detach(), q.Codebook, false, true)).HostInto(q.dist[:0]) })
	s.Close()
	e := q.Codebook.Host()
	norms := make([]float32, K)
	for k := range K {
		var s float32
		for _, v := range e[k*D : (k+1)*D] {
			s += v * v
		}
		norms[k] = s
	}
	codes := make([]int32, N)
	for i := range N {
		row := q.dist[i*K : (i+1)*K]
		best, bd := 0, float32(math.Inf(1))
		for k, dot := range row {
			if d := norms[k] - 2*dot; d < bd {
				best, bd = k, d
			}
		}
		codes[i] = int32(best)
	}
	return codes
}

// Update is a training step's codebook update from the encoder's vectors
// z (host, [N, D]) and their codes: with Decay > 0 the EMA (counts
// N_k = decay N_k + (1-decay) n_k, sums m_k = decay m_k + (1-decay)
// sum_{i: code i = k} z_i, the counts Laplace-smoothed to
// (N_k + eps) / (n + K eps) * n with n = sum N_k, and e_k = m_k / smoothed
// N_k); then, with DeadAfter > 0, every code unused for DeadAfter steps
// is set to a random row of z (its EMA state to count 1 and that row).
// It returns how many codes were restarted.
func (q *Quantizer) Update(z []float32, codes []int32, r *rand.Rand) int {
	c := q.cfg
	K, D := c.Codes, c.CodeDim
	n := make([]float64, K)
	for _, k := range codes {
		n[k]++
	}
	e := q.Codebook.Host()
	var cnt, sum []float32
	if c.Decay > 0 {
		d := c.Decay
		cnt, sum = q.Count.Host(), q.Sum.Host()
		dw := make([]float64, K*D)
		for i, k := range codes {
			for j, v := range z[i*D : (i+1)*D] {
				dw[int(k)*D+j] += float64(v)
			}
		}
		var total float64
		for k := range K {
			cnt[k] = float32(d*float64(cnt[k]) + (1-d)*n[k])
			total += float64(cnt[k])
		}
		for k := range K {
			smoothed := (float64(cnt[k]) + c.Epsilon) / (total + float64(K)*c.Epsilon) * total
			for j := range D {
				i := k*D + j
				sum[i] = float32(d*float64(sum[i]) + (1-d)*dw[i])
				e[i] = float32(float64(sum[i]) / smoothed)
			}
		}
	}
	unused := q.Unused.Host()
	restarted := 0
	N := len(codes)
	for k := range K {
		if n[k] > 0 {
			unused[k] = 0
			continue
		}
		unused[k]++
		if c.DeadAfter > 0 && int(unused[k]) >= c.DeadAfter && N > 0 {
			row := z[r.IntN(N)*D:]
			copy(e[k*D:(k+1)*D], row[:D])
			if cnt != nil {
				cnt[k] = 1
				copy(sum[k*D:(k+1)*D], row[:D])
			}
			unused[k] = 0
			restarted++
		}
	}
	q.Codebook.Set(e)
	q.Unused.Set(unused)
	if cnt != nil {
		q.Count.Set(cnt)
		q.Sum.Set(sum)
	}
	return restarted
}

// Usage returns the perplexity of the codes' histogram (exp of its
// entropy: K when all are used equally, 1 when one is) and the fraction
// of the K codes picked at least once.
func Usage(codes []int32, K int) (perplexity, used float64) {
	n := make([]int, K)
	for _, k := range codes {
		n[k]++
	}
	var h float64
	nz := 0
	for _, c := range n {
		if c > 0 {
			p := float64(c) / float64(len(codes))
			h -= p * math.Log(p)
			nz++
		}
	}
	return math.Exp(h), float64(nz) / float64(K)
}

// PSNR is the peak signal-to-noise ratio in dB of a mean squared error
// over values in [0, 1].
func PSNR(mse float64) float64 { return 10 * math.Log10(1/math.Max(mse, 1e-10)) }

// Save writes config.json and model.safetensors into dir.
func (m *Model) Save(dir string) error { return weights.SaveFolder(dir, m.Config, m.Params()) }

// LoadConfig reads and validates dir/config.json; unknown fields are errors.
func LoadConfig(dir string) (Config, error) {
	var c Config
	if err := weights.ReadConfig(dir, &c, func() error { return c.Validate() }); err != nil {
		return Config{}, fmt.Errorf("vqvae: %w", err)
	}
	return c, nil
}

// Load reads a model folder written by Save. Every tensor must be there
// with the config's shape, and none more; NaN or infinite values are
// refused.
func Load(be backend.Backend, dir string) (*Model, error) {
	c, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	in := nn.NewInit(be, 0)
	in.Zero = true
	m := build(be, c, in)
	if err := weights.FillFolder(dir, m.Params()); err != nil {
		return nil, fmt.Errorf("vqvae: %w", err)
	}
	return m, nil
}
