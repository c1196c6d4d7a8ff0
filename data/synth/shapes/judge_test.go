package shapes

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// A scene written as a record reads back as the same scene; its cell
// labels give it back too; and every caption is recognised as its
// template, in both languages.
func TestRecordAndLabelsRoundTrip(t *testing.T) {
	kinds := map[CaptionKind]int{}
	for i := range 200 {
		s := Generate(3, Train, i)
		rec := s.Record(3, "x.png")
		got, err := SceneOf(rec.Objects)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Objects) != len(s.Objects) {
			t.Fatalf("scene %d: %d objects read, %d written", i, len(got.Objects), len(s.Objects))
		}
		for j := range got.Objects {
			if got.Objects[j] != s.Objects[j] {
				t.Fatalf("scene %d object %d: read %+v, wrote %+v", i, j, got.Objects[j], s.Objects[j])
			}
		}
		back, err := FromCellLabels(s.CellLabels())
		if err != nil {
			t.Fatal(err)
		}
		if len(back.Objects) != len(s.Objects) {
			t.Fatalf("scene %d: %d objects from labels, want %d", i, len(back.Objects), len(s.Objects))
		}
		for _, o := range back.Objects {
			found := false
			for _, p := range s.Objects {
				found = found || o == p
			}
			if !found {
				t.Fatalf("scene %d: labels give %+v, not in the scene", i, o)
			}
		}
		for j, c := range rec.Captions {
			for _, text := range []string{c.EN, c.ZH} {
				if k, ok := s.CaptionKind(text); !ok || int(k) != j {
					t.Fatalf("scene %d caption %q: kind %v %v, want %d", i, text, k, ok, j)
				}
				kinds[CaptionKind(j)]++
			}
		}
		if len(rec.Captions) == 3 {
			a, b := s.Objects[0], s.Objects[1]
			if rel := Relation(a, b); !strings.Contains(rec.Captions[2].EN, rel) || !Holds(rel, a, b) || Holds(rel, b, a) {
				t.Fatalf("scene %d: relation %q of %q", i, rel, rec.Captions[2].EN)
			}
		}
	}
	if kinds[Relating] == 0 || kinds[Counting] == 0 {
		t.Errorf("caption kinds seen: %v", kinds)
	}
	if _, ok := Generate(3, Train, 0).CaptionKind("a purple elephant"); ok {
		t.Error("a caption of no template was recognised")
	}
}

// Bad objects are refused naming the object and field.
func TestSceneOfErrors(t *testing.T) {
	ok := ObjectRecord{Shape: "circle", Colour: "red", Size: "small", Position: "top left"}
	for _, c := range []struct {
		objs []ObjectRecord
		want string
	}{
		{nil, `"objects": 0 objects`},
		{[]ObjectRecord{ok, {Shape: "hexagon", Colour: "red", Size: "small"}}, `"objects"[1]: "shape" is "hexagon"`},
		{[]ObjectRecord{{Shape: "circle", Colour: "pink", Size: "small"}}, `"colour" is "pink"`},
		{[]ObjectRecord{{Shape: "circle", Colour: "red", Size: "huge"}}, `"size" is "huge"`},
		{[]ObjectRecord{{Shape: "circle", Colour: "red", Size: "small", Row: 3}}, `"row" 3`},
		{[]ObjectRecord{{Shape: "circle", Colour: "red", Size: "small", Position: "centre"}}, `"position" is "centre" but row 0, col 0 is "top left"`},
		{[]ObjectRecord{ok, ok}, `"objects"[1]: a second object in cell row 0, col 0`},
	} {
		if _, err := SceneOf(c.objs); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.objs, err, c.want)
		}
	}
}

// Recolouring a drawn scene draws the scene with the new colours: the
// labels say which, and the pixels are what Render draws for them.
func TestRecolour(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	changed := 0
	for i := range 50 {
		s := Generate(5, Train, i)
		px := s.Render(32).Pix
		labels := s.CellLabels()
		got, nl := Recolour(px, 32, labels, r)
		want, err := FromCellLabels(nl)
		if err != nil {
			t.Fatal(err)
		}
		for c := range labels {
			for h := range labels[c] {
				if h != HeadColour && nl[c][h] != labels[c][h] {
					t.Fatalf("scene %d cell %d: head %d changed %d -> %d", i, c, h, labels[c][h], nl[c][h])
				}
			}
			if nl[c][HeadColour] != labels[c][HeadColour] {
				changed++
			}
		}
		wpx := want.Render(32).Pix
		for j := range wpx {
			if d := math.Abs(float64(got[j] - wpx[j])); d > 0.02 {
				t.Fatalf("scene %d value %d: recoloured %v, drawn %v", i, j, got[j], wpx[j])
			}
		}
		if px[0] != s.Render(32).Pix[0] || labels[0][0] != s.CellLabels()[0][0] {
			t.Fatal("Recolour changed its input")
		}
	}
	if changed < 20 {
		t.Errorf("only %d objects of 50 scenes got another colour", changed)
	}
}
