package eval

import (
	"math"
	"testing"

	"github.com/golem-ml/golem/data/vision"
)

// CLIPPixels cuts the centre of the shorter side's square, repeats a gray
// image into RGB and normalises with CLIP's mean and std.
func TestCLIPPixels(t *testing.T) {
	m := vision.NewImage(1, 2, 4) // H 2, W 4: columns 1 and 2 are the centre
	copy(m.Pix, []float32{0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7})
	got, err := CLIPPixels(m, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3*2*2 {
		t.Fatalf("%d values, want 12", len(got))
	}
	for c := range 3 {
		for i, v := range []float32{0.1, 0.2, 0.5, 0.6} {
			want := (v - CLIPMean[c]) / CLIPStd[c]
			if d := got[c*4+i] - want; math.Abs(float64(d)) > 1e-6 {
				t.Fatalf("channel %d value %d: %v, want %v", c, i, got[c*4+i], want)
			}
		}
	}
	// A tall 3-channel image is resized to width 2 (height 4), then cut.
	tall := vision.NewImage(3, 8, 4)
	for i := range tall.Pix {
		tall.Pix[i] = 0.5
	}
	got, err = CLIPPixels(tall, 2, 3)
	if err != nil || len(got) != 12 {
		t.Fatalf("tall image: %d values, %v", len(got), err)
	}
	if want := (0.5 - CLIPMean[2]) / CLIPStd[2]; math.Abs(float64(got[8]-want)) > 1e-6 {
		t.Fatalf("tall image's blue: %v, want %v", got[8], want)
	}
	if _, err := CLIPPixels(vision.NewImage(3, 4, 4), 4, 1); err == nil {
		t.Fatal("a 3-channel image for a 1-channel model: no error")
	}
}
