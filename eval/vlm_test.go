package eval

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/model/llava"
)

// An answerer that knows each scene scores 1; one that always says "red"
// scores the share of colour questions whose answer is red; a caption
// naming one object counts that object only.
func TestVLMShapesScores(t *testing.T) {
	dir := t.TempDir()
	if _, err := shapes.Write(shapes.Options{Out: dir, Seed: 1, Size: 12, Train: 4, Test: 6, PerClass: 1}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "test_scenes.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	truth := map[string]shapes.SceneRecord{}
	red, colour, objects := 0, 0, 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r shapes.SceneRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		truth[filepath.Join(dir, r.Image)] = r
		objects += len(r.Objects)
		for _, q := range r.Questions {
			if q.Kind == "colour" {
				colour++
				if q.Answer.EN == "red" {
					red++
				}
			}
		}
	}
	oracle := func(q, image string) (string, error) {
		r := truth[image]
		if q == "Describe the image." {
			return "The image shows a " + r.Objects[0].Colour + " " + r.Objects[0].Shape + ".", nil
		}
		for _, qa := range r.Questions {
			if qa.Question.EN == q {
				return " " + strings.ToUpper(qa.Answer.EN[:1]) + qa.Answer.EN[1:] + ".", nil
			}
		}
		t.Fatalf("unknown question %q", q)
		return "", nil
	}
	res, err := VLMShapes(dir, "test", 0, oracle)
	if err != nil {
		t.Fatal(err)
	}
	if res.Scenes != 6 || res.VQA != 1 || res.Objects != objects || res.CaptionAcc != 6/float64(objects) {
		t.Fatalf("oracle: %+v (want 6 scenes, VQA 1, captions naming 6 of %d objects)", res, objects)
	}
	for k := range res.Kinds {
		if k != "colour" && k != "shape" && k != "count" && k != "position" {
			t.Errorf("kind %q scored", k)
		}
	}
	res, err = VLMShapes(dir, "test", 0, func(string, string) (string, error) { return "red", nil })
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Kinds["colour"]; got != [2]int{red, colour} || res.CaptionAcc != 0 {
		t.Fatalf("always red: colour %v, want [%d %d]; caption %v", got, red, colour, res.CaptionAcc)
	}
	if _, err := VLMShapes(dir, "nope", 0, oracle); err == nil || !strings.Contains(err.Error(), "nope_scenes.jsonl") {
		t.Fatalf("missing split: %v", err)
	}
}

func TestVLMConversationAfterTrue(t *testing.T) {
	dir := t.TempDir()
	if _, err := shapes.Write(shapes.Options{Out: dir, Seed: 3, Size: 12, Train: 2, Test: 2, PerClass: 1}); err != nil {
		t.Fatal(err)
	}
	truth, err := VLMTrueDescriptions(dir, "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(truth) != 2 {
		t.Fatalf("%d descriptions, want 2", len(truth))
	}
	const end = "</s>"
	// A model that describes every scene as a blue circle and answers each
	// question with the first colour word of the description it was asked
	// after: after its own description, "blue"; after the true one, the
	// scene's.
	colours := []string{"red", "green", "blue", "yellow", "orange", "purple", "white", "cyan"}
	cont := func(prompt, image string) (string, error) {
		if prompt == llava.Prompt(end, true, VLMDescribe) {
			return "The image shows a small blue circle.", nil
		}
		for _, w := range strings.Fields(strings.TrimPrefix(prompt, llava.Prompt(end, true, VLMDescribe))) {
			if slices.Contains(colours, w) {
				return w, nil
			}
		}
		return "", nil
	}
	own, err := VLMShapes(dir, "test", 0, VLMConversation(cont, end, true))
	if err != nil {
		t.Fatal(err)
	}
	after, err := VLMShapes(dir, "test", 0, VLMConversationAfter(cont, end, true, truth))
	if err != nil {
		t.Fatal(err)
	}
	if own.CaptionAcc != after.CaptionAcc {
		t.Errorf("caption accuracy %v after the true description, %v after its own: the caption is the model's either way", after.CaptionAcc, own.CaptionAcc)
	}
	// The scenes' colour questions are about their objects' colours: the
	// first colour word of a one-colour scene's description is right.
	if c := after.Kinds["colour"]; c[1] > 0 && c[0] <= own.Kinds["colour"][0] {
		t.Errorf("colour answers right after the true description %v, after its own %v: want more", c, own.Kinds["colour"])
	}
	if _, err := VLMShapes(dir, "test", 0, VLMConversationAfter(cont, end, true, map[string]string{})); err == nil || !strings.Contains(err.Error(), "no description") {
		t.Errorf("no true description for a scene: err %v", err)
	}
}
