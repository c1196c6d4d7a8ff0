package serve

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// Browser pages on localhost (any port) and on the --cors-origin origins
// may call the APIs: their preflights are answered without the API key or
// a JSON body, and the answers carry Access-Control-Allow-Origin. Other
// origins get no CORS headers and a 403 preflight; the web app gets no
// CORS at all; a keyless loopback server still refuses foreign Host names.
func TestCORS(t *testing.T) {
	ts := newTestServerWith(t, "sqlite:"+filepath.Join(t.TempDir(), "c.db"),
		Options{APIKey: "k3y", CORSOrigins: []string{"https://app.example.com"}}, EngineOptions{}, "gpt2")
	send := func(method, path, origin string, header map[string]string, body string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	preflight := map[string]string{"Access-Control-Request-Method": "POST",
		"Access-Control-Request-Headers": "authorization,content-type,x-stainless-os"}
	for _, origin := range []string{"http://localhost:5173", "http://127.0.0.1:3000", "http://[::1]:8000", "https://localhost", "https://app.example.com"} {
		for _, path := range []string{"/v1/chat/completions", "/api/chat"} {
			resp := send("OPTIONS", path, origin, preflight, "")
			h := resp.Header
			if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != origin || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
				h.Get("Access-Control-Allow-Headers") != preflight["Access-Control-Request-Headers"] {
				t.Errorf("preflight %s from %s: %d %v", path, origin, resp.StatusCode, h)
			}
		}
		resp := send("POST", "/v1/chat/completions", origin, map[string]string{"Authorization": "Bearer k3y", "Content-Type": "application/json"},
			`{"model":"tiny-gpt2","messages":[{"role":"user","content":"hi"}],"max_tokens":2}`)
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != origin || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "X-Request-Id") {
			t.Errorf("chat from %s: %d %v", origin, resp.StatusCode, resp.Header)
		}
		// The browser may read a 401 too, to tell its user.
		if resp := send("GET", "/api/tags", origin, nil, ""); resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("401 from %s: %d %v", origin, resp.StatusCode, resp.Header)
		}
	}
	for _, origin := range []string{"http://evil.example", "https://app.example.com:444", "http://localhost.evil.example", "null", "file://"} {
		resp := send("OPTIONS", "/v1/chat/completions", origin, preflight, "")
		if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from %s: %d %v, want 403 without CORS headers", origin, resp.StatusCode, resp.Header)
		}
		resp = send("GET", "/v1/models", origin, map[string]string{"Authorization": "Bearer k3y"}, "")
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Vary") != "Origin" {
			t.Errorf("GET from %s: %d %v, want no CORS headers (and Vary: Origin)", origin, resp.StatusCode, resp.Header)
		}
	}
	// The web app (cookies, CSRF) has no CORS.
	if resp := send("OPTIONS", "/app/api/login", "http://localhost:5173", preflight, ""); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("web app preflight: %d %v", resp.StatusCode, resp.Header)
	}

	// A keyless loopback server refuses a rebound Host, preflight or not.
	open := newTestServerWith(t, "sqlite:"+filepath.Join(t.TempDir(), "d.db"), Options{HostCheck: true}, EngineOptions{}, "gpt2")
	for _, method := range []string{"OPTIONS", "GET"} {
		req, _ := http.NewRequest(method, open.URL+"/api/tags", nil)
		req.Host = "rebound.evil.example"
		req.Header.Set("Origin", "http://localhost:5173")
		req.Header.Set("Access-Control-Request-Method", "GET")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s with Host %s: %d %v", method, req.Host, resp.StatusCode, resp.Header)
		}
	}
	for _, bad := range []string{"localhost:3000", "http://x.example/path", "ftp://x.example", ""} {
		if CheckOrigin(bad) == nil {
			t.Errorf("--cors-origin %q accepted", bad)
		}
	}
}
