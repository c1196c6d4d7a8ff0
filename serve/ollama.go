package serve

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/golem-ml/golem/tokenizer"
)

// ollamaOptions are the "options" of Ollama's chat and generate requests
// that golem uses; the others (num_ctx, num_gpu, ...) are accepted and
// ignored, as Ollama ignores what a model does not use.
type ollamaOptions struct {
	Temperature *float64 `json:"temperature"`
	TopP        *float64 `json:"top_p"`
	TopK        *int     `json:"top_k"`
	NumPredict  *int     `json:"num_predict"`
	Seed        *int64   `json:"seed"`
	Stop        []string `json:"stop"`
}

func (o *ollamaOptions) params() sampleParams {
	p := sampleParams{Temperature: o.Temperature, TopP: o.TopP, TopK: o.TopK, Seed: o.Seed, Stop: o.Stop}
	if o.NumPredict != nil && *o.NumPredict >= 0 { // -1: until the context is full
		p.MaxTokens = o.NumPredict
	}
	return p
}

// ollamaCommon are the fields chat and generate share.
type ollamaCommon struct {
	Model   string        `json:"model"`
	Stream  *bool         `json:"stream"` // default true
	Options ollamaOptions `json:"options"`
	Format  any           `json:"format"`
}

func (s *Server) ollamaVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": "0.6.0-golem"})
}

// ollamaDetails describes a model the way Ollama's tags and show do.
func (s *Server) ollamaDetails(e *Engine) (map[string]any, int64) {
	wts := e.Weights()
	var params int64
	for _, p := range wts.Model.Params() {
		params += int64(p.Tensor.Len())
	}
	var size int64
	if e.Dir != "" {
		if fi, err := os.Stat(filepath.Join(e.Dir, "model.safetensors")); err == nil {
			size = fi.Size()
		}
	}
	return map[string]any{"parent_model": "", "format": "safetensors", "family": wts.Model.Config.Arch,
		"families": []string{wts.Model.Config.Arch}, "parameter_size": humanCount(params), "quantization_level": "F32"}, size
}

func humanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// ollamaTags answers GET /api/tags.
func (s *Server) ollamaTags(w http.ResponseWriter, r *http.Request) {
	models := []map[string]any{}
	for _, name := range s.names {
		e := s.engines[name]
		details, size := s.ollamaDetails(e)
		models = append(models, map[string]any{"name": name, "model": name, "modified_at": e.Weights().ModTime.UTC().Format(time.RFC3339Nano),
			"size": size, "digest": "", "details": details})
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": models})
}

// ollamaShow answers POST /api/show.
func (s *Server) ollamaShow(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
		Name  string `json:"name"`
	}
	if !s.decodeJSON(ollama, w, r, &req) {
		return
	}
	if req.Model == "" {
		req.Model = req.Name
	}
	e, err := s.engineFor(ollama, req.Model)
	if err != nil {
		ollama.failErr(w, err)
		return
	}
	details, _ := s.ollamaDetails(e)
	c := e.Weights().Model.Config
	writeJSON(w, http.StatusOK, map[string]any{"details": details, "template": e.Weights().Tok.ChatTemplateSource(),
		"model_info": map[string]any{"general.architecture": c.Arch, "context_length": c.Context}, "capabilities": []string{"completion"}})
}

// ollamaChat answers POST /api/chat.
func (s *Server) ollamaChat(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ollamaCommon
		Messages []tokenizer.Message `json:"messages"`
	}
	if !s.decodeJSON(ollama, w, r, &req) {
		return
	}
	e, err := s.engineFor(ollama, req.Model)
	if err != nil {
		ollama.failErr(w, err)
		return
	}
	wts := e.Weights()
	if len(req.Messages) == 0 { // Ollama loads the model and answers done
		writeJSON(w, http.StatusOK, map[string]any{"model": e.Name, "created_at": nowRFC3339(),
			"message": map[string]string{"role": "assistant", "content": ""}, "done_reason": "load", "done": true})
		return
	}
	prompt, err := chatPrompt(wts, req.Messages)
	if err != nil {
		ollama.failErr(w, err)
		return
	}
	s.ollamaRun(w, r, e, wts, prompt, &req.ollamaCommon, true)
}

// ollamaGenerate answers POST /api/generate. Unless "raw" is set the prompt
// (and "system") go through the chat template, as Ollama does.
func (s *Server) ollamaGenerate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ollamaCommon
		Prompt string `json:"prompt"`
		System string `json:"system"`
		Raw    bool   `json:"raw"`
	}
	if !s.decodeJSON(ollama, w, r, &req) {
		return
	}
	e, err := s.engineFor(ollama, req.Model)
	if err != nil {
		ollama.failErr(w, err)
		return
	}
	wts := e.Weights()
	if req.Prompt == "" {
		writeJSON(w, http.StatusOK, map[string]any{"model": e.Name, "created_at": nowRFC3339(), "response": "", "done": true, "done_reason": "load"})
		return
	}
	var prompt []int
	hasChat := wts.Tok.HasChatTemplate()
	if req.Raw || !hasChat {
		prompt, err = textPrompt(wts, req.Prompt)
	} else {
		var msgs []tokenizer.Message
		if req.System != "" {
			msgs = append(msgs, tokenizer.Message{Role: "system", Content: req.System})
		}
		prompt, err = chatPrompt(wts, append(msgs, tokenizer.Message{Role: "user", Content: req.Prompt}))
	}
	if err != nil {
		ollama.failErr(w, err)
		return
	}
	s.ollamaRun(w, r, e, wts, prompt, &req.ollamaCommon, false)
}

func nowRFC3339() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// ollamaRun generates and answers as NDJSON (streamed) or one object.
func (s *Server) ollamaRun(w http.ResponseWriter, r *http.Request, e *Engine, wts *Weights, prompt []int, c *ollamaCommon, chat bool) {
	g, err := newGen(e, wts, prompt, c.Options.params(), 0.8)
	if err != nil {
		ollama.failErr(w, err)
		return
	}
	start := time.Now()
	piece := func(text string) map[string]any {
		m := map[string]any{"model": e.Name, "created_at": nowRFC3339(), "done": false}
		if chat {
			m["message"] = map[string]string{"role": "assistant", "content": text}
		} else {
			m["response"] = text
		}
		return m
	}
	final := func(text, reason string, tokens int) map[string]any {
		m := piece(text)
		d := time.Since(start).Nanoseconds()
		m["done"], m["done_reason"] = true, reason
		m["total_duration"], m["load_duration"] = d, 0
		m["prompt_eval_count"], m["prompt_eval_duration"] = len(prompt), 0
		m["eval_count"], m["eval_duration"] = tokens, d
		return m
	}
	if c.Stream != nil && !*c.Stream {
		texts, reasons, tokens, err := g.collect(r.Context())
		if err != nil {
			if r.Context().Err() == nil {
				ollama.failErr(w, err)
			}
			return
		}
		writeJSON(w, http.StatusOK, final(texts[0], reasons[0], tokens))
		return
	}
	ch, err := g.start(r.Context())
	if err != nil {
		ollama.failErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(v any) bool {
		b, _ := json.Marshal(v)
		if _, err := w.Write(append(b, '\n')); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	for {
		var ev choiceEvent
		select {
		case ev = <-ch:
		case <-r.Context().Done():
			return
		}
		if ev.err != nil {
			send(map[string]string{"error": ev.err.Error()})
			return
		}
		if ev.done {
			if ev.delta != "" && !send(piece(ev.delta)) {
				return
			}
			send(final("", ev.reason, ev.tokens))
			return
		}
		if !send(piece(ev.delta)) {
			return
		}
	}
}
