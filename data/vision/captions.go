package vision

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/golem-ml/golem/internal/regfile"
)

// maxJSONBytes caps a COCO captions or LLaVA JSON file (COCO's train2017
// captions are 92 MB).
const maxJSONBytes = 1 << 30

// Turn is one message of a LLaVA conversation: From is "human" or "gpt".
type Turn struct {
	From  string `json:"from"`
	Value string `json:"value"`
}

// LLaVA is one record of LLaVA's visual instruction JSON: an image and
// a conversation whose first human turn holds "<image>".
type LLaVA struct {
	ID            string `json:"id"`
	Image         string `json:"image"`
	Conversations []Turn `json:"conversations"`
}

// jsonLine returns the 1-based line of byte offset off in b.
func jsonLine(b []byte, off int64) int {
	return 1 + bytes.Count(b[:min(int64(len(b)), max(off, 0))], []byte("\n"))
}

// jsonError names the file and line of a decoding error.
func jsonError(path string, b []byte, err error, want string) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("%s:%d: %v (want %s)", path, jsonLine(b, se.Offset), err, want)
	case errors.As(err, &te):
		return fmt.Errorf("%s:%d: field %q: %v (want %s)", path, jsonLine(b, te.Offset), te.Field, err, want)
	}
	return fmt.Errorf("%s: %v (want %s)", path, err, want)
}

// openJSON opens a .json source: a COCO captions file (an object with
// "images" and "annotations") or LLaVA's conversation JSON (an array).
func openJSON(path string, lim Limits) (Dataset, error) {
	b, err := regfile.ReadFile(path, maxJSONBytes)
	if err != nil {
		return nil, err
	}
	t := bytes.TrimLeft(b, " \t\r\n")
	switch {
	case len(t) > 0 && t[0] == '{':
		return openCOCO(path, b, lim)
	case len(t) > 0 && t[0] == '[':
		return openLLaVA(path, b, lim)
	}
	return nil, fmt.Errorf("%s: neither COCO captions (an object with \"images\" and \"annotations\") nor LLaVA conversations (an array)", path)
}

type cocoFile struct {
	Images []struct {
		ID       *int64 `json:"id"`
		FileName string `json:"file_name"`
	} `json:"images"`
	Annotations []struct {
		ImageID *int64  `json:"image_id"`
		Caption *string `json:"caption"`
	} `json:"annotations"`
}

const cocoWant = `COCO captions: {"images": [{"id", "file_name"}], "annotations": [{"image_id", "caption"}]}`

// openCOCO reads COCO captions (captions_val2017.json): one sample per
// image that has captions, in the file's order, its Caption the first and
// Captions all of them. Image paths are relative to the JSON's folder.
func openCOCO(path string, b []byte, lim Limits) (Dataset, error) {
	var f cocoFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, jsonError(path, b, err, cocoWant)
	}
	if len(f.Images) == 0 {
		return nil, fmt.Errorf("%s: no \"images\" (want %s)", path, cocoWant)
	}
	dir := filepath.Dir(path)
	index := map[int64]int{}
	d := &fileSet{lim: lim}
	for i, im := range f.Images {
		if im.ID == nil {
			return nil, fmt.Errorf("%s: images[%d]: field \"id\" is missing", path, i)
		}
		if im.FileName == "" {
			return nil, fmt.Errorf("%s: images[%d] (id %d): field \"file_name\" is missing", path, i, *im.ID)
		}
		if _, dup := index[*im.ID]; dup {
			return nil, fmt.Errorf("%s: images[%d]: id %d is given twice", path, i, *im.ID)
		}
		index[*im.ID] = i
		p := resolve(dir, im.FileName)
		d.items = append(d.items, fileItem{path: p, name: fmt.Sprintf("%s: images[%d] %s", path, i, im.FileName), label: -1})
	}
	for i, a := range f.Annotations {
		if a.ImageID == nil {
			return nil, fmt.Errorf("%s: annotations[%d]: field \"image_id\" is missing", path, i)
		}
		j, ok := index[*a.ImageID]
		if !ok {
			return nil, fmt.Errorf("%s: annotations[%d]: image_id %d is no image's id", path, i, *a.ImageID)
		}
		if a.Caption == nil || strings.TrimSpace(*a.Caption) == "" {
			return nil, fmt.Errorf("%s: annotations[%d]: field \"caption\" is missing or empty (an instances file has no captions: want captions_*.json)", path, i)
		}
		d.items[j].captions = append(d.items[j].captions, strings.TrimSpace(*a.Caption))
	}
	kept := d.items[:0]
	for _, it := range d.items {
		if len(it.captions) > 0 {
			it.caption = it.captions[0]
			kept = append(kept, it)
		}
	}
	if len(kept) == 0 {
		return nil, fmt.Errorf("%s: no image has a caption", path)
	}
	d.items = kept
	return d, nil
}

const llavaWant = `LLaVA: [{"id", "image", "conversations": [{"from": "human", "value": "<image>\n..."}, {"from": "gpt", "value": "..."}]}]`

// openLLaVA reads LLaVA's conversation JSON: one sample per record, its
// Conversation the turns (human and gpt in turn, the first human turn
// holding "<image>"). Image paths are relative to the JSON's folder.
func openLLaVA(path string, b []byte, lim Limits) (Dataset, error) {
	recs, err := ParseLLaVA(path, b)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	d := &fileSet{lim: lim}
	for i, r := range recs {
		p := resolve(dir, r.Image)
		d.items = append(d.items, fileItem{path: p, name: fmt.Sprintf("%s: [%d] (id %q)", path, i, r.ID), label: -1, conv: r.Conversations})
	}
	return d, nil
}

// ParseLLaVA parses and checks LLaVA's conversation JSON read from path;
// errors name the file and the record (and line, for syntax).
func ParseLLaVA(path string, b []byte) ([]LLaVA, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var recs []LLaVA
	if err := dec.Decode(&recs); err != nil {
		return nil, jsonError(path, b, err, llavaWant)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%s: no records", path)
	}
	for i, r := range recs {
		at := fmt.Sprintf("%s: [%d] (id %q)", path, i, r.ID)
		if r.Image == "" {
			return nil, fmt.Errorf("%s: field \"image\" is missing (text-only records are not image data)", at)
		}
		if len(r.Conversations) < 2 {
			return nil, fmt.Errorf("%s: \"conversations\" has %d turns, want a human turn and a gpt answer at least", at, len(r.Conversations))
		}
		for j, t := range r.Conversations {
			want := "human"
			if j%2 == 1 {
				want = "gpt"
			}
			if t.From != want {
				return nil, fmt.Errorf("%s: conversations[%d]: from %q, want %q (human and gpt take turns, human first)", at, j, t.From, want)
			}
		}
		if n := strings.Count(r.Conversations[0].Value, "<image>"); n != 1 {
			return nil, fmt.Errorf("%s: conversations[0] holds \"<image>\" %d times, want once", at, n)
		}
	}
	return recs, nil
}
