package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golem-ml/golem/tokenizer"
)

// openaiModels answers GET /v1/models.
func (s *Server) openaiModels(w http.ResponseWriter, r *http.Request) {
	data := []map[string]any{}
	for _, name := range s.names {
		data = append(data, s.openaiModelObject(name))
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func (s *Server) openaiModelObject(name string) map[string]any {
	return map[string]any{"id": name, "object": "model", "created": s.infoFor(name).modTime.Unix(), "owned_by": "golem"}
}

// openaiModel answers GET /v1/models/{id}.
func (s *Server) openaiModel(w http.ResponseWriter, r *http.Request) {
	m, ok := s.model(r.PathValue("id"))
	if !ok {
		openAI.fail(w, http.StatusNotFound, "model_not_found", "model %q not found; served models: %s", r.PathValue("id"), strings.Join(s.modelNames(), ", "))
		return
	}
	writeJSON(w, http.StatusOK, s.openaiModelObject(m.name))
}

// stopList is OpenAI's "stop": a string or a list of strings.
type stopList []string

func (l *stopList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = stopList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New(`"stop" must be a string or a list of strings`)
	}
	*l = many
	return nil
}

// chatContent is a message's "content": a string or a list of parts,
// text ({"type": "text", "text": ...}) or images ({"type": "image_url",
// "image_url": {"url": "data:image/png;base64,...", "detail": ...}};
// detail is accepted and ignored: the model's tower takes one size).
type chatContent struct {
	parts []contentPart
}

type contentPart struct {
	text  string
	image bool   // an image_url part
	url   string // its url
}

func (c *chatContent) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		c.parts = []contentPart{{text: s}}
		return nil
	}
	var parts []struct {
		Type     string  `json:"type"`
		Text     *string `json:"text"`
		ImageURL *struct {
			URL    string `json:"url"`
			Detail string `json:"detail"`
		} `json:"image_url"`
	}
	if err := json.Unmarshal(b, &parts); err != nil {
		return errors.New(`"content" must be a string or a list of parts: {"type": "text", "text": ...} or {"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}`)
	}
	c.parts = nil
	for _, p := range parts {
		switch {
		case p.Type == "image_url" && p.ImageURL != nil:
			c.parts = append(c.parts, contentPart{image: true, url: p.ImageURL.URL})
		case p.Type == "image_url":
			return errors.New(`an "image_url" content part needs "image_url": {"url": "data:image/png;base64,..."}`)
		case p.Type == "input_audio" || p.Type == "file":
			return fmt.Errorf(`a message's %q content part is not supported by golem serve: send text and image_url parts, or a string`, p.Type)
		case p.Type != "text" || p.Text == nil:
			return errors.New(`content parts are {"type": "text", "text": ...} or {"type": "image_url", "image_url": {"url": ...}}`)
		default:
			c.parts = append(c.parts, contentPart{text: *p.Text})
		}
	}
	return nil
}

// String is the content's text parts, joined.
func (c chatContent) String() string {
	var sb strings.Builder
	for _, p := range c.parts {
		sb.WriteString(p.text)
	}
	return sb.String()
}

// vlmText is the content for a vision-language model: its text parts
// without placeholders of their own, each image part a placeholder and a
// new line where it is (imageText).
func (c chatContent) vlmText() string {
	var sb strings.Builder
	for _, p := range c.parts {
		sb.WriteString(imageText(p.text, p.image))
	}
	return sb.String()
}

// openaiImages reads the image parts of msgs (each named by its field).
func openaiImages(w *Weights, model string, msgs []openaiMessage) ([]reqImage, error) {
	var out []reqImage
	for i, m := range msgs {
		for j, p := range m.Content.parts {
			if !p.image {
				continue
			}
			path := fmt.Sprintf("messages[%d].content[%d].image_url", i, j)
			if err := textOnly(w, model, path); err != nil {
				return nil, err
			}
			img, err := dataURI(path, p.url)
			if err != nil {
				return nil, err
			}
			out = append(out, img)
		}
	}
	return out, nil
}

type openaiMessage struct {
	Role       string           `json:"role"`
	Content    chatContent      `json:"content"`
	ToolCalls  []openaiToolCall `json:"tool_calls"`   // tools.go
	ToolCallID string           `json:"tool_call_id"` // role "tool"
}

// openaiCommon are the fields chat and completions share.
type openaiCommon struct {
	Model               string   `json:"model"`
	Temperature         *float64 `json:"temperature"`
	TopP                *float64 `json:"top_p"`
	TopK                *int     `json:"top_k"` // vLLM's extension
	MaxTokens           *int     `json:"max_tokens"`
	MaxCompletionTokens *int     `json:"max_completion_tokens"`
	N                   *int     `json:"n"`
	Seed                *int64   `json:"seed"`
	Stop                stopList `json:"stop"`
	MinTokens           *int     `json:"min_tokens"` // vLLM's extension
	Stream              bool     `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	ResponseFormat *responseFormat `json:"response_format"` // format.go
}

func (c *openaiCommon) params() sampleParams {
	p := sampleParams{Temperature: c.Temperature, TopP: c.TopP, TopK: c.TopK, MaxTokens: c.MaxTokens, N: c.N, Seed: c.Seed, Stop: c.Stop, MinTokens: c.MinTokens}
	if p.MaxTokens == nil {
		p.MaxTokens = c.MaxCompletionTokens
	}
	return p
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func newUsage(prompt, completion int) usage {
	return usage{prompt, completion, prompt + completion}
}

// openaiChat answers POST /v1/chat/completions.
func (s *Server) openaiChat(w http.ResponseWriter, r *http.Request) {
	var req struct {
		openaiCommon
		openaiToolFields
		Messages    []openaiMessage `json:"messages"`
		Logprobs    bool            `json:"logprobs"`
		TopLogprobs *int            `json:"top_logprobs"`
	}
	if !s.decodeAPI(openAI, w, r, &req) {
		return
	}
	e, err := s.engineFor(r, req.Model)
	if err != nil {
		openAI.failErr(w, err)
		return
	}
	if req.Messages == nil {
		openAI.fail(w, http.StatusBadRequest, "", `"messages" missing`)
		return
	}
	spec, err := checkTools(req.Tools, req.ToolChoice, req.ParallelToolCalls)
	if err != nil {
		openAI.failErr(w, err)
		return
	}
	wts := e.Weights()
	var prompt []int
	var img *ImagePrompt
	imgs, err := openaiImages(wts, e.Name, req.Messages)
	var pixels []float32
	if err == nil {
		pixels, err = imagePrompt(wts, e.Name, imgs)
	}
	switch {
	case err != nil:
	case wts.VLM != nil && (spec != nil || hasToolMessages(req.Messages)):
		err = badRequest("model %s is a vision-language model; golem serve takes no tools for it", e.Name)
	case spec != nil || hasToolMessages(req.Messages):
		var tms []tokenizer.ToolMessage
		if tms, err = toolMessages(req.Messages); err == nil {
			prompt, err = toolPrompt(wts, tms, spec)
		}
	default:
		msgs := make([]tokenizer.Message, len(req.Messages))
		for i, m := range req.Messages {
			msgs[i] = tokenizer.Message{Role: m.Role, Content: m.Content.String()}
			if wts.VLM != nil {
				msgs[i].Content = m.Content.vlmText()
			}
		}
		if wts.VLM != nil {
			prompt, img, err = vlmPrompt(wts, msgs, pixels)
		} else {
			prompt, err = chatPrompt(wts, msgs)
		}
	}
	if err != nil {
		openAI.failErr(w, err)
		return
	}
	lp, err := chatLogprobs(req.Logprobs, req.TopLogprobs)
	if err != nil {
		openAI.failErr(w, err)
		return
	}
	g, err := newImageGen(e, wts, img, prompt, req.params(), 1)
	if err == nil {
		err = g.format(&req.openaiCommon)
	}
	if err == nil && spec != nil {
		if spec.forced != nil && req.ResponseFormat != nil && req.ResponseFormat.Type != "text" {
			err = &fieldError{"response_format", `"response_format" and a forced tool call ("tool_choice" "required" or a function) cannot both constrain the answer`}
		}
		g.useTools(spec)
	}
	if err != nil {
		openAI.failErr(w, err)
		return
	}
	g.setLogprobs(lp)
	s.openaiRun(w, r, g, &req.openaiCommon, true)
}

// openaiCompletions answers POST /v1/completions.
func (s *Server) openaiCompletions(w http.ResponseWriter, r *http.Request) {
	var req struct {
		openaiCommon
		Prompt   json.RawMessage `json:"prompt"`
		Logprobs *int            `json:"logprobs"`
		Echo     bool            `json:"echo"`
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
	prompt, err := completionPrompt(wts, req.Prompt)
	if err != nil {
		openAI.failErr(w, err)
		return
	}
	lp, err := completionLogprobs(req.Logprobs, req.Echo)
	if err != nil {
		openAI.failErr(w, err)
		return
	}
	params := req.params()
	params.ZeroMax = req.Echo // max_tokens 0: only the prompt, scored
	g, err := newGen(e, wts, prompt, params, 1)
	if err == nil {
		err = g.format(&req.openaiCommon)
	}
	if err != nil {
		openAI.failErr(w, err)
		return
	}
	g.setLogprobs(lp)
	s.openaiRun(w, r, g, &req.openaiCommon, false)
}

// openaiRun generates and answers, streamed as server-sent events or whole.
func (s *Server) openaiRun(w http.ResponseWriter, r *http.Request, g *genRequest, c *openaiCommon, chat bool) {
	id, created := newID("cmpl-"), time.Now().Unix()
	object := "text_completion"
	if chat {
		id, object = newID("chatcmpl-"), "chat.completion"
	}
	if chat && c.Stream && g.tools != nil {
		s.openaiToolStream(w, r, g, c, id, object+".chunk", created)
		return
	}
	echo, echoLPs, err := g.echoed(r.Context())
	if err != nil {
		if r.Context().Err() == nil {
			openAI.failErr(w, err)
		}
		return
	}
	lpw := newLPWriter(g.w.Tok, chat, g.n)
	if !c.Stream {
		texts, reasons, tokens, err := g.collect(r.Context())
		if err != nil {
			if r.Context().Err() == nil {
				openAI.failErr(w, err)
			}
			return
		}
		choices := make([]map[string]any, g.n)
		for i := range choices {
			choices[i] = map[string]any{"index": i, "finish_reason": reasons[i], "logprobs": nil}
			if g.lp.on {
				choices[i]["logprobs"] = lpw.json(i, append(echoLPs[:len(echoLPs):len(echoLPs)], g.got[i]...))
			}
			if chat && g.tools != nil {
				choices[i]["message"], choices[i]["finish_reason"] = g.tools.openaiMessage(texts[i], reasons[i])
			} else if chat {
				choices[i]["message"] = map[string]any{"role": "assistant", "content": texts[i], "refusal": nil}
			} else {
				choices[i]["text"] = echo + texts[i]
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": object, "created": created, "model": g.e.Name,
			"choices": choices, "usage": newUsage(g.promptTokens(), tokens), "system_fingerprint": "golem"})
		return
	}
	ch, err := g.start(r.Context())
	if err != nil {
		openAI.failErr(w, err)
		return
	}
	object += ".chunk"
	if !chat {
		object = "text_completion"
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(v any) bool {
		b, _ := json.Marshal(v)
		if _, err := w.Write(append(append([]byte("data: "), b...), '\n', '\n')); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	chunk := func(i int, delta map[string]any, text string, reason any) map[string]any {
		choice := map[string]any{"index": i, "finish_reason": reason, "logprobs": nil}
		if chat {
			choice["delta"] = delta
		} else {
			choice["text"] = text
		}
		return map[string]any{"id": id, "object": object, "created": created, "model": g.e.Name,
			"system_fingerprint": "golem", "choices": []any{choice}}
	}
	// A token's chunk, the one sent most, is written from a template:
	// the same JSON as chunk's, without building and sorting maps.
	tmpl := deltaTemplate(id, object, g.e.Name, created, chat)
	var buf []byte
	sendDelta := func(i int, delta string) bool {
		buf = tmpl.append(buf[:0], i, delta)
		if _, err := w.Write(buf); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// A token's chunk with its log-probabilities.
	sendLP := func(i int, delta string, lps []tokenLP) bool {
		c := chunk(i, map[string]any{"content": delta}, delta, nil)
		c["choices"].([]any)[0].(map[string]any)["logprobs"] = lpw.json(i, lps)
		return send(c)
	}
	if chat {
		for i := 0; i < g.n; i++ {
			if !send(chunk(i, map[string]any{"role": "assistant", "content": ""}, "", nil)) {
				return
			}
		}
	}
	if g.lp.echo {
		for i := 0; i < g.n; i++ {
			if g.lp.on && !sendLP(i, echo, echoLPs) || !g.lp.on && !sendDelta(i, echo) {
				return
			}
		}
	}
	total, left := 0, g.n
	for left > 0 {
		var ev choiceEvent
		select {
		case ev = <-ch:
		case <-r.Context().Done():
			return
		}
		if ev.err != nil {
			send(map[string]any{"error": map[string]any{"message": ev.err.Error(), "type": "server_error", "param": nil, "code": nil}})
			return
		}
		switch {
		case g.lp.on && len(ev.lps) > 0:
			if !sendLP(ev.index, ev.delta, ev.lps) {
				return
			}
		case ev.delta != "" && !sendDelta(ev.index, ev.delta):
			return
		}
		if ev.done {
			total += ev.tokens
			left--
			if !send(chunk(ev.index, map[string]any{}, "", ev.reason)) {
				return
			}
		}
	}
	if c.StreamOptions != nil && c.StreamOptions.IncludeUsage {
		u := newUsage(g.promptTokens(), total)
		if !send(map[string]any{"id": id, "object": object, "created": created, "model": g.e.Name, "choices": []any{}, "usage": u}) {
			return
		}
	}
	w.Write([]byte("data: [DONE]\n\n"))
	rc.Flush()
}

// chunkTemplate is a streamed token's chunk, as json.Marshal writes the map
// of openaiRun's chunk (keys sorted), cut around its two variable parts:
// the choice's index and its text.
type chunkTemplate struct {
	chat bool
	rest []byte // the keys after "choices"
}

func deltaTemplate(id, object, model string, created int64, chat bool) chunkTemplate {
	str := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	rest := fmt.Sprintf(`"created":%d,"id":%s,"model":%s,"object":%s,"system_fingerprint":"golem"}`, created, str(id), str(model), str(object))
	return chunkTemplate{chat: chat, rest: []byte(rest)}
}

// append appends the SSE event of choice i's delta text to b.
func (t chunkTemplate) append(b []byte, i int, delta string) []byte {
	text, _ := json.Marshal(delta)
	if t.chat {
		b = append(b, `data: {"choices":[{"delta":{"content":`...)
		b = append(b, text...)
		b = append(b, `},"finish_reason":null,"index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"logprobs":null}],`...)
	} else {
		b = append(b, `data: {"choices":[{"finish_reason":null,"index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"logprobs":null,"text":`...)
		b = append(b, text...)
		b = append(b, `}],`...)
	}
	b = append(b, t.rest...)
	return append(b, '\n', '\n')
}
