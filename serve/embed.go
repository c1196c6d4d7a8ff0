package serve

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tensor"
)

// Embeddings: OpenAI's /v1/embeddings, Ollama's /api/embed and its legacy
// /api/embeddings. A text's embedding is the served model's final hidden
// states (after the final norm), mean pooled over its tokens (or the last
// token's, with Options.EmbedPool "last"), L2-normalised; the inputs of a
// request go through the model in as few forward passes as the prefill
// budget allows, on the engine's scheduler between decode steps.

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
	e, err := s.engineFor(r, req.Model)
	if err != nil {
		openAI.failErr(w, err)
		return
	}
	wts := e.Weights()
	if req.EncodingFormat != "" && req.EncodingFormat != "float" && req.EncodingFormat != "base64" {
		openAI.failParam(w, http.StatusBadRequest, "", "encoding_format", fmt.Sprintf(`"encoding_format" %q is not "float" or "base64"`, req.EncodingFormat))
		return
	}
	if d := req.Dimensions; d != nil && *d != wts.Model.Config.Hidden {
		openAI.failParam(w, http.StatusBadRequest, "", "dimensions", fmt.Sprintf(`"dimensions" %d: this model's embeddings have %d dimensions, and golem serve does not shorten them`, *d, wts.Model.Config.Hidden))
		return
	}
	ins, err := parseInputs("input", req.Input)
	if err != nil {
		openAI.failErr(w, err)
		return
	}
	seqs, err := embedTokens(wts, "input", ins, false)
	if err != nil {
		openAI.failErr(w, err)
		return
	}
	vecs, err := s.embed(r.Context(), e, seqs)
	if err != nil {
		if r.Context().Err() == nil {
			openAI.failErr(w, err)
		}
		return
	}
	tokens := 0
	data := make([]map[string]any, len(vecs))
	for i, v := range vecs {
		tokens += len(seqs[i])
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
			Options   ollamaOptions   `json:"options"`
			KeepAlive keepAlive       `json:"keep_alive"`
		}
		if !s.decodeAPI(ollama, w, r, &req) {
			return
		}
		setKeepAlive(r.Context(), req.KeepAlive)
		e, err := s.engineFor(r, req.Model)
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
		case legacy:
			ins, name = []input{{text: *req.Prompt}}, "prompt"
		case req.Prompt != nil:
			ollama.fail(w, http.StatusBadRequest, "", `/api/embed takes "input"; "prompt" is the legacy /api/embeddings'`)
			return
		default:
			if ins, err = parseInputs("input", req.Input); err != nil {
				ollama.failErr(w, err)
				return
			}
		}
		seqs, err := embedTokens(wts, name, ins, req.Truncate == nil || *req.Truncate)
		if err != nil {
			ollama.failErr(w, err)
			return
		}
		vecs, err := s.embed(r.Context(), e, seqs)
		if err != nil {
			if r.Context().Err() == nil {
				ollama.failErr(w, err)
			}
			return
		}
		tokens := 0
		for _, sq := range seqs {
			tokens += len(sq)
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
