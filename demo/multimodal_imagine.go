package demo

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/eval"
	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/generate/imagine"
	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/model/clip"
	"github.com/golem-ml/golem/model/dalle"
	"github.com/golem-ml/golem/model/resnet"
	"github.com/golem-ml/golem/model/vqvae"
	"github.com/golem-ml/golem/tokenizer"
	"github.com/golem-ml/golem/train"
)

// t2iSizes are the text-to-image stage's knobs.
type t2iSizes struct {
	vqSteps, judgeSteps, t2iSteps int
	hidden, layers                int
	captions, n, grids            int
}

func t2iSizesOf(quick bool) t2iSizes {
	if quick {
		return t2iSizes{vqSteps: 2, judgeSteps: 2, t2iSteps: 2, hidden: 32, layers: 1, captions: 3, n: 2, grids: 1}
	}
	return t2iSizes{vqSteps: 300, judgeSteps: 120, t2iSteps: 200, hidden: 128, layers: 4, captions: 100, n: 8, grids: 3}
}

// ImagineResult is the text-to-image stage's numbers: the VQ-VAE's
// held-out PSNR, the judge's accuracy per attribute on the drawings of
// held-out captions (the first sample of each, and CLIP's pick of N), and
// grids of samples for the first prompts of each split.
type ImagineResult struct {
	PSNR     float64       `json:"vq_val_psnr"` // dB, on the test images
	Captions int           `json:"captions"`    // per split
	Samples  int           `json:"samples"`     // per caption
	Guidance float64       `json:"guidance"`
	Rows     []ImagineRow  `json:"rows"`
	Grids    []ImagineGrid `json:"grids"`
}

// ImagineRow is the judge's accuracy per attribute (eval.JudgeAttrs) on
// one split's drawings, picked one way ("first": sample 0; "rerank":
// CLIP's pick).
type ImagineRow struct {
	Split string             `json:"split"`
	Picks string             `json:"picks"`
	Acc   map[string]float64 `json:"accuracy"`
}

// ImagineGrid is a prompt's samples as one picture (imagine.Grid).
type ImagineGrid struct {
	Split  string    `json:"split"`
	Prompt string    `json:"prompt"`
	Image  string    `json:"image"` // relative to the demo's folder
	Scores []float64 `json:"clip_scores"`
	Best   int       `json:"best"`
}

// Mean is the row's accuracy averaged over colour, shape, count and
// position.
func (r ImagineRow) Mean() float64 {
	s, n := 0.0, 0
	for _, a := range []string{"colour", "shape", "count", "position"} {
		if v, ok := r.Acc[a]; ok && !math.IsNaN(v) {
			s, n = s+v, n+1
		}
	}
	return s / float64(max(n, 1))
}

// runImagine is the multimodal demo's text-to-image stage, after CLIP:
// a VQ-VAE on the world's training images (its PSNR on the test
// images), a judge (model/resnet's Grid, trained on the same images and
// half of them its reconstructions), a text-to-image transformer over
// its tokens, and N samples drawn with guidance for the first captions
// of test and heldout, scored by the judge as drawn first and as CLIP (the
// demo's, in OUT/clip) reranks them. Models go in OUT/{vq,judge,t2i},
// drawings in OUT/imagine.
func runImagine(ctx context.Context, o MMOptions, res *MMResult, world string, dir func(...string) string) error {
	sz, mm := t2iSizesOf(o.Quick), mmSizesOf(o.Quick)
	ir := &ImagineResult{Captions: sz.captions, Samples: sz.n, Guidance: 2}
	res.Imagine = ir
	loop := func(out string, steps int, lr float64) train.Config {
		return train.Config{Steps: steps, LR: lr, Warmup: max(1, steps/20), Clip: 1, Seed: o.Seed, Out: dir(out), Quiet: o.Quick, Progress: o.Log}
	}
	vc := vqvae.Presets()["tiny"]
	vc.ImageSize = mm.image
	vq, err := train.VQ(ctx, train.VQOptions{Backend: o.NewBackend(), Data: filepath.Join(world, "train.jsonl"), EvalData: filepath.Join(world, "test.jsonl"),
		Model: vc, Batch: 64, Loop: loop("vq", sz.vqSteps, 2e-3), Log: o.Log})
	if err != nil {
		return fmt.Errorf("demo: vq: %w", err)
	}
	ir.PSNR = vq.Eval["val_psnr"]
	images, labels, err := shapes.SplitCells(world, "train")
	if err != nil {
		return err
	}
	cells := make([]train.CellExample, len(images))
	for i := range images {
		cells[i] = train.CellExample{Image: images[i], Labels: labels[i]}
	}
	rc := resnet.Presets()["tiny"]
	rc.Channels, rc.ImageSize = 3, mm.image
	jl := loop("judge", sz.judgeSteps, 2e-3)
	jl.WeightDecay, jl.Beta2 = 1e-4, 0.999
	if _, err := train.Judge(ctx, train.JudgeOptions{Backend: o.NewBackend(), Train: cells, VQ: dir("vq"), Batch: 64, Recolour: shapes.Recolour,
		Model: resnet.GridConfig{Backbone: rc, Grid: 3, ImageSize: mm.image, Heads: eval.ShapesJudgeHeads()}, Loop: jl, Log: o.Log}); err != nil {
		return fmt.Errorf("demo: judge: %w", err)
	}
	p := train.ImaginePresets()["tiny"]
	p.Hidden, p.Layers = sz.hidden, sz.layers
	tl := loop("t2i", sz.t2iSteps, 1e-3)
	tl.MinLR, tl.WeightDecay, tl.Beta2 = 1e-4, 0.01, 0.99
	if _, err := train.Imagine(ctx, train.ImagineOptions{Backend: o.NewBackend(), VQ: dir("vq"), Data: filepath.Join(world, "train.jsonl"),
		EvalData: filepath.Join(world, "test.jsonl"), Model: p, Batch: 32, Loop: tl, Log: o.Log}); err != nil {
		return fmt.Errorf("demo: imagine train: %w", err)
	}
	be := o.NewBackend()
	m, err := dalle.Load(be, dir("t2i"))
	if err != nil {
		return err
	}
	g, err := resnet.LoadGrid(be, dir("judge"))
	if err != nil {
		return err
	}
	opt := imagine.Options{N: sz.n, Guidance: ir.Guidance, Sampling: generate.Options{Temperature: 1, Seed: o.Seed}}
	if opt.Rerank, err = clip.Load(be, dir("clip")); err != nil {
		return err
	}
	if opt.RerankTokenizer, err = tokenizer.LoadCLIPDir(dir("clip")); err != nil {
		return err
	}
	for _, split := range []string{"test", "heldout"} {
		items, err := eval.ReadJudgeItems(filepath.Join(world, split+".jsonl"))
		if err != nil {
			return err
		}
		items = items[:min(sz.captions, len(items))]
		first, picks := make([]eval.JudgeItem, len(items)), make([]eval.JudgeItem, len(items))
		for j, it := range items {
			opt.Sampling.Seed = o.Seed + uint64(j*sz.n)
			r, err := imagine.Images(m, it.Caption, opt)
			if err != nil {
				return fmt.Errorf("demo: imagine %q: %w", it.Caption, err)
			}
			first[j], picks[j] = it, it
			for _, f := range []struct {
				item *eval.JudgeItem
				k    int
			}{{&first[j], 0}, {&picks[j], r.Best}} {
				f.item.Image = dir("imagine", split, fmt.Sprintf("%06d-%d.png", j, f.k))
				if err := writeImagePNG(f.item.Image, r, f.k); err != nil {
					return err
				}
			}
			if j < sz.grids {
				name := filepath.ToSlash(filepath.Join("imagine", split, fmt.Sprintf("%06d-grid.png", j)))
				var b bytes.Buffer
				if err := png.Encode(&b, imagine.Grid(r.Images, r.Scores, r.Best)); err != nil {
					return err
				}
				if err := atomicfile.WriteFile(dir(name), b.Bytes()); err != nil {
					return err
				}
				ir.Grids = append(ir.Grids, ImagineGrid{Split: split, Prompt: it.Caption, Image: name, Scores: r.Scores, Best: r.Best})
			}
		}
		for _, f := range []struct {
			picks string
			items []eval.JudgeItem
		}{{"first", first}, {"rerank", picks}} {
			jr, err := eval.Judge(g, f.items, 64)
			if err != nil {
				return err
			}
			row := ImagineRow{Split: split, Picks: f.picks, Acc: map[string]float64{}}
			for _, a := range eval.JudgeAttrs {
				if v := jr.All.Acc(a); !math.IsNaN(v) {
					row.Acc[a] = v
				}
			}
			ir.Rows = append(ir.Rows, row)
			fmt.Fprintf(o.Log, "  %-7s %-6s colour %.3f  shape %.3f  count %.3f  position %.3f\n", split, f.picks, row.Acc["colour"], row.Acc["shape"], row.Acc["count"], row.Acc["position"])
		}
	}
	for _, s := range []string{"vq", "judge", "t2i"} {
		res.Curves[s], _ = readMetrics(dir(s))
	}
	return nil
}

// writeImagePNG writes sample k of r to path.
func writeImagePNG(path string, r *imagine.Result, k int) error {
	var b bytes.Buffer
	if err := png.Encode(&b, r.Images[k]); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b.Bytes())
}

// imagineCheck is the stage's check: CLIP's picks score higher than the
// first samples, averaged over colour, shape, count and position and
// over both splits.
func imagineCheck(r *ImagineResult) (string, bool) {
	var first, rerank float64
	for _, row := range r.Rows {
		if row.Picks == "first" {
			first += row.Mean()
		} else {
			rerank += row.Mean()
		}
	}
	return fmt.Sprintf("text to image: the judge's mean accuracy (colour, shape, count, position; test and heldout) of CLIP's pick of %d is above the first sample's (%.3f vs %.3f)", r.Samples, rerank/2, first/2), rerank > first
}

// imagineSections adds the text-to-image stage to the report: the
// judge's accuracies, the VQ-VAE's PSNR, the grids and the curves.
func imagineSections(rep *eval.Report, r *MMResult) {
	ir := r.Imagine
	if ir == nil {
		return
	}
	f := func(v float64) string { return fmt.Sprintf("%.3f", v) }
	t := eval.Table{Header: []string{"captions", "picks", "colour", "shape", "count", "position", "size", "mean"}}
	for _, row := range ir.Rows {
		cells := []string{row.Split, map[string]string{"first": "first sample", "rerank": fmt.Sprintf("CLIP's pick of %d", ir.Samples)}[row.Picks]}
		for _, a := range eval.JudgeAttrs {
			if v, ok := row.Acc[a]; ok {
				cells = append(cells, f(v))
			} else {
				cells = append(cells, "-")
			}
		}
		t.Rows = append(t.Rows, append(cells, f(row.Mean())))
	}
	rep.Sections = append(rep.Sections, eval.Section{Title: "Text to image",
		Text: fmt.Sprintf("A VQ-VAE (tiny) turns each image into a grid of codes (held-out PSNR %.2f dB on the test images); a text-to-image transformer over the caption's tokens and the codes draws %d samples for each of the first %d captions of test and of heldout (held-out colour-shape pairs) with classifier-free guidance %g; a separately trained judge (a ResNet reading each cell of the 3x3 grid, trained on the training images and the VQ-VAE's reconstructions of them) scores what each caption states: colour, shape and size of each object, the count, the positions. The first sample of each caption against CLIP's pick (the demo's CLIP model, the highest image-caption cosine of the %d).",
			ir.PSNR, ir.Samples, ir.Captions, ir.Guidance, ir.Samples), Table: &t})
	var figs []eval.Figure
	for _, g := range ir.Grids {
		scores := make([]string, len(g.Scores))
		for i, s := range g.Scores {
			scores[i] = fmt.Sprintf("%.3f", s)
		}
		figs = append(figs, eval.Figure{Name: g.Image, Src: g.Image,
			Caption: fmt.Sprintf("%s: %q\nCLIP scores %s; the pick (framed): sample %d", g.Split, g.Prompt, strings.Join(scores, " "), g.Best)})
	}
	rep.Sections = append(rep.Sections, eval.Section{Title: "Drawings: prompt, samples, CLIP's pick", Figures: figs})
	series := func(stage string, keys ...string) []eval.Series { return curveSeries(r.Curves, stage, keys...) }
	addPlot(rep, "vq_psnr", "VQ-VAE: reconstruction PSNR", "vq", "PSNR (dB)", series("vq", "psnr", "val_psnr"))
	addPlot(rep, "t2i_loss", "Text to image: image-token loss", "t2i", "loss (nats per image token)", series("t2i", "loss", "val_loss", "val_loss_uncond"))
}
