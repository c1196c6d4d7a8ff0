package shapes

import (
	"fmt"
	"slices"
)

// ParseObject reads an object of a scene record; an unknown shape, colour
// or size, or a row or column outside the grid, is an error naming the
// field.
func ParseObject(r ObjectRecord) (Object, error) {
	k := slices.Index(kindEN[:], r.Shape)
	if k < 0 {
		return Object{}, fmt.Errorf("\"shape\" is %q, want one of %v", r.Shape, kindEN)
	}
	c := slices.Index(colourEN[:], r.Colour)
	if c < 0 {
		return Object{}, fmt.Errorf("\"colour\" is %q, want one of %v", r.Colour, colourEN)
	}
	if r.Size != "small" && r.Size != "large" {
		return Object{}, fmt.Errorf("\"size\" is %q, want small or large", r.Size)
	}
	if r.Row < 0 || r.Row > 2 || r.Col < 0 || r.Col > 2 {
		return Object{}, fmt.Errorf("\"row\" %d and \"col\" %d: want 0 to 2", r.Row, r.Col)
	}
	cell := r.Row*3 + r.Col
	if r.Position != "" && r.Position != posEN[cell] {
		return Object{}, fmt.Errorf("\"position\" is %q but row %d, col %d is %q", r.Position, r.Row, r.Col, posEN[cell])
	}
	return Object{Kind: Kind(k), Colour: Colour(c), Large: r.Size == "large", Cell: cell}, nil
}

// SceneOf reads a scene's objects (one to nine, in distinct cells); errors
// name the object and field.
func SceneOf(objs []ObjectRecord) (Scene, error) {
	if len(objs) == 0 || len(objs) > 9 {
		return Scene{}, fmt.Errorf("\"objects\": %d objects, want 1 to 9", len(objs))
	}
	var s Scene
	for i, r := range objs {
		o, err := ParseObject(r)
		if err != nil {
			return Scene{}, fmt.Errorf("\"objects\"[%d]: %w", i, err)
		}
		if slices.ContainsFunc(s.Objects, func(p Object) bool { return p.Cell == o.Cell }) {
			return Scene{}, fmt.Errorf("\"objects\"[%d]: a second object in cell row %d, col %d", i, o.Row(), o.Col())
		}
		s.Objects = append(s.Objects, o)
	}
	return s, nil
}

// The attributes a judge of the world reads in each cell of the 3x3 grid,
// in JudgeHeads' order.
const (
	HeadOccupied = iota // 0 empty, 1 an object
	HeadColour          // Colour
	HeadShape           // Kind
	HeadSize            // 0 small, 1 large
	numHeads
)

// JudgeHeads returns the name and class names of each attribute a judge
// reads in a cell (HeadOccupied, HeadColour, HeadShape, HeadSize).
func JudgeHeads() (names []string, classes [][]string) {
	return []string{"occupied", "colour", "shape", "size"},
		[][]string{{"empty", "object"}, colourEN[:], kindEN[:], {"small", "large"}}
}

// CellLabels returns the scene's labels for a judge: for each of the 9
// cells, row-major, the class of each head (JudgeHeads' order); an empty
// cell has -1 for all but HeadOccupied.
func (s Scene) CellLabels() [][]int32 {
	out := make([][]int32, 9)
	for c := range out {
		out[c] = []int32{0, -1, -1, -1}
	}
	for _, o := range s.Objects {
		size := int32(0)
		if o.Large {
			size = 1
		}
		out[o.Cell] = []int32{1, int32(o.Colour), int32(o.Kind), size}
	}
	return out
}

// FromCellLabels is the scene a judge sees: an object in every cell whose
// HeadOccupied class is 1, with the cell's colour, shape and size; labels
// is CellLabels' layout. A class out of range is an error.
func FromCellLabels(labels [][]int32) (Scene, error) {
	if len(labels) != 9 {
		return Scene{}, fmt.Errorf("shapes: %d cells, want 9", len(labels))
	}
	var s Scene
	for c, l := range labels {
		if len(l) != numHeads {
			return Scene{}, fmt.Errorf("shapes: cell %d has %d labels, want %d", c, len(l), numHeads)
		}
		if l[HeadOccupied] != 1 {
			continue
		}
		if l[HeadColour] < 0 || l[HeadColour] >= int32(numColours) || l[HeadShape] < 0 || l[HeadShape] >= int32(numKinds) || l[HeadSize] < 0 || l[HeadSize] > 1 {
			return Scene{}, fmt.Errorf("shapes: cell %d: labels %v out of range", c, l)
		}
		s.Objects = append(s.Objects, Object{Kind: Kind(l[HeadShape]), Colour: Colour(l[HeadColour]), Large: l[HeadSize] == 1, Cell: c})
	}
	return s, nil
}

// CaptionKind is which of Captions' templates a caption is.
type CaptionKind int

// The caption templates, in Captions' order.
const (
	// Listing names every object with its size and cell ("a small red
	// circle in the top left corner and a large cyan square on the right").
	Listing CaptionKind = iota
	// Counting gives the number of objects and each one's colour and shape
	// ("two shapes: a red circle and a cyan square").
	Counting
	// Relating places the first object relative to the second ("a red
	// circle to the left of a cyan square"); other objects may be there.
	Relating
)

func (k CaptionKind) String() string { return [...]string{"listing", "counting", "relating"}[k] }

// CaptionKind says which template of the scene's Captions text is, in
// English or Chinese; false when it is none of them.
func (s Scene) CaptionKind(text string) (CaptionKind, bool) {
	for i, c := range s.Captions() {
		if text == c.EN || text == c.ZH {
			return CaptionKind(i), true
		}
	}
	return 0, false
}

// Relation is how a Relating caption places a relative to b: "left of" or
// "right of" when their columns differ, else "above" or "below"; "" when
// they share a cell.
func Relation(a, b Object) string {
	switch {
	case a.Col() < b.Col():
		return "left of"
	case a.Col() > b.Col():
		return "right of"
	case a.Row() < b.Row():
		return "above"
	case a.Row() > b.Row():
		return "below"
	}
	return ""
}

// Holds says whether a is rel (Relation's words) b: "left of" is a column
// further left, whatever the rows; "above" a row further up, whatever the
// columns.
func Holds(rel string, a, b Object) bool {
	switch rel {
	case "left of":
		return a.Col() < b.Col()
	case "right of":
		return a.Col() > b.Col()
	case "above":
		return a.Row() < b.Row()
	case "below":
		return a.Row() > b.Row()
	}
	return false
}
