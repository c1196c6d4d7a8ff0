package demo

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/eval"
	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/train"
)

// The multimodal demo's human-feedback stage: after stage 2, the shapes
// world's simulated image rankings (golem data shapes' {split}_rankings
// .jsonl, which shapes.Write leaves in the world) train a reward model
// that sees, and DPO with RPO's term trains the instruct model on
// on-policy pairs: its own sampled descriptions of training scenes,
// scored by an annotator who knows each scene (eval.VLMDescriptionPrefs,
// golem data shapes-prefs --on descriptions), the description every
// answer is asked after; the DPO model is then scored beside the others. The
// settings are docs/multimodal.md's commands (golem reward, golem data
// shapes-prefs, golem dpo), so the demo's folder holds the models and
// files those commands make.

// MMRLHF is the human-feedback stage's numbers.
type MMRLHF struct {
	DPOPairs     int                 `json:"dpo_train_pairs"`   // train_description_prefs.jsonl
	DPOHeldout   int                 `json:"dpo_heldout_pairs"` // test_description_prefs.jsonl
	Sampled      eval.VLMPrefsResult `json:"dpo_train_sampled"` // how the training pairs came
	PrefsSeconds float64             `json:"prefs_seconds"`
	DPOAccuracy  float64             `json:"dpo_heldout_accuracy"`
	DPOMargin    float64             `json:"dpo_heldout_margin"`
	RMRankings   int                 `json:"rm_train_rankings"`   // train_rankings_sub.jsonl
	RMHeldout    int                 `json:"rm_heldout_rankings"` // test_rankings_sub.jsonl
	RM           train.RewardReport  `json:"reward_model"`
	ShorterWins  float64             `json:"shorter_wins_accuracy"` // the baseline on the RM's held-out pairs
	ShorterWinsN int                 `json:"shorter_wins_pairs"`
	DPOSeconds   float64             `json:"dpo_seconds"`
	RMSeconds    float64             `json:"rm_seconds"`
}

// rlhfSizes are the stage's steps and how much it labels: one simulated
// ranking in rankEvery (docs/multimodal.md's awk 'NR % 10 == 1'), and the
// training and test scenes the instruct model describes rlhfK times each
// for DPO's on-policy pairs (golem data shapes-prefs' --limit).
type rlhfSizes struct{ dpoSteps, rmSteps, evalEvery, rankEvery, prefScenes, prefTestScenes int }

func rlhfSizesOf(quick bool) rlhfSizes {
	if quick {
		return rlhfSizes{dpoSteps: 2, rmSteps: 2, evalEvery: 2, rankEvery: 2, prefScenes: 4, prefTestScenes: 2}
	}
	return rlhfSizes{dpoSteps: 150, rmSteps: 150, evalEvery: 50, rankEvery: 10, prefScenes: 300, prefTestScenes: 30}
}

// The on-policy pairs' sampling: rlhfK descriptions a scene at
// temperature rlhfTemp (golem data shapes-prefs' defaults).
const (
	rlhfK    = 4
	rlhfTemp = 1.0
)

// The reward model's learning rate (docs/multimodal.md: 5e-5), and
// DPO's settings (docs/multimodal.md: lr rlhfDPOLR, chosen among 5e-5,
// 1e-4 and 3e-4 on the test split's VQA, never on heldout; beta 0.1,
// RPO's term with alpha 1); 8 pairs a step.
const (
	rlhfLR, rlhfDPOLR, rlhfBeta, rlhfRPO = 5e-5, 1e-4, 0.1, 1.0
	rlhfBatch                            = 8
)

// mmRLHF runs the stage: the subsets of the world's simulated labels
// (world/{train,test}_{prefs,rankings}_sub.jsonl), the reward model in
// dir("reward") and DPO in dir("dpo"), both from dir("instruct").
func mmRLHF(ctx context.Context, o MMOptions, world string, dir func(...string) string, res *MMResult) error {
	sz := rlhfSizesOf(o.Quick)
	r := &MMRLHF{}
	files := map[string]string{}
	for _, f := range []struct {
		name  string
		every int
	}{{"train_rankings", sz.rankEvery}, {"test_rankings", sz.rankEvery}} {
		sub := filepath.Join(world, f.name+"_sub.jsonl")
		if err := everyNth(filepath.Join(world, f.name+".jsonl"), sub, f.every); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		files[f.name] = sub
	}
	read := func(name string) ([]data.Example, error) {
		ds, err := data.Read(files[name], data.ReadOptions{})
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		return ds.Examples, nil
	}
	rkTrain, err := read("train_rankings")
	if err != nil {
		return err
	}
	rkVal, err := read("test_rankings")
	if err != nil {
		return err
	}
	r.RMRankings, r.RMHeldout = len(rkTrain), len(rkVal)
	r.ShorterWins, r.ShorterWinsN = shorterWins(rkVal)
	loop := func(out string, steps int, lr float64) train.Config {
		return train.Config{Steps: steps, LR: lr, Clip: 1, EvalEvery: sz.evalEvery, Seed: o.Seed, Out: dir(out), Quiet: o.Quick, Progress: o.Log}
	}
	rmRes, rep, err := train.Reward(ctx, train.RewardOptions{Backend: o.NewBackend(), Model: dir("instruct"), Data: rkTrain, Heldout: rkVal, Batch: rlhfBatch,
		Loop: loop("reward", sz.rmSteps, rlhfLR), Log: o.Log})
	if err != nil {
		return fmt.Errorf("demo: reward: %w", err)
	}
	r.RM, r.RMSeconds = rep, rmRes.Seconds
	fmt.Fprintf(o.Log, "  reward model: held-out pair accuracy %.3f (%d pairs); the shorter answer wins %.3f\n", rep.Accuracy, rep.Pairs, r.ShorterWins)

	t0 := time.Now()
	for _, p := range []struct {
		split  string
		scenes int
		seed   uint64
	}{{"train", sz.prefScenes, o.Seed}, {"test", sz.prefTestScenes, o.Seed + 1}} {
		pr, err := onPolicyPrefs(o, dir("instruct"), world, p.split, p.scenes, p.seed)
		if err != nil {
			return err
		}
		files[p.split+"_description_prefs"] = filepath.Join(world, p.split+"_description_prefs.jsonl")
		if p.split == "train" {
			r.Sampled = pr
			fmt.Fprintf(o.Log, "  on-policy pairs: %d descriptions of %d training scenes sampled, mean score %.3f (greedy %.3f): %d pairs\n",
				pr.Samples, pr.Scenes, pr.ScoreSum/float64(max(pr.Samples, 1)), pr.GreedyScoreSum/float64(max(pr.Questions, 1)), pr.Pairs)
		}
	}
	r.PrefsSeconds = time.Since(t0).Seconds()
	prefTrain, err := read("train_description_prefs")
	if err != nil {
		return err
	}
	prefVal, err := read("test_description_prefs")
	if err != nil {
		return err
	}
	r.DPOPairs, r.DPOHeldout = len(prefTrain), len(prefVal)
	dres, err := train.DPO(ctx, train.DPOOptions{Backend: o.NewBackend(), Policy: dir("instruct"), Data: prefTrain, Heldout: prefVal, Beta: rlhfBeta, RPOAlpha: rlhfRPO, Batch: rlhfBatch,
		Loop: loop("dpo", sz.dpoSteps, rlhfDPOLR), Log: o.Log})
	if err != nil {
		return fmt.Errorf("demo: dpo: %w", err)
	}
	r.DPOAccuracy, r.DPOMargin, r.DPOSeconds = dres.Eval["val_accuracy"], dres.Eval["val_margin"], dres.Seconds
	for _, s := range []string{"reward", "dpo"} {
		res.Curves[s], _ = readMetrics(dir(s))
	}
	res.RLHF = r
	return nil
}

// onPolicyPrefs writes world/{split}_description_prefs.jsonl: the model
// in dir describes split's first scenes rlhfK times each, and the
// world's truth scores the descriptions (golem data shapes-prefs --on
// descriptions).
func onPolicyPrefs(o MMOptions, dir, world, split string, scenes int, seed uint64) (eval.VLMPrefsResult, error) {
	m, err := llava.Load(o.NewBackend(), dir)
	if err != nil {
		return eval.VLMPrefsResult{}, fmt.Errorf("demo: %w", err)
	}
	tok, err := llava.LoadTokenizer(dir, &m.Config)
	if err != nil {
		return eval.VLMPrefsResult{}, fmt.Errorf("demo: %w", err)
	}
	describe, end := eval.VLMImage(m, tok, vlmMaxTokens)
	sample, _ := eval.VLMImageSampled(m, tok, vlmMaxTokens, rlhfTemp, seed)
	res, err := eval.WriteVLMPrefs(filepath.Join(world, split+"_description_prefs.jsonl"), world, func(emit func(shapes.PreferenceRecord) error) (eval.VLMPrefsResult, error) {
		return eval.VLMDescriptionPrefs(world, split, scenes, rlhfK, describe, sample, end, emit)
	})
	if err != nil {
		return res, fmt.Errorf("demo: on-policy pairs: %w", err)
	}
	return res, nil
}

// everyNth writes every n-th line of src (the first, the n+1-th, ...) to
// dst, as awk 'NR % n == 1' does.
func everyNth(src, dst string, n int) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	var out bytes.Buffer
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	for i := 0; sc.Scan(); i++ {
		if i%n == 0 {
			out.Write(sc.Bytes())
			out.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	return atomicfile.WriteFile(dst, out.Bytes())
}

// shorterWins is the baseline a reward model must beat on ranked answers:
// of each pair, the answer of fewer characters wins (a tie counts half).
// It returns the share of the examples' pairs it orders as labelled, and
// the number of pairs.
func shorterWins(ex []data.Example) (float64, int) {
	text := func(ms []data.Message) int {
		n := 0
		for _, m := range ms {
			n += len(m.Content)
		}
		return n
	}
	var right float64
	n := 0
	for i := range ex {
		for _, p := range ex[i].Pairs() {
			c, r := text(p.Chosen), text(p.Rejected)
			switch {
			case c < r:
				right++
			case c == r:
				right += 0.5
			}
			n++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return right / float64(n), n
}

// rlhfChecks adds the stage's claim, the issue's "the RLHF'd VLM beats
// its SFT on held-out answers; held-out attribute combinations reported
// apart": the RLHF'd model answers more of the held-out scenes' questions
// (test: scenes never trained on, of the colour-shape pairs training has)
// right than its start, the instruct model, by more than noise: more than
// twice the standard error of the paired difference (the same questions
// asked of both: eval.PairedDiff over their marks), or, when the marks are
// not there (a result read back without them), of the difference of two
// accuracies on as many questions (sqrt(p1(1-p1)/n1 + p2(1-p2)/n2), as if
// the two were independent samples, which overstates the noise, so the
// check errs toward failing; on 1,574 questions near 0.38 that is 0.035).
// Either way 7 questions more (0.381 against 0.386) is noise and fails.
// The held-out combinations (heldout: a colour-shape pair never in
// training in each scene) are reported apart in the check's text, not
// held to it: feedback on training scenes never shows those pairs.
func rlhfChecks(r *MMResult, check func(string, bool)) {
	diff := func(split string) (d, se float64, what string, ok bool) {
		sft, rl := r.Eval("instruct", split), r.Eval("rlhf", split)
		if sft == nil || rl == nil || rl.Questions == 0 {
			return 0, 0, "", false
		}
		d, se, paired := eval.PairedDiff(sft.VLMResult, rl.VLMResult)
		what = "paired difference"
		if !paired {
			what = "difference"
			d = rl.VQA - sft.VQA
			if sft.Questions > 0 {
				se = math.Sqrt(sft.VQA*(1-sft.VQA)/float64(sft.Questions) + rl.VQA*(1-rl.VQA)/float64(rl.Questions))
			}
		}
		return d, se, what, true
	}
	d, se, what, ok := diff("test")
	if !ok {
		return
	}
	apart := ""
	if hd, hse, _, ok := diff("heldout"); ok {
		apart = fmt.Sprintf("; held-out colour-shape pairs, apart: %+.3f, 2 SE %.3f", hd, 2*hse)
	}
	check(fmt.Sprintf("RLHF beats SFT on held-out answers: VQA accuracy on the held-out scenes (test), the RLHF'd model above stage 2 by more than twice the standard error of the %s (%+.3f, 2 SE %.3f%s)", what, d, 2*se, apart),
		d > 2*se)
}

// rlhfReport adds the stage's section and curves to the report card.
func rlhfReport(rep *eval.Report, r *MMResult) {
	h := r.RLHF
	if h == nil {
		return
	}
	f := func(v float64) string { return fmt.Sprintf("%.3f", v) }
	rm := h.RM
	acc := "n/a"
	if rm.Pairs > 0 {
		acc = f(rm.Accuracy)
	}
	rep.Sections = append(rep.Sections, eval.Section{Title: "Human feedback: reward model and DPO on simulated image rankings",
		Text: fmt.Sprintf("The world's simulated rankings (golem data shapes' {split}_rankings.jsonl: each question's right answer above a wrong one of its kind above the scene's description given for an answer; the scene's description above the same with one object's colour changed, with its colour and shape changed, and another scene's), ranked as an annotator who sees the image would. The reward model (stage 2's model with a scalar head) trained on %d rankings of the training scenes (one in %d) and is scored on the %d pairs of %d rankings of the test scenes, beside the baseline \"the shorter answer wins\" on the same pairs. DPO's pairs are on-policy (golem data shapes-prefs --on descriptions): stage 2's model described each of %d training scenes %d times (temperature %g) besides its greedy description, the description every answer is asked after; an annotator who knows each scene scored each description (the mean of three marks: the share of the objects it names by colour and shape, the share it names with their place, and whether it describes as many objects as there are), mean %.3f (greedy %.3f), and each was chosen over each that scored lower (no pair for %d scenes whose descriptions all scored alike): %d pairs, written in %.0f s. DPO (lr %g, beta %g, RPO's term with alpha %g: the chosen descriptions' likelihood kept) from stage 2's model on them, its implicit reward scored on %d pairs made the same way on test scenes; the DPO model is the summary's \"after RLHF (DPO)\".",
			h.RMRankings, rlhfSizesOf(r.Quick).rankEvery, rm.Pairs, h.RMHeldout, h.Sampled.Scenes, rlhfK, rlhfTemp,
			h.Sampled.ScoreSum/float64(max(h.Sampled.Samples, 1)), h.Sampled.GreedyScoreSum/float64(max(h.Sampled.Questions, 1)), h.Sampled.AllRight, h.DPOPairs, h.PrefsSeconds, rlhfDPOLR, rlhfBeta, rlhfRPO, h.DPOHeldout),
		Table: &eval.Table{Header: []string{"model", "held-out pairs", "pairwise accuracy", "baseline: the shorter answer wins", "mean margin", "reward-length correlation", "seconds"},
			Rows: [][]string{
				{"reward model", fmt.Sprint(rm.Pairs), acc, f(h.ShorterWins), f(rm.Margin), f(rm.LengthCorr), fmt.Sprintf("%.0f", h.RMSeconds)},
				{"DPO (implicit reward)", fmt.Sprint(h.DPOHeldout), f(h.DPOAccuracy), "-", f(h.DPOMargin), "-", fmt.Sprintf("%.0f", h.DPOSeconds)},
			}}})
	series := func(stage string, keys ...string) []eval.Series { return curveSeries(r.Curves, stage, keys...) }
	addPlot(rep, "reward_model", "Reward model: loss, training and held-out pairwise accuracy", "reward", "loss / accuracy", series("reward", "loss", "train_accuracy", "accuracy"))
	addPlot(rep, "dpo_loss", "DPO: loss, held-out accuracy and margin", "dpo", "loss / accuracy / margin", series("dpo", "loss", "val_accuracy", "val_margin"))
}
