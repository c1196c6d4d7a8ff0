package eval

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/model/llava"
)

// On-policy pairs from a scripted model: colour questions always right
// (no pair), count questions never (the true answer chosen over each
// distinct wrong sample), the others right and wrong by turns (the
// model's own right answer, "Red." as golem eval vlm accepts for "red",
// chosen over its wrong one). The file reads back as DPO's data, each
// image's path relative to the file's folder.
func TestVLMPrefsOnPolicy(t *testing.T) {
	dir := t.TempDir()
	if _, err := shapes.Write(shapes.Options{Out: dir, Seed: 1, Size: 12, Train: 5, Test: 1, PerClass: 1}); err != nil {
		t.Fatal(err)
	}
	const end = "</s>"
	describe := func(prompt, image string) (string, error) {
		if prompt != llava.Prompt(end, true, VLMDescribe) {
			t.Fatalf("description asked as %q", prompt)
		}
		return " The image shows " + filepath.Base(image) + ". ", nil
	}
	truth := map[string]shapes.SceneRecord{}
	f, err := os.Open(filepath.Join(dir, "train_scenes.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := VLMPrefsResult{Scenes: 5}
	nColour, nCount, nOther := 0, 0, 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var r shapes.SceneRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		truth[filepath.Join(dir, r.Image)] = r
		for _, q := range r.Questions {
			switch q.Kind {
			case "colour":
				nColour++
				want.AllRight++
				want.Right += 3
			case "count":
				nCount++
				want.NoneRight++
				want.Pairs += 2 // "wrong 0", "wrong 1"; "" is wrong but no record
			case "shape", "position":
				nOther++
				want.Right += 2
				want.Pairs++ // the right answer's two forms are one; "wrong 1"
			default:
				continue
			}
			want.Questions++
			want.Samples += 3
		}
	}
	calls := map[string]int{}
	sample := func(prompt, image string) (string, error) {
		r := truth[image]
		for _, q := range r.Questions {
			if prompt != llava.Prompt(end, true, VLMDescribe, "The image shows "+filepath.Base(image)+".", q.Question.EN) {
				continue
			}
			i := calls[prompt]
			calls[prompt]++
			switch {
			case q.Kind == "colour":
				return " " + strings.ToUpper(q.Answer.EN) + ".", nil // right, in another form
			case q.Kind == "count" && i == 2:
				return "", nil
			case q.Kind == "count" || i == 1:
				return "wrong " + string(rune('0'+i%2)), nil
			}
			return q.Answer.EN, nil
		}
		t.Fatalf("%s: unknown prompt %q", image, prompt)
		return "", nil
	}
	out := filepath.Join(t.TempDir(), "sub", "onpolicy.jsonl")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := WriteVLMPrefs(out, dir, func(emit func(shapes.PreferenceRecord) error) (VLMPrefsResult, error) {
		return VLMPrefs(dir, "train", 0, 3, false, describe, sample, end, emit)
	})
	if err != nil {
		t.Fatal(err)
	}
	if res != want {
		t.Fatalf("got %+v, want %+v", res, want)
	}
	ds, err := data.Read(out, data.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Examples) != want.Pairs {
		t.Fatalf("%d examples read back, want %d", len(ds.Examples), want.Pairs)
	}
	for i, ex := range ds.Examples {
		p := ex.Pairs()
		if len(p) != 1 || len(ex.Images) != 1 {
			t.Fatalf("example %d: %d pairs, images %v", i, len(p), ex.Images)
		}
		if _, err := os.Stat(ex.Images[0]); err != nil {
			t.Fatalf("example %d: image %v", i, err)
		}
		c, r := p[0].Chosen[len(p[0].Chosen)-1].Content, p[0].Rejected[len(p[0].Rejected)-1].Content
		if !strings.HasPrefix(r, "wrong ") || strings.HasPrefix(c, "wrong") {
			t.Fatalf("example %d: chose %q over %q", i, c, r)
		}
	}
	// With greedyWrong the colour questions, whose greedy answer is
	// right, make no pair, and the greedy answer of the others is
	// rejected beside their wrong samples.
	greedy := func(prompt, image string) (string, error) {
		for _, q := range truth[image].Questions {
			if strings.HasSuffix(prompt, llava.UserTurn(q.Question.EN)) {
				if q.Kind == "colour" {
					return q.Answer.EN, nil
				}
				return "greedy wrong", nil
			}
		}
		return describe(prompt, image)
	}
	calls = map[string]int{}
	res, err = WriteVLMPrefs(out, dir, func(emit func(shapes.PreferenceRecord) error) (VLMPrefsResult, error) {
		return VLMPrefs(dir, "train", 0, 3, true, greedy, sample, end, emit)
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.GreedyRight != nColour || res.Pairs != 3*nCount+2*nOther || res.Samples != 3*(nCount+nOther) || res.NoneRight != nCount {
		t.Fatalf("greedy wrong: got %+v; want %d greedy right, %d pairs", res, nColour, 3*nCount+2*nOther)
	}
	if b, err := os.ReadFile(out); err != nil || strings.Count(string(b), `"rejected":[{"role":"assistant","content":"greedy wrong"}]`) != nCount+nOther {
		t.Fatalf("greedy wrong: the greedy answer rejected %d times, want %d (%v)", strings.Count(string(b), `"greedy wrong"`), nCount+nOther, err)
	}
	allRight := func(prompt, image string) (string, error) {
		for _, q := range truth[image].Questions {
			if strings.HasSuffix(prompt, llava.UserTurn(q.Question.EN)) {
				return q.Answer.EN, nil
			}
		}
		return "", nil
	}
	if _, err := WriteVLMPrefs(out, dir, func(emit func(shapes.PreferenceRecord) error) (VLMPrefsResult, error) {
		return VLMPrefs(dir, "train", 2, 3, false, describe, allRight, end, emit)
	}); err == nil || !strings.Contains(err.Error(), "no pairs") {
		t.Fatalf("every sample right: %v, want no pairs", err)
	}
	// An empty description (an undertrained model's) cannot be a
	// record's turn: its scene is not asked about.
	empty := func(string, string) (string, error) { return " ", nil }
	if res, err := WriteVLMPrefs(out, dir, func(emit func(shapes.PreferenceRecord) error) (VLMPrefsResult, error) {
		return VLMPrefs(dir, "train", 0, 3, false, empty, sample, end, emit)
	}); err == nil || res.NoDescription != 5 || res.Questions != 0 {
		t.Fatalf("empty descriptions: %+v, %v; want 5 scenes not asked, no pairs", res, err)
	}
}

// Description pairs from a scripted model: its greedy description is the
// scene's own (score 1), its samples by turns the truth again (no new
// candidate), one with an object's colour changed, and empty (no
// candidate); each scene gives the truth over the recoloured one, read
// back as DPO's data with its image. A model whose descriptions all score
// alike below 1 gets the truth chosen over them; one whose descriptions
// are all right makes no pair: an error.
func TestVLMDescriptionPrefs(t *testing.T) {
	dir, recs, truth, wrong := descriptionWorld(t, func(o *shapes.Object) { o.Colour = (o.Colour + 1) % 8 })
	describe := func(prompt, image string) (string, error) {
		if prompt != llava.Prompt(prefsEnd, true, VLMDescribe) {
			t.Fatalf("description asked as %q", prompt)
		}
		return " " + truth[image], nil
	}
	sample := byTurns(truth, wrong)
	out := filepath.Join(t.TempDir(), "desc.jsonl")
	res, err := writePrefs(out, dir, VLMDescriptionPrefs, 3, describe, sample)
	if err != nil {
		t.Fatal(err)
	}
	if res.Scenes != 4 || res.Questions != 4 || res.Samples != 12 || res.Pairs != 4 || res.GreedyScoreSum != 4 || res.AllRight != 0 {
		t.Fatalf("got %+v; want 4 scenes, 12 samples, 4 pairs, the greedy descriptions all scoring 1", res)
	}
	checkTruthChosen(t, out, dir, recs, truth, wrong)
	// A model whose descriptions all score alike below 1 gets the scene's
	// own description chosen over each of them.
	bad := func(_, image string) (string, error) { return wrong[image], nil }
	res, err = writePrefs(out, dir, VLMDescriptionPrefs, 3, bad, bad)
	if err != nil || res.NoneRight != 4 || res.Pairs != 4 {
		t.Fatalf("all alike and wrong: %+v, %v; want the truth chosen in 4 scenes, 4 pairs", res, err)
	}
	if b, err := os.ReadFile(out); err != nil || strings.Count(string(b), "The image shows") != 8 || !strings.Contains(string(b), `"chosen":[{"role":"assistant","content":"`+truth[filepath.Join(dir, recs[0].Image)]) {
		t.Fatalf("all alike and wrong: the truth not chosen: %s %v", b, err)
	}
	checkNoPairs(t, out, dir, VLMDescriptionPrefs, truth)
}

// descriptionWorld writes a 4-scene shapes world and returns its training
// scenes' records and, by image path, each scene's own description and
// the same with its first object changed by change.
func descriptionWorld(t *testing.T, change func(*shapes.Object)) (dir string, recs []shapes.SceneRecord, truth, wrong map[string]string) {
	t.Helper()
	dir = t.TempDir()
	if _, err := shapes.Write(shapes.Options{Out: dir, Seed: 1, Size: 12, Train: 4, Test: 1, PerClass: 1}); err != nil {
		t.Fatal(err)
	}
	recs, scenes, err := shapes.ReadScenes(filepath.Join(dir, "train_scenes.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	truth, wrong = map[string]string{}, map[string]string{}
	for i, r := range recs {
		img := filepath.Join(dir, r.Image)
		truth[img] = "The image shows " + scenes[i].Captions()[0].EN + "."
		s := scenes[i]
		s.Objects = append([]shapes.Object(nil), s.Objects...)
		change(&s.Objects[0])
		wrong[img] = "The image shows " + s.Captions()[0].EN + "."
	}
	return dir, recs, truth, wrong
}

// Correction pairs: a model whose greedy description has one object's
// colour and place wrong, and whose samples are by turns the scene's own
// description (its own correction: no pair), the wrong one again (not a
// new candidate) and empty, gets one pair a scene: its description with
// the wrong words replaced, which is the scene's own description and
// scores 1, chosen over it as written. A model whose descriptions
// are all right makes no pair: an error.
func TestVLMCorrectionPrefs(t *testing.T) {
	dir, recs, truth, wrong := descriptionWorld(t, func(o *shapes.Object) { o.Colour, o.Cell = (o.Colour+1)%8, (o.Cell+4)%9 })
	describe := func(_, image string) (string, error) { return wrong[image], nil }
	sample := byTurns(truth, wrong)
	out := filepath.Join(t.TempDir(), "corr.jsonl")
	res, err := writePrefs(out, dir, VLMCorrectionPrefs, 3, describe, sample)
	if err != nil {
		t.Fatal(err)
	}
	if res.Scenes != 4 || res.Samples != 12 || res.Pairs != 4 || res.AllRight != 0 || res.Rewritten != 0 {
		t.Fatalf("got %+v; want 4 scenes, 12 samples, 4 pairs, no object dropped or added", res)
	}
	checkTruthChosen(t, out, dir, recs, truth, wrong)
	// One object too many: dropped, the correction the truth again.
	extra := func(_, image string) (string, error) {
		return strings.TrimSuffix(truth[image], ".") + " and a large white diamond in the centre.", nil
	}
	res, err = writePrefs(out, dir, VLMCorrectionPrefs, 0, extra, extra)
	if err != nil || res.Pairs != 4 || res.Rewritten != 4 || res.Samples != 0 {
		t.Fatalf("one object too many: %+v, %v; want 4 pairs, each dropping an object", res, err)
	}
	if ds, err := data.Read(out, data.ReadOptions{}); err != nil || ds.Examples[0].Pairs()[0].Chosen[0].Content != truth[filepath.Join(dir, recs[0].Image)] {
		t.Fatalf("one object too many: %v, %v", ds.Examples, err)
	}
	checkNoPairs(t, out, dir, VLMCorrectionPrefs, truth)
}

// prefsEnd is the scripted models' end-of-turn token.
const prefsEnd = "</s>"

// descriptionPairs is VLMDescriptionPrefs or VLMCorrectionPrefs.
type descriptionPairs func(dir, split string, limit, k int, describe, sample VLMContinue, end string, emit func(shapes.PreferenceRecord) error) (VLMPrefsResult, error)

// writePrefs writes pairs' preference file over dir's training scenes to
// out, k samples a scene.
func writePrefs(out, dir string, pairs descriptionPairs, k int, describe, sample VLMContinue) (VLMPrefsResult, error) {
	return WriteVLMPrefs(out, dir, func(emit func(shapes.PreferenceRecord) error) (VLMPrefsResult, error) {
		return pairs(dir, "train", 0, k, describe, sample, prefsEnd, emit)
	})
}

// byTurns samples for an image by turns its scene's own description
// (truth), the wrong one and empty.
func byTurns(truth, wrong map[string]string) VLMContinue {
	calls := 0
	return func(_, image string) (string, error) {
		calls++
		return [...]string{truth[image], wrong[image], " "}[calls%3], nil
	}
}

// checkTruthChosen reads the pairs file out back as DPO's data: example i
// chooses recs[i]'s own description (truth, scoring 1) over wrong, with
// its one image, which exists.
func checkTruthChosen(t *testing.T, out, dir string, recs []shapes.SceneRecord, truth, wrong map[string]string) {
	t.Helper()
	ds, err := data.Read(out, data.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, scenes, err := shapes.ReadScenes(filepath.Join(dir, "train_scenes.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Examples) != len(recs) {
		t.Fatalf("%d examples, want one for each of %d scenes", len(ds.Examples), len(recs))
	}
	for i, ex := range ds.Examples {
		p := ex.Pairs()
		c, r := p[0].Chosen[0].Content, p[0].Rejected[0].Content
		img := filepath.Join(dir, recs[i].Image)
		if c != truth[img] || r != wrong[img] || scenes[i].DescriptionScore(c) != 1 || len(ex.Images) != 1 {
			t.Fatalf("example %d: chose %q (score %v) over %q, images %v; want %q over %q", i, c, scenes[i].DescriptionScore(c), r, ex.Images, truth[img], wrong[img])
		}
		if _, err := os.Stat(ex.Images[0]); err != nil {
			t.Fatalf("example %d: image %v", i, err)
		}
	}
}

// checkNoPairs checks that a model whose every description is the scene's
// own (truth) makes no pair: an error.
func checkNoPairs(t *testing.T, out, dir string, pairs descriptionPairs, truth map[string]string) {
	t.Helper()
	same := func(_, image string) (string, error) { return truth[image], nil }
	if _, err := writePrefs(out, dir, pairs, 3, same, same); err == nil || !strings.Contains(err.Error(), "no pairs") {
		t.Fatalf("every description right: %v, want no pairs", err)
	}
}

// VLMTasks asks each scene's questions of VLMKinds after the model's own
// description (trimmed), as VLMShapes asks them: the prompt is that
// conversation with the image's placeholder, the answer the scene's, and
// Right and Scores mark answers as VLMShapes does ("Red." for "red");
// a scene described with nothing is left out, counted, and the keys name
// each scene's line.
// tinyWorld writes a shapes world of 3 training scenes and 1 test scene
// (12 x 12, seed 1) and returns its folder and its training scenes'
// records, in order.
func tinyWorld(t *testing.T) (string, []shapes.SceneRecord) {
	t.Helper()
	dir := t.TempDir()
	if _, err := shapes.Write(shapes.Options{Out: dir, Seed: 1, Size: 12, Train: 3, Test: 1, PerClass: 1}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "train_scenes.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var scenes []shapes.SceneRecord
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r shapes.SceneRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		scenes = append(scenes, r)
	}
	return dir, scenes
}

func TestVLMTasks(t *testing.T) {
	dir, scenes := tinyWorld(t)
	const end = "</s>"
	describe := func(prompt, image string) (string, error) {
		if prompt != llava.Prompt(end, true, VLMDescribe) {
			t.Fatalf("description asked as %q", prompt)
		}
		if filepath.Base(image) == filepath.Base(scenes[1].Image) {
			return " ", nil
		}
		return " The image shows " + filepath.Base(image) + ". ", nil
	}
	tasks, skipped, err := VLMTasks(dir, "train", 0, describe, end)
	if err != nil {
		t.Fatal(err)
	}
	if skipped != 1 {
		t.Errorf("%d scenes left out, want 1 (described with nothing)", skipped)
	}
	var want []VLMTask
	for i, r := range scenes {
		if i == 1 {
			continue
		}
		for _, q := range r.Questions {
			if q.Kind == "colour" || q.Kind == "shape" || q.Kind == "count" || q.Kind == "position" {
				want = append(want, VLMTask{Key: fmt.Sprintf("%s:%d %s", filepath.Join(dir, "train_scenes.jsonl"), i+1, q.Kind), Kind: q.Kind, Image: filepath.Join(dir, r.Image), Answer: q.Answer.EN})
			}
		}
	}
	if len(tasks) != len(want) || len(tasks) == 0 {
		t.Fatalf("%d tasks, want %d", len(tasks), len(want))
	}
	for i, tk := range tasks {
		w := want[i]
		if tk.Key != w.Key || tk.Kind != w.Kind || tk.Image != w.Image || tk.Answer != w.Answer {
			t.Errorf("task %d: %+v, want %+v", i, tk, w)
		}
		desc := "The image shows " + filepath.Base(tk.Image) + "."
		if got := llava.Prompt(end, false, tk.Prompt[0].Content, tk.Prompt[1].Content, tk.Prompt[2].Content); len(tk.Prompt) != 3 || tk.Prompt[1].Content != desc ||
			got != llava.Prompt(end, false, llava.Placeholder+"\n"+VLMDescribe, desc, tk.Prompt[2].Content) || tk.Prompt[0].Role != "user" || tk.Prompt[1].Role != "assistant" || tk.Prompt[2].Role != "user" {
			t.Errorf("task %d: prompt %+v", i, tk.Prompt)
		}
		if !tk.Right(" "+strings.ToUpper(tk.Answer)+".") || tk.Scores(tk.Answer)["correct"] != 1 || tk.Scores("wrong")["correct"] != 0 || tk.Right("") {
			t.Errorf("task %d: answers to %q marked wrongly", i, tk.Answer)
		}
	}
}

func TestVLMDescriptionTasks(t *testing.T) {
	dir, scenes := tinyWorld(t)
	tasks, err := VLMDescriptionTasks(dir, "train", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 2 {
		t.Fatalf("%d tasks, want 2 (--limit)", len(tasks))
	}
	for i, tk := range tasks {
		r := scenes[i]
		scene, err := shapes.SceneOf(r.Objects)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("%s:%d description", filepath.Join(dir, "train_scenes.jsonl"), i+1); tk.Key != want || tk.Kind != "description" || tk.Image != filepath.Join(dir, r.Image) {
			t.Errorf("task %d: %+v", i, tk)
		}
		if len(tk.Prompt) != 1 || tk.Prompt[0].Role != "user" || tk.Prompt[0].Content != llava.Placeholder+"\n"+VLMDescribe {
			t.Errorf("task %d: prompt %+v", i, tk.Prompt)
		}
		// The scene's own description scores 1; one object's colour
		// changed scores less, as the annotator scores it; nothing scores 0.
		own := r.Instructions[0].Answer.EN
		if tk.Answer != own || tk.Scores(own)["description"] != 1 || tk.Scores("")["description"] != 0 {
			t.Errorf("task %d: %q scored %v, nothing %v", i, own, tk.Scores(own), tk.Scores(""))
		}
		o := r.Objects[0]
		other := "red"
		if o.Colour == "red" {
			other = "blue"
		}
		wrong := strings.Replace(own, o.Colour+" "+o.Shape, other+" "+o.Shape, 1)
		if wrong == own {
			t.Fatalf("task %d: %q does not name %s %s", i, own, o.Colour, o.Shape)
		}
		if got, want := tk.Scores(wrong)["description"], scene.DescriptionScore(wrong); got != want || got >= 1 {
			t.Errorf("task %d: %q scored %v, want the annotator's %v (below 1)", i, wrong, got, want)
		}
	}
}
