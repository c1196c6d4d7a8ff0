package serve

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golem-ml/golem/store"
)

// logLines collects a server's log lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logLines) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// postLogin tries to log in with c and returns the answer.
func postLogin(t *testing.T, c *http.Client, base, user, password string) (*http.Response, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	req, _ := http.NewRequest("POST", base+"/app/api/login", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// Failed logins are logged and throttled per account and per address
// with growing waits (429 + Retry-After), even for the right password.
func TestLoginThrottling(t *testing.T) {
	clockBound(t)
	var logs logLines
	ts := newTestServer(t, Options{Logf: logs.logf}, EngineOptions{})
	ctx := context.Background()
	EnsureAdmin(ctx, ts.store, "admin-password")
	if _, err := ts.store.CreateUser(ctx, store.NewUser{Username: "bob", Password: "bob-password"}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= freeAccountFailures+1; i++ {
		resp, body := postLogin(t, nil, ts.URL, "bob", "guess-"+strconv.Itoa(i))
		if resp.StatusCode != 401 {
			t.Fatalf("wrong password %d: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := postLogin(t, nil, ts.URL, "Bob", "bob-password")
	wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != 429 || wait < 1 || !strings.Contains(body, "too many failed logins") {
		t.Fatalf("the right password after %d wrong ones: %d (Retry-After %q) %s", freeAccountFailures+1, resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// Another account from the same address is not locked yet.
	if resp, body := postLogin(t, nil, ts.URL, "admin", "admin-password"); resp.StatusCode != 200 {
		t.Fatalf("admin: %d %s", resp.StatusCode, body)
	}
	time.Sleep(time.Duration(wait) * time.Second)
	if resp, body := postLogin(t, nil, ts.URL, "bob", "bob-password"); resp.StatusCode != 200 {
		t.Fatalf("bob after waiting %d s: %d %s", wait, resp.StatusCode, body)
	}
	log := logs.all()
	for _, want := range []string{`failed login as "bob" from 127.0.0.1 (1 in a row)`, `failed login as "bob" from 127.0.0.1 (6 in a row)`, `login as "Bob" from 127.0.0.1 refused: too many failed logins`} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "guess-") || strings.Contains(log, "bob-password") {
		t.Errorf("a password in the log:\n%s", log)
	}

	// Per address: guessing many accounts from one address locks the
	// address out, whatever the account (bob's 6 failures count too).
	for i := 0; i < freeAddressFailures-freeAccountFailures; i++ {
		if resp, body := postLogin(t, nil, ts.URL, fmt.Sprintf("user%d", i), "some password"); resp.StatusCode != 401 {
			t.Fatalf("guess %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if resp, body := postLogin(t, nil, ts.URL, "admin", "admin-password"); resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("admin from an address that failed %d logins: %d %s", freeAddressFailures+1, resp.StatusCode, body)
	}
}

// The limiter's waits double, are capped, and are forgotten.
func TestLoginLimiterBackoff(t *testing.T) {
	var l loginLimiter
	now := time.Unix(1e9, 0)
	var waits []time.Duration
	for range 30 {
		l.fail(now, "k", 2)
		waits = append(waits, l.wait(now, "k"))
	}
	if waits[0] != 0 || waits[1] != 0 || waits[2] != time.Second || waits[3] != 2*time.Second || waits[4] != 4*time.Second || waits[29] != maxLoginWait {
		t.Errorf("waits %v", waits)
	}
	if d := l.wait(now.Add(maxLoginWait), "k"); d != 0 {
		t.Errorf("after the wait: %v", d)
	}
	if n := l.fail(now.Add(2*forgetFailures), "k", 2); n != 1 {
		t.Errorf("after a quiet %v: %d failures in a row", 2*forgetFailures, n)
	}
	for i := range maxLoginKeys + 10 {
		l.fail(now.Add(time.Duration(i)), strconv.Itoa(i), 2)
	}
	if len(l.keys) > maxLoginKeys {
		t.Errorf("%d keys kept", len(l.keys))
	}
}

// Accounts: weak passwords are refused, users change their password (the
// other sessions end), admins reset passwords and disable and enable
// users (whose sessions end), and expired sessions are purged at login.
func TestAccounts(t *testing.T) {
	var logs logLines
	ts := newTestServer(t, Options{Logf: logs.logf}, EngineOptions{})
	admin, alice, bob := setupAnnotators(t, ts)
	ctx := context.Background()

	status, body := admin.call("POST", "/app/api/admin/users", map[string]string{"username": "carol", "password": "12345678"})
	mustStatus(t, "weak password", 400, status, body)
	if !strings.Contains(string(body), "consecutive") {
		t.Errorf("weak password: %s", body)
	}

	// Bob changes his password; his other session ends, this one goes on.
	bob2 := login(t, ts.URL, "bob", "bob-password")
	status, body = bob.call("POST", "/app/api/password", map[string]string{"current": "wrong-password", "new": "bob-new-password"})
	mustStatus(t, "wrong current password", 403, status, body)
	status, body = bob.call("POST", "/app/api/password", map[string]string{"current": "bob-password", "new": "password123"})
	mustStatus(t, "weak new password", 400, status, body)
	status, body = bob.call("POST", "/app/api/password", map[string]string{"current": "bob-password", "new": "bob-new-password"})
	mustStatus(t, "change password", 200, status, body)
	var me struct{ CSRF string }
	json.Unmarshal(body, &me)
	bob.csrf = me.CSRF
	status, body = bob.call("GET", "/app/api/me", nil)
	mustStatus(t, "bob after the change", 200, status, body)
	status, body = bob2.call("GET", "/app/api/me", nil)
	mustStatus(t, "bob's other session", 401, status, body)
	login(t, ts.URL, "bob", "bob-new-password")

	// The admin disables Alice: her session ends and she cannot log in.
	u, _ := ts.store.UserByName(ctx, "alice")
	status, body = admin.call("POST", fmt.Sprintf("/app/api/admin/users/%d/disabled", u.ID), map[string]bool{"disabled": true})
	mustStatus(t, "disable alice", 200, status, body)
	status, body = alice.call("GET", "/app/api/me", nil)
	mustStatus(t, "disabled alice's session", 401, status, body)
	resp, b := postLogin(t, nil, ts.URL, "alice", "alice-password")
	if resp.StatusCode != 403 || !strings.Contains(b, "disabled") {
		t.Errorf("disabled alice logs in: %d %s", resp.StatusCode, b)
	}
	status, body = admin.call("GET", "/app/api/admin/users", nil)
	if status != 200 || !strings.Contains(string(body), `"username":"alice","name":"alice","role":"annotator","disabled":true`) {
		t.Errorf("users: %d %s", status, body)
	}
	status, body = admin.call("POST", fmt.Sprintf("/app/api/admin/users/%d/disabled", u.ID), map[string]bool{"disabled": false})
	mustStatus(t, "enable alice", 200, status, body)
	// An admin resets her password.
	status, body = admin.call("POST", fmt.Sprintf("/app/api/admin/users/%d/password", u.ID), map[string]string{"password": "alice-second-password"})
	mustStatus(t, "reset alice's password", 200, status, body)
	login(t, ts.URL, "alice", "alice-second-password")

	me2, _ := ts.store.UserByName(ctx, "admin")
	status, body = admin.call("POST", fmt.Sprintf("/app/api/admin/users/%d/disabled", me2.ID), map[string]bool{"disabled": true})
	mustStatus(t, "disable oneself", 400, status, body)
	status, body = bob.call("POST", fmt.Sprintf("/app/api/admin/users/%d/disabled", u.ID), map[string]bool{"disabled": true})
	mustStatus(t, "an annotator disables", 403, status, body)
	status, body = admin.call("POST", "/app/api/admin/users/999/disabled", map[string]bool{"disabled": true})
	mustStatus(t, "unknown user", 404, status, body)

	// Expired sessions are purged at the next login.
	if _, err := ts.store.CreateSession(ctx, u.ID, time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond)
	login(t, ts.URL, "bob", "bob-new-password")
	if !strings.Contains(logs.all(), "purged 1 expired sessions") {
		t.Errorf("no purge in the log:\n%s", logs.all())
	}
	if n, _ := ts.store.DeleteExpiredSessions(ctx); n != 0 {
		t.Errorf("%d expired sessions left after a login", n)
	}
}

// The session cookie is Secure with SecureCookies and on TLS.
func TestSecureCookies(t *testing.T) {
	cookie := func(o Options, useTLS bool) *http.Cookie {
		ts := newTestServer(t, o, EngineOptions{})
		EnsureAdmin(context.Background(), ts.store, "admin-password")
		c, base := http.DefaultClient, ts.URL
		if useTLS {
			tts := httptest.NewUnstartedServer(ts.srv)
			tts.StartTLS()
			t.Cleanup(tts.Close)
			c, base = tts.Client(), tts.URL
			c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
		}
		resp, body := postLogin(t, c, base, "admin", "admin-password")
		if resp.StatusCode != 200 || len(resp.Cookies()) != 1 {
			t.Fatalf("login: %d %s", resp.StatusCode, body)
		}
		return resp.Cookies()[0]
	}
	if c := cookie(Options{}, false); c.Secure || !c.HttpOnly {
		t.Errorf("plain HTTP: %v", c)
	}
	if c := cookie(Options{SecureCookies: true}, false); !c.Secure {
		t.Errorf("SecureCookies: %v", c)
	}
	if c := cookie(Options{}, true); !c.Secure {
		t.Errorf("TLS: %v", c)
	}
}

// PurgeSessions deletes expired sessions on its own, without a login.
func TestPurgeSessions(t *testing.T) {
	var logs logLines
	ts := newTestServer(t, Options{Logf: logs.logf}, EngineOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	u, err := ts.store.CreateUser(ctx, store.NewUser{Username: "ann", Password: "ann-password"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := ts.store.CreateSession(ctx, u.ID, time.Nanosecond); err != nil {
			t.Fatal(err)
		}
	}
	go ts.srv.PurgeSessions(ctx, 10*time.Millisecond)
	for i := 0; i < 200 && !strings.Contains(logs.all(), "purged 3 expired sessions"); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.all(), "purged 3 expired sessions") {
		t.Fatalf("no purge:\n%s", logs.all())
	}
}
