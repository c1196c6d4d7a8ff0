package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golem-ml/golem/internal/shared"

	"github.com/golem-ml/golem/tokenizer"
)

// TestStore runs the same suite against SQLite and PostgreSQL.
func TestStore(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		suite(t, func(t *testing.T) string {
			return "sqlite:" + filepath.Join(t.TempDir(), "golem.db")
		})
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		base := os.Getenv("GOLEM_TEST_POSTGRES")
		if base == "" {
			msg := "GOLEM_TEST_POSTGRES is not set: `source .ci/postgres.sh` starts a PostgreSQL server and sets it"
			shared.Missing(t, msg+" (CI must run the PostgreSQL suite)")
		}
		suite(t, func(t *testing.T) string { return postgresSchema(t, base) })
	})
}

// postgresSchema creates an empty schema for one test and returns a DSN whose
// search_path is that schema; the schema is dropped when the test ends.
func postgresSchema(t *testing.T, base string) string {
	t.Helper()
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	b := make([]byte, 6)
	rand.Read(b)
	schema := "golem_test_" + hex.EncodeToString(b)
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema in %s: %v", base, err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

// suite is the store's test suite; newDSN returns the DSN of a new, empty
// database for each test.
func suite(t *testing.T, newDSN func(t *testing.T) string) {
	tests := []struct {
		name string
		fn   func(t *testing.T, dsn string)
	}{
		{"Migrations", testMigrations},
		{"OpenExisting", testOpenExisting},
		{"Users", testUsers},
		{"Sessions", testSessions},
		{"Import", testImport},
		{"ImportErrors", testImportErrors},
		{"Queue", testQueue},
		{"Skips", testSkips},
		{"UpgradeToSkips", testUpgradeToSkips},
		{"Demonstrations", testDemonstrations},
		{"Rankings", testRankings},
		{"RankingErrors", testRankingErrors},
		{"ListAndProgress", testListAndProgress},
		{"Export", testExport},
		{"Images", testImages},
		{"ExportImages", testExportImages},
		{"VerdictsAndRatings", testVerdictsAndRatings},
		{"UpgradeToVerdicts", testUpgradeToVerdicts},
		{"Guidelines", testGuidelines},
		{"PromptStats", testPromptStats},
		{"Generations", testGenerations},
		{"UpgradeToGenerations", testUpgradeToGenerations},
		{"ConcurrentWrites", testConcurrentWrites},
		{"KillDuringWrites", testKillDuringWrites},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each has a database of its own
			tt.fn(t, newDSN(t))
		})
	}
}

func open(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open(%q): %v", dsn, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustUser(t *testing.T, s *Store, username string, role Role) User {
	t.Helper()
	u, err := s.CreateUser(context.Background(), NewUser{Username: username, Password: "password-" + username, Role: role})
	if err != nil {
		t.Fatalf("CreateUser(%s): %v", username, err)
	}
	return u
}

// mustPrompts imports n prompts "question i?" and returns them in id order.
func mustPrompts(t *testing.T, s *Store, n int) []Prompt {
	t.Helper()
	var buf bytes.Buffer
	for i := range n {
		fmt.Fprintf(&buf, `{"prompt": "question %d?"}`+"\n", i)
	}
	ctx := context.Background()
	b, err := s.ImportPrompts(ctx, &buf, ImportOptions{Name: "test.jsonl"})
	if err != nil {
		t.Fatalf("ImportPrompts: %v", err)
	}
	if b.Added != n {
		t.Fatalf("ImportPrompts added %d prompts, want %d", b.Added, n)
	}
	var ps []Prompt
	// The columns of every schema version: the upgrade tests make prompts
	// in old ones.
	rows, err := s.db.Query(s.q(`SELECT id, conversation, source, batch_id, created_at FROM prompts WHERE batch_id = ? ORDER BY id`), b.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var p Prompt
		var conv string
		if err := rows.Scan(&p.ID, &conv, &p.Source, &p.BatchID, &p.CreatedAt); err != nil {
			t.Fatal(err)
		}
		p.CreatedAt = p.CreatedAt.UTC()
		if p.Messages, err = decodeConversation(p.ID, conv); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// wantErr fails unless err wraps target and its message holds each of want.
func wantErr(t *testing.T, what string, err, target error, want ...string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want %v", what, err, target)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not mention %q", what, err, w)
		}
	}
}

func testMigrations(t *testing.T, dsn string) {
	ctx := context.Background()
	// Four processes' worth of concurrent Opens on a new database: each
	// migration runs once and all of them succeed.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := Open(ctx, dsn)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Open %d: %v", i, err)
		}
	}
	s := open(t, dsn)
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != migrations[len(migrations)-1].version {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, migrations[len(migrations)-1].version)
	}
	var n int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(migrations) {
		t.Errorf("schema_migrations has %d rows (%v), want %d", n, err, len(migrations))
	}
	// A database from a newer golem is refused, not silently used.
	if _, err := s.db.Exec(s.q(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`), 999, "future", now()); err != nil {
		t.Fatal(err)
	}
	if s2, err := Open(ctx, dsn); err == nil {
		s2.Close()
		t.Error("Open of a database at schema version 999 succeeded")
	} else if !strings.Contains(err.Error(), "999") {
		t.Errorf("Open of a newer database: %v; want the version named", err)
	}
	if s.Dialect() == "sqlite" {
		var mode string
		var fk, sync int
		if err := s.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("journal_mode = %q (%v), want wal", mode, err)
		}
		if err := s.db.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
			t.Errorf("foreign_keys = %d (%v), want 1", fk, err)
		}
		if err := s.db.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil || sync != 2 {
			t.Errorf("synchronous = %d (%v), want 2 (FULL)", sync, err)
		}
	}
}

func testUsers(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	admin, err := s.CreateUser(ctx, NewUser{Username: "Ada", Name: "Ada Lovelace", Password: "correct horse", Role: RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if admin.Username != "ada" || admin.Name != "Ada Lovelace" || admin.Role != RoleAdmin || admin.ID == 0 {
		t.Errorf("CreateUser = %+v", admin)
	}
	bob := mustUser(t, s, "bob", "")
	if bob.Role != RoleAnnotator || bob.Name != "bob" {
		t.Errorf("default role and name: %+v", bob)
	}
	_, err = s.CreateUser(ctx, NewUser{Username: "ADA", Password: "another password"})
	wantErr(t, "duplicate username", err, ErrConflict, "ada")
	for _, nu := range []NewUser{
		{Username: "", Password: "long enough"},
		{Username: "a b", Password: "long enough"},
		{Username: strings.Repeat("x", 65), Password: "long enough"},
		{Username: "carol", Password: "short"},
		{Username: "carol", Password: strings.Repeat("p", 1025)},
		{Username: "carol", Password: "long enough", Role: "root"},
		{Username: "carol", Password: "long enough", Name: "bad \xff name"},
	} {
		_, err := s.CreateUser(ctx, nu)
		wantErr(t, fmt.Sprintf("CreateUser(%+v)", nu), err, ErrInvalid)
	}

	got, err := s.Authenticate(ctx, "ADA", "correct horse")
	if err != nil || got != admin {
		t.Errorf("Authenticate = %+v, %v; want %+v", got, err, admin)
	}
	_, err = s.Authenticate(ctx, "ada", "wrong horse")
	wantErr(t, "wrong password", err, ErrUnauthorized)
	_, err = s.Authenticate(ctx, "nobody", "correct horse")
	wantErr(t, "unknown user", err, ErrUnauthorized)

	var hash string
	if err := s.db.QueryRow(s.q(`SELECT password_hash FROM users WHERE id = ?`), admin.ID).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$") || strings.Contains(hash, "correct horse") {
		t.Errorf("stored password hash %q", hash)
	}

	sess, err := s.CreateSession(ctx, admin.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetPassword(ctx, admin.ID, "new password!"); err != nil {
		t.Fatal(err)
	}
	_, err = s.LookupSession(ctx, sess.Token)
	wantErr(t, "session after password change", err, ErrNotFound)
	if _, err := s.Authenticate(ctx, "ada", "new password!"); err != nil {
		t.Errorf("Authenticate with the new password: %v", err)
	}
	wantErr(t, "SetPassword of unknown user", s.SetPassword(ctx, 9999, "long enough"), ErrNotFound)

	users, err := s.Users(ctx)
	if err != nil || len(users) != 2 || users[0] != admin || users[1] != bob {
		t.Errorf("Users = %+v, %v", users, err)
	}
	if u, err := s.User(ctx, bob.ID); err != nil || u != bob {
		t.Errorf("User(%d) = %+v, %v", bob.ID, u, err)
	}
	_, err = s.User(ctx, 9999)
	wantErr(t, "User(9999)", err, ErrNotFound)
	if u, err := s.UserByName(ctx, "BOB"); err != nil || u != bob {
		t.Errorf("UserByName(BOB) = %+v, %v", u, err)
	}
	_, err = s.UserByName(ctx, "nobody")
	wantErr(t, "UserByName(nobody)", err, ErrNotFound)

	// Weak passwords are refused with the rule they break, at creation
	// and at a change.
	for pw, rule := range map[string]string{
		"12345678": "consecutive", "87654321": "consecutive", "abcdefghij": "consecutive",
		"aaaaaaaa": "repeated", "Password1": "most common", "QWERTYUIOP": "most common", "short": "8 to 1024",
	} {
		_, err := s.CreateUser(ctx, NewUser{Username: "weak", Password: pw})
		wantErr(t, "CreateUser with password "+pw, err, ErrInvalid, rule)
		wantErr(t, "SetPassword "+pw, s.SetPassword(ctx, bob.ID, pw), ErrInvalid, rule)
	}

	// A disabled user cannot log in, loses its sessions, and comes back
	// when enabled; the last enabled admin cannot be disabled.
	bobSess, err := s.CreateSession(ctx, bob.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetDisabled(ctx, bob.ID, true); err != nil {
		t.Fatal(err)
	}
	_, err = s.LookupSession(ctx, bobSess.Token)
	wantErr(t, "a disabled user's session", err, ErrNotFound)
	_, err = s.Authenticate(ctx, "bob", "password-bob")
	wantErr(t, "a disabled user's login", err, ErrForbidden, "disabled")
	_, err = s.Authenticate(ctx, "bob", "wrong password")
	wantErr(t, "a disabled user's wrong password", err, ErrUnauthorized)
	if u, _ := s.User(ctx, bob.ID); !u.Disabled {
		t.Errorf("bob is not marked disabled: %+v", u)
	}
	if err := s.SetDisabled(ctx, bob.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "bob", "password-bob"); err != nil {
		t.Errorf("bob enabled again: %v", err)
	}
	wantErr(t, "disable the last admin", s.SetDisabled(ctx, admin.ID, true), ErrConflict, "last enabled admin")
	wantErr(t, "disable an unknown user", s.SetDisabled(ctx, 9999, true), ErrNotFound)
}

func testSessions(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	u := mustUser(t, s, "ann", RoleAnnotator)
	sess, err := s.CreateSession(ctx, u.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(sess.Token) < 40 || len(sess.CSRFToken) < 40 || sess.Token == sess.CSRFToken {
		t.Errorf("tokens %q %q", sess.Token, sess.CSRFToken)
	}
	var stored int
	if err := s.db.QueryRow(s.q(`SELECT COUNT(*) FROM sessions WHERE token_hash = ?`), sess.Token).Scan(&stored); err != nil || stored != 0 {
		t.Errorf("the raw token is stored (%d rows, %v)", stored, err)
	}
	got, err := s.LookupSession(ctx, sess.Token)
	if err != nil {
		t.Fatal(err)
	}
	if got.User != u || got.CSRFToken != sess.CSRFToken || !got.ExpiresAt.Equal(sess.ExpiresAt) {
		t.Errorf("LookupSession = %+v, want %+v", got, sess)
	}
	_, err = s.LookupSession(ctx, "not-a-token")
	wantErr(t, "unknown token", err, ErrNotFound)
	if err := s.DeleteSession(ctx, sess.Token); err != nil {
		t.Fatal(err)
	}
	_, err = s.LookupSession(ctx, sess.Token)
	wantErr(t, "deleted session", err, ErrNotFound)

	short, err := s.CreateSession(ctx, u.ID, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupSession(ctx, short.Token); err != nil {
		t.Errorf("fresh session: %v", err)
	}
	time.Sleep(time.Until(short.ExpiresAt) + 10*time.Millisecond)
	_, err = s.LookupSession(ctx, short.Token)
	wantErr(t, "expired session", err, ErrNotFound, "expired")

	if _, err := s.CreateSession(ctx, u.ID, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSession(ctx, u.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if n, err := s.DeleteExpiredSessions(ctx); err != nil || n != 1 {
		t.Errorf("DeleteExpiredSessions = %d, %v; want 1", n, err)
	}
	_, err = s.CreateSession(ctx, 9999, time.Hour)
	wantErr(t, "session for unknown user", err, ErrNotFound)
	_, err = s.CreateSession(ctx, u.ID, 0)
	wantErr(t, "zero ttl", err, ErrInvalid)
}

func testImport(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	admin := mustUser(t, s, "admin", RoleAdmin)
	input := "\ufeff" + `{"prompt": "What is 2+2?"}` + "\n" +
		"\n" +
		`{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}], "source": "colours"}` + "\r\n" +
		`{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Tell me a <b>joke</b> \u2603"}]}` + "\n" +
		`{"prompt": "What is 2+2?", "source": "again"}` // the same prompt twice; no final newline
	b, err := s.ImportPrompts(ctx, strings.NewReader(input), ImportOptions{Name: "prompts.jsonl", By: admin.ID})
	if err != nil {
		t.Fatal(err)
	}
	if b.Added != 3 || b.Skipped != 1 || b.Source != "prompts.jsonl" || b.ImportedBy != admin.ID || b.ID == 0 {
		t.Errorf("Batch = %+v", b)
	}
	want := []Prompt{
		{Messages: []tokenizer.Message{{Role: "user", Content: "What is 2+2?"}}, Source: "prompts.jsonl"},
		{Messages: []tokenizer.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Name a colour."}}, Source: "colours"},
		{Messages: []tokenizer.Message{{Role: "user", Content: "Hi"}, {Role: "assistant", Content: "Hello!"}, {Role: "user", Content: "Tell me a <b>joke</b> \u2603"}}, Source: "prompts.jsonl"},
	}
	var ids []int64
	u := mustUser(t, s, "ann", RoleAnnotator)
	for i := range want {
		p, err := s.NextPrompt(ctx, u.ID, TaskDemonstrate)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(p.Messages, want[i].Messages) || p.Source != want[i].Source || p.BatchID != b.ID {
			t.Errorf("prompt %d = %+v, want %+v", i, p, want[i])
		}
		got, err := s.Prompt(ctx, p.ID)
		if err != nil || !reflect.DeepEqual(got, p) {
			t.Errorf("Prompt(%d) = %+v, %v; want %+v", p.ID, got, err, p)
		}
		ids = append(ids, p.ID)
		if _, err := s.AddDemonstration(ctx, Demonstration{PromptID: p.ID, AnnotatorID: u.ID, Response: "answer"}); err != nil {
			t.Fatal(err)
		}
	}
	if ids[0] >= ids[1] || ids[1] >= ids[2] {
		t.Errorf("prompts not in file order: %v", ids)
	}
	// Importing the same file again adds nothing.
	b2, err := s.ImportPrompts(ctx, strings.NewReader(input), ImportOptions{Name: "prompts.jsonl", Source: "second"})
	if err != nil || b2.Added != 0 || b2.Skipped != 4 {
		t.Errorf("second import = %+v, %v; want 0 added, 4 skipped", b2, err)
	}
	if n, err := s.CountPrompts(ctx); err != nil || n != 3 {
		t.Errorf("CountPrompts = %d, %v; want 3", n, err)
	}
	_, err = s.Prompt(ctx, 9999)
	wantErr(t, "Prompt(9999)", err, ErrNotFound)
	_, err = s.ImportPrompts(ctx, strings.NewReader(`{"prompt": "x"}`), ImportOptions{Name: "p.jsonl", By: 9999})
	wantErr(t, "import by unknown user", err, ErrNotFound, "p.jsonl")
}

func testImportErrors(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	good := `{"prompt": "fine"}` + "\n" + `{"prompt": "also fine"}` + "\n"
	for _, tc := range []struct {
		line string
		want string // in the error, after "bad.jsonl line 3: "
	}{
		{`{"prompt": "x"`, "malformed JSON"},
		{`not json`, "malformed JSON at byte"},
		{`{"prompt": "x", "answer": "y"}`, `unknown field "answer"`},
		{`{"prompt": 42}`, `"prompt" must be a string or a list of messages`},
		{`{"messages": "hello"}`, `field "messages"`},
		{`{"messages": [{"role": "user", "content": 7}]}`, `want a string`},
		{`{"prompt": [{"role": "user", "content": "x", "name": "bob"}]}`, `unknown field "name"`},
		{`{"source": "s"}`, `"prompt" or "messages" missing`},
		{`{"prompt": null}`, `"prompt" or "messages" missing`},
		{`{"prompt": "x", "messages": [{"role": "user", "content": "y"}]}`, `both "prompt" and "messages"`},
		{`{"prompt": ""}`, `message 1: "content" empty`},
		{`{"messages": []}`, "no messages"},
		{`{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}`, `the last message is from "assistant"`},
		{`{"messages": [{"role": "user", "content": "q"}, {"role": "system", "content": "s"}, {"role": "user", "content": "q"}]}`, `message 2: "system" is allowed only as the first message`},
		{`{"messages": [{"role": "robot", "content": "q"}]}`, `role "robot"`},
		{`{"messages": [{"content": "q"}]}`, `"role" missing`},
		{"{\"prompt\": \"bad \xff byte\"}", "not valid UTF-8"},
		{`{"prompt": "nul \u0000 byte"}`, "NUL character"},
		{`{"prompt": "x"} {"prompt": "y"}`, "more than one JSON value"},
		{`["prompt", "x"]`, "got a JSON array, want an object"},
		{`{"prompt": "x", "source": 5}`, `field "source"`},
	} {
		input := good + tc.line + "\n" + `{"prompt": "after"}` + "\n"
		_, err := s.ImportPrompts(ctx, strings.NewReader(input), ImportOptions{Name: "bad.jsonl"})
		wantErr(t, fmt.Sprintf("line %q", tc.line), err, ErrInvalid, "bad.jsonl line 3: ", tc.want)
	}
	_, err := s.ImportPrompts(ctx, strings.NewReader(good+strings.Repeat("x", maxLineBytes+10)), ImportOptions{Name: "huge.jsonl"})
	wantErr(t, "huge line", err, ErrInvalid, "huge.jsonl line 3: line longer than 4194304 bytes")
	_, err = s.ImportPrompts(ctx, strings.NewReader("\n  \n"), ImportOptions{Name: "empty.jsonl"})
	wantErr(t, "empty input", err, ErrInvalid, "empty.jsonl: ", "no prompts")
	_, err = s.ImportPrompts(ctx, strings.NewReader(good), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing from any failed import is there: only the two good prompts.
	if n, err := s.CountPrompts(ctx); err != nil || n != 2 {
		t.Errorf("CountPrompts after failed imports = %d, %v; want 2", n, err)
	}
	var batches int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM import_batches`).Scan(&batches); err != nil || batches != 1 {
		t.Errorf("import_batches has %d rows (%v), want 1", batches, err)
	}
}

func testQueue(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	a := mustUser(t, s, "a", RoleAnnotator)
	b := mustUser(t, s, "b", RoleAnnotator)
	_, err := s.NextPrompt(ctx, a.ID, TaskDemonstrate)
	wantErr(t, "empty store", err, ErrNotFound)
	ps := mustPrompts(t, s, 3)
	next := func(u User, task Task) int64 {
		t.Helper()
		p, err := s.NextPrompt(ctx, u.ID, task)
		if err != nil {
			t.Fatalf("NextPrompt(%s, %s): %v", u.Username, task, err)
		}
		return p.ID
	}
	if id := next(a, TaskDemonstrate); id != ps[0].ID {
		t.Errorf("a's first prompt = %d, want %d", id, ps[0].ID)
	}
	if _, err := s.AddDemonstration(ctx, Demonstration{PromptID: ps[0].ID, AnnotatorID: a.ID, Response: "r"}); err != nil {
		t.Fatal(err)
	}
	if id := next(a, TaskDemonstrate); id != ps[1].ID {
		t.Errorf("a's next prompt = %d, want %d (skips what a did)", id, ps[1].ID)
	}
	// b is sent to a prompt nobody has demonstrated yet.
	if id := next(b, TaskDemonstrate); id != ps[1].ID {
		t.Errorf("b's first prompt = %d, want %d (fewest labels first)", id, ps[1].ID)
	}
	// The ranking queue is separate from the demonstration queue, and
	// comparisons share it.
	if id := next(a, TaskRank); id != ps[0].ID {
		t.Errorf("a's first prompt to rank = %d, want %d", id, ps[0].ID)
	}
	if _, err := s.AddRanking(ctx, Ranking{PromptID: ps[0].ID, AnnotatorID: a.ID, Order: []int{1, 0},
		Responses: []Response{{Model: "m", Content: "x"}, {Model: "m", Content: "y"}}}); err != nil {
		t.Fatal(err)
	}
	if id := next(a, TaskCompare); id != ps[1].ID {
		t.Errorf("a's next comparison = %d, want %d", id, ps[1].ID)
	}
	for _, p := range ps[1:] {
		if _, err := s.AddDemonstration(ctx, Demonstration{PromptID: p.ID, AnnotatorID: a.ID, Response: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = s.NextPrompt(ctx, a.ID, TaskDemonstrate)
	wantErr(t, "a's queue done", err, ErrNotFound)
	_, err = s.NextPrompt(ctx, a.ID, "write poems")
	wantErr(t, "unknown task", err, ErrInvalid, "write poems")
}

// An annotator who skips a prompt is not offered it again in that queue
// (comparisons share the ranking queue); others still are, and the skip
// lasts across connections.
func testSkips(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	a := mustUser(t, s, "a", RoleAnnotator)
	b := mustUser(t, s, "b", RoleAnnotator)
	ps := mustPrompts(t, s, 2)
	next := func(u User, task Task) int64 {
		t.Helper()
		p, err := s.NextPrompt(ctx, u.ID, task)
		if errors.Is(err, ErrNotFound) {
			return 0
		}
		if err != nil {
			t.Fatalf("NextPrompt(%s, %s): %v", u.Username, task, err)
		}
		return p.ID
	}
	if err := s.SkipPrompt(ctx, a.ID, ps[0].ID, TaskRank, "only 1 distinct answer"); err != nil {
		t.Fatal(err)
	}
	if err := s.SkipPrompt(ctx, a.ID, ps[0].ID, TaskRank, "again"); err != nil {
		t.Errorf("skipping twice: %v", err)
	}
	if id := next(a, TaskRank); id != ps[1].ID {
		t.Errorf("a's next prompt to rank after skipping %d = %d, want %d", ps[0].ID, id, ps[1].ID)
	}
	if id := next(a, TaskCompare); id != ps[1].ID {
		t.Errorf("a's next comparison after skipping %d in the ranking queue = %d, want %d", ps[0].ID, id, ps[1].ID)
	}
	if id := next(a, TaskDemonstrate); id != ps[0].ID {
		t.Errorf("a's next prompt to write for = %d, want %d (a skip is per queue)", id, ps[0].ID)
	}
	if id := next(b, TaskRank); id != ps[0].ID {
		t.Errorf("b's next prompt to rank = %d, want %d (a skip is per annotator)", id, ps[0].ID)
	}
	// Once b has ranked the other prompt, the fewest-labels query must
	// still leave out a's skip.
	if _, err := s.AddRanking(ctx, Ranking{PromptID: ps[1].ID, AnnotatorID: b.ID, Order: []int{1, 0},
		Responses: []Response{{Model: "m", Content: "x"}, {Model: "m", Content: "y"}}}); err != nil {
		t.Fatal(err)
	}
	if id := next(a, TaskRank); id != ps[1].ID {
		t.Errorf("a's next prompt to rank = %d, want %d", id, ps[1].ID)
	}
	if err := s.SkipPrompt(ctx, a.ID, ps[1].ID, TaskCompare, ""); err != nil {
		t.Fatal(err)
	}
	if id := next(a, TaskRank); id != 0 {
		t.Errorf("a skipped every prompt, yet NextPrompt gave %d", id)
	}
	s2 := open(t, dsn)
	if _, err := s2.NextPrompt(ctx, a.ID, TaskCompare); !errors.Is(err, ErrNotFound) {
		t.Errorf("a new connection offers a skipped prompt: %v", err)
	}
	if p, err := s2.Progress(ctx, a.ID); err != nil || p.Skipped != 2 {
		t.Errorf("Progress = %+v, %v; want 2 skipped", p, err)
	}
	wantErr(t, "skip of an unknown prompt", s.SkipPrompt(ctx, a.ID, 9999, TaskRank, ""), ErrNotFound, "prompt 9999")
	wantErr(t, "skip by an unknown annotator", s.SkipPrompt(ctx, 9999, ps[0].ID, TaskRank, ""), ErrNotFound, "annotator 9999")
	wantErr(t, "skip of an unknown task", s.SkipPrompt(ctx, a.ID, ps[0].ID, "dance", ""), ErrInvalid, "dance")
	wantErr(t, "a long reason", s.SkipPrompt(ctx, a.ID, ps[0].ID, TaskRank, strings.Repeat("x", maxReasonBytes+1)), ErrInvalid, "reason")
	wantErr(t, "a NUL in the reason", s.SkipPrompt(ctx, a.ID, ps[0].ID, TaskRank, "a\x00b"), ErrInvalid, "reason")
}

// A store made before skips (schema 1, with labels) is upgraded by Open,
// keeps its labels, and takes skips.
func testUpgradeToSkips(t *testing.T, dsn string) {
	ctx := context.Background()
	old, err := openStore(ctx, dsn, false, migrations[:1]) // an older golem's store
	if err != nil {
		t.Fatal(err)
	}
	a := mustUser(t, old, "a", RoleAnnotator)
	ps := mustPrompts(t, old, 2)
	if _, err := old.AddDemonstration(ctx, Demonstration{PromptID: ps[0].ID, AnnotatorID: a.ID, Response: "r"}); err != nil {
		t.Fatal(err)
	}
	old.Close()
	s := open(t, dsn)
	if v, err := s.SchemaVersion(ctx); err != nil || v != migrations[len(migrations)-1].version {
		t.Fatalf("SchemaVersion after the upgrade = %d, %v; want %d", v, err, migrations[len(migrations)-1].version)
	}
	if err := s.SkipPrompt(ctx, a.ID, ps[1].ID, TaskDemonstrate, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NextPrompt(ctx, a.ID, TaskDemonstrate); !errors.Is(err, ErrNotFound) {
		t.Errorf("NextPrompt after a demonstration and a skip: %v; want none left", err)
	}
	if p, err := s.Progress(ctx, a.ID); err != nil || p.Demonstrations != 1 || p.Skipped != 1 {
		t.Errorf("Progress after the upgrade = %+v, %v", p, err)
	}
}

func testDemonstrations(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	a := mustUser(t, s, "a", RoleAnnotator)
	b := mustUser(t, s, "b", RoleAnnotator)
	ps := mustPrompts(t, s, 2)
	d, err := s.AddDemonstration(ctx, Demonstration{PromptID: ps[0].ID, AnnotatorID: a.ID, Response: "Four. <script>alert(1)</script>"})
	if err != nil {
		t.Fatal(err)
	}
	if d.ID == 0 || d.CreatedAt.IsZero() || !d.UpdatedAt.Equal(d.CreatedAt) {
		t.Errorf("AddDemonstration = %+v", d)
	}
	got, err := s.Demonstration(ctx, d.ID)
	if err != nil || !reflect.DeepEqual(got, d) {
		t.Errorf("Demonstration(%d) = %+v, %v; want %+v", d.ID, got, err, d)
	}
	_, err = s.AddDemonstration(ctx, Demonstration{PromptID: ps[0].ID, AnnotatorID: a.ID, Response: "again"})
	wantErr(t, "second demonstration", err, ErrConflict)
	_, err = s.AddDemonstration(ctx, Demonstration{PromptID: 9999, AnnotatorID: a.ID, Response: "x"})
	wantErr(t, "unknown prompt", err, ErrNotFound, "prompt 9999")
	_, err = s.AddDemonstration(ctx, Demonstration{PromptID: ps[0].ID, AnnotatorID: 9999, Response: "x"})
	wantErr(t, "unknown annotator", err, ErrNotFound, "annotator 9999")
	for _, resp := range []string{"", "  \n", "bad \xff", "nul \x00 byte", strings.Repeat("x", maxResponseBytes+1)} {
		_, err = s.AddDemonstration(ctx, Demonstration{PromptID: ps[1].ID, AnnotatorID: a.ID, Response: resp})
		wantErr(t, fmt.Sprintf("response %.20q", resp), err, ErrInvalid, "response")
	}

	// Only the author changes or deletes a demonstration.
	_, err = s.UpdateDemonstration(ctx, b.ID, d.ID, "hijacked")
	wantErr(t, "update by another annotator", err, ErrForbidden)
	wantErr(t, "delete by another annotator", s.DeleteDemonstration(ctx, b.ID, d.ID), ErrForbidden)
	if got, _ := s.Demonstration(ctx, d.ID); got.Response != d.Response {
		t.Errorf("another annotator changed the response to %q", got.Response)
	}
	time.Sleep(2 * time.Millisecond)
	up, err := s.UpdateDemonstration(ctx, a.ID, d.ID, "Four.")
	if err != nil {
		t.Fatal(err)
	}
	if up.Response != "Four." || !up.CreatedAt.Equal(d.CreatedAt) || !up.UpdatedAt.After(d.UpdatedAt) {
		t.Errorf("UpdateDemonstration = %+v (was %+v)", up, d)
	}
	_, err = s.UpdateDemonstration(ctx, a.ID, d.ID, "")
	wantErr(t, "update to empty", err, ErrInvalid)
	if err := s.DeleteDemonstration(ctx, a.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.Demonstration(ctx, d.ID)
	wantErr(t, "deleted demonstration", err, ErrNotFound)
	_, err = s.UpdateDemonstration(ctx, a.ID, d.ID, "x")
	wantErr(t, "update deleted", err, ErrNotFound)
	wantErr(t, "delete deleted", s.DeleteDemonstration(ctx, a.ID, d.ID), ErrNotFound)
	// A new demonstration never reuses a deleted one's id.
	d2, err := s.AddDemonstration(ctx, Demonstration{PromptID: ps[0].ID, AnnotatorID: a.ID, Response: "Four"})
	if err != nil || d2.ID <= d.ID {
		t.Errorf("re-add after delete = %+v, %v; want an id above %d", d2, err, d.ID)
	}
}

func rank4(promptID, annotatorID int64) Ranking {
	return Ranking{
		PromptID: promptID, AnnotatorID: annotatorID,
		Responses: []Response{
			{Model: "small", Content: "Paris is the capital of Germany.", Flags: []string{"incorrect", "hallucination"}},
			{Model: "big", Content: "Paris."},
			{Model: "small", Content: "It is Paris, a city on the Seine."},
			{Model: "big", Content: "I won't answer that.", Flags: []string{"ignores_instruction"}},
		},
		Order: []int{1, 2, 3, 0},
	}
}

func testRankings(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	a := mustUser(t, s, "a", RoleAnnotator)
	b := mustUser(t, s, "b", RoleAnnotator)
	ps := mustPrompts(t, s, 2)
	in := rank4(ps[0].ID, a.ID)
	r, err := s.AddRanking(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if r.ID == 0 || r.K() != 4 || !reflect.DeepEqual(r.Responses, in.Responses) || !reflect.DeepEqual(r.Order, in.Order) {
		t.Errorf("AddRanking = %+v", r)
	}
	got, err := s.Ranking(ctx, r.ID)
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Errorf("Ranking(%d) = %+v, %v\nwant %+v", r.ID, got, err, r)
	}
	wantPairs := [][2]int{{1, 2}, {1, 3}, {1, 0}, {2, 3}, {2, 0}, {3, 0}}
	if !reflect.DeepEqual(r.Pairs(), wantPairs) {
		t.Errorf("Pairs = %v, want %v", r.Pairs(), wantPairs)
	}
	_, err = s.AddRanking(ctx, rank4(ps[0].ID, a.ID))
	wantErr(t, "second ranking of a prompt", err, ErrConflict)
	_, err = s.AddRanking(ctx, rank4(9999, a.ID))
	wantErr(t, "unknown prompt", err, ErrNotFound)

	// Only the author changes or deletes a ranking.
	_, err = s.UpdateRanking(ctx, b.ID, r.ID, []int{0, 1, 2, 3}, nil)
	wantErr(t, "update by another annotator", err, ErrForbidden)
	wantErr(t, "delete by another annotator", s.DeleteRanking(ctx, b.ID, r.ID), ErrForbidden)
	_, err = s.UpdateRanking(ctx, a.ID, r.ID, []int{0, 1, 1, 3}, nil)
	wantErr(t, "update with a tie", err, ErrInvalid, "ranked twice")
	_, err = s.UpdateRanking(ctx, a.ID, r.ID, []int{0, 1, 2, 3}, [][]string{{"harmful"}})
	wantErr(t, "update with too few flag lists", err, ErrInvalid, "1 flag lists for 4 answers")
	if got, _ := s.Ranking(ctx, r.ID); !reflect.DeepEqual(got, r) {
		t.Errorf("a refused update changed the ranking to %+v", got)
	}
	up, err := s.UpdateRanking(ctx, a.ID, r.ID, []int{2, 1, 0, 3}, [][]string{{"incorrect"}, nil, nil, {"harmful", "violent"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err = s.Ranking(ctx, r.ID)
	if err != nil || !reflect.DeepEqual(got, up) {
		t.Errorf("after update Ranking = %+v, %v\nwant %+v", got, err, up)
	}
	if !reflect.DeepEqual(got.Order, []int{2, 1, 0, 3}) || got.Responses[0].Flags[0] != "incorrect" ||
		got.Responses[1].Flags != nil || !reflect.DeepEqual(got.Responses[3].Flags, []string{"harmful", "violent"}) ||
		got.Responses[2].Content != in.Responses[2].Content || !got.CreatedAt.Equal(r.CreatedAt) {
		t.Errorf("updated ranking = %+v", got)
	}
	if err := s.DeleteRanking(ctx, a.ID, r.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.Ranking(ctx, r.ID)
	wantErr(t, "deleted ranking", err, ErrNotFound)
	var orphans int
	if err := s.db.QueryRow(s.q(`SELECT COUNT(*) FROM ranking_responses WHERE ranking_id = ?`), r.ID).Scan(&orphans); err != nil || orphans != 0 {
		t.Errorf("%d answers of the deleted ranking remain (%v)", orphans, err)
	}
	_, err = s.UpdateRanking(ctx, a.ID, r.ID, []int{0, 1, 2, 3}, nil)
	wantErr(t, "update deleted", err, ErrNotFound)
}

func testRankingErrors(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	a := mustUser(t, s, "a", RoleAnnotator)
	ps := mustPrompts(t, s, 1)
	for _, tc := range []struct {
		name   string
		change func(r *Ranking)
		want   string
	}{
		{"one answer", func(r *Ranking) { r.Responses = r.Responses[:1]; r.Order = []int{0} }, "2 to 16 answers, got 1"},
		{"no answers", func(r *Ranking) { r.Responses = nil; r.Order = nil }, "got 0"},
		{"17 answers", func(r *Ranking) {
			r.Responses, r.Order = nil, nil
			for i := range 17 {
				r.Responses = append(r.Responses, Response{Model: "m", Content: fmt.Sprint("answer ", i)})
				r.Order = append(r.Order, i)
			}
		}, "got 17"},
		{"tie", func(r *Ranking) { r.Order = []int{0, 0, 1, 2} }, "answer 0 is ranked twice; ties are not allowed"},
		{"short order", func(r *Ranking) { r.Order = []int{0, 1, 2} }, "orders 3 answers but there are 4"},
		{"out of range", func(r *Ranking) { r.Order = []int{0, 1, 2, 4} }, "place 4 names answer 4"},
		{"negative", func(r *Ranking) { r.Order = []int{0, 1, 2, -1} }, "names answer -1"},
		{"identical answers", func(r *Ranking) { r.Responses[3].Content = r.Responses[1].Content }, "answers 1 and 3 are identical"},
		{"empty answer", func(r *Ranking) { r.Responses[2].Content = " " }, "answer 2 is empty"},
		{"no model", func(r *Ranking) { r.Responses[2].Model = "" }, "answer 2: model"},
		{"unknown flag", func(r *Ranking) { r.Responses[1].Flags = []string{"boring"} }, `answer 1: unknown flag "boring"`},
		{"flag twice", func(r *Ranking) { r.Responses[1].Flags = []string{"harmful", "harmful"} }, `flag "harmful" given twice`},
		{"invalid UTF-8", func(r *Ranking) { r.Responses[0].Content = "\xc3" }, "answer 0 is not valid UTF-8"},
	} {
		r := rank4(ps[0].ID, a.ID)
		tc.change(&r)
		_, err := s.AddRanking(ctx, r)
		wantErr(t, tc.name, err, ErrInvalid, tc.want)
	}
	var n int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM rankings`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d rankings stored from bad input (%v)", n, err)
	}
	// The caller's slices are copied, not kept.
	r := rank4(ps[0].ID, a.ID)
	added, err := s.AddRanking(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	r.Order[0], r.Responses[0].Flags[0] = 3, "harmful"
	if added.Order[0] != 1 || added.Responses[0].Flags[0] != "incorrect" {
		t.Errorf("AddRanking's result shares the caller's slices: %+v", added)
	}
}

func testListAndProgress(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	a := mustUser(t, s, "a", RoleAnnotator)
	b := mustUser(t, s, "b", RoleAnnotator)
	ps := mustPrompts(t, s, 5)
	var wantD []Demonstration
	var wantR []Ranking
	for i, p := range ps[:3] {
		d, err := s.AddDemonstration(ctx, Demonstration{PromptID: p.ID, AnnotatorID: a.ID, Response: fmt.Sprint("demo ", i)})
		if err != nil {
			t.Fatal(err)
		}
		wantD = append(wantD, d)
	}
	if _, err := s.AddDemonstration(ctx, Demonstration{PromptID: ps[0].ID, AnnotatorID: b.ID, Response: "b's"}); err != nil {
		t.Fatal(err)
	}
	r, err := s.AddRanking(ctx, rank4(ps[0].ID, a.ID))
	if err != nil {
		t.Fatal(err)
	}
	wantR = append(wantR, r)
	for _, p := range ps[1:3] {
		r, err := s.AddRanking(ctx, Ranking{PromptID: p.ID, AnnotatorID: a.ID, Order: []int{1, 0},
			Responses: []Response{{Model: "m1", Content: "one"}, {Model: "m2", Content: "two"}}})
		if err != nil {
			t.Fatal(err)
		}
		wantR = append(wantR, r)
	}
	if _, err := s.AddRanking(ctx, rank4(ps[4].ID, b.ID)); err != nil {
		t.Fatal(err)
	}
	l, err := s.ListByAnnotator(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(l.Demonstrations, wantD) || !reflect.DeepEqual(l.Rankings, wantR) {
		t.Errorf("ListByAnnotator(a) = %+v\nwant %+v %+v", l, wantD, wantR)
	}
	pa, err := s.Progress(ctx, a.ID)
	if want := (Progress{AnnotatorID: a.ID, Prompts: 5, Demonstrations: 3, Rankings: 3, Comparisons: 2, LeftDemonstrate: 2, LeftRank: 2}); err != nil || pa != want {
		t.Errorf("Progress(a) = %+v, %v; want %+v", pa, err, want)
	}
	pb, err := s.Progress(ctx, b.ID)
	if want := (Progress{AnnotatorID: b.ID, Prompts: 5, Demonstrations: 1, Rankings: 1, LeftDemonstrate: 4, LeftRank: 4}); err != nil || pb != want {
		t.Errorf("Progress(b) = %+v, %v; want %+v", pb, err, want)
	}
	l, err = s.ListByAnnotator(ctx, 9999)
	if err != nil || len(l.Demonstrations)+len(l.Rankings) != 0 {
		t.Errorf("ListByAnnotator(9999) = %+v, %v", l, err)
	}
}

func testExport(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	a := mustUser(t, s, "a", RoleAnnotator)
	_, err := s.ImportPrompts(ctx, strings.NewReader(
		`{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]}`+"\n"+
			`{"prompt": "Say hi <3"}`+"\n"), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p1, _ := s.NextPrompt(ctx, a.ID, TaskDemonstrate)
	if _, err := s.AddDemonstration(ctx, Demonstration{PromptID: p1.ID, AnnotatorID: a.ID, Response: "Paris."}); err != nil {
		t.Fatal(err)
	}
	p2, _ := s.NextPrompt(ctx, a.ID, TaskDemonstrate)
	if _, err := s.AddDemonstration(ctx, Demonstration{PromptID: p2.ID, AnnotatorID: a.ID, Response: "Hi <3"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRanking(ctx, rank4(p1.ID, a.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRanking(ctx, Ranking{PromptID: p2.ID, AnnotatorID: a.ID, Order: []int{1, 0},
		Responses: []Response{{Model: "m", Content: "hello"}, {Model: "m", Content: "Hi!"}}}); err != nil {
		t.Fatal(err)
	}
	export := func(kind ExportKind) []string {
		t.Helper()
		var buf bytes.Buffer
		n, err := s.ExportJSONL(ctx, &buf, kind)
		if err != nil {
			t.Fatalf("ExportJSONL(%s): %v", kind, err)
		}
		lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		if n != len(lines) {
			t.Errorf("ExportJSONL(%s) says %d lines, wrote %d", kind, n, len(lines))
		}
		return lines
	}
	sft := export(ExportSFT)
	wantSFT := []string{
		`{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Capital of France?"},{"role":"assistant","content":"Paris."}]}`,
		`{"messages":[{"role":"user","content":"Say hi <3"},{"role":"assistant","content":"Hi <3"}]}`,
	}
	if !reflect.DeepEqual(sft, wantSFT) {
		t.Errorf("SFT export:\n%s\nwant\n%s", strings.Join(sft, "\n"), strings.Join(wantSFT, "\n"))
	}
	rk := export(ExportRankings)
	var rec struct {
		Prompt      []tokenizer.Message   `json:"prompt"`
		Completions [][]tokenizer.Message `json:"completions"`
		Ranking     []int                 `json:"ranking"`
	}
	if len(rk) != 2 {
		t.Fatalf("rankings export has %d lines, want 2", len(rk))
	}
	if err := json.Unmarshal([]byte(rk[0]), &rec); err != nil {
		t.Fatal(err)
	}
	r4 := rank4(0, 0)
	if !reflect.DeepEqual(rec.Prompt, p1.Messages) || len(rec.Completions) != 4 || !reflect.DeepEqual(rec.Ranking, r4.Order) ||
		rec.Completions[2][0] != (tokenizer.Message{Role: "assistant", Content: r4.Responses[2].Content}) {
		t.Errorf("rankings line 1 = %s", rk[0])
	}
	wantLine2 := `{"prompt":[{"role":"user","content":"Say hi <3"}],"completions":[[{"role":"assistant","content":"hello"}],[{"role":"assistant","content":"Hi!"}]],"ranking":[1,0]}`
	if rk[1] != wantLine2 {
		t.Errorf("rankings line 2 = %s\nwant %s", rk[1], wantLine2)
	}
	pref := export(ExportPreferences)
	if len(pref) != 6+1 {
		t.Fatalf("preferences export has %d lines, want C(4,2)+C(2,2) = 7", len(pref))
	}
	type prefRec struct {
		Prompt   []tokenizer.Message `json:"prompt"`
		Chosen   []tokenizer.Message `json:"chosen"`
		Rejected []tokenizer.Message `json:"rejected"`
	}
	better := map[[2]string]bool{}
	for i, line := range pref {
		var pr prefRec
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&pr); err != nil {
			t.Fatalf("preferences line %d: %v", i+1, err)
		}
		if len(pr.Chosen) != 1 || len(pr.Rejected) != 1 || pr.Chosen[0].Role != "assistant" || pr.Rejected[0].Role != "assistant" {
			t.Errorf("preferences line %d: %s", i+1, line)
		}
		better[[2]string{pr.Chosen[0].Content, pr.Rejected[0].Content}] = true
	}
	// rank4's order is 1, 2, 3, 0: every earlier answer beats every later one.
	for i, hi := range r4.Order {
		for _, lo := range r4.Order[i+1:] {
			if !better[[2]string{r4.Responses[hi].Content, r4.Responses[lo].Content}] {
				t.Errorf("pair (%d over %d) missing from the preferences export", hi, lo)
			}
		}
	}
	if pref[6] != `{"prompt":[{"role":"user","content":"Say hi <3"}],"chosen":[{"role":"assistant","content":"Hi!"}],"rejected":[{"role":"assistant","content":"hello"}]}` {
		t.Errorf("preferences line 7 = %s", pref[6])
	}
	// What the export writes is what the data package reads for training.
	for kind, want := range map[ExportKind]int{ExportSFT: len(sft), ExportRankings: len(rk), ExportPreferences: len(pref)} {
		ds, err := s.Dataset(ctx, kind)
		if err != nil || len(ds.Examples) != want {
			t.Errorf("Dataset(%s): %v; want %d examples", kind, err, want)
		}
	}
	_, err = s.ExportJSONL(ctx, &bytes.Buffer{}, "csv")
	wantErr(t, "unknown export kind", err, ErrInvalid, `"csv"`)
	_, err = s.ExportJSONL(ctx, failWriter{}, ExportSFT)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("export to a failing writer: %v", err)
	}
	// An error from an iterator's fn stops it and comes back.
	stop := errors.New("stop")
	calls := 0
	err = s.Rankings(ctx, func(Prompt, Ranking) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Errorf("Rankings with a failing fn: %v after %d calls", err, calls)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// testConcurrentWrites has eight writers label at once: none fails with a
// busy or locked database, and every write is there.
func testConcurrentWrites(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	const writers, each = 8, 15
	mustPrompts(t, s, each)
	var users []User
	for i := range writers {
		users = append(users, mustUser(t, s, fmt.Sprint("w", i), RoleAnnotator))
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*2)
	for _, u := range users {
		wg.Go(func() {
			for range each {
				p, err := s.NextPrompt(ctx, u.ID, TaskDemonstrate)
				if err != nil {
					errs <- err
					return
				}
				if _, err := s.AddDemonstration(ctx, Demonstration{PromptID: p.ID, AnnotatorID: u.ID, Response: "r"}); err != nil {
					errs <- err
				}
				if _, err := s.AddRanking(ctx, rank4(p.ID, u.ID)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, u := range users {
		if p, err := s.Progress(ctx, u.ID); err != nil || p.Demonstrations != each || p.Rankings != each {
			t.Errorf("Progress(%s) = %+v, %v; want %d of each", u.Username, p, err, each)
		}
	}
}

// The kill -9 test: the child is this test binary, started again with
// childDSNEnv set. It labels as fast as it can from several goroutines and
// prints "ack ..." for every write after the store returned; the parent
// kills it mid-burst, reopens the store, and checks that every
// acknowledged write is there.
const childDSNEnv = "GOLEM_STORE_KILL_CHILD_DSN"

func TestMain(m *testing.M) {
	if dsn := os.Getenv(childDSNEnv); dsn != "" {
		killChild(dsn)
		return
	}
	flag.Parse()
	if testing.Short() {
		// Argon2id at 64 KiB and 1 pass, the same code: OWASP's cost was
		// two thirds of the package's CPU. TestArgon2Bounded and the full
		// run hash at OWASP's.
		CheapPasswordsForTests()
	}
	os.Exit(m.Run())
}

func killChild(dsn string) {
	ctx := context.Background()
	s, err := Open(ctx, dsn)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	users, err := s.Users(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	ack := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		// One write(2) per line: once it returns, the parent can read it
		// even after this process dies.
		os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n")
	}
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			for i := 0; ; i++ {
				task := TaskDemonstrate
				if i%2 == 1 {
					task = TaskRank
				}
				p, err := s.NextPrompt(ctx, u.ID, task)
				if errors.Is(err, ErrNotFound) {
					return
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "child:", err)
					os.Exit(2)
				}
				if task == TaskDemonstrate {
					text := fmt.Sprintf("demo by %d of %d", u.ID, p.ID)
					d, err := s.AddDemonstration(ctx, Demonstration{PromptID: p.ID, AnnotatorID: u.ID, Response: text})
					if err != nil {
						fmt.Fprintln(os.Stderr, "child:", err)
						os.Exit(2)
					}
					ack("ack demo %d %d %d", d.ID, p.ID, u.ID)
				} else {
					r, err := s.AddRanking(ctx, rank4(p.ID, u.ID))
					if err != nil {
						fmt.Fprintln(os.Stderr, "child:", err)
						os.Exit(2)
					}
					ack("ack rank %d %d %d", r.ID, p.ID, u.ID)
				}
			}
		})
	}
	wg.Wait()
	ack("done")
	os.Exit(0)
}

func testKillDuringWrites(t *testing.T, dsn string) {
	if testing.Short() {
		t.Skip("starts a child process; skipped in -short mode")
	}
	ctx := context.Background()
	s := open(t, dsn)
	for i := range 4 {
		mustUser(t, s, fmt.Sprint("k", i), RoleAnnotator)
	}
	mustPrompts(t, s, 400)
	s.Close()

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childDSNEnv+"="+dsn)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acks []string
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		acks = append(acks, sc.Text())
		if len(acks) == 150 && !killed {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("the child finished before it was killed (%d acks, %v): %s", len(acks), err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("child stderr: %s", stderr.String())
	}

	s = open(t, dsn)
	var nDemo, nRank int
	for _, line := range acks {
		var kind string
		var id, promptID, userID int64
		if _, err := fmt.Sscanf(line, "ack %s %d %d %d", &kind, &id, &promptID, &userID); err != nil {
			t.Fatalf("child printed %q: %v", line, err)
		}
		switch kind {
		case "demo":
			nDemo++
			d, err := s.Demonstration(ctx, id)
			if err != nil || d.PromptID != promptID || d.AnnotatorID != userID || d.Response != fmt.Sprintf("demo by %d of %d", userID, promptID) {
				t.Errorf("acknowledged demonstration %d: %+v, %v", id, d, err)
			}
		case "rank":
			nRank++
			r, err := s.Ranking(ctx, id)
			if err != nil || r.PromptID != promptID || r.AnnotatorID != userID || !reflect.DeepEqual(r.Order, rank4(0, 0).Order) || r.K() != 4 {
				t.Errorf("acknowledged ranking %d: %+v, %v", id, r, err)
			}
		}
	}
	// The store is usable after the crash: a new write goes in.
	u := mustUser(t, s, "after", RoleAnnotator)
	p, err := s.NextPrompt(ctx, u.ID, TaskDemonstrate)
	if err == nil {
		_, err = s.AddDemonstration(ctx, Demonstration{PromptID: p.ID, AnnotatorID: u.ID, Response: "after the crash"})
	}
	if err != nil {
		t.Errorf("write after the crash: %v", err)
	}
	t.Logf("killed the child after %d acknowledged writes (%d demonstrations, %d rankings); all found", len(acks), nDemo, nRank)
}
