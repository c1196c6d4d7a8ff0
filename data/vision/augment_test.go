package vision

import (
	"math"
	"math/rand/v2"
	"testing"
)

func img1(c, h, w int, v ...float32) *Image {
	m := NewImage(c, h, w)
	copy(m.Pix, v)
	return m
}

func apply(t *testing.T, tr Transform, m *Image) *Image {
	t.Helper()
	o, err := tr.Apply(m, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestResize(t *testing.T) {
	// Half-pixel centres: 2 → 4 gives 0, 1/4, 3/4, 1 (torchvision bilinear,
	// align_corners=False).
	wantPix(t, apply(t, Resize{1, 4}, img1(1, 1, 2, 0, 1)), []float32{0, 0.25, 0.75, 1})
	// 4 → 2 averages neighbours: (0+1/3)/2, (2/3+1)/2.
	wantPix(t, apply(t, Resize{1, 2}, img1(1, 1, 4, 0, 1./3, 2./3, 1)), []float32{1. / 6, 5. / 6})
	// Both axes, two channels, label and caption kept.
	m := img1(2, 2, 1, 0, 1, 1, 0)
	m.Label, m.Caption = 3, "x"
	o := apply(t, Resize{4, 1}, m)
	wantPix(t, o, []float32{0, 0.25, 0.75, 1, 1, 0.75, 0.25, 0})
	if o.Label != 3 || o.Caption != "x" {
		t.Fatalf("label %d caption %q", o.Label, o.Caption)
	}
}

func TestCenterCrop(t *testing.T) {
	row := img1(1, 1, 5, 0, 1, 2, 3, 4)
	wantPix(t, apply(t, CenterCrop{1, 2}, row), []float32{2, 3})                    // offset round(1.5) = 2
	wantPix(t, apply(t, CenterCrop{1, 2}, img1(1, 1, 3, 0, 1, 2)), []float32{0, 1}) // round(0.5) = 0, half to even as Python
	wantPix(t, apply(t, CenterCrop{1, 3}, row), []float32{1, 2, 3})
	if _, err := (CenterCrop{2, 2}).Apply(row, nil); err == nil {
		t.Fatal("cropping 2x2 out of 5x1 succeeded")
	}
}

func TestRandomResizedCrop(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	// A scale above 1 never fits: the fallback is a center crop clamped to
	// the ratio range. Wide 10x4: h=4, w=round(4*4/3)=5, left=(10-5)/2=2.
	tr := RandomResizedCrop{H: 2, W: 2, Scale: [2]float64{1.5, 2}}
	if top, left, h, w := tr.CropParams(4, 10, r); top != 0 || left != 2 || h != 4 || w != 5 {
		t.Fatalf("wide fallback: %d %d %d %d", top, left, h, w)
	}
	// Tall 4x10: w=4, h=round(4/(3/4))=5, top=(10-5)/2=2.
	if top, left, h, w := tr.CropParams(10, 4, r); top != 2 || left != 0 || h != 5 || w != 4 {
		t.Fatalf("tall fallback: %d %d %d %d", top, left, h, w)
	}
	// Within the ratio range the fallback is the whole image.
	if top, left, h, w := tr.CropParams(6, 7, r); top != 0 || left != 0 || h != 6 || w != 7 {
		t.Fatalf("whole fallback: %d %d %d %d", top, left, h, w)
	}
	// Scale 1 and ratio 1 on a square: the whole image.
	full := RandomResizedCrop{H: 8, W: 8, Scale: [2]float64{1, 1}, Ratio: [2]float64{1, 1}}
	if top, left, h, w := full.CropParams(8, 8, r); top != 0 || left != 0 || h != 8 || w != 8 {
		t.Fatalf("full: %d %d %d %d", top, left, h, w)
	}
	// Defaults (0.08-1, 3/4-4/3): every crop is inside, its area and aspect
	// within range (up to rounding), and crops differ.
	def := RandomResizedCrop{H: 3, W: 3}
	seen := map[[4]int]bool{}
	for i := 0; i < 500; i++ {
		top, left, h, w := def.CropParams(100, 200, r)
		seen[[4]int{top, left, h, w}] = true
		if top < 0 || left < 0 || top+h > 100 || left+w > 200 {
			t.Fatalf("crop %d,%d %dx%d outside 200x100", left, top, w, h)
		}
		a := float64(h*w) / 20000
		q := float64(w) / float64(h)
		if a < 0.07 || a > 1.01 || (h < 100 && (q < 0.70 || q > 1.40)) {
			t.Fatalf("crop %dx%d: area %.3f ratio %.3f", w, h, a, q)
		}
	}
	if len(seen) < 400 {
		t.Fatalf("only %d distinct crops in 500", len(seen))
	}
	// Apply resizes the crop: the whole-image crop of a 2x2 to 4x4 is the
	// bilinear resize.
	o := apply(t, RandomResizedCrop{H: 1, W: 4, Scale: [2]float64{1, 1}, Ratio: [2]float64{2, 2}}, img1(1, 1, 2, 0, 1))
	wantPix(t, o, []float32{0, 0.25, 0.75, 1})
}

func TestFlipSolarizeGrayscale(t *testing.T) {
	m := img1(1, 1, 3, 0.2, 0.6, 0.9)
	wantPix(t, apply(t, HFlip{P: 1}, m), []float32{0.9, 0.6, 0.2})
	wantPix(t, apply(t, HFlip{P: 0}, m), []float32{0.2, 0.6, 0.9})
	wantPix(t, apply(t, Solarize{Threshold: 0.6, P: 1}, m), []float32{0.2, 0.4, 0.1})
	wantPix(t, apply(t, Solarize{Threshold: 0.6, P: 0}, m), []float32{0.2, 0.6, 0.9})
	red := img1(3, 1, 1, 1, 0, 0)
	wantPix(t, apply(t, RandomGrayscale{P: 1}, red), []float32{0.299, 0.299, 0.299})
	wantPix(t, apply(t, RandomGrayscale{P: 0}, red), []float32{1, 0, 0})
}

func TestColorAdjust(t *testing.T) {
	wantPix(t, AdjustBrightness(img1(1, 1, 2, 0.2, 0.8), 0.5), []float32{0.1, 0.4})
	wantPix(t, AdjustBrightness(img1(1, 1, 2, 0.2, 0.8), 2), []float32{0.4, 1}) // clamped
	// Contrast blends with the mean luma 0.4.
	wantPix(t, AdjustContrast(img1(1, 1, 2, 0.2, 0.6), 0.5), []float32{0.3, 0.5})
	// Saturation blends each pixel with its luma 0.299.
	wantPix(t, AdjustSaturation(img1(3, 1, 1, 1, 0, 0), 0.5), []float32{0.6495, 0.1495, 0.1495})
	wantPix(t, AdjustSaturation(img1(3, 1, 1, 1, 0, 0), 0), []float32{0.299, 0.299, 0.299})
	// Hue: red + 1/3 turn is green, + 1/2 is cyan, orange (30°) + 30° is yellow.
	wantPix(t, AdjustHue(img1(3, 1, 1, 1, 0, 0), 1./3), []float32{0, 1, 0})
	wantPix(t, AdjustHue(img1(3, 1, 1, 1, 0, 0), -0.5), []float32{0, 1, 1})
	wantPix(t, AdjustHue(img1(3, 1, 1, 1, 0.5, 0), 1./12), []float32{1, 1, 0})
	wantPix(t, AdjustHue(img1(3, 1, 1, 0.5, 0.5, 0.5), 0.3), []float32{0.5, 0.5, 0.5})

	// ColorJitter draws its factors from the documented ranges.
	lo, hi := float32(1), float32(0)
	for s := uint64(0); s < 200; s++ {
		o, err := ColorJitter{Brightness: 0.5}.Apply(img1(1, 1, 1, 0.5), rand.New(rand.NewPCG(s, 0)))
		if err != nil {
			t.Fatal(err)
		}
		lo, hi = min(lo, o.Pix[0]), max(hi, o.Pix[0])
	}
	if lo < 0.25 || hi > 0.75 || lo > 0.3 || hi < 0.7 {
		t.Fatalf("brightness 0.5 on 0.5 gave [%v, %v], want about [0.25, 0.75]", lo, hi)
	}
	if _, err := (ColorJitter{Hue: 0.6}).Apply(img1(3, 1, 1), rand.New(rand.NewPCG(1, 1))); err == nil {
		t.Fatal("hue 0.6 accepted")
	}
}

func TestBlur(t *testing.T) {
	// Kernel 3, sigma 1: weights e^-0.5, 1, e^-0.5 normalised; the edges
	// reflect, so both ends see the centre 1 twice.
	e := math.Exp(-0.5)
	side, mid := float32(e/(1+2*e)), float32(1/(1+2*e))
	m := img1(1, 1, 3, 0, 1, 0)
	wantPix(t, Blur(m, 3, 1), []float32{2 * side, mid, 2 * side})
	wantPix(t, apply(t, GaussianBlur{Kernel: 3, Sigma: [2]float64{1, 1}}, m), []float32{2 * side, mid, 2 * side})
	// Vertically too, on a column.
	wantPix(t, Blur(img1(1, 3, 1, 0, 1, 0), 3, 1), []float32{2 * side, mid, 2 * side})
	if _, err := (GaussianBlur{Kernel: 4, Sigma: [2]float64{1, 2}}).Apply(m, nil); err == nil {
		t.Fatal("an even kernel was accepted")
	}
}

func TestNormalize(t *testing.T) {
	o := apply(t, Normalize{Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}, img1(3, 1, 1, 0.5, 0.5, 0.5))
	wantPix(t, o, []float32{(0.5 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0.5 - 0.406) / 0.225})
	_, err := Normalize{Mean: []float32{0.5}, Std: []float32{0.5}}.Apply(img1(3, 1, 1), nil)
	wantErr(t, err, "1 means and 1 stds for an image of 3 channels")
	_, err = Normalize{Mean: []float32{0.5}, Std: []float32{0}}.Apply(img1(1, 1, 1), nil)
	wantErr(t, err, "Std[0] is 0")
}

// Gray is the luma as one channel; a gray image is returned as it is.
func TestGray(t *testing.T) {
	m := NewImage(3, 1, 2)
	copy(m.Pix, []float32{1, 0, 0, 1, 0, 0})
	m.Label = 4
	g := Gray(m)
	if g.C != 1 || g.Label != 4 || math.Abs(float64(g.Pix[0]-0.299)) > 1e-6 || math.Abs(float64(g.Pix[1]-0.587)) > 1e-6 {
		t.Errorf("Gray: %dx%dx%d %v label %d, want 1x1x2 [0.299 0.587] label 4", g.C, g.H, g.W, g.Pix, g.Label)
	}
	if Gray(g) != g {
		t.Error("Gray of a gray image is a copy")
	}
}
