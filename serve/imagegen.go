package serve

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/generate/imagine"
	"github.com/golem-ml/golem/model/dalle"
)

// openaiImages answers POST /v1/images/generations with a text-to-image
// model (golem imagine train's --out): n images of the model's size, each
// a base64 PNG (response_format b64_json; golem stores no image to give a
// url of). The samples are drawn on the engine's scheduler goroutine
// (Engine.Do: a panic is the request's 500, not the server's end).
func (s *Server) openaiImages(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model          string  `json:"model"`
		Prompt         *string `json:"prompt"`
		N              *int    `json:"n"`
		Size           string  `json:"size"`
		ResponseFormat string  `json:"response_format"`
		Seed           *int64  `json:"seed"`
	}
	if !s.decodeAPI(openAI, w, r, &req) {
		return
	}
	e, err := s.anyEngineFor(r, req.Model)
	if err != nil {
		openAI.failErr(w, err)
		return
	}
	wts := e.Weights()
	if wts.Dalle == nil {
		openAI.failParam(w, http.StatusBadRequest, "", "model", fmt.Sprintf(`model %s does not make images: /v1/images/generations needs a text-to-image model (golem imagine train's --out)`, e.Name))
		return
	}
	m := wts.Dalle
	side := m.Config.Grid << m.VQ.Config.Downsamples
	size := fmt.Sprintf("%dx%d", side, side)
	o := imagine.Options{N: 1, Sampling: generate.Options{Temperature: 1, TopP: 1, Seed: rand.Uint64()}}
	switch {
	case req.Prompt == nil:
		openAI.failParam(w, http.StatusBadRequest, "", "prompt", `"prompt" missing: what to draw`)
		return
	case req.N != nil && (*req.N < 1 || *req.N > imagine.MaxN):
		openAI.failParam(w, http.StatusBadRequest, "", "n", fmt.Sprintf(`"n" is %d, want 1 to %d images`, *req.N, imagine.MaxN))
		return
	case req.Size != "" && req.Size != size:
		openAI.failParam(w, http.StatusBadRequest, "", "size", fmt.Sprintf(`"size" %q: model %s makes %s images only`, req.Size, e.Name, size))
		return
	case req.ResponseFormat != "" && req.ResponseFormat != "b64_json":
		openAI.failParam(w, http.StatusBadRequest, "", "response_format", fmt.Sprintf(`"response_format" %q: golem serve answers "b64_json" only (it stores no images to give a url of)`, req.ResponseFormat))
		return
	}
	if req.N != nil {
		o.N = *req.N
	}
	if req.Seed != nil {
		o.Sampling.Seed = uint64(*req.Seed)
	}
	// The prompt is checked before it waits for the model (a prompt of
	// far more bytes than the text context could hold is not tokenized).
	if err := tooManyBytes(m.Tok, m.Config.TextLength, len(*req.Prompt)); err != nil {
		openAI.failParam(w, http.StatusBadRequest, "context_length_exceeded", "prompt", err.Error())
		return
	}
	if _, err := m.Text(*req.Prompt); err != nil {
		if errors.Is(err, dalle.ErrPromptTooLong) {
			openAI.failParam(w, http.StatusBadRequest, "context_length_exceeded", "prompt", fmt.Sprintf(`"prompt": %v`, err))
			return
		}
		openAI.failErr(w, err)
		return
	}
	var res *imagine.Result
	var ierr error
	err = e.Do(r.Context(), func(cur *Weights) {
		if cur.Dalle == nil || cur.Dalle.Config.Grid<<cur.Dalle.VQ.Config.Downsamples != side {
			ierr = errors.New("serve: the model was reloaded with weights that do not make these images; send the request again")
			return
		}
		res, ierr = imagine.Images(cur.Dalle, *req.Prompt, o)
	})
	if err == nil {
		err = ierr
	}
	if err != nil {
		if r.Context().Err() == nil {
			openAI.failErr(w, engineErr(err))
		}
		return
	}
	data := make([]map[string]any, len(res.Images))
	var buf bytes.Buffer
	for i, img := range res.Images {
		buf.Reset()
		if err := png.Encode(&buf, img); err != nil {
			openAI.failErr(w, err)
			return
		}
		data[i] = map[string]any{"b64_json": base64.StdEncoding.EncodeToString(buf.Bytes())}
	}
	writeJSON(w, http.StatusOK, map[string]any{"created": time.Now().Unix(), "data": data})
}
