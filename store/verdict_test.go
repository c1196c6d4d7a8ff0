package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/golem-ml/golem/data"
)

func writeTemp(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rankings.jsonl")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// A comparison may be a tie or both bad, and answers carry 1-7 ratings;
// they survive a reopen and an edit, and the exports carry them: a tie is
// no preference pair, and labels without them export as before.
func testVerdictsAndRatings(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	a := mustUser(t, s, "a", RoleAnnotator)
	ps := mustPrompts(t, s, 4)
	two := func(p Prompt, verdict string) Ranking {
		return Ranking{PromptID: p.ID, AnnotatorID: a.ID, Order: []int{0, 1}, Verdict: verdict,
			Responses: []Response{{Model: "m", Content: "left " + p.Messages[0].Content}, {Model: "m", Content: "right"}}}
	}
	tie, err := s.AddRanking(ctx, two(ps[0], VerdictTie))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRanking(ctx, two(ps[1], VerdictBothBad)); err != nil {
		t.Fatal(err)
	}
	won := two(ps[2], "")
	won.Order = []int{1, 0}
	if _, err := s.AddRanking(ctx, won); err != nil {
		t.Fatal(err)
	}
	rated := rank4(ps[3].ID, a.ID)
	for i := range rated.Responses {
		rated.Responses[i].Rating = 7 - i
	}
	r4, err := s.AddRanking(ctx, rated)
	if err != nil {
		t.Fatal(err)
	}
	s2 := open(t, dsn)
	got, err := s2.Ranking(ctx, tie.ID)
	if err != nil || got.Verdict != VerdictTie || got.Pairs() != nil {
		t.Errorf("the tie read back: %+v, %v; pairs %v", got, err, got.Pairs())
	}
	if got, err := s2.Ranking(ctx, r4.ID); err != nil || got.Responses[0].Rating != 7 || got.Responses[3].Rating != 4 {
		t.Errorf("the ratings read back: %+v, %v", got.Responses, err)
	}

	wantErr(t, "a tie of four", func() error {
		r := rank4(ps[3].ID, a.ID)
		r.Verdict = VerdictTie
		_, err := s.AddRanking(ctx, r)
		return err
	}(), ErrInvalid, "verdict", "4")
	wantErr(t, "an unknown verdict", func() error { r := two(ps[3], "meh"); _, err := s.AddRanking(ctx, r); return err }(), ErrInvalid, `"meh"`)
	wantErr(t, "a rating of 8", func() error {
		r := two(ps[3], "")
		r.Responses[1].Rating = 8
		_, err := s.AddRanking(ctx, r)
		return err
	}(), ErrInvalid, "answer 1", "rating 8")
	_, err = s.EditRanking(ctx, a.ID, r4.ID, RankingEdit{Order: []int{0, 1, 2, 3}, Ratings: []int{1, 2}})
	wantErr(t, "two ratings for four answers", err, ErrInvalid, "2 ratings for 4 answers")

	// Editing the tie into a win for the second answer, with ratings.
	up, err := s.EditRanking(ctx, a.ID, tie.ID, RankingEdit{Order: []int{1, 0}, Ratings: []int{2, 6}})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s2.Ranking(ctx, tie.ID); !reflect.DeepEqual(got, up) || got.Verdict != "" || len(got.Pairs()) != 1 || got.Responses[1].Rating != 6 {
		t.Errorf("after the edit: %+v, returned %+v", got, up)
	}
	// And back to a tie.
	if _, err := s.EditRanking(ctx, a.ID, tie.ID, RankingEdit{Order: []int{0, 1}, Verdict: VerdictTie}); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	if _, err := s.ExportJSONL(ctx, &buf, ExportRankings); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		`{"prompt":[{"role":"user","content":"question 0?"}],"completions":[[{"role":"assistant","content":"left question 0?"}],[{"role":"assistant","content":"right"}]],"ranking":[0,1],"verdict":"tie"}`,
		`{"prompt":[{"role":"user","content":"question 1?"}],"completions":[[{"role":"assistant","content":"left question 1?"}],[{"role":"assistant","content":"right"}]],"ranking":[0,1],"verdict":"both_bad"}`,
		// Without a verdict or ratings: the format as before.
		`{"prompt":[{"role":"user","content":"question 2?"}],"completions":[[{"role":"assistant","content":"left question 2?"}],[{"role":"assistant","content":"right"}]],"ranking":[1,0]}`,
	}
	if len(lines) != 4 || !reflect.DeepEqual(lines[:3], want) || !strings.HasSuffix(lines[3], `"ranking":[1,2,3,0],"ratings":[7,6,5,4]}`) {
		t.Errorf("rankings export:\n%s\nwant\n%s\n...\"ratings\":[7,6,5,4]}", buf.String(), strings.Join(want, "\n"))
	}
	// A file with a tie is refused by data's reader, naming the line; the
	// store's own dataset leaves ties and both-bad out.
	if _, err := data.Read(writeTemp(t, buf.String()), data.ReadOptions{}); err == nil || !strings.Contains(err.Error(), `line 1: "verdict" is "tie"`) {
		t.Errorf("data.Read of the rankings export: %v; want line 1's verdict refused", err)
	}
	if ds, err := s.Dataset(ctx, ExportRankings); err != nil || len(ds.Examples) != 2 {
		t.Errorf("Dataset(rankings) = %v, %v; want the 2 rankings with a winner", ds, err)
	}
	buf.Reset()
	n, err := s.ExportJSONL(ctx, &buf, ExportPreferences)
	if err != nil {
		t.Fatal(err)
	}
	// No pair from the tie or the both-bad comparison: 1 from the win, 6 from the ranking of 4.
	if n != 1+6 || !strings.HasPrefix(buf.String(), `{"prompt":[{"role":"user","content":"question 2?"}],"chosen":[{"role":"assistant","content":"right"}],"rejected":[{"role":"assistant","content":"left question 2?"}]}`) {
		t.Errorf("preferences export: %d lines\n%s", n, buf.String())
	}
}

// A store at schema 3 (with a ranking) is upgraded to verdicts and
// ratings: the old ranking reads back with neither.
func testUpgradeToVerdicts(t *testing.T, dsn string) {
	ctx := context.Background()
	old, err := openStore(ctx, dsn, false, migrations[:3]) // an older golem's store
	if err != nil {
		t.Fatal(err)
	}
	a := mustUser(t, old, "a", RoleAnnotator)
	ps := mustPrompts(t, old, 1)
	// A ranking as schema 3 stored it.
	tx, _ := old.db.BeginTx(ctx, nil)
	var id int64
	if err := tx.QueryRowContext(ctx, old.q(`INSERT INTO rankings (prompt_id, annotator_id, k, created_at, updated_at) VALUES (?, ?, 2, ?, ?) RETURNING id`),
		ps[0].ID, a.ID, now(), now()).Scan(&id); err != nil {
		t.Fatal(err)
	}
	for i, c := range []string{"x", "y"} {
		if _, err := tx.ExecContext(ctx, old.q(`INSERT INTO ranking_responses (ranking_id, position, rank, model, content, flags) VALUES (?, ?, ?, 'm', ?, '[]')`), id, i, 1-i, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	old.Close()
	s := open(t, dsn)
	got, err := s.Ranking(ctx, id)
	if err != nil || got.Verdict != "" || got.Responses[0].Rating != 0 || !reflect.DeepEqual(got.Order, []int{1, 0}) {
		t.Errorf("the old ranking after the upgrade: %+v, %v", got, err)
	}
	if err := s.SetGuidelines(ctx, a.ID, TaskRank, "Be fair."); err != nil {
		t.Errorf("guidelines after the upgrade: %v", err)
	}
}

func testGuidelines(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	admin := mustUser(t, s, "boss", RoleAdmin)
	if g, err := s.Guidelines(ctx); err != nil || len(g) != 0 {
		t.Errorf("Guidelines of a new store = %v, %v", g, err)
	}
	for _, text := range []string{"Prefer the honest answer.", "Prefer the honest, brief answer.\n\n- no lists"} {
		if err := s.SetGuidelines(ctx, admin.ID, TaskRank, text); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetGuidelines(ctx, admin.ID, TaskDemonstrate, "Write as the assistant."); err != nil {
		t.Fatal(err)
	}
	want := map[Task]string{TaskRank: "Prefer the honest, brief answer.\n\n- no lists", TaskDemonstrate: "Write as the assistant."}
	if g, err := open(t, dsn).Guidelines(ctx); err != nil || !reflect.DeepEqual(g, want) {
		t.Errorf("Guidelines = %q, %v; want %q", g, err, want)
	}
	if err := s.SetGuidelines(ctx, admin.ID, TaskDemonstrate, ""); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.Guidelines(ctx); len(g) != 1 {
		t.Errorf("after removing one: %q", g)
	}
	wantErr(t, "guidelines for a dance", s.SetGuidelines(ctx, admin.ID, "dance", "x"), ErrInvalid, "dance")
	wantErr(t, "guidelines with a NUL", s.SetGuidelines(ctx, admin.ID, TaskRank, "a\x00b"), ErrInvalid, "NUL")
	wantErr(t, "long guidelines", s.SetGuidelines(ctx, admin.ID, TaskRank, strings.Repeat("x", maxGuidelinesBytes+1)), ErrInvalid, "bytes")
}

func testPromptStats(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	a := mustUser(t, s, "a", RoleAnnotator)
	b := mustUser(t, s, "b", RoleAnnotator)
	ps := mustPrompts(t, s, 3)
	for _, u := range []User{a, b} {
		if _, err := s.AddDemonstration(ctx, Demonstration{PromptID: ps[1].ID, AnnotatorID: u.ID, Response: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AddRanking(ctx, rank4(ps[1].ID, a.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRanking(ctx, Ranking{PromptID: ps[2].ID, AnnotatorID: a.ID, Order: []int{0, 1}, Verdict: VerdictTie,
		Responses: []Response{{Model: "m", Content: "x"}, {Model: "m", Content: "y"}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SkipPrompt(ctx, b.ID, ps[2].ID, TaskRank, ""); err != nil {
		t.Fatal(err)
	}
	st, total, err := s.PromptStats(ctx, 1, 10)
	if err != nil || total != 3 || len(st) != 2 {
		t.Fatalf("PromptStats(1, 10) = %d of %d, %v", len(st), total, err)
	}
	got := [][4]int{}
	for _, p := range st {
		got = append(got, [4]int{p.Demonstrations, p.Rankings, p.Comparisons, p.Skips})
	}
	if want := [][4]int{{2, 1, 0, 0}, {0, 1, 1, 1}}; !reflect.DeepEqual(got, want) || st[0].ID != ps[1].ID || st[1].Messages[0].Content != "question 2?" {
		t.Errorf("PromptStats = %v (first %d), want %v", got, st[0].ID, want)
	}
}
