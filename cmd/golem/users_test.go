package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/store"
)

// golem users add, list, passwd, disable and enable on a SQLite store.
func TestUsersCommands(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "labels.db")
	var out bytes.Buffer
	stdout = &out
	defer func() { stdout, stdin = os.Stdout, os.Stdin }()
	run := func(input string, f func([]string) error, args ...string) error {
		t.Helper()
		stdin = strings.NewReader(input)
		return f(args)
	}
	if err := run("first-admin-pw\n", runUsersAdd, "--db", dsn, "--role", "admin", "root"); err != nil {
		t.Fatal(err)
	}
	if err := run("alice-first-pw\n", runUsersAdd, "alice", "--db", dsn); err != nil {
		t.Fatal(err)
	}
	if err := run("12345678\n", runUsersPasswd, "--db", dsn, "alice"); err == nil || !strings.Contains(err.Error(), "consecutive") {
		t.Errorf("a weak password: %v", err)
	}
	if err := run("", runUsersPasswd, "--db", dsn, "alice"); err == nil || !strings.Contains(err.Error(), "no password") {
		t.Errorf("no password: %v", err)
	}
	if err := run("", runUsersPasswd, "--db", dsn); err == nil || !strings.Contains(err.Error(), "one username") {
		t.Errorf("no username: %v", err)
	}
	if err := run("x\n", runUsersPasswd, "--db", dsn, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown user: %v", err)
	}

	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	u, _ := st.UserByName(ctx, "alice")
	sess, err := st.CreateSession(ctx, u.ID, 3600e9)
	if err != nil {
		t.Fatal(err)
	}
	if err := run("alice-second-pw\r\n", runUsersPasswd, "--db", dsn, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Authenticate(ctx, "alice", "alice-second-pw"); err != nil {
		t.Errorf("the new password: %v", err)
	}
	if _, err := st.LookupSession(ctx, sess.Token); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("alice's session after passwd: %v", err)
	}
	if err := run("", func(a []string) error { return runUsersDisable("disable", a, true) }, "--db", dsn, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Authenticate(ctx, "alice", "alice-second-pw"); !errors.Is(err, store.ErrDisabled) {
		t.Errorf("disabled alice: %v", err)
	}
	if err := run("", func(a []string) error { return runUsersDisable("disable", a, true) }, "--db", dsn, "root"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("disable the last admin: %v", err)
	}
	out.Reset()
	if err := run("", runUsersList, "--db", dsn); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "alice") || !strings.Contains(out.String(), "disabled") || !strings.Contains(out.String(), "root") {
		t.Errorf("list:\n%s", out.String())
	}
	if err := run("", func(a []string) error { return runUsersDisable("enable", a, false) }, "--db", dsn, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Authenticate(ctx, "alice", "alice-second-pw"); err != nil {
		t.Errorf("enabled alice: %v", err)
	}
}
