package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/store"
)

// webClient is a logged-in browser-like client: cookies and the CSRF token.
type webClient struct {
	t    testing.TB
	base string
	c    *http.Client
	csrf string
}

func login(t testing.TB, base, user, password string) *webClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	wc := &webClient{t: t, base: base, c: &http.Client{Jar: jar}}
	status, body := wc.call("POST", "/app/api/login", map[string]string{"username": user, "password": password})
	if status != 200 {
		t.Fatalf("login %s: %d %s", user, status, body)
	}
	var me struct{ CSRF string }
	json.Unmarshal(body, &me)
	wc.csrf = me.CSRF
	return wc
}

// call sends v as JSON (a string is sent as is) with the CSRF token.
func (wc *webClient) call(method, path string, v any) (int, []byte) {
	wc.t.Helper()
	var body []byte
	switch v := v.(type) {
	case nil:
	case string:
		body = []byte(v)
	default:
		body, _ = json.Marshal(v)
	}
	h := map[string]string{}
	if wc.csrf != "" {
		h["X-CSRF-Token"] = wc.csrf
	}
	return do(wc.t, wc.c, method, wc.base+path, body, h)
}

func mustStatus(t testing.TB, what string, want, got int, body []byte) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: status %d, want %d: %s", what, got, want, body)
	}
	if got >= 400 {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Fatalf("%s: error body is not {\"error\": \"...\"}: %s", what, body)
		}
	}
}

// setupAnnotators creates the admin, two annotators and three prompts.
func setupAnnotators(t testing.TB, ts *testServer) (admin, alice, bob *webClient) {
	t.Helper()
	if _, err := EnsureAdmin(context.Background(), ts.store, "admin-password"); err != nil {
		t.Fatal(err)
	}
	admin = login(t, ts.URL, "admin", "admin-password")
	for _, u := range []string{"alice", "bob"} {
		status, body := admin.call("POST", "/app/api/admin/users", map[string]string{"username": u, "password": u + "-password"})
		mustStatus(t, "create "+u, 201, status, body)
	}
	status, body := admin.call("POST", "/app/api/admin/prompts?name=p.jsonl",
		`{"prompt": "Say hello."}`+"\n"+`{"messages": [{"role": "user", "content": "Count to three."}]}`+"\n"+`{"prompt": "<b>bold?</b>"}`+"\n")
	mustStatus(t, "import", 200, status, body)
	if !strings.Contains(string(body), `"added":3`) {
		t.Fatalf("import: %s", body)
	}
	return admin, login(t, ts.URL, "alice", "alice-password"), login(t, ts.URL, "bob", "bob-password")
}

func TestWebAnnotationFlow(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { webAnnotationFlow(t, newTestServer(t, Options{}, EngineOptions{})) })
	t.Run("postgres", func(t *testing.T) {
		webAnnotationFlow(t, newTestServerOn(t, postgresDSN(t), Options{}, EngineOptions{}))
	})
	// Models loaded on their first request, as golem serve runs them:
	// sampling answers loads each model it asks.
	t.Run("loaded on first use", func(t *testing.T) {
		ts, loads := newLazyServer(t, Options{}, ModelSpec{"tiny-llama", tinyDir(t, "llama")}, ModelSpec{"tiny-gpt2", tinyDir(t, "gpt2")})
		webAnnotationFlow(t, ts)
		if n := loads.Load(); n != 2 {
			t.Errorf("%d loads, want each model loaded once", n)
		}
	})
}

func webAnnotationFlow(t *testing.T, ts *testServer) {
	admin, alice, bob := setupAnnotators(t, ts)

	status, body := alice.call("GET", "/app/api/next?task=demonstrate", nil)
	mustStatus(t, "next", 200, status, body)
	var next struct{ Prompt promptJSON }
	json.Unmarshal(body, &next)
	if next.Prompt.ID == 0 || len(next.Prompt.Messages) == 0 {
		t.Fatalf("next: %s", body)
	}
	status, body = alice.call("POST", "/app/api/demonstrations", map[string]any{"prompt_id": next.Prompt.ID, "response": "Hello!"})
	mustStatus(t, "add demonstration", 201, status, body)
	var d demonstrationJSON
	json.Unmarshal(body, &d)
	status, body = alice.call("POST", "/app/api/demonstrations", map[string]any{"prompt_id": next.Prompt.ID, "response": "Again"})
	mustStatus(t, "second demonstration", 409, status, body)

	// Bob can neither see nor change nor delete Alice's label.
	path := fmt.Sprintf("/app/api/demonstrations/%d", d.ID)
	status, body = bob.call("GET", path, nil)
	mustStatus(t, "bob reads alice's", 403, status, body)
	status, body = bob.call("PUT", path, map[string]string{"response": "hijacked"})
	mustStatus(t, "bob edits alice's", 403, status, body)
	status, body = bob.call("DELETE", path, nil)
	mustStatus(t, "bob deletes alice's", 403, status, body)
	status, body = alice.call("PUT", path, map[string]string{"response": "Hello there!"})
	mustStatus(t, "alice edits hers", 200, status, body)

	// Sample four answers and rank them.
	status, body = alice.call("POST", "/app/api/samples", map[string]any{"prompt_id": next.Prompt.ID, "k": 4})
	mustStatus(t, "samples", 200, status, body)
	var s struct{ Answers []responseJSON }
	json.Unmarshal(body, &s)
	if len(s.Answers) != 4 {
		t.Fatalf("samples: %s", body)
	}
	s.Answers[2].Flags = []string{"incorrect", "harmful"}
	status, body = alice.call("POST", "/app/api/rankings", map[string]any{"prompt_id": next.Prompt.ID, "responses": s.Answers, "order": []int{2, 0, 3, 1}})
	mustStatus(t, "rank", 201, status, body)
	var rk rankingJSON
	json.Unmarshal(body, &rk)
	status, body = bob.call("PUT", fmt.Sprintf("/app/api/rankings/%d", rk.ID), map[string]any{"order": []int{0, 1, 2, 3}})
	mustStatus(t, "bob reorders alice's", 403, status, body)
	status, body = alice.call("POST", "/app/api/rankings", map[string]any{"prompt_id": next.Prompt.ID + 1, "responses": s.Answers[:2], "order": []int{0, 0}})
	mustStatus(t, "a tie", 400, status, body)

	// Progress and the annotator's own labels.
	status, body = alice.call("GET", "/app/api/progress", nil)
	if status != 200 || !strings.Contains(string(body), `"demonstrations":1`) || !strings.Contains(string(body), `"rankings":1`) {
		t.Fatalf("progress: %d %s", status, body)
	}
	status, body = bob.call("GET", "/app/api/labels", nil)
	if status != 200 || strings.Contains(string(body), "Hello there") {
		t.Fatalf("bob's labels show alice's: %s", body)
	}

	// Only the admin exports, and the export has the labels.
	status, body = alice.call("GET", "/app/api/admin/export?kind=sft", nil)
	mustStatus(t, "annotator exports", 403, status, body)
	status, body = admin.call("GET", "/app/api/admin/export?kind=preferences", nil)
	if status != 200 || strings.Count(string(body), "\n") != 6 {
		t.Fatalf("export preferences: %d, want 6 lines: %s", status, body)
	}
	status, body = admin.call("GET", "/app/api/admin/export?kind=sft", nil)
	if status != 200 || !strings.Contains(string(body), "Hello there!") {
		t.Fatalf("export sft: %d %s", status, body)
	}

	// CSRF: a change without the token is refused; logout ends the session.
	saved := alice.csrf
	alice.csrf = ""
	status, body = alice.call("POST", "/app/api/demonstrations", map[string]any{"prompt_id": next.Prompt.ID + 1, "response": "x"})
	mustStatus(t, "no CSRF token", 403, status, body)
	alice.csrf = "wrong"
	status, body = alice.call("DELETE", path, nil)
	mustStatus(t, "wrong CSRF token", 403, status, body)
	alice.csrf = saved
	status, body = alice.call("POST", "/app/api/logout", nil)
	mustStatus(t, "logout", 200, status, body)
	status, body = alice.call("GET", "/app/api/me", nil)
	mustStatus(t, "after logout", 401, status, body)
	if _, err := ts.store.Demonstration(context.Background(), d.ID); err != nil {
		t.Fatalf("the demonstration is gone: %v", err)
	}
}

// The page is served from the binary with a strict content policy, and
// the login refuses cross-site requests.
func TestWebPageAndLogin(t *testing.T) {
	ts := newTestServer(t, Options{}, EngineOptions{})
	EnsureAdmin(context.Background(), ts.store, "admin-password")
	resp, err := http.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("index: %d %v", resp.StatusCode, resp.Header)
	}
	for _, f := range []string{"/static/app.js", "/static/style.css"} {
		status, _ := do(t, nil, "GET", ts.URL+f, nil, nil)
		if status != 200 {
			t.Errorf("%s: %d", f, status)
		}
	}
	status, body := do(t, nil, "POST", ts.URL+"/app/api/login", []byte(`{"username":"admin","password":"admin-password"}`),
		map[string]string{"Origin": "http://evil.example"})
	mustStatus(t, "cross-site login", 403, status, body)
	status, body = do(t, nil, "POST", ts.URL+"/app/api/login", []byte(`{"username":"admin","password":"wrong-password"}`), nil)
	mustStatus(t, "wrong password", 401, status, body)
	status, body = do(t, nil, "GET", ts.URL+"/app/api/next?task=rank", nil, nil)
	mustStatus(t, "not logged in", 401, status, body)
	if store.MaxK < 4 {
		t.Fatal("the store cannot hold a ranking of 4")
	}
}

// With a model that always gives the same answer, sampling answers to rank
// returns the one distinct answer there is (it was a 503 on every prompt),
// the annotator skips the prompt, and the next prompt is another one (it
// was the same prompt again: the annotator could not go on). A model with
// two answers gives two to rank, not an error.
func TestWebSkipAlikeAnswers(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		webSkipAlikeAnswers(t, "sqlite:"+filepath.Join(t.TempDir(), "labels.db"))
	})
	t.Run("postgres", func(t *testing.T) { webSkipAlikeAnswers(t, postgresDSN(t)) })
}

func webSkipAlikeAnswers(t *testing.T, dsn string) {
	ts := newTestServerWith(t, dsn, Options{}, EngineOptions{}, "same")
	_, alice, bob := setupAnnotators(t, ts)
	next := func(wc *webClient, task string) int64 {
		t.Helper()
		status, body := wc.call("GET", "/app/api/next?task="+task, nil)
		mustStatus(t, "next "+task, 200, status, body)
		var r struct{ Prompt *promptJSON }
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		if r.Prompt == nil {
			return 0
		}
		return r.Prompt.ID
	}
	type samples struct {
		Answers   []responseJSON
		Requested int
		Tries     int
	}
	sample := func(wc *webClient, id int64, k, maxTokens int) samples {
		t.Helper()
		status, body := wc.call("POST", "/app/api/samples", map[string]any{"prompt_id": id, "k": k, "max_tokens": maxTokens})
		mustStatus(t, "samples", 200, status, body)
		var s samples
		if err := json.Unmarshal(body, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	first := next(alice, "rank")
	s := sample(alice, first, 4, 0)
	if len(s.Answers) != 1 || !strings.HasPrefix(s.Answers[0].Content, "y") || s.Requested != 4 || s.Tries != rankTriesPerAnswer*4 {
		t.Fatalf("samples of a model with one answer: %+v; want its one answer after %d tries", s, rankTriesPerAnswer*4)
	}
	status, body := alice.call("POST", "/app/api/skips", map[string]any{"prompt_id": first, "task": "rank", "reason": "1 distinct answer"})
	mustStatus(t, "skip", 200, status, body)
	second := next(alice, "rank")
	if second == 0 || second == first {
		t.Fatalf("after skipping prompt %d the next prompt to rank is %d", first, second)
	}
	if id := next(alice, "compare"); id != second {
		t.Errorf("next comparison = %d, want %d (comparisons share the ranking queue)", id, second)
	}
	if s := sample(alice, second, 2, 0); len(s.Answers) != 1 {
		t.Errorf("a comparison's samples: %+v", s)
	}
	status, body = alice.call("POST", "/app/api/skips", map[string]any{"prompt_id": second, "task": "compare"})
	mustStatus(t, "skip a comparison", 200, status, body)
	third := next(alice, "rank")
	status, body = alice.call("POST", "/app/api/skips", map[string]any{"prompt_id": third, "task": "rank"})
	mustStatus(t, "skip", 200, status, body)
	if id := next(alice, "rank"); id != 0 {
		t.Errorf("alice skipped every prompt, yet next gives %d", id)
	}
	// Skips are the annotator's own, and per queue.
	if id := next(bob, "rank"); id != first {
		t.Errorf("bob's next prompt to rank = %d, want %d", id, first)
	}
	if id := next(alice, "demonstrate"); id != first {
		t.Errorf("alice's next prompt to write for = %d, want %d", id, first)
	}
	status, body = alice.call("GET", "/app/api/progress", nil)
	if status != 200 || !strings.Contains(string(body), `"skipped":3`) {
		t.Errorf("progress: %d %s", status, body)
	}
	for _, tc := range []struct {
		what string
		req  any
		want int
	}{
		{"an unknown prompt", map[string]any{"prompt_id": 9999, "task": "rank"}, 404},
		{"an unknown task", map[string]any{"prompt_id": first, "task": "dance"}, 400},
		{"a NUL in the reason", map[string]any{"prompt_id": first, "task": "rank", "reason": "a\x00b"}, 400},
		{"not JSON", "{", 400},
	} {
		status, body := alice.call("POST", "/app/api/skips", tc.req)
		mustStatus(t, "skip "+tc.what, tc.want, status, body)
	}

	// Two distinct answers, though four were asked for, make a ranking.
	ts2 := newTestServerWith(t, dsn, Options{}, EngineOptions{}, "two")
	bob2 := login(t, ts2.URL, "bob", "bob-password")
	s = sample(bob2, first, 4, 1)
	if len(s.Answers) != 2 || s.Answers[0].Content == s.Answers[1].Content {
		t.Fatalf("samples of a model with two answers: %+v", s)
	}
	status, body = bob2.call("POST", "/app/api/rankings", map[string]any{"prompt_id": first, "responses": s.Answers, "order": []int{1, 0}})
	mustStatus(t, "rank two answers", 201, status, body)
}
