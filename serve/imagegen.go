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
// url of). The samples are drawn by drawImages.
func (s *Server) openaiImages(w http.ResponseWriter, r *http.Request) {
	var req struct {
		imageRequest
		ResponseFormat string `json:"response_format"`
	}
	if !s.decodeAPI(openAI, w, r, &req) {
		return
	}
	if req.ResponseFormat != "" && req.ResponseFormat != "b64_json" {
		openAI.failParam(w, http.StatusBadRequest, "", "response_format", fmt.Sprintf(`"response_format" %q: golem serve answers "b64_json" only (it stores no images to give a url of)`, req.ResponseFormat))
		return
	}
	d, err := s.drawImages(r, req.imageRequest)
	if err != nil {
		if r.Context().Err() == nil {
			openAI.failErr(w, err)
		}
		return
	}
	data := make([]map[string]any, len(d.pngs))
	for i, b := range d.pngs {
		data[i] = map[string]any{"b64_json": base64.StdEncoding.EncodeToString(b)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"created": time.Now().Unix(), "data": data})
}

// imageRequest is what a request for images says: OpenAI's fields, and
// golem's seed.
type imageRequest struct {
	Model  string  `json:"model"`
	Prompt *string `json:"prompt"`
	N      *int    `json:"n"`
	Size   string  `json:"size"`
	Seed   *int64  `json:"seed"`
}

// drawnImages is what drawImages drew.
type drawnImages struct {
	model string    // the served model's name
	seed  uint64    // image i is sample 0 of seed+i
	pngs  [][]byte  // the images, PNG
	codes [][]int32 // the image tokens each was decoded from, row by row
}

// drawImages draws the images q asks for on its model's engine
// (Engine.Do: a panic is the request's 500, not the server's end), as
// /v1/images/generations and the web app's Generate view ask: n (1 by
// default) images of the model's size, seeded (at random by default), at
// temperature 1 and top-p 1. A request whose client goes away stops
// drawing within a step (imagine.ImagesContext); the request's log line
// counts the image tokens drawn as its answer. Errors are 400s naming the
// field (a missing prompt, n, size, a prompt past the text context), 404
// for an unknown model, 400 for a model that makes no images.
func (s *Server) drawImages(r *http.Request, q imageRequest) (*drawnImages, error) {
	e, err := s.anyEngineFor(r, q.Model)
	if err != nil {
		return nil, err
	}
	wts := e.Weights()
	if wts.Dalle == nil {
		return nil, &fieldError{"model", fmt.Sprintf(`model %s does not make images: it needs a text-to-image model (golem imagine train's --out)`, e.Name)}
	}
	m := wts.Dalle
	side := m.Config.Grid << m.VQ.Config.Downsamples
	size := fmt.Sprintf("%dx%d", side, side)
	o := imagine.Options{N: 1, Sampling: generate.Options{Temperature: 1, TopP: 1, Seed: rand.Uint64()}}
	switch {
	case q.Prompt == nil:
		return nil, &fieldError{"prompt", `"prompt" missing: what to draw`}
	case q.N != nil && (*q.N < 1 || *q.N > imagine.MaxN):
		return nil, &fieldError{"n", fmt.Sprintf(`"n" is %d, want 1 to %d images`, *q.N, imagine.MaxN)}
	case q.Size != "" && q.Size != size:
		return nil, &fieldError{"size", fmt.Sprintf(`"size" %q: model %s makes %s images only`, q.Size, e.Name, size)}
	}
	if q.N != nil {
		o.N = *q.N
	}
	if q.Seed != nil {
		o.Sampling.Seed = uint64(*q.Seed)
	}
	// The prompt is checked before it waits for the model (a prompt of
	// far more bytes than the text context could hold is not tokenized).
	if err := tooManyBytes(m.Tok, m.Config.TextLength, len(*q.Prompt)); err != nil {
		return nil, &paramError{http.StatusBadRequest, "context_length_exceeded", "prompt", err.Error()}
	}
	if _, err := m.Text(*q.Prompt); err != nil {
		if errors.Is(err, dalle.ErrPromptTooLong) {
			return nil, &paramError{http.StatusBadRequest, "context_length_exceeded", "prompt", fmt.Sprintf(`"prompt": %v`, err)}
		}
		return nil, err
	}
	ctx := r.Context()
	rec := recordOf(ctx)
	drawn := 0
	o.Progress = func(tokens int) {
		rec.tokens(tokens - drawn)
		drawn = tokens
	}
	var res *imagine.Result
	var ierr error
	started, finished := make(chan struct{}), make(chan struct{})
	err = e.Do(ctx, func(cur *Weights) {
		close(started)
		defer close(finished)
		if cur.Dalle == nil || cur.Dalle.Config.Grid<<cur.Dalle.VQ.Config.Downsamples != side {
			ierr = errors.New("serve: the model was reloaded with weights that do not make these images; send the request again")
			return
		}
		res, ierr = imagine.ImagesContext(ctx, cur.Dalle, *q.Prompt, o)
	})
	if err != nil && ctx.Err() != nil {
		// The client is gone. Do returns at once; the drawing, if it
		// began, stops at its next step: wait for it, so that the log
		// line counts what was drawn.
		select {
		case <-started:
			<-finished
		default:
		}
		return nil, ctx.Err()
	}
	if err == nil {
		err = ierr
	}
	if err != nil {
		return nil, engineErr(err)
	}
	d := &drawnImages{model: e.Name, seed: o.Sampling.Seed, codes: res.Codes}
	var buf bytes.Buffer
	for _, img := range res.Images {
		buf.Reset()
		if err := png.Encode(&buf, img); err != nil {
			return nil, err
		}
		d.pngs = append(d.pngs, bytes.Clone(buf.Bytes()))
	}
	return d, nil
}

// paramError is an error answered with its status, OpenAI's code and the
// request field at fault.
type paramError struct {
	status      int
	code, param string
	msg         string
}

func (e *paramError) Error() string { return e.msg }
