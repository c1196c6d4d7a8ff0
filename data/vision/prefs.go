package vision

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/golem-ml/golem/internal/regfile"
)

// ImagePref is one preference between two images drawn for a prompt:
// a line {"prompt": "a red circle", "chosen": "images/a.png", "rejected":
// "images/b.png"} of a JSONL file (TRL's DPO field names; the image paths
// relative to the file's folder), what the annotation app's export and
// golem imagine prefs write and golem imagine dpo reads.
type ImagePref struct {
	Source   string // "file:line"
	Prompt   string
	Chosen   string // the image files, resolved against the file's folder
	Rejected string
	// ChosenTokens and RejectedTokens are the image tokens each image was
	// decoded from, row by row, where the line has them
	// ("chosen_tokens", "rejected_tokens": what golem imagine prefs
	// writes of its own samples); nil where it does not.
	ChosenTokens, RejectedTokens []int32
}

// ReadImagePrefs reads a JSONL file of image preferences (ImagePref),
// skipping blank lines; other fields of a line are ignored. A line that
// is no such object, lacks a field, or names the same image twice is an
// error naming the file and line; the images are not opened here.
func ReadImagePrefs(path string) ([]ImagePref, error) {
	f, _, err := regfile.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dir := filepath.Dir(path)
	const want = `{"prompt": text, "chosen": image path, "rejected": image path}`
	var out []ImagePref
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var l struct {
			Prompt, Chosen, Rejected *string
			ChosenTokens             []int32 `json:"chosen_tokens"`
			RejectedTokens           []int32 `json:"rejected_tokens"`
		}
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("%s:%d: %v (want %s)", path, line, err, want)
		}
		for _, f := range []struct {
			name string
			v    *string
		}{{"prompt", l.Prompt}, {"chosen", l.Chosen}, {"rejected", l.Rejected}} {
			if f.v == nil || (*f.v == "" && f.name != "prompt") {
				return nil, fmt.Errorf("%s:%d: no %q (want %s)", path, line, f.name, want)
			}
		}
		p := ImagePref{Source: fmt.Sprintf("%s:%d", path, line), Prompt: *l.Prompt, Chosen: resolve(dir, *l.Chosen), Rejected: resolve(dir, *l.Rejected),
			ChosenTokens: l.ChosenTokens, RejectedTokens: l.RejectedTokens}
		if p.Chosen == p.Rejected {
			return nil, fmt.Errorf("%s:%d: \"chosen\" and \"rejected\" are the same image %s", path, line, *l.Chosen)
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no preferences (want JSONL lines %s)", path, want)
	}
	return out, nil
}

// resolve takes a path a file names against the file's folder dir.
func resolve(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, filepath.FromSlash(p))
}
