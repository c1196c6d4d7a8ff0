package serve

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/tokenizer"
)

// Images in prompts: OpenAI's image_url content parts (data: URIs only:
// golem fetches nothing) and Ollama's base64 "images", for a
// vision-language model (Weights.VLM). An image is read and checked on
// the request's goroutine: its header first (a PNG, JPEG, GIF or WebP of
// at most maxImagePixels, refused before a pixel is decoded), then its
// pixels, prepared as the model's CLIP tower takes them; the engine runs
// the tower when it prefills the prompt.

// maxImagePixels bounds an image's width x height (2048 x 2048): decoded,
// it takes 16 bytes a pixel for as long as its request is read.
const maxImagePixels = 2048 * 2048

// maxImages is the images one conversation may hold: golem's LLaVA models
// take one (llava.Placeholder once in a prompt).
const maxImages = 1

// reqImage is one image of a request, as sent: path names its field
// ("messages[1].content[0].image_url").
type reqImage struct {
	path string
	data []byte
}

// dataURI reads an image_url's url: a base64 data: URI of an image.
func dataURI(path, url string) (reqImage, error) {
	bad := func(format string, args ...any) (reqImage, error) {
		return reqImage{}, &fieldError{path, path + ": " + fmt.Sprintf(format, args...)}
	}
	lower := strings.ToLower(url)
	switch {
	case url == "":
		return bad(`"url" missing: send the image as a data: URI ("data:image/png;base64,...")`)
	case strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://"):
		return bad("golem fetches nothing: send the image as a data: URI (\"data:image/png;base64,...\")")
	case !strings.HasPrefix(lower, "data:"):
		return bad("only data: URIs are taken (\"data:image/png;base64,...\"); golem fetches nothing")
	}
	meta, payload, ok := strings.Cut(url[len("data:"):], ",")
	if !ok {
		return bad("a data: URI without a comma before its data")
	}
	media, isB64 := strings.CutSuffix(strings.ToLower(meta), ";base64")
	if !strings.HasPrefix(media, "image/") {
		return bad("data:%s is not an image (want image/png, image/jpeg, image/gif or image/webp)", media)
	}
	if !isB64 {
		return bad("data:%s without ;base64: send the image's bytes base64-encoded", media)
	}
	return decodeBase64(path, payload)
}

// decodeBase64 reads an image's base64 (Ollama's "images"; a data: URI's
// data): standard or URL alphabet, padded or not.
func decodeBase64(path, s string) (reqImage, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return reqImage{}, &fieldError{path, fmt.Sprintf("%s: not base64: %v", path, err)}
	}
	if len(b) == 0 {
		return reqImage{}, &fieldError{path, path + ": empty image"}
	}
	return reqImage{path: path, data: b}, nil
}

// imagePrompt checks a request's images against w and returns the one
// image's pixels: nil without images; a 400 naming the field when the
// model takes no images, there are more than it takes, or one is not a
// readable image within the pixel bound.
func imagePrompt(w *Weights, model string, imgs []reqImage) ([]float32, error) {
	if len(imgs) == 0 {
		return nil, nil
	}
	first := imgs[0].path
	if err := textOnly(w, model, first); err != nil {
		return nil, err
	}
	if len(imgs) > maxImages {
		p := imgs[maxImages].path
		return nil, &fieldError{p, fmt.Sprintf("%s: %d images in the conversation; model %s takes %d", p, len(imgs), model, maxImages)}
	}
	im, err := vision.Decode(first, imgs[0].data, vision.Limits{MaxPixels: maxImagePixels})
	if err != nil {
		return nil, &fieldError{first, strings.Replace(err.Error(), " (Limits.MaxPixels)", "", 1)}
	}
	v := w.VLM.Config.Vision
	pix, err := vision.CLIPPixels(im, v.Image, v.Channels)
	if err != nil {
		return nil, &fieldError{first, fmt.Sprintf("%s: %v", first, err)}
	}
	return pix, nil
}

// textOnly refuses an image (its field: path) for a text-only model.
func textOnly(w *Weights, model, path string) error {
	if w.VLM != nil {
		return nil
	}
	return &fieldError{path, fmt.Sprintf("%s: model %s is a text-only model and takes no images; serve a vision-language model (a LLaVA folder, golem vlm's --out)", path, model)}
}

// vlmPrompt renders msgs in a vision-language model's conversation format
// (llava.Render, the format golem vlm trains in) and tokenizes it. With
// pixels, the one llava.Placeholder in msgs (where the image was) splits
// the prompt: the text before it goes into the ImagePrompt, the text
// after it is the prompt returned, as generate.ImageText splits it.
func vlmPrompt(w *Weights, msgs []tokenizer.Message, pixels []float32) ([]int, *ImagePrompt, error) {
	if len(msgs) == 0 {
		return nil, nil, badRequest(`"messages" is empty`)
	}
	n := 0
	for i := range msgs {
		n += len(msgs[i].Content)
		if err := checkRole(i, &msgs[i].Role, false); err != nil {
			return nil, nil, err
		}
	}
	if err := overflows(w, n); err != nil {
		return nil, nil, err
	}
	end := "\n"
	if ids := w.Tok.EndIDs(); len(ids) > 0 {
		end, _ = w.Tok.Token(ids[0])
	}
	text, err := llava.Render(msgs, end)
	if err != nil {
		return nil, nil, badRequest("%v", err)
	}
	if pixels == nil {
		return w.Tok.EncodeWithSpecial(text), nil, nil
	}
	before, after, ok := strings.Cut(text, llava.Placeholder)
	if !ok || strings.Contains(after, llava.Placeholder) {
		return nil, nil, &apiError{http.StatusInternalServerError, "", "serve: the rendered prompt does not hold the image's placeholder once"}
	}
	ids := w.Tok.EncodeWithSpecial(after)
	return ids, &ImagePrompt{Before: w.Tok.Encode(before), Pixels: pixels}, nil
}

// imageText is a vision-language model's message text: the image's
// placeholder and a new line first when it has an image (where Ollama's
// images go, as golem's LLaVA data writes them: "<image>\nDescribe the
// image."). The text's own placeholders are taken out: only an image
// makes one.
func imageText(text string, image bool) string {
	text = strings.ReplaceAll(text, llava.Placeholder, "")
	if image {
		return llava.Placeholder + "\n" + text
	}
	return text
}

// base64Images reads Ollama's "images" (field names the list); check,
// if not nil, may refuse each (by its field) before it is read.
func base64Images(field string, b64 []string, check func(path string) error) ([]reqImage, error) {
	out := make([]reqImage, len(b64))
	for i, s := range b64 {
		path := fmt.Sprintf("%s[%d]", field, i)
		var err error
		if check != nil {
			err = check(path)
		}
		if err == nil {
			out[i], err = decodeBase64(path, s)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ollamaImages reads the images of an Ollama conversation.
func ollamaImages(w *Weights, model string, msgs []ollamaMessage) ([]reqImage, error) {
	var out []reqImage
	for i, m := range msgs {
		imgs, err := base64Images(fmt.Sprintf("messages[%d].images", i), m.Images, func(p string) error { return textOnly(w, model, p) })
		if err != nil {
			return nil, err
		}
		out = append(out, imgs...)
	}
	return out, nil
}

// ollamaVLMPrompt renders an Ollama conversation for a vision-language
// model: each message's images before its text (imageText).
func ollamaVLMPrompt(w *Weights, model string, msgs []ollamaMessage) ([]int, *ImagePrompt, error) {
	imgs, err := ollamaImages(w, model, msgs)
	if err != nil {
		return nil, nil, err
	}
	pixels, err := imagePrompt(w, model, imgs)
	if err != nil {
		return nil, nil, err
	}
	plain := make([]tokenizer.Message, len(msgs))
	for i, m := range msgs {
		plain[i] = tokenizer.Message{Role: m.Role, Content: imageText(m.Content, len(m.Images) > 0)}
	}
	return vlmPrompt(w, plain, pixels)
}

// hasOllamaTools reports whether an Ollama conversation holds calls or
// results.
func hasOllamaTools(msgs []ollamaMessage) bool {
	for _, m := range msgs {
		if len(m.ToolCalls) > 0 || m.Role == "tool" || m.ToolName != "" {
			return true
		}
	}
	return false
}
