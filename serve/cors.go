package serve

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// CORS: browser pages on other origins may call the OpenAI and Ollama APIs
// (never the web app) when their origin is allowed: any page on localhost,
// 127.0.0.1 or [::1] (any port, http or https), and the origins of
// Options.CORSOrigins. Other origins get no CORS headers, so the browser
// keeps the answer from them, and their preflights a 403.

// CheckOrigin checks an origin given to --cors-origin: "*" (any page), or
// scheme://host[:port] as a browser sends it in the Origin header.
func CheckOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("--cors-origin %q: want an origin as scheme://host[:port] (http://localhost:3000, https://app.example.com), or *", o)
	}
	return nil
}

// corsAllowed reports whether pages of origin may call the APIs.
func (s *Server) corsAllowed(origin string) bool {
	for _, o := range s.opts.CORSOrigins {
		if o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	switch strings.ToLower(u.Hostname()) {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}

// cors sets the CORS headers of an API request and answers a preflight.
// It returns true when the request has been answered.
func (s *Server) cors(a apiStyle, w http.ResponseWriter, r *http.Request) bool {
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if origin == "" {
		return false
	}
	if !s.corsAllowed(origin) {
		if preflight {
			a.fail(w, http.StatusForbidden, "", "pages of the origin %q may not call this server: golem serve allows pages on localhost, 127.0.0.1 and [::1]; start it with --cors-origin %s to allow this one", origin, origin)
			return true
		}
		return false // no CORS headers: the browser keeps the answer from the page
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", "Retry-After, X-Request-Id")
	if !preflight {
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
	if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
		h.Set("Access-Control-Allow-Headers", rh) // Authorization, Content-Type, the clients' own
	}
	if r.Header.Get("Access-Control-Request-Private-Network") == "true" {
		h.Set("Access-Control-Allow-Private-Network", "true")
	}
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true
}
