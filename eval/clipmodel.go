package eval

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/model/clip"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// CLIP's image normalisation (openai/CLIP's and transformers'
// CLIPImageProcessor's mean and std).
var (
	CLIPMean = []float32{0.48145466, 0.4578275, 0.40821073}
	CLIPStd  = []float32{0.26862954, 0.26130258, 0.27577711}
)

// CLIPPixels prepares an image for a CLIP vision tower of size x size
// pixels and the given channels, as CLIPImageProcessor does: the shorter
// side resized to size (bilinear), the centre size x size cut, a gray
// image repeated into three channels, normalised with CLIPMean and
// CLIPStd. It returns C*size*size values, CHW.
func CLIPPixels(m *vision.Image, size, channels int) ([]float32, error) {
	h, w := size, size
	if m.H < m.W {
		w = max(size, (m.W*size+m.H/2)/m.H)
	} else if m.W < m.H {
		h = max(size, (m.H*size+m.W/2)/m.W)
	}
	var err error
	if m.H != h || m.W != w {
		if m, err = (vision.Resize{H: h, W: w}).Apply(m, nil); err != nil {
			return nil, err
		}
	}
	if m.H != size || m.W != size {
		if m, err = (vision.CenterCrop{H: size, W: size}).Apply(m, nil); err != nil {
			return nil, err
		}
	}
	switch {
	case m.C == channels:
	case m.C == 1 && channels == 3:
		rgb := vision.NewImage(3, size, size)
		for c := range 3 {
			copy(rgb.Pix[c*size*size:], m.Pix)
		}
		m = rgb
	default:
		return nil, fmt.Errorf("a %d-channel image for a %d-channel model", m.C, channels)
	}
	if channels == 3 {
		if m, err = (vision.Normalize{Mean: CLIPMean, Std: CLIPStd}).Apply(m, nil); err != nil {
			return nil, err
		}
	}
	return m.Pix, nil
}

// CLIPSet is an image-text data set prepared for a CLIP model: each
// image's pixels (CLIPPixels), label and texts (its Captions, or its
// Caption).
type CLIPSet struct {
	Pixels [][]float32
	Labels []int
	Texts  [][]string
}

// LoadCLIPSet decodes and prepares every image of ds on GOMAXPROCS
// goroutines; errors name the sample.
func LoadCLIPSet(ds vision.Dataset, size, channels int) (*CLIPSet, error) {
	n := ds.Len()
	set := &CLIPSet{Pixels: make([][]float32, n), Labels: make([]int, n), Texts: make([][]string, n)}
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				m, err := ds.Load(i)
				if err == nil {
					set.Pixels[i], err = CLIPPixels(m, size, channels)
					set.Labels[i] = m.Label
					set.Texts[i] = m.Captions
					if len(m.Captions) == 0 && m.Caption != "" {
						set.Texts[i] = []string{m.Caption}
					}
				}
				if err != nil {
					errs[i] = fmt.Errorf("%s: %w", ds.Name(i), err)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return set, nil
}

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
func CLIPZeroShot(m *clip.Model, tok *tokenizer.CLIP, set *CLIPSet, classes, templates []string, batch int) (ZeroShotResult, error) {
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
func CLIPRetrieval(m *clip.Model, tok *tokenizer.CLIP, set *CLIPSet, batch int) (RetrievalResult, error) {
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
