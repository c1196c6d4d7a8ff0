// Package serve is golem's server: an OpenAI- and Ollama-compatible HTTP API
// over continuously batched models (Engine), and the embedded web app where
// people chat with the models, write demonstrations and rank answers, kept
// in a store.Store.
//
//	srv := serve.New([]*serve.Engine{e}, st, serve.Options{})
//	http.ListenAndServe("127.0.0.1:8080", srv)
//
// Every error is answered in the shape its API uses: OpenAI's
// {"error": {"message", "type", "param", "code"}} under /v1, Ollama's
// {"error": "..."} under /api, and {"error": "..."} in the web app's JSON.
package serve

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/golem-ml/golem/store"
)

// Options configure a Server. The zero value serves without an API key.
type Options struct {
	// APIKey, when set, is required as "Authorization: Bearer KEY" on the
	// OpenAI and Ollama APIs (a logged-in web app session also passes).
	APIKey string
	// MaxBody is the largest request body in bytes (default 8 MiB); prompt
	// imports may be 8 times larger.
	MaxBody int64
	// SessionTTL is how long a web app login lasts (default 12 h).
	SessionTTL time.Duration
	// SecureCookies marks the session cookie Secure (behind HTTPS); it is
	// Secure anyway on a TLS connection.
	SecureCookies bool
	// Logf logs server events (default log.Printf).
	Logf func(format string, args ...any)
	// LogRequest receives each request's log line once it is answered
	// (default: its Text through Logf).
	LogRequest func(RequestLog)

	// BodyTimeout is how long a request's body may take to arrive (default
	// 30 s); a client that stalls mid-body gets a 408 and is disconnected.
	BodyTimeout time.Duration
	// WriteTimeout is how long one write of an answer may block (default
	// 60 s): a client that stops reading is disconnected, while a stream
	// that makes progress lives as long as it needs.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle for this long
	// (default 60 s); see HTTPServer.
	IdleTimeout time.Duration
	// BodyMemory bounds the bytes of the request bodies being read and
	// handled at once (default 8 x MaxBody, the largest import). A body
	// that does not fit now is a 429 with Retry-After, before it is read.
	BodyMemory int64

	// HostCheck answers only requests whose Host is localhost, 127.0.0.1
	// or [::1] (any port) or ListenAddr, against DNS rebinding: Run sets it
	// on a loopback address without an API key.
	HostCheck  bool
	ListenAddr string

	// Lenient lets the APIs ignore request fields golem does not support
	// (by default a 400 names them); fields of features golem does not
	// have yet (logprobs, images, ...) are refused
	// even so.
	Lenient bool

	// CORSOrigins are origins (scheme://host[:port], or "*") whose pages
	// may call the OpenAI and Ollama APIs from a browser, besides those on
	// localhost, 127.0.0.1 and [::1], which always may (see CheckOrigin).
	CORSOrigins []string

	// Models are model folders served besides New's engines, loaded on
	// their first request with Load (LoadWeights on the server's backend)
	// into an engine sized by Engine. Without Load, New's engines stay
	// loaded for ever and no other model is served.
	Models []ModelSpec
	Load   func(dir string) (*Weights, error)
	Engine EngineOptions
	// KeepAlive is how long a model stays loaded after its last request
	// (0 takes DefaultKeepAlive, 5 minutes; negative: for ever; 1ns
	// unloads it as soon as it is idle). A request's Ollama keep_alive
	// replaces it for that model.
	KeepAlive time.Duration
	// Watch, when positive, is how often each loaded model's folder is
	// checked for a new checkpoint (see Engine.Watch).
	Watch time.Duration

	// EmbedPool is how the embedding endpoints pool a text's final hidden
	// states: PoolMean over its tokens (the default) or PoolLast, the last
	// token's.
	EmbedPool string
}

// Server answers the APIs and the web app. It is an http.Handler.
type Server struct {
	opts      Options
	models    map[string]*model
	names     []string // model ids in order
	closing   chan struct{}
	closeOnce sync.Once
	store     *store.Store
	mux       *http.ServeMux
	bodies    budget // request body bytes being handled
	digests   digests
	logins    loginLimiter
}

// New returns a server over engines (loaded models) and Options.Models
// (loaded on first use; at least one model in all), and st (the web app's
// accounts and labels; nil serves the APIs only). Close unloads them.
func New(engines []*Engine, st *store.Store, o Options) *Server {
	if o.MaxBody <= 0 {
		o.MaxBody = 8 << 20
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	if o.Logf == nil {
		o.Logf = log.Printf
	}
	if o.LogRequest == nil {
		logf := o.Logf
		o.LogRequest = func(l RequestLog) { logf("%s", l.Text()) }
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = 30 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 60 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Second
	}
	if o.BodyMemory <= 0 {
		o.BodyMemory = 8 * o.MaxBody
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	s := &Server{opts: o, models: map[string]*model{}, store: st, mux: http.NewServeMux(), closing: make(chan struct{})}
	s.bodies.max = o.BodyMemory
	for _, e := range engines {
		s.addModel(e.Name, e.Dir, e, s.infoOf(e.Weights(), false))
		// The digest (Ollama's tags and ps), ahead of the first listing.
		go s.digests.of(e.Weights())
	}
	for _, m := range o.Models {
		info, _ := folderInfo(m.Dir) // Run has checked it; a failure shows at the first load
		s.addModel(m.Name, m.Dir, nil, info)
	}
	s.routes()
	return s
}

func (s *Server) routes() {
	m := s.mux
	// OpenAI.
	m.HandleFunc("GET /v1/models", s.apiAuth(openAI, s.openaiModels))
	m.HandleFunc("GET /v1/models/{id...}", s.apiAuth(openAI, s.openaiModel))
	m.HandleFunc("POST /v1/chat/completions", s.apiAuth(openAI, s.openaiChat))
	m.HandleFunc("POST /v1/completions", s.apiAuth(openAI, s.openaiCompletions))
	m.HandleFunc("POST /v1/embeddings", s.apiAuth(openAI, s.openaiEmbeddings))
	m.HandleFunc("POST /v1/images/generations", s.apiAuth(openAI, s.openaiImages))
	m.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		openAI.fail(w, http.StatusNotFound, "not_found", "unknown endpoint %s %s", r.Method, r.URL.Path)
	})
	// Ollama.
	m.HandleFunc("GET /api/tags", s.apiAuth(ollama, s.ollamaTags))
	m.HandleFunc("GET /api/version", s.ollamaVersion)
	m.HandleFunc("POST /api/show", s.apiAuth(ollama, s.ollamaShow))
	m.HandleFunc("POST /api/chat", s.apiAuth(ollama, s.ollamaChat))
	m.HandleFunc("POST /api/generate", s.apiAuth(ollama, s.ollamaGenerate))
	m.HandleFunc("GET /api/ps", s.apiAuth(ollama, s.ollamaPs))
	for _, p := range []string{"POST /api/pull", "POST /api/push", "POST /api/create", "POST /api/copy", "DELETE /api/delete"} {
		m.HandleFunc(p, s.apiAuth(ollama, s.ollamaNoModels))
	}
	m.HandleFunc("POST /api/embed", s.apiAuth(ollama, s.ollamaEmbed(false)))
	m.HandleFunc("POST /api/embeddings", s.apiAuth(ollama, s.ollamaEmbed(true)))
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		ollama.fail(w, http.StatusNotFound, "", "unknown endpoint %s %s", r.Method, r.URL.Path)
	})
	s.webRoutes()
}

// HTTPServer returns an http.Server for s with its connection timeouts:
// 10 s for the headers, Options.IdleTimeout between keep-alive requests.
// The body and the answer are bounded per request by ServeHTTP instead
// (Options.BodyTimeout and WriteTimeout), so that long streams live.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: s.opts.IdleTimeout, MaxHeaderBytes: 64 << 10}
}

// ServeHTTP answers one request. A panic in a handler becomes a 500 and
// the server goes on.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	rec := &reqRecord{start: time.Now(), id: newID("")[:16]}
	tw := &timedWriter{ResponseWriter: rw, rc: http.NewResponseController(rw), d: s.opts.WriteTimeout}
	var w http.ResponseWriter = tw
	defer func() {
		status := tw.status
		switch {
		case status == 0 && r.Context().Err() != nil:
			status = 499 // the client went away before an answer (nginx's code)
		case status == 0:
			status = http.StatusOK // what net/http sends for an empty answer
		}
		s.opts.LogRequest(rec.log(r, status))
	}()
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.opts.Logf("serve: %s %s: internal error: %v", r.Method, r.URL.Path, v)
			http.Error(w, `{"error":"internal error"}`, http.StatusInternalServerError)
		}
	}()
	r = r.WithContext(context.WithValue(r.Context(), recordKey{}, rec))
	defer s.releaseHeld(rec) // the models the request used, once it is answered
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Request-Id", rec.id)
	a := styleOf(r.URL.Path)
	if s.opts.HostCheck && !s.hostOK(r.Host) {
		a.fail(w, http.StatusForbidden, "", "Host %q is not this server's: without an API key it answers only localhost, 127.0.0.1 and [::1] (against DNS rebinding); use one of them, or start it with --api-key", r.Host)
		return
	}
	// CORS after the Host check (a page reaching a keyless loopback server
	// through a rebound DNS name is refused above, preflight or not), and
	// before the API key and JSON checks: a preflight carries neither.
	if a != web && s.cors(a, w, r) {
		return
	}
	tw.extend()
	defer tw.extend() // for what the server writes after the handler
	if r.Body != nil && r.Body != http.NoBody {
		tw.rc.SetReadDeadline(time.Now().Add(s.opts.BodyTimeout))
		// Admission: a body is paid for out of the budget before it is
		// read, and until its request is answered (what it parses into
		// lives as long).
		limit := s.bodyLimit(r)
		if r.ContentLength > limit {
			a.fail(tw, http.StatusRequestEntityTooLarge, "request_too_large", "request body of %d bytes is larger than %d bytes", r.ContentLength, limit)
			return
		}
		n := limit
		if r.ContentLength >= 0 {
			n = r.ContentLength
		}
		t, ok := s.bodies.take(n)
		if !ok {
			a.fail(tw, http.StatusTooManyRequests, "", "the server is reading too many request bodies at once (%d MiB); try again shortly", s.bodies.max>>20)
			return
		}
		defer t.release()
		r = r.WithContext(context.WithValue(r.Context(), ticketKey{}, t))
	}
	s.mux.ServeHTTP(tw, r)
}

// styleOf is the API a path belongs to.
func styleOf(path string) apiStyle {
	switch {
	case strings.HasPrefix(path, "/v1/"):
		return openAI
	case strings.HasPrefix(path, "/api/"):
		return ollama
	}
	return web
}

// bodyLimit is the largest body r may have: MaxBody, 8 times more for a
// prompt import.
func (s *Server) bodyLimit(r *http.Request) int64 {
	if r.URL.Path == importPath {
		return 8 * s.opts.MaxBody
	}
	return s.opts.MaxBody
}

// hostOK reports whether host (a Host header) names this server on
// loopback.
func (s *Server) hostOK(host string) bool {
	if strings.EqualFold(host, s.opts.ListenAddr) {
		return true
	}
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	switch strings.ToLower(h) {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}

// timedWriter gives each write of an answer WriteTimeout to complete: a
// client that stops reading is cut off, a stream that goes on is not.
// It keeps the status for the request log.
type timedWriter struct {
	http.ResponseWriter
	rc     *http.ResponseController
	d      time.Duration
	status int
}

func (t *timedWriter) extend() { t.rc.SetWriteDeadline(time.Now().Add(t.d)) }

func (t *timedWriter) WriteHeader(status int) {
	if t.status == 0 && status >= 200 {
		t.status = status
	}
	t.ResponseWriter.WriteHeader(status)
}

func (t *timedWriter) Write(b []byte) (int, error) {
	if t.status == 0 {
		t.status = http.StatusOK
	}
	t.extend()
	return t.ResponseWriter.Write(b)
}

func (t *timedWriter) FlushError() error {
	t.extend()
	return t.rc.Flush()
}

func (t *timedWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// budget bounds a quantity taken and given back by concurrent requests.
type budget struct {
	mu        sync.Mutex
	used, max int64
}

// ticket is what one request took from a budget.
type ticket struct {
	b *budget
	n int64
}

type ticketKey struct{}

// take takes n from the budget, if it has that much left.
func (b *budget) take(n int64) (*ticket, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return nil, false
	}
	b.used += n
	return &ticket{b, n}, true
}

// shrink gives back what the ticket holds beyond n.
func (t *ticket) shrink(n int64) {
	t.b.mu.Lock()
	defer t.b.mu.Unlock()
	if n < t.n {
		t.b.used -= t.n - n
		t.n = n
	}
}

func (t *ticket) release() { t.shrink(0) }

// Engine returns the engine serving model id, if it is loaded.
func (s *Server) Engine(id string) (*Engine, bool) {
	m, ok := s.models[id]
	if !ok {
		return nil, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.e, m.e != nil
}

// apiStyle is one API's way of saying what went wrong.
type apiStyle int

const (
	openAI apiStyle = iota
	ollama
	web
)

// fail writes an error in the API's shape. kind is OpenAI's error type or
// code ("invalid_request_error", "context_length_exceeded", ...).
func (a apiStyle) fail(w http.ResponseWriter, status int, kind, format string, args ...any) {
	a.failParam(w, status, kind, "", fmt.Sprintf(format, args...))
}

// failParam is fail naming the request field at fault (OpenAI's "param").
func (a apiStyle) failParam(w http.ResponseWriter, status int, kind, param, msg string) {
	var body any
	switch a {
	case openAI:
		typ, code := "invalid_request_error", any(nil)
		switch status {
		case http.StatusUnauthorized:
			typ, code = "invalid_request_error", "invalid_api_key"
		case http.StatusTooManyRequests:
			typ, code = "rate_limit_exceeded", "rate_limit_exceeded"
		case http.StatusNotFound:
			code = "model_not_found"
		}
		if status >= 500 {
			typ = "server_error"
		}
		if kind != "" {
			code = kind
		}
		var p any
		if param != "" {
			p = param
		}
		body = map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": p, "code": code}}
	default:
		body = map[string]string{"error": msg}
	}
	if status == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error: cannot encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// apiAuth wraps an API handler with the API key check, and requires JSON
// on a POST: a web page can send another site a form or text/plain POST
// without asking, but not an application/json one.
func (s *Server) apiAuth(a apiStyle, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.APIKey != "" && !s.apiKeyOK(r) {
			if _, ok := s.sessionFor(r, true); !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="golem"`)
				a.fail(w, http.StatusUnauthorized, "", "missing or wrong API key: send the header \"Authorization: Bearer KEY\"")
				return
			}
		}
		if r.Method == http.MethodPost && !isJSON(r.Header.Get("Content-Type")) {
			a.fail(w, http.StatusUnsupportedMediaType, "", "Content-Type %q is not application/json: send the header \"Content-Type: application/json\" (curl: -H 'Content-Type: application/json')", r.Header.Get("Content-Type"))
			return
		}
		h(w, r)
	}
}

// isJSON reports whether a Content-Type is application/json.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// apiKeyOK reports whether the request carries the API key. The scheme
// "Bearer" is case-insensitive (RFC 9110 section 11.1).
func (s *Server) apiKeyOK(r *http.Request) bool {
	scheme, key, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(key)), []byte(s.opts.APIKey)) == 1
}

// readBody reads a request body of at most limit bytes and checks it is
// valid UTF-8. On failure it has answered the request and returns false.
func readBody(a apiStyle, w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	b, ok := readBytes(a, w, r, limit)
	if ok && !utf8.Valid(b) {
		a.fail(w, http.StatusBadRequest, "", "request body is not valid UTF-8 (at byte %d)", invalidUTF8At(b))
		return nil, false
	}
	return b, ok
}

// readBytes is readBody for a body of any bytes (an upload of images).
func readBytes(a apiStyle, w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	var b []byte
	var err error
	if r.ContentLength > 0 && r.ContentLength <= limit {
		// One allocation of the announced size, not ReadAll's growing
		// copies.
		b = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, b)
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
	} else {
		b, err = io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	}
	if t, ok := r.Context().Value(ticketKey{}).(*ticket); ok && err == nil {
		t.shrink(int64(len(b)))
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		a.fail(w, http.StatusRequestEntityTooLarge, "request_too_large", "request body larger than %d bytes", limit)
		return nil, false
	case errors.Is(err, os.ErrDeadlineExceeded):
		a.fail(w, http.StatusRequestTimeout, "", "the request body did not arrive in time: read %d bytes", len(b))
		return nil, false
	case err != nil:
		a.fail(w, http.StatusBadRequest, "", "reading the request body: %v", err)
		return nil, false
	}
	// The body is in: no deadline on reading the connection while the
	// answer is made (net/http watches it for the client going away).
	http.NewResponseController(w).SetReadDeadline(time.Time{})
	return b, true
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// decodeJSON reads the body as one JSON object into v. On failure it has
// answered the request and returns false.
func (s *Server) decodeJSON(a apiStyle, w http.ResponseWriter, r *http.Request, v any) bool {
	b, ok := readBody(a, w, r, s.opts.MaxBody)
	if !ok {
		return false
	}
	if err := unmarshal(b, v); err != nil {
		a.fail(w, http.StatusBadRequest, "", "%v", err)
		return false
	}
	return true
}

// decodeAPI is decodeJSON for the OpenAI and Ollama APIs: a field golem
// does not use is a 400 naming it (see checkFields).
func (s *Server) decodeAPI(a apiStyle, w http.ResponseWriter, r *http.Request, v any) bool {
	b, ok := readBody(a, w, r, s.opts.MaxBody)
	if !ok {
		return false
	}
	err := unmarshal(b, v)
	if err == nil {
		rules := openaiFields
		if a == ollama {
			rules = ollamaFields
		}
		err = checkFields(b, v, rules, s.opts.Lenient)
	}
	var fe *fieldError
	if errors.As(err, &fe) {
		a.failParam(w, http.StatusBadRequest, "", fe.path, fe.msg)
		return false
	}
	if err != nil {
		a.fail(w, http.StatusBadRequest, "", "%v", err)
		return false
	}
	return true
}

// unmarshal decodes one JSON object and words errors for people.
func unmarshal(b []byte, v any) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return errors.New("empty request body; send a JSON object")
	}
	if b[0] != '{' {
		return errors.New("the request body must be a JSON object")
	}
	// json.Unmarshal, not a Decoder: no second copy of a big body.
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return fmt.Errorf("%q: expected %s, got %s", jsonPath(reflect.TypeOf(v), te.Field), kindName(te.Type), jsonValue(te.Value))
		case errors.As(err, &te):
			return fmt.Errorf("expected %s, got %s", kindName(te.Type), jsonValue(te.Value))
		case errors.As(err, &se) && strings.Contains(se.Error(), "after top-level value"):
			return errors.New("malformed JSON: more than one value in the body")
		case errors.As(err, &se) && strings.Contains(se.Error(), "unexpected end of JSON input"):
			return errors.New("malformed JSON: unexpected end of the body")
		case errors.As(err, &se):
			return fmt.Errorf("malformed JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
		}
		if !strings.HasPrefix(err.Error(), "json: ") {
			return err // a field's own words (stopList, chatContent, keepAlive)
		}
		return fmt.Errorf("bad request: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// jsonPath rewrites encoding/json's path of a field ("openaiCommon.seed",
// Go names of embedded structs included) as the client wrote it ("seed"),
// following t, the type decoded into.
func jsonPath(t reflect.Type, path string) string {
	var out []string
	for _, seg := range strings.Split(path, ".") {
		for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map) {
			t = t.Elem()
		}
		if t == nil || t.Kind() != reflect.Struct {
			out, t = append(out, seg), nil
			continue
		}
		f, ok := t.FieldByName(seg)
		if ok && f.Anonymous && f.Tag.Get("json") == "" {
			t = f.Type // an embedded struct: its fields are the parent's
			continue
		}
		out, t = append(out, seg), jsonField(t, seg)
	}
	return strings.Join(out, ".")
}

// jsonField returns the type of t's field whose JSON name is name, or nil.
func jsonField(t reflect.Type, name string) reflect.Type {
	for _, f := range reflect.VisibleFields(t) {
		if f.Anonymous || !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		// encoding/json matches names case-insensitively.
		if strings.EqualFold(tag, name) || tag == "" && strings.EqualFold(f.Name, name) {
			return f.Type
		}
	}
	return nil
}

// kindName words a Go type as the JSON a client should send.
func kindName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	}
	return "another value"
}

// jsonValue words encoding/json's description of a value ("string",
// "number 1.5", "array").
func jsonValue(v string) string {
	switch {
	case v == "array" || v == "object":
		return "an " + v
	case strings.HasPrefix(v, "number"):
		return "a " + v
	case v == "bool":
		return "true or false"
	}
	return "a " + v
}

// newID returns a random id with prefix.
func newID(prefix string) string {
	b := make([]byte, 12)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// modelNames lists the served model ids, sorted.
func (s *Server) modelNames() []string {
	n := append([]string(nil), s.names...)
	sort.Strings(n)
	return n
}
