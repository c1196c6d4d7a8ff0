package main

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/gguf"
	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/store"
)

// Reading a store that is not there is an error naming it, for every
// command that reads one, and creates nothing; golem export names --db when
// it is missing (it used to read, and create, ./golem.db).
func TestReadMissingStore(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	out := filepath.Join(dir, "out.jsonl")
	missing := "sqlite:" + filepath.Join(dir, "typo.db")
	want := "store: " + missing + ": no such database (golem serve creates one; check the path)"
	for name, run := range map[string]func() error{
		"export": func() error { return runExport([]string{"--db", missing, "--kind", "sft", "--out", out}) },
		"sft --data": func() error {
			_, cleanup, err := storeFiles([]string{missing}, store.ExportSFT)
			if cleanup != nil {
				cleanup()
			}
			return err
		},
		"reward/dpo --data": func() error { _, err := readExamples(missing, ""); return err },
		"ppo --prompts":     func() error { _, err := readPrompts(missing, 0, 1); return err },
	} {
		if err := run(); err == nil || err.Error() != want {
			t.Errorf("%s: %v; want %q", name, err, want)
		}
	}
	err := runExport([]string{"--kind", "sft", "--out", out})
	if err == nil || !strings.Contains(err.Error(), "--db is required") {
		t.Errorf("export without --db: %v; want --db named", err)
	}
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Errorf("reading missing stores created %v", files)
	}

	// A store golem serve made exports.
	dsn := "sqlite:" + filepath.Join(dir, "labels.db")
	s, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := runExport([]string{"--db", dsn, "--kind", "sft", "--out", out}); err != nil {
		t.Fatalf("export of an empty store: %v", err)
	}
	if b, err := os.ReadFile(out); err != nil || len(b) != 0 {
		t.Errorf("export of an empty store: %q, %v", b, err)
	}
}

// golem export --format gguf writes a model folder as a GGUF file the gguf
// reader opens (its type for the matrices, F32 norms), and refuses a bad
// --type or a missing --model with exit code 1 and a message naming them.
func TestExportGGUF(t *testing.T) {
	src := shared.Path(t, "fixtures/hf/qwen2-tiny")
	out := filepath.Join(t.TempDir(), "qwen2.gguf")
	stdout, stderr, code := runGolem(t, "export", "--format", "gguf", "--model", src, "--out", out, "--type", "q8_0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "26 tensors (11 F32, 15 Q8_0)") {
		t.Errorf("stdout %q", stdout)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if a, _ := f.Get("general.architecture"); a.Any() != "qwen2" {
		t.Errorf("architecture %v", a.Any())
	}
	if ti, _ := f.Tensor("blk.0.attn_q.weight"); ti.Type != gguf.Q8_0 {
		t.Errorf("attn_q is %s", ti.Type)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--type", "q4_k", "--model", src, "--out", out}, 1, `--type: gguf: unknown tensor type "q4_k"`},
		{[]string{"--out", out}, 2, "export: --model is required"},
		{[]string{"--model", t.TempDir(), "--out", out}, 1, "config.json: no such file"},
	} {
		_, stderr, code := runGolem(t, append([]string{"export", "--format=gguf"}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %q; want exit %d, %q", c.args, code, stderr, c.code, c.want)
		}
	}
}

// golem export --kind image_preferences writes the web app's comparisons
// of generated images as {"prompt", "chosen", "rejected"} lines naming the
// image files it writes beside them.
func TestExportImagePreferences(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "labels.db")
	s, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateUser(ctx, store.NewUser{Username: "ann", Password: "ann-password-1"})
	if err != nil {
		t.Fatal(err)
	}
	var pngs [][]byte
	for _, c := range []color.Gray{{0}, {255}} {
		img := image.NewGray(image.Rect(0, 0, 4, 4))
		for i := range img.Pix {
			img.Pix[i] = c.Y
		}
		var b bytes.Buffer
		png.Encode(&b, img)
		pngs = append(pngs, b.Bytes())
	}
	gs, err := s.AddGenerations(ctx, store.Generation{Prompt: "a white square", Model: "t2i", CreatedBy: u.ID}, []uint64{1, 2}, pngs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddImageComparison(ctx, store.ImageComparison{AnnotatorID: u.ID, A: gs[0].ID, B: gs[1].ID, Chosen: gs[1].ID}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	out := filepath.Join(dir, "out", "image_prefs.jsonl")
	if err := runExport([]string{"--db", dsn, "--kind", "image_preferences", "--out", out}); err != nil {
		t.Fatal(err)
	}
	want := `{"prompt":"a white square","chosen":"images/` + gs[1].Image + `.png","rejected":"images/` + gs[0].Image + `.png"}` + "\n"
	if b, err := os.ReadFile(out); err != nil || string(b) != want {
		t.Fatalf("export: %q, %v; want %q", b, err, want)
	}
	for i, g := range gs {
		if b, err := os.ReadFile(filepath.Join(dir, "out", "images", g.Image+".png")); err != nil || !bytes.Equal(b, pngs[i]) {
			t.Errorf("image %d beside the export: %v", i, err)
		}
	}
}
