package eval

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestPrompts(t *testing.T) {
	got := Prompts([]string{"a photo of a {}.", "a {} and a {}", "drawing of"}, "dog")
	want := []string{"a photo of a dog.", "a dog and a dog", "drawing of dog"}
	if !slices.Equal(got, want) {
		t.Fatalf("%q, want %q", got, want)
	}
}

// The class embedding is the normalised mean of the normalised prompt
// embeddings: a long vector does not outweigh a short one.
func TestClassEmbeddingsEnsemble(t *testing.T) {
	embed := func(texts []string) ([][]float32, error) {
		out := make([][]float32, len(texts))
		for i, s := range texts {
			switch {
			case strings.HasPrefix(s, "a photo of"):
				out[i] = []float32{100, 0} // long: scaled down to unit length first
			default:
				out[i] = []float32{0, 1}
			}
		}
		return out, nil
	}
	cls, err := ClassEmbeddings([]string{"cat"}, []string{"a photo of a {}.", "art of a {}"}, embed)
	if err != nil {
		t.Fatal(err)
	}
	r := float32(1 / math.Sqrt2)
	if math.Abs(float64(cls[0][0]-r)) > 1e-6 || math.Abs(float64(cls[0][1]-r)) > 1e-6 {
		t.Fatalf("class embedding %v, want [%v %v]", cls[0], r, r)
	}
	bad := func([]string) ([][]float32, error) { return nil, errors.New("boom") }
	if _, err := ClassEmbeddings([]string{"cat"}, []string{"{}"}, bad); err == nil || !strings.Contains(err.Error(), `"cat"`) {
		t.Fatalf("error %v, want one naming the class", err)
	}
}

// Zero-shot picks the most similar class by cosine (not by dot product:
// the long class vector does not win by its length).
func TestZeroShot(t *testing.T) {
	classes := [][]float32{{1, 0, 0}, {0, 10, 0}, {0, 0, 1}}
	images := [][]float32{{0.9, 0.5, 0}, {0.2, 0.1, 0}, {0, 0.1, 5}, {0, 1, 0.1}}
	labels := []int{0, 0, 2, 2}
	r, err := ZeroShot(images, labels, classes)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Pred, []int{0, 0, 2, 1}) || r.Correct != 3 || r.Acc != 0.75 || r.Chance != 1.0/3 {
		t.Fatalf("%+v", r)
	}
	if _, err := ZeroShot(images, []int{0, 0, 3, 1}, classes); err == nil || !strings.Contains(err.Error(), "image 2") {
		t.Fatalf("label out of range: %v", err)
	}
	if _, err := ZeroShot([][]float32{{1, 0}}, []int{0}, classes); err == nil {
		t.Fatal("embeddings of different widths gave no error")
	}
}

// Recall@K counted by hand for three images with four texts (image 0 has
// two captions): each direction's ranks are written out below.
func TestRetrieval(t *testing.T) {
	images := [][]float32{{1, 0}, {0, 1}, {1, 1}}
	texts := [][]float32{
		{1, 0.1}, // text 0 of image 0
		{0.1, 1}, // text 1 of image 1
		{1, 0.2}, // text 2 of image 2: closer to image 0 than to image 2
		{0, 1},   // text 3 of image 0 (its second caption)
	}
	textImage := []int{0, 1, 2, 0}
	r, err := Retrieval(images, texts, textImage)
	if err != nil {
		t.Fatal(err)
	}
	// Image to text: image 0 ranks text 0 first (hit@1); image 1 ranks
	// text 3 then text 1 (rank 1: miss@1, hit@5); image 2's cosines are
	// 0.77 (text 0), 0.77 (1), 0.83 (2), 0.71 (3): text 2 first (hit@1).
	if r.ImageToText[1] != 2.0/3 || r.ImageToText[5] != 1 || r.ImageToText[10] != 1 {
		t.Errorf("image to text %v, want R@1 2/3, R@5 1", r.ImageToText)
	}
	// Text to image: text 0 -> image 0 first (hit); text 1 -> image 1
	// first (hit); text 2 -> image 0 (0.98) before image 2 (0.83): miss@1;
	// text 3 -> image 1 first, its image 0 last: miss@1, hit@5.
	if r.TextToImage[1] != 0.5 || r.TextToImage[5] != 1 {
		t.Errorf("text to image %v, want R@1 0.5, R@5 1", r.TextToImage)
	}
	if _, err := Retrieval(images, texts, []int{0, 1, 5, 0}); err == nil || !strings.Contains(err.Error(), "text 2") {
		t.Errorf("a link out of range: %v", err)
	}
	if _, err := Retrieval(images, texts[:2], []int{0, 1}); err == nil || !strings.Contains(err.Error(), "image 2 has no text") {
		t.Errorf("an image without text: %v", err)
	}
}

// Recall@10 counts a match ranked 10th and misses one ranked 11th:
// eleven images on an arc 0.01 radians apart, each with one text at its
// own angle, but image 0's text away from them.
func TestRetrievalAt10(t *testing.T) {
	at := func(a float64) []float32 { return []float32{float32(math.Cos(a)), float32(math.Sin(a))} }
	for _, c := range []struct {
		text0                          float64 // image 0's text's angle
		i2t1, i2t5, i2t10, t2i5, t2i10 float64
	}{
		// At 1 radian: the 10 other texts come first for image 0 (it is
		// 11th), the 10 other images first for it.
		{1, 10.0 / 11, 10.0 / 11, 10.0 / 11, 10.0 / 11, 10.0 / 11},
		// At 0.075: texts 1 to 7 come first for image 0 (8th: a hit at
		// 10, not at 5); images 1 to 10 are all nearer to it than image 0.
		{0.075, 10.0 / 11, 10.0 / 11, 1, 10.0 / 11, 10.0 / 11},
	} {
		var images, texts [][]float32
		var textImage []int
		for i := range 11 {
			images = append(images, at(0.01*float64(i)))
			a := 0.01 * float64(i)
			if i == 0 {
				a = c.text0
			}
			texts = append(texts, at(a))
			textImage = append(textImage, i)
		}
		r, err := Retrieval(images, texts, textImage)
		if err != nil {
			t.Fatal(err)
		}
		if r.ImageToText[1] != c.i2t1 || r.ImageToText[5] != c.i2t5 || r.ImageToText[10] != c.i2t10 || r.TextToImage[5] != c.t2i5 || r.TextToImage[10] != c.t2i10 {
			t.Errorf("image 0's text at %v rad: i2t %v, t2i %v; want i2t R@1 %.3f R@5 %.3f R@10 %.3f, t2i R@5 %.3f R@10 %.3f",
				c.text0, r.ImageToText, r.TextToImage, c.i2t1, c.i2t5, c.i2t10, c.t2i5, c.t2i10)
		}
	}
}
