// Package shapes is golem's built-in image world: seeded scenes of one to
// four shapes (circle, square, triangle, diamond) in eight named colours,
// two sizes, on a 3x3 grid of positions, rendered anti-aliased as RGB
// images, with what a program knows of each scene: captions, questions
// with answers (colour, shape, count, position, relations; open and
// yes/no) and instructions, in English and Chinese.
//
// Composition is tested by held-out combinations: the colour-shape pairs
// in [HeldOut] (a red triangle, a blue circle, ...) never appear in the
// [Train] split, and every scene of the [HeldOutSplit] has at least one,
// so a model's score on them is reported apart from [Test], which has
// none either.
//
// A scene is a function of (seed, split, index) alone, so the same seed
// gives the same data on every run, platform and worker count.
package shapes

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/golem-ml/golem/data/vision"
)

// Kind is a shape.
type Kind int

// The shapes.
const (
	Circle Kind = iota
	Square
	Triangle
	Diamond
	numKinds
)

// Colour is one of the eight named colours.
type Colour int

// The colours.
const (
	Red Colour = iota
	Green
	Blue
	Yellow
	Purple
	Orange
	White
	Cyan
	numColours
)

// RGB is each colour's value in [0,1]; the background is black.
var RGB = [numColours][3]float32{
	Red: {1, 0, 0}, Green: {0, 0.8, 0}, Blue: {0.1, 0.3, 1}, Yellow: {1, 1, 0},
	Purple: {0.6, 0.1, 0.9}, Orange: {1, 0.55, 0}, White: {1, 1, 1}, Cyan: {0, 0.9, 0.9},
}

var (
	kindEN   = [numKinds]string{"circle", "square", "triangle", "diamond"}
	kindZH   = [numKinds]string{"圆形", "正方形", "三角形", "菱形"}
	colourEN = [numColours]string{"red", "green", "blue", "yellow", "purple", "orange", "white", "cyan"}
	colourZH = [numColours]string{"红色", "绿色", "蓝色", "黄色", "紫色", "橙色", "白色", "青色"}
	// The 3x3 grid's cells, row by row.
	posEN       = [9]string{"top left", "top", "top right", "left", "centre", "right", "bottom left", "bottom", "bottom right"}
	posPhraseEN = [9]string{"in the top left corner", "at the top", "in the top right corner", "on the left", "in the centre", "on the right", "in the bottom left corner", "at the bottom", "in the bottom right corner"}
	posZH       = [9]string{"左上角", "上方", "右上角", "左边", "中间", "右边", "左下角", "下方", "右下角"}
	numEN       = []string{"no", "one", "two", "three", "four"}
)

func (k Kind) String() string   { return kindEN[k] }
func (c Colour) String() string { return colourEN[c] }

// Combo is a colour-shape pair.
type Combo struct {
	Colour Colour
	Kind   Kind
}

func (c Combo) String() string { return colourEN[c.Colour] + " " + kindEN[c.Kind] }

// HeldOut are the combinations never in the Train split: each colour and
// each shape still appears in training, only not together.
var HeldOut = []Combo{{Red, Triangle}, {Blue, Circle}, {Green, Square}, {Yellow, Diamond}}

// IsHeldOut says whether c is one of HeldOut.
func IsHeldOut(c Combo) bool { return slices.Contains(HeldOut, c) }

// Classes returns every colour-shape combination's name ("red circle"),
// colour-major: the zero-shot classes of the world.
func Classes() []string {
	var out []string
	for c := range numColours {
		for k := range numKinds {
			out = append(out, Combo{c, k}.String())
		}
	}
	return out
}

// Object is one shape of a scene.
type Object struct {
	Kind   Kind
	Colour Colour
	Large  bool
	Cell   int // 0..8, row-major in the 3x3 grid
}

// Row and Col are the object's grid cell (0 top/left .. 2 bottom/right).
func (o Object) Row() int { return o.Cell / 3 }

// Col is the object's grid column.
func (o Object) Col() int { return o.Cell % 3 }

// Combo is the object's colour and shape.
func (o Object) Combo() Combo { return Combo{o.Colour, o.Kind} }

func (o Object) sizeEN() string {
	if o.Large {
		return "large"
	}
	return "small"
}

func (o Object) sizeZH() string {
	if o.Large {
		return "大"
	}
	return "小"
}

// Split is which part of the world a scene belongs to.
type Split int

// The splits.
const (
	Train        Split = iota // no held-out combination
	Test                      // no held-out combination, other scenes
	HeldOutSplit              // every scene has a held-out combination
)

func (s Split) String() string { return [...]string{"train", "test", "heldout"}[s] }

// Scene is a generated scene.
type Scene struct {
	Split   Split
	Index   int
	Objects []Object // in distinct cells
}

// Generate returns scene index of split for seed.
func Generate(seed uint64, split Split, index int) Scene {
	r := rand.New(rand.NewPCG(seed, uint64(split)<<40|uint64(index)))
	for {
		s := Scene{Split: split, Index: index}
		n := 1 + r.IntN(4)
		cells := r.Perm(9)[:n]
		for _, c := range cells {
			s.Objects = append(s.Objects, Object{Kind: Kind(r.IntN(int(numKinds))), Colour: Colour(r.IntN(int(numColours))), Large: r.IntN(2) == 1, Cell: c})
		}
		if split == HeldOutSplit {
			h := HeldOut[r.IntN(len(HeldOut))]
			s.Objects[0].Colour, s.Objects[0].Kind = h.Colour, h.Kind
			return s
		}
		if !s.HasHeldOut() {
			return s
		}
	}
}

// HasHeldOut says whether any object is a held-out combination.
func (s Scene) HasHeldOut() bool {
	for _, o := range s.Objects {
		if IsHeldOut(o.Combo()) {
			return true
		}
	}
	return false
}

// Radius is an object's size as a fraction of its grid cell's side.
func (o Object) Radius() float64 {
	if o.Large {
		return 0.45
	}
	return 0.3
}

// inside says whether (dx, dy), in units of the object's radius from its
// centre (y down), is inside the shape.
func inside(k Kind, dx, dy float64) bool {
	switch k {
	case Circle:
		return dx*dx+dy*dy <= 1
	case Square:
		return math.Abs(dx) <= 0.8 && math.Abs(dy) <= 0.8
	case Triangle: // apex at the top, base at 0.8 below the centre
		return dy >= -1 && dy <= 0.8 && math.Abs(dx) <= (dy+1)/1.8
	default: // Diamond
		return math.Abs(dx)+math.Abs(dy) <= 1
	}
}

// supersample is the samples per pixel side for anti-aliasing.
const supersample = 4

// Render draws the scene as a 3 x size x size image in [0,1] on black:
// each pixel is the mean of 4x4 samples, so edges are anti-aliased.
func (s Scene) Render(size int) *vision.Image {
	m := vision.NewImage(3, size, size)
	cell := float64(size) / 3
	for _, o := range s.Objects {
		cx, cy := (float64(o.Col())+0.5)*cell, (float64(o.Row())+0.5)*cell
		r := o.Radius() * cell
		x0, x1 := max(0, int(cx-r)-1), min(size-1, int(cx+r)+1)
		y0, y1 := max(0, int(cy-r)-1), min(size-1, int(cy+r)+1)
		for y := y0; y <= y1; y++ {
			for x := x0; x <= x1; x++ {
				hit := 0
				for sy := range supersample {
					for sx := range supersample {
						px := float64(x) + (float64(sx)+0.5)/supersample
						py := float64(y) + (float64(sy)+0.5)/supersample
						if inside(o.Kind, (px-cx)/r, (py-cy)/r) {
							hit++
						}
					}
				}
				if hit == 0 {
					continue
				}
				a := float32(hit) / supersample / supersample
				for c := range 3 {
					m.Set(c, y, x, m.At(c, y, x)*(1-a)+RGB[o.Colour][c]*a)
				}
			}
		}
	}
	return m
}

// Text is something said of a scene in both languages.
type Text struct {
	EN string `json:"en"`
	ZH string `json:"zh"`
}

// QA is a question about a scene with its answer; Kind is colour, shape,
// count, position, exists or relation.
type QA struct {
	Kind     string `json:"kind"`
	Question Text   `json:"question"`
	Answer   Text   `json:"answer"`
}

func (o Object) nameEN() string { return o.Combo().String() }
func (o Object) nameZH() string { return colourZH[o.Colour] + kindZH[o.Kind] }
func (o Object) fullEN() string { return o.sizeEN() + " " + o.nameEN() }
func (o Object) fullZH() string { return o.sizeZH() + "的" + o.nameZH() }

func article(w string) string {
	if strings.ContainsRune("aeiou", rune(w[0])) {
		return "an " + w
	}
	return "a " + w
}

// Captions returns the scene's captions, each template once: a list of
// its objects with size and place, a short list of colour and shape, and
// a relation between the first two objects when both are unambiguous.
func (s Scene) Captions() []Text {
	var long, short []string
	var longZH, shortZH []string
	for _, o := range s.Objects {
		long = append(long, article(o.fullEN())+" "+posPhraseEN[o.Cell])
		short = append(short, article(o.nameEN()))
		longZH = append(longZH, posZH[o.Cell]+"有一个"+o.fullZH())
		shortZH = append(shortZH, "一个"+o.nameZH())
	}
	n := len(s.Objects)
	caps := []Text{
		{EN: joinEN(long), ZH: strings.Join(longZH, "，") + "。"},
		{EN: fmt.Sprintf("%s %s: %s", numEN[n], plural("shape", n), joinEN(short)), ZH: fmt.Sprintf("%d个图形：%s。", n, strings.Join(shortZH, "、"))},
	}
	if s.relatable() {
		if rel, ok := relation(s.Objects[0], s.Objects[1]); ok {
			caps = append(caps, rel)
		}
	}
	return caps
}

// relatable says whether the first two objects can be named apart from
// every other (their colour and shape occur once), so a relation between
// them is not ambiguous.
func (s Scene) relatable() bool {
	if len(s.Objects) < 2 {
		return false
	}
	for _, o := range s.Objects[:2] {
		if s.count(func(p Object) bool { return p.Combo() == o.Combo() }) != 1 {
			return false
		}
	}
	return true
}

// relation describes a relative to b (Relation).
func relation(a, b Object) (Text, bool) {
	switch Relation(a, b) {
	case "left of":
		return Text{article(a.nameEN()) + " to the left of " + article(b.nameEN()), a.nameZH() + "在" + b.nameZH() + "的左边。"}, true
	case "right of":
		return Text{article(a.nameEN()) + " to the right of " + article(b.nameEN()), a.nameZH() + "在" + b.nameZH() + "的右边。"}, true
	case "above":
		return Text{article(a.nameEN()) + " above " + article(b.nameEN()), a.nameZH() + "在" + b.nameZH() + "的上面。"}, true
	case "below":
		return Text{article(a.nameEN()) + " below " + article(b.nameEN()), a.nameZH() + "在" + b.nameZH() + "的下面。"}, true
	}
	return Text{}, false
}

func plural(w string, n int) string {
	if n == 1 {
		return w
	}
	return w + "s"
}

func joinEN(parts []string) string {
	if len(parts) == 1 {
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

func yesNo(b bool) Text {
	if b {
		return Text{"yes", "有"}
	}
	return Text{"no", "没有"}
}

func isNot(b bool) Text {
	if b {
		return Text{"yes", "是"}
	}
	return Text{"no", "不是"}
}

// count returns how many objects match.
func (s Scene) count(match func(Object) bool) int {
	n := 0
	for _, o := range s.Objects {
		if match(o) {
			n++
		}
	}
	return n
}

// Questions returns the scene's questions with answers: colour of each
// shape kind that occurs once, shape of each colour that occurs once,
// place of each object whose colour and shape occur once, counts (all
// shapes, and of a kind, which may be zero), whether a combination is
// there (one present, one absent, drawn from r) and the relations of the
// first two objects (when both are unambiguous).
func (s Scene) Questions(r *rand.Rand) []QA {
	var qs []QA
	for _, o := range s.Objects {
		if s.count(func(p Object) bool { return p.Kind == o.Kind }) == 1 {
			qs = append(qs, QA{"colour", Text{"What colour is the " + kindEN[o.Kind] + "?", "图中的" + kindZH[o.Kind] + "是什么颜色的？"}, Text{colourEN[o.Colour], colourZH[o.Colour]}})
		}
		if s.count(func(p Object) bool { return p.Colour == o.Colour }) == 1 {
			qs = append(qs, QA{"shape", Text{"What shape is the " + colourEN[o.Colour] + " object?", colourZH[o.Colour] + "的物体是什么形状？"}, Text{kindEN[o.Kind], kindZH[o.Kind]}})
		}
		if s.count(func(p Object) bool { return p.Combo() == o.Combo() }) == 1 {
			qs = append(qs, QA{"position", Text{"Where is the " + o.nameEN() + "?", o.nameZH() + "在哪里？"}, Text{posEN[o.Cell], posZH[o.Cell]}})
		}
	}
	n := len(s.Objects)
	qs = append(qs, QA{"count", Text{"How many shapes are there?", "图中有几个图形？"}, Text{fmt.Sprint(n), fmt.Sprintf("%d个", n)}})
	k := Kind(r.IntN(int(numKinds)))
	nk := s.count(func(p Object) bool { return p.Kind == k })
	qs = append(qs, QA{"count", Text{"How many " + kindEN[k] + "s are there?", "图中有几个" + kindZH[k] + "？"}, Text{fmt.Sprint(nk), fmt.Sprintf("%d个", nk)}})
	present := s.Objects[r.IntN(n)].Combo()
	absent := Combo{Colour(r.IntN(int(numColours))), Kind(r.IntN(int(numKinds)))}
	for _, c := range []Combo{present, absent} {
		has := s.count(func(p Object) bool { return p.Combo() == c }) > 0
		qs = append(qs, QA{"exists", Text{"Is there " + article(c.String()) + "?", "图中有" + colourZH[c.Colour] + kindZH[c.Kind] + "吗？"}, yesNo(has)})
	}
	if s.relatable() {
		a, b := s.Objects[0], s.Objects[1]
		qs = append(qs, QA{"relation", Text{"Is the " + a.nameEN() + " to the left of the " + b.nameEN() + "?", a.nameZH() + "在" + b.nameZH() + "的左边吗？"}, isNot(a.Col() < b.Col())})
		qs = append(qs, QA{"relation", Text{"Is the " + a.nameEN() + " above the " + b.nameEN() + "?", a.nameZH() + "在" + b.nameZH() + "的上面吗？"}, isNot(a.Row() < b.Row())})
	}
	return qs
}

// Instructions returns the scene's instructions with their answers:
// describe it, count its shapes, list its colours.
func (s Scene) Instructions() []QA {
	n := len(s.Objects)
	caps := s.Captions()
	var cols []string
	var colsZH []string
	seen := map[Colour]bool{}
	for _, o := range s.Objects {
		if !seen[o.Colour] {
			seen[o.Colour] = true
			cols = append(cols, colourEN[o.Colour])
			colsZH = append(colsZH, colourZH[o.Colour])
		}
	}
	return []QA{
		{"describe", Text{"Describe the image.", "描述这张图片。"}, Text{"The image shows " + caps[0].EN + ".", "图中" + caps[0].ZH}},
		{"count", Text{"Count the shapes in the image.", "数一数图中的图形。"}, Text{fmt.Sprintf("There %s %s %s.", isAre(n), numEN[n], plural("shape", n)), fmt.Sprintf("图中有%d个图形。", n)}},
		{"colours", Text{"List the colours you see.", "列出图中的颜色。"}, Text{capitalise(joinEN(cols)) + ".", strings.Join(colsZH, "、") + "。"}},
	}
}

func capitalise(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// Conversation returns the exchanges of the scene's LLaVA conversation
// ({split}_llava.json): its description first (as every LLaVA
// conversation of the world opens), then its other instructions and its
// questions in an order drawn from (seed, split, index), so that every
// question is asked right after the description in some scenes (a fixed
// order taught a small model the order, not to read the question).
func (s Scene) Conversation(seed uint64) []QA {
	ins := s.Instructions()
	rest := append(ins[1:len(ins):len(ins)], s.Questions(QuestionRNG(seed, s))...)
	r := rand.New(rand.NewPCG(seed^0xc0ffee, uint64(s.Split)<<40|uint64(s.Index)))
	r.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	return append([]QA{ins[0]}, rest...)
}

// QuestionRNG returns the generator Questions draws from for a scene, a
// function of (seed, split, index) as the scene is.
func QuestionRNG(seed uint64, s Scene) *rand.Rand {
	return rand.New(rand.NewPCG(seed^0x5eed5eed, uint64(s.Split)<<40|uint64(s.Index)))
}
