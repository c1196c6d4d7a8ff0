package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"

	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/eval"
	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/generate/imagine"
	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/model/clip"
	"github.com/golem-ml/golem/model/dalle"
	"github.com/golem-ml/golem/model/resnet"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tokenizer"
	"github.com/golem-ml/golem/train"
)

func init() {
	register("imagine train", "train a text-to-image transformer over a VQ-VAE's image tokens (DALL-E's recipe)", runImagineTrain)
	register("imagine", "draw images for a prompt with a text-to-image model, optionally reranked by CLIP", runImagine)
	register("imagine prefs", "simulated image preferences: draw N images per caption and pair them as an annotator judge scores them", runImaginePrefs)
	register("imagine dpo", "preference-tune a text-to-image model by DPO on pairs of images drawn for a prompt", runImagineDPO)
}

// imagineFlags are the flags golem imagine and golem imagine prefs share:
// the model, how many captions and samples, and how each is drawn.
type imagineFlags struct {
	model                *string
	limit, n, topK, minN *int
	temp, topP, guidance *float64
	seed                 *uint64
}

// addImagineFlags adds them, --n of n samples by default and minN at
// least.
func addImagineFlags(fs *flag.FlagSet, n, minN int) imagineFlags {
	return imagineFlags{
		model:    fs.String("model", "", "a text-to-image folder (golem imagine train's --out; required)"),
		limit:    fs.Int("limit", 0, "with --prompts: draw for the first N captions only (0 = all)"),
		n:        fs.Int("n", n, fmt.Sprintf("samples a caption, %d to %d", minN, imagine.MaxN)),
		minN:     &minN,
		temp:     fs.Float64("temperature", 1, "sampling temperature (0 = greedy)"),
		topK:     fs.Int("top-k", 0, "keep the K most likely image tokens (0 = all)"),
		topP:     fs.Float64("top-p", 1, "nucleus sampling mass (1 = all)"),
		guidance: fs.Float64("guidance", 0, "classifier-free guidance scale S: logits = uncond + S*(cond - uncond) (0 = off)"),
		seed:     fs.Uint64("seed", defaultSeed, "random seed (caption j's sample i draws with seed + j*N + i; one --prompt's with seed + i)"),
	}
}

// options checks the flags' values (why: what --n's minimum is for) and
// returns them as imagine's options; errors start with cmd.
func (f imagineFlags) options(cmd, why string) (imagine.Options, error) {
	switch {
	case *f.limit < 0:
		return imagine.Options{}, usageError{fmt.Errorf("%s: --limit %d, want 0 (all) or more", cmd, *f.limit)}
	case *f.n < *f.minN || *f.n > imagine.MaxN:
		return imagine.Options{}, usageError{fmt.Errorf("%s: --n %d, want %d to %d%s", cmd, *f.n, *f.minN, imagine.MaxN, why)}
	}
	o := imagine.Options{N: *f.n, Guidance: *f.guidance, Sampling: generate.Options{Temperature: *f.temp, TopK: *f.topK, TopP: *f.topP, Seed: *f.seed}}
	if err := o.Validate(); err != nil {
		return imagine.Options{}, usageError{err}
	}
	return o, nil
}

func runImaginePrefs(args []string) error {
	fs := newFlags("imagine prefs", `golem imagine prefs --model t2i-shapes --prompts shapes/train.jsonl --annotator annotator --n 4 --out-dir prefs`)
	sf := addImagineFlags(fs, 4, 2)
	prompts := fs.String("prompts", "", `the captions to draw for: a shapes world's {split}.jsonl ({split}_scenes.jsonl beside it) or a JSONL of {"image", "caption", "scene"} lines (required)`)
	annotator := fs.String("annotator", "", "the simulated annotator: a shapes-world judge (golem vision judge train's --out) trained apart from the one the results are scored by (required)")
	outDir := fs.String("out-dir", "", `folder to write: images/NNNNNN-I.png (every sample) and prefs.jsonl, {"prompt", "chosen", "rejected"} a pair (what golem imagine dpo reads; required)`)
	score := fs.String("score", "mean", "how the annotator scores a sample: mean (each stated attribute's accuracy, averaged: the count weighs as much as the colours) or share (the share of all its marks right: one per object and attribute, one for the count)")
	pairs := fs.String("pairs", "count", "which pairs to make: count (count first, as a person would judge: the sample whose number of shapes is nearer the caption's wins whatever its other marks, of two as near the higher score), exact (the dominant pairs whose chosen sample has as many shapes as the caption states, where it states a number), dominant (a pair only where the chosen sample is no worse on any stated attribute and its number of shapes no further from the stated number, nothing traded away, and better in one of them), beyond-clip (the dominant pairs whose two samples have the same colour marks and both the caption's number of shapes, what CLIP's reranking picks by, so they differ in shape, position or size alone), anchored (the beyond-clip pairs and count anchors: a sample with the caption's number of shapes over one with another number and no more colours right, at most as many as the beyond-clip pairs, so DPO does not drift toward extra shapes) or all (every two samples of different scores)")
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if err := required(fs, "model", "prompts", "annotator", "out-dir"); err != nil {
		return err
	}
	o, err := sf.options("imagine prefs", " (a pair needs two samples)")
	if err != nil {
		return err
	}
	scorer := map[string]func(eval.Marks) float64{"mean": eval.Marks.MeanAcc, "share": eval.Marks.Share}[*score]
	if scorer == nil {
		return usageError{fmt.Errorf("imagine prefs: --score %q, want mean or share", *score)}
	}
	if !slices.Contains(eval.PairRules, *pairs) {
		return usageError{fmt.Errorf("imagine prefs: --pairs %q, want %s", *pairs, strings.Join(eval.PairRules, ", "))}
	}
	m, err := dalle.Load(be, *sf.model)
	if err != nil {
		return err
	}
	g, err := resnet.LoadGrid(be, *annotator)
	if err != nil {
		return fmt.Errorf("imagine prefs: --annotator: %w", err)
	}
	nn.FreezeBuffers(append(m.Params(), m.VQ.Params()...), nn.MaxFrozenBytes) // the drawer samples, never trains
	items, err := eval.ReadJudgeItems(*prompts)
	if err != nil {
		return err
	}
	if *sf.limit > 0 && *sf.limit < len(items) {
		items = items[:*sf.limit]
	}
	st, err := eval.ImagePrefs(m, g, items, o, eval.PrefOptions{Score: scorer, Pairs: *pairs}, *outDir)
	if err != nil {
		return err
	}
	traded := ""
	switch *pairs {
	case "count":
		traded = fmt.Sprintf("; in %d pairs the sample nearer the caption's number of shapes was chosen over a better-scored one", st.Traded)
	case "exact", "dominant":
		traded = fmt.Sprintf("; %d pairs left out where the better-scored sample was worse on an attribute or in its number of shapes", st.Traded)
	case "beyond-clip":
		traded = fmt.Sprintf("; %d pairs left out where the two differed in colour, either had the wrong number of shapes, or the better-scored sample was worse on an attribute", st.Traded)
	case "anchored":
		traded = fmt.Sprintf("; %d of them count anchors; %d pairs left out where the two differed in colour, either had the wrong number of shapes, or the better-scored sample was worse on an attribute", st.Anchors, st.Traded)
	}
	fmt.Printf("%d pairs from %d captions (%d samples each; %d captions gave none%s; mean annotator score %.3f, of the chosen %.3f, of the rejected %.3f) written to %s\n",
		st.Pairs, len(items), o.N, st.Ties, traded, st.Mean, st.Chosen, st.Rejected, filepath.Join(*outDir, "prefs.jsonl"))
	return nil
}

func runImagineDPO(args []string) error {
	fs := newFlags("imagine dpo", `golem imagine dpo --model t2i-shapes --data prefs/prefs.jsonl --out t2i-dpo`)
	model := fs.String("model", "", "the text-to-image folder (golem imagine train's --out): the policy's start and the frozen reference (required)")
	vq := fs.String("vq", "", "the VQ-VAE folder that tokenizes the images, when the model folder has no vq/ (default: the folder's own)")
	dataPath := fs.String("data", "", `image preferences, JSONL {"prompt": text, "chosen": image, "rejected": image} with paths relative to the file (golem imagine prefs, or the annotation app's export) (required)`)
	heldout := fs.String("heldout", "", "held-out preferences (default: --heldout-frac of the prompts of --data)")
	frac := fs.Float64("heldout-frac", 0.1, "share of prompts held out when --heldout is not given")
	beta := fs.Float64("beta", 0.1, "strength of the KL constraint")
	loss := fs.String("loss-type", "sigmoid", "sigmoid (DPO) or ipo")
	rpo := fs.Float64("rpo-alpha", 0, "add this times the chosen images' negative log-likelihood per image token to the loss (RPO; TRL's rpo_alpha)")
	batch := fs.Int("batch", 8, "pairs per micro-batch")
	decay := fs.Int("decay-steps", 0, "cosine decay length (default: --steps); --steps 150 --decay-steps 200 is the first 150 steps of a 200-step run")
	lf := addLoopFlags(fs, 200, 1e-4)
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if err := required(fs, "model", "data", "out"); err != nil {
		return err
	}
	switch {
	case *batch < 1:
		return usageError{fmt.Errorf("imagine dpo: --batch %d, want 1 or more", *batch)}
	case !(*beta > 0):
		return usageError{fmt.Errorf("imagine dpo: --beta %g, want above 0", *beta)}
	case !(*frac > 0 && *frac < 1):
		return usageError{fmt.Errorf("imagine dpo: --heldout-frac %g, want above 0 and below 1", *frac)}
	case *decay != 0 && *decay < *lf.steps:
		return usageError{fmt.Errorf("imagine dpo: --decay-steps %d, want 0 (--steps) or at least --steps %d", *decay, *lf.steps)}
	}
	loop := lf.config()
	loop.DecaySteps = *decay
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := train.ImagineDPO(ctx, train.ImagineDPOOptions{Backend: be, Model: *model, VQ: *vq, Data: *dataPath, EvalData: *heldout, HeldoutFrac: *frac,
		Beta: *beta, LossType: *loss, RPOAlpha: *rpo, Batch: *batch, Loop: loop})
	if err != nil {
		return err
	}
	fmt.Printf("model saved to %s (%d steps, %.0fs)\n", *lf.out, res.Step, res.Seconds)
	fmt.Printf("loss=%.4f val_accuracy=%s val_margin=%s\n", res.Loss, metric(res.Eval, "val_accuracy"), metric(res.Eval, "val_margin"))
	return interrupted(res.Interrupted, res.Step, *lf.out)
}

func runImagineTrain(args []string) error {
	fs := newFlags("imagine train", `golem imagine train --vq vq-shapes --data shapes/train.jsonl --eval-data shapes/test.jsonl --out t2i-shapes`)
	vq := fs.String("vq", "", "the VQ-VAE folder that tokenizes the images (golem vq train's --out; required for a new model)")
	data := fs.String("data", "", "training image-caption pairs: JSONL {\"image\",\"caption\"}, COCO captions .json or a .tar shard (required)")
	evalData := fs.String("eval-data", "", "held-out pairs: val_loss (image tokens given the caption) and val_loss_uncond (given none) at each evaluation")
	model := fs.String("model", "", "a text-to-image folder to start from (default: a new --config model)")
	config := fs.String("config", "tiny", "the new model: "+strings.Join(train.ImaginePresetNames(), ", "))
	textLength := fs.Int("text-length", 0, "the new model's text tokens per caption (default: the --config's, 48)")
	vocab := fs.Int("vocab-size", 0, "the new model's caption BPE vocabulary, trained on --data's captions (default: the --config's, 512)")
	batch := fs.Int("batch", 32, "image-caption pairs per micro-batch")
	drop := fs.Float64("caption-dropout", 0.1, "chance a training caption is left out (the unconditional input classifier-free guidance needs; 0 = never)")
	lf := addLoopFlags(fs, 1000, 1e-3)
	minLR := fs.Float64("min-lr", 1e-4, "final learning rate")
	wd := fs.Float64("weight-decay", 0.01, "weight decay on matrices")
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if err := required(fs, "data", "out"); err != nil {
		return err
	}
	p, ok := train.ImaginePresets()[*config]
	if !ok {
		return usageError{fmt.Errorf("imagine train: unknown --config %q (have %s)", *config, strings.Join(train.ImaginePresetNames(), ", "))}
	}
	if *textLength > 0 {
		p.TextLength = *textLength
	}
	if *vocab > 0 {
		p.Vocab = *vocab
	}
	switch {
	case *vq == "" && *model == "" && !*lf.resume:
		return usageError{fmt.Errorf("imagine train: a new model needs --vq DIR, the VQ-VAE that tokenizes its images (golem vq train)")}
	case *batch < 1:
		return usageError{fmt.Errorf("imagine train: --batch %d, want 1 or more", *batch)}
	case !(*drop >= 0 && *drop < 1):
		return usageError{fmt.Errorf("imagine train: --caption-dropout %g, want 0 or more and below 1", *drop)}
	}
	if *drop == 0 {
		*drop = -1 // ImagineOptions' "none"
	}
	cfg := lf.config()
	cfg.MinLR, cfg.WeightDecay, cfg.Beta2 = *minLR, *wd, 0.99
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := train.Imagine(ctx, train.ImagineOptions{Backend: be, VQ: *vq, Data: *data, EvalData: *evalData, Init: *model, Model: p,
		Batch: *batch, CaptionDropout: *drop, Loop: cfg})
	if err != nil {
		return err
	}
	fmt.Printf("model saved to %s (%d steps, %.0fs)\n", *lf.out, res.Step, res.Seconds)
	if v, ok := res.Eval["val_loss"]; ok {
		fmt.Printf("held-out: val_loss=%.4f val_loss_uncond=%.4f (per image token)\n", v, res.Eval["val_loss_uncond"])
	}
	fmt.Printf("loss=%.4f\n", res.Loss)
	return interrupted(res.Interrupted, res.Step, *lf.out)
}

func runImagine(args []string) error {
	fs := newFlags("imagine", `golem imagine --model t2i-shapes --prompt "one shape: a red circle" --n 8 --rerank clip-shapes --out circle.png`)
	sf := addImagineFlags(fs, 1, 1)
	prompt := fs.String("prompt", "", "what to draw (\"\" draws unconditionally)")
	out := fs.String("out", "", "the PNG to write: the reranked pick, or the first sample; with --n > 1 also OUT-grid.png, every sample (required without --prompts)")
	prompts := fs.String("prompts", "", `batch mode: draw for each caption of a shapes world's {split}.jsonl ({split}_scenes.jsonl beside it) or of a JSONL of {"image", "caption", "scene"} lines, into --out-dir`)
	outDir := fs.String("out-dir", "", "batch mode's folder: NNNNNN.png (the pick) and images.jsonl ({\"image\", \"caption\", \"scene\"}: what golem eval judge reads); with --rerank also first.jsonl, sample 0 of the same draws (the pick without reranking)")
	rerank := fs.String("rerank", "", "a CLIP model folder (golem clip train's --out, with its tokenizer): score each sample by CLIP and write the best")
	all := fs.Bool("all-samples", false, "batch mode: also write every sample, caption j's sample i as NNNNNN-sI.png, listed caption by caption in samples.jsonl (golem eval judge scores them all, its --baseline errors clustered by caption)")
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	batch := *prompts != "" || *outDir != ""
	switch {
	case batch && (*out != "" || *prompt != ""):
		return usageError{fmt.Errorf("imagine: --prompts and --out-dir (batch mode) go without --prompt and --out")}
	case *all && !batch:
		return usageError{fmt.Errorf("imagine: --all-samples goes with --prompts and --out-dir (batch mode)")}
	case batch:
		if err := required(fs, "model", "prompts", "out-dir"); err != nil {
			return err
		}
	default:
		if err := required(fs, "model", "out"); err != nil {
			return err
		}
	}
	o, err := sf.options("imagine", "")
	if err != nil {
		return err
	}
	m, err := dalle.Load(be, *sf.model)
	if err != nil {
		return err
	}
	if *rerank != "" {
		if o.Rerank, err = clip.Load(be, *rerank); err != nil {
			return fmt.Errorf("imagine: --rerank: %w", err)
		}
		if o.RerankTokenizer, err = tokenizer.LoadCLIPDir(*rerank); err != nil {
			return fmt.Errorf("imagine: --rerank: %w", err)
		}
	}
	// Inference only: every token's step reads the same weights, N (2N
	// with guidance) rows at a time.
	params := append(m.Params(), m.VQ.Params()...)
	if o.Rerank != nil {
		params = append(params, o.Rerank.Params()...)
	}
	nn.FreezeBuffers(params, nn.MaxFrozenBytes)
	if batch {
		return imagineBatch(m, o, *prompts, *outDir, *sf.limit, *all)
	}
	res, err := imagine.Images(m, *prompt, o)
	if err != nil {
		return err
	}
	if err := writePNG(*out, res.Images[res.Best]); err != nil {
		return err
	}
	for i, s := range res.Scores {
		fmt.Printf("sample %d: clip_score=%.4f\n", i, s)
	}
	if o.N > 1 {
		grid := strings.TrimSuffix(*out, filepath.Ext(*out)) + "-grid.png"
		if err := writePNG(grid, imagine.Grid(res.Images, res.Scores, res.Best)); err != nil {
			return err
		}
		fmt.Printf("%d samples written to %s\n", o.N, grid)
	}
	if res.Scores != nil {
		fmt.Printf("sample %d (the highest CLIP score, %.4f) written to %s\n", res.Best, res.Scores[res.Best], *out)
	} else {
		fmt.Printf("sample 0 written to %s\n", *out)
	}
	return nil
}

// judgeLine is a line of the files golem eval judge reads.
type judgeLine struct {
	Image   string      `json:"image"`
	Caption string      `json:"caption"`
	Scene   judgeObject `json:"scene"`
}

type judgeObject struct {
	Objects []shapes.ObjectRecord `json:"objects"`
}

// imagineBatch draws o.N samples for each caption of prompts (read as
// golem eval judge reads its data) and writes the pick of each into dir
// with images.jsonl; with o.Rerank also first.jsonl, sample 0 of the
// same draws: reranking picks among them, so the two files differ by the
// reranking alone; with all, samples.jsonl, every sample, caption by
// caption. Caption j's sample i draws with seed + j*N + i.
func imagineBatch(m *dalle.Model, o imagine.Options, prompts, dir string, limit int, all bool) error {
	items, err := eval.ReadJudgeItems(prompts)
	if err != nil {
		return err
	}
	if limit > 0 && limit < len(items) {
		items = items[:limit]
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var picks, firsts, samples bytes.Buffer
	line := func(b *bytes.Buffer, img string, it eval.JudgeItem) {
		j, _ := json.Marshal(judgeLine{Image: img, Caption: it.Caption, Scene: judgeObject{it.Scene.ObjectRecords()}})
		b.Write(append(j, '\n'))
	}
	seed := o.Sampling.Seed
	moved := 0
	for j, it := range items {
		o.Sampling.Seed = seed + uint64(j*o.N)
		res, err := imagine.Images(m, it.Caption, o)
		if err != nil {
			return fmt.Errorf("imagine: %s:%d: %w", prompts, it.Line, err)
		}
		name := fmt.Sprintf("%06d.png", j)
		if err := writePNG(filepath.Join(dir, name), res.Images[res.Best]); err != nil {
			return err
		}
		line(&picks, name, it)
		if o.Rerank != nil {
			first := name
			if res.Best != 0 {
				moved++
				first = fmt.Sprintf("%06d-0.png", j)
				if err := writePNG(filepath.Join(dir, first), res.Images[0]); err != nil {
					return err
				}
			}
			line(&firsts, first, it)
		}
		for i := range res.Images {
			if !all {
				break
			}
			name := fmt.Sprintf("%06d-s%d.png", j, i)
			if err := writePNG(filepath.Join(dir, name), res.Images[i]); err != nil {
				return err
			}
			line(&samples, name, it)
		}
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "images.jsonl"), picks.Bytes()); err != nil {
		return err
	}
	fmt.Printf("%d images (%d samples each) written to %s\n", len(items), o.N, filepath.Join(dir, "images.jsonl"))
	if o.Rerank != nil {
		if err := atomicfile.WriteFile(filepath.Join(dir, "first.jsonl"), firsts.Bytes()); err != nil {
			return err
		}
		fmt.Printf("CLIP picked another sample than the first for %d of %d captions; the first samples listed in %s\n", moved, len(items), filepath.Join(dir, "first.jsonl"))
	}
	if all {
		if err := atomicfile.WriteFile(filepath.Join(dir, "samples.jsonl"), samples.Bytes()); err != nil {
			return err
		}
		fmt.Printf("every sample (%d) listed in %s\n", len(items)*o.N, filepath.Join(dir, "samples.jsonl"))
	}
	return nil
}

func writePNG(path string, img image.Image) error {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b.Bytes())
}
