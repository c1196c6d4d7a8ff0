package serve

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Failed logins are throttled per account and per client address: after
// the free failures, each further one makes the key wait twice as long as
// the last (1 s, 2 s, 4 s, ... up to maxLoginWait). A key is forgotten
// after a quiet hour, and an account's on a successful login.
const (
	freeAccountFailures = 5
	freeAddressFailures = 20
	maxLoginWait        = 15 * time.Minute
	forgetFailures      = time.Hour
	maxLoginKeys        = 100_000 // keys kept at most; the oldest go first
)

// loginLimiter counts failed logins by key ("user:NAME", "addr:IP").
type loginLimiter struct {
	mu   sync.Mutex
	keys map[string]*failures
}

type failures struct {
	n     int       // failures in a row
	until time.Time // no attempt before
	last  time.Time // the last failure
}

// wait returns how long the first of keys that must wait still must (0
// when none).
func (l *loginLimiter) wait(now time.Time, keys ...string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var d time.Duration
	for _, k := range keys {
		if f := l.keys[k]; f != nil {
			d = max(d, f.until.Sub(now))
		}
	}
	return d
}

// fail records a failure of key, which may fail free times without
// waiting, and returns its failures in a row.
func (l *loginLimiter) fail(now time.Time, key string, free int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keys == nil {
		l.keys = map[string]*failures{}
	}
	f := l.keys[key]
	if f == nil || now.Sub(f.last) > forgetFailures {
		if len(l.keys) >= maxLoginKeys {
			l.prune(now)
		}
		f = &failures{}
		l.keys[key] = f
	}
	f.n++
	f.last = now
	if over := f.n - free; over > 0 {
		f.until = now.Add(min(time.Second<<min(over-1, 20), maxLoginWait))
	}
	return f.n
}

// forget clears key's failures.
func (l *loginLimiter) forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.keys, key)
}

// prune drops the keys quiet for forgetFailures, and when that is not
// enough the older half.
func (l *loginLimiter) prune(now time.Time) {
	for k, f := range l.keys {
		if now.Sub(f.last) > forgetFailures {
			delete(l.keys, k)
		}
	}
	if len(l.keys) < maxLoginKeys {
		return
	}
	var sum time.Duration
	for _, f := range l.keys {
		sum += now.Sub(f.last) / time.Duration(len(l.keys))
	}
	for k, f := range l.keys {
		if now.Sub(f.last) >= sum {
			delete(l.keys, k)
		}
	}
}

// accountKey and addressKey name what a login's failures count against.
func accountKey(username string) string {
	u := strings.ToLower(username)
	if len(u) > 64 {
		u = u[:64] // longer is no username; do not keep megabytes
	}
	return "user:" + u
}

func addressKey(r *http.Request) string { return "addr:" + clientAddr(r) }

// clientAddr is the IP address the request came from.
func clientAddr(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

// logName quotes a name a client sent for a log line, cut to 64 bytes.
func logName(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}
