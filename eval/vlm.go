package eval

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tokenizer"
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
	// Marks is each question's mark in the order asked, '1' right and
	// '0' wrong: two models' Marks on one split pair question by
	// question (PairedDiff).
	Marks string
}

// PairedDiff is b's VQA accuracy minus a's over the same questions (their
// Marks, in the same order) and the standard error of that difference:
// sqrt(var(d)/n) of the per-question differences d in {-1, 0, 1}. ok is
// false when the two were not marked on the same number of questions.
func PairedDiff(a, b VLMResult) (diff, se float64, ok bool) {
	n := len(a.Marks)
	if n == 0 || n != len(b.Marks) {
		return 0, 0, false
	}
	var sum, sq float64
	for i := range n {
		d := float64(b.Marks[i]) - float64(a.Marks[i])
		sum += d
		sq += d * d
	}
	mean := sum / float64(n)
	return mean, math.Sqrt((sq/float64(n) - mean*mean) / float64(n)), true
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
	res := VLMResult{Kinds: map[string][2]int{}}
	named := 0
	var marks []byte
	n, err := vlmScenes(dir, split, limit, func(r shapes.SceneRecord, img string) error {
		caption, err := answer(VLMDescribe, img)
		if err != nil {
			return err
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
				return err
			}
			mark := byte('0')
			if vlmRight(a, q.Answer.EN) {
				k[0]++
				mark = '1'
			}
			marks = append(marks, mark)
			k[1]++
			res.Kinds[q.Kind] = k
		}
		return nil
	})
	res.Scenes = n
	res.Marks = string(marks)
	if err != nil {
		return res, err
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

// vlmScenes calls fn with each of the first limit scenes (0: all) of a
// shapes world's split (DIR/{split}_scenes.jsonl) and its image's path,
// and returns how many it read; an error names the file and line.
func vlmScenes(dir, split string, limit int, fn func(r shapes.SceneRecord, image string) error) (int, error) {
	path := filepath.Join(dir, split+"_scenes.jsonl")
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan() && (limit <= 0 || n < limit); line++ {
		var r shapes.SceneRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return n, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		if r.Image == "" || len(r.Objects) == 0 {
			return n, fmt.Errorf("%s:%d: a scene needs \"image\" and \"objects\"", path, line)
		}
		if err := fn(r, filepath.Join(dir, r.Image)); err != nil {
			return n, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("%s: %w", path, err)
	}
	if n == 0 {
		return 0, fmt.Errorf("%s: no scenes", path)
	}
	return n, nil
}

// vlmRight reports whether answer is the right one, truth, as VLMShapes
// scores it: exact match after normAnswer.
func vlmRight(answer, truth string) bool { return normAnswer(answer) == normAnswer(truth) }

// normAnswer is an answer as VLMShapes compares it: lower case, without
// surrounding spaces or a final full stop.
func normAnswer(s string) string {
	return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(strings.ToLower(s)), "."))
}

// VLMDescribe is the request for a scene's description VLMShapes asks
// first.
const VLMDescribe = "Describe the image."

// VLMContinue continues prompt (llava.Prompt's format) about the image
// at path: a LLaVA model sees the image at the prompt's placeholder, a
// text-only model reads the text alone.
type VLMContinue func(prompt, image string) (string, error)

// VLMImage returns how a LLaVA model continues a prompt about an image:
// greedy, at most maxTokens, stopping at a newline or the tokenizer's end
// tokens; an image's pixels are read once for its run of questions. It
// also returns end, the text that closes an answer (the tokenizer's end
// token, as train/vlm.go ends them, or "\n").
func VLMImage(m *llava.Model, tok *tokenizer.Tokenizer, maxTokens int) (cont VLMContinue, end string) {
	return VLMImageSampled(m, tok, maxTokens, 0, 0)
}

// VLMImageSampled is VLMImage sampling at temperature (0: greedy, as
// VLMImage): call i draws with seed seed+i, so a run is repeatable.
func VLMImageSampled(m *llava.Model, tok *tokenizer.Tokenizer, maxTokens int, temperature float64, seed uint64) (cont VLMContinue, end string) {
	gen, end := vlmOptions(tok, maxTokens)
	gen.Temperature = temperature
	calls := uint64(0)
	v := m.Config.Vision
	var last string
	var pix []float32
	return func(prompt, image string) (string, error) {
		if image != last {
			im, err := vision.ReadFile(image, vision.Limits{})
			if err != nil {
				return "", err
			}
			if pix, err = vision.CLIPPixels(im, v.Image, v.Channels); err != nil {
				return "", fmt.Errorf("%s: %w", image, err)
			}
			last = image
		}
		gen.Seed = seed + calls
		calls++
		return generate.ImageText(m, tok, pix, prompt, gen, nil)
	}, end
}

// VLMText is VLMImage for a text-only model (with its soft prompt, if
// any): the base, answering the same conversation without the image.
func VLMText(m *gpt.Model, tok *tokenizer.Tokenizer, sp *nn.SoftPrompt, maxTokens int) (cont VLMContinue, end string) {
	gen, end := vlmOptions(tok, maxTokens)
	gen.SoftPrompt = sp
	return func(prompt, _ string) (string, error) {
		out, err := generate.Text(m, tok, []string{prompt}, gen, nil)
		if err != nil {
			return "", err
		}
		return out[0], nil
	}, end
}

func vlmOptions(tok *tokenizer.Tokenizer, maxTokens int) (generate.Options, string) {
	gen := generate.Options{MaxTokens: maxTokens, Stop: []string{"\n"}, StopIDs: tok.EndIDs()}
	end := "\n"
	if len(gen.StopIDs) > 0 {
		end, _ = tok.Token(gen.StopIDs[0])
	}
	return gen, end
}

// VLMConversation is VLMShapes' answerer for a model that continues
// prompts (VLMImage, VLMText): each scene's conversation opens as golem's
// LLaVA models are trained and the base language model pretrained (golem
// data shapes' conversations all open with the description): the
// description first, then each question asked after the model's own
// description (llava.Prompt, with the image's placeholder when image).
func VLMConversation(cont VLMContinue, end string, image bool) VLMAnswerer {
	return VLMConversationAfter(cont, end, image, nil)
}

// VLMConversationAfter is VLMConversation asking each question after the
// description truth gives for the image's path instead of the model's
// own (the description is still asked for and scored first); nil truth
// is VLMConversation. With the scenes' own descriptions (VLMTrueDescriptions)
// it measures how well the model reads its context, as stage 2 trains
// it: those descriptions state every answer.
func VLMConversationAfter(cont VLMContinue, end string, image bool, truth map[string]string) VLMAnswerer {
	captions := map[string]string{}
	return func(q, img string) (string, error) {
		if q == VLMDescribe {
			c, err := cont(llava.Prompt(end, image, VLMDescribe), img)
			captions = map[string]string{img: strings.TrimSpace(c)}
			if truth != nil {
				t, ok := truth[img]
				if !ok {
					return "", fmt.Errorf("eval: %s: no description of its scene to ask after", img)
				}
				captions[img] = t
			}
			return c, err
		}
		c, ok := captions[img]
		if !ok {
			return "", fmt.Errorf("eval: %s: asked %q before its description", img, q)
		}
		return cont(llava.Prompt(end, image, VLMDescribe, c, q), img)
	}
}

// VLMTrueDescriptions returns the own description of each of the first
// limit scenes (0: all) of a shapes world's split (its first
// instruction's answer, what "Describe the image." is trained to say), by
// the image's path as VLMShapes passes it: VLMConversationAfter's truth.
func VLMTrueDescriptions(dir, split string, limit int) (map[string]string, error) {
	truth := map[string]string{}
	_, err := vlmScenes(dir, split, limit, func(r shapes.SceneRecord, img string) error {
		if len(r.Instructions) == 0 || r.Instructions[0].Answer.EN == "" {
			return fmt.Errorf("the scene has no description (its first instruction's answer)")
		}
		truth[img] = r.Instructions[0].Answer.EN
		return nil
	})
	return truth, err
}
