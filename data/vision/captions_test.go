package vision

import (
	"image/color"
	"path/filepath"
	"testing"

	"github.com/golem-ml/golem/internal/shared"
)

func TestCOCOCaptionsMini(t *testing.T) {
	p := shared.Path(t, "data/images/coco_mini_val2017/captions_val2017.json")
	ds, err := Open(p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	if ds.Len() != 79 {
		t.Fatalf("%d images with captions, want the 79 photos", ds.Len())
	}
	for i := 0; i < ds.Len(); i += 26 { // a sample: decoding all 79 takes seconds
		m, err := ds.Load(i)
		if err != nil {
			t.Fatal(err)
		}
		if m.C != 3 || min(m.H, m.W) < 100 || len(m.Captions) != 5 || m.Caption != m.Captions[0] {
			t.Fatalf("%s: %s, %d captions, caption %q", ds.Name(i), m.Shape(), len(m.Captions), m.Caption)
		}
	}
}

func TestCOCOCaptions(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.png"), rgbPNG(t, 4, 3, color.NRGBA{255, 0, 0, 255}))
	writeFile(t, filepath.Join(dir, "b.png"), rgbPNG(t, 4, 3, color.NRGBA{0, 0, 255, 255}))
	p := writeFile(t, filepath.Join(dir, "captions.json"), []byte(`{"info": {}, "images": [
		{"id": 7, "file_name": "a.png"}, {"id": 8, "file_name": "b.png"}, {"id": 9, "file_name": "none.png"}],
	 "annotations": [{"image_id": 8, "id": 1, "caption": " a blue square "}, {"image_id": 7, "id": 2, "caption": "red"}, {"image_id": 8, "id": 3, "caption": "blue"}]}`))
	ds, err := Open(p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 2 { // none.png has no caption: not a sample
		t.Fatalf("%d samples, want 2", ds.Len())
	}
	m, err := ds.Load(1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Caption != "a blue square" || len(m.Captions) != 2 || m.Captions[1] != "blue" || m.At(2, 0, 0) != 1 {
		t.Fatalf("b.png: caption %q, captions %q, blue %v", m.Caption, m.Captions, m.At(2, 0, 0))
	}
	for _, c := range []struct{ name, body, want string }{
		{"syntax", "{\"images\": [\n{\"id\": 1,, }]}", "syntax.json:2"},
		{"type", "{\"images\": [\n{\"id\": \"x\", \"file_name\": \"a.png\"}]}", `type.json:2: field "images.id"`},
		{"noid", `{"images": [{"file_name": "a.png"}]}`, `images[0]: field "id" is missing`},
		{"nofile", `{"images": [{"id": 3}]}`, `images[0] (id 3): field "file_name" is missing`},
		{"dup", `{"images": [{"id": 3, "file_name": "a.png"}, {"id": 3, "file_name": "b.png"}]}`, "images[1]: id 3 is given twice"},
		{"noimage", `{"images": [{"id": 3, "file_name": "a.png"}], "annotations": [{"image_id": 4, "caption": "x"}]}`, "annotations[0]: image_id 4 is no image's id"},
		{"instances", `{"images": [{"id": 3, "file_name": "a.png"}], "annotations": [{"image_id": 3, "bbox": [1, 2, 3, 4]}]}`, `annotations[0]: field "caption" is missing`},
		{"nocaptions", `{"images": [{"id": 3, "file_name": "a.png"}], "annotations": []}`, "no image has a caption"},
		{"empty", `{}`, `no "images"`},
		{"scalar", `3`, "neither COCO captions"},
	} {
		_, err := Open(writeFile(t, filepath.Join(dir, c.name+".json"), []byte(c.body)), Limits{})
		wantErr(t, err, c.name+".json", c.want)
	}
}

func TestLLaVA(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "img", "a.png"), rgbPNG(t, 4, 3, color.NRGBA{0, 255, 0, 255}))
	p := writeFile(t, filepath.Join(dir, "llava.json"), []byte(`[{"id": "x1", "image": "img/a.png", "conversations": [
		{"from": "human", "value": "<image>\nWhat colour?"}, {"from": "gpt", "value": "green"},
		{"from": "human", "value": "Sure?"}, {"from": "gpt", "value": "yes"}]}]`))
	ds, err := Open(p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := ds.Load(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Conversation) != 4 || m.Conversation[1].Value != "green" || m.At(1, 2, 3) != 1 {
		t.Fatalf("record: %+v, green %v", m.Conversation, m.At(1, 2, 3))
	}
	turns := `[{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "a"}]`
	for _, c := range []struct{ name, body, want string }{
		{"syntax", "[\n{\"id\": \"a\",\n\"image\" \"x.png\"}]", "syntax.json:3"},
		{"unknown", `[{"id": "a", "image": "x.png", "conversation": []}]`, `unknown field "conversation"`},
		{"noimage", `[{"id": "a", "conversations": ` + turns + `}]`, `[0] (id "a"): field "image" is missing`},
		{"short", `[{"id": "a", "image": "x.png", "conversations": [{"from": "human", "value": "<image>"}]}]`, "has 1 turns"},
		{"order", `[{"id": "a", "image": "x.png", "conversations": [{"from": "human", "value": "<image>"}, {"from": "human", "value": "b"}]}]`, `conversations[1]: from "human", want "gpt"`},
		{"notag", `[{"id": "a", "image": "x.png", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}]`, `holds "<image>" 0 times`},
		{"none", `[]`, "no records"},
	} {
		_, err := Open(writeFile(t, filepath.Join(dir, c.name+".json"), []byte(c.body)), Limits{})
		wantErr(t, err, c.name+".json", c.want)
	}
}
