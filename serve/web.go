package serve

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golem-ml/golem/generate/imagine"
	"github.com/golem-ml/golem/model/dalle"
	"github.com/golem-ml/golem/store"
	"github.com/golem-ml/golem/tokenizer"
)

//go:embed web
var webFiles embed.FS

// importPath is where the admin posts prompts to import.
const importPath = "/app/api/admin/prompts"

// sessionCookie names the web app's login cookie.
const sessionCookie = "golem_session"

func (s *Server) webRoutes() {
	m := s.mux
	static, _ := fs.Sub(webFiles, "web")
	files := http.FileServerFS(static)
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFileFS(w, r, static, "index.html")
	})
	m.Handle("GET /static/", http.StripPrefix("/static/", files))
	m.HandleFunc("GET /app/api/models", s.webAuth(false, s.webModels))
	m.HandleFunc("POST /app/api/chat/fit", s.webAuth(false, s.webChatFit))
	if s.store == nil {
		m.HandleFunc("/app/api/", func(w http.ResponseWriter, r *http.Request) {
			web.fail(w, http.StatusNotFound, "", "this server has no database (start it with --db)")
		})
		return
	}
	m.HandleFunc("POST /app/api/login", s.webLogin)
	m.HandleFunc("POST /app/api/logout", s.webLogout)
	m.HandleFunc("GET /app/api/me", s.webAuth(false, s.webMe))
	m.HandleFunc("GET /app/api/flags", s.webAuth(false, func(w http.ResponseWriter, r *http.Request, _ store.Session) {
		writeJSON(w, http.StatusOK, map[string]any{"flags": store.Flags, "max_k": store.MaxK})
	}))
	m.HandleFunc("GET /app/api/guidelines", s.webAuth(false, s.webGuidelines))
	m.HandleFunc("PUT /app/api/admin/guidelines", s.webAuth(true, s.webSetGuidelines))
	m.HandleFunc("GET "+importPath, s.webAuth(true, s.webPrompts))
	m.HandleFunc("GET /app/api/next", s.webAuth(false, s.webNext))
	m.HandleFunc("GET /app/api/images/{sha256}", s.webAuth(false, s.webImage))
	m.HandleFunc("POST /app/api/samples", s.webAuth(false, s.webSamples))
	m.HandleFunc("POST /app/api/skips", s.webAuth(false, s.webSkip))
	m.HandleFunc("GET /app/api/labels", s.webAuth(false, s.webLabels))
	m.HandleFunc("GET /app/api/progress", s.webAuth(false, s.webProgress))
	m.HandleFunc("POST /app/api/demonstrations", s.webAuth(false, s.webAddDemonstration))
	m.HandleFunc("GET /app/api/demonstrations/{id}", s.webAuth(false, s.webDemonstration))
	m.HandleFunc("PUT /app/api/demonstrations/{id}", s.webAuth(false, s.webUpdateDemonstration))
	m.HandleFunc("DELETE /app/api/demonstrations/{id}", s.webAuth(false, s.webDeleteDemonstration))
	m.HandleFunc("POST /app/api/rankings", s.webAuth(false, s.webAddRanking))
	m.HandleFunc("GET /app/api/rankings/{id}", s.webAuth(false, s.webRanking))
	m.HandleFunc("PUT /app/api/rankings/{id}", s.webAuth(false, s.webUpdateRanking))
	m.HandleFunc("DELETE /app/api/rankings/{id}", s.webAuth(false, s.webDeleteRanking))
	m.HandleFunc("POST /app/api/generations", s.webAuth(false, s.webGenerate))
	m.HandleFunc("GET /app/api/generations/prompt", s.webAuth(false, s.webImagePrompt))
	m.HandleFunc("GET /app/api/imagepairs/next", s.webAuth(false, s.webNextImagePair))
	m.HandleFunc("POST /app/api/imagecomparisons", s.webAuth(false, s.webAddImageComparison))
	m.HandleFunc("POST "+importPath, s.webAuth(true, s.webImport))
	m.HandleFunc("GET /app/api/admin/export", s.webAuth(true, s.webExport))
	m.HandleFunc("GET /app/api/admin/users", s.webAuth(true, s.webUsers))
	m.HandleFunc("POST /app/api/admin/users", s.webAuth(true, s.webCreateUser))
	m.HandleFunc("POST /app/api/admin/users/{id}/password", s.webAuth(true, s.webSetPassword))
	m.HandleFunc("POST /app/api/admin/users/{id}/disabled", s.webAuth(true, s.webSetDisabled))
	m.HandleFunc("POST /app/api/password", s.webAuth(false, s.webChangePassword))
	m.HandleFunc("/app/api/", func(w http.ResponseWriter, r *http.Request) {
		web.fail(w, http.StatusNotFound, "", "unknown endpoint %s %s", r.Method, r.URL.Path)
	})
}

// EnsureAdmin creates the account "admin" when the store has no user yet.
// With password "" it generates one. It returns the password when it made
// the account, and "" when users already existed.
func EnsureAdmin(ctx context.Context, st *store.Store, password string) (string, error) {
	users, err := st.Users(ctx)
	if err != nil {
		return "", err
	}
	if len(users) > 0 {
		return "", nil
	}
	if password == "" {
		b := make([]byte, 15)
		rand.Read(b)
		password = base64.RawURLEncoding.EncodeToString(b)
	}
	if _, err := st.CreateUser(ctx, store.NewUser{Username: "admin", Name: "Administrator", Password: password, Role: store.RoleAdmin}); err != nil {
		return "", err
	}
	return password, nil
}

// sessionFor returns the request's live session. With csrf, a request that
// changes something must carry the session's token in X-CSRF-Token.
func (s *Server) sessionFor(r *http.Request, csrf bool) (store.Session, bool) {
	if s.store == nil {
		return store.Session{}, false
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return store.Session{}, false
	}
	sess, err := s.store.LookupSession(r.Context(), c.Value)
	if err != nil {
		return store.Session{}, false
	}
	if csrf && !safeMethod(r.Method) {
		got := r.Header.Get("X-CSRF-Token")
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRFToken)) != 1 {
			return store.Session{}, false
		}
	}
	return sess, true
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// webAuth wraps a web API handler: a live session, the CSRF token on every
// change, and the admin role when admin is set.
func (s *Server) webAuth(admin bool, h func(http.ResponseWriter, *http.Request, store.Session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if s.store == nil {
			h(w, r, store.Session{})
			return
		}
		sess, ok := s.sessionFor(r, false)
		if !ok {
			web.fail(w, http.StatusUnauthorized, "", "not logged in")
			return
		}
		if !safeMethod(r.Method) {
			got := r.Header.Get("X-CSRF-Token")
			if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRFToken)) != 1 {
				web.fail(w, http.StatusForbidden, "", "missing or wrong CSRF token (header X-CSRF-Token)")
				return
			}
		}
		if admin && sess.User.Role != store.RoleAdmin {
			web.fail(w, http.StatusForbidden, "", "only an admin may do this")
			return
		}
		h(w, r, sess)
	}
}

// storeFail answers a store error with its status.
func (s *Server) storeFail(w http.ResponseWriter, r *http.Request, err error) {
	msg := strings.TrimPrefix(err.Error(), "store: ")
	switch {
	case errors.Is(err, store.ErrInvalid):
		web.fail(w, http.StatusBadRequest, "", "%s", msg)
	case errors.Is(err, store.ErrNotFound):
		web.fail(w, http.StatusNotFound, "", "%s", msg)
	case errors.Is(err, store.ErrForbidden):
		web.fail(w, http.StatusForbidden, "", "%s", msg)
	case errors.Is(err, store.ErrConflict):
		web.fail(w, http.StatusConflict, "", "%s", msg)
	case errors.Is(err, store.ErrUnauthorized):
		web.fail(w, http.StatusUnauthorized, "", "%s", msg)
	case r.Context().Err() != nil:
		// The client is gone; nobody reads the answer.
	default:
		s.opts.Logf("serve: %s %s: %v", r.Method, r.URL.Path, err)
		web.fail(w, http.StatusInternalServerError, "", "database error")
	}
}

type userJSON struct {
	ID       int64      `json:"id"`
	Username string     `json:"username"`
	Name     string     `json:"name"`
	Role     store.Role `json:"role"`
	Disabled bool       `json:"disabled"`
}

func toUserJSON(u store.User) userJSON { return userJSON{u.ID, u.Username, u.Name, u.Role, u.Disabled} }

// sameOrigin rejects a cross-site request a browser sent (Origin differs
// from Host); requests without Origin (non-browser clients) pass.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// webLogin logs in. Failed logins are logged (account and address, never
// the password) and throttled per account and per address (429 with
// Retry-After); expired sessions are purged.
func (s *Server) webLogin(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		web.fail(w, http.StatusForbidden, "", "log in from the app (a same-origin JSON request)")
		return
	}
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if !s.decodeJSON(web, w, r, &req) {
		return
	}
	u, ok := s.checkLogin(w, r, req.Username, req.Password, http.StatusUnauthorized)
	if !ok {
		return
	}
	if n, err := s.store.DeleteExpiredSessions(r.Context()); err != nil {
		s.opts.Logf("serve: purge expired sessions: %v", err)
	} else if n > 0 {
		s.opts.Logf("serve: purged %d expired sessions", n)
	}
	s.startSession(w, r, u)
}

// checkLogin authenticates username and password, through the failed
// login limiter; a wrong password is answered with status wrong. On
// failure it has answered the request and returns false.
func (s *Server) checkLogin(w http.ResponseWriter, r *http.Request, username, password string, wrong int) (store.User, bool) {
	now := time.Now()
	acct, addr := accountKey(username), addressKey(r)
	if d := s.logins.wait(now, acct, addr); d > 0 {
		secs := int((d + time.Second - 1) / time.Second)
		s.opts.Logf("serve: login as %s from %s refused: too many failed logins, %d s to wait", logName(username), clientAddr(r), secs)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		web.fail(w, http.StatusTooManyRequests, "", "too many failed logins for this account or from this address; try again in %d s", secs)
		return store.User{}, false
	}
	u, err := s.store.Authenticate(r.Context(), username, password)
	switch {
	case errors.Is(err, store.ErrUnauthorized):
		n := s.logins.fail(now, acct, freeAccountFailures)
		s.logins.fail(now, addr, freeAddressFailures)
		s.opts.Logf("serve: failed login as %s from %s (%d in a row)", logName(username), clientAddr(r), n)
		web.fail(w, wrong, "", "wrong username or password")
		return store.User{}, false
	case errors.Is(err, store.ErrDisabled):
		s.opts.Logf("serve: login as %s from %s refused: the account is disabled", logName(username), clientAddr(r))
	case err == nil:
		s.logins.forget(acct)
		return u, true
	}
	s.storeFail(w, r, err)
	return store.User{}, false
}

// startSession logs u in: a new session, its cookie, and the CSRF token.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u store.User) {
	sess, err := s.store.CreateSession(r.Context(), u.ID, s.opts.SessionTTL)
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	http.SetCookie(w, s.cookie(r, sess.Token, sess.ExpiresAt))
	writeJSON(w, http.StatusOK, map[string]any{"user": toUserJSON(u), "csrf": sess.CSRFToken})
}

// cookie is the session cookie; an empty token deletes it. It is Secure
// with --secure-cookies (HTTPS in front) or on a TLS connection.
func (s *Server) cookie(r *http.Request, token string, expires time.Time) *http.Cookie {
	c := &http.Cookie{Name: sessionCookie, Value: token, Path: "/", HttpOnly: true,
		Secure: s.opts.SecureCookies || r.TLS != nil, SameSite: http.SameSiteStrictMode, Expires: expires}
	if token == "" {
		c.Expires, c.MaxAge = time.Time{}, -1
	}
	return c
}

func (s *Server) webLogout(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.sessionFor(r, true)
	if !ok {
		web.fail(w, http.StatusUnauthorized, "", "not logged in (or the CSRF token is missing)")
		return
	}
	if err := s.store.DeleteSession(r.Context(), sess.Token); err != nil {
		s.storeFail(w, r, err)
		return
	}
	http.SetCookie(w, s.cookie(r, "", time.Time{}))
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func (s *Server) webMe(w http.ResponseWriter, r *http.Request, sess store.Session) {
	writeJSON(w, http.StatusOK, map[string]any{"user": toUserJSON(sess.User), "csrf": sess.CSRFToken})
}

// chatMaxTokens is the answer length the chat page starts with: a quarter
// of the model's context, at least 16 tokens (and never all of it), so
// that a first message and a few turns of history fit beside it.
func chatMaxTokens(context int) int {
	return min(max(context/4, 16), max(context-1, 1))
}

type modelInfoJSON struct {
	Name      string `json:"name"`
	Context   int    `json:"context"`    // tokens the model sees at once, prompt and answer
	MaxTokens int    `json:"max_tokens"` // the chat page's default answer length
	Images    bool   `json:"images"`     // a text-to-image model (the Generate view's)
}

// webModels lists the served models (names, as before) and, in "info",
// each one's context and the chat page's default answer length.
func (s *Server) webModels(w http.ResponseWriter, r *http.Request, _ store.Session) {
	info := []modelInfoJSON{}
	for _, name := range s.names {
		cfg := s.infoFor(name).config
		info = append(info, modelInfoJSON{name, cfg.Context, chatMaxTokens(cfg.Context), cfg.Arch == dalle.ModelType})
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": s.names, "info": info, "max_images": imagine.MaxN})
}

// webChatFit trims a chat history to the model's context, as golem chat
// does (tokenizer.FitChat): the oldest exchanges go first, never a leading
// system message or the last message, until the rendered history and
// max_tokens of answer fit. The page sends what it answers to
// /v1/chat/completions.
func (s *Server) webChatFit(w http.ResponseWriter, r *http.Request, _ store.Session) {
	var req struct {
		Model     string              `json:"model"`
		Messages  []tokenizer.Message `json:"messages"`
		MaxTokens int                 `json:"max_tokens"`
	}
	if !s.decodeJSON(web, w, r, &req) {
		return
	}
	m, ok := s.models[req.Model]
	if !ok {
		web.fail(w, http.StatusNotFound, "model_not_found", "model %q is not served here (GET /app/api/models lists them)", req.Model)
		return
	}
	e, err := s.use(r.Context(), m)
	if err != nil {
		web.failErr(w, err)
		return
	}
	wts := e.Weights()
	ctx := wts.Context
	if req.MaxTokens < 1 || req.MaxTokens >= ctx {
		web.fail(w, http.StatusBadRequest, "", `"max_tokens" %d is not between 1 and %d (the context of %s is %d tokens)`, req.MaxTokens, ctx-1, req.Model, ctx)
		return
	}
	// chatPrompt checks the roles and the size as the chat endpoint does.
	if _, err := chatPrompt(wts, append([]tokenizer.Message(nil), req.Messages...)); err != nil {
		web.failErr(w, err)
		return
	}
	kept, ids, err := wts.Tok.FitChat(req.Messages, ctx-req.MaxTokens)
	if err != nil {
		web.fail(w, http.StatusBadRequest, "context_length_exceeded", "%v (%s: context %d, max_tokens %d); shorten it or lower Max tokens", err, req.Model, ctx, req.MaxTokens)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": kept, "dropped": len(req.Messages) - len(kept),
		"prompt_tokens": len(ids), "context": ctx})
}

// webGuidelines answers the admin's instructions for each task.
func (s *Server) webGuidelines(w http.ResponseWriter, r *http.Request, _ store.Session) {
	g, err := s.store.Guidelines(r.Context())
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"guidelines": g})
}

// webSetGuidelines replaces the guidelines of one task ("" removes them).
func (s *Server) webSetGuidelines(w http.ResponseWriter, r *http.Request, sess store.Session) {
	var req struct {
		Task string `json:"task"`
		Text string `json:"text"`
	}
	if !s.decodeJSON(web, w, r, &req) {
		return
	}
	task, err := parseTask(req.Task)
	if err != nil {
		web.fail(w, http.StatusBadRequest, "", "%v", err)
		return
	}
	if err := s.store.SetGuidelines(r.Context(), sess.User.ID, task, req.Text); err != nil {
		s.storeFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

type promptStatJSON struct {
	promptJSON
	Demonstrations int `json:"demonstrations"`
	Rankings       int `json:"rankings"`
	Comparisons    int `json:"comparisons"`
	Skips          int `json:"skips"`
}

// webPrompts lists the prompts, oldest first, with their label counts:
// ?offset= and ?limit= (at most 500, 100 by default) page through them.
func (s *Server) webPrompts(w http.ResponseWriter, r *http.Request, _ store.Session) {
	q := r.URL.Query()
	num := func(name string, def, most int) (int, bool) {
		v := q.Get(name)
		if v == "" {
			return def, true
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > most {
			web.fail(w, http.StatusBadRequest, "", "%s %q is not a whole number from 0 to %d", name, v, most)
			return 0, false
		}
		return n, true
	}
	offset, ok := num("offset", 0, 1<<30)
	if !ok {
		return
	}
	limit, ok := num("limit", 100, 500)
	if !ok {
		return
	}
	st, total, err := s.store.PromptStats(r.Context(), offset, limit)
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	out := []promptStatJSON{}
	for _, p := range st {
		out = append(out, promptStatJSON{toPromptJSON(p.Prompt), p.Demonstrations, p.Rankings, p.Comparisons, p.Skips})
	}
	writeJSON(w, http.StatusOK, map[string]any{"prompts": out, "total": total, "offset": offset})
}

func parseTask(v string) (store.Task, error) {
	switch t := store.Task(v); t {
	case store.TaskDemonstrate, store.TaskRank, store.TaskCompare:
		return t, nil
	}
	return "", fmt.Errorf("task %q is not %q, %q or %q", v, store.TaskDemonstrate, store.TaskRank, store.TaskCompare)
}

type promptJSON struct {
	ID       int64               `json:"id"`
	Messages []tokenizer.Message `json:"messages"`
	Source   string              `json:"source"`
	Image    string              `json:"image,omitempty"` // the URL of its image, when it has one
}

func toPromptJSON(p store.Prompt) promptJSON {
	return promptJSON{p.ID, p.Messages, p.Source, imageURL(p.Image)}
}

func (s *Server) webNext(w http.ResponseWriter, r *http.Request, sess store.Session) {
	task, err := parseTask(r.URL.Query().Get("task"))
	if err != nil {
		web.fail(w, http.StatusBadRequest, "", "%v", err)
		return
	}
	p, err := s.store.NextPrompt(r.Context(), sess.User.ID, task)
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(w, http.StatusOK, map[string]any{"prompt": nil})
		return
	}
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"prompt": toPromptJSON(p)})
}

// Sampling answers to rank. A model sure of its answer gives the same one
// again and again, and an annotator cannot rank one answer; so webSamples
// samples in rounds, each hotter than the last (rankTemps, and top-p 1
// after the first), until it has the K distinct answers asked for, has
// drawn rankTriesPerAnswer*K samples, or has sampled for rankBudget. It
// answers with the distinct answers it has: K, fewer (2 or more still make
// a ranking), or 0 or 1, which leave the annotator nothing to rank: the app
// says so and offers to skip the prompt (POST /app/api/skips), as Label
// Studio's and Argilla's annotators skip a task they cannot label.
var rankTemps = []float64{1, 1.3, 1.6, 2}

const (
	rankTriesPerAnswer = 8
	rankBudget         = 20 * time.Second
)

type answerJSON struct {
	Model   string `json:"model"`
	Content string `json:"content"`
}

// webSamples samples up to K distinct answers to a prompt from the served
// models, round-robin, for the annotator to rank.
func (s *Server) webSamples(w http.ResponseWriter, r *http.Request, sess store.Session) {
	var req struct {
		PromptID  int64 `json:"prompt_id"`
		K         int   `json:"k"`
		MaxTokens int   `json:"max_tokens"`
	}
	if !s.decodeJSON(web, w, r, &req) {
		return
	}
	if req.K < 2 || req.K > store.MaxK {
		web.fail(w, http.StatusBadRequest, "", `"k" %d is not between 2 and %d`, req.K, store.MaxK)
		return
	}
	if req.MaxTokens <= 0 {
		req.MaxTokens = 48
	}
	p, err := s.store.Prompt(r.Context(), req.PromptID)
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	var answers []answerJSON
	seen := map[string]bool{}
	tries, next, maxTries := 0, 0, rankTriesPerAnswer*req.K
	began := time.Now()
	for round := 0; len(answers) < req.K && tries < maxTries && (round == 0 || time.Since(began) < rankBudget); round++ {
		need := req.K - len(answers)
		n := need // the first round asks for what is missing; later ones for twice that
		if round > 0 {
			n = min(2*need, maxN, maxTries-tries)
		}
		temp, topP := rankTemps[min(round, len(rankTemps)-1)], 1.0
		if round == 0 {
			topP = 0.95
		}
		texts, names, err := s.sampleRound(r.Context(), p, next, n, req.MaxTokens, temp, topP)
		if errors.Is(err, errImagesNotServed) {
			writeJSON(w, http.StatusOK, map[string]any{"answers": []answerJSON{}, "requested": req.K, "tries": 0, "images_not_served": true})
			return
		}
		if err != nil {
			if r.Context().Err() == nil {
				web.failErr(w, err)
			}
			return
		}
		for i, t := range texts {
			// What annotators see is what is stored: a sampled answer is
			// made valid UTF-8 without NUL characters (which PostgreSQL
			// refuses).
			t = strings.ReplaceAll(strings.ToValidUTF8(t, "\uFFFD"), "\x00", "\uFFFD")
			key := strings.TrimSpace(t)
			if key == "" || seen[key] || len(answers) == req.K {
				continue
			}
			seen[key] = true
			answers = append(answers, answerJSON{names[i], t})
		}
		tries += n
		next += n
	}
	if answers == nil {
		answers = []answerJSON{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"answers": answers, "requested": req.K, "tries": tries})
}

// sampleRound samples n answers to p, answer i from the served model
// (first+i) mod the number of models that can answer p (every model that
// generates text; for a prompt with an image, the vision-language ones),
// each model's answers as one batch, the models at once. It returns the
// texts and the models' names in that order.
func (s *Server) sampleRound(ctx context.Context, p store.Prompt, first, n, maxTokens int, temp, topP float64) ([]string, []string, error) {
	type batch struct {
		g   *genRequest
		idx []int // the answers it gives
	}
	var engines []*Engine
	for _, name := range s.names {
		e, err := s.use(ctx, s.models[name])
		if err != nil {
			return nil, nil, err
		}
		if w := e.Weights(); w.Model != nil && (p.Image == "" || w.VLM != nil) {
			engines = append(engines, e)
		}
	}
	if len(engines) == 0 {
		if p.Image != "" {
			return nil, nil, errImagesNotServed
		}
		return nil, nil, badRequest("none of the served models generates text (a CLIP model only gives embeddings)")
	}
	var batches []batch
	names := make([]string, n)
	for m, e := range engines {
		var idx []int
		for i := range n {
			if (first+i)%len(engines) == m {
				idx = append(idx, i)
				names[i] = e.Name
			}
		}
		if len(idx) == 0 {
			continue
		}
		wts := e.Weights()
		prompt, img, err := s.annotationPrompt(ctx, wts, p)
		if err != nil {
			return nil, nil, err
		}
		used := len(prompt)
		if img != nil {
			used += img.positions(wts.VLM)
		}
		mt := min(maxTokens, wts.Context-used)
		if mt < 1 {
			return nil, nil, badRequest("prompt %d does not fit the context of %s", p.ID, e.Name)
		}
		count := len(idx)
		g, err := newImageGen(e, wts, img, prompt, sampleParams{Temperature: &temp, TopP: &topP, MaxTokens: &mt, N: &count}, 1)
		if err != nil {
			return nil, nil, err
		}
		g.s.MinTokens = 1
		batches = append(batches, batch{g, idx})
	}
	texts := make([]string, n)
	errs := make([]error, len(batches))
	var wg sync.WaitGroup
	for b, bt := range batches {
		wg.Go(func() {
			out, _, _, err := bt.g.collect(ctx)
			if err != nil {
				errs[b] = err
				return
			}
			for k, i := range bt.idx {
				texts[i] = out[k]
			}
		})
	}
	wg.Wait()
	return texts, names, errors.Join(errs...)
}

// webSkip records that the annotator skips a prompt for a task (a
// comparison's skip is a ranking's): GET /app/api/next does not offer it to
// them again there.
func (s *Server) webSkip(w http.ResponseWriter, r *http.Request, sess store.Session) {
	var req struct {
		PromptID int64  `json:"prompt_id"`
		Task     string `json:"task"`
		Reason   string `json:"reason"`
	}
	if !s.decodeJSON(web, w, r, &req) {
		return
	}
	task, err := parseTask(req.Task)
	if err != nil {
		web.fail(w, http.StatusBadRequest, "", "%v", err)
		return
	}
	if err := s.store.SkipPrompt(r.Context(), sess.User.ID, req.PromptID, task, req.Reason); err != nil {
		s.storeFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

type demonstrationJSON struct {
	ID        int64               `json:"id"`
	PromptID  int64               `json:"prompt_id"`
	Prompt    []tokenizer.Message `json:"prompt,omitempty"` // in GET /app/api/labels
	Response  string              `json:"response"`
	CreatedAt time.Time           `json:"created_at"`
	UpdatedAt time.Time           `json:"updated_at"`
}

func toDemonstrationJSON(d store.Demonstration) demonstrationJSON {
	return demonstrationJSON{ID: d.ID, PromptID: d.PromptID, Response: d.Response, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
}

type responseJSON struct {
	Model   string   `json:"model"`
	Content string   `json:"content"`
	Flags   []string `json:"flags"`
	Rating  int      `json:"rating"` // 1-7, 0 for none
}

type rankingJSON struct {
	ID        int64               `json:"id"`
	PromptID  int64               `json:"prompt_id"`
	Prompt    []tokenizer.Message `json:"prompt,omitempty"` // in GET /app/api/labels
	Responses []responseJSON      `json:"responses"`
	Order     []int               `json:"order"`
	Verdict   string              `json:"verdict"` // "", "tie" or "both_bad"

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func toRankingJSON(rk store.Ranking) rankingJSON {
	out := rankingJSON{ID: rk.ID, PromptID: rk.PromptID, Order: rk.Order, Verdict: rk.Verdict, CreatedAt: rk.CreatedAt, UpdatedAt: rk.UpdatedAt}
	for _, r := range rk.Responses {
		f := r.Flags
		if f == nil {
			f = []string{}
		}
		out.Responses = append(out.Responses, responseJSON{r.Model, r.Content, f, r.Rating})
	}
	return out
}

// labelID parses the {id} of a label's URL.
func labelID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		web.fail(w, http.StatusBadRequest, "", "label id %q is not a positive integer", r.PathValue("id"))
		return 0, false
	}
	return id, true
}

func (s *Server) webAddDemonstration(w http.ResponseWriter, r *http.Request, sess store.Session) {
	var req struct {
		PromptID int64  `json:"prompt_id"`
		Response string `json:"response"`
	}
	if !s.decodeJSON(web, w, r, &req) {
		return
	}
	d, err := s.store.AddDemonstration(r.Context(), store.Demonstration{PromptID: req.PromptID, AnnotatorID: sess.User.ID, Response: req.Response})
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toDemonstrationJSON(d))
}

func (s *Server) webDemonstration(w http.ResponseWriter, r *http.Request, sess store.Session) {
	id, ok := labelID(w, r)
	if !ok {
		return
	}
	d, err := s.store.Demonstration(r.Context(), id)
	if err == nil && d.AnnotatorID != sess.User.ID {
		err = fmt.Errorf("demonstration %d belongs to another annotator: %w", id, store.ErrForbidden)
	}
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toDemonstrationJSON(d))
}

func (s *Server) webUpdateDemonstration(w http.ResponseWriter, r *http.Request, sess store.Session) {
	id, ok := labelID(w, r)
	if !ok {
		return
	}
	var req struct {
		Response string `json:"response"`
	}
	if !s.decodeJSON(web, w, r, &req) {
		return
	}
	d, err := s.store.UpdateDemonstration(r.Context(), sess.User.ID, id, req.Response)
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toDemonstrationJSON(d))
}

func (s *Server) webDeleteDemonstration(w http.ResponseWriter, r *http.Request, sess store.Session) {
	id, ok := labelID(w, r)
	if !ok {
		return
	}
	if err := s.store.DeleteDemonstration(r.Context(), sess.User.ID, id); err != nil {
		s.storeFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func (s *Server) webAddRanking(w http.ResponseWriter, r *http.Request, sess store.Session) {
	var req struct {
		PromptID  int64          `json:"prompt_id"`
		Responses []responseJSON `json:"responses"`
		Order     []int          `json:"order"`
		Verdict   string         `json:"verdict"`
	}
	if !s.decodeJSON(web, w, r, &req) {
		return
	}
	rk := store.Ranking{PromptID: req.PromptID, AnnotatorID: sess.User.ID, Order: req.Order, Verdict: req.Verdict}
	for _, resp := range req.Responses {
		rk.Responses = append(rk.Responses, store.Response{Model: resp.Model, Content: resp.Content, Flags: resp.Flags, Rating: resp.Rating})
	}
	rk, err := s.store.AddRanking(r.Context(), rk)
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toRankingJSON(rk))
}

func (s *Server) webRanking(w http.ResponseWriter, r *http.Request, sess store.Session) {
	id, ok := labelID(w, r)
	if !ok {
		return
	}
	rk, err := s.store.Ranking(r.Context(), id)
	if err == nil && rk.AnnotatorID != sess.User.ID {
		err = fmt.Errorf("ranking %d belongs to another annotator: %w", id, store.ErrForbidden)
	}
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toRankingJSON(rk))
}

func (s *Server) webUpdateRanking(w http.ResponseWriter, r *http.Request, sess store.Session) {
	id, ok := labelID(w, r)
	if !ok {
		return
	}
	var req struct {
		Order   []int      `json:"order"`
		Flags   [][]string `json:"flags"`
		Ratings []int      `json:"ratings"`
		Verdict string     `json:"verdict"`
	}
	if !s.decodeJSON(web, w, r, &req) {
		return
	}
	rk, err := s.store.EditRanking(r.Context(), sess.User.ID, id, store.RankingEdit{Order: req.Order, Flags: req.Flags, Ratings: req.Ratings, Verdict: req.Verdict})
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toRankingJSON(rk))
}

func (s *Server) webDeleteRanking(w http.ResponseWriter, r *http.Request, sess store.Session) {
	id, ok := labelID(w, r)
	if !ok {
		return
	}
	if err := s.store.DeleteRanking(r.Context(), sess.User.ID, id); err != nil {
		s.storeFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func (s *Server) webLabels(w http.ResponseWriter, r *http.Request, sess store.Session) {
	l, err := s.store.ListByAnnotator(r.Context(), sess.User.ID)
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	out := map[string]any{"demonstrations": []demonstrationJSON{}, "rankings": []rankingJSON{}}
	// Each label with its prompt's text, for the annotator to recognize.
	prompts := map[int64][]tokenizer.Message{}
	promptOf := func(id int64) ([]tokenizer.Message, error) {
		if m, ok := prompts[id]; ok {
			return m, nil
		}
		p, err := s.store.Prompt(r.Context(), id)
		prompts[id] = p.Messages
		return p.Messages, err
	}
	var ds []demonstrationJSON
	for _, d := range l.Demonstrations {
		dj := toDemonstrationJSON(d)
		if dj.Prompt, err = promptOf(d.PromptID); err != nil {
			s.storeFail(w, r, err)
			return
		}
		ds = append(ds, dj)
	}
	var rs []rankingJSON
	for _, rk := range l.Rankings {
		rj := toRankingJSON(rk)
		if rj.Prompt, err = promptOf(rk.PromptID); err != nil {
			s.storeFail(w, r, err)
			return
		}
		rs = append(rs, rj)
	}
	if ds != nil {
		out["demonstrations"] = ds
	}
	if rs != nil {
		out["rankings"] = rs
	}
	writeJSON(w, http.StatusOK, out)
}

type progressJSON struct {
	User           userJSON `json:"user"`
	Prompts        int      `json:"prompts"`
	Demonstrations int      `json:"demonstrations"`
	Rankings       int      `json:"rankings"`
	Comparisons    int      `json:"comparisons"`
	Skipped        int      `json:"skipped"`
	// Prompts left to the user: to write for, and to rank or compare.
	LeftDemonstrate int `json:"left_demonstrate"`
	LeftRank        int `json:"left_rank"`
	// Pairs of generated images judged (not skipped), and left to judge.
	ImageComparisons int `json:"image_comparisons"`
	LeftImageCompare int `json:"left_image_compare"`
}

func (s *Server) progress(ctx context.Context, u store.User) (progressJSON, error) {
	p, err := s.store.Progress(ctx, u.ID)
	return progressJSON{toUserJSON(u), p.Prompts, p.Demonstrations, p.Rankings, p.Comparisons, p.Skipped, p.LeftDemonstrate, p.LeftRank, p.ImageComparisons, p.LeftImageCompare}, err
}

func (s *Server) webProgress(w http.ResponseWriter, r *http.Request, sess store.Session) {
	p, err := s.progress(r.Context(), sess.User)
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// webImport adds the prompts of a JSONL or LLaVA JSON upload, with the
// images it names (importUpload, store.ImportPrompts).
func (s *Server) webImport(w http.ResponseWriter, r *http.Request, sess store.Session) {
	text, name, read, ok := s.importUpload(w, r)
	if !ok {
		return
	}
	b, err := s.store.ImportPrompts(r.Context(), bytes.NewReader(text), store.ImportOptions{Name: name, By: sess.User.ID, ReadImage: read})
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"batch": b.ID, "added": b.Added, "skipped": b.Skipped, "images": b.Images, "source": b.Source})
}

// webExport downloads the labels as JSONL (store.ExportJSONL).
func (s *Server) webExport(w http.ResponseWriter, r *http.Request, sess store.Session) {
	kind := store.ExportKind(r.URL.Query().Get("kind"))
	known := false
	for _, k := range store.ExportKinds {
		known = known || k == kind
	}
	if !known {
		web.fail(w, http.StatusBadRequest, "", "kind %q is not one of %v", kind, store.ExportKinds)
		return
	}
	if r.URL.Query().Get("format") == "zip" {
		s.webExportZip(w, r, kind)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="golem-%s.jsonl"`, kind))
	if _, err := s.store.ExportJSONL(r.Context(), w, kind); err != nil {
		s.opts.Logf("serve: export %s: %v", kind, err)
	}
}

func (s *Server) webUsers(w http.ResponseWriter, r *http.Request, sess store.Session) {
	users, err := s.store.Users(r.Context())
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	out := []progressJSON{}
	for _, u := range users {
		p, err := s.progress(r.Context(), u)
		if err != nil {
			s.storeFail(w, r, err)
			return
		}
		out = append(out, p)
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

func (s *Server) webCreateUser(w http.ResponseWriter, r *http.Request, sess store.Session) {
	var req struct {
		Username string     `json:"username"`
		Name     string     `json:"name"`
		Password string     `json:"password"`
		Role     store.Role `json:"role"`
	}
	if !s.decodeJSON(web, w, r, &req) {
		return
	}
	u, err := s.store.CreateUser(r.Context(), store.NewUser{Username: req.Username, Name: req.Name, Password: req.Password, Role: req.Role})
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toUserJSON(u))
}
