package serve

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tensor"
)

// Embeddings: OpenAI's /v1/embeddings, Ollama's /api/embed and its legacy
// /api/embeddings. A text's embedding is the served model's final hidden
// states (after the final norm), mean pooled over its tokens (or the last
// token's, with Options.EmbedPool "last"), L2-normalised; the inputs of a
// request go through the model in as few forward passes as the prefill
// budget allows, on the engine's scheduler between decode steps. A CLIP
// model gives texts' and images' embeddings in its one space: its
// projected text and image features (model/clip, batched as eval's),
// L2-normalised, so that their dot product is the cosine CLIP ranks by.

// maxEmbedInputs bounds the inputs of one request (OpenAI's 2048).
const maxEmbedInputs = 2048

// Embedding pools.
const (
	PoolMean = "mean"
	PoolLast = "last"
)

// CheckPool checks an embedding pool's name ("" is PoolMean).
func CheckPool(pool string) error {
	switch pool {
	case "", PoolMean, PoolLast:
		return nil
	}
	return fmt.Errorf("serve: embedding pool %q: want %s or %s", pool, PoolMean, PoolLast)
}

// embedTokens tokenizes a request's inputs for w: texts or token ids, none
// empty, each within the context or, with truncate, cut to it.
func embedTokens(w *Weights, name string, ins []input, truncate bool) ([][]int, error) {
	if len(ins) > maxEmbedInputs {
		return nil, badRequest(`%q has %d inputs; at most %d`, name, len(ins), maxEmbedInputs)
	}
	ctx := w.Model.Config.Context
	seqs := make([][]int, len(ins))
	for i, in := range ins {
		item := name
		if len(ins) > 1 {
			item = fmt.Sprintf("%s[%d]", name, i)
		}
		if !in.isIDs && in.text == "" {
			return nil, badRequest(`%s is empty`, item)
		}
		var ids []int
		var err error
		if truncate && !in.isIDs {
			ids = w.Tok.EncodeWithSpecial(in.text) // cut below, however long
		} else if ids, err = in.tokens(w, item); err != nil {
			return nil, err
		}
		if len(ids) > ctx {
			if !truncate {
				return nil, &apiError{http.StatusBadRequest, "context_length_exceeded",
					fmt.Sprintf("%s has %d tokens; this model's maximum context length is %d tokens", item, len(ids), ctx)}
			}
			ids = ids[:ctx]
		}
		if len(ids) == 0 {
			return nil, badRequest(`%s is empty`, item)
		}
		seqs[i] = ids
	}
	return seqs, nil
}

// embed computes the embeddings of seqs on e's model (see the top of the
// file), batching up to the engine's prefill budget of padded tokens.
func (s *Server) embed(ctx context.Context, e *Engine, seqs [][]int) ([][]float32, error) {
	out := make([][]float32, len(seqs))
	err := e.Do(ctx, func(w *Weights) {
		for lo := 0; lo < len(seqs); {
			hi, T := lo, 0
			for hi < len(seqs) {
				t := max(T, len(seqs[hi]))
				if hi > lo && (hi-lo+1)*t > e.opts.PrefillTokens {
					break
				}
				hi, T = hi+1, t
			}
			embedBatch(w.Model, seqs[lo:hi], T, s.opts.EmbedPool, out[lo:hi])
			lo = hi
		}
	})
	if err != nil {
		return nil, engineErr(err)
	}
	return out, nil
}

// embedBatch runs seqs right-padded to T through m in one forward pass and
// pools each row's hidden states into out. Padding comes after a row's
// tokens, so causal attention keeps it out of them.
func embedBatch(m *gpt.Model, seqs [][]int, T int, pool string, out [][]float32) {
	B, C := len(seqs), m.Config.Hidden
	ids := make([]int32, B*T)
	for b, sq := range seqs {
		for i, id := range sq {
			ids[b*T+i] = int32(id)
		}
	}
	s := tensor.NewScope()
	host := m.Forward(ids, B, T, gpt.Options{Scope: s}).Host()
	s.Close()
	for b, sq := range seqs {
		v := make([]float64, C)
		from := 0
		if pool == PoolLast {
			from = len(sq) - 1
		}
		for i := from; i < len(sq); i++ {
			row := host[(b*T+i)*C : (b*T+i+1)*C]
			for c, x := range row {
				v[c] += float64(x)
			}
		}
		var norm float64
		for _, x := range v {
			norm += x * x
		}
		norm = math.Sqrt(norm) // the mean's 1/n cancels in the normalisation
		e := make([]float32, C)
		for c, x := range v {
			if norm > 0 {
				e[c] = float32(x / norm)
			}
		}
		out[b] = e
	}
}

// openaiEmbeddings answers POST /v1/embeddings.
func (s *Server) openaiEmbeddings(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model          string          `json:"model"`
		Input          json.RawMessage `json:"input"`
		EncodingFormat string          `json:"encoding_format"`
		Dimensions     *int            `json:"dimensions"`
		User           string          `json:"user"`
	}
	if !s.decodeAPI(openAI, w, r, &req) {
		return
	}
	e, err := s.embedEngineFor(r, req.Model)
	if err != nil {
		openAI.failErr(w, err)
		return
	}
	wts := e.Weights()
	if req.EncodingFormat != "" && req.EncodingFormat != "float" && req.EncodingFormat != "base64" {
		openAI.failParam(w, http.StatusBadRequest, "", "encoding_format", fmt.Sprintf(`"encoding_format" %q is not "float" or "base64"`, req.EncodingFormat))
		return
	}
	if d, dims := req.Dimensions, wts.config().Hidden; d != nil && *d != dims {
		openAI.failParam(w, http.StatusBadRequest, "", "dimensions", fmt.Sprintf(`"dimensions" %d: this model's embeddings have %d dimensions, and golem serve does not shorten them`, *d, dims))
		return
	}
	ins, err := embedInputs(req.Input)
	if err != nil {
		openAI.failErr(w, err)
		return
	}
	vecs, tokens, err := s.embedAll(r.Context(), e, wts, "input", ins, false)
	if err != nil {
		if r.Context().Err() == nil {
			openAI.failErr(w, err)
		}
		return
	}
	data := make([]map[string]any, len(vecs))
	for i, v := range vecs {
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": v}
		if req.EncodingFormat == "base64" {
			b := make([]byte, 4*len(v))
			for j, x := range v {
				binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(x))
			}
			data[i]["embedding"] = base64.StdEncoding.EncodeToString(b)
		}
	}
	recordOf(r.Context()).setPrompt(tokens)
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "model": e.Name,
		"usage": map[string]int{"prompt_tokens": tokens, "total_tokens": tokens}})
}

// ollamaEmbed answers POST /api/embed (input: a string or a list of
// strings; truncate, by default true, cuts inputs to the context as
// Ollama does) and the legacy POST /api/embeddings (prompt: one string).
func (s *Server) ollamaEmbed(legacy bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model     string          `json:"model"`
			Input     json.RawMessage `json:"input"`
			Prompt    *string         `json:"prompt"`
			Truncate  *bool           `json:"truncate"`
			Images    []string        `json:"images"` // base64: a CLIP model's image embeddings, after input's
			Options   ollamaOptions   `json:"options"`
			KeepAlive keepAlive       `json:"keep_alive"`
		}
		if !s.decodeAPI(ollama, w, r, &req) {
			return
		}
		setKeepAlive(r.Context(), req.KeepAlive)
		e, err := s.embedEngineFor(r, req.Model)
		if err != nil {
			ollama.failErr(w, err)
			return
		}
		start := time.Now()
		wts := e.Weights()
		var ins []input
		name := "input"
		switch {
		case legacy && req.Input != nil:
			ollama.fail(w, http.StatusBadRequest, "", `/api/embeddings takes "prompt"; "input" is /api/embed's`)
			return
		case legacy && req.Prompt == nil:
			ollama.fail(w, http.StatusBadRequest, "", `"prompt" missing`)
			return
		case legacy && len(req.Images) > 0:
			ollama.fail(w, http.StatusBadRequest, "", `/api/embeddings takes one "prompt"; send images to /api/embed`)
			return
		case legacy:
			ins, name = []input{{text: *req.Prompt}}, "prompt"
		case req.Prompt != nil:
			ollama.fail(w, http.StatusBadRequest, "", `/api/embed takes "input"; "prompt" is the legacy /api/embeddings'`)
			return
		default:
			if req.Input != nil || len(req.Images) == 0 {
				if ins, err = parseInputs("input", req.Input); err != nil {
					ollama.failErr(w, err)
					return
				}
			}
			imgs, err := base64Images("images", req.Images, nil)
			if err != nil {
				ollama.failErr(w, err)
				return
			}
			for i := range imgs {
				ins = append(ins, input{image: &imgs[i]})
			}
		}
		vecs, tokens, err := s.embedAll(r.Context(), e, wts, name, ins, req.Truncate == nil || *req.Truncate)
		if err != nil {
			if r.Context().Err() == nil {
				ollama.failErr(w, err)
			}
			return
		}
		recordOf(r.Context()).setPrompt(tokens)
		if legacy {
			writeJSON(w, http.StatusOK, map[string]any{"embedding": vecs[0]})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"model": e.Name, "embeddings": vecs,
			"total_duration": time.Since(start).Nanoseconds(), "load_duration": 0, "prompt_eval_count": tokens})
	}
}

// embedAll computes the embeddings of ins (named name in errors) on e's
// model and counts their tokens: a CLIP model's text and image
// embeddings, a language model's text ones (an image is a 400 naming its
// field); truncate cuts texts to the context instead of refusing them.
func (s *Server) embedAll(ctx context.Context, e *Engine, w *Weights, name string, ins []input, truncate bool) ([][]float32, int, error) {
	if w.Dalle != nil {
		return nil, 0, onlyImages(e.Name)
	}
	if w.CLIP == nil {
		for _, in := range ins {
			if in.image != nil {
				return nil, 0, &fieldError{in.image.path, fmt.Sprintf("%s: model %s gives text embeddings only; image embeddings need a CLIP model (golem clip train's --out)", in.image.path, e.Name)}
			}
		}
		seqs, err := embedTokens(w, name, ins, truncate)
		if err != nil {
			return nil, 0, err
		}
		vecs, err := s.embed(ctx, e, seqs)
		tokens := 0
		for _, sq := range seqs {
			tokens += len(sq)
		}
		return vecs, tokens, err
	}
	return s.embedCLIP(ctx, e, w, name, ins, truncate)
}

// embedCLIP is embedAll on a CLIP model: texts through its text tower
// (cut to its context with truncate, else refused past it), images
// decoded (header first, within maxImagePixels) and prepared as its
// vision tower takes them (data/vision's CLIPPixels); each embedding
// L2-normalised.
func (s *Server) embedCLIP(ctx context.Context, e *Engine, w *Weights, name string, ins []input, truncate bool) ([][]float32, int, error) {
	if len(ins) > maxEmbedInputs {
		return nil, 0, badRequest(`%q has %d inputs; at most %d`, name, len(ins), maxEmbedInputs)
	}
	if len(ins) == 0 {
		return nil, 0, badRequest(`%q missing: send texts or images`, name)
	}
	cc := w.CLIP.Config
	var texts []string
	var pixels [][]float32
	isText := make([]bool, len(ins))
	tokens := 0
	for i, in := range ins {
		item := name
		if len(ins) > 1 {
			item = fmt.Sprintf("%s[%d]", name, i)
		}
		switch {
		case in.image != nil:
			im, err := vision.Decode(in.image.path, in.image.data, vision.Limits{MaxPixels: maxImagePixels})
			if err != nil {
				return nil, 0, &fieldError{in.image.path, strings.Replace(err.Error(), " (Limits.MaxPixels)", "", 1)}
			}
			pix, err := vision.CLIPPixels(im, cc.Vision.Image, cc.Vision.Channels)
			if err != nil {
				return nil, 0, &fieldError{in.image.path, fmt.Sprintf("%s: %v", in.image.path, err)}
			}
			pixels = append(pixels, pix)
		case in.isIDs:
			return nil, 0, badRequest(`%s: a CLIP model takes texts (its own tokenizer's), not token ids`, item)
		case in.text == "":
			return nil, 0, badRequest(`%s is empty`, item)
		default:
			text := in.text
			if len(text) > maxEmbedTextBytes { // far more than the context: not worth tokenizing whole
				if !truncate {
					return nil, 0, &apiError{http.StatusBadRequest, "context_length_exceeded",
						fmt.Sprintf("%s has %d bytes, far more than this model's text context of %d tokens", item, len(text), cc.Text.Context)}
				}
				text = strings.ToValidUTF8(text[:maxEmbedTextBytes], "")
			}
			n := len(w.CLIPTok.Encode(text)) + 2 // with its start and end tokens
			if n > cc.Text.Context && !truncate {
				return nil, 0, &apiError{http.StatusBadRequest, "context_length_exceeded",
					fmt.Sprintf("%s has %d tokens; this model's text context is %d tokens", item, n, cc.Text.Context)}
			}
			tokens += min(n, cc.Text.Context)
			texts = append(texts, text)
			isText[i] = true
		}
	}
	var tv, iv [][]float32
	var ferr error
	err := e.Do(ctx, func(cur *Weights) {
		if cur.CLIP == nil || cur.CLIP.Config.Vision.Image != cc.Vision.Image {
			ferr = errors.New("serve: the model was reloaded with weights that do not take these inputs; send the request again")
			return
		}
		if len(texts) > 0 {
			if tv, ferr = cur.CLIP.EmbedTexts(cur.CLIPTok, texts, 64); ferr != nil {
				return
			}
		}
		if len(pixels) > 0 {
			iv = cur.CLIP.EmbedImages(pixels, 16)
		}
	})
	if err != nil {
		return nil, 0, engineErr(err)
	}
	if ferr != nil {
		return nil, 0, ferr
	}
	out := make([][]float32, len(ins))
	for i := range ins {
		var v []float32
		if isText[i] {
			v, tv = tv[0], tv[1:]
		} else {
			v, iv = iv[0], iv[1:]
		}
		out[i] = normalized(v)
	}
	return out, tokens, nil
}

// maxEmbedTextBytes bounds a text for a CLIP model before it is
// tokenized (a CLIP text tower reads 77 tokens; 4 KiB is far more).
const maxEmbedTextBytes = 4 << 10

// normalized returns v / |v| (v when it is zero).
func normalized(v []float32) []float32 {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	if n == 0 {
		return out
	}
	n = math.Sqrt(n)
	for i, x := range v {
		out[i] = float32(float64(x) / n)
	}
	return out
}
