package shapes

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/internal/atomicfile"
)

// Options say what Write generates.
type Options struct {
	Out      string
	Seed     uint64
	Size     int // image side in pixels (default 32)
	Train    int // train scenes (default 2000)
	Test     int // test scenes, and as many held-out scenes (default 200)
	PerClass int // images per colour-shape class in classes/ (default 10)
}

func (o *Options) defaults() {
	if o.Size == 0 {
		o.Size = 32
	}
	if o.Train == 0 {
		o.Train = 2000
	}
	if o.Test == 0 {
		o.Test = 200
	}
	if o.PerClass == 0 {
		o.PerClass = 10
	}
}

// Summary counts what Write wrote.
type Summary struct {
	Scenes  map[string]int // per split
	Classes int            // class folders
	Images  int            // PNG files in all
}

// classSplit is the stream of the class folders' single-object scenes.
const classSplit = 3

// Write generates the world into o.Out:
//
//	images/{train,test,heldout}/NNNNNN.png  the scenes
//	{split}.jsonl      {"image","caption"}: English captions, templates in turn
//	{split}_zh.jsonl   the same in Chinese
//	{split}_scenes.jsonl  each scene: objects, every caption, questions, instructions
//	{split}_llava.json LLaVA conversations: the instructions and questions
//	                   about each image, one English and one Chinese record
//	{split}_rankings.jsonl  simulated rankings (Scene.Rankings): prompt,
//	                   completions, ranking (best first), images
//	{split}_prefs.jsonl every ranked pair: prompt, chosen, rejected, images
//	classes/COLOUR_SHAPE/NNNN.png  single objects of all 32 combinations
//	                   (held-out ones included), for zero-shot classification
//
// The JSON files are written whole (to a temporary, then renamed).
func Write(o Options) (Summary, error) {
	o.defaults()
	if o.Size < 12 || o.Size > 1024 {
		return Summary{}, fmt.Errorf("shapes: size %d: want 12 to 1024 pixels", o.Size)
	}
	if o.Train < 0 || o.Test < 0 || o.PerClass < 0 {
		return Summary{}, fmt.Errorf("shapes: counts must not be negative")
	}
	sum := Summary{Scenes: map[string]int{}}
	for _, sp := range []struct {
		split Split
		n     int
	}{{Train, o.Train}, {Test, o.Test}, {HeldOutSplit, o.Test}} {
		if err := writeSplit(o, sp.split, sp.n); err != nil {
			return sum, err
		}
		sum.Scenes[sp.split.String()] = sp.n
		sum.Images += sp.n
	}
	for c := range numColours {
		for k := range numKinds {
			combo := Combo{c, k}
			dir := filepath.Join(o.Out, "classes", strings.ReplaceAll(combo.String(), " ", "_"))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return sum, err
			}
			for i := range o.PerClass {
				idx := (int(c)*int(numKinds)+int(k))*o.PerClass + i
				r := rand.New(rand.NewPCG(o.Seed, classSplit<<40|uint64(idx)))
				s := Scene{Split: Test, Index: idx, Objects: []Object{{Kind: k, Colour: c, Large: r.IntN(2) == 1, Cell: r.IntN(9)}}}
				if err := writePNG(filepath.Join(dir, fmt.Sprintf("%04d.png", i)), s.Render(o.Size)); err != nil {
					return sum, err
				}
				sum.Images++
			}
			sum.Classes++
		}
	}
	return sum, nil
}

// SceneRecord is a scene as {split}_scenes.jsonl holds it.
type SceneRecord struct {
	Image        string         `json:"image"`
	Split        string         `json:"split"`
	HeldOut      bool           `json:"heldout"`
	Objects      []ObjectRecord `json:"objects"`
	Captions     []Text         `json:"captions"`
	Questions    []QA           `json:"questions"`
	Instructions []QA           `json:"instructions"`
}

// ObjectRecord is an object by name.
type ObjectRecord struct {
	Shape    string `json:"shape"`
	Colour   string `json:"colour"`
	Size     string `json:"size"`
	Position string `json:"position"`
	Row      int    `json:"row"`
	Col      int    `json:"col"`
}

// Record returns the scene's record with its image at path (relative to
// the output folder).
func (s Scene) Record(seed uint64, path string) SceneRecord {
	rec := SceneRecord{Image: path, Split: s.Split.String(), HeldOut: s.HasHeldOut(), Captions: s.Captions(),
		Questions: s.Questions(QuestionRNG(seed, s)), Instructions: s.Instructions(), Objects: s.ObjectRecords()}
	return rec
}

// ObjectRecords are the scene's objects by name, as SceneRecord holds
// them (SceneOf reads them back).
func (s Scene) ObjectRecords() []ObjectRecord {
	var out []ObjectRecord
	for _, o := range s.Objects {
		out = append(out, ObjectRecord{kindEN[o.Kind], colourEN[o.Colour], o.sizeEN(), posEN[o.Cell], o.Row(), o.Col()})
	}
	return out
}

func llava(id, image string, qas []QA, zh bool) vision.LLaVA {
	rec := vision.LLaVA{ID: id, Image: image}
	for i, qa := range qas {
		q, a := qa.Question.EN, qa.Answer.EN
		if zh {
			q, a = qa.Question.ZH, qa.Answer.ZH
		}
		if i == 0 {
			q = "<image>\n" + q
		}
		rec.Conversations = append(rec.Conversations, vision.Turn{From: "human", Value: q}, vision.Turn{From: "gpt", Value: a})
	}
	return rec
}

// Message is a chat turn as golem's data readers take it.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// RankingRecord is a line of {split}_rankings.jsonl: golem export --kind
// rankings' fields, the answers in a random order, and the image.
type RankingRecord struct {
	Prompt      []Message   `json:"prompt"`
	Completions [][]Message `json:"completions"`
	Ranking     []int       `json:"ranking"` // indices into completions, best first
	Images      []string    `json:"images"`
	Kind        string      `json:"kind"`
}

// PreferenceRecord is a line of {split}_prefs.jsonl: one ranked pair.
type PreferenceRecord struct {
	Prompt   []Message `json:"prompt"`
	Chosen   []Message `json:"chosen"`
	Rejected []Message `json:"rejected"`
	Images   []string  `json:"images"`
}

// rankingRecords returns a ranking's record and its pairs' (best against
// each worse answer, in ranking order).
func rankingRecords(rk Ranked, image string, r *rand.Rand) (RankingRecord, []any) {
	var prompt []Message
	for i, t := range rk.Turns {
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		prompt = append(prompt, Message{role, t})
	}
	as := func(a string) []Message { return []Message{{"assistant", a}} }
	perm := r.Perm(len(rk.Answers)) // completions[j] is answer perm[j]
	rec := RankingRecord{Prompt: prompt, Images: []string{image}, Kind: rk.Kind, Ranking: make([]int, len(perm))}
	for j, a := range perm {
		rec.Completions = append(rec.Completions, as(rk.Answers[a]))
		rec.Ranking[a] = j
	}
	var prefs []any
	for i := range rk.Answers {
		for j := i + 1; j < len(rk.Answers); j++ {
			prefs = append(prefs, PreferenceRecord{Prompt: prompt, Chosen: as(rk.Answers[i]), Rejected: as(rk.Answers[j]), Images: []string{image}})
		}
	}
	return rec, prefs
}

func writeSplit(o Options, split Split, n int) error {
	name := split.String()
	imgDir := filepath.Join(o.Out, "images", name)
	if err := os.MkdirAll(imgDir, 0o755); err != nil {
		return err
	}
	var en, zh, scenes, ranks, prefs []any
	var conv []vision.LLaVA
	for i := range n {
		s := Generate(o.Seed, split, i)
		rel := filepath.ToSlash(filepath.Join("images", name, fmt.Sprintf("%06d.png", i)))
		if err := writePNG(filepath.Join(o.Out, rel), s.Render(o.Size)); err != nil {
			return err
		}
		rec := s.Record(o.Seed, rel)
		c := rec.Captions[i%len(rec.Captions)]
		en = append(en, map[string]string{"image": rel, "caption": c.EN})
		zh = append(zh, map[string]string{"image": rel, "caption": c.ZH})
		scenes = append(scenes, rec)
		qas := s.Conversation(o.Seed)
		id := fmt.Sprintf("%s-%06d", name, i)
		conv = append(conv, llava(id, rel, qas, false), llava(id+"-zh", rel, qas, true))
		r := RankingRNG(o.Seed, s)
		for _, rk := range s.Rankings(o.Seed, Generate(o.Seed, split, (i+1)%n), r) {
			rr, pp := rankingRecords(rk, rel, r)
			ranks = append(ranks, rr)
			prefs = append(prefs, pp...)
		}
	}
	for _, f := range []struct {
		file string
		recs []any
	}{{name + ".jsonl", en}, {name + "_zh.jsonl", zh}, {name + "_scenes.jsonl", scenes}, {name + "_rankings.jsonl", ranks}, {name + "_prefs.jsonl", prefs}} {
		if err := writeJSONL(filepath.Join(o.Out, f.file), f.recs); err != nil {
			return err
		}
	}
	return atomicfile.Write(filepath.Join(o.Out, name+"_llava.json"), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", " ")
		return enc.Encode(conv)
	})
}

func writeJSONL(path string, recs []any) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		for _, r := range recs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return bw.Flush()
	})
}

// writePNG writes an image in [0,1] as an 8-bit RGB PNG.
func writePNG(path string, m *vision.Image) error {
	img := image.NewNRGBA(image.Rect(0, 0, m.W, m.H))
	q := func(v float32) uint8 { return uint8(min(max(v, 0), 1)*255 + 0.5) }
	for y := range m.H {
		for x := range m.W {
			img.SetNRGBA(x, y, color.NRGBA{q(m.At(0, y, x)), q(m.At(1, y, x)), q(m.At(2, y, x)), 255})
		}
	}
	// Not synced one by one (thousands of files): a crash leaves images
	// that a second run writes again.
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
