package eval

import (
	"fmt"
	"math"
	"strings"
)

// CLIP-style evaluation on embeddings (any contrastive image-text model's:
// model/clip's ImageEmbeds and TextEmbeds): zero-shot classification with
// prompt templates, and retrieval Recall@K in both directions. Similarity
// is cosine: every embedding is scaled to unit length first.

// Prompts fills each template's "{}" with class ("a photo of a {}." ->
// "a photo of a dog."); a template without "{}" gets the class after it.
func Prompts(templates []string, class string) []string {
	out := make([]string, len(templates))
	for i, t := range templates {
		if strings.Contains(t, "{}") {
			out[i] = strings.ReplaceAll(t, "{}", class)
		} else {
			out[i] = t + " " + class
		}
	}
	return out
}

// ClassEmbeddings returns one embedding per class, CLIP's prompt
// ensemble: the class's name in every template, embedded by embed (one
// vector per text), each scaled to unit length, averaged, and the mean
// scaled to unit length.
func ClassEmbeddings(classes, templates []string, embed func(texts []string) ([][]float32, error)) ([][]float32, error) {
	if len(classes) == 0 || len(templates) == 0 {
		return nil, fmt.Errorf("eval: zero-shot needs classes and templates (have %d and %d)", len(classes), len(templates))
	}
	out := make([][]float32, len(classes))
	for c, name := range classes {
		vs, err := embed(Prompts(templates, name))
		if err != nil {
			return nil, fmt.Errorf("eval: class %q: %w", name, err)
		}
		if len(vs) != len(templates) {
			return nil, fmt.Errorf("eval: class %q: %d embeddings for %d prompts", name, len(vs), len(templates))
		}
		var mean []float64
		for _, v := range vs {
			u := unit(v)
			if mean == nil {
				mean = make([]float64, len(u))
			}
			if len(u) != len(mean) {
				return nil, fmt.Errorf("eval: class %q: embeddings of %d and %d values", name, len(mean), len(u))
			}
			for i, x := range u {
				mean[i] += float64(x)
			}
		}
		m := make([]float32, len(mean))
		for i, x := range mean {
			m[i] = float32(x)
		}
		out[c] = unit(m)
	}
	return out, nil
}

// ZeroShotResult is a zero-shot classification's outcome.
type ZeroShotResult struct {
	N       int     `json:"n"`
	Correct int     `json:"correct"`
	Acc     float64 `json:"accuracy"` // Correct / N
	Chance  float64 `json:"chance"`   // 1 / classes: what guessing scores
	Pred    []int   `json:"-"`        // each image's class: the most similar class embedding (the first on a tie)
}

// ZeroShot classifies each image embedding as the class whose embedding
// (ClassEmbeddings) is most similar, and scores it against labels.
func ZeroShot(images [][]float32, labels []int, classes [][]float32) (ZeroShotResult, error) {
	if len(images) != len(labels) {
		return ZeroShotResult{}, fmt.Errorf("eval: %d images but %d labels", len(images), len(labels))
	}
	if len(classes) == 0 {
		return ZeroShotResult{}, fmt.Errorf("eval: zero-shot with no classes")
	}
	cls := units(classes)
	r := ZeroShotResult{N: len(images), Chance: 1 / float64(len(classes)), Pred: make([]int, len(images))}
	for i, im := range images {
		if labels[i] < 0 || labels[i] >= len(classes) {
			return ZeroShotResult{}, fmt.Errorf("eval: image %d has label %d, outside the %d classes", i, labels[i], len(classes))
		}
		u := unit(im)
		best, bestS := 0, math.Inf(-1)
		for c, v := range cls {
			s, err := dot(u, v)
			if err != nil {
				return ZeroShotResult{}, fmt.Errorf("eval: image %d, class %d: %w", i, c, err)
			}
			if s > bestS {
				best, bestS = c, s
			}
		}
		r.Pred[i] = best
		if best == labels[i] {
			r.Correct++
		}
	}
	if r.N > 0 {
		r.Acc = float64(r.Correct) / float64(r.N)
	}
	return r, nil
}

// RetrievalResult is Recall@K in both directions, K = 1, 5, 10.
type RetrievalResult struct {
	Images, Texts int
	ImageToText   map[int]float64 `json:"image_to_text"` // the share of images with a matching text among their K most similar texts
	TextToImage   map[int]float64 `json:"text_to_image"` // the share of texts whose image is among their K most similar images
}

// RecallKs are the K of Retrieval.
var RecallKs = []int{1, 5, 10}

// Retrieval ranks texts for each image and images for each text by
// similarity and returns Recall@1/5/10 both ways. textImage[j] is the
// image text j describes (an image may have several texts, as COCO's
// five captions). Ties rank the earlier index first, so a score is the
// rank a sort would give.
func Retrieval(images, texts [][]float32, textImage []int) (RetrievalResult, error) {
	if len(texts) != len(textImage) {
		return RetrievalResult{}, fmt.Errorf("eval: %d texts but %d text-image links", len(texts), len(textImage))
	}
	if len(images) == 0 || len(texts) == 0 {
		return RetrievalResult{}, fmt.Errorf("eval: retrieval needs images and texts (have %d and %d)", len(images), len(texts))
	}
	ims, txs := units(images), units(texts)
	sim := make([][]float64, len(ims)) // [image][text]
	for i, u := range ims {
		sim[i] = make([]float64, len(txs))
		for j, v := range txs {
			s, err := dot(u, v)
			if err != nil {
				return RetrievalResult{}, fmt.Errorf("eval: image %d, text %d: %w", i, j, err)
			}
			sim[i][j] = s
		}
	}
	for j, im := range textImage {
		if im < 0 || im >= len(ims) {
			return RetrievalResult{}, fmt.Errorf("eval: text %d describes image %d, outside the %d images", j, im, len(ims))
		}
	}
	// before reports whether item a ranks before item b by scores s (the
	// earlier index first on a tie).
	before := func(s []float64, a, b int) bool { return s[a] > s[b] || (s[a] == s[b] && a < b) }
	r := RetrievalResult{Images: len(ims), Texts: len(txs), ImageToText: map[int]float64{}, TextToImage: map[int]float64{}}
	// Image to text: the rank of the image's best-ranked matching text.
	for i := range ims {
		bestMatch := -1
		for j, im := range textImage {
			if im == i && (bestMatch < 0 || before(sim[i], j, bestMatch)) {
				bestMatch = j
			}
		}
		if bestMatch < 0 {
			return RetrievalResult{}, fmt.Errorf("eval: image %d has no text", i)
		}
		rank := 0
		for j := range txs {
			if j != bestMatch && before(sim[i], j, bestMatch) {
				rank++
			}
		}
		for _, k := range RecallKs {
			if rank < k {
				r.ImageToText[k]++
			}
		}
	}
	// Text to image: the rank of the text's image.
	col := make([]float64, len(ims))
	for j, want := range textImage {
		for i := range ims {
			col[i] = sim[i][j]
		}
		rank := 0
		for i := range ims {
			if i != want && before(col, i, want) {
				rank++
			}
		}
		for _, k := range RecallKs {
			if rank < k {
				r.TextToImage[k]++
			}
		}
	}
	for _, k := range RecallKs {
		r.ImageToText[k] /= float64(len(ims))
		r.TextToImage[k] /= float64(len(txs))
	}
	return r, nil
}

func unit(v []float32) []float32 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	if s == 0 {
		return out
	}
	inv := 1 / math.Sqrt(s)
	for i, x := range v {
		out[i] = float32(float64(x) * inv)
	}
	return out
}

func units(vs [][]float32) [][]float32 {
	out := make([][]float32, len(vs))
	for i, v := range vs {
		out[i] = unit(v)
	}
	return out
}

func dot(a, b []float32) (float64, error) {
	if len(a) != len(b) {
		return 0, fmt.Errorf("embeddings of %d and %d values", len(a), len(b))
	}
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s, nil
}
