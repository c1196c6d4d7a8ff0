package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"

	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/eval"
	"github.com/golem-ml/golem/model/clip"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tokenizer"
	"github.com/golem-ml/golem/train"
)

func init() {
	register("clip train", "train a CLIP model on image-caption pairs (symmetric InfoNCE)", runCLIPTrain)
	register("clip zeroshot", "zero-shot classification of labelled images with prompt templates (prints zeroshot_acc=X last)", runCLIPZeroShot)
	register("clip retrieve", "image-text retrieval Recall@1/5/10 both ways (prints i2t_r1 i2t_r5 t2i_r1 t2i_r5 last)", runCLIPRetrieve)
}

const clipDataHelp = "images with captions or labels: JSONL {\"image\",\"caption\"|\"label\"}, COCO captions .json, a .tar shard or (zeroshot) a folder of class subfolders"

func clipPresetNames() string {
	var n []string
	for k := range train.CLIPPresets() {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

func runCLIPTrain(args []string) error {
	fs := newFlags("clip train", `golem clip train --data shapes/train.jsonl --eval-data shapes/test.jsonl --tokenizer bpe_simple_vocab_16e6.txt.gz --out clip-shapes`)
	data := fs.String("data", "", clipDataHelp+" (required)")
	evalData := fs.String("eval-data", "", "images with captions to report retrieval Recall@1 on at each evaluation")
	out := fs.String("out", "", "model folder to write (required)")
	model := fs.String("model", "", "a CLIPModel folder to start from (default: a new --config model)")
	config := fs.String("config", "tiny", "the new model: "+clipPresetNames())
	image := fs.Int("image-size", 0, "the new model's image side in pixels (default: the --config's, tiny: 32)")
	tok := fs.String("tokenizer", "", "CLIP's bpe_simple_vocab_16e6.txt[.gz] (default: --model's)")
	batch := fs.Int("batch", 64, "image-text pairs per micro-batch (the negatives of each pair)")
	steps := fs.Int("steps", 400, "optimizer steps")
	accum := fs.Int("accum", 1, "micro-batches per step")
	lr := fs.Float64("lr", 1e-3, "peak learning rate")
	minLR := fs.Float64("min-lr", 1e-4, "final learning rate")
	warmup := fs.Int("warmup", 20, "warmup steps")
	decay := fs.Int("decay-steps", 0, "cosine decay length (default: --steps)")
	wd := fs.Float64("weight-decay", 0.1, "weight decay, matrices only")
	clipNorm := fs.Float64("clip", 1, "gradient-norm clip, 0 = off")
	evalEvery := fs.Int("eval-every", 100, "evaluate every N steps, 0 = at the end")
	saveEvery := fs.Int("save-every", 0, "also checkpoint every N steps into OUT/trainer/step-N, 0 = at the end and on Ctrl-C")
	resume := fs.Bool("resume", false, resumeHelp)
	seed := fs.Uint64("seed", defaultSeed, "random seed")
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if *data == "" || *out == "" {
		return usageError{fmt.Errorf("clip train: need --data SPEC and --out DIR (golem clip train --help)")}
	}
	mc, ok := train.CLIPPresets()[*config]
	if !ok {
		return usageError{fmt.Errorf("clip train: unknown --config %q (have %s)", *config, clipPresetNames())}
	}
	if *image > 0 {
		mc.Vision.Image = *image
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := train.CLIP(ctx, train.CLIPOptions{Backend: be, Data: *data, EvalData: *evalData, Init: *model, Model: mc, Tokenizer: *tok, Batch: *batch,
		Loop: train.Config{Steps: *steps, Accum: *accum, LR: *lr, MinLR: *minLR, Warmup: *warmup, DecaySteps: *decay, WeightDecay: *wd, Beta2: 0.98, Clip: *clipNorm,
			EvalEvery: *evalEvery, SaveEvery: *saveEvery, Seed: *seed, Out: *out, Resume: *resume},
		Evaluate: func(m *clip.Model, tok *tokenizer.CLIP, set *vision.CLIPSet) (map[string]float64, error) {
			res, err := eval.CLIPRetrieval(m, tok, set, 128)
			if err != nil {
				return nil, err
			}
			return map[string]float64{"val_i2t_r1": res.ImageToText[1], "val_t2i_r1": res.TextToImage[1]}, nil
		}})
	if err != nil {
		return err
	}
	fmt.Printf("model saved to %s (%d steps, %.0fs)\n", *out, res.Step, res.Seconds)
	fmt.Printf("loss=%.4f\n", res.Loss)
	return interrupted(res.Interrupted, res.Step, *out)
}

// clipEvalFlags are the flags zeroshot and retrieve share.
type clipEvalFlags struct {
	model, data, tok *string
	batch            *int
	dev              deviceFlag
}

func addCLIPEvalFlags(fs *flag.FlagSet) clipEvalFlags {
	return clipEvalFlags{
		model: fs.String("model", "", "a CLIPModel folder (golem clip train's --out; required)"),
		data:  fs.String("data", "", clipDataHelp+" (required)"),
		tok:   fs.String("tokenizer", "", "CLIP's bpe_simple_vocab_16e6.txt[.gz] (default: the --model folder's)"),
		batch: fs.Int("batch", 128, "images or texts per forward pass"),
		dev:   addDeviceFlag(fs),
	}
}

// load parses the flags and loads the model, its tokenizer and the data
// prepared for it.
func (f clipEvalFlags) load(fs *flag.FlagSet, args []string) (*clip.Model, *tokenizer.CLIP, *vision.CLIPSet, vision.Dataset, error) {
	be, err := f.dev.parse(fs, args)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if *f.model == "" || *f.data == "" {
		return nil, nil, nil, nil, usageError{fmt.Errorf("%s: need --model DIR and --data SPEC (golem %s --help)", fs.Name(), fs.Name())}
	}
	if *f.batch < 1 {
		return nil, nil, nil, nil, usageError{fmt.Errorf("%s: --batch %d: want at least 1", fs.Name(), *f.batch)}
	}
	m, err := clip.Load(be, *f.model)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	nn.FreezeBuffers(m.Params(), nn.MaxFrozenBytes) // inference only: every batch reads the same weights
	var tok *tokenizer.CLIP
	if *f.tok != "" {
		tok, err = tokenizer.LoadCLIP(*f.tok)
	} else {
		tok, err = tokenizer.LoadCLIPDir(*f.model)
	}
	if err != nil {
		return nil, nil, nil, nil, err
	}
	ds, err := vision.Open(*f.data, vision.Limits{})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	set, err := vision.LoadCLIPSet(ds, m.Config.Vision.Image, m.Config.Vision.Channels)
	if err != nil {
		ds.Close()
		return nil, nil, nil, nil, err
	}
	return m, tok, set, ds, nil
}

func runCLIPZeroShot(args []string) error {
	fs := newFlags("clip zeroshot", `golem clip zeroshot --model clip-shapes --data shapes/classes --template "a photo of a {}."`)
	f := addCLIPEvalFlags(fs)
	classes := fs.String("classes", "", "class names by label, comma-separated (default: a class folder's subfolder names, _ read as a space)")
	perClass := fs.Bool("per-class", false, "also print each class's accuracy (the shapes world's held-out colour-shape pairs apart from the rest)")
	var templates listFlag
	fs.Var(&templates, "template", `prompt template, "{}" the class name (repeatable: the prompts' embeddings are averaged; default "a photo of a {}.")`)
	m, tok, set, ds, err := f.load(fs, args)
	if err != nil {
		return err
	}
	defer ds.Close()
	names := vision.Classes(ds)
	if *classes != "" {
		names = strings.Split(*classes, ",")
		for i := range names {
			names[i] = strings.TrimSpace(names[i])
		}
	}
	if len(names) == 0 {
		return usageError{fmt.Errorf("clip zeroshot: %s is not a class folder: pass --classes NAME,NAME,... (label 0 first)", *f.data)}
	}
	for i := range names {
		names[i] = strings.ReplaceAll(names[i], "_", " ")
	}
	if len(templates) == 0 {
		templates = listFlag{"a photo of a {}."}
	}
	res, err := eval.CLIPZeroShot(m, tok, set, names, templates, *f.batch)
	if err != nil {
		return fmt.Errorf("clip zeroshot: %s: %w", *f.data, err)
	}
	if *perClass {
		n, ok := make([]int, len(names)), make([]int, len(names))
		for i, l := range set.Labels {
			n[l]++
			if res.Pred[i] == l {
				ok[l]++
			}
		}
		for c, name := range names {
			if n[c] > 0 {
				fmt.Printf("  %-24s %d/%d\n", name, ok[c], n[c])
			}
		}
	}
	fmt.Printf("%d images, %d classes, %d templates: %d correct (chance %.4f)\n", res.N, len(names), len(templates), res.Correct, res.Chance)
	fmt.Printf("zeroshot_acc=%.4f\n", res.Acc)
	return nil
}

func runCLIPRetrieve(args []string) error {
	fs := newFlags("clip retrieve", `golem clip retrieve --model clip-shapes --data shapes/test.jsonl`)
	f := addCLIPEvalFlags(fs)
	m, tok, set, ds, err := f.load(fs, args)
	if err != nil {
		return err
	}
	defer ds.Close()
	res, err := eval.CLIPRetrieval(m, tok, set, *f.batch)
	if err != nil {
		return fmt.Errorf("clip retrieve: %s: %w", *f.data, err)
	}
	fmt.Printf("%d images, %d texts: i2t_r10=%.4f t2i_r10=%.4f\n", res.Images, res.Texts, res.ImageToText[10], res.TextToImage[10])
	fmt.Printf("i2t_r1=%.4f i2t_r5=%.4f t2i_r1=%.4f t2i_r5=%.4f\n", res.ImageToText[1], res.ImageToText[5], res.TextToImage[1], res.TextToImage[5])
	return nil
}
