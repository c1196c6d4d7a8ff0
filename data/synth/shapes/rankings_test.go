package shapes

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/data"
)

// The simulated rankings are read by golem's data reader as rankings with
// their image (a file that exists); the best answer of each is the
// scene's truth (its description, or the answer {split}_scenes.jsonl gives
// the question), every other answer is not; the description's ranking
// holds the one-colour-wrong and another scene's description; prefs hold
// every ranked pair.
func TestRankings(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(Options{Out: dir, Seed: 5, Train: 30, Test: 4, PerClass: 1}); err != nil {
		t.Fatal(err)
	}
	var scenes []SceneRecord
	f, err := os.Open(filepath.Join(dir, "train_scenes.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r SceneRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		scenes = append(scenes, r)
	}
	f.Close()
	byImage := map[string]SceneRecord{}
	for _, s := range scenes {
		byImage[filepath.Join(dir, filepath.FromSlash(s.Image))] = s
	}
	d, err := data.Read(filepath.Join(dir, "train_rankings.jsonl"), data.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pairs, kinds := 0, map[string]int{}
	for _, e := range d.Examples {
		if e.Kind != data.Ranking || len(e.Images) != 1 {
			t.Fatalf("%s: %s with images %q, want a ranking with one image", e.Source, e.Kind, e.Images)
		}
		if _, err := os.Stat(e.Images[0]); err != nil {
			t.Fatalf("%s: %v", e.Source, err)
		}
		s, ok := byImage[e.Images[0]]
		if !ok {
			t.Fatalf("%s: image %s is no scene's", e.Source, e.Images[0])
		}
		best := e.Completions[e.Ranking[0]][0].Content
		describe := s.Instructions[0].Answer.EN
		if !strings.HasPrefix(e.Prompt[0].Content, "<image>\n") {
			t.Fatalf("%s: the first turn %q does not open with the image", e.Source, e.Prompt[0].Content)
		}
		var want string
		if len(e.Prompt) == 1 {
			want = describe
			kinds["describe"]++
			worst := e.Completions[e.Ranking[len(e.Ranking)-1]][0].Content
			if len(e.Ranking) < 3 || worst == describe {
				t.Fatalf("%s: description ranking %v", e.Source, e.Completions)
			}
		} else {
			if e.Prompt[1].Content != describe {
				t.Fatalf("%s: the question is asked after %q, want the scene's description %q", e.Source, e.Prompt[1].Content, describe)
			}
			q := e.Prompt[2].Content
			for _, qa := range s.Questions {
				if qa.Question.EN == q {
					want = qa.Answer.EN
					kinds[qa.Kind]++
				}
			}
		}
		if best != want {
			t.Fatalf("%s: best answer %q, want %q", e.Source, best, want)
		}
		for _, i := range e.Ranking[1:] {
			if a := e.Completions[i][0].Content; a == want {
				t.Fatalf("%s: a worse answer is the truth %q", e.Source, a)
			}
		}
		pairs += len(e.Ranking) * (len(e.Ranking) - 1) / 2
	}
	if kinds["describe"] != len(scenes) || kinds["colour"] == 0 || kinds["count"] == 0 || kinds["position"] == 0 || kinds["shape"] == 0 {
		t.Fatalf("rankings by kind %v for %d scenes", kinds, len(scenes))
	}
	p, err := data.Read(filepath.Join(dir, "train_prefs.jsonl"), data.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Examples) != pairs {
		t.Fatalf("%d preference pairs, want %d (every ranked pair)", len(p.Examples), pairs)
	}
	for _, e := range p.Examples {
		if e.Kind != data.Preference || len(e.Images) != 1 {
			t.Fatalf("%s: %s with images %q", e.Source, e.Kind, e.Images)
		}
	}
}

// A description scores 1 when it is the scene's own, and loses a third
// of a mark for each kind of error: an object named in the wrong colour
// (neither named nor placed), one in the wrong place (named, not placed),
// one too many or too few objects (the count).
func TestDescriptionScore(t *testing.T) {
	s := Scene{Objects: []Object{{Kind: Circle, Colour: Red, Cell: 0}, {Kind: Square, Colour: Blue, Large: true, Cell: 5}}}
	truth := "The image shows " + s.Captions()[0].EN + "."
	for _, c := range []struct {
		text string
		want float64
	}{
		{truth, 1},
		{strings.ToUpper(truth), 1},
		{"The image shows a small red circle in the top left corner and a large green square on the right.", (0.5 + 0.5 + 1) / 3},
		{"The image shows a small red circle at the bottom and a large blue square on the right.", (1 + 0.5 + 1) / 3},
		{"The image shows a small red circle in the top left corner, a large blue square on the right and a small red circle in the centre.", 2.0 / 3},
		{"The image shows a small red circle in the top left corner.", (0.5 + 0.5 + 0) / 3},
		{"", 0},
	} {
		if got := s.DescriptionScore(c.text); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%q: score %v, want %v", c.text, got, c.want)
		}
	}
}
