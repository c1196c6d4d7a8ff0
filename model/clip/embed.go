package clip

import (
	"fmt"
	"math"

	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// EmbedImages returns the model's projected image features (not
// normalised), batch images at a time, without gradients; pixels are
// each Channels x Image x Image floats (data/vision's CLIPPixels).
func (m *Model) EmbedImages(pixels [][]float32, batch int) [][]float32 {
	vc := m.Config.Vision
	per := vc.Channels * vc.Image * vc.Image
	out := make([][]float32, 0, len(pixels))
	tensor.NoGrad(func() {
		for lo := 0; lo < len(pixels); lo += batch {
			hi := min(lo+batch, len(pixels))
			flat := make([]float32, 0, (hi-lo)*per)
			for _, p := range pixels[lo:hi] {
				flat = append(flat, p...)
			}
			s := tensor.NewScope()
			host := m.ImageEmbeds(s.FromHost(m.Heads.LogitScale.Backend(), flat, hi-lo, vc.Channels, vc.Image, vc.Image)).Host()
			s.Close()
			out = append(out, rows(host, hi-lo)...)
		}
	})
	return out
}

// EmbedTexts returns the model's projected text features (not
// normalised), batch texts at a time, without gradients; a text longer
// than the model's context is cut, keeping its end-of-text token.
func (m *Model) EmbedTexts(tok *tokenizer.CLIP, texts []string, batch int) ([][]float32, error) {
	tc := m.Config.Text
	out := make([][]float32, 0, len(texts))
	var err error
	tensor.NoGrad(func() {
		for lo := 0; lo < len(texts); lo += batch {
			hi := min(lo+batch, len(texts))
			T := 2
			for _, t := range texts[lo:hi] {
				T = max(T, min(tc.Context, len(tok.Encode(t))+2))
			}
			var ids []int32
			if ids, err = tok.Batch(texts[lo:hi], T, tc.Pad); err != nil {
				return
			}
			s := tensor.NewScope()
			e := m.TextEmbeds(ids, hi-lo, T)
			host := s.Adopt(e).Host()
			s.Close()
			out = append(out, rows(host, hi-lo)...)
		}
	})
	return out, err
}

func rows(flat []float32, n int) [][]float32 {
	d := len(flat) / n
	out := make([][]float32, n)
	for i := range out {
		out[i] = flat[i*d : (i+1)*d : (i+1)*d]
	}
	return out
}

// Scores returns the CLIP score of each image for a text: the cosine
// similarity of their projected features (DALL-E's reranking; pixels as
// EmbedImages takes them).
func (m *Model) Scores(tok *tokenizer.CLIP, text string, pixels [][]float32) ([]float64, error) {
	te, err := m.EmbedTexts(tok, []string{text}, 1)
	if err != nil {
		return nil, err
	}
	ims := m.EmbedImages(pixels, 64)
	out := make([]float64, len(ims))
	for i, v := range ims {
		if out[i], err = Cosine(te[0], v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Cosine is the cosine similarity of two vectors (0 when one is zero).
func Cosine(a, b []float32) (float64, error) {
	if len(a) != len(b) {
		return 0, fmt.Errorf("clip: embeddings of %d and %d values", len(a), len(b))
	}
	var ab, aa, bb float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		ab, aa, bb = ab+x*y, aa+x*x, bb+y*y
	}
	if aa == 0 || bb == 0 {
		return 0, nil
	}
	return ab / math.Sqrt(aa*bb), nil
}
