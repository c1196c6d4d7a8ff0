// Package imagine makes pictures from words with a text-to-image
// transformer (model/dalle), as DALL-E does: it samples N grids of image
// tokens for a prompt, one batched forward pass over the N sequences a
// token through a KV cache (the unconditional ones beside them under
// classifier-free guidance), decodes them with the model's VQ-VAE and, with
// a CLIP model, ranks them by their CLIP score for the prompt. golem
// imagine calls Images; it is what a server's /v1/images/generations
// would call too.
package imagine

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/kvcache"
	"github.com/golem-ml/golem/model/clip"
	"github.com/golem-ml/golem/model/dalle"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// MaxN is the most samples one call makes.
const MaxN = 64

// Options control sampling.
type Options struct {
	N int // samples, 1 to MaxN
	// Sampling: Temperature (0 = greedy), TopK, TopP and Seed (sample i
	// draws with Seed+i) as generate.Options has them; the rest of it
	// does not apply to image tokens and must be left zero.
	Sampling generate.Options
	// Guidance is classifier-free guidance's scale S: each token's
	// logits are uncond + S*(cond - uncond), the unconditional ones from
	// the empty prompt, run in the same batch. 0 turns it off (the
	// conditional logits alone, half the work).
	Guidance float64
	// Rerank, if set, scores every sample by its CLIP score for the
	// prompt (the cosine of the CLIP model's image and text embeddings)
	// and picks the best; RerankTokenizer is the CLIP model's tokenizer.
	Rerank          *clip.Model
	RerankTokenizer *tokenizer.CLIP
	// Progress, if set, is called after each sampling step with the
	// image tokens drawn so far, all samples together (N a step).
	Progress func(tokens int)
}

// Result is the samples of one prompt.
type Result struct {
	Images []image.Image // the N samples, in sample order
	Codes  [][]int32     // each sample's grid of image tokens, row by row
	Scores []float64     // each sample's CLIP score (nil without Rerank)
	Best   int           // the highest-scoring sample (0 without Rerank)
}

// Validate checks the options.
func (o *Options) Validate() error {
	s := o.Sampling
	switch {
	case o.N < 1 || o.N > MaxN:
		return fmt.Errorf("imagine: n %d, want 1 to %d samples", o.N, MaxN)
	case math.IsNaN(o.Guidance) || math.IsInf(o.Guidance, 0) || o.Guidance < 0:
		return fmt.Errorf("imagine: guidance scale %g, want a finite number >= 0 (0 = off)", o.Guidance)
	case (o.Rerank == nil) != (o.RerankTokenizer == nil):
		return errors.New("imagine: reranking needs a CLIP model and its tokenizer")
	case s.MaxTokens != 0 || s.RepetitionPenalty != 0 || len(s.Stop) > 0 || len(s.StopIDs) > 0 || s.SoftPrompt != nil || s.Constrain != nil:
		return errors.New("imagine: only the temperature, top-k, top-p and seed of the sampling options apply to image tokens")
	}
	return s.Validate()
}

// Images samples o.N images for prompt (a prompt longer than the model's
// text context is dalle.ErrPromptTooLong; "" samples unconditionally).
// The same seed gives the same images.
func Images(m *dalle.Model, prompt string, o Options) (*Result, error) {
	return ImagesContext(context.Background(), m, prompt, o)
}

// ImagesContext is Images that stops drawing when ctx ends: it looks at
// ctx before each step of sampling (one image token of every sample) and
// returns ctx's error, the step under way being the last one run.
func ImagesContext(ctx context.Context, m *dalle.Model, prompt string, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	text, err := m.Text(prompt)
	if err != nil {
		return nil, err
	}
	codes, err := sample(ctx, m, text, o)
	if err != nil {
		return nil, err
	}
	res := &Result{Codes: codes}
	pixels := make([][]float32, len(codes))
	for i, c := range codes {
		img, err := decode(m, c)
		if err != nil {
			return nil, err
		}
		res.Images = append(res.Images, img)
		if o.Rerank != nil {
			vc := o.Rerank.Config.Vision
			if pixels[i], err = vision.CLIPPixels(vision.FromImage(img), vc.Image, vc.Channels); err != nil {
				return nil, err
			}
		}
	}
	if o.Rerank != nil {
		if res.Scores, err = o.Rerank.Scores(o.RerankTokenizer, prompt, pixels); err != nil {
			return nil, fmt.Errorf("imagine: rerank: %w", err)
		}
		for i, s := range res.Scores {
			if s > res.Scores[res.Best] {
				res.Best = i
			}
		}
	}
	return res, nil
}

// sample draws o.N grids given the text input, until ctx ends.
func sample(ctx context.Context, m *dalle.Model, text []int32, o Options) ([][]int32, error) {
	c := m.Config
	N, K, T := o.N, c.Codes, c.Tokens()
	cfg := o.Guidance != 0
	rows := N
	var in []int32
	for range N {
		in = append(in, text...)
	}
	if cfg {
		empty, _ := m.Text("")
		for range N {
			in = append(in, empty...)
		}
		rows = 2 * N
	}
	samplers := make([]*generate.Sampler, N)
	for i := range samplers {
		samplers[i] = generate.NewSampler(o.Sampling, o.Sampling.Seed+uint64(i), nil)
	}
	out := make([][]int32, N)
	for i := range out {
		out[i] = make([]int32, T)
	}
	step := make([]int32, rows)
	mixed := make([]float32, K)
	cache := &kvcache.Growable{}
	defer cache.Close()
	var err error
	tensor.NoGrad(func() {
		if err = ctx.Err(); err != nil {
			return
		}
		logits := m.Prefill(cache, in, rows)
		for j := 0; ; j++ {
			for i := range N {
				l := logits[i*K : (i+1)*K]
				if cfg {
					u := logits[(N+i)*K : (N+i+1)*K]
					for k := range K {
						// In float64, so that S = 1 gives the conditional
						// logits bit for bit.
						mixed[k] = float32(float64(u[k]) + o.Guidance*(float64(l[k])-float64(u[k])))
					}
					l = mixed
				}
				id := samplers[i].Next(l, nil)
				if id < 0 {
					err = fmt.Errorf("imagine: sample %d, image token %d: every logit is NaN or -Inf (the model overflowed)", i, j)
					return
				}
				out[i][j] = int32(id)
				step[i] = int32(id)
				if cfg {
					step[N+i] = int32(id)
				}
			}
			if o.Progress != nil {
				o.Progress(N * (j + 1))
			}
			if j == T-1 {
				return
			}
			if err = ctx.Err(); err != nil {
				return
			}
			if logits, err = m.Step(cache, step, j, logits); err != nil {
				return
			}
		}
	})
	return out, err
}

// decode turns a grid of image tokens into an image by the model's
// VQ-VAE (its pixels in [-0.5, 0.5] shifted back to [0, 1]).
func decode(m *dalle.Model, codes []int32) (image.Image, error) {
	s := tensor.NewScope()
	defer s.Close()
	g := m.Config.Grid
	out, err := m.VQ.FromTokens(s, codes, 1, g, g)
	if err != nil {
		return nil, err
	}
	img := vision.NewImage(out.Dim(1), out.Dim(2), out.Dim(3))
	for i, v := range out.Host() {
		img.Pix[i] = v + 0.5
	}
	return vision.ToImage(img)
}

// Grid lays images out in a square-ish grid, each enlarged to at least
// 96 pixels a side (nearest neighbour), with its score under it when
// scores are given and a green frame around the best.
func Grid(images []image.Image, scores []float64, best int) image.Image {
	if len(images) == 0 {
		return image.NewNRGBA(image.Rect(0, 0, 1, 1))
	}
	b0 := images[0].Bounds()
	scale := max(1, (96+b0.Dx()-1)/b0.Dx())
	w, h := b0.Dx()*scale, b0.Dy()*scale
	const gap, label = 6, 16
	cols := int(math.Ceil(math.Sqrt(float64(len(images)))))
	rowsN := (len(images) + cols - 1) / cols
	cellH := h + gap
	if scores != nil {
		cellH += label
	}
	out := image.NewNRGBA(image.Rect(0, 0, cols*(w+gap)+gap, rowsN*cellH+gap))
	draw.Draw(out, out.Bounds(), image.NewUniform(color.NRGBA{40, 40, 40, 255}), image.Point{}, draw.Src)
	for i, img := range images {
		x0, y0 := gap+(i%cols)*(w+gap), gap+(i/cols)*cellH
		if scores != nil && i == best {
			frame := image.Rect(x0-3, y0-3, x0+w+3, y0+h+3)
			draw.Draw(out, frame, image.NewUniform(color.NRGBA{0, 200, 0, 255}), image.Point{}, draw.Src)
		}
		b := img.Bounds()
		for y := range h {
			for x := range w {
				out.Set(x0+x, y0+y, img.At(b.Min.X+x/scale, b.Min.Y+y/scale))
			}
		}
		if scores != nil {
			d := font.Drawer{Dst: out, Src: image.NewUniform(color.White), Face: basicfont.Face7x13,
				Dot: fixed.P(x0, y0+h+label-3)}
			d.DrawString(fmt.Sprintf("%d: %.3f", i, scores[i]))
		}
	}
	return out
}
