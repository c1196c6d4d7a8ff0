package eval

import (
	"fmt"

	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/model/clip"
	"github.com/golem-ml/golem/tokenizer"
)

// CLIPZeroShot classifies set's images among classes (label i is
// classes[i]) with the prompt ensemble of templates (ClassEmbeddings).
func CLIPZeroShot(m *clip.Model, tok *tokenizer.CLIP, set *vision.CLIPSet, classes, templates []string, batch int) (ZeroShotResult, error) {
	for i, l := range set.Labels {
		if l < 0 || l >= len(classes) {
			return ZeroShotResult{}, fmt.Errorf("eval: image %d has label %d, not one of the %d classes", i, l, len(classes))
		}
	}
	cls, err := ClassEmbeddings(classes, templates, func(texts []string) ([][]float32, error) {
		return m.EmbedTexts(tok, texts, batch)
	})
	if err != nil {
		return ZeroShotResult{}, err
	}
	return ZeroShot(m.EmbedImages(set.Pixels, batch), set.Labels, cls)
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
	te, err := m.EmbedTexts(tok, texts, batch)
	if err != nil {
		return RetrievalResult{}, err
	}
	return Retrieval(m.EmbedImages(set.Pixels, batch), te, textImage)
}
