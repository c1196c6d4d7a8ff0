package store

import (
	"context"
	"errors"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testGenerations: generated images are stored content-addressed with
// their prompt, model and seed; imported prompts are offered to draw
// until drawn; pairs of different images of one prompt are offered to
// each annotator until judged or skipped; the judgements count in
// Progress; the image preferences export as JSONL naming image files
// beside it; bad input is ErrInvalid or ErrNotFound naming what is wrong.
func testGenerations(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	alice := mustUser(t, s, "alice", RoleAnnotator)
	bob := mustUser(t, s, "bob", RoleAnnotator)
	if _, err := s.ImportPrompts(ctx, strings.NewReader(`{"prompt": "a red circle"}`+"\n"), ImportOptions{Name: "p.jsonl"}); err != nil {
		t.Fatal(err)
	}
	p, err := s.NextImagePrompt(ctx)
	if err != nil || ImagePromptText(p) != "a red circle" {
		t.Fatalf("NextImagePrompt = %+v, %v; want the imported prompt", p, err)
	}
	red := testPNG(t, 16, 16, color.NRGBA{255, 0, 0, 255})
	blue := testPNG(t, 16, 16, color.NRGBA{0, 0, 255, 255})
	green := testPNG(t, 16, 16, color.NRGBA{0, 255, 0, 255})
	// Three images of the prompt, the third the first's bytes again.
	gs, err := s.AddGenerations(ctx, Generation{Prompt: "a red circle", PromptID: p.ID, Model: "t2i", CreatedBy: alice.ID},
		[]uint64{1 << 63, 8, 9}, [][]byte{red, blue, red}, [][]int32{{1, 2, 3, 4}, {5, 6, 7, 8}, nil})
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 3 || gs[0].Image != sha(red) || gs[1].Image != sha(blue) || gs[2].Image != sha(red) || gs[0].ID >= gs[1].ID {
		t.Fatalf("AddGenerations = %+v", gs)
	}
	if g, err := s.Generation(ctx, gs[0].ID); err != nil || g.Seed != 1<<63 || g.PromptID != p.ID || g.Model != "t2i" || g.CreatedBy != alice.ID || g.Prompt != "a red circle" {
		t.Errorf("Generation(%d) = %+v, %v; want seed 2^63, prompt %d, model t2i", gs[0].ID, g, err, p.ID)
	}
	if n, err := s.CountImages(ctx); err != nil || n != 2 {
		t.Errorf("CountImages = %d, %v; want 2 (each image once)", n, err)
	}
	if _, err := s.NextImagePrompt(ctx); !isNotFound(err) {
		t.Errorf("NextImagePrompt after it was drawn: %v, want ErrNotFound", err)
	}
	other, err := s.AddGenerations(ctx, Generation{Prompt: "a green square", Model: "t2i", CreatedBy: bob.ID}, []uint64{3}, [][]byte{green}, nil)
	if err != nil || other[0].PromptID != 0 {
		t.Fatalf("a typed prompt: %+v, %v", other, err)
	}

	for what, err := range map[string]error{
		"empty prompt":  second(s.AddGenerations(ctx, Generation{Prompt: " ", Model: "t2i", CreatedBy: bob.ID}, []uint64{1}, [][]byte{red}, nil)),
		"no images":     second(s.AddGenerations(ctx, Generation{Prompt: "x", Model: "t2i", CreatedBy: bob.ID}, nil, nil, nil)),
		"seeds":         second(s.AddGenerations(ctx, Generation{Prompt: "x", Model: "t2i", CreatedBy: bob.ID}, []uint64{1, 2}, [][]byte{red}, nil)),
		"not an image":  second(s.AddGenerations(ctx, Generation{Prompt: "x", Model: "t2i", CreatedBy: bob.ID}, []uint64{1}, [][]byte{[]byte("GIF? no")}, nil)),
		"tokens":        second(s.AddGenerations(ctx, Generation{Prompt: "x", Model: "t2i", CreatedBy: bob.ID}, []uint64{1}, [][]byte{red}, [][]int32{{1}, {2}})),
		"no model":      second(s.AddGenerations(ctx, Generation{Prompt: "x", CreatedBy: bob.ID}, []uint64{1}, [][]byte{red}, nil)),
		"not in pair":   second(s.AddImageComparison(ctx, ImageComparison{AnnotatorID: alice.ID, A: gs[0].ID, B: gs[1].ID, Chosen: gs[2].ID})),
		"other prompt":  second(s.AddImageComparison(ctx, ImageComparison{AnnotatorID: alice.ID, A: gs[1].ID, B: other[0].ID, Chosen: gs[1].ID})),
		"same image":    second(s.AddImageComparison(ctx, ImageComparison{AnnotatorID: alice.ID, A: gs[0].ID, B: gs[2].ID, Verdict: VerdictTie})),
		"verdict":       second(s.AddImageComparison(ctx, ImageComparison{AnnotatorID: alice.ID, A: gs[0].ID, B: gs[1].ID, Verdict: "meh"})),
		"verdict+chose": second(s.AddImageComparison(ctx, ImageComparison{AnnotatorID: alice.ID, A: gs[0].ID, B: gs[1].ID, Chosen: gs[0].ID, Verdict: VerdictTie})),
		"itself":        second(s.AddImageComparison(ctx, ImageComparison{AnnotatorID: alice.ID, A: gs[0].ID, B: gs[0].ID, Chosen: gs[0].ID})),
	} {
		wantErr(t, what, err, ErrInvalid)
	}
	wantErr(t, "unknown user", second(s.AddGenerations(ctx, Generation{Prompt: "x", Model: "t2i", CreatedBy: 999}, []uint64{1}, [][]byte{red}, nil)), ErrNotFound, "user 999")
	wantErr(t, "unknown prompt", second(s.AddGenerations(ctx, Generation{Prompt: "x", PromptID: 999, Model: "t2i", CreatedBy: bob.ID}, []uint64{1}, [][]byte{red}, nil)), ErrNotFound, "prompt 999")
	wantErr(t, "unknown generation", second(s.AddImageComparison(ctx, ImageComparison{AnnotatorID: alice.ID, A: gs[0].ID, B: 999, Chosen: 999})), ErrNotFound, "generation 999")

	// Alice: the pairs of different images, (0, 1) then (1, 2); (0, 2) is
	// one image twice.
	pair, err := s.NextImagePair(ctx, alice.ID)
	if err != nil || pair.A.ID != gs[0].ID || pair.B.ID != gs[1].ID || pair.Prompt != "a red circle" {
		t.Fatalf("NextImagePair = %+v, %v; want generations %d and %d", pair, err, gs[0].ID, gs[1].ID)
	}
	// Given B first, it is stored older first.
	c, err := s.AddImageComparison(ctx, ImageComparison{AnnotatorID: alice.ID, A: gs[1].ID, B: gs[0].ID, Chosen: gs[1].ID})
	if err != nil || c.A != gs[0].ID || c.B != gs[1].ID || c.ID == 0 {
		t.Fatalf("AddImageComparison = %+v, %v", c, err)
	}
	wantErr(t, "a second judgement", second(s.AddImageComparison(ctx, ImageComparison{AnnotatorID: alice.ID, A: gs[0].ID, B: gs[1].ID, Verdict: VerdictTie})), ErrConflict)
	if pair, err = s.NextImagePair(ctx, alice.ID); err != nil || pair.A.ID != gs[1].ID || pair.B.ID != gs[2].ID {
		t.Fatalf("second NextImagePair = %+v, %v; want generations %d and %d", pair, err, gs[1].ID, gs[2].ID)
	}
	if _, err := s.AddImageComparison(ctx, ImageComparison{AnnotatorID: alice.ID, A: gs[1].ID, B: gs[2].ID, Verdict: VerdictSkip}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NextImagePair(ctx, alice.ID); !isNotFound(err) {
		t.Errorf("NextImagePair with every pair judged: %v, want ErrNotFound", err)
	}
	// Bob: a tie, and B of the other pair.
	if _, err := s.AddImageComparison(ctx, ImageComparison{AnnotatorID: bob.ID, A: gs[0].ID, B: gs[1].ID, Verdict: VerdictTie}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddImageComparison(ctx, ImageComparison{AnnotatorID: bob.ID, A: gs[1].ID, B: gs[2].ID, Chosen: gs[2].ID}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		u                       User
		compared, skipped, left int
	}{{alice, 1, 1, 0}, {bob, 2, 0, 0}} {
		pr, err := s.Progress(ctx, tc.u.ID)
		if err != nil || pr.ImageComparisons != tc.compared || pr.Skipped != tc.skipped || pr.LeftImageCompare != tc.left {
			t.Errorf("Progress(%s) = %+v, %v; want %d image comparisons, %d skipped, %d left", tc.u.Username, pr, err, tc.compared, tc.skipped, tc.left)
		}
	}

	// The export: alice's choice and bob's; not the tie, not the skip.
	dir := t.TempDir()
	path := filepath.Join(dir, "out", "image_prefs.jsonl")
	n, err := ExportFile(ctx, dsn, ExportImagePreferences, path)
	if err != nil || n != 2 {
		t.Fatalf("ExportFile = %d, %v; want 2 lines", n, err)
	}
	b, _ := os.ReadFile(path)
	rp, bp := "images/"+sha(red)+".png", "images/"+sha(blue)+".png"
	// Each image with the tokens its own generation was decoded from,
	// where known: the third generation (red's bytes again) had none.
	want := `{"prompt":"a red circle","chosen":"` + bp + `","rejected":"` + rp + `","chosen_tokens":[5,6,7,8],"rejected_tokens":[1,2,3,4]}` + "\n" +
		`{"prompt":"a red circle","chosen":"` + rp + `","rejected":"` + bp + `","rejected_tokens":[5,6,7,8]}` + "\n"
	if string(b) != want {
		t.Errorf("image preferences:\n%s\nwant\n%s", b, want)
	}
	for rel, img := range map[string][]byte{rp: red, bp: blue} {
		got, err := os.ReadFile(filepath.Join(dir, "out", rel))
		if err != nil || sha(got) != sha(img) {
			t.Errorf("exported %s: %v; want the stored image's bytes", rel, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "images", sha(green)+".png")); err == nil {
		t.Error("an image no preference names was exported")
	}
	_, err = s.Dataset(ctx, ExportImagePreferences)
	wantErr(t, "Dataset of image preferences", err, ErrInvalid, "image_preferences")
}

func second[T any](_ T, err error) error { return err }

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// A store of schema 5 (images, no generations) opens upgraded: its prompt
// image is the image a generation then draws again, kept once.
func testUpgradeToGenerations(t *testing.T, dsn string) {
	ctx := context.Background()
	old, err := openStore(ctx, dsn, false, migrations[:5]) // an older golem's store
	if err != nil {
		t.Fatal(err)
	}
	a := mustUser(t, old, "a", RoleAnnotator)
	red := testPNG(t, 16, 16, color.NRGBA{255, 0, 0, 255})
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{"red.png": red})
	if _, err := old.ImportPrompts(ctx, strings.NewReader(`{"prompt": "What colour?", "images": ["red.png"]}`+"\n"), ImportOptions{Name: "p.jsonl", ReadImage: ImageFolder(dir)}); err != nil {
		t.Fatal(err)
	}
	old.Close()
	s := open(t, dsn)
	if v, err := s.SchemaVersion(ctx); err != nil || v != migrations[len(migrations)-1].version {
		t.Fatalf("SchemaVersion after the upgrade = %d, %v; want %d", v, err, migrations[len(migrations)-1].version)
	}
	if _, err := s.NextImagePrompt(ctx); !isNotFound(err) {
		t.Errorf("NextImagePrompt with only an image prompt: %v, want ErrNotFound", err)
	}
	if _, err := s.AddGenerations(ctx, Generation{Prompt: "a red square", Model: "t2i", CreatedBy: a.ID}, []uint64{1}, [][]byte{red}, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CountImages(ctx); err != nil || n != 1 {
		t.Errorf("CountImages = %d, %v; want 1 (the prompt's image, drawn again)", n, err)
	}
	if p, err := s.Progress(ctx, a.ID); err != nil || p.LeftRank != 1 || p.LeftImageCompare != 0 {
		t.Errorf("Progress after the upgrade = %+v, %v", p, err)
	}
}
