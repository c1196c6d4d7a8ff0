package eval

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/model/llava"
)

// TestVLMPassAtK asks a shapes world's questions of a model that answers
// colour right when greedy and on 2 of its 8 samples, count right on 5
// of 8 samples (not greedy), and nothing else right: the counts per kind
// and over all, pass@j (Chen et al.'s estimate: colour pass@2 = 1 -
// C(6,2)/C(8,2)), the vote and the chance floor are what they must be.
func TestVLMPassAtK(t *testing.T) {
	dir := t.TempDir()
	if _, err := shapes.Write(shapes.Options{Out: dir, Seed: 2, Size: 12, Train: 4, Test: 1, PerClass: 1}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "train_scenes.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	const end = "</s>"
	type key struct{ prompt, image string }
	truth, kind := map[key]string{}, map[key]string{}
	asked := map[string]int{}
	answers := map[string]map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r shapes.SceneRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		img := filepath.Join(dir, r.Image)
		for _, q := range r.Questions {
			k := key{llava.Prompt(end, true, VLMDescribe, "A scene.", q.Question.EN), img}
			if _, dup := truth[k]; !dup && (q.Kind == "colour" || q.Kind == "shape" || q.Kind == "count" || q.Kind == "position") {
				truth[k], kind[k] = q.Answer.EN, q.Kind
				asked[q.Kind]++
				if answers[q.Kind] == nil {
					answers[q.Kind] = map[string]bool{}
				}
				answers[q.Kind][q.Answer.EN] = true
			}
		}
	}
	if asked["colour"] == 0 || asked["count"] == 0 {
		t.Fatalf("the world asks %v", asked)
	}
	describe := func(prompt, image string) (string, error) {
		if prompt == llava.Prompt(end, true, VLMDescribe) {
			return " A scene. ", nil
		}
		k := key{prompt, image}
		if kind[k] == "colour" {
			return " " + strings.ToUpper(truth[k]) + ".", nil
		}
		return "no", nil
	}
	draws := map[key]int{}
	sample := func(prompt, image string) (string, error) {
		k := key{prompt, image}
		draws[k]++
		if kind[k] == "colour" && draws[k]%4 == 1 || kind[k] == "count" && draws[k] <= 5 {
			return truth[k], nil
		}
		return "wrong", nil
	}
	kinds, skipped, err := VLMPassAtK(dir, "train", 0, 8, describe, sample, end)
	if err != nil {
		t.Fatal(err)
	}
	if skipped != 0 {
		t.Errorf("%d scenes not asked", skipped)
	}
	total := 0
	for _, k := range VLMKinds {
		p := kinds[k]
		total += asked[k]
		if p.Questions != asked[k] || p.K != 8 || len(p.RightOf) != 9 {
			t.Fatalf("%s: %+v, want %d questions", k, p, asked[k])
		}
		if k == "colour" {
			if p.Majority != 0 || p.Answers != len(answers[k]) || math.Abs(p.Chance(8)-(1-math.Pow(1-1/float64(len(answers[k])), 8))) > 1e-12 {
				t.Errorf("colour: majority %d (the 6 wrong samples outvote the 2 right), %d answers, want 0, %d", p.Majority, p.Answers, len(answers[k]))
			}
			if p.Greedy != asked[k] || p.RightOf[2] != asked[k] || p.GreedyAcc() != 1 || p.PassAt(1) != 0.25 || math.Abs(p.PassAt(2)-(1-15.0/28)) > 1e-12 || p.PassAt(8) != 1 {
				t.Errorf("colour: %+v, pass@1 %v pass@2 %v pass@8 %v", p, p.PassAt(1), p.PassAt(2), p.PassAt(8))
			}
		} else if k == "count" {
			if p.Greedy != 0 || p.RightOf[5] != asked[k] || p.Majority != asked[k] || p.PassAt(1) != 5.0/8 || p.PassAt(4) != 1 {
				t.Errorf("count: %+v, pass@1 %v pass@4 %v: 5 of 8 samples right, the vote right, greedy wrong", p, p.PassAt(1), p.PassAt(4))
			}
		} else if p.Greedy != 0 || p.RightOf[0] != asked[k] || p.PassAt(8) != 0 || p.Majority != 0 {
			t.Errorf("%s: %+v, pass@8 %v: nothing is right", k, p, p.PassAt(8))
		}
	}
	all := kinds["all"]
	c, n := float64(asked["colour"])/float64(total), float64(asked["count"])/float64(total)
	if all.Questions != total || math.Abs(all.PassAt(8)-c-n) > 1e-12 || math.Abs(all.PassAt(1)-c/4-n*5/8) > 1e-12 || math.Abs(all.GreedyAcc()-c) > 1e-12 || all.Majority != asked["count"] || all.Answers != 0 {
		t.Errorf("all: %+v, pass@1 %v pass@8 %v; want %d questions, %v of them right", all, all.PassAt(1), all.PassAt(8), total, c)
	}
	chance := 0.0
	for _, k := range VLMKinds {
		chance += float64(asked[k]) * (1 - math.Pow(1-1/float64(len(answers[k])), 8))
	}
	if got := all.Chance(8); math.Abs(got-chance/float64(total)) > 1e-12 {
		t.Errorf("all: chance@8 %v, want each question's kind's, %v", got, chance/float64(total))
	}
	if _, _, err := VLMPassAtK(dir, "train", 0, 0, describe, sample, end); err == nil {
		t.Error("0 samples a question: no error")
	}
}
