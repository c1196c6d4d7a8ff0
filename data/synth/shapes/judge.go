package shapes

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
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

// SplitCells reads the scenes of a world's split ({split}_scenes.jsonl
// in dir): each scene's image file (joined with dir) and its cells'
// labels (Scene.CellLabels), what a judge trains and is checked on.
func SplitCells(dir, split string) (images []string, labels [][][]int32, err error) {
	recs, scenes, err := ReadScenes(filepath.Join(dir, split+"_scenes.jsonl"))
	if err != nil {
		return nil, nil, err
	}
	for i, r := range recs {
		images, labels = append(images, filepath.Join(dir, r.Image)), append(labels, scenes[i].CellLabels())
	}
	return images, labels, nil
}

// ReadScenes reads a {split}_scenes.jsonl file: each line's record and
// its scene (SceneOf). Errors name the file and line.
func ReadScenes(path string) ([]SceneRecord, []Scene, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var recs []SceneRecord
	var scenes []Scene
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r SceneRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		if r.Image == "" {
			return nil, nil, fmt.Errorf("%s:%d: field \"image\" is missing", path, line)
		}
		s, err := SceneOf(r.Objects)
		if err != nil {
			return nil, nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		recs, scenes = append(recs, r), append(scenes, s)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(recs) == 0 {
		return nil, nil, fmt.Errorf("%s: no scenes", path)
	}
	return recs, scenes, nil
}

// Recolour gives objects of an image of the world other colours, so that
// a judge trained on the Train split sees every colour on every shape
// (the held-out pairs included) while its shapes and places stay those
// drawn: each occupied cell (labels as CellLabels) is, with probability
// one half, repainted in a colour drawn uniformly. px is a CHW image of
// side size, three channels in [0, 1], on black; a pixel of the cell
// whose object has colour c is a*RGB[c] (a the pixel's coverage, what
// Render draws), so it becomes a*RGB[new] with a read back by projection
// on RGB[c]. It returns a new image and new labels; px and labels are not
// changed.
func Recolour(px []float32, size int, labels [][]int32, r *rand.Rand) ([]float32, [][]int32) {
	out := slices.Clone(px)
	nl := make([][]int32, len(labels))
	if len(px) != 3*size*size || len(labels) != 9 {
		for i, l := range labels {
			nl[i] = slices.Clone(l)
		}
		return out, nl // not an image of the world
	}
	var from, to [9]*[3]float32 // each repainted cell's old and new colour
	for cell, l := range labels {
		nl[cell] = slices.Clone(l)
		if cell >= 9 || len(l) != numHeads || l[HeadOccupied] != 1 || l[HeadColour] < 0 || l[HeadColour] >= int32(numColours) || r.IntN(2) == 0 {
			continue
		}
		c := r.IntN(int(numColours))
		from[cell], to[cell] = &RGB[l[HeadColour]], &RGB[c]
		nl[cell][HeadColour] = int32(c)
	}
	plane := size * size
	for y := range size {
		for x := range size {
			// the cell holding the pixel's centre
			cell := (2*y+1)*3/(2*size)*3 + (2*x+1)*3/(2*size)
			f, t := from[cell], to[cell]
			if f == nil {
				continue
			}
			i := y*size + x
			a := (px[i]*f[0] + px[plane+i]*f[1] + px[2*plane+i]*f[2]) / (f[0]*f[0] + f[1]*f[1] + f[2]*f[2])
			for c := range 3 {
				out[c*plane+i] = min(max(a*t[c], 0), 1)
			}
		}
	}
	return out, nl
}
