package shapes

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/golem-ml/golem/data/vision"
)

func TestGenerateIsDeterministic(t *testing.T) {
	for i := range 50 {
		a, b := Generate(7, Train, i), Generate(7, Train, i)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("scene %d differs between two calls: %+v, %+v", i, a, b)
		}
	}
	same := 0
	for i := range 50 {
		if reflect.DeepEqual(Generate(7, Train, i).Objects, Generate(8, Train, i).Objects) {
			same++
		}
	}
	if same > 5 {
		t.Fatalf("seeds 7 and 8 give %d of 50 identical scenes", same)
	}
	dirs := []string{t.TempDir(), t.TempDir()}
	for _, d := range dirs {
		if _, err := Write(Options{Out: d, Seed: 3, Train: 6, Test: 3, PerClass: 1}); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"train.jsonl", "heldout_zh.jsonl", "test_scenes.jsonl", "train_llava.json", "train_rankings.jsonl", "heldout_prefs.jsonl", "images/train/000005.png", "classes/red_triangle/0000.png"} {
		a, err := os.ReadFile(filepath.Join(dirs[0], f))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(dirs[1], f))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two runs with seed 3", f)
		}
	}
}

func TestHeldOutCombosNeverInTrain(t *testing.T) {
	colours, kinds := map[Colour]bool{}, map[Kind]bool{}
	for i := range 3000 {
		s := Generate(1, Train, i)
		for _, o := range s.Objects {
			if IsHeldOut(o.Combo()) {
				t.Fatalf("train scene %d has the held-out %s", i, o.Combo())
			}
			colours[o.Colour], kinds[o.Kind] = true, true
		}
		if s := Generate(1, Test, i); s.HasHeldOut() {
			t.Fatalf("test scene %d has a held-out combination", i)
		}
		if s := Generate(1, HeldOutSplit, i); !s.HasHeldOut() {
			t.Fatalf("held-out scene %d has no held-out combination", i)
		}
	}
	// Each colour and shape is still seen in training: only the pairs are new.
	if len(colours) != int(numColours) || len(kinds) != int(numKinds) {
		t.Fatalf("train has %d colours and %d shapes, want all %d and %d", len(colours), len(kinds), numColours, numKinds)
	}
}

// seen is what a test reads back from pixels alone.
type seen struct {
	colour Colour
	kind   Kind
	large  bool
}

// perceive reads each grid cell of a rendered image: the colour at its
// centre, the size from the shape's width, the shape from how it fills
// its bounding box and where it is widest.
func perceive(t *testing.T, m *vision.Image) map[int]seen {
	out := map[int]seen{}
	cell := m.W / 3
	for c := range 9 {
		x0, y0 := (c%3)*cell, (c/3)*cell
		cx, cy := x0+cell/2, y0+cell/2
		px := [3]float32{m.At(0, cy, cx), m.At(1, cy, cx), m.At(2, cy, cx)}
		if px[0]+px[1]+px[2] < 0.3 {
			continue // background
		}
		best, dist := Colour(0), float32(9)
		for col, rgb := range RGB {
			d := float32(0)
			for i := range 3 {
				d += (px[i] - rgb[i]) * (px[i] - rgb[i])
			}
			if d < dist {
				best, dist = Colour(col), d
			}
		}
		if dist > 0.01 {
			t.Fatalf("cell %d: centre pixel %v is no palette colour", c, px)
		}
		rgb := RGB[best]
		on := func(x, y int) bool {
			var dot, nn float32
			for i := range 3 {
				dot += m.At(i, y, x) * rgb[i]
				nn += rgb[i] * rgb[i]
			}
			return dot/nn >= 0.5
		}
		xmin, xmax, ymin, ymax, n := cell, -1, cell, -1, 0
		width := make([]int, cell)
		for y := range cell {
			for x := range cell {
				if on(x0+x, y0+y) {
					n++
					width[y]++
					xmin, xmax, ymin, ymax = min(xmin, x), max(xmax, x), min(ymin, y), max(ymax, y)
				}
			}
		}
		w, h := xmax-xmin+1, ymax-ymin+1
		fill := float64(n) / float64(w*h)
		var k Kind
		switch {
		case fill > 0.9:
			k = Square
		case fill > 0.65:
			k = Circle
		case width[ymin+h/4] < width[ymax-h/4]-2:
			k = Triangle
		default:
			k = Diamond
		}
		r := float64(w) / 2
		if k == Square {
			r = float64(w) / 1.6
		}
		out[c] = seen{best, k, r/float64(cell) > 0.375}
	}
	return out
}

var (
	reColour     = regexp.MustCompile(`^What colour is the (\w+)\?$`)
	reShape      = regexp.MustCompile(`^What shape is the (\w+) object\?$`)
	reWhere      = regexp.MustCompile(`^Where is the (\w+) (\w+)\?$`)
	reCountAll   = regexp.MustCompile(`^How many shapes are there\?$`)
	reCountK     = regexp.MustCompile(`^How many (\w+)s are there\?$`)
	reExists     = regexp.MustCompile(`^Is there an? (\w+) (\w+)\?$`)
	reLeft       = regexp.MustCompile(`^Is the (\w+) (\w+) to the left of the (\w+) (\w+)\?$`)
	reAbove      = regexp.MustCompile(`^Is the (\w+) (\w+) above the (\w+) (\w+)\?$`)
	reRelCaption = regexp.MustCompile(`^an? (\w+) (\w+) (to the left of|to the right of|above|below) an? (\w+) (\w+)$`)
)

// TestTextMatchesPixels renders scenes of every split and checks every
// English caption and answer against what perceive reads from the
// pixels, and that the Chinese says the same colours and shapes.
func TestTextMatchesPixels(t *testing.T) {
	colourOf := func(s string) Colour { return Colour(slices.Index(colourEN[:], s)) }
	kindOf := func(s string) Kind { return Kind(slices.Index(kindEN[:], s)) }
	for _, split := range []Split{Train, Test, HeldOutSplit} {
		for i := range 60 {
			s := Generate(11, split, i)
			got := perceive(t, s.Render(96))
			if len(got) != len(s.Objects) {
				t.Fatalf("%s scene %d: %d shapes in the pixels, %d in the scene", split, i, len(got), len(s.Objects))
			}
			cellOf := func(c Colour, k Kind) []int {
				var cells []int
				for cell, o := range got {
					if o.colour == c && o.kind == k {
						cells = append(cells, cell)
					}
				}
				return cells
			}
			for _, o := range s.Objects {
				if p := got[o.Cell]; p != (seen{o.Colour, o.Kind, o.Large}) {
					t.Fatalf("%s scene %d cell %d: pixels show a %v %v (large %v), the scene says %s", split, i, o.Cell, p.colour, p.kind, p.large, o.fullEN())
				}
			}
			rec := s.Record(11, "x.png")
			// The first caption names every object with its size and place.
			for cell, o := range got {
				size := map[bool]string{false: "small", true: "large"}[o.large]
				want := fmt.Sprintf("%s %s %s %s", size, o.colour, o.kind, posPhraseEN[cell])
				if !strings.Contains(rec.Captions[0].EN, want) {
					t.Fatalf("%s scene %d: caption %q lacks %q", split, i, rec.Captions[0].EN, want)
				}
				if !strings.Contains(rec.Captions[0].ZH, colourZH[o.colour]+kindZH[o.kind]) {
					t.Fatalf("%s scene %d: Chinese caption %q lacks %s%s", split, i, rec.Captions[0].ZH, colourZH[o.colour], kindZH[o.kind])
				}
			}
			// The relation caption, when there is one, holds in the pixels.
			for _, c := range rec.Captions[2:] {
				m := reRelCaption.FindStringSubmatch(c.EN)
				if m == nil {
					t.Fatalf("%s scene %d: caption %q is no relation", split, i, c.EN)
				}
				a, b := cellOf(colourOf(m[1]), kindOf(m[2])), cellOf(colourOf(m[4]), kindOf(m[5]))
				if len(a) != 1 || len(b) != 1 {
					t.Fatalf("%s scene %d: %q names shapes the pixels show %d and %d times", split, i, c.EN, len(a), len(b))
				}
				holds := map[string]bool{"to the left of": a[0]%3 < b[0]%3, "to the right of": a[0]%3 > b[0]%3,
					"above": a[0]/3 < b[0]/3 && a[0]%3 == b[0]%3, "below": a[0]/3 > b[0]/3 && a[0]%3 == b[0]%3}[m[3]]
				if !holds {
					t.Fatalf("%s scene %d: %q does not hold in the pixels (cells %d, %d)", split, i, c.EN, a[0], b[0])
				}
			}
			for _, qa := range rec.Questions {
				q, a := qa.Question.EN, qa.Answer.EN
				var want string
				switch {
				case reColour.MatchString(q):
					k := kindOf(reColour.FindStringSubmatch(q)[1])
					var cols []string
					for _, o := range got {
						if o.kind == k {
							cols = append(cols, o.colour.String())
						}
					}
					if len(cols) != 1 {
						t.Fatalf("%q asked with %d %vs in the pixels", q, len(cols), k)
					}
					want = cols[0]
				case reShape.MatchString(q):
					c := colourOf(reShape.FindStringSubmatch(q)[1])
					var ks []string
					for _, o := range got {
						if o.colour == c {
							ks = append(ks, o.kind.String())
						}
					}
					if len(ks) != 1 {
						t.Fatalf("%q asked with %d %v objects in the pixels", q, len(ks), c)
					}
					want = ks[0]
				case reWhere.MatchString(q):
					m := reWhere.FindStringSubmatch(q)
					cells := cellOf(colourOf(m[1]), kindOf(m[2]))
					if len(cells) != 1 {
						t.Fatalf("%q asked with %d of them in the pixels", q, len(cells))
					}
					want = posEN[cells[0]]
				case reCountAll.MatchString(q):
					want = strconv.Itoa(len(got))
				case reCountK.MatchString(q):
					k := kindOf(reCountK.FindStringSubmatch(q)[1])
					n := 0
					for _, o := range got {
						if o.kind == k {
							n++
						}
					}
					want = strconv.Itoa(n)
				case reExists.MatchString(q):
					m := reExists.FindStringSubmatch(q)
					want = map[bool]string{false: "no", true: "yes"}[len(cellOf(colourOf(m[1]), kindOf(m[2]))) > 0]
				case reLeft.MatchString(q), reAbove.MatchString(q):
					re := reLeft
					if reAbove.MatchString(q) {
						re = reAbove
					}
					m := re.FindStringSubmatch(q)
					a, b := cellOf(colourOf(m[1]), kindOf(m[2])), cellOf(colourOf(m[3]), kindOf(m[4]))
					if len(a) == 0 || len(b) == 0 {
						t.Fatalf("%q: not both in the pixels", q)
					}
					yes := a[0]%3 < b[0]%3
					if re == reAbove {
						yes = a[0]/3 < b[0]/3
					}
					want = map[bool]string{false: "no", true: "yes"}[yes]
				default:
					t.Fatalf("question %q has no checker", q)
				}
				if a != want {
					t.Fatalf("%s scene %d: %q answered %q, the pixels say %q", split, i, q, a, want)
				}
			}
		}
	}
}

func hasHan(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Han, r) {
			return true
		}
	}
	return false
}

// TestWriteFormats writes a small world and reads it back with the
// readers the rest of golem uses: the JSONL captions and class folders
// through data/vision, the LLaVA JSON as LLaVA's records.
func TestWriteFormats(t *testing.T) {
	dir := t.TempDir()
	sum, err := Write(Options{Out: dir, Seed: 5, Size: 96, Train: 8, Test: 4, PerClass: 2})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Scenes["train"] != 8 || sum.Scenes["heldout"] != 4 || sum.Classes != 32 || sum.Images != 8+4+4+64 {
		t.Fatalf("summary %+v", sum)
	}
	ds, err := vision.Open(filepath.Join(dir, "train.jsonl"), vision.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	if ds.Len() != 8 {
		t.Fatalf("train.jsonl has %d records, want 8", ds.Len())
	}
	for i := range ds.Len() {
		m, err := ds.Load(i)
		if err != nil {
			t.Fatal(err)
		}
		want := Generate(5, Train, i).Render(96)
		if m.Shape() != "3x96x96" || m.Caption == "" {
			t.Fatalf("record %d: %s, caption %q", i, m.Shape(), m.Caption)
		}
		for j := range m.Pix {
			if d := m.Pix[j] - want.Pix[j]; d > 1.0/255 || d < -1.0/255 {
				t.Fatalf("record %d: PNG pixel %d is %v, rendered %v", i, j, m.Pix[j], want.Pix[j])
			}
		}
	}
	zh, err := vision.Open(filepath.Join(dir, "heldout_zh.jsonl"), vision.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer zh.Close()
	m, err := zh.Load(0)
	if err != nil {
		t.Fatal(err)
	}
	if !hasHan(m.Caption) {
		t.Fatalf("Chinese caption %q has no Chinese", m.Caption)
	}
	cls, err := vision.Open(filepath.Join(dir, "classes"), vision.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer cls.Close()
	if cls.Len() != 64 {
		t.Fatalf("classes/ has %d images, want 64", cls.Len())
	}
	// Folders sort as Classes() does not (colour-major by name): the label
	// of each image names the one object it shows.
	names := Classes()
	slices.Sort(names)
	for i := range cls.Len() {
		m, err := cls.Load(i)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range perceive(t, m) {
			if got := o.colour.String() + " " + o.kind.String(); got != names[m.Label] {
				t.Fatalf("%s: label %q shows a %s", cls.Name(i), names[m.Label], got)
			}
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "test_llava.json"))
	if err != nil {
		t.Fatal(err)
	}
	conv, err := vision.ParseLLaVA("test_llava.json", raw)
	if err != nil {
		t.Fatal(err)
	}
	lds, err := vision.Open(filepath.Join(dir, "test_llava.json"), vision.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer lds.Close()
	if m, err := lds.Load(1); err != nil || m.Shape() != "3x96x96" || len(m.Conversation) < 2 {
		t.Fatalf("LLaVA record 1 through data/vision: %v", err)
	}
	if len(conv) != 8 || !strings.HasPrefix(conv[0].Conversations[0].Value, "<image>\n") || conv[0].Conversations[1].From != "gpt" {
		t.Fatalf("LLaVA records: %d, first %+v", len(conv), conv[0])
	}
	if !hasHan(conv[1].Conversations[0].Value) || conv[1].ID != "test-000000-zh" {
		t.Fatalf("second LLaVA record is not the Chinese one: %+v", conv[1])
	}
	if _, err := Write(Options{Out: dir, Size: 4}); err == nil || !strings.Contains(err.Error(), "size 4") {
		t.Fatalf("size 4: %v", err)
	}
}

// A scene's conversation opens with its description, holds every other
// instruction and question once, and does not keep one fixed order: across
// scenes, the second exchange varies.
func TestConversationOrder(t *testing.T) {
	second := map[string]bool{}
	for i := range 20 {
		s := Generate(1, Train, i)
		c := s.Conversation(1)
		if c[0].Kind != "describe" || len(c) != len(s.Instructions())+len(s.Questions(QuestionRNG(1, s))) {
			t.Fatalf("scene %d: conversation %+v", i, c)
		}
		if !reflect.DeepEqual(c, s.Conversation(1)) {
			t.Fatalf("scene %d: two orders for one seed", i)
		}
		second[c[1].Question.EN] = true
	}
	if len(second) < 5 {
		t.Fatalf("the second exchange takes %d forms in 20 scenes: %v", len(second), second)
	}
}
