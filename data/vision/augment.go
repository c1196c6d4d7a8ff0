package vision

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// A Transform maps an image to a new one, drawing any randomness from r.
type Transform interface {
	Apply(m *Image, r *rand.Rand) (*Image, error)
}

// Resize scales to H×W with bilinear interpolation (half-pixel centres, as
// torchvision's antialias=False).
type Resize struct{ H, W int }

func (t Resize) Apply(m *Image, _ *rand.Rand) (*Image, error) {
	if t.H <= 0 || t.W <= 0 {
		return nil, fmt.Errorf("vision: Resize to %dx%d", t.W, t.H)
	}
	return resize(m, t.H, t.W), nil
}

func resize(m *Image, oh, ow int) *Image {
	if oh == m.H && ow == m.W {
		o := m.like(m.C, oh, ow)
		copy(o.Pix, m.Pix)
		return o
	}
	o := m.like(m.C, oh, ow)
	type tap struct {
		i0, i1 int
		f      float32
	}
	taps := func(on, n int) []tap {
		s := float64(n) / float64(on)
		t := make([]tap, on)
		for i := range t {
			f := (float64(i)+0.5)*s - 0.5
			if f < 0 {
				f = 0
			}
			i0 := min(int(f), n-1)
			t[i] = tap{i0, min(i0+1, n-1), float32(f - float64(i0))}
		}
		return t
	}
	ys, xs := taps(oh, m.H), taps(ow, m.W)
	for c := 0; c < m.C; c++ {
		src := m.Pix[c*m.H*m.W : (c+1)*m.H*m.W]
		dst := o.Pix[c*oh*ow : (c+1)*oh*ow]
		for y, ty := range ys {
			r0, r1 := src[ty.i0*m.W:(ty.i0+1)*m.W], src[ty.i1*m.W:(ty.i1+1)*m.W]
			row := dst[y*ow : (y+1)*ow]
			for x, tx := range xs {
				a := r0[tx.i0]*(1-tx.f) + r0[tx.i1]*tx.f
				b := r1[tx.i0]*(1-tx.f) + r1[tx.i1]*tx.f
				row[x] = a*(1-ty.f) + b*ty.f
			}
		}
	}
	return o
}

func crop(m *Image, top, left, h, w int) *Image {
	o := m.like(m.C, h, w)
	for c := 0; c < m.C; c++ {
		for y := 0; y < h; y++ {
			copy(o.Pix[c*h*w+y*w:c*h*w+(y+1)*w], m.Pix[c*m.H*m.W+(top+y)*m.W+left:])
		}
	}
	return o
}

// CenterCrop cuts the central H×W (offsets rounded half to even, as
// torchvision). An image smaller than H×W is an error.
type CenterCrop struct{ H, W int }

func (t CenterCrop) Apply(m *Image, _ *rand.Rand) (*Image, error) {
	if t.H > m.H || t.W > m.W || t.H <= 0 || t.W <= 0 {
		return nil, fmt.Errorf("vision: CenterCrop %dx%d of an image of %dx%d", t.W, t.H, m.W, m.H)
	}
	top := int(math.RoundToEven(float64(m.H-t.H) / 2))
	left := int(math.RoundToEven(float64(m.W-t.W) / 2))
	return crop(m, top, left, t.H, t.W), nil
}

// RandomResizedCrop crops a random area and aspect ratio and resizes it to
// H×W, as torchvision: Scale defaults to (0.08, 1), Ratio to (3/4, 4/3);
// after 10 failed tries it falls back to a center crop clamped to Ratio.
type RandomResizedCrop struct {
	H, W  int
	Scale [2]float64
	Ratio [2]float64
}

func (t RandomResizedCrop) params() ([2]float64, [2]float64) {
	s, q := t.Scale, t.Ratio
	if s == [2]float64{} {
		s = [2]float64{0.08, 1}
	}
	if q == [2]float64{} {
		q = [2]float64{3.0 / 4, 4.0 / 3}
	}
	return s, q
}

// CropParams returns the crop (top, left, height, width) for an h×w image.
func (t RandomResizedCrop) CropParams(h, w int, r *rand.Rand) (top, left, ch, cw int) {
	scale, ratio := t.params()
	area := float64(h * w)
	lr0, lr1 := math.Log(ratio[0]), math.Log(ratio[1])
	for i := 0; i < 10; i++ {
		target := area * (scale[0] + r.Float64()*(scale[1]-scale[0]))
		aspect := math.Exp(lr0 + r.Float64()*(lr1-lr0))
		cw = int(math.RoundToEven(math.Sqrt(target * aspect)))
		ch = int(math.RoundToEven(math.Sqrt(target / aspect)))
		if cw > 0 && cw <= w && ch > 0 && ch <= h {
			return r.IntN(h - ch + 1), r.IntN(w - cw + 1), ch, cw
		}
	}
	in := float64(w) / float64(h)
	switch {
	case in < ratio[0]:
		cw, ch = w, int(math.RoundToEven(float64(w)/ratio[0]))
	case in > ratio[1]:
		ch, cw = h, int(math.RoundToEven(float64(h)*ratio[1]))
	default:
		cw, ch = w, h
	}
	return (h - ch) / 2, (w - cw) / 2, ch, cw
}

func (t RandomResizedCrop) Apply(m *Image, r *rand.Rand) (*Image, error) {
	if t.H <= 0 || t.W <= 0 {
		return nil, fmt.Errorf("vision: RandomResizedCrop to %dx%d", t.W, t.H)
	}
	top, left, ch, cw := t.CropParams(m.H, m.W, r)
	return resize(crop(m, top, left, ch, cw), t.H, t.W), nil
}

// HFlip mirrors left-right with probability P.
type HFlip struct{ P float64 }

func (t HFlip) Apply(m *Image, r *rand.Rand) (*Image, error) {
	if r.Float64() >= t.P {
		return m, nil
	}
	o := m.like(m.C, m.H, m.W)
	for c := 0; c < m.C; c++ {
		for y := 0; y < m.H; y++ {
			for x := 0; x < m.W; x++ {
				o.Set(c, y, x, m.At(c, y, m.W-1-x))
			}
		}
	}
	return o, nil
}

func clamp01(v float32) float32 {
	if v < 0 {
		return 0
	}
	if v > 1 {
		return 1
	}
	return v
}

// gray returns the luma (0.299 R + 0.587 G + 0.114 B) of each pixel.
func gray(m *Image) []float32 {
	n := m.H * m.W
	if m.C == 1 {
		return m.Pix[:n]
	}
	g := make([]float32, n)
	for i := range g {
		g[i] = 0.299*m.Pix[i] + 0.587*m.Pix[n+i] + 0.114*m.Pix[2*n+i]
	}
	return g
}

// Gray returns the one-channel luma image of m (0.299 R + 0.587 G +
// 0.114 B), or m itself when it has one channel.
func Gray(m *Image) *Image {
	if m.C == 1 {
		return m
	}
	o := m.like(1, m.H, m.W)
	copy(o.Pix, gray(m))
	return o
}

// blend returns f*x + (1-f)*other, clamped to [0,1]: other is the constant k
// when per is nil, else per[i] for pixel i of every channel.
func blend(m *Image, f float32, k float32, per []float32) *Image {
	o := m.like(m.C, m.H, m.W)
	n := m.H * m.W
	g := 1 - f
	for c := 0; c < m.C; c++ {
		src, dst := m.Pix[c*n:(c+1)*n], o.Pix[c*n:(c+1)*n]
		if per == nil {
			add := g * k
			for i, v := range src {
				dst[i] = clamp01(f*v + add)
			}
			continue
		}
		per := per[:n]
		for i, v := range src {
			dst[i] = clamp01(f*v + g*per[i])
		}
	}
	return o
}

// AdjustBrightness multiplies every value by f, clamped to [0,1].
func AdjustBrightness(m *Image, f float32) *Image {
	return blend(m, f, 0, nil)
}

// AdjustContrast blends with the mean luma: f*x + (1-f)*mean, clamped.
func AdjustContrast(m *Image, f float32) *Image {
	var s float64
	for _, v := range gray(m) {
		s += float64(v)
	}
	mean := float32(s / float64(m.H*m.W))
	return blend(m, f, mean, nil)
}

// AdjustSaturation blends each pixel with its luma: f*x + (1-f)*gray,
// clamped. A one-channel image is returned unchanged.
func AdjustSaturation(m *Image, f float32) *Image {
	if m.C != 3 {
		return m
	}
	g := gray(m)
	return blend(m, f, 0, g)
}

// AdjustHue rotates the hue by h turns (h in [-0.5, 0.5]) in HSV space. A
// one-channel image is returned unchanged.
func AdjustHue(m *Image, h float32) *Image {
	if m.C != 3 {
		return m
	}
	o := m.like(3, m.H, m.W)
	n := m.H * m.W
	for i := 0; i < n; i++ {
		r, g, b := m.Pix[i], m.Pix[n+i], m.Pix[2*n+i]
		mx := max(r, g, b)
		mn := min(r, g, b)
		v, d := mx, mx-mn
		var s, hue float32
		if mx > 0 {
			s = d / mx
		}
		if d > 0 {
			switch mx {
			case r:
				hue = (g - b) / d
			case g:
				hue = 2 + (b-r)/d
			default:
				hue = 4 + (r-g)/d
			}
			hue /= 6
		}
		hue += h
		hue -= float32(math.Floor(float64(hue)))
		// HSV back to RGB.
		hi := hue * 6
		k := int(hi) % 6
		f := hi - float32(int(hi))
		p, q, t := v*(1-s), v*(1-s*f), v*(1-s*(1-f))
		var rr, gg, bb float32
		switch k {
		case 0:
			rr, gg, bb = v, t, p
		case 1:
			rr, gg, bb = q, v, p
		case 2:
			rr, gg, bb = p, v, t
		case 3:
			rr, gg, bb = p, q, v
		case 4:
			rr, gg, bb = t, p, v
		default:
			rr, gg, bb = v, p, q
		}
		o.Pix[i], o.Pix[n+i], o.Pix[2*n+i] = rr, gg, bb
	}
	return o
}

// ColorJitter draws brightness, contrast and saturation factors uniformly
// in [max(0,1-x), 1+x] and a hue shift in [-Hue, Hue], and applies them in a
// random order, as torchvision. A zero field leaves that property alone.
type ColorJitter struct{ Brightness, Contrast, Saturation, Hue float64 }

func (t ColorJitter) Apply(m *Image, r *rand.Rand) (*Image, error) {
	if t.Hue < 0 || t.Hue > 0.5 {
		return nil, fmt.Errorf("vision: ColorJitter Hue %v outside [0, 0.5]", t.Hue)
	}
	factor := func(x float64) float32 {
		lo := math.Max(0, 1-x)
		return float32(lo + r.Float64()*(1+x-lo))
	}
	for _, k := range r.Perm(4) {
		switch {
		case k == 0 && t.Brightness > 0:
			m = AdjustBrightness(m, factor(t.Brightness))
		case k == 1 && t.Contrast > 0:
			m = AdjustContrast(m, factor(t.Contrast))
		case k == 2 && t.Saturation > 0:
			m = AdjustSaturation(m, factor(t.Saturation))
		case k == 3 && t.Hue > 0:
			m = AdjustHue(m, float32(-t.Hue+r.Float64()*2*t.Hue))
		}
	}
	return m, nil
}

// RandomGrayscale replaces, with probability P, each channel by the luma,
// keeping the channel count.
type RandomGrayscale struct{ P float64 }

func (t RandomGrayscale) Apply(m *Image, r *rand.Rand) (*Image, error) {
	if r.Float64() >= t.P || m.C == 1 {
		return m, nil
	}
	return AdjustSaturation(m, 0), nil
}

// GaussianBlur blurs with a Kernel-wide (odd) gaussian whose sigma is drawn
// uniformly from Sigma, edges reflected, as torchvision.
type GaussianBlur struct {
	Kernel int
	Sigma  [2]float64
}

func (t GaussianBlur) Apply(m *Image, r *rand.Rand) (*Image, error) {
	if t.Kernel <= 0 || t.Kernel%2 == 0 || t.Sigma[0] <= 0 || t.Sigma[1] < t.Sigma[0] {
		return nil, fmt.Errorf("vision: GaussianBlur needs an odd kernel and 0 < Sigma[0] <= Sigma[1], got %d and %v", t.Kernel, t.Sigma)
	}
	return Blur(m, t.Kernel, t.Sigma[0]+r.Float64()*(t.Sigma[1]-t.Sigma[0])), nil
}

// Blur applies a separable gaussian of k taps and the given sigma, with
// reflected edges.
func Blur(m *Image, k int, sigma float64) *Image {
	ker := make([]float32, k)
	var sum float64
	half := (k - 1) / 2
	for i := range ker {
		x := float64(i - half)
		v := math.Exp(-0.5 * (x / sigma) * (x / sigma))
		ker[i] = float32(v)
		sum += v
	}
	for i := range ker {
		ker[i] /= float32(sum)
	}
	reflect := func(i, n int) int {
		if n == 1 {
			return 0
		}
		for i < 0 || i >= n {
			if i < 0 {
				i = -i
			}
			if i >= n {
				i = 2*(n-1) - i
			}
		}
		return i
	}
	tmp := m.like(m.C, m.H, m.W)
	o := m.like(m.C, m.H, m.W)
	for c := 0; c < m.C; c++ {
		for y := 0; y < m.H; y++ {
			for x := 0; x < m.W; x++ {
				var s float32
				for j, kv := range ker {
					s += kv * m.At(c, y, reflect(x+j-half, m.W))
				}
				tmp.Set(c, y, x, s)
			}
		}
		for y := 0; y < m.H; y++ {
			for x := 0; x < m.W; x++ {
				var s float32
				for j, kv := range ker {
					s += kv * tmp.At(c, reflect(y+j-half, m.H), x)
				}
				o.Set(c, y, x, s)
			}
		}
	}
	return o
}

// Solarize inverts (1-x) every value >= Threshold, with probability P.
type Solarize struct{ Threshold, P float64 }

func (t Solarize) Apply(m *Image, r *rand.Rand) (*Image, error) {
	if r.Float64() >= t.P {
		return m, nil
	}
	o := m.like(m.C, m.H, m.W)
	th := float32(t.Threshold)
	for i, v := range m.Pix {
		if v >= th {
			v = 1 - v
		}
		o.Pix[i] = v
	}
	return o, nil
}

// Normalize maps each channel c to (x - Mean[c]) / Std[c].
type Normalize struct{ Mean, Std []float32 }

func (t Normalize) Apply(m *Image, _ *rand.Rand) (*Image, error) {
	if len(t.Mean) != m.C || len(t.Std) != m.C {
		return nil, fmt.Errorf("vision: Normalize has %d means and %d stds for an image of %d channels", len(t.Mean), len(t.Std), m.C)
	}
	o := m.like(m.C, m.H, m.W)
	n := m.H * m.W
	for c := 0; c < m.C; c++ {
		if t.Std[c] == 0 {
			return nil, fmt.Errorf("vision: Normalize Std[%d] is 0", c)
		}
		for i := 0; i < n; i++ {
			o.Pix[c*n+i] = (m.Pix[c*n+i] - t.Mean[c]) / t.Std[c]
		}
	}
	return o, nil
}
