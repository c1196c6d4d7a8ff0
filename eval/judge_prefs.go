package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"

	"github.com/golem-ml/golem/generate/imagine"
	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/model/dalle"
	"github.com/golem-ml/golem/model/resnet"
)

// PrefStats sums up ImagePrefs' run: the pairs written, the captions
// whose samples all scored the same (no pair), and the annotator's mean
// score of every sample, of the chosen and of the rejected ones.
type PrefStats struct {
	Pairs, Ties            int
	Mean, Chosen, Rejected float64
}

// imagePrefLine is a line of the preferences file: TRL's DPO fields
// (vision.ImagePref) and the annotator's scores.
type imagePrefLine struct {
	Prompt        string  `json:"prompt"`
	Chosen        string  `json:"chosen"`
	Rejected      string  `json:"rejected"`
	ChosenScore   float64 `json:"chosen_score"`
	RejectedScore float64 `json:"rejected_score"`
}

// ImagePrefs simulates an annotator comparing images drawn for the same
// caption: for each item's caption it draws o.N samples from m (caption
// j's sample i with seed o.Sampling.Seed + j*N + i), writes them to
// dir/images/JJJJJJ-I.png, scores each by what the annotator judge sees
// of what the caption states (JudgeEach's marks, by score: Marks.MeanAcc
// or Marks.Share) and
// writes every pair of different scores (PreferencePairs) to
// dir/prefs.jsonl as {"prompt", "chosen", "rejected"} (paths relative to
// dir; golem imagine dpo's input) with both scores. The annotator must
// not be the judge the tuned model is evaluated by: tuning on the
// metric's own judge would make the metric measure the tuning.
func ImagePrefs(m *dalle.Model, annotator *resnet.Grid, items []JudgeItem, o imagine.Options, score func(Marks) float64, dir string) (PrefStats, error) {
	var st PrefStats
	if o.Rerank != nil {
		return st, fmt.Errorf("imagine prefs: no reranking: every sample is compared")
	}
	if err := os.MkdirAll(filepath.Join(dir, "images"), 0o755); err != nil {
		return st, err
	}
	var out bytes.Buffer
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
		marks, err := JudgeEach(annotator, drawn, len(drawn))
		if err != nil {
			return st, err
		}
		scores := make([]float64, len(marks))
		for i, mk := range marks {
			scores[i] = score(mk)
			st.Mean += scores[i]
			samples++
		}
		pairs := PreferencePairs(scores)
		if len(pairs) == 0 {
			st.Ties++
		}
		for _, p := range pairs {
			l, _ := json.Marshal(imagePrefLine{Prompt: it.Caption, Chosen: names[p[0]], Rejected: names[p[1]], ChosenScore: scores[p[0]], RejectedScore: scores[p[1]]})
			out.Write(append(l, '\n'))
			st.Chosen += scores[p[0]]
			st.Rejected += scores[p[1]]
			st.Pairs++
		}
	}
	st.Mean /= float64(max(samples, 1))
	st.Chosen /= float64(max(st.Pairs, 1))
	st.Rejected /= float64(max(st.Pairs, 1))
	return st, atomicfile.WriteFile(filepath.Join(dir, "prefs.jsonl"), out.Bytes())
}
