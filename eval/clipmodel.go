package eval

import (
	"fmt"

	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/model/clip"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// CLIPImageEmbeds returns the model's projected image features, batch
// images at a time, without gradients.
func CLIPImageEmbeds(m *clip.Model, pixels [][]float32, batch int) [][]float32 {
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

// CLIPTextEmbeds returns the model's projected text features, batch
// texts at a time, without gradients; a text longer than the model's
// context is cut, keeping its end-of-text token.
func CLIPTextEmbeds(m *clip.Model, tok *tokenizer.CLIP, texts []string, batch int) ([][]float32, error) {
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

// CLIPZeroShot classifies set's images among classes (label i is
// classes[i]) with the prompt ensemble of templates (ClassEmbeddings).
func CLIPZeroShot(m *clip.Model, tok *tokenizer.CLIP, set *vision.CLIPSet, classes, templates []string, batch int) (ZeroShotResult, error) {
	for i, l := range set.Labels {
		if l < 0 || l >= len(classes) {
			return ZeroShotResult{}, fmt.Errorf("eval: image %d has label %d, not one of the %d classes", i, l, len(classes))
		}
	}
	cls, err := ClassEmbeddings(classes, templates, func(texts []string) ([][]float32, error) {
		return CLIPTextEmbeds(m, tok, texts, batch)
	})
	if err != nil {
		return ZeroShotResult{}, err
	}
	return ZeroShot(CLIPImageEmbeds(m, set.Pixels, batch), set.Labels, cls)
}

// CLIPRetrieval ranks set's texts for each image and its images for each
// text (Retrieval): every text of an image is a match of it.
func CLIPRetrieval(m *clip.Model, tok *tokenizer.CLIP, set *vision.CLIPSet, batch int) (RetrievalResult, error) {
	var texts []string
	var textImage []int
	for i, ts := range set.Texts {
		if len(ts) == 0 {
			return RetrievalResult{}, fmt.Errorf("eval: image %d has no caption", i)
		}
		for _, t := range ts {
			texts = append(texts, t)
			textImage = append(textImage, i)
		}
	}
	te, err := CLIPTextEmbeds(m, tok, texts, batch)
	if err != nil {
		return RetrievalResult{}, err
	}
	return Retrieval(CLIPImageEmbeds(m, set.Pixels, batch), te, textImage)
}
