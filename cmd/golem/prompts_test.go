package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/store"
)

// golem prompts import reads JSONL with "images" (paths relative to the
// file) and LLaVA JSON (--image-folder); golem export writes the labels
// with their image files, and --format llava what golem vlm reads. A bad
// image is refused with its file and line, and nothing is imported.
func TestPromptsImportExport(t *testing.T) {
	dir := t.TempDir()
	var pb bytes.Buffer
	png.Encode(&pb, image.NewGray(image.Rect(0, 0, 5, 3)))
	sum := sha256.Sum256(pb.Bytes())
	key := hex.EncodeToString(sum[:])
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("set/pics/a.png", pb.String())
	write("pics2/a.png", pb.String())
	jsonl := write("set/prompts.jsonl", `{"prompt": "What is this?", "images": ["pics/a.png"]}`+"\n")
	llava := write("llava.json", `[{"id": "x", "image": "a.png", "conversations": [{"from": "human", "value": "<image>\nDescribe it."}, {"from": "gpt", "value": "Gray."}]}]`)
	bad := write("set/bad.jsonl", `{"prompt": "ok"}`+"\n"+`{"prompt": "x", "images": ["prompts.jsonl"]}`+"\n")
	db := "sqlite:" + filepath.Join(dir, "labels.db")

	out, stderr, code := runGolem(t, "prompts", "import", "--db", db, jsonl)
	if code != 0 || !strings.Contains(out, "1 prompts added, 0 already there, 1 new images") {
		t.Fatalf("import %s: exit %d, %q %q", jsonl, code, out, stderr)
	}
	out, stderr, code = runGolem(t, "prompts", "import", "--db", db, "--image-folder", filepath.Join(dir, "pics2"), llava)
	if code != 0 || !strings.Contains(out, "1 prompts added, 0 already there, 0 new images") {
		t.Fatalf("import %s: exit %d, %q %q", llava, code, out, stderr)
	}
	_, stderr, code = runGolem(t, "prompts", "import", "--db", db, bad)
	if want := bad + ` line 2: image "prompts.jsonl": not a readable image (PNG, JPEG, GIF or WebP)`; code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("import of a bad image: exit %d, stderr %q; want %q", code, stderr, want)
	}

	ctx := context.Background()
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := st.CountPrompts(ctx); n != 2 {
		t.Errorf("%d prompts, want 2 (nothing of bad.jsonl)", n)
	}
	u, err := st.CreateUser(ctx, store.NewUser{Username: "ann", Password: "ann-password"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.NextPrompt(ctx, u.ID, store.TaskDemonstrate)
	if err != nil || p.Image != key {
		t.Fatalf("next prompt %+v, %v; want image %s", p, err, key)
	}
	if _, err := st.AddDemonstration(ctx, store.Demonstration{PromptID: p.ID, AnnotatorID: u.ID, Response: "A gray image."}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	exp := filepath.Join(dir, "export")
	os.Mkdir(exp, 0o755)
	out, stderr, code = runGolem(t, "export", "--db", db, "--kind", "sft", "--out", filepath.Join(exp, "sft.jsonl"))
	if code != 0 {
		t.Fatalf("export: exit %d %s", code, stderr)
	}
	b, _ := os.ReadFile(filepath.Join(exp, "sft.jsonl"))
	if want := `"images":["images/` + key + `.png"]`; !strings.Contains(string(b), want) {
		t.Errorf("sft export %s; want %s", b, want)
	}
	if img, err := os.ReadFile(filepath.Join(exp, "images", key+".png")); err != nil || !bytes.Equal(img, pb.Bytes()) {
		t.Errorf("exported image: %v", err)
	}
	out, stderr, code = runGolem(t, "export", "--db", db, "--format", "llava", "--out", filepath.Join(exp, "llava.json"))
	if code != 0 || !strings.Contains(out, "1 LLaVA records") {
		t.Fatalf("export --format llava: exit %d %q %q", code, out, stderr)
	}
	// What golem vlm --stage instruct reads: the image beside it, decodable.
	ds, err := vision.Open(filepath.Join(exp, "llava.json"), vision.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	m, err := ds.Load(0)
	if err != nil || m.W != 5 || m.H != 3 || len(m.Conversation) != 2 || m.Conversation[1].Value != "A gray image." {
		t.Fatalf("LLaVA export read back: %+v, %v", m, err)
	}
	if _, stderr, code := runGolem(t, "export", "--db", db, "--format", "csv", "--out", "x"); code != 2 || !strings.Contains(stderr, `"csv"`) {
		t.Errorf("export --format csv: exit %d %q", code, stderr)
	}
}
