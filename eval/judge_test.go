package eval

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/data/synth/shapes"
)

func obj(colour shapes.Colour, kind shapes.Kind, large bool, cell int) shapes.Object {
	return shapes.Object{Kind: kind, Colour: colour, Large: large, Cell: cell}
}

// Each caption kind scores only what it states, as ScoreScene's doc says.
func TestScoreScene(t *testing.T) {
	a, b := obj(shapes.Red, shapes.Circle, false, 0), obj(shapes.Cyan, shapes.Square, true, 5)
	scene := []shapes.Object{a, b}
	moved := []shapes.Object{obj(shapes.Red, shapes.Circle, false, 8), obj(shapes.Cyan, shapes.Square, true, 3)} // b left of a now
	recoloured := []shapes.Object{obj(shapes.Blue, shapes.Circle, false, 0), obj(shapes.Cyan, shapes.Diamond, false, 5)}
	extra := append(append([]shapes.Object{}, scene...), obj(shapes.White, shapes.Triangle, false, 4))
	for _, c := range []struct {
		name string
		kind shapes.CaptionKind
		seen []shapes.Object
		want map[string][2]int
	}{
		{"listing, all right", shapes.Listing, scene, map[string][2]int{"colour": {2, 2}, "shape": {2, 2}, "size": {2, 2}, "position": {2, 2}, "count": {1, 1}}},
		{"listing, moved", shapes.Listing, moved, map[string][2]int{"colour": {0, 2}, "shape": {0, 2}, "size": {0, 2}, "position": {0, 2}, "count": {1, 1}}},
		{"listing, recoloured", shapes.Listing, recoloured, map[string][2]int{"colour": {1, 2}, "shape": {1, 2}, "size": {1, 2}, "position": {2, 2}, "count": {1, 1}}},
		{"listing, one more", shapes.Listing, extra, map[string][2]int{"colour": {2, 2}, "shape": {2, 2}, "size": {2, 2}, "position": {2, 2}, "count": {0, 1}}},
		{"listing, nothing", shapes.Listing, nil, map[string][2]int{"colour": {0, 2}, "shape": {0, 2}, "size": {0, 2}, "position": {0, 2}, "count": {0, 1}}},
		{"counting, moved", shapes.Counting, moved, map[string][2]int{"colour": {2, 2}, "shape": {2, 2}, "count": {1, 1}}},
		{"counting, recoloured", shapes.Counting, recoloured, map[string][2]int{"colour": {1, 2}, "shape": {1, 2}, "count": {1, 1}}},
		{"counting, one more", shapes.Counting, extra, map[string][2]int{"colour": {2, 2}, "shape": {2, 2}, "count": {0, 1}}},
		{"relating, right", shapes.Relating, extra, map[string][2]int{"colour": {2, 2}, "shape": {2, 2}, "position": {1, 1}}},
		{"relating, reversed", shapes.Relating, moved, map[string][2]int{"colour": {2, 2}, "shape": {2, 2}, "position": {0, 1}}},
		{"relating, recoloured", shapes.Relating, recoloured, map[string][2]int{"colour": {1, 2}, "shape": {1, 2}, "position": {0, 1}}},
	} {
		got := ScoreScene(c.kind, scene, shapes.Scene{Objects: c.seen})
		if len(got) != len(c.want) {
			t.Errorf("%s: marks %v, want %v", c.name, got, c.want)
			continue
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s: %s %v, want %v (all: %v)", c.name, k, got[k], v, got)
			}
		}
	}
	// Two red objects stated, one seen: one of two colours matches.
	two := []shapes.Object{a, obj(shapes.Red, shapes.Square, false, 1)}
	if got := ScoreScene(shapes.Counting, two, shapes.Scene{Objects: []shapes.Object{a}}); got["colour"] != [2]int{1, 2} {
		t.Errorf("two red stated, one seen: colour %v, want [1 2]", got["colour"])
	}
}

// A generator's JSONL (scene carried on each line) and a shapes world's
// {split}.jsonl (scenes beside it) read to the same items; bad lines are
// refused by file and line.
func TestReadJudgeItems(t *testing.T) {
	dir := t.TempDir()
	if _, err := shapes.Write(shapes.Options{Out: dir, Seed: 2, Size: 16, Train: 4, Test: 6, PerClass: 1}); err != nil {
		t.Fatal(err)
	}
	split, err := ReadJudgeItems(filepath.Join(dir, "heldout.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	zh, err := ReadJudgeItems(filepath.Join(dir, "heldout_zh.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := shapes.ReadScenes(filepath.Join(dir, "heldout_scenes.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for i, r := range recs {
		c := r.Captions[(i+1)%len(r.Captions)].EN
		b, _ := json.Marshal(map[string]any{"image": r.Image, "caption": c, "scene": r, "sample": i})
		lines = append(lines, string(b))
	}
	gen := filepath.Join(dir, "generated.jsonl")
	os.WriteFile(gen, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	items, err := ReadJudgeItems(gen)
	if err != nil {
		t.Fatal(err)
	}
	if len(split) != 6 || len(items) != 6 || len(zh) != 6 {
		t.Fatalf("%d, %d and %d items, want 6 each", len(split), len(items), len(zh))
	}
	for i := range items {
		if items[i].Image != split[i].Image || len(items[i].Scene.Objects) != len(split[i].Scene.Objects) || !split[i].HeldOut() {
			t.Errorf("item %d: %+v vs %+v", i, items[i], split[i])
		}
		if zh[i].Kind != split[i].Kind {
			t.Errorf("item %d: Chinese caption's kind %v, English %v", i, zh[i].Kind, split[i].Kind)
		}
	}
	good := lines[0]
	for _, c := range []struct{ line, want string }{
		{`{"image": "a.png", "caption": "a red circle"}`, "no \"scene\", and there is no"},
		{strings.Replace(good, `"caption":"`, `"caption":"not `, 1), `is none of its scene's captions`},
		{strings.Replace(good, `"shape":"`, `"shape":"hex`, 1), `"scene": "objects"[0]: "shape" is "hex`},
		{`{"caption": "x"}`, `fields "image" (a path) and "caption" are needed`},
		{`{"image": 3}`, `cannot unmarshal number`},
	} {
		bad := filepath.Join(dir, "bad.jsonl")
		os.WriteFile(bad, []byte(good+"\n"+c.line+"\n"), 0o644)
		if _, err := ReadJudgeItems(bad); err == nil || !strings.Contains(err.Error(), bad+":2: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %s:2: ... %s", c.line, err, bad, c.want)
		}
	}
}

// A simulated annotator's scores of a sample and the pairs it makes:
// Share counts every mark, MeanAcc averages the attributes' accuracies;
// every two samples of different scores make a pair, the larger gaps
// first, ties none.
func TestAnnotatorScores(t *testing.T) {
	m := Marks{"colour": {2, 2}, "shape": {1, 2}, "count": {0, 1}}
	if got := m.Share(); math.Abs(got-3.0/5) > 1e-12 {
		t.Errorf("share %v, want 3/5", got)
	}
	if got := m.MeanAcc(); math.Abs(got-(1+0.5+0)/3) > 1e-12 {
		t.Errorf("mean accuracy %v, want 1/2", got)
	}
	if (Marks{}).Share() != 0 || (Marks{}).MeanAcc() != 0 {
		t.Error("no marks: want 0")
	}
	got := PreferencePairs([]float64{0.5, 1, 0.5, 0})
	want := [][2]int{{1, 3}, {0, 3}, {1, 0}, {1, 2}, {2, 3}}
	if len(got) != len(want) || got[0] != want[0] {
		t.Fatalf("pairs %v, want %v (in some order after the largest gap)", got, want)
	}
	seen := map[[2]int]bool{}
	for _, p := range got {
		seen[p] = true
	}
	for _, p := range want {
		if !seen[p] {
			t.Errorf("pairs %v lack %v", got, p)
		}
	}
	if p := PreferencePairs([]float64{0.3, 0.3}); len(p) != 0 {
		t.Errorf("a tie gave pairs %v", p)
	}
}

// An annotator that keeps only dominant pairs trades nothing away: a
// sample that gets more colours and shapes right by drawing extra shapes
// does not beat one that draws fewer too many, nor one that gets an
// attribute it misses right (the all-pairs annotator prefers it to
// both); of two samples with the same marks, the one nearer the stated
// number of shapes is preferred. The exact annotator keeps only the
// dominant pairs whose chosen sample has the count right.
func TestDominantPairs(t *testing.T) {
	stated := []shapes.Object{obj(shapes.Red, shapes.Circle, false, 0), obj(shapes.Cyan, shapes.Square, true, 5)}
	samples := [][]shapes.Object{
		// 0: both right, nothing else: the best.
		stated,
		// 1: both right, and two more shapes: count off by 2.
		{stated[0], stated[1], obj(shapes.White, shapes.Triangle, false, 4), obj(shapes.Green, shapes.Diamond, false, 7)},
		// 2: the red circle alone: count off by 1, half the colours and shapes.
		{stated[0]},
		// 3: two shapes, both the wrong colour, one the wrong shape: count
		// right, no colour, half the shapes.
		{obj(shapes.Blue, shapes.Circle, false, 0), obj(shapes.Green, shapes.Diamond, true, 5)},
		// 4: both right and one more shape: 1's marks, count off by 1.
		{stated[0], stated[1], obj(shapes.White, shapes.Triangle, false, 4)},
	}
	marks, off, scores := countingMarks(stated, samples)
	if want := []int{0, 2, 1, 0, 1}; !slices.Equal(off, want) {
		t.Errorf("count off %v, want %v", off, want)
	}
	if CountOff(shapes.Relating, stated, shapes.Scene{Objects: samples[1]}) != 0 {
		t.Error("a relating caption states no count: want 0 off")
	}
	all, traded := annotatorPairs(scores, marks, off, "all")
	if traded != 0 || !hasPair(all, 1, 2) || !hasPair(all, 1, 3) || hasPair(all, 4, 1) {
		t.Errorf("all pairs %v (traded %d): want 1 over 2 and 1 over 3 (mean accuracy 2/3 against 1/3 and 1/2), not 4 over 1 (the same score)", all, traded)
	}
	dom, traded := annotatorPairs(scores, marks, off, "dominant")
	for _, p := range dom {
		if p[0] == 1 && (p[1] == 2 || p[1] == 3) {
			t.Errorf("dominant pairs %v: 1 (two extra shapes) over %d", dom, p[1])
		}
		if p[0] == 2 && p[1] == 3 || p[0] == 3 && p[1] == 2 {
			t.Errorf("dominant pairs %v: 2 and 3 each miss what the other gets", dom)
		}
	}
	for _, r := range []int{1, 2, 3, 4} {
		if !hasPair(dom, 0, r) {
			t.Errorf("dominant pairs %v lack 0 over %d: it is better on every attribute", dom, r)
		}
	}
	// The same marks, one shape too many against two: nearer the count.
	if !hasPair(dom, 4, 1) || hasPair(dom, 1, 4) {
		t.Errorf("dominant pairs %v: want 4 over 1 (the same marks, one extra shape against two)", dom)
	}
	if len(dom)+traded != len(all)+1 || traded == 0 {
		t.Errorf("dominant %d pairs + %d traded, want all %d and the one pair nearer the count", len(dom), traded, len(all))
	}
	// exact: the dominant pairs whose chosen sample has the count right:
	// 0 (both right) and 3 (the right number of shapes, the wrong colours)
	// over the others.
	exact, _ := annotatorPairs(scores, marks, off, "exact")
	var want [][2]int
	for _, p := range dom {
		if p[0] == 0 || p[0] == 3 {
			want = append(want, p)
		}
	}
	if !slices.Equal(exact, want) || len(want) < 4 {
		t.Errorf("exact pairs %v, want %v", exact, want)
	}
	// count: the number of shapes first, then the score. 3 (the right
	// number, the wrong colours) beats 4 and 1 (every stated shape right,
	// but one and two too many), which "all" and "dominant" prefer; of
	// the two one off (2 and 4), the better score wins; so the order is
	// 0, 3, 4, 2, 1 and every two samples make a pair.
	count, reversed := annotatorPairs(scores, marks, off, "count")
	order := []int{0, 3, 4, 2, 1}
	want = nil
	for i, c := range order {
		for _, r := range order[i+1:] {
			want = append(want, [2]int{c, r})
		}
	}
	for _, p := range want {
		if !hasPair(count, p[0], p[1]) {
			t.Errorf("count pairs %v lack %d over %d", count, p[0], p[1])
		}
	}
	// 3 over 4 and 1, and 2 over 1: the lower score chosen for the count.
	if len(count) != len(want) || reversed != 3 || !hasPair(all, 4, 3) || !hasPair(all, 1, 3) || !hasPair(all, 1, 2) {
		t.Errorf("count pairs %v (%d reversed), want the %d pairs of %v, 3 of them against the score", count, reversed, len(want), order)
	}
}

func hasPair(ps [][2]int, a, b int) bool {
	for _, p := range ps {
		if p == [2]int{a, b} {
			return true
		}
	}
	return false
}

// TestJudgeDiff checks the paired difference of two models' marks and
// its standard error clustered by caption against a hand computation
// (one image a caption, and two samples of one caption as one cluster),
// against PairedDiff's on one mark a caption (the same but for the
// J/(J-1) correction), and that marks made on different terms are an
// error.
func TestJudgeDiff(t *testing.T) {
	a := []Marks{{"colour": {1, 2}}, {"colour": {0, 1}, "count": {1, 1}}, {"colour": {2, 2}}}
	b := []Marks{{"colour": {2, 2}}, {"colour": {1, 1}, "count": {0, 1}}, {"colour": {1, 2}}}
	// d = 1, 1, -1 over n = 2, 1, 2: diff 1/5; residuals 0.6, 0.8, -1.4.
	d, se, n, ok, err := JudgeDiff(a, b, "colour", nil)
	if want := math.Sqrt(1.5*(0.36+0.64+1.96)) / 5; err != nil || !ok || n != 5 || math.Abs(d-0.2) > 1e-12 || math.Abs(se-want) > 1e-12 {
		t.Errorf("colour: diff %g se %g n %d ok %v err %v, want 0.2, %g, 5, true", d, se, n, ok, err, want)
	}
	// Images 1 and 2 one caption's two samples: d = 2, -1 over n = 3, 2;
	// residuals 1.4, -1.4 over J = 2 captions.
	items := []JudgeItem{{Caption: "two shapes"}, {Caption: "two shapes"}, {Caption: "one shape"}}
	cl := Clusters(items)
	if !slices.Equal(cl, []int{0, 0, 1}) {
		t.Fatalf("Clusters: %v, want [0 0 1]", cl)
	}
	d, se, n, ok, err = JudgeDiff(a, b, "colour", cl)
	if want := math.Sqrt(2*(1.96+1.96)) / 5; err != nil || !ok || n != 5 || math.Abs(d-0.2) > 1e-12 || math.Abs(se-want) > 1e-12 {
		t.Errorf("colour, two samples of one caption: diff %g se %g n %d ok %v err %v, want 0.2, %g, 5, true", d, se, n, ok, err, want)
	}
	if _, _, _, ok, err := JudgeDiff(a, b, "count", nil); ok || err != nil {
		t.Errorf("count, stated by one caption: ok %v err %v, want no standard error", ok, err)
	}
	var qa, qb []Marks
	var ma, mb []byte
	for _, v := range []string{"10", "11", "01", "00", "10", "10", "11"} {
		qa, qb = append(qa, Marks{"count": {int(v[0] - '0'), 1}}), append(qb, Marks{"count": {int(v[1] - '0'), 1}})
		ma, mb = append(ma, v[0]), append(mb, v[1])
	}
	d, se, _, _, _ = JudgeDiff(qa, qb, "count", nil)
	pd, pse, _ := PairedDiff(VLMResult{Marks: string(ma)}, VLMResult{Marks: string(mb)})
	if J := 7.0; math.Abs(d-pd) > 1e-12 || math.Abs(se-pse*math.Sqrt(J/(J-1))) > 1e-12 {
		t.Errorf("one mark a caption: diff %g se %g, PairedDiff's %g %g (x sqrt(7/6))", d, se, pd, pse)
	}
	if _, _, _, _, err := JudgeDiff(a, b[:2], "colour", nil); err == nil {
		t.Error("3 images against 2: no error")
	}
	b[1] = Marks{"colour": {1, 2}}
	if _, _, _, _, err := JudgeDiff(a, b, "colour", nil); err == nil || !strings.Contains(err.Error(), "image 2: 2 colour marks against 1") {
		t.Errorf("different marks made: %v", err)
	}
}

// TestJudgeMeanDiff checks the mean of the attributes' paired differences
// and its standard error clustered by caption against a hand computation
// (a caption's influence on the mean is the mean of its influences on
// each attribute's difference), that one attribute's mean is JudgeDiff,
// and that an attribute stated by one caption, or marks made on different
// terms, give no mean.
func TestJudgeMeanDiff(t *testing.T) {
	a := []Marks{{"colour": {1, 2}, "count": {1, 1}}, {"colour": {0, 1}, "count": {0, 1}}, {"colour": {2, 2}}}
	b := []Marks{{"colour": {2, 2}, "count": {0, 1}}, {"colour": {1, 1}, "count": {1, 1}}, {"colour": {1, 2}}}
	// colour: diff 1/5, influences 0.12, 0.16, -0.28; count: diff 0,
	// influences -0.5, 0.5, 0; mean 0.1, influences -0.19, 0.33, -0.14.
	d, se, ok, err := JudgeMeanDiff(a, b, []string{"colour", "count"}, nil)
	if want := math.Sqrt(1.5 * (0.19*0.19 + 0.33*0.33 + 0.14*0.14)); err != nil || !ok || math.Abs(d-0.1) > 1e-12 || math.Abs(se-want) > 1e-12 {
		t.Errorf("mean of colour and count: diff %g se %g ok %v err %v, want 0.1, %g", d, se, ok, err, want)
	}
	d1, se1, _, _, _ := JudgeDiff(a, b, "colour", nil)
	if d, se, ok, err := JudgeMeanDiff(a, b, []string{"colour"}, nil); err != nil || !ok || math.Abs(d-d1) > 1e-12 || math.Abs(se-se1) > 1e-12 {
		t.Errorf("mean of colour alone: %g (SE %g), JudgeDiff's %g (SE %g)", d, se, d1, se1)
	}
	b[1]["count"], a[1]["count"] = [2]int{0, 0}, [2]int{0, 0}
	if _, _, ok, err := JudgeMeanDiff(a, b, []string{"colour", "count"}, nil); ok || err != nil {
		t.Errorf("count stated by one caption: ok %v err %v, want no mean", ok, err)
	}
	b[2] = Marks{"colour": {1, 1}}
	if _, _, _, err := JudgeMeanDiff(a, b, []string{"colour", "count"}, nil); err == nil || !strings.Contains(err.Error(), "image 3: 1 colour marks against 2") {
		t.Errorf("different marks made: %v", err)
	}
}

func TestBeyondCLIPPairs(t *testing.T) {
	stated := []shapes.Object{obj(shapes.Red, shapes.Circle, false, 0), obj(shapes.Cyan, shapes.Square, true, 5)}
	samples := [][]shapes.Object{
		stated, // 0: everything right
		{stated[0], obj(shapes.Cyan, shapes.Diamond, true, 5)}, // 1: one shape wrong, colours and count right
		{obj(shapes.Blue, shapes.Circle, false, 0), stated[1]}, // 2: one colour wrong, shapes and count right
		{stated[0]}, // 3: one shape too few
		{stated[0], obj(shapes.Cyan, shapes.Diamond, true, 5), obj(shapes.White, shapes.Triangle, false, 4)}, // 4: 1 and an extra shape
		// 5 and 6: each 0 and 1 with an extra shape: as far off the count,
		// the same colour marks, 5 better in a shape.
		{stated[0], stated[1], obj(shapes.White, shapes.Triangle, false, 4)},
		{stated[0], obj(shapes.Cyan, shapes.Diamond, true, 5), obj(shapes.White, shapes.Triangle, false, 4)},
	}
	marks, off, scores := countingMarks(stated, samples)
	dom, _ := annotatorPairs(scores, marks, off, "dominant")
	for _, r := range []int{1, 2, 3} {
		if !hasPair(dom, 0, r) {
			t.Fatalf("dominant pairs %v lack 0 over %d: the test's samples are not what it means", dom, r)
		}
	}
	got, traded := annotatorPairs(scores, marks, off, "beyond-clip")
	// Only 0 over 1 differs in what CLIP's pick does not choose by (a
	// shape): 0 over 2 differs in a colour, 0 over 3 and 4 in the count,
	// and 5 and 6, which differ as 0 and 1 do, both have an extra shape.
	if !hasPair(dom, 5, 6) {
		t.Fatalf("dominant pairs %v lack 5 over 6", dom)
	}
	if len(got) != 1 || !hasPair(got, 0, 1) {
		t.Errorf("beyond-clip pairs %v, want only 0 over 1", got)
	}
	if all, _ := annotatorPairs(scores, marks, off, "all"); traded != len(all)-len(got) {
		t.Errorf("traded %d, want the %d pairs of different scores left out", traded, len(all)-len(got))
	}
}

// TestCountAnchors checks the "anchored" rule's count anchors: each
// sample with the caption's number of shapes over each with another
// number and no more colours right.
func TestCountAnchors(t *testing.T) {
	stated := []shapes.Object{obj(shapes.Red, shapes.Circle, false, 0), obj(shapes.Cyan, shapes.Square, true, 5)}
	extra := obj(shapes.White, shapes.Triangle, false, 4)
	blue := obj(shapes.Blue, shapes.Circle, false, 0)
	samples := [][]shapes.Object{
		stated, // 0: everything right
		{stated[0], obj(shapes.Cyan, shapes.Diamond, true, 5)}, // 1: one shape wrong
		{blue, stated[1]},             // 2: one colour wrong
		{stated[0]},                   // 3: one shape too few (one colour right)
		{stated[0], stated[1], extra}, // 4: an extra shape, both colours right
		{blue, stated[1], extra},      // 5: 2 with an extra shape
		{blue},                        // 6: one shape, no colour right
	}
	marks, off, scores := countingMarks(stated, samples)
	got := countAnchors(marks, off)
	// 0 and 1 (two colours right) over 3, 4, 5 and 6; 2 (one) over 3, 5
	// and 6, not over 4 (two colours right).
	want := [][2]int{{0, 3}, {0, 4}, {0, 5}, {0, 6}, {1, 3}, {1, 4}, {1, 5}, {1, 6}, {2, 3}, {2, 5}, {2, 6}}
	if !slices.Equal(got, want) {
		t.Errorf("count anchors %v, want %v", got, want)
	}
	// The rule's other pairs are the beyond-clip ones.
	a, _ := annotatorPairs(scores, marks, off, "anchored")
	b, _ := annotatorPairs(scores, marks, off, "beyond-clip")
	if len(b) == 0 || !slices.Equal(a, b) {
		t.Errorf("anchored's pairs %v, beyond-clip's %v", a, b)
	}
}

// TestCapAnchors checks the cap on the count anchors: at most n, each
// one of them once, the same ones for the same seed and others for
// another.
func TestCapAnchors(t *testing.T) {
	in := func() []int { return []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9} }
	a, b, c := capAnchors(in(), 4, 1), capAnchors(in(), 4, 1), capAnchors(in(), 4, 2)
	if len(a) != 4 || !slices.Equal(a, b) {
		t.Fatalf("seed 1: %v then %v, want the same 4", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 1 and 2 both keep %v", a)
	}
	s := slices.Sorted(slices.Values(a))
	if len(slices.Compact(s)) != 4 {
		t.Errorf("capped %v: an anchor twice", a)
	}
	if all := capAnchors(in(), 20, 1); len(all) != 10 {
		t.Errorf("n above the anchors' number kept %d of 10", len(all))
	}
	if none := capAnchors(in(), 0, 1); len(none) != 0 {
		t.Errorf("n 0 kept %v", none)
	}
}

// countingMarks is what the annotator sees of each sample drawn for a
// counting caption stating stated: its marks, its CountOff and its mean
// accuracy.
func countingMarks(stated []shapes.Object, samples [][]shapes.Object) (marks []Marks, off []int, scores []float64) {
	for _, s := range samples {
		seen := shapes.Scene{Objects: s}
		marks = append(marks, ScoreScene(shapes.Counting, stated, seen))
		off = append(off, CountOff(shapes.Counting, stated, seen))
		scores = append(scores, marks[len(marks)-1].MeanAcc())
	}
	return marks, off, scores
}
