package vision

import (
	"encoding/json"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/internal/shared"
)

func TestIdx(t *testing.T) {
	dir := t.TempDir()
	// Three 2x3 images with values i*6+j, labels 7, 8, 9.
	pix := make([]byte, 3*2*3)
	for i := range pix {
		pix[i] = byte(i * 10)
	}
	for _, z := range []bool{false, true} {
		sub := filepath.Join(dir, fmt.Sprint(z))
		img, lab := idxBytes([]uint32{3, 2, 3}, pix), idxBytes([]uint32{3}, []byte{7, 8, 9})
		name, lname := "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
		if z {
			img, lab, name, lname = gz(img), gz(lab), name+".gz", lname+".gz"
		}
		p := writeFile(t, filepath.Join(sub, name), img)
		writeFile(t, filepath.Join(sub, lname), lab)
		ds, err := Open(p, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if ds.Len() != 3 {
			t.Fatalf("Len %d", ds.Len())
		}
		m, err := ds.Load(1)
		if err != nil {
			t.Fatal(err)
		}
		if m.C != 1 || m.H != 2 || m.W != 3 || m.Label != 8 {
			t.Fatalf("gz=%v: %s label %d", z, m.Shape(), m.Label)
		}
		wantPix(t, m, []float32{60. / 255, 70. / 255, 80. / 255, 90. / 255, 100. / 255, 110. / 255})
	}
	// Kaggle's naming, the labels gzipped and the images not.
	p0 := writeFile(t, filepath.Join(dir, "kaggle", "train-images.idx3-ubyte"), idxBytes([]uint32{1, 1, 1}, []byte{0}))
	writeFile(t, filepath.Join(dir, "kaggle", "train-labels.idx1-ubyte.gz"), gz(idxBytes([]uint32{1}, []byte{6})))
	ds0, err := Open(p0, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := ds0.Load(0); m.Label != 6 {
		t.Fatalf("kaggle naming: label %d", m.Label)
	}
	// Without a labels file the labels are -1.
	p := writeFile(t, filepath.Join(dir, "nolab", "t10k-images-idx3-ubyte"), idxBytes([]uint32{1, 1, 1}, []byte{255}))
	ds, err := Open(p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := ds.Load(0); m.Label != -1 || m.Pix[0] != 1 {
		t.Fatalf("label %d pix %v", m.Label, m.Pix)
	}
	ds.Close()
	if _, err := ds.Load(0); err == nil {
		t.Fatal("Load after Close succeeded")
	}
}

func TestIdxBadInput(t *testing.T) {
	dir := t.TempDir()
	// Wrong magic: a labels file given as images.
	p := writeFile(t, filepath.Join(dir, "a", "x-images-idx3-ubyte"), idxBytes([]uint32{3}, []byte{1, 2, 3}))
	_, err := Open(p, Limits{})
	wantErr(t, err, p, "wrong idx magic 0x00000801", "want 0x00000803")
	// Header promising 60000 28x28 images over 10 bytes: refused without
	// allocating 47 MB; in gzip too.
	for _, z := range []bool{false, true} {
		b := idxBytes([]uint32{60000, 28, 28}, make([]byte, 10))
		name := "b-images-idx3-ubyte"
		if z {
			b, name = gz(b), name+".gz"
		}
		p = writeFile(t, filepath.Join(dir, "b", name), b)
		_, err = Open(p, Limits{})
		wantErr(t, err, p, "truncated", "47040000", "found 10")
	}
	// Absurd dimensions (2^32-1 cubed) are refused from the header.
	p = writeFile(t, filepath.Join(dir, "c", "c-images-idx3-ubyte"), idxBytes([]uint32{0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, nil))
	_, err = Open(p, Limits{})
	wantErr(t, err, p, "out of bounds")
	// Trailing data.
	p = writeFile(t, filepath.Join(dir, "d", "d-images-idx3-ubyte"), idxBytes([]uint32{1, 1, 1}, []byte{1, 2}))
	_, err = Open(p, Limits{})
	wantErr(t, err, p, "more data")
	// Mismatched labels count: both files named.
	p = writeFile(t, filepath.Join(dir, "e", "train-images-idx3-ubyte"), idxBytes([]uint32{2, 1, 1}, []byte{1, 2}))
	lp := writeFile(t, filepath.Join(dir, "e", "train-labels-idx1-ubyte"), idxBytes([]uint32{3}, []byte{1, 2, 3}))
	_, err = Open(p, Limits{})
	wantErr(t, err, lp, "3 labels", p, "2 images")
	// A labels file with a wrong magic.
	p = writeFile(t, filepath.Join(dir, "f", "train-images-idx3-ubyte"), idxBytes([]uint32{1, 1, 1}, []byte{1}))
	lp = writeFile(t, filepath.Join(dir, "f", "train-labels-idx1-ubyte"), idxBytes([]uint32{1, 1, 1}, []byte{1}))
	_, err = Open(p, Limits{})
	wantErr(t, err, lp, "wrong idx magic")
	// Not gzip although named .gz.
	p = writeFile(t, filepath.Join(dir, "g", "train-images-idx3-ubyte.gz"), idxBytes([]uint32{1, 1, 1}, []byte{1}))
	_, err = Open(p, Limits{})
	wantErr(t, err, p, "not a gzip file")
}

func TestFolder(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "zebra", "1.png"), grayPNG(t, 2, 2, 255))
	writeFile(t, filepath.Join(dir, "cat", "b.png"), grayPNG(t, 2, 2, 0))
	writeFile(t, filepath.Join(dir, "cat", "a.PNG"), grayPNG(t, 2, 2, 51))
	writeFile(t, filepath.Join(dir, "cat", "notes.txt"), []byte("ignored"))
	ds, err := Open(dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 3 {
		t.Fatalf("Len %d", ds.Len())
	}
	for i, want := range []struct {
		label int
		v     float32
	}{{0, 0.2}, {0, 0}, {1, 1}} {
		m, err := ds.Load(i)
		if err != nil {
			t.Fatal(err)
		}
		if m.Label != want.label || !near(m.Pix[0], want.v) {
			t.Fatalf("%s: label %d value %v, want %+v", ds.Name(i), m.Label, m.Pix[0], want)
		}
	}
	// Bad input.
	empty := t.TempDir()
	_, err = Open(empty, Limits{})
	wantErr(t, err, empty, "no class subfolders")
	os.Mkdir(filepath.Join(empty, "dog"), 0o755)
	_, err = Open(empty, Limits{})
	wantErr(t, err, filepath.Join(empty, "dog"), "no images")
	// A corrupt file fails at Load, naming it.
	bad := writeFile(t, filepath.Join(dir, "zebra", "2.png"), []byte("\x89PNG\r\n\x1a\nbroken"))
	ds, _ = Open(dir, Limits{})
	_, err = ds.Load(3)
	wantErr(t, err, bad)
}

func TestJSONL(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "img", "a.png"), rgbPNG(t, 1, 1, color.NRGBA{255, 0, 0, 255}))
	writeFile(t, filepath.Join(dir, "img", "b.png"), grayPNG(t, 1, 1, 255))
	p := writeFile(t, filepath.Join(dir, "set.jsonl"), []byte(`{"image": "img/a.png", "label": 4}`+"\n\n"+`{"image": "img/b.png", "caption": "a white dot"}`+"\n"))
	ds, err := Open(p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := ds.Load(0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ds.Load(1)
	if err != nil {
		t.Fatal(err)
	}
	if a.Label != 4 || a.Caption != "" || b.Label != -1 || b.Caption != "a white dot" || a.C != 3 || b.C != 1 {
		t.Fatalf("a=%d %q %s b=%d %q %s", a.Label, a.Caption, a.Shape(), b.Label, b.Caption, b.Shape())
	}
	for _, c := range []struct{ body, want string }{
		{`{"image": "img/a.png"}` + "\n" + `{"label": 1}`, ":2: field \"image\""},
		{`{"image": "img/a.png", "label": "cat"}`, `:1: field "label" must be an integer`},
		{`{"image": "img/a.png", "label": -2}`, `:1: field "label"`},
		{`{"image": "img/a.png", "labels": 2}`, `:1: json: unknown field "labels"`},
		{`{"image": "img/a.png", "la`, ":1:"},
		{"\n\n", ": no records"},
	} {
		p := writeFile(t, filepath.Join(dir, "bad.jsonl"), []byte(c.body))
		_, err := Open(p, Limits{})
		wantErr(t, err, p+c.want)
	}
	// A missing image fails at Load naming the JSONL line and the file.
	p = writeFile(t, filepath.Join(dir, "missing.jsonl"), []byte(`{"image": "img/a.png"}`+"\n"+`{"image": "img/nope.png"}`))
	ds, _ = Open(p, Limits{})
	_, err = ds.Load(1)
	wantErr(t, err, p+":2", "nope.png")
}

func TestTar(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, filepath.Join(dir, "shard-000.tar"), tarBytes(t, []tarEntry{
		{"s/0001.png", grayPNG(t, 2, 1, 255)},
		{"s/0001.cls", []byte("3\n")},
		{"s/0002.png", rgbPNG(t, 1, 1, color.NRGBA{0, 255, 0, 255})},
		{"s/0002.txt", []byte("a green dot\n")},
		{"s/0003.png", grayPNG(t, 1, 1, 0)},
		{"s/0003.json", []byte(`{"label": 5, "caption": "c"}`)},
	}))
	ds, err := Open(p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 3 {
		t.Fatalf("Len %d", ds.Len())
	}
	var got []string
	for i := 0; i < 3; i++ {
		m, err := ds.Load(i)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %d %q %v", m.Shape(), m.Label, m.Caption, m.Pix))
	}
	if err := ds.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ds.Load(0); err == nil {
		t.Fatal("Load after Close succeeded")
	}
	want := []string{`1x1x2 3 "" [1 1]`, `3x1x1 -1 "a green dot" [0 1 0]`, `1x1x1 5 "c" [0]`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q\nwant %q", got, want)
	}

	for _, c := range []struct {
		entries []tarEntry
		want    string
	}{
		{[]tarEntry{{"a.cls", []byte("1")}}, `sample "a" has no image`},
		{[]tarEntry{{"a.png", grayPNG(t, 1, 1, 0)}, {"a.cls", []byte("dog")}}, `a.cls: label must be an integer >= 0, got "dog"`},
		{[]tarEntry{{"a.png", grayPNG(t, 1, 1, 0)}, {"a.json", []byte(`{"label": "x"}`)}}, "a.json:"},
		{[]tarEntry{{"a.png", grayPNG(t, 1, 1, 0)}, {"a.jpg", grayPNG(t, 1, 1, 0)}}, "has two images"},
		{[]tarEntry{{"a.png", grayPNG(t, 1, 1, 0)}, {"a.txt", make([]byte, maxMetaBytes+1)}}, "a.txt: entry of 1048577 bytes exceeds the limit"},
		{nil, "no samples"},
	} {
		p := writeFile(t, filepath.Join(dir, "bad.tar"), tarBytes(t, c.entries))
		_, err := Open(p, Limits{})
		wantErr(t, err, p, c.want)
	}
	// Image entries above the byte limit.
	p = writeFile(t, filepath.Join(dir, "big.tar"), tarBytes(t, []tarEntry{{"a.png", grayPNG(t, 64, 64, 0)}}))
	_, err = Open(p, Limits{MaxFileBytes: 50})
	wantErr(t, err, p+":a.png", "exceeds the limit of 50")
	// A truncated shard.
	full := tarBytes(t, []tarEntry{{"a.png", grayPNG(t, 64, 64, 9)}, {"b.png", rgbPNG(t, 64, 64, color.NRGBA{1, 2, 3, 255})}})
	p = writeFile(t, filepath.Join(dir, "cut.tar"), full[:1100])
	_, err = Open(p, Limits{})
	wantErr(t, err, p)
	// A corrupt image in a shard fails at Load naming shard and entry.
	p = writeFile(t, filepath.Join(dir, "corrupt.tar"), tarBytes(t, []tarEntry{{"k/x.png", []byte("garbage")}}))
	ds, err = Open(p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ds.Load(0)
	wantErr(t, err, p+":k/x.png", "not a readable image")
}

// Several shards in webdataset's brace notation are one dataset, in
// order; a missing shard or a bad range is an error naming it.
func TestTarShards(t *testing.T) {
	dir := t.TempDir()
	for i, caps := range [][]string{{"a red dot", "a blue dot"}, {"a green dot"}, {"a grey dot"}} {
		var es []tarEntry
		for j, c := range caps {
			key := fmt.Sprintf("s%d/%04d", i, j)
			es = append(es, tarEntry{key + ".png", grayPNG(t, 1, 1, uint8(10*i+j))}, tarEntry{key + ".txt", []byte(c)})
		}
		writeFile(t, filepath.Join(dir, fmt.Sprintf("train-%06d.tar", i)), tarBytes(t, es))
	}
	ds, err := Open(filepath.Join(dir, "train-{000000..000002}.tar"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	set, err := LoadCLIPSet(ds, 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 4 || ds.Name(2) != filepath.Join(dir, "train-000001.tar")+":s1/0000.png" || ds.Name(3) != filepath.Join(dir, "train-000002.tar")+":s2/0000.png" {
		t.Fatalf("Len %d, names %q, %q", ds.Len(), ds.Name(2), ds.Name(3))
	}
	var got []string
	for _, c := range set.Texts {
		got = append(got, c...)
	}
	if strings.Join(got, "|") != "a red dot|a blue dot|a green dot|a grey dot" {
		t.Fatalf("captions %q", got)
	}
	if err := ds.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ds.Load(3); err == nil {
		t.Fatal("Load after Close succeeded")
	}
	for _, c := range []struct{ spec, want string }{
		{"train-{000000..000003}.tar", "train-000003.tar"},
		{"train-{2..1}.tar", "want {FIRST..LAST} with FIRST <= LAST"},
		{"train-{0..5000}.tar", "5001 shards exceed the limit of 1024"},
		{"train-{0..1}-{0..1}.tar", "one shard range only"},
	} {
		_, err := Open(filepath.Join(dir, c.spec), Limits{})
		wantErr(t, err, c.want)
	}
}

func TestUnknownSource(t *testing.T) {
	p := writeFile(t, filepath.Join(t.TempDir(), "x.csv"), []byte("a,b"))
	_, err := Open(p, Limits{})
	wantErr(t, err, p, "unknown image source")
	_, err = Open(p+".missing", Limits{})
	wantErr(t, err, p+".missing")
}

func TestRealMNIST(t *testing.T) {
	for _, c := range []struct {
		rel    string
		n      int
		label0 int
	}{
		{"data/images/mnist/t10k-images-idx3-ubyte.gz", 10000, 7},
		{"data/images/fashion-mnist/t10k-images-idx3-ubyte.gz", 10000, 9},
	} {
		p := shared.Path(t, c.rel)
		ds, err := Open(p, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		m, err := ds.Load(0)
		if err != nil {
			t.Fatal(err)
		}
		if ds.Len() != c.n || m.Shape() != "1x28x28" || m.Label != c.label0 {
			t.Fatalf("%s: %d images, first %s label %d", p, ds.Len(), m.Shape(), m.Label)
		}
	}
}

// TestRealCOCO reads the 79 COCO photos through a JSONL of their captions
// (COCO's captions_val2017.json: images[{id, file_name}], annotations[{image_id, caption}]).
// TestRealPNG decodes the CLIP diagram, a real RGBA PNG.
func TestRealPNG(t *testing.T) {
	p := shared.Path(t, "data/images/samples/CLIP.png")
	m, err := ReadFile(p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if m.C != 3 || m.W < 100 || m.H < 100 {
		t.Fatalf("%s: %s", p, m.Shape())
	}
	var lo, hi float32 = 1, 0
	for _, v := range m.Pix {
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo < 0 || hi > 1 || hi-lo < 0.5 {
		t.Fatalf("%s: values in [%v, %v]", p, lo, hi)
	}
}

func TestRealCOCO(t *testing.T) {
	dir := shared.Path(t, "data/images/coco_mini_val2017")
	raw, err := os.ReadFile(filepath.Join(dir, "captions_val2017.json"))
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	var coco struct {
		Images []struct {
			ID       int    `json:"id"`
			FileName string `json:"file_name"`
		} `json:"images"`
		Annotations []struct {
			ImageID int    `json:"image_id"`
			Caption string `json:"caption"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(raw, &coco); err != nil {
		t.Fatal(err)
	}
	caption := map[int]string{}
	for _, a := range coco.Annotations {
		if _, ok := caption[a.ImageID]; !ok {
			caption[a.ImageID] = a.Caption
		}
	}
	var b strings.Builder
	n := 0
	for _, im := range coco.Images {
		p := filepath.Join(dir, im.FileName)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		line, _ := json.Marshal(map[string]string{"image": p, "caption": caption[im.ID]})
		b.Write(append(line, '\n'))
		n++
	}
	if n != 79 {
		t.Fatalf("found %d of the 79 photos", n)
	}
	jp := writeFile(t, filepath.Join(t.TempDir(), "coco.jsonl"), []byte(b.String()))
	ds, err := Open(jp, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < ds.Len(); i += 13 { // a sample: decoding all 79 takes seconds
		m, err := ds.Load(i)
		if err != nil {
			t.Fatal(err)
		}
		if m.C != 3 || max(m.H, m.W) > 640 || min(m.H, m.W) < 100 || m.Caption == "" {
			t.Fatalf("%s: %s caption %q", ds.Name(i), m.Shape(), m.Caption)
		}
	}
}
