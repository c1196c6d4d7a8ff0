package serve

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/golem-ml/golem/store"
)

// webChangePassword changes the logged-in user's password: the current
// one is checked (through the failed login limiter; a wrong one is a 403,
// as the session itself is fine), every session of the
// user ends, and a new one starts for this browser.
func (s *Server) webChangePassword(w http.ResponseWriter, r *http.Request, sess store.Session) {
	var req struct {
		Current string `json:"current"`
		New     string `json:"new"`
	}
	if !s.decodeJSON(web, w, r, &req) {
		return
	}
	if err := store.WeakPassword(req.New); err != nil {
		web.fail(w, http.StatusBadRequest, "", `"new": %v`, err)
		return
	}
	u, ok := s.checkLogin(w, r, sess.User.Username, req.Current, http.StatusForbidden)
	if !ok {
		return
	}
	if err := s.store.SetPassword(r.Context(), u.ID, req.New); err != nil {
		s.storeFail(w, r, err)
		return
	}
	s.opts.Logf("serve: %s changed their password from %s", logName(u.Username), clientAddr(r))
	s.startSession(w, r, u)
}

// pathUser is the user of an admin URL's {id}.
func (s *Server) pathUser(w http.ResponseWriter, r *http.Request) (store.User, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		web.fail(w, http.StatusBadRequest, "", "user id %q is not a positive integer", r.PathValue("id"))
		return store.User{}, false
	}
	u, err := s.store.User(r.Context(), id)
	if err != nil {
		s.storeFail(w, r, err)
		return store.User{}, false
	}
	return u, true
}

// webSetPassword sets another user's password (an admin's reset); the
// user's sessions end.
func (s *Server) webSetPassword(w http.ResponseWriter, r *http.Request, sess store.Session) {
	u, ok := s.pathUser(w, r)
	if !ok {
		return
	}
	var req struct {
		Password string `json:"password"`
	}
	if !s.decodeJSON(web, w, r, &req) {
		return
	}
	if err := s.store.SetPassword(r.Context(), u.ID, req.Password); err != nil {
		s.storeFail(w, r, err)
		return
	}
	s.logins.forget(accountKey(u.Username))
	s.opts.Logf("serve: %s set the password of %s", logName(sess.User.Username), logName(u.Username))
	writeJSON(w, http.StatusOK, toUserJSON(u))
}

// webSetDisabled disables a user (its sessions end) or enables it.
func (s *Server) webSetDisabled(w http.ResponseWriter, r *http.Request, sess store.Session) {
	u, ok := s.pathUser(w, r)
	if !ok {
		return
	}
	var req struct {
		Disabled *bool `json:"disabled"`
	}
	if !s.decodeJSON(web, w, r, &req) {
		return
	}
	if req.Disabled == nil {
		web.fail(w, http.StatusBadRequest, "", `"disabled" missing: send true or false`)
		return
	}
	if *req.Disabled && u.ID == sess.User.ID {
		web.fail(w, http.StatusBadRequest, "", "you cannot disable your own account")
		return
	}
	if err := s.store.SetDisabled(r.Context(), u.ID, *req.Disabled); err != nil {
		s.storeFail(w, r, err)
		return
	}
	u.Disabled = *req.Disabled
	s.opts.Logf("serve: %s %s %s", logName(sess.User.Username), map[bool]string{true: "disabled", false: "enabled"}[u.Disabled], logName(u.Username))
	writeJSON(w, http.StatusOK, toUserJSON(u))
}

// PurgeSessions deletes expired sessions every interval until ctx ends
// (logins purge them too).
func (s *Server) PurgeSessions(ctx context.Context, every time.Duration) {
	if s.store == nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := s.store.DeleteExpiredSessions(ctx)
			switch {
			case err != nil && !errors.Is(err, context.Canceled):
				s.opts.Logf("serve: purge expired sessions: %v", err)
			case n > 0:
				s.opts.Logf("serve: purged %d expired sessions", n)
			}
		}
	}
}
