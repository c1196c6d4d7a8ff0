package generate

import (
	"fmt"
	"strings"

	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/tokenizer"
)

// ImageText continues prompt, which holds llava.Placeholder once, with a
// LLaVA model looking at one image (pixels: llava.Model.PixelSize floats,
// data/vision.CLIPPixels at its tower's size): the text before the
// placeholder and the image's tokens enter as the input embeddings before
// the text after it (Options.SoftPrompt, the same prefill), which is
// continued as Text continues a prompt, stopping at the tokenizer's end
// tokens (EndIDs) unless o.StopIDs says otherwise.
func ImageText(m *llava.Model, tok *tokenizer.Tokenizer, pixels []float32, prompt string, o Options, onText func(delta string)) (string, error) {
	if n := strings.Count(prompt, llava.Placeholder); n != 1 {
		return "", fmt.Errorf("generate: the prompt holds %q %d times, want once (where the image goes)", llava.Placeholder, n)
	}
	before, after, _ := strings.Cut(prompt, llava.Placeholder)
	sp, err := m.PromptEmbeds(tok.Encode(before), pixels)
	if err != nil {
		return "", err
	}
	o.SoftPrompt = sp
	if len(o.StopIDs) == 0 { // a LLaVA answer ends with the tokenizer's end token (train/vlm.go)
		o.StopIDs = tok.EndIDs()
	}
	var cb func(int, string)
	if onText != nil {
		cb = func(_ int, d string) { onText(d) }
	}
	out, err := Text(m.LM, tok, []string{after}, o, cb)
	if err != nil {
		return "", err
	}
	return out[0], nil
}
