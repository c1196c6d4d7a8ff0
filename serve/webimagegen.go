package serve

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"

	"github.com/golem-ml/golem/store"
)

// Pictures from words in the annotation app. The Generate view asks a
// served text-to-image model for images of a prompt (typed, or the next
// imported prompt no model has drawn yet) through drawImages, the path
// /v1/images/generations takes, and keeps each image in the store with
// the prompt, the model and the seed (store.AddGenerations). The Compare
// images view shows an annotator two images of one prompt at a time
// (store.NextImagePair) and keeps which fits the prompt better, a tie,
// both bad, or a skip (store.AddImageComparison); the image_preferences
// export gives them to DPO.

type generationJSON struct {
	ID     int64  `json:"id"`
	Prompt string `json:"prompt"`
	Model  string `json:"model,omitempty"` // left out where the annotator judges blind
	Seed   uint64 `json:"seed,omitempty"`
	Image  string `json:"image"` // its URL
}

// webGenerate draws images for a prompt and stores them:
// {"model", "prompt" or "prompt_id", "n", "size", "seed"} (n, size and
// seed as /v1/images/generations takes them) answers {"generations":
// [{"id", "prompt", "model", "seed", "image"}]}, image i drawn with seed+i
// (sample 0 of its own seed).
func (s *Server) webGenerate(w http.ResponseWriter, r *http.Request, sess store.Session) {
	var req struct {
		imageRequest
		PromptID int64 `json:"prompt_id"`
	}
	if !s.decodeJSON(web, w, r, &req) {
		return
	}
	if req.PromptID != 0 {
		if req.Prompt != nil {
			web.fail(w, http.StatusBadRequest, "", `give "prompt" or "prompt_id", not both`)
			return
		}
		p, err := s.store.Prompt(r.Context(), req.PromptID)
		if err != nil {
			s.storeFail(w, r, err)
			return
		}
		if p.Image != "" {
			web.fail(w, http.StatusBadRequest, "", "prompt %d is about an image; a text-to-image model draws from text alone", p.ID)
			return
		}
		text := store.ImagePromptText(p)
		req.Prompt = &text
	}
	// What the store refuses is refused before anything is drawn.
	if req.Prompt != nil && strings.TrimSpace(*req.Prompt) == "" {
		web.fail(w, http.StatusBadRequest, "", `"prompt" is empty: what to draw (the store keeps images of a prompt)`)
		return
	}
	if req.Seed == nil {
		seed := int64(rand.Uint64() >> 1)
		req.Seed = &seed
	}
	d, err := s.drawImages(r, req.imageRequest)
	if err != nil {
		if r.Context().Err() == nil {
			web.failErr(w, err)
		}
		return
	}
	seeds := make([]uint64, len(d.pngs))
	for i := range seeds {
		seeds[i] = d.seed + uint64(i)
	}
	gs, err := s.store.AddGenerations(r.Context(), store.Generation{Prompt: *req.Prompt, PromptID: req.PromptID, Model: d.model, CreatedBy: sess.User.ID}, seeds, d.pngs, d.codes)
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	out := make([]generationJSON, len(gs))
	for i, g := range gs {
		out[i] = generationJSON{g.ID, g.Prompt, g.Model, g.Seed, imageURL(g.Image)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"generations": out})
}

// webImagePrompt answers the next imported prompt to draw: {"prompt":
// {"id", "text"}}, or {"prompt": null} when every one has been drawn.
func (s *Server) webImagePrompt(w http.ResponseWriter, r *http.Request, _ store.Session) {
	p, err := s.store.NextImagePrompt(r.Context())
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(w, http.StatusOK, map[string]any{"prompt": nil})
		return
	}
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"prompt": map[string]any{"id": p.ID, "text": store.ImagePromptText(p)}})
}

// webNextImagePair answers the next two images of one prompt for the
// annotator to compare, in a random order and blind (no model, no seed):
// {"pair": {"prompt", "a": {"id", "image"}, "b": {...}}}, or {"pair":
// null} when none is left to them.
func (s *Server) webNextImagePair(w http.ResponseWriter, r *http.Request, sess store.Session) {
	p, err := s.store.NextImagePair(r.Context(), sess.User.ID)
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(w, http.StatusOK, map[string]any{"pair": nil})
		return
	}
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	a, b := p.A, p.B
	if rand.IntN(2) == 1 {
		a, b = b, a
	}
	blind := func(g store.Generation) generationJSON {
		return generationJSON{ID: g.ID, Prompt: g.Prompt, Image: imageURL(g.Image)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"pair": map[string]any{"prompt": p.Prompt, "a": blind(a), "b": blind(b)}})
}

// webAddImageComparison stores an annotator's judgement of two images:
// {"a", "b", "chosen"} (generation ids; chosen is a or b) or {"a", "b",
// "verdict"} with "tie", "both_bad" or "skip".
func (s *Server) webAddImageComparison(w http.ResponseWriter, r *http.Request, sess store.Session) {
	var req struct {
		A       int64  `json:"a"`
		B       int64  `json:"b"`
		Chosen  int64  `json:"chosen"`
		Verdict string `json:"verdict"`
	}
	if !s.decodeJSON(web, w, r, &req) {
		return
	}
	c, err := s.store.AddImageComparison(r.Context(), store.ImageComparison{AnnotatorID: sess.User.ID, A: req.A, B: req.B, Chosen: req.Chosen, Verdict: req.Verdict})
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": c.ID, "a": c.A, "b": c.B, "chosen": c.Chosen, "verdict": c.Verdict})
}
