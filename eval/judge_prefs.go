package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/golem-ml/golem/generate/imagine"
	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/model/dalle"
	"github.com/golem-ml/golem/model/resnet"
)

// PrefStats sums up ImagePrefs' run: the pairs written, the captions
// that gave none (their samples all scored the same, or, with
// PrefOptions.Pairs "dominant" or "exact", no sample dominated another;
// with "anchored", before the anchors' cap),
// the pairs of different scores left out because the better-scored
// sample did not dominate the other (Traded; with "count", the pairs
// whose lower-scored sample was chosen for its number of shapes), and the
// annotator's mean score of every sample, of the chosen and of the
// rejected ones.
type PrefStats struct {
	Pairs, Ties, Traded int
	// Anchors is how many of the pairs are count anchors ("anchored"):
	// at most as many as the others.
	Anchors                int
	Mean, Chosen, Rejected float64
}

// PrefOptions says how the simulated annotator scores and pairs samples.
type PrefOptions struct {
	// Score is a sample's score from its marks (Marks.MeanAcc or
	// Marks.Share); the higher is chosen.
	Score func(Marks) float64
	// Pairs is which pairs the annotator makes (PairRules): "all", every
	// two samples of different scores; "dominant", only where the chosen
	// sample Dominates the rejected one (no attribute, and not the
	// number of objects, worse) and is better in its score or nearer the
	// caption's number of objects; "exact", the dominant pairs whose
	// chosen sample has as many objects as the caption states (where it
	// states a number); "count", count first, as a person would judge
	// one caption's drawings: the sample whose number of objects is
	// nearer the caption's (CountOff) is chosen whatever its other marks,
	// so one with the wrong number never beats one with the right number
	// and extra shapes lose, and of two as near the higher score is;
	// "beyond-clip", the dominant pairs whose two samples agree on what
	// CLIP's reranking picks by (PickedAttrs): the same colour marks, and
	// both with the caption's number of shapes, so they differ only in
	// shape, position or size (an extra shape raises the other marks, a
	// second chance at each stated one, so pairs of samples as far off
	// the count in the same direction teach drawing more); "anchored",
	// the beyond-clip pairs and count anchors: every pair whose chosen
	// sample has the caption's number of shapes and whose rejected one
	// has another, with no more colours right (countAnchors), a random
	// subset of them at most as many as the beyond-clip pairs, so that
	// what DPO learns from those does not drift toward drawing extra
	// shapes.
	// "" is "all".
	Pairs string
}

// PairRules are PrefOptions.Pairs' values.
var PairRules = []string{"count", "exact", "dominant", "all", "beyond-clip", "anchored"}

// PickedAttrs are the attributes CLIP's pick of a caption's samples gains
// (docs/multimodal.md: colour and count, +0.09 to +0.12 each over the
// first sample, where shape gains nothing): the "beyond-clip" pairs agree
// on them, so DPO on those pairs tunes what the pick does not choose.
var PickedAttrs = []string{"colour", "count"}

// imagePrefLine is a line of the preferences file: TRL's DPO fields
// (vision.ImagePref) and the annotator's scores.
type imagePrefLine struct {
	Prompt        string  `json:"prompt"`
	Chosen        string  `json:"chosen"`
	Rejected      string  `json:"rejected"`
	ChosenScore   float64 `json:"chosen_score"`
	RejectedScore float64 `json:"rejected_score"`
	// How far each sample's number of shapes is from the caption's
	// (CountOff).
	ChosenOff   int `json:"chosen_count_off"`
	RejectedOff int `json:"rejected_count_off"`
	// The image tokens each sample was decoded from (imagine.Result's
	// Codes): DPO scores these, the model's own draws, rather than the
	// VQ-VAE's encoding of the decoded picture (which keeps about 73% of
	// them on the shapes world's tiny VQ-VAE).
	ChosenTokens   []int32 `json:"chosen_tokens"`
	RejectedTokens []int32 `json:"rejected_tokens"`
}

// prefRecord is a line of the preferences file with its two scores.
type prefRecord struct {
	line             []byte
	chosen, rejected float64
}

// ImagePrefs simulates an annotator comparing images drawn for the same
// caption: for each item's caption it draws o.N samples from m (caption
// j's sample i with seed o.Sampling.Seed + j*N + i), writes them to
// dir/images/JJJJJJ-I.png, scores each by what the annotator judge sees
// of what the caption states (ScoreScene's marks of what it sees, by
// p.Score: Marks.MeanAcc or Marks.Share) and writes every pair of
// different scores (PreferencePairs), or those p.Pairs keeps, to
// dir/prefs.jsonl as {"prompt", "chosen", "rejected"} (paths relative to
// dir; golem imagine dpo's input) with both scores, CountOffs and the
// image tokens each sample was drawn as. The annotator must
// not be the judge the tuned model is evaluated by: tuning on the
// metric's own judge would make the metric measure the tuning.
func ImagePrefs(m *dalle.Model, annotator *resnet.Grid, items []JudgeItem, o imagine.Options, p PrefOptions, dir string) (PrefStats, error) {
	var st PrefStats
	if o.Rerank != nil {
		return st, fmt.Errorf("imagine prefs: no reranking: every sample is compared")
	}
	if p.Pairs != "" && !slices.Contains(PairRules, p.Pairs) {
		return st, fmt.Errorf("imagine prefs: pairs %q, want one of %v", p.Pairs, PairRules)
	}
	if err := os.MkdirAll(filepath.Join(dir, "images"), 0o755); err != nil {
		return st, err
	}
	var out bytes.Buffer
	var kept, anchorRecs []prefRecord
	seed := o.Sampling.Seed
	samples := 0
	for j, it := range items {
		o.Sampling.Seed = seed + uint64(j*o.N)
		res, err := imagine.Images(m, it.Caption, o)
		if err != nil {
			return st, fmt.Errorf("line %d: %w", it.Line, err)
		}
		drawn := make([]JudgeItem, len(res.Images))
		names := make([]string, len(res.Images))
		for i, img := range res.Images {
			var b bytes.Buffer
			if err := png.Encode(&b, img); err != nil {
				return st, err
			}
			names[i] = fmt.Sprintf("images/%06d-%d.png", j, i)
			if err := atomicfile.WriteFile(filepath.Join(dir, names[i]), b.Bytes()); err != nil {
				return st, err
			}
			drawn[i] = it
			drawn[i].Image = filepath.Join(dir, names[i])
		}
		seen, err := JudgeSeen(annotator, drawn, len(drawn))
		if err != nil {
			return st, err
		}
		marks, off := make([]Marks, len(seen)), make([]int, len(seen))
		scores := make([]float64, len(seen))
		for i := range seen {
			marks[i] = ScoreScene(it.Kind, it.Stated(), seen[i])
			off[i] = CountOff(it.Kind, it.Stated(), seen[i])
			scores[i] = p.Score(marks[i])
			st.Mean += scores[i]
			samples++
		}
		pairs, traded := annotatorPairs(scores, marks, off, p.Pairs)
		st.Traded += traded
		var anchors [][2]int
		if p.Pairs == "anchored" {
			anchors = countAnchors(marks, off)
		}
		if len(pairs)+len(anchors) == 0 {
			st.Ties++
		}
		line := func(pr [2]int) prefRecord {
			c, r := pr[0], pr[1]
			l, _ := json.Marshal(imagePrefLine{Prompt: it.Caption, Chosen: names[c], Rejected: names[r], ChosenScore: scores[c], RejectedScore: scores[r], ChosenOff: off[c], RejectedOff: off[r],
				ChosenTokens: res.Codes[c], RejectedTokens: res.Codes[r]})
			return prefRecord{l, scores[c], scores[r]}
		}
		for _, pr := range pairs {
			kept = append(kept, line(pr))
		}
		for _, pr := range anchors {
			anchorRecs = append(anchorRecs, line(pr))
		}
	}
	// At most as many count anchors as the other pairs, after them: more
	// taught DPO the count at the cost of what the beyond-clip pairs teach
	// (docs/multimodal.md).
	anchorRecs = capAnchors(anchorRecs, len(kept), seed)
	st.Anchors = len(anchorRecs)
	for _, r := range append(kept, anchorRecs...) {
		out.Write(append(r.line, '\n'))
		st.Chosen += r.chosen
		st.Rejected += r.rejected
		st.Pairs++
	}
	st.Mean /= float64(max(samples, 1))
	st.Chosen /= float64(max(st.Pairs, 1))
	st.Rejected /= float64(max(st.Pairs, 1))
	return st, atomicfile.WriteFile(filepath.Join(dir, "prefs.jsonl"), out.Bytes())
}

// annotatorPairs is the annotator's pairs of one caption's samples by
// rule (PrefOptions.Pairs): every pair of different scores
// (PreferencePairs), or for "dominant" and "exact" every pair whose
// chosen sample Dominates the rejected one (marks, and off: each
// sample's CountOff) and is better in its score or nearer the stated
// number of objects, for "exact" only those whose chosen sample's
// CountOff is 0, for "beyond-clip" only those whose samples both have
// CountOff 0 and the same marks of PickedAttrs; traded counts the pairs
// of different scores left out.
// For "count" every pair of samples of different CountOffs, the nearer
// chosen, and of the same CountOff and different scores, the higher
// chosen; traded counts the pairs whose chosen sample has the lower score.
func annotatorPairs(scores []float64, marks []Marks, off []int, rule string) (pairs [][2]int, traded int) {
	switch rule {
	case "", "all":
		return PreferencePairs(scores), 0
	case "count":
		for _, p := range PreferencePairs(scores) {
			if off[p[0]] <= off[p[1]] {
				pairs = append(pairs, p)
			}
		}
		for i := range scores {
			for j := range scores {
				if off[i] < off[j] && scores[i] <= scores[j]+1e-9 {
					pairs = append(pairs, [2]int{i, j})
					if scores[i] < scores[j]-1e-9 {
						traded++
					}
				}
			}
		}
		return pairs, traded
	}
	keep := func(c, r int) bool {
		if rule == "beyond-clip" || rule == "anchored" {
			if off[c] != 0 || off[r] != 0 {
				return false
			}
			for _, a := range PickedAttrs {
				if marks[c][a] != marks[r][a] {
					return false
				}
			}
		}
		return Dominates(marks[c], marks[r], off[c], off[r]) && (rule != "exact" || off[c] == 0)
	}
	for _, p := range PreferencePairs(scores) {
		if !keep(p[0], p[1]) {
			traded++
			continue
		}
		pairs = append(pairs, p)
	}
	for i := range scores {
		for j := range scores {
			if math.Abs(scores[i]-scores[j]) <= 1e-9 && off[i] < off[j] && keep(i, j) {
				pairs = append(pairs, [2]int{i, j})
			}
		}
	}
	return pairs, traded
}

// countAnchors are the "anchored" rule's count anchors among one
// caption's samples: every pair (c, r) whose chosen sample c has the
// caption's number of shapes (off[c] == 0), whose rejected one r has
// another (more or fewer), and whose chosen sample has as many colours
// right as the rejected one or more; none is a beyond-clip pair, whose
// samples both have the caption's number. An extra shape is a second
// chance at each stated mark, so by the marks alone the sample with it
// often wins; the anchors say the annotator prefers the stated number,
// over more and over fewer alike (anchors against more alone taught a
// model to draw fewer: docs/multimodal.md).
func countAnchors(marks []Marks, off []int) (anchors [][2]int) {
	for c := range marks {
		if off[c] != 0 {
			continue
		}
		for r := range marks {
			if off[r] > 0 && marks[c]["colour"][0] >= marks[r]["colour"][0] {
				anchors = append(anchors, [2]int{c, r})
			}
		}
	}
	return anchors
}

// capAnchors returns at most n of anchors, a random subset chosen by seed
// (the draws' seed: the same draws keep the same anchors), in a random
// order.
func capAnchors[T any](anchors []T, n int, seed uint64) []T {
	rng := rand.New(rand.NewPCG(seed, 0x616e63686f7273))
	rng.Shuffle(len(anchors), func(i, j int) { anchors[i], anchors[j] = anchors[j], anchors[i] })
	return anchors[:min(len(anchors), n)]
}
