package vision

import (
	"bytes"
	"image"
	"image/jpeg"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzDecode: any bytes give an image or an error, never a panic, and never
// an image above the pixel limit.
func FuzzDecode(f *testing.F) {
	f.Add(grayPNG(f, 3, 2, 7))
	f.Add(hugePNG(100000, 100000))
	var jb bytes.Buffer
	jpeg.Encode(&jb, image.NewGray(image.Rect(0, 0, 8, 8)), nil)
	for o := uint16(0); o <= 9; o++ {
		f.Add(withOrientation(jb.Bytes(), o, o%2 == 0))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode("fuzz", b, Limits{MaxPixels: 1 << 16})
		if err == nil && (m.H*m.W > 1<<16 || len(m.Pix) != m.C*m.H*m.W) {
			t.Fatalf("decoded %s", m.Shape())
		}
	})
}

// FuzzIdx: any idx bytes open or fail cleanly, and every image of an opened
// file loads.
func FuzzIdx(f *testing.F) {
	f.Add(idxBytes([]uint32{2, 2, 2}, make([]byte, 8)))
	f.Add(idxBytes([]uint32{0xFFFFFFFF, 1, 1}, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := writeFile(t, filepath.Join(t.TempDir(), "f-images-idx3-ubyte"), b)
		ds, err := Open(p, Limits{})
		if err != nil {
			return
		}
		for i := 0; i < ds.Len(); i++ {
			if _, err := ds.Load(i); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzTar: any shard bytes open or fail cleanly, and every sample of an
// opened shard loads or fails with an error.
func FuzzTar(f *testing.F) {
	f.Add(tarBytes(f, []tarEntry{{"a.png", grayPNG(f, 2, 2, 1)}, {"a.cls", []byte("1")}, {"b.jpg", []byte("x")}, {"b.json", []byte(`{"caption":"c"}`)}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := writeFile(t, filepath.Join(t.TempDir(), "s.tar"), b)
		ds, err := Open(p, Limits{MaxPixels: 1 << 16, MaxFileBytes: 1 << 20})
		if err != nil {
			return
		}
		defer ds.Close()
		for i := 0; i < ds.Len(); i++ {
			ds.Load(i)
		}
	})
}

// FuzzCaptionsJSON: any .json bytes open as COCO captions or LLaVA
// conversations or fail with an error naming the file, never a panic.
func FuzzCaptionsJSON(f *testing.F) {
	f.Add([]byte(`{"images": [{"id": 1, "file_name": "a.png"}], "annotations": [{"image_id": 1, "caption": "x"}]}`))
	f.Add([]byte(`[{"id": "a", "image": "a.png", "conversations": [{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "a"}]}]`))
	f.Add([]byte(`{"images": [{"id": 1e99}], "annotations": null}`))
	f.Add([]byte(`[null, {"conversations": null}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "a.png"), grayPNG(t, 2, 2, 1))
		p := writeFile(t, filepath.Join(dir, "f.json"), b)
		ds, err := Open(p, Limits{MaxPixels: 1 << 16})
		if err != nil {
			if !strings.Contains(err.Error(), "f.json") {
				t.Fatalf("error without the file's name: %v", err)
			}
			return
		}
		defer ds.Close()
		for i := 0; i < ds.Len(); i++ {
			ds.Load(i)
		}
	})
}
