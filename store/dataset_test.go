package store

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/internal/shared"

	"github.com/golem-ml/golem/data"
)

// The store reads as the training stages read the files ExportJSONL writes:
// demonstrations as conversations, rankings as rankings, every ranked pair
// as a preference; ExportFile writes the same lines atomically.
func TestReadDataset(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "labels.db")
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateUser(ctx, NewUser{Username: "ann", Password: "ann-password"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImportPrompts(ctx, strings.NewReader(`{"prompt": "Name a fruit."}`+"\n"), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadDataset(ctx, dsn, ExportSFT); err == nil || !strings.Contains(err.Error(), "no sft labels") {
		t.Fatalf("empty store: %v", err)
	}
	if _, err := s.AddDemonstration(ctx, Demonstration{PromptID: 1, AnnotatorID: u.ID, Response: "An apple."}); err != nil {
		t.Fatal(err)
	}
	resp := []Response{{Model: "m", Content: "Pear."}, {Model: "m", Content: "A rock."}, {Model: "m", Content: "Plum."}}
	if _, err := s.AddRanking(ctx, Ranking{PromptID: 1, AnnotatorID: u.ID, Responses: resp, Order: []int{2, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	for kind, want := range map[ExportKind]struct {
		kind data.Kind
		n    int
	}{ExportSFT: {data.LanguageModeling, 1}, ExportRankings: {data.Ranking, 1}, ExportPreferences: {data.Preference, 3}} {
		ds, err := ReadDataset(ctx, dsn, kind)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if len(ds.Examples) != want.n || ds.Examples[0].Kind != want.kind {
			t.Fatalf("%s: %d examples of kind %v, want %d of %v", kind, len(ds.Examples), ds.Examples[0].Kind, want.n, want.kind)
		}
		path := filepath.Join(dir, string(kind)+".jsonl")
		n, err := ExportFile(ctx, dsn, kind, path)
		if err != nil || n != want.n {
			t.Fatalf("export %s: %d lines, %v", kind, n, err)
		}
		fromFile, err := data.Read(path, data.ReadOptions{})
		if err != nil || len(fromFile.Examples) != want.n || fromFile.Examples[0].Kind != want.kind {
			t.Fatalf("%s file: %v", kind, err)
		}
	}
	ds, _ := ReadDataset(ctx, dsn, ExportRankings)
	if r := ds.Examples[0]; r.Completions[r.Ranking[0]][0].Content != "Plum." {
		t.Errorf("best answer %+v", r)
	}
	ds, _ = ReadDataset(ctx, dsn, ExportSFT)
	if m := ds.Examples[0].Messages(); len(m) != 2 || m[1].Content != "An apple." {
		t.Errorf("sft conversation %+v", m)
	}
	if _, err := ExportFile(ctx, dsn, "nope", filepath.Join(dir, "x.jsonl")); err == nil {
		t.Error("unknown kind exported")
	}
	if _, err := os.Stat(filepath.Join(dir, "x.jsonl")); err == nil {
		t.Error("a failed export left a file")
	}
	if !IsDSN("sqlite:a.db") || !IsDSN("postgres://x") || IsDSN("data.jsonl") {
		t.Error("IsDSN")
	}
}

// testOpenExisting: reading a store that is not there is an error naming
// it, and creates nothing (it used to create an empty database and read 0
// labels from it); a store golem serve made reads.
func testOpenExisting(t *testing.T, dsn string) {
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "out.jsonl")
	want := "store: " + dsn + ": no such database (golem serve creates one; check the path)"
	if strings.HasPrefix(dsn, "postgres") {
		want = "store: " + redact(dsn) + ": not a golem store, it has no golem tables (golem serve creates them; check the database name and search_path)"
	}
	for name, read := range map[string]func() error{
		"OpenExisting": func() error { _, err := OpenExisting(ctx, dsn); return err },
		"ReadDataset":  func() error { _, err := ReadDataset(ctx, dsn, ExportSFT); return err },
		"ExportFile":   func() error { _, err := ExportFile(ctx, dsn, ExportSFT, out); return err },
	} {
		err := read()
		wantErr(t, name+" of a missing store", err, ErrNotFound, want)
		if err != nil && strings.Contains(err.Error(), "golem-test-password") {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("ExportFile of a missing store wrote a file")
	}
	if strings.HasPrefix(dsn, "postgres") {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&n); err != nil || n != 0 {
			t.Errorf("reading an empty database made %d tables (%v)", n, err)
		}
	} else if m, _ := filepath.Glob(strings.TrimPrefix(dsn, "sqlite:") + "*"); len(m) > 0 {
		t.Errorf("reading a missing store created %v", m)
	}

	s := open(t, dsn) // golem serve --db creates it
	mustUser(t, s, "a", RoleAnnotator)
	r, err := OpenExisting(ctx, dsn)
	if err != nil {
		t.Fatalf("OpenExisting of a store Open made: %v", err)
	}
	defer r.Close()
	if users, err := r.Users(ctx); err != nil || len(users) != 1 {
		t.Errorf("Users = %v, %v; want the one user", users, err)
	}
	if n, err := ExportFile(ctx, dsn, ExportSFT, out); err != nil || n != 0 {
		t.Errorf("ExportFile of a store without labels: %d, %v; want 0 lines", n, err)
	}
}

// A path that is not a SQLite file of golem's is refused with its name; a
// PostgreSQL database that does not exist is an error.
func TestOpenExistingNotAStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	text := filepath.Join(dir, "data.jsonl")
	os.WriteFile(text, []byte(`{"prompt": "hi"}`+"\n"), 0o644)
	empty := filepath.Join(dir, "empty.db")
	os.WriteFile(empty, nil, 0o644)
	for _, tc := range []struct{ dsn, want string }{
		{"sqlite:" + dir, "is not a file"},
		{"sqlite:" + text, "sqlite:" + text + ": file is not a database"},
		{"sqlite:" + empty, "sqlite:" + empty + ": not a golem store"},
		{filepath.Join(dir, "typo.db"), filepath.Join(dir, "typo.db") + ": no such database"},
	} {
		s, err := OpenExisting(ctx, tc.dsn)
		if err == nil {
			s.Close()
			t.Errorf("OpenExisting(%s) succeeded", tc.dsn)
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("OpenExisting(%s): %v; want %q", tc.dsn, err, tc.want)
		}
	}
	if b, _ := os.ReadFile(text); string(b) != `{"prompt": "hi"}`+"\n" {
		t.Errorf("the text file changed: %q", b)
	}
	if fi, _ := os.Stat(empty); fi.Size() != 0 {
		t.Errorf("the empty file grew to %d bytes", fi.Size())
	}

	base := os.Getenv("GOLEM_TEST_POSTGRES")
	if base == "" {
		msg := "GOLEM_TEST_POSTGRES is not set: `source .ci/postgres.sh` starts a PostgreSQL server and sets it"
		shared.Missing(t, msg+" (CI must run the PostgreSQL checks)")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/golem_no_such_database"
	_, err = OpenExisting(ctx, u.String())
	if err == nil || !strings.Contains(err.Error(), `database "golem_no_such_database" does not exist`) {
		t.Errorf("OpenExisting of a missing PostgreSQL database: %v", err)
	}
}
