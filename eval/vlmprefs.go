package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/tokenizer"
)

// VLMPrefsResult counts what VLMPrefs sampled and the pairs it made.
type VLMPrefsResult struct {
	Scenes, Questions int
	Samples, Right    int // answers sampled, and of them right
	AllRight          int // questions whose every sample was right: no pair
	NoneRight         int // questions with no right sample: the true answer is chosen
	GreedyRight       int // with greedyWrong: questions whose greedy answer was right (no pair)
	NoDescription     int // scenes the model described with nothing: no question asked (a record's turn may not be empty)
	Rewritten         int // VLMCorrectionPrefs: corrections that dropped or added an object
	Pairs             int
	// VLMDescriptionPrefs: the sampled and the greedy descriptions'
	// summed scores (shapes.Scene.DescriptionScore).
	ScoreSum, GreedyScoreSum float64
}

// VLMPrefs makes on-policy preference pairs from a model's own answers
// about the first limit scenes (0: all) of a shapes world's split: for
// each scene, describe (greedy, as VLMShapes asks) gives the model's own
// description; for each question of VLMKinds, asked after it as
// VLMConversation asks it, sample draws k answers, and a simulated
// annotator who knows the scene marks each right or wrong exactly as
// VLMShapes scores it. Each distinct right answer is chosen over each
// distinct wrong one; when no sample is right, the true answer is
// chosen over them; when all are right there is no pair. With
// greedyWrong, only the questions whose greedy answer (describe's) is
// wrong make pairs, and that answer is among the rejected ones: the
// pairs target the errors greedy decoding makes, not those sampling
// adds. emit gets each pair as {split}_prefs.jsonl's record, its image
// relative to dir.
func VLMPrefs(dir, split string, limit, k int, greedyWrong bool, describe, sample VLMContinue, end string, emit func(shapes.PreferenceRecord) error) (VLMPrefsResult, error) {
	var res VLMPrefsResult
	if k < 1 {
		return res, fmt.Errorf("eval: %d samples a question: want at least 1", k)
	}
	msg := func(role, text string) shapes.Message { return shapes.Message{Role: role, Content: text} }
	n, err := vlmAsked(dir, split, limit, describe, end, func() { res.NoDescription++ }, func(r shapes.SceneRecord, img, desc string, qs []shapes.QA) error {
		for _, q := range qs {
			res.Questions++
			prompt := llava.Prompt(end, true, VLMDescribe, desc, q.Question.EN)
			var right, wrong []string
			if greedyWrong {
				g, err := describe(prompt, img)
				if err != nil {
					return err
				}
				if g = strings.TrimSpace(g); vlmRight(g, q.Answer.EN) {
					res.GreedyRight++
					continue
				}
				if g != "" {
					wrong = append(wrong, g)
				}
			}
			for range k {
				a, err := sample(prompt, img)
				if err != nil {
					return err
				}
				a = strings.TrimSpace(a)
				res.Samples++
				if vlmRight(a, q.Answer.EN) {
					res.Right++
					if !slices.Contains(right, a) {
						right = append(right, a)
					}
				} else if a != "" && !slices.Contains(wrong, a) { // an empty answer is wrong, but no record's content

					wrong = append(wrong, a)
				}
			}
			switch {
			case len(wrong) == 0:
				res.AllRight++
				continue
			case len(right) == 0:
				res.NoneRight++
				right = []string{q.Answer.EN}
			}
			turns := []shapes.Message{msg("user", llava.Placeholder+"\n"+VLMDescribe), msg("assistant", desc), msg("user", q.Question.EN)}
			for _, c := range right {
				for _, w := range wrong {
					rec := shapes.PreferenceRecord{Prompt: turns, Chosen: []shapes.Message{msg("assistant", c)}, Rejected: []shapes.Message{msg("assistant", w)}, Images: []string{r.Image}}
					if err := emit(rec); err != nil {
						return err
					}
					res.Pairs++
				}
			}
		}
		return nil
	})
	res.Scenes = n
	return res, err
}

// vlmAsked calls fn with each of the first limit scenes (0: all) of a
// shapes world's split, its image's path, the model's own description
// (describe, greedy, asked as VLMShapes asks it first) and the scene's
// questions of VLMKinds, which VLMShapes asks after that description. A
// scene the model describes with nothing calls noDescription instead: a
// record's turn may not be empty.
func vlmAsked(dir, split string, limit int, describe VLMContinue, end string, noDescription func(), fn func(r shapes.SceneRecord, img, desc string, qs []shapes.QA) error) (int, error) {
	return vlmScenes(dir, split, limit, func(r shapes.SceneRecord, img string) error {
		desc, err := describe(llava.Prompt(end, true, VLMDescribe), img)
		if err != nil {
			return err
		}
		if desc = strings.TrimSpace(desc); desc == "" {
			noDescription()
			return nil
		}
		var qs []shapes.QA
		for _, q := range r.Questions {
			if slices.Contains(VLMKinds, q.Kind) {
				qs = append(qs, q)
			}
		}
		return fn(r, img, desc, qs)
	})
}

// VLMTask is a question about a shapes scene as VLMShapes asks it, after
// the model's own description, with its image and the right answer: a
// verifiable prompt for reinforcement learning (train.Verifiable).
type VLMTask struct {
	Key    string              // the scene's file:line and the question's kind
	Kind   string              // colour, shape, count or position
	Prompt []tokenizer.Message // "<image>\nDescribe the image.", the description, the question
	Image  string              // the scene's image file
	Answer string

	scene *shapes.Scene // a description task's scene (VLMDescriptionTasks)
}

// Right reports whether answer is right, as VLMShapes marks it.
func (t VLMTask) Right(answer string) bool { return vlmRight(answer, t.Answer) }

// Scores is answer's reward by name, as a verifiable task's (train.Verifiable):
// "correct", 1 when Right, else 0; for a description task (Kind
// "description", VLMDescriptionTasks), "description", the simulated
// annotator's score of it (shapes.Scene.DescriptionScore, 0 to 1).
func (t VLMTask) Scores(answer string) map[string]float64 {
	if t.scene != nil {
		return map[string]float64{"description": t.scene.DescriptionScore(answer)}
	}
	if t.Right(answer) {
		return map[string]float64{"correct": 1}
	}
	return map[string]float64{"correct": 0}
}

// VLMTasks returns the questions of VLMKinds about the first limit scenes
// (0: all) of a shapes world's split as VLMShapes asks them: each after
// the model's own greedy description of its scene (describe, with end as
// VLMImage returns them). Scenes the model describes with nothing are
// left out (skipped counts them): a conversation's turn may not be empty.
func VLMTasks(dir, split string, limit int, describe VLMContinue, end string) (tasks []VLMTask, skipped int, err error) {
	path := filepath.Join(dir, split+"_scenes.jsonl")
	line := 0
	_, err = vlmAsked(dir, split, limit, describe, end, func() { line++; skipped++ }, func(r shapes.SceneRecord, img, desc string, qs []shapes.QA) error {
		line++
		for _, q := range qs {
			tasks = append(tasks, VLMTask{Key: fmt.Sprintf("%s:%d %s", path, line, q.Kind), Kind: q.Kind, Image: img, Answer: q.Answer.EN,
				Prompt: []tokenizer.Message{{Role: "user", Content: llava.Placeholder + "\n" + VLMDescribe}, {Role: "assistant", Content: desc}, {Role: "user", Content: q.Question.EN}}})
		}
		return nil
	})
	return tasks, skipped, err
}

// VLMDescriptionTasks returns the first turn of VLMShapes' conversation
// about each of the first limit scenes (0: all) of a shapes world's
// split, "Describe the image.", as a verifiable prompt: Kind
// "description", Answer the scene's own description (its first
// instruction's answer), and Scores the simulated annotator's score of a
// description (shapes.Scene.DescriptionScore: the objects named by colour
// and shape, named with their place, and their number), the score
// VLMDescriptionPrefs pairs by. Every answer VLMShapes marks is asked
// after this turn's answer.
func VLMDescriptionTasks(dir, split string, limit int) ([]VLMTask, error) {
	path := filepath.Join(dir, split+"_scenes.jsonl")
	var tasks []VLMTask
	line := 0
	_, err := vlmScenes(dir, split, limit, func(r shapes.SceneRecord, img string) error {
		line++
		scene, err := shapes.SceneOf(r.Objects)
		if err != nil {
			return err
		}
		answer := ""
		if len(r.Instructions) > 0 {
			answer = r.Instructions[0].Answer.EN
		}
		tasks = append(tasks, VLMTask{Key: fmt.Sprintf("%s:%d description", path, line), Kind: "description", Image: img, Answer: answer, scene: &scene,
			Prompt: []tokenizer.Message{{Role: "user", Content: llava.Placeholder + "\n" + VLMDescribe}}})
		return nil
	})
	return tasks, err
}

// VLMDescriptionPrefs makes on-policy preference pairs from a model's
// own descriptions of the first limit scenes (0: all) of a shapes world's
// split: for each scene, describe (greedy) and k draws of sample answer
// "Describe the image." (the first turn of VLMShapes' conversation, the
// one every answer is asked after); a simulated annotator who knows the
// scene scores each distinct description (shapes.Scene.DescriptionScore:
// the objects named by colour and shape, named with their place, and
// their number), and each is chosen over each one that scores lower;
// when all score alike below 1, the scene's own description (its first
// instruction's answer) is chosen over them (NoneRight counts those
// scenes), and when all score 1 there is no pair. Right counts the
// descriptions that score 1, AllRight the scenes with no pair, Questions
// the scenes asked; ScoreSum and GreedyScoreSum sum the samples' and the greedy
// descriptions' scores.
func VLMDescriptionPrefs(dir, split string, limit, k int, describe, sample VLMContinue, end string, emit func(shapes.PreferenceRecord) error) (VLMPrefsResult, error) {
	noneRight := 0
	res, err := vlmDescriptions(dir, split, limit, k, describe, sample, end, emit, func(r shapes.SceneRecord, scene shapes.Scene, texts []string, pair func(chosen, rejected string) error) (int, error) {
		pairs := 0
		for _, c := range texts {
			for _, w := range texts {
				if scene.DescriptionScore(c) <= scene.DescriptionScore(w) {
					continue
				}
				if err := pair(c, w); err != nil {
					return pairs, err
				}
				pairs++
			}
		}
		if pairs > 0 || len(texts) == 0 || scene.DescriptionScore(texts[0]) == 1 || len(r.Instructions) == 0 {
			return pairs, nil
		}
		// All alike and none right: the scene's own description is
		// chosen over them, as VLMPrefs chooses the true answer.
		noneRight++
		for _, w := range texts {
			if err := pair(r.Instructions[0].Answer.EN, w); err != nil {
				return pairs, err
			}
			pairs++
		}
		return pairs, nil
	})
	res.NoneRight = noneRight
	return res, err
}

// VLMCorrectionPrefs makes correction pairs (RLHF-V's fine-grained
// correctional feedback) from a model's own descriptions, sampled as
// VLMDescriptionPrefs samples them (describe greedy, and k draws of
// sample): a simulated annotator who knows the scene corrects each
// distinct description by the smallest edit
// (shapes.Scene.CorrectDescription: each described object's wrong size,
// colour, shape or place replaced by the true one, an object dropped or
// added only when their number is wrong), and the correction is chosen
// over the description as written. The two differ only where the model
// misread the image, so DPO's gradient lands on those words and not on
// the description's wording. A description that is its own correction
// makes no pair; Rewritten counts the corrections that had to drop or
// add an object, Right the sampled descriptions that score 1, AllRight
// the scenes with no pair.
func VLMCorrectionPrefs(dir, split string, limit, k int, describe, sample VLMContinue, end string, emit func(shapes.PreferenceRecord) error) (VLMPrefsResult, error) {
	rewritten := 0
	res, err := vlmDescriptions(dir, split, limit, k, describe, sample, end, emit, func(r shapes.SceneRecord, scene shapes.Scene, texts []string, pair func(chosen, rejected string) error) (int, error) {
		pairs := 0
		for _, w := range texts {
			c, same := scene.CorrectDescription(w)
			if c == w {
				continue
			}
			if !same {
				rewritten++
			}
			if err := pair(c, w); err != nil {
				return pairs, err
			}
			pairs++
		}
		return pairs, nil
	})
	res.Rewritten = rewritten
	return res, err
}

// vlmDescriptions samples the descriptions VLMDescriptionPrefs and
// VLMCorrectionPrefs pair: for each of the first limit scenes of split,
// the greedy one and k samples, the distinct non-empty ones (greedy
// first) handed to pairs with the scene, which emits its pairs through
// pair and returns how many; it counts Samples, Right (samples scoring 1),
// ScoreSum, GreedyScoreSum, Questions (scenes asked), AllRight (scenes
// with no pair) and Pairs.
func vlmDescriptions(dir, split string, limit, k int, describe, sample VLMContinue, end string, emit func(shapes.PreferenceRecord) error,
	pairs func(r shapes.SceneRecord, scene shapes.Scene, texts []string, pair func(chosen, rejected string) error) (int, error)) (VLMPrefsResult, error) {
	var res VLMPrefsResult
	if k < 0 {
		return res, fmt.Errorf("eval: %d samples a scene: want 0 or more", k)
	}
	prompt := llava.Prompt(end, true, VLMDescribe)
	turns := []shapes.Message{{Role: "user", Content: llava.Placeholder + "\n" + VLMDescribe}}
	n, err := vlmScenes(dir, split, limit, func(r shapes.SceneRecord, img string) error {
		scene, err := shapes.SceneOf(r.Objects)
		if err != nil {
			return err
		}
		res.Questions++
		var texts []string
		add := func(text string) {
			if text = strings.TrimSpace(text); text != "" && !slices.Contains(texts, text) {
				texts = append(texts, text)
			}
		}
		g, err := describe(prompt, img)
		if err != nil {
			return err
		}
		res.GreedyScoreSum += scene.DescriptionScore(g)
		add(g)
		for range k {
			a, err := sample(prompt, img)
			if err != nil {
				return err
			}
			res.Samples++
			sc := scene.DescriptionScore(a)
			res.ScoreSum += sc
			if sc == 1 {
				res.Right++
			}
			add(a)
		}
		np, err := pairs(r, scene, texts, func(chosen, rejected string) error {
			return emit(shapes.PreferenceRecord{Prompt: turns, Chosen: []shapes.Message{{Role: "assistant", Content: chosen}},
				Rejected: []shapes.Message{{Role: "assistant", Content: rejected}}, Images: []string{r.Image}})
		})
		if np == 0 && err == nil {
			res.AllRight++
		}
		res.Pairs += np
		return err
	})
	res.Scenes = n
	return res, err
}

// WriteVLMPrefs writes the pairs pairs emits (VLMPrefs or
// VLMDescriptionPrefs over the shapes world in dir) to out as JSONL
// (golem dpo's preference records with TRL's "images"), each image's
// path relative to out's folder, as golem's data readers take it.
func WriteVLMPrefs(out, dir string, pairs func(emit func(shapes.PreferenceRecord) error) (VLMPrefsResult, error)) (VLMPrefsResult, error) {
	absOut, err := filepath.Abs(filepath.Dir(out))
	if err != nil {
		return VLMPrefsResult{}, err
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return VLMPrefsResult{}, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	res, err := pairs(func(r shapes.PreferenceRecord) error {
		rel, err := filepath.Rel(absOut, filepath.Join(absDir, r.Images[0]))
		if err != nil {
			return err
		}
		r.Images = []string{filepath.ToSlash(rel)}
		return enc.Encode(r)
	})
	if err != nil {
		return res, err
	}
	if res.Pairs == 0 {
		return res, fmt.Errorf("eval: %s: no pairs: every one of %d questions' samples was alike to the annotator (%d scenes described with nothing, not asked)", out, res.Questions, res.NoDescription)
	}
	return res, atomicfile.WriteFile(out, b.Bytes())
}
