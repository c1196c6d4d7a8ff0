package vision

import (
	"fmt"
	"runtime"
	"sync"
)

// CLIP's image normalisation (openai/CLIP's and transformers'
// CLIPImageProcessor's mean and std).
var (
	CLIPMean = []float32{0.48145466, 0.4578275, 0.40821073}
	CLIPStd  = []float32{0.26862954, 0.26130258, 0.27577711}
)

// CLIPPixels prepares an image for a CLIP vision tower of size x size
// pixels and the given channels, as CLIPImageProcessor does: Fit, then
// normalised with CLIPMean and CLIPStd (three channels). It returns
// C*size*size values, CHW.
func CLIPPixels(m *Image, size, channels int) ([]float32, error) {
	m, err := Fit(m, size, channels)
	if err != nil {
		return nil, err
	}
	if channels == 3 {
		if m, err = (Normalize{Mean: CLIPMean, Std: CLIPStd}).Apply(m, nil); err != nil {
			return nil, err
		}
	}
	return m.Pix, nil
}

// Fit makes an image size x size with the given channels: the shorter
// side resized to size (bilinear), the centre size x size cut, a gray
// image repeated into three channels; values stay in [0, 1].
func Fit(m *Image, size, channels int) (*Image, error) {
	h, w := size, size
	if m.H < m.W {
		w = max(size, (m.W*size+m.H/2)/m.H)
	} else if m.W < m.H {
		h = max(size, (m.H*size+m.W/2)/m.W)
	}
	var err error
	if m.H != h || m.W != w {
		if m, err = (Resize{H: h, W: w}).Apply(m, nil); err != nil {
			return nil, err
		}
	}
	if m.H != size || m.W != size {
		if m, err = (CenterCrop{H: size, W: size}).Apply(m, nil); err != nil {
			return nil, err
		}
	}
	switch {
	case m.C == channels:
	case m.C == 1 && channels == 3:
		rgb := NewImage(3, size, size)
		for c := range 3 {
			copy(rgb.Pix[c*size*size:], m.Pix)
		}
		m = rgb
	default:
		return nil, fmt.Errorf("a %d-channel image for a %d-channel model", m.C, channels)
	}
	return m, nil
}

// CLIPSet is an image-text data set prepared for a CLIP model: each
// image's pixels (CLIPPixels), label and texts (its Captions, or its
// Caption).
type CLIPSet struct {
	Pixels [][]float32
	Labels []int
	Texts  [][]string
}

// LoadCLIPSet decodes and prepares (CLIPPixels) every image of ds on
// GOMAXPROCS goroutines; errors name the sample.
func LoadCLIPSet(ds Dataset, size, channels int) (*CLIPSet, error) {
	return LoadSet(ds, func(m *Image) ([]float32, error) { return CLIPPixels(m, size, channels) })
}

// LoadSet decodes every image of ds and prepares its pixels with prep on
// GOMAXPROCS goroutines, keeping labels and texts; errors name the sample.
func LoadSet(ds Dataset, prep func(*Image) ([]float32, error)) (*CLIPSet, error) {
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
					set.Pixels[i], err = prep(m)
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
