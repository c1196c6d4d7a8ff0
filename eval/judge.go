package eval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/model/resnet"
	"github.com/golem-ml/golem/tensor"
)

// JudgeAttrs are the attributes a shapes-world judge scores, in the order
// its reports print them; "size" is stated by listing captions only.
var JudgeAttrs = []string{"colour", "shape", "count", "position", "size"}

// JudgeItem is an image and the scene its caption describes.
type JudgeItem struct {
	Line    int    // the line of the file it came from
	Image   string // the image file
	Caption string
	Kind    shapes.CaptionKind
	Scene   shapes.Scene // every object of the scene the caption was written for
}

// Stated is what the item's caption states of its scene: every object
// (listing and counting captions), or the two it relates (relating).
func (it JudgeItem) Stated() []shapes.Object {
	if it.Kind == shapes.Relating {
		return it.Scene.Objects[:2]
	}
	return it.Scene.Objects
}

// HeldOut says whether the caption states a colour-shape pair never in
// the shapes world's train split (shapes.HeldOut).
func (it JudgeItem) HeldOut() bool {
	for _, o := range it.Stated() {
		if shapes.IsHeldOut(o.Combo()) {
			return true
		}
	}
	return false
}

// judgeLine is a line of a judge file: an image, its caption and the
// scene the caption was written for ({"objects": [...]} as
// {split}_scenes.jsonl holds them; other fields are ignored).
type judgeLine struct {
	Image   *string `json:"image"`
	Caption *string `json:"caption"`
	Scene   *struct {
		Objects []shapes.ObjectRecord `json:"objects"`
	} `json:"scene"`
}

// ReadJudgeItems reads a JSONL file of images to judge, one
// {"image": path, "caption": text, "scene": {"objects": [...]}} a line
// (paths relative to the file's folder), as an image generator writes
// them for captions of the shapes world; a line without "scene" (golem
// data shapes' {split}.jsonl) takes the scene of its image from
// {split}_scenes.jsonl beside the file. The caption must be one of the
// scene's captions (English or Chinese), which says what it states.
// Errors name the file and line.
func ReadJudgeItems(path string) ([]JudgeItem, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dir := filepath.Dir(path)
	var beside map[string][]shapes.ObjectRecord // image -> objects, read on first need
	var items []JudgeItem
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var l judgeLine
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("%s:%d: %v (want {\"image\": path, \"caption\": text, \"scene\": {\"objects\": [...]}})", path, line, err)
		}
		if l.Image == nil || *l.Image == "" || l.Caption == nil {
			return nil, fmt.Errorf("%s:%d: fields \"image\" (a path) and \"caption\" are needed", path, line)
		}
		var objs []shapes.ObjectRecord
		if l.Scene != nil {
			objs = l.Scene.Objects
		} else {
			if beside == nil {
				if beside, err = scenesBeside(path); err != nil {
					return nil, fmt.Errorf("%s:%d: no \"scene\", and %w", path, line, err)
				}
			}
			var ok bool
			if objs, ok = beside[*l.Image]; !ok {
				return nil, fmt.Errorf("%s:%d: no \"scene\", and image %q is not in %s", path, line, *l.Image, scenesFile(path))
			}
		}
		s, err := shapes.SceneOf(objs)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: \"scene\": %w", path, line, err)
		}
		kind, ok := s.CaptionKind(*l.Caption)
		if !ok {
			return nil, fmt.Errorf("%s:%d: caption %q is none of its scene's captions (%s), so what it states is not known", path, line, *l.Caption, strings.Join(captionsEN(s), "; "))
		}
		img := *l.Image
		if !filepath.IsAbs(img) {
			img = filepath.Join(dir, img)
		}
		items = append(items, JudgeItem{Line: line, Image: img, Caption: *l.Caption, Kind: kind, Scene: s})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s: no images", path)
	}
	return items, nil
}

func captionsEN(s shapes.Scene) []string {
	var out []string
	for _, c := range s.Captions() {
		out = append(out, c.EN)
	}
	return out
}

// scenesFile is the scenes file beside a split's captions: DIR/{split}.jsonl
// or DIR/{split}_zh.jsonl -> DIR/{split}_scenes.jsonl.
func scenesFile(path string) string {
	base := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(path), ".jsonl"), "_zh")
	return filepath.Join(filepath.Dir(path), base+"_scenes.jsonl")
}

// scenesBeside reads the objects of every image in the scenes file beside
// path.
func scenesBeside(path string) (map[string][]shapes.ObjectRecord, error) {
	sp := scenesFile(path)
	if _, err := os.Stat(sp); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("there is no %s beside it", sp)
	}
	recs, _, err := shapes.ReadScenes(sp)
	if err != nil {
		return nil, err
	}
	out := map[string][]shapes.ObjectRecord{}
	for _, r := range recs {
		out[r.Image] = r.Objects
	}
	return out, nil
}

// Marks counts, per attribute (JudgeAttrs), the judgements right and made.
type Marks map[string][2]int

func (m Marks) add(attr string, right bool) {
	v := m[attr]
	if right {
		v[0]++
	}
	v[1]++
	m[attr] = v
}

// Acc is attr's accuracy, NaN when the attribute was never stated.
func (m Marks) Acc(attr string) float64 {
	v := m[attr]
	if v[1] == 0 {
		return math.NaN()
	}
	return float64(v[0]) / float64(v[1])
}

// Merge adds o's counts to m.
func (m Marks) Merge(o Marks) {
	for k, v := range o {
		w := m[k]
		m[k] = [2]int{w[0] + v[0], w[1] + v[1]}
	}
}

// ScoreScene judges what a caption of kind states of its scene (stated,
// JudgeItem.Stated) against the scene a judge sees in the image
// (seen), one mark per stated attribute:
//
//   - listing captions (each object with its size and cell): for each
//     object, position is right when the judge sees an object in its cell;
//     colour, shape and size when the object seen in that cell has them
//     (so an object in the wrong cell is wrong in all four); count is right
//     when the judge sees as many objects as the caption lists.
//   - counting captions (the number, each object's colour and shape): count
//     as above; colour and shape are right for as many of the stated
//     objects as the seen ones match one to one, wherever they are (the
//     size of the multiset intersection).
//   - relating captions (A left of / right of / above / below B): colour and
//     shape of A and B matched one to one as for counting; position is one
//     mark, right when the judge sees an object of A's colour and shape and
//     another of B's in the stated relation (shapes.Holds); count is not
//     stated (other objects may be there).
func ScoreScene(kind shapes.CaptionKind, stated []shapes.Object, seen shapes.Scene) Marks {
	m := Marks{}
	at := map[int]shapes.Object{}
	for _, o := range seen.Objects {
		at[o.Cell] = o
	}
	switch kind {
	case shapes.Listing:
		for _, o := range stated {
			p, ok := at[o.Cell]
			m.add("position", ok)
			m.add("colour", ok && p.Colour == o.Colour)
			m.add("shape", ok && p.Kind == o.Kind)
			m.add("size", ok && p.Large == o.Large)
		}
	case shapes.Counting, shapes.Relating:
		matchOneToOne(m, "colour", stated, seen.Objects, func(a, b shapes.Object) bool { return a.Colour == b.Colour })
		matchOneToOne(m, "shape", stated, seen.Objects, func(a, b shapes.Object) bool { return a.Kind == b.Kind })
	}
	if kind != shapes.Relating {
		m.add("count", len(seen.Objects) == len(stated))
	} else {
		a, b := stated[0], stated[1]
		rel, ok := shapes.Relation(a, b), false
		for _, p := range seen.Objects {
			for _, q := range seen.Objects {
				ok = ok || p.Cell != q.Cell && p.Combo() == a.Combo() && q.Combo() == b.Combo() && shapes.Holds(rel, p, q)
			}
		}
		m.add("position", ok)
	}
	return m
}

// matchOneToOne marks each stated object right when an unused seen object
// is the same by same; the attribute's matches are then the size of the
// multiset intersection (the attribute takes few values, so greedy is
// optimal).
func matchOneToOne(m Marks, attr string, stated, seen []shapes.Object, same func(a, b shapes.Object) bool) {
	used := make([]bool, len(seen))
	for _, o := range stated {
		hit := false
		for j, p := range seen {
			if !used[j] && same(o, p) {
				used[j], hit = true, true
				break
			}
		}
		m.add(attr, hit)
	}
}

// JudgeResult is a judge's marks on a set of images: over all of them,
// those whose caption states a held-out colour-shape pair (HeldOut) and
// the others (Seen), and by caption kind.
type JudgeResult struct {
	Images             int
	All, Seen, HeldOut Marks
	Kinds              map[string]Marks // by caption kind (listing, counting, relating)
	HeldOutImages      int
	KindImages         map[string]int
	Each               []Marks // each image's marks, in the order judged
}

// Record is the result as the report card's JSON holds it: Metrics has
// each attribute's accuracy over all images (colour_acc, ...) and apart
// for seen and held-out pairs (seen_colour_acc, heldout_colour_acc, ...);
// Correct of N counts every attribute judgement made.
func (r JudgeResult) Record(judge, data string) Record {
	rec := Record{Eval: "judge", Model: judge, Data: data, Metrics: map[string]float64{}}
	for group, m := range map[string]Marks{"": r.All, "seen_": r.Seen, "heldout_": r.HeldOut} {
		for _, a := range JudgeAttrs {
			if v := m.Acc(a); !math.IsNaN(v) {
				rec.Metrics[group+a+"_acc"] = v
			}
			if group == "" {
				rec.Correct, rec.N = rec.Correct+m[a][0], rec.N+m[a][1]
			}
		}
	}
	if rec.N > 0 {
		rec.Accuracy = float64(rec.Correct) / float64(rec.N)
	}
	return rec
}

// Judge runs the judge g on each item's image (fit to its input as
// training did) and scores what the item's caption states against what g
// sees (ScoreScene).
func Judge(g *resnet.Grid, items []JudgeItem, batch int) (JudgeResult, error) {
	res := JudgeResult{All: Marks{}, Seen: Marks{}, HeldOut: Marks{}, Kinds: map[string]Marks{}, KindImages: map[string]int{}}
	marks, err := JudgeEach(g, items, batch)
	if err != nil {
		return res, err
	}
	res.Each = marks
	for j, it := range items {
		m := marks[j]
		res.All.Merge(m)
		if it.HeldOut() {
			res.HeldOut.Merge(m)
			res.HeldOutImages++
		} else {
			res.Seen.Merge(m)
		}
		k := it.Kind.String()
		if res.Kinds[k] == nil {
			res.Kinds[k] = Marks{}
		}
		res.Kinds[k].Merge(m)
		res.KindImages[k]++
		res.Images++
	}
	return res, nil
}

// JudgeEach is Judge's reading of each item apart: the marks of what its
// caption states against what g sees in its image, batch images at a
// time (default 64).
func JudgeEach(g *resnet.Grid, items []JudgeItem, batch int) ([]Marks, error) {
	seen, err := JudgeSeen(g, items, batch)
	if err != nil {
		return nil, err
	}
	out := make([]Marks, len(items))
	for j, it := range items {
		out[j] = ScoreScene(it.Kind, it.Stated(), seen[j])
	}
	return out, nil
}

// JudgeSeen is the scene g sees in each item's image (fit to its input
// as training did), batch images at a time (default 64).
func JudgeSeen(g *resnet.Grid, items []JudgeItem, batch int) ([]shapes.Scene, error) {
	if batch < 1 {
		batch = 64
	}
	if err := checkShapesJudge(g.Config); err != nil {
		return nil, err
	}
	c := g.Config
	cells := g.Cells()
	out := make([]shapes.Scene, 0, len(items))
	for i := 0; i < len(items); i += batch {
		part := items[i:min(i+batch, len(items))]
		px := make([]float32, 0, len(part)*c.Backbone.Channels*c.ImageSize*c.ImageSize)
		for _, it := range part {
			m, err := vision.ReadFile(it.Image, vision.Limits{})
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", it.Line, err)
			}
			f, err := vision.Fit(m, c.ImageSize, c.Backbone.Channels)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s: %w", it.Line, it.Image, err)
			}
			px = append(px, f.Pix...)
		}
		s := tensor.NewScope()
		pred := g.Predict(s.FromHost(g.Backend(), px, len(part), c.Backbone.Channels, c.ImageSize, c.ImageSize))
		s.Close()
		for j := range part {
			seen, err := shapes.FromCellLabels(pred[j*cells : (j+1)*cells])
			if err != nil {
				return nil, err
			}
			out = append(out, seen)
		}
	}
	return out, nil
}

// JudgeDiff is attr's accuracy over b minus over a, where a[j] and b[j]
// are the marks of two images drawn for the same caption (Judge's Each
// of two files of the same captions in the same order: two models, or
// one with and without reranking), and the standard error of that
// difference, clustered by caption: with d_c the right marks of b minus
// a's over caption c's images and n_c the marks made (the same in both:
// the caption states them), diff = sum d_c / N and se = sqrt(J/(J-1) *
// sum (d_c - diff*n_c)^2) / N over the J captions that state attr (N =
// sum n_c), the delta method's error of a ratio of sums, which counts one
// caption's marks as one draw, not as independent ones. cluster[j] is
// image j's caption, numbered from 0 (Clusters: several samples of one
// caption are one cluster); nil is each image its own. n is N; ok is
// false when fewer than two captions state attr. An error says which
// image's marks were made on different terms.
func JudgeDiff(a, b []Marks, attr string, cluster []int) (diff, se float64, n int, ok bool, err error) {
	diff, n, infl, states, err := judgeDiffTerms(a, b, attr, cluster)
	J := count(states)
	if err != nil || J < 2 {
		return 0, 0, n, false, err
	}
	return diff, clusteredSE(infl, J), n, true, nil
}

// Clusters numbers items by caption for JudgeDiff: lines in a row for
// the same caption of the same scene (one caption's several samples) are
// one cluster.
func Clusters(items []JudgeItem) []int {
	c := make([]int, len(items))
	for j := 1; j < len(items); j++ {
		c[j] = c[j-1]
		if items[j].Caption != items[j-1].Caption || !reflect.DeepEqual(items[j].Scene, items[j-1].Scene) {
			c[j]++
		}
	}
	return c
}

// judgeDiffTerms is JudgeDiff's difference over the N marks of attr and
// each caption's influence on it, (d_c - diff*n_c) / N (0 where the
// caption states no attr), and whether each caption states it.
func judgeDiffTerms(a, b []Marks, attr string, cluster []int) (diff float64, n int, infl []float64, states []bool, err error) {
	if len(a) != len(b) {
		return 0, 0, nil, nil, fmt.Errorf("%d images against %d: want the same captions in the same order", len(b), len(a))
	}
	if cluster == nil {
		cluster = make([]int, len(a))
		for j := range cluster {
			cluster[j] = j
		}
	}
	if len(cluster) != len(a) {
		return 0, 0, nil, nil, fmt.Errorf("%d images, %d clusters", len(a), len(cluster))
	}
	nc := 0
	for _, c := range cluster {
		nc = max(nc, c+1)
	}
	d, made := make([]float64, nc), make([]float64, nc)
	for j := range a {
		x, y := a[j][attr], b[j][attr]
		if x[1] != y[1] {
			return 0, 0, nil, nil, fmt.Errorf("image %d: %d %s marks against %d: want the same captions in the same order", j+1, y[1], attr, x[1])
		}
		d[cluster[j]] += float64(y[0] - x[0])
		made[cluster[j]] += float64(x[1])
		diff += float64(y[0] - x[0])
		n += x[1]
	}
	infl, states = make([]float64, nc), make([]bool, nc)
	if n == 0 {
		return 0, 0, infl, states, nil
	}
	diff /= float64(n)
	for c := range d {
		if made[c] > 0 {
			states[c] = true
			infl[c] = (d[c] - diff*made[c]) / float64(n)
		}
	}
	return diff, n, infl, states, nil
}

// clusteredSE is sqrt(J/(J-1) * sum infl_c^2): the standard error of a
// statistic whose influence of caption c is infl_c, over J captions.
func clusteredSE(infl []float64, J int) float64 {
	var ss float64
	for _, v := range infl {
		ss += v * v
	}
	return math.Sqrt(float64(J) / float64(J-1) * ss)
}

// MeanAttrs are the attributes the mean of JudgeMeanDiff averages: the
// ones every caption kind states some of (size is stated by few).
var MeanAttrs = []string{"colour", "shape", "count", "position"}

// JudgeMeanDiff is the mean over attrs of JudgeDiff's differences (each
// attribute weighs the same, whatever its number of marks) and its
// standard error clustered by caption: caption j's influence on the mean
// is the mean over attrs of its influence on each difference, so the
// attributes' errors are combined with their covariance across the
// captions that state several of them, not as if they were independent.
// J is the captions that state any of attrs; cluster is JudgeDiff's.
// ok is false when an attribute is stated by fewer than two captions.
func JudgeMeanDiff(a, b []Marks, attrs []string, cluster []int) (diff, se float64, ok bool, err error) {
	if len(attrs) == 0 {
		return 0, 0, false, nil
	}
	var total []float64
	var stated []bool
	for _, attr := range attrs {
		d, _, infl, states, err := judgeDiffTerms(a, b, attr, cluster)
		if err != nil || count(states) < 2 {
			return 0, 0, false, err
		}
		if total == nil {
			total, stated = make([]float64, len(infl)), make([]bool, len(infl))
		}
		diff += d / float64(len(attrs))
		for c, v := range infl {
			total[c] += v / float64(len(attrs))
		}
		for c, v := range states {
			stated[c] = stated[c] || v
		}
	}
	return diff, clusteredSE(total, count(stated)), true, nil
}

// count is how many of v are true.
func count(v []bool) int {
	n := 0
	for _, b := range v {
		if b {
			n++
		}
	}
	return n
}

// Share is the share of m's judgements that are right, over every
// attribute (0 when none was made): how right an image is about its
// caption as one number, what a simulated annotator ranks images by.
func (m Marks) Share() float64 {
	var right, made int
	for _, v := range m {
		right, made = right+v[0], made+v[1]
	}
	if made == 0 {
		return 0
	}
	return float64(right) / float64(made)
}

// MeanAcc is the mean over the attributes m marks of each one's
// accuracy (0 when none was marked): every stated attribute counts the
// same, the count (one mark an image) as much as the colours (one an
// object).
func (m Marks) MeanAcc() float64 {
	s, n := 0.0, 0
	for a, v := range m {
		if v[1] > 0 {
			s, n = s+m.Acc(a), n+1
		}
	}
	if n == 0 {
		return 0
	}
	return s / float64(n)
}

// PreferencePairs pairs samples by their scores as an annotator who
// prefers the higher score would: every (better, worse) pair whose
// scores differ by more than 1e-9, best first; ties give no pair.
func PreferencePairs(scores []float64) [][2]int {
	var out [][2]int
	for i, a := range scores {
		for j, b := range scores {
			if a > b+1e-9 {
				out = append(out, [2]int{i, j})
			}
		}
	}
	sort.SliceStable(out, func(x, y int) bool {
		return scores[out[x][0]]-scores[out[x][1]] > scores[out[y][0]]-scores[out[y][1]]
	})
	return out
}

// CountOff is how far the number of objects seen is from the number a
// caption of kind states: |len(seen) - len(stated)|, or 0 for a relating
// caption, which states no count (other objects may be there).
func CountOff(kind shapes.CaptionKind, stated []shapes.Object, seen shapes.Scene) int {
	if kind == shapes.Relating {
		return 0
	}
	d := len(seen.Objects) - len(stated)
	if d < 0 {
		return -d
	}
	return d
}

// Dominates says whether an annotator who judges each stated attribute
// apart would prefer sample a to sample b without trading anything
// away: a's accuracy is at least b's on every attribute either marks,
// and its number of objects is at least as near the stated number
// (CountOff: offA against offB). The count mark alone says only right or
// wrong, so without the distance a sample that draws extra shapes, which
// raises its chance of a right colour, shape or position, would win
// every pair where both miss the count.
func Dominates(a, b Marks, offA, offB int) bool {
	if offA > offB {
		return false
	}
	for attr, v := range a {
		if v[1] > 0 && b[attr][1] > 0 && a.Acc(attr) < b.Acc(attr) {
			return false
		}
	}
	return true
}

// checkShapesJudge says whether a Grid reads the shapes world: a 3x3 grid
// and shapes.JudgeHeads' heads and classes.
func checkShapesJudge(c resnet.GridConfig) error {
	names, classes := shapes.JudgeHeads()
	ok := c.Grid == 3 && len(c.Heads) == len(names)
	for i := 0; ok && i < len(names); i++ {
		ok = c.Heads[i].Name == names[i] && strings.Join(c.Heads[i].Classes, ",") == strings.Join(classes[i], ",")
	}
	if !ok {
		return fmt.Errorf("eval judge: the model is not a shapes-world judge (want a 3x3 grid and heads %v with the world's classes)", names)
	}
	return nil
}

// ShapesJudgeHeads are the heads of a shapes-world judge, as a Grid's
// config holds them.
func ShapesJudgeHeads() []resnet.Head {
	names, classes := shapes.JudgeHeads()
	heads := make([]resnet.Head, len(names))
	for i := range names {
		heads[i] = resnet.Head{Name: names[i], Classes: classes[i]}
	}
	return heads
}
