package serve

import (
	"cmp"
	"encoding/json"
	"fmt"

	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/generate/constrain"
	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/model/dalle"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/tokenizer"
)

// ollamaOptions are the "options" of Ollama's chat and generate requests
// that golem uses; ollamaFields says which others are accepted (num_ctx,
// num_gpu, ...: how Ollama runs a model, not what it answers).
type ollamaOptions struct {
	Temperature *float64 `json:"temperature"`
	TopP        *float64 `json:"top_p"`
	TopK        *int     `json:"top_k"`
	NumPredict  *int     `json:"num_predict"`
	Seed        *int64   `json:"seed"`
	Stop        []string `json:"stop"`
}

func (o *ollamaOptions) params() sampleParams {
	// As Ollama: more tokens than fit the context are clamped to what fits
	// (done_reason "length"), not refused.
	p := sampleParams{Temperature: o.Temperature, TopP: o.TopP, TopK: o.TopK, Seed: o.Seed, Stop: o.Stop, ClampMax: true, MaxName: "options.num_predict"}
	if o.NumPredict != nil && *o.NumPredict >= 0 { // -1, -2: until the context is full
		p.MaxTokens = o.NumPredict
	}
	return p
}

// ollamaCommon are the fields chat and generate share.
type ollamaCommon struct {
	Model   string        `json:"model"`
	Stream  *bool         `json:"stream"` // default true
	Options ollamaOptions `json:"options"`
	// KeepAlive is accepted and checked: golem keeps every model it
	// serves loaded while it runs (see ollamaPs).
	KeepAlive keepAlive       `json:"keep_alive"`
	Format    json.RawMessage `json:"format"` // "json" or a schema: format.go

	tools *toolSpec    // /api/chat's tools (tools.go)
	img   *ImagePrompt // the image before the prompt (image.go)
}

// keepAlive is Ollama's "keep_alive": a duration ("5m", "1h30m"), a number
// of seconds, 0 to unload the model once the request is answered, or
// negative for ever (see Options.KeepAlive). A request with nothing to
// generate and keep_alive 0 answers done_reason "unload", as Ollama.
type keepAlive struct {
	set bool
	d   time.Duration // negative: for ever
}

func (k *keepAlive) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	seconds := func(f float64) time.Duration {
		if f < 0 {
			return -1
		}
		return time.Duration(min(f, 1e9) * float64(time.Second))
	}
	switch v := v.(type) {
	case nil:
		return nil
	case float64:
		*k = keepAlive{set: true, d: seconds(v)}
		return nil
	case string:
		if n, err := strconv.ParseFloat(v, 64); err == nil {
			*k = keepAlive{set: true, d: seconds(n)}
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf(`"keep_alive" %q is not a duration ("5m", "1h") or a number of seconds`, v)
		}
		*k = keepAlive{set: true, d: max(d, -1)}
		return nil
	}
	return fmt.Errorf(`"keep_alive" must be a duration ("5m", "1h") or a number of seconds, got %s`, b)
}

// doneReason is the done_reason of a request with nothing to generate.
func (k keepAlive) doneReason() string {
	if k.set && k.d == 0 {
		return "unload"
	}
	return "load"
}

func (s *Server) ollamaVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": "0.6.0-golem"})
}

// ollamaName is a model's name as Ollama writes it: name:tag, the tag
// "latest" unless the name has one (requests may leave it out).
func ollamaName(name string) string {
	if strings.Contains(name, ":") {
		return name
	}
	return name + ":latest"
}

// ollamaDetails describes a model the way Ollama's tags, ps and show do.
func ollamaDetails(info modelInfo) map[string]any {
	format, level := "safetensors", "F32"
	if info.gguf {
		format, level = "gguf", info.level
	}
	arch := info.config.Arch
	return map[string]any{"parent_model": "", "format": format, "family": arch,
		"families": []string{arch}, "parameter_size": humanCount(info.params), "quantization_level": level}
}

// quantLevel is the type most of loaded weights' matrices are kept in
// (backend.Quantized: a GGUF model's Q8_0, Q4_0 or F16), "F32" when none.
func quantLevel(wts *Weights) string {
	level := "F32"
	qb, ok := wts.backend().(backend.Quantized)
	if !ok {
		return level
	}
	count := map[backend.QuantType]int{}
	for _, p := range wts.params() {
		if t, q := qb.QuantOf(p.Tensor.Buffer()); q {
			count[t]++
		}
	}
	best := 0
	for _, t := range []backend.QuantType{backend.Q8_0, backend.Q4_0, backend.F16} {
		if count[t] > best {
			best, level = count[t], t.String()
		}
	}
	return level
}

// paramCount is the number of the weights' parameters.
func paramCount(wts *Weights) int64 {
	var params int64
	for _, p := range wts.params() {
		params += int64(p.Tensor.Len())
	}
	return params
}

// filesSize is the size of the weights files in dir (0 without a folder).
func filesSize(dir string) int64 {
	if dir == "" {
		return 0
	}
	files, _ := filepath.Glob(filepath.Join(dir, "model*.safetensors"))              // model.safetensors, or its shards
	vq, _ := filepath.Glob(filepath.Join(dir, dalle.VQFolder, "model*.safetensors")) // a text-to-image model's VQ-VAE
	files = append(files, vq...)
	if file, ok, err := gguf.Locate(dir); ok && err == nil {
		files = []string{file}
	}
	var size int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() {
			size += fi.Size()
		}
	}
	return size
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

// ollamaModel is a model as /api/tags and /api/ps list it.
func (s *Server) ollamaModel(name string, info modelInfo) map[string]any {
	return map[string]any{"name": ollamaName(name), "model": ollamaName(name), "modified_at": info.modTime.UTC().Format(time.RFC3339Nano),
		"size": filesSize(s.models[name].dir), "digest": info.digest, "details": ollamaDetails(info)}
}

// ollamaTags answers GET /api/tags: every model served, loaded or not.
func (s *Server) ollamaTags(w http.ResponseWriter, r *http.Request) {
	models := []map[string]any{}
	for _, name := range s.names {
		models = append(models, s.ollamaModel(name, s.infoFor(name)))
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": models})
}

// ollamaPs answers GET /api/ps: the models loaded now, on the server's
// device, each until it expires (its keep-alive after its last request;
// the year 2318 when it is kept for ever); size is its weights in memory.
func (s *Server) ollamaPs(w http.ResponseWriter, r *http.Request) {
	models := []map[string]any{}
	for _, l := range s.loaded() {
		info := s.infoOf(l.e.Weights(), true)
		m := s.ollamaModel(l.e.Name, info)
		m["size"], m["size_vram"] = 4*info.params, 0
		m["expires_at"] = expiresAt(l.expires)
		m["context_length"] = info.config.Context
		models = append(models, m)
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": models})
}

// ollamaParams are a model's defaults as Ollama's PARAMETER lines: its
// context, its stop tokens and golem's Ollama defaults.
func ollamaParams(wts *Weights) [][2]string {
	ps := [][2]string{{"num_ctx", strconv.Itoa(wts.Model.Config.Context)}}
	for _, id := range wts.Stop {
		if t, ok := wts.Tok.Token(id); ok {
			ps = append(ps, [2]string{"stop", strconv.Quote(t)})
		}
	}
	return append(ps, [2]string{"temperature", "0.8"}, [2]string{"top_p", "1"})
}

// ollamaShow answers POST /api/show.
func (s *Server) ollamaShow(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
		Name  string `json:"name"`
	}
	if !s.decodeAPI(ollama, w, r, &req) {
		return
	}
	if req.Model == "" {
		req.Model = req.Name
	}
	e, err := s.engineFor(r, req.Model)
	if err != nil {
		ollama.failErr(w, err)
		return
	}
	wts := e.Weights()
	info := s.infoOf(wts, false)
	params, details := info.params, ollamaDetails(info)
	c := wts.Model.Config
	var parameters, modelfile strings.Builder
	fmt.Fprintf(&modelfile, "# Modelfile generated by golem serve for %s\n# golem serves Hugging Face model folders; it does not build models from Modelfiles.\nFROM %s\nTEMPLATE \"\"\"%s\"\"\"\n", ollamaName(e.Name), cmp.Or(e.Dir, e.Name), wts.Tok.ChatTemplateSource())
	for _, p := range ollamaParams(wts) {
		fmt.Fprintf(&parameters, "%-30s %s\n", p[0], p[1])
		fmt.Fprintf(&modelfile, "PARAMETER %s %s\n", p[0], p[1])
	}
	a := c.Arch
	writeJSON(w, http.StatusOK, map[string]any{"license": "", "system": "", "details": details, "template": wts.Tok.ChatTemplateSource(),
		"parameters": strings.TrimSuffix(parameters.String(), "\n"), "modelfile": modelfile.String(),
		"modified_at": wts.ModTime.UTC().Format(time.RFC3339Nano),
		"model_info": map[string]any{"general.architecture": a, "general.parameter_count": params, "context_length": c.Context,
			a + ".context_length": c.Context, a + ".embedding_length": c.Hidden, a + ".block_count": c.Layers,
			a + ".attention.head_count": c.Heads, a + ".attention.head_count_kv": c.KVHeads, a + ".vocab_size": c.Vocab},
		"capabilities": capabilities(wts)})
}

// capabilities are what Ollama's show says a model can do: "completion",
// and "vision" when it takes images.
func capabilities(wts *Weights) []string {
	if wts.VLM != nil {
		return []string{"completion", "vision"}
	}
	return []string{"completion"}
}

// ollamaNoModels answers what changes the models (/api/pull, /api/create,
// /api/push, /api/copy, /api/delete): golem serves the folders it is
// given.
func (s *Server) ollamaNoModels(w http.ResponseWriter, r *http.Request) {
	ollama.fail(w, http.StatusNotImplemented, "", "golem serve does not %s models: it serves the model folders given with --model (Hugging Face folders: config.json, model.safetensors, tokenizer.json), as \"NAME=DIR\" or DIR. Put a model in a folder (golem pretrain/sft --out DIR, or a Hugging Face download) and restart golem serve with --model DIR; new weights written into a served folder are loaded without a restart", strings.TrimPrefix(r.URL.Path, "/api/"))
}

// ollamaChat answers POST /api/chat.
func (s *Server) ollamaChat(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ollamaCommon
		Messages []ollamaMessage `json:"messages"` // tools.go
		Tools    []requestTool   `json:"tools"`
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
	wts := e.Weights()
	if len(req.Messages) == 0 { // Ollama loads the model and answers done
		writeJSON(w, http.StatusOK, map[string]any{"model": e.Name, "created_at": nowRFC3339(),
			"message": map[string]string{"role": "assistant", "content": ""}, "done_reason": req.KeepAlive.doneReason(), "done": true})
		return
	}
	spec, err := checkTools(req.Tools, nil, nil)
	var prompt []int
	switch {
	case err != nil:
	case wts.VLM != nil && (spec != nil || hasOllamaTools(req.Messages)):
		err = badRequest("model %s is a vision-language model; golem serve takes no tools for it", e.Name)
	case wts.VLM != nil:
		prompt, req.img, err = ollamaVLMPrompt(wts, e.Name, req.Messages)
	default:
		var imgs []reqImage
		if imgs, err = ollamaImages(wts, e.Name, req.Messages); err == nil {
			_, err = imagePrompt(wts, e.Name, imgs) // a text-only model: refused
		}
		if err == nil {
			prompt, err = ollamaPrompt(wts, req.Messages, spec)
		}
	}
	if err != nil {
		ollama.failErr(w, err)
		return
	}
	req.tools = spec
	s.ollamaRun(w, r, e, wts, prompt, &req.ollamaCommon, true)
}

// ollamaGenerate answers POST /api/generate. Unless "raw" is set the prompt
// (and "system") go through the chat template, as Ollama does.
func (s *Server) ollamaGenerate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ollamaCommon
		Prompt string   `json:"prompt"`
		System string   `json:"system"`
		Raw    bool     `json:"raw"`
		Images []string `json:"images"` // base64 (image.go)
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
	wts := e.Weights()
	if req.Prompt == "" {
		writeJSON(w, http.StatusOK, map[string]any{"model": e.Name, "created_at": nowRFC3339(), "response": "", "done": true, "done_reason": req.KeepAlive.doneReason()})
		return
	}
	var prompt []int
	hasChat := wts.Tok.HasChatTemplate()
	imgs, err := base64Images("images", req.Images, func(p string) error { return textOnly(wts, e.Name, p) })
	var pixels []float32
	if err == nil {
		pixels, err = imagePrompt(wts, e.Name, imgs)
	}
	switch {
	case err != nil:
	case wts.VLM != nil && req.Raw && pixels != nil:
		// The prompt as written; the image where it holds the
		// placeholder, else before it.
		text := req.Prompt
		if n := strings.Count(text, llava.Placeholder); n > 1 {
			err = &fieldError{"prompt", fmt.Sprintf("\"prompt\" holds %q %d times; the model takes one image", llava.Placeholder, n)}
			break
		} else if n == 0 {
			text = llava.Placeholder + "\n" + text
		}
		before, after, _ := strings.Cut(text, llava.Placeholder)
		req.img = &ImagePrompt{Before: wts.Tok.Encode(before), Pixels: pixels}
		if prompt = wts.Tok.EncodeWithSpecial(after); len(prompt) == 0 {
			err = &fieldError{"prompt", `"prompt" has no text after the image's placeholder to continue`}
		}
	case wts.VLM != nil && !req.Raw:
		var msgs []tokenizer.Message
		if req.System != "" {
			msgs = append(msgs, tokenizer.Message{Role: "system", Content: req.System})
		}
		msgs = append(msgs, tokenizer.Message{Role: "user", Content: imageText(req.Prompt, pixels != nil)})
		prompt, req.img, err = vlmPrompt(wts, msgs, pixels)
	case req.Raw || !hasChat:
		prompt, err = textPrompt(wts, req.Prompt)
	default:
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
	g, err := newImageGen(e, wts, c.img, prompt, c.Options.params(), 0.8)
	if err == nil {
		var sc *constrain.Schema
		if sc, err = ollamaFormat(c.Format); err == nil {
			g.constrain(sc, string(c.Format))
		}
		g.useTools(c.tools)
	}
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
		m["prompt_eval_count"], m["prompt_eval_duration"] = g.promptTokens(), 0
		m["eval_count"], m["eval_duration"] = tokens, d
		return m
	}
	if g.tools != nil {
		s.ollamaToolAnswer(w, r.Context(), g, c.Stream == nil || *c.Stream, final)
		return
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
