package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/signal"
	"reflect"
	"strings"

	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/eval"
	"github.com/golem-ml/golem/model/resnet"
	"github.com/golem-ml/golem/train"
)

func init() {
	register("vision judge train", "train the shapes world's attribute judge: a ResNet reading each cell of the 3x3 grid (object or not, colour, shape, size)", runJudgeTrain)
	register("eval judge", "the attributes of images (colour, shape, count, position) judged against their captions' scenes (prints colour_acc shape_acc count_acc position_acc last)", runEvalJudge)
}

func runJudgeTrain(args []string) error {
	fs := newFlags("vision judge train", `golem vision judge train --data shapes --out judge --steps 600`)
	data := fs.String("data", "", "a shapes world folder (golem data shapes' --out): trains on its train split's scenes (required)")
	out := fs.String("out", "", "model folder to write: config.json, model.safetensors, metrics.jsonl (required)")
	evalSplit := fs.String("eval-split", "test", "the split whose cells are scored at each evaluation (val_acc_occupied, _colour, _shape, _size); empty for none")
	model := fs.String("model", "", "a judge folder to start from (default: a new --config judge)")
	config := fs.String("config", "tiny", "the new judge's ResNet: "+strings.Join(resnet.PresetNames(), ", "))
	image := fs.Int("image-size", 32, "the new judge's input side: images are fit to it")
	vq := fs.String("vq", "", "a VQ-VAE folder (golem vq train): half of each batch are its reconstructions of the training images, as a generator over its tokens draws them")
	batch := fs.Int("batch", 64, "images per micro-batch")
	steps := fs.Int("steps", 600, "optimizer steps")
	lr := fs.Float64("lr", 2e-3, "peak learning rate, cosine to a tenth")
	warmup := fs.Int("warmup", 20, "warmup steps")
	wd := fs.Float64("weight-decay", 1e-4, "weight decay on matrices and convolution kernels")
	evalEvery := fs.Int("eval-every", 200, "evaluate every N steps, 0 = at the end")
	saveEvery := fs.Int("save-every", 0, "also checkpoint every N steps into OUT/trainer/step-N, 0 = at the end and on Ctrl-C")
	resume := fs.Bool("resume", false, resumeHelp)
	seed := fs.Uint64("seed", defaultSeed, "random seed (initialisation, batches, augmentations)")
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if err := required(fs, "data", "out"); err != nil {
		return err
	}
	rc, ok := resnet.Presets()[*config]
	if !ok {
		return usageError{fmt.Errorf("vision judge train: unknown --config %q (have %s)", *config, strings.Join(resnet.PresetNames(), ", "))}
	}
	rc.Channels, rc.ImageSize = 3, *image
	trainEx, err := judgeExamples(*data, "train")
	if err != nil {
		return err
	}
	var evalEx []train.CellExample
	if *evalSplit != "" {
		if evalEx, err = judgeExamples(*data, *evalSplit); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := train.Judge(ctx, train.JudgeOptions{Backend: be, Train: trainEx, Eval: evalEx, Init: *model, VQ: *vq, Batch: *batch, Recolour: shapes.Recolour,
		Model: resnet.GridConfig{Backbone: rc, Grid: 3, ImageSize: *image, Heads: eval.ShapesJudgeHeads()},
		Loop: train.Config{Steps: *steps, LR: *lr, Warmup: *warmup, WeightDecay: *wd, Beta2: 0.999, Clip: 1,
			EvalEvery: *evalEvery, SaveEvery: *saveEvery, Seed: *seed, Out: *out, Resume: *resume}})
	if err != nil {
		return err
	}
	fmt.Printf("judge saved to %s (%d steps, %.0fs)\n", *out, res.Step, res.Seconds)
	if len(res.Eval) > 0 {
		fmt.Printf("%s cells: val_acc_occupied=%.4f val_acc_colour=%.4f val_acc_shape=%.4f val_acc_size=%.4f\n", *evalSplit,
			res.Eval["val_acc_occupied"], res.Eval["val_acc_colour"], res.Eval["val_acc_shape"], res.Eval["val_acc_size"])
	}
	fmt.Printf("loss=%.4f\n", res.Loss)
	return interrupted(res.Interrupted, res.Step, *out)
}

// judgeExamples are a shapes world split's images with their cells'
// labels.
func judgeExamples(dir, split string) ([]train.CellExample, error) {
	images, labels, err := shapes.SplitCells(dir, split)
	if err != nil {
		return nil, err
	}
	ex := make([]train.CellExample, len(images))
	for i := range images {
		ex[i] = train.CellExample{Image: images[i], Labels: labels[i]}
	}
	return ex, nil
}

func runEvalJudge(args []string) error {
	fs := newFlags("eval judge", `golem eval judge --judge judge --data shapes/heldout.jsonl`)
	judge := fs.String("judge", "", "a judge folder (golem vision judge train's --out) (required)")
	data := fs.String("data", "", `JSONL of {"image", "caption", "scene": {"objects": [...]}} (what a generator writes), or a shapes world's {split}.jsonl, its scenes read from {split}_scenes.jsonl beside it; or several, comma-separated, independent draws for the same captions in the same order, judged together, one caption's images in all of them one cluster of --baseline's errors (required)`)
	limit := fs.Int("limit", 0, "judge only the first N images of each file (0 = all)")
	jsonOut := fs.String("json", "", "append the result to this JSON file (an array, for the report card)")
	baseline := fs.String("baseline", "", "another file of images drawn for the same captions in the same order (another model's, or the first samples against the reranked picks), or as many as --data names, each paired with its --data file: also prints each attribute's accuracy minus the baseline's with its standard error, paired by caption, and the mean of those of colour, shape, count and position (each attribute weighing the same) with its own")
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if err := required(fs, "judge", "data"); err != nil {
		return err
	}
	items, clusters, err := readDraws(strings.Split(*data, ","), *limit, "--data")
	if err != nil {
		return err
	}
	var base []eval.JudgeItem
	if *baseline != "" {
		dataFiles, baseFiles := strings.Split(*data, ","), strings.Split(*baseline, ",")
		if len(baseFiles) != len(dataFiles) {
			return usageError{fmt.Errorf("eval judge: --data names %d files, --baseline %d: want one baseline file a data file", len(dataFiles), len(baseFiles))}
		}
		if base, _, err = readDraws(baseFiles, *limit, "--baseline"); err != nil {
			return err
		}
		// Every data file lists the first one's captions, every baseline
		// file the first baseline's: the first two decide.
		if err := sameCaptions(dataFiles[0], items[:len(items)/len(dataFiles)], baseFiles[0], base[:len(base)/len(baseFiles)], "--baseline"); err != nil {
			return err
		}
	}
	g, err := resnet.LoadGrid(be, *judge)
	if err != nil {
		return err
	}
	res, err := eval.Judge(g, items, 64)
	if err != nil {
		return fmt.Errorf("eval judge: %s: %w", *data, err)
	}
	acc := func(m eval.Marks, a string) string {
		if v := m.Acc(a); !math.IsNaN(v) {
			return fmt.Sprintf("%.4f", v)
		}
		return "-"
	}
	fmt.Printf("%-10s %6s", "captions", "images")
	for _, a := range eval.JudgeAttrs {
		fmt.Printf(" %8s", a)
	}
	fmt.Println()
	row := func(name string, n int, m eval.Marks) {
		fmt.Printf("%-10s %6d", name, n)
		for _, a := range eval.JudgeAttrs {
			fmt.Printf(" %8s", acc(m, a))
		}
		fmt.Println()
	}
	row("all", res.Images, res.All)
	row("seen", res.Images-res.HeldOutImages, res.Seen)
	row("heldout", res.HeldOutImages, res.HeldOut)
	for _, k := range []shapes.CaptionKind{shapes.Listing, shapes.Counting, shapes.Relating} {
		if m, ok := res.Kinds[k.String()]; ok {
			row(k.String(), res.KindImages[k.String()], m)
		}
	}
	if base != nil {
		b, err := eval.Judge(g, base, 64)
		if err != nil {
			return fmt.Errorf("eval judge: %s: %w", *baseline, err)
		}
		captions := 0
		if len(clusters) > 0 {
			captions = clusters[len(clusters)-1] + 1
		}
		fmt.Printf("against --baseline %s, paired over %d captions (difference, standard error clustered by caption):", *baseline, captions)
		for _, a := range eval.JudgeAttrs {
			d, se, _, ok, err := eval.JudgeDiff(b.Each, res.Each, a, clusters)
			if err != nil {
				return fmt.Errorf("eval judge: --baseline %s: %w", *baseline, err)
			}
			if ok {
				fmt.Printf(" %s %+.4f (SE %.4f)", a, d, se)
			}
		}
		if d, se, ok, err := eval.JudgeMeanDiff(b.Each, res.Each, eval.MeanAttrs, clusters); err == nil && ok {
			fmt.Printf(" mean(%s) %+.4f (SE %.4f)", strings.Join(eval.MeanAttrs, ","), d, se)
		}
		fmt.Println()
	}
	if *jsonOut != "" {
		if err := eval.AppendJSON(*jsonOut, res.Record(*judge, *data)); err != nil {
			return err
		}
	}
	fmt.Printf("colour_acc=%s shape_acc=%s count_acc=%s position_acc=%s\n", acc(res.All, "colour"), acc(res.All, "shape"), acc(res.All, "count"), acc(res.All, "position"))
	return nil
}

// sameCaptions checks that two judge files list the same captions of the
// same scenes in the same order, as JudgeDiff needs; the error names
// the first line that differs.
func sameCaptions(data string, items []eval.JudgeItem, baseline string, base []eval.JudgeItem, flag string) error {
	for j := range min(len(items), len(base)) {
		if items[j].Caption != base[j].Caption || !reflect.DeepEqual(items[j].Scene, base[j].Scene) {
			return fmt.Errorf("eval judge: %s:%d is drawn for %q, %s:%d for %q: %s must list the same captions of the same scenes in the same order",
				data, items[j].Line, items[j].Caption, baseline, base[j].Line, base[j].Caption, flag)
		}
	}
	if len(items) != len(base) {
		return fmt.Errorf("eval judge: %s has %d images, %s %s %d: want the same captions in the same order", data, len(items), flag, baseline, len(base))
	}
	return nil
}

// readDraws reads files, independent draws for the same captions in the
// same order (the first limit images of each, 0 = all), one after the
// other, and numbers their images by caption for JudgeDiff: eval.Clusters
// of the first file, the same for every file, so one caption's images in
// all the draws are one cluster. A file of other captions or of another
// length is refused naming it and the line (flag: the flag that named
// them).
func readDraws(files []string, limit int, flag string) ([]eval.JudgeItem, []int, error) {
	var items []eval.JudgeItem
	var first []eval.JudgeItem
	var clusters, c []int
	for k, f := range files {
		it, err := eval.ReadJudgeItems(f)
		if err != nil {
			return nil, nil, err
		}
		if limit > 0 && limit < len(it) {
			it = it[:limit]
		}
		if k == 0 {
			first, c = it, eval.Clusters(it)
		} else if err := sameCaptions(files[0], first, f, it, flag); err != nil {
			return nil, nil, err
		}
		items, clusters = append(items, it...), append(clusters, c...)
	}
	return items, clusters, nil
}
