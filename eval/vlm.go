package eval

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/golem-ml/golem/data/synth/shapes"
)

// VLMKinds are the kinds of the shapes world's questions VLMShapes scores.
var VLMKinds = []string{"colour", "shape", "count", "position"}

// VLMResult is a vision-language model's scores on a split of the shapes
// world.
type VLMResult struct {
	Scenes int
	// CaptionAcc is the share of the scenes' objects whose colour and
	// shape the generated caption names together ("red circle").
	CaptionAcc float64
	Objects    int
	// VQA is the exact-match accuracy of the short answers (lower case,
	// spaces and a final full stop trimmed) over the questions of
	// VLMKinds; Kinds each kind's [correct, asked].
	VQA       float64
	Questions int
	Kinds     map[string][2]int
}

// VLMAnswerer answers question (a user turn's text, without the image's
// placeholder) about the image at path. VLMShapes asks for each scene's
// description ("Describe the image.") before its questions, so an
// answerer may ask them after it, as conversations go.
type VLMAnswerer func(question, image string) (string, error)

// VLMShapes scores answer on the first limit scenes (0: all) of a shapes
// world's split (golem data shapes' DIR/{split}_scenes.jsonl): a caption
// per scene from "Describe the image." and an answer to each question of
// VLMKinds.
func VLMShapes(dir, split string, limit int, answer VLMAnswerer) (VLMResult, error) {
	path := filepath.Join(dir, split+"_scenes.jsonl")
	f, err := os.Open(path)
	if err != nil {
		return VLMResult{}, err
	}
	defer f.Close()
	res := VLMResult{Kinds: map[string][2]int{}}
	named := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan() && (limit <= 0 || res.Scenes < limit); line++ {
		var r shapes.SceneRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return res, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		if r.Image == "" || len(r.Objects) == 0 {
			return res, fmt.Errorf("%s:%d: a scene needs \"image\" and \"objects\"", path, line)
		}
		img := filepath.Join(dir, r.Image)
		caption, err := answer("Describe the image.", img)
		if err != nil {
			return res, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		c := " " + strings.ToLower(caption) + " "
		for _, o := range r.Objects {
			if strings.Contains(c, " "+o.Colour+" "+o.Shape) {
				named++
			}
			res.Objects++
		}
		for _, q := range r.Questions {
			k, ok := res.Kinds[q.Kind]
			if !ok && !slices.Contains(VLMKinds, q.Kind) {
				continue
			}
			a, err := answer(q.Question.EN, img)
			if err != nil {
				return res, fmt.Errorf("%s:%d: %w", path, line, err)
			}
			if normAnswer(a) == normAnswer(q.Answer.EN) {
				k[0]++
			}
			k[1]++
			res.Kinds[q.Kind] = k
		}
		res.Scenes++
	}
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("%s: %w", path, err)
	}
	if res.Scenes == 0 {
		return res, fmt.Errorf("%s: no scenes", path)
	}
	right := 0
	for _, k := range res.Kinds {
		right += k[0]
		res.Questions += k[1]
	}
	res.CaptionAcc = float64(named) / float64(res.Objects)
	if res.Questions > 0 {
		res.VQA = float64(right) / float64(res.Questions)
	}
	return res, nil
}

// normAnswer is an answer as VLMShapes compares it: lower case, without
// surrounding spaces or a final full stop.
func normAnswer(s string) string {
	return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(strings.ToLower(s)), "."))
}
