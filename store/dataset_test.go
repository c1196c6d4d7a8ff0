package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
