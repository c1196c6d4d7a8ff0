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
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"reflect"
	"sort"
	"strings"
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
	// SecureCookies marks the session cookie Secure (behind HTTPS).
	SecureCookies bool
	// Logf logs server events (default log.Printf).
	Logf func(format string, args ...any)
}

// Server answers the APIs and the web app. It is an http.Handler.
type Server struct {
	opts    Options
	engines map[string]*Engine
	names   []string // model ids in order
	store   *store.Store
	mux     *http.ServeMux
}

// New returns a server over engines (at least one) and st (the web app's
// accounts and labels; nil serves the APIs only).
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
	s := &Server{opts: o, engines: map[string]*Engine{}, store: st, mux: http.NewServeMux()}
	for _, e := range engines {
		s.engines[e.Name] = e
		s.names = append(s.names, e.Name)
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
	m.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		openAI.fail(w, http.StatusNotFound, "not_found", "unknown endpoint %s %s", r.Method, r.URL.Path)
	})
	// Ollama.
	m.HandleFunc("GET /api/tags", s.apiAuth(ollama, s.ollamaTags))
	m.HandleFunc("GET /api/version", s.ollamaVersion)
	m.HandleFunc("POST /api/show", s.apiAuth(ollama, s.ollamaShow))
	m.HandleFunc("POST /api/chat", s.apiAuth(ollama, s.ollamaChat))
	m.HandleFunc("POST /api/generate", s.apiAuth(ollama, s.ollamaGenerate))
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		ollama.fail(w, http.StatusNotFound, "", "unknown endpoint %s %s", r.Method, r.URL.Path)
	})
	s.webRoutes()
}

// ServeHTTP answers one request. A panic in a handler becomes a 500 and
// the server goes on.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.opts.Logf("serve: %s %s: internal error: %v", r.Method, r.URL.Path, v)
			http.Error(w, `{"error":"internal error"}`, http.StatusInternalServerError)
		}
	}()
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

// Engine returns the engine serving model id.
func (s *Server) Engine(id string) (*Engine, bool) {
	e, ok := s.engines[id]
	return e, ok
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
	msg := fmt.Sprintf(format, args...)
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
		body = map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": code}}
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

// apiAuth wraps an API handler with the API key check.
func (s *Server) apiAuth(a apiStyle, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.APIKey != "" && !s.apiKeyOK(r) {
			if _, ok := s.sessionFor(r, true); !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="golem"`)
				a.fail(w, http.StatusUnauthorized, "", "missing or wrong API key: send the header \"Authorization: Bearer KEY\"")
				return
			}
		}
		h(w, r)
	}
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
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		a.fail(w, http.StatusRequestEntityTooLarge, "request_too_large", "request body larger than %d bytes", limit)
		return nil, false
	case err != nil:
		a.fail(w, http.StatusBadRequest, "", "reading the request body: %v", err)
		return nil, false
	case !utf8.Valid(b):
		a.fail(w, http.StatusBadRequest, "", "request body is not valid UTF-8 (at byte %d)", invalidUTF8At(b))
		return nil, false
	}
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

// unmarshal decodes one JSON object and words errors for people.
func unmarshal(b []byte, v any) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return errors.New("empty request body; send a JSON object")
	}
	if b[0] != '{' {
		return errors.New("the request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return fmt.Errorf("%q: expected %s, got %s", jsonPath(reflect.TypeOf(v), te.Field), kindName(te.Type), jsonValue(te.Value))
		case errors.As(err, &te):
			return fmt.Errorf("expected %s, got %s", kindName(te.Type), jsonValue(te.Value))
		case errors.As(err, &se):
			return fmt.Errorf("malformed JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			return errors.New("malformed JSON: unexpected end of the body")
		}
		return fmt.Errorf("bad request: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("malformed JSON: more than one value in the body")
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
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == name || tag == "" && strings.EqualFold(f.Name, name) {
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
