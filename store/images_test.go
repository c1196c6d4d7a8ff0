package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/golem-ml/golem/data/vision"
)

// testPNG encodes a w x h image of one colour.
func testPNG(t *testing.T, w, h int, c color.NRGBA) []byte {
	t.Helper()
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(m.Pix); i += 4 {
		m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// hugeHeader is a PNG whose header claims w x h pixels and that holds none.
func hugeHeader(w, h uint32) []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr, w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk := append([]byte("IHDR"), ihdr...)
	out := append([]byte("\x89PNG\r\n\x1a\n"), 0, 0, 0, 13)
	out = append(out, chunk...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(chunk))
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Image prompts from JSONL and LLaVA JSON: each image checked and stored
// once by the SHA-256 of its bytes, in the import's one transaction.
func testImages(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	red := testPNG(t, 4, 3, color.NRGBA{255, 0, 0, 255})
	var jb bytes.Buffer
	jpeg.Encode(&jb, image.NewGray(image.Rect(0, 0, 8, 8)), nil)
	gray := jb.Bytes()
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{
		"pics/red.png":  red,
		"pics/copy.png": red, // the same bytes under another name
		"gray.jpg":      gray,
		"junk.png":      []byte("GIF89a? no"),
		"huge.png":      hugeHeader(100000, 100000),
	})
	importFile := func(name, text string) (Batch, error) {
		return s.ImportPrompts(ctx, strings.NewReader(text), ImportOptions{Name: name, ReadImage: ImageFolder(dir)})
	}
	b, err := importFile("p.jsonl", `{"prompt": "<image>\nWhat colour is this?", "images": ["pics/red.png"]}`+"\n"+
		`{"prompt": "And this one?", "images": ["gray.jpg"]}`+"\n"+
		`{"prompt": "What colour is this?", "images": ["pics/copy.png"]}`+"\n"+ // another prompt, the same image
		`{"prompt": "What colour is this?"}`+"\n") // the text alone: another prompt
	if err != nil {
		t.Fatal(err)
	}
	if b.Added != 4 || b.Skipped != 0 || b.Images != 2 {
		t.Fatalf("batch %+v; want 4 prompts added, 2 images", b)
	}
	if n, err := s.CountImages(ctx); err != nil || n != 2 {
		t.Fatalf("%d images in the store (%v), want 2: red.png and its copy are one", n, err)
	}
	// The same file again adds nothing: prompts are keyed by text and image.
	if b, err := importFile("p.jsonl", `{"prompt": "And this one?", "images": ["gray.jpg"]}`); err != nil || b.Added != 0 || b.Skipped != 1 || b.Images != 0 {
		t.Fatalf("import again: %+v, %v", b, err)
	}
	a := mustUser(t, s, "a", RoleAnnotator)
	p1, err := s.NextPrompt(ctx, a.ID, TaskDemonstrate)
	if err != nil {
		t.Fatal(err)
	}
	if p1.Image != sha(red) || p1.Messages[0].Content != "<image>\nWhat colour is this?" {
		t.Fatalf("first prompt %+v; want the image %s", p1, sha(red))
	}
	im, err := s.Image(ctx, p1.Image)
	if err != nil || !bytes.Equal(im.Data, red) || im.Format != "png" || im.Width != 4 || im.Height != 3 || im.ContentType() != "image/png" {
		t.Fatalf("Image = %s %dx%d %s, %d bytes, %v", im.Format, im.Width, im.Height, im.ContentType(), len(im.Data), err)
	}
	if _, err := s.Image(ctx, sha([]byte("nothing"))); err == nil {
		t.Error("Image of an unknown key succeeded")
	}

	// LLaVA's conversation JSON: the first human turn, the image relative
	// to the folder (or --image-folder); a text-only record is a text prompt.
	b, err = importFile("llava.json", `[
  {"id": "1", "image": "gray.jpg", "conversations": [{"from": "human", "value": "<image>\nDescribe it."}, {"from": "gpt", "value": "Gray."}]},
  {"id": "2", "conversations": [{"from": "human", "value": "No picture here."}]}
]`)
	if err != nil || b.Added != 2 || b.Images != 0 {
		t.Fatalf("LLaVA import: %+v, %v", b, err)
	}

	// Bad input names the file and line, and adds nothing, not even the
	// good lines' new image.
	before, _ := s.CountPrompts(ctx)
	writeFiles(t, dir, map[string][]byte{"blue.png": testPNG(t, 2, 2, color.NRGBA{0, 0, 255, 255})})
	for _, c := range []struct {
		name, text string
		want       []string
	}{
		{"bad.jsonl", `{"prompt": "ok", "images": ["blue.png"]}` + "\n" + `{"prompt": "x", "images": ["junk.png"]}`,
			[]string{"bad.jsonl line 2", `image "junk.png"`, "not a readable image"}},
		{"bad.jsonl", `{"prompt": "ok", "images": ["blue.png"]}` + "\n\n" + `{"prompt": "x", "images": ["huge.png"]}`,
			[]string{"bad.jsonl line 3", "100000x100000", "refused before decoding"}},
		{"bad.jsonl", `{"prompt": "x", "images": ["nope.png"]}`, []string{"bad.jsonl line 1", `"nope.png": no such file`}},
		{"bad.jsonl", `{"prompt": "x", "images": ["blue.png", "gray.jpg"]}`, []string{"line 1", "one image"}},
		{"bad.jsonl", `{"prompt": "<image> and <image>", "images": ["blue.png"]}`, []string{"line 1", "<image>"}},
		{"bad.jsonl", `{"prompt": "x", "images": [""]}`, []string{"line 1", "empty path"}},
		{"bad.jsonl", `{"prompt": "x", "images": "blue.png"}`, []string{"line 1", `"images"`, "list"}},
		{"bad.json", "[\n  {\"id\": \"a\", \"image\": \"blue.png\", \"conversations\": [{\"from\": \"human\", \"value\": \"<image>\\nok\"}]},\n" +
			"  {\"id\": \"b\", \"image\": \"blue.png\", \"conversations\": [{\"from\": \"gpt\", \"value\": \"x\"}]}\n]",
			[]string{"bad.json line 3", `record 1 (id "b")`, `"human"`}},
		{"bad.json", "[\n  {\"id\": \"a\", \"image\": \"junk.png\", \"conversations\": [{\"from\": \"human\", \"value\": \"x\"}]}\n]",
			[]string{"bad.json line 2", `image "junk.png"`}},
		{"bad.json", "[\n  {\"id\": \"a\",\n \"imag\": \"blue.png\"}\n]", []string{"bad.json line 2", "imag"}},
		{"bad.json", "[\n  {\"id\": \"a\", \"conversations\": [{\"from\": \"human\", \"value\": \"<image> what?\"}]}\n]",
			[]string{"line 2", `"image"`}},
	} {
		_, err := importFile(c.name, c.text)
		wantErr(t, c.text, err, ErrInvalid, c.want...)
	}
	if n, _ := s.CountPrompts(ctx); n != before {
		t.Errorf("%d prompts after failed imports, want %d", n, before)
	}
	if n, _ := s.CountImages(ctx); n != 2 {
		t.Errorf("%d images after failed imports, want 2 (blue.png half-imported)", n)
	}
	// Without a folder to read from (a plain JSONL upload), an image is refused.
	_, err = s.ImportPrompts(ctx, strings.NewReader(`{"prompt": "x", "images": ["blue.png"]}`), ImportOptions{Name: "up.jsonl"})
	wantErr(t, "no folder", err, ErrInvalid, "up.jsonl line 1", "no folder")
}

// An export of labels on image prompts carries the images
// (images/SHA256.EXT beside the file, records' "images"), LLaVA's JSON
// holds the demonstrations golem vlm reads, and text-only records are as
// they always were.
func testExportImages(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	red := testPNG(t, 4, 3, color.NRGBA{255, 0, 0, 255})
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{"red.png": red})
	if _, err := s.ImportPrompts(ctx, strings.NewReader(`{"prompt": "What colour?", "images": ["red.png"]}`+"\n"+`{"prompt": "Say hi."}`),
		ImportOptions{Name: "p.jsonl", ReadImage: ImageFolder(dir)}); err != nil {
		t.Fatal(err)
	}
	a := mustUser(t, s, "a", RoleAnnotator)
	for _, resp := range []string{"Red.", "Hi."} {
		p, err := s.NextPrompt(ctx, a.ID, TaskDemonstrate)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddDemonstration(ctx, Demonstration{PromptID: p.ID, AnnotatorID: a.ID, Response: resp}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddRanking(ctx, Ranking{PromptID: p.ID, AnnotatorID: a.ID, Order: []int{1, 0},
			Responses: []Response{{Model: "human", Content: "Blue."}, {Model: "human", Content: resp}}}); err != nil {
			t.Fatal(err)
		}
	}
	img := "images/" + sha(red) + ".png"
	want := map[ExportKind]string{
		ExportSFT: `{"messages":[{"role":"user","content":"What colour?"},{"role":"assistant","content":"Red."}],"images":["` + img + `"]}` + "\n" +
			`{"messages":[{"role":"user","content":"Say hi."},{"role":"assistant","content":"Hi."}]}` + "\n",
		ExportPreferences: `{"prompt":[{"role":"user","content":"What colour?"}],"chosen":[{"role":"assistant","content":"Red."}],"rejected":[{"role":"assistant","content":"Blue."}],"images":["` + img + `"]}` + "\n" +
			`{"prompt":[{"role":"user","content":"Say hi."}],"chosen":[{"role":"assistant","content":"Hi."}],"rejected":[{"role":"assistant","content":"Blue."}]}` + "\n",
		ExportRankings: `{"prompt":[{"role":"user","content":"What colour?"}],"completions":[[{"role":"assistant","content":"Blue."}],[{"role":"assistant","content":"Red."}]],"ranking":[1,0],"images":["` + img + `"]}` + "\n" +
			`{"prompt":[{"role":"user","content":"Say hi."}],"completions":[[{"role":"assistant","content":"Blue."}],[{"role":"assistant","content":"Hi."}]],"ranking":[1,0]}` + "\n",
	}
	out := t.TempDir()
	for kind, w := range want {
		path := filepath.Join(out, string(kind)+".jsonl")
		n, err := ExportFile(ctx, dsn, kind, path)
		if err != nil || n != 2 {
			t.Fatalf("ExportFile(%s) = %d, %v", kind, n, err)
		}
		if b, _ := os.ReadFile(path); string(b) != w {
			t.Errorf("export %s:\n%s\nwant\n%s", kind, b, w)
		}
	}
	if b, err := os.ReadFile(filepath.Join(out, img)); err != nil || sha(b) != sha(red) {
		t.Fatalf("the exported image %s: %v (sha256 %s, want %s)", img, err, sha(b), sha(red))
	}
	// A damaged image file is written again; the folder holds no temporary files.
	os.WriteFile(filepath.Join(out, img), []byte("damaged"), 0o644)
	if _, err := ExportFile(ctx, dsn, ExportSFT, filepath.Join(out, "sft.jsonl")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, img)); sha(b) != sha(red) {
		t.Error("a damaged image file beside the export was kept")
	}
	for _, d := range []string{out, filepath.Join(out, "images")} {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("left in %s: %s", d, e.Name())
			}
		}
	}

	// LLaVA's JSON: the demonstration of the image prompt, <image> put
	// first; what golem vlm --stage instruct reads (vision.ParseLLaVA).
	path := filepath.Join(out, "llava.json")
	n, left, err := ExportLLaVAFile(ctx, dsn, path)
	if err != nil || n != 1 || left != 1 {
		t.Fatalf("ExportLLaVAFile = %d, %d left out, %v; want 1 and 1 (the text-only one)", n, left, err)
	}
	b, _ := os.ReadFile(path)
	recs, err := vision.ParseLLaVA(path, b)
	if err != nil {
		t.Fatalf("%v:\n%s", err, b)
	}
	wantRec := []vision.LLaVA{{ID: recs[0].ID, Image: img, Conversations: []vision.Turn{{From: "human", Value: "<image>\nWhat colour?"}, {From: "gpt", Value: "Red."}}}}
	if !reflect.DeepEqual(recs, wantRec) || !strings.HasPrefix(recs[0].ID, "demonstration-") {
		t.Errorf("LLaVA export %+v, want %+v", recs, wantRec)
	}
	if ds, err := s.Dataset(ctx, ExportSFT); err == nil {
		t.Errorf("Dataset of image labels gave %d examples without their images", len(ds.Examples))
	} else {
		wantErr(t, "Dataset with images", err, ErrInvalid, "images", "golem export")
	}
}
