package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/data/synth/shapes"
	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/eval"
	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/internal/plot"
	"github.com/golem-ml/golem/model/clip"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/model/load"
	"github.com/golem-ml/golem/tokenizer"
	"github.com/golem-ml/golem/train"
)

// mmSizes are the multimodal demo's knobs.
type mmSizes struct {
	train, test, perClass, image     int
	clipSteps, clipBatch             int
	lmLayers, lmHidden, lmBlock      int
	lmSteps, lmBatch, vocab          int
	alignSteps, instructSteps, batch int
	evalScenes, samples              int
}

func mmSizesOf(quick bool) mmSizes {
	if quick {
		return mmSizes{train: 24, test: 4, perClass: 1, image: 16, clipSteps: 2, clipBatch: 8,
			lmLayers: 1, lmHidden: 32, lmBlock: 512, lmSteps: 3, lmBatch: 4, vocab: 300,
			alignSteps: 2, instructSteps: 2, batch: 4, evalScenes: 2, samples: 2}
	}
	return mmSizes{train: 2000, test: 200, perClass: 10, image: 32, clipSteps: 600, clipBatch: 64,
		lmLayers: 4, lmHidden: 128, lmBlock: 256, lmSteps: 600, lmBatch: 12, vocab: 1024,
		alignSteps: 600, instructSteps: 1000, batch: 8, evalScenes: 200, samples: 4}
}

// MMOptions configures RunMultimodal: the backend per stage, the output
// folder, --quick, the seed and the log, as Options.
type MMOptions = Options

// VLMEval is one model's scores on one split of the shapes world.
type VLMEval struct {
	Model string `json:"model"` // base, align, instruct
	Split string `json:"split"` // test or heldout
	eval.VLMResult
	Scenes []SceneSample `json:"samples"`
}

// SceneSample is a scene and what a model said of it.
type SceneSample struct {
	Image   string      `json:"image"` // relative to the demo's folder
	Truth   string      `json:"truth"` // the scene's full description
	Caption string      `json:"caption"`
	Answers []QASample  `json:"answers"`
	Objects []shapesObj `json:"-"`
}

type shapesObj = shapes.ObjectRecord

// QASample is one question, its answer and the model's.
type QASample struct {
	Question string `json:"question"`
	Answer   string `json:"answer"`
	Model    string `json:"model_answer"`
}

// MMResult is every number of a multimodal demo run.
type MMResult struct {
	Quick   bool    `json:"quick"`
	Seconds float64 `json:"seconds"`
	Scenes  struct {
		Train, Test, Heldout int
	} `json:"scenes"`
	ZeroShot  eval.ZeroShotResult             `json:"zeroshot"`
	Classes   []string                        `json:"classes"`
	Confusion [][]int                         `json:"confusion"` // [true][predicted] over Classes
	HeldOut   [2]int                          `json:"zeroshot_heldout_pairs"`
	Retrieval map[string]eval.RetrievalResult `json:"retrieval"` // by split
	VLM       []VLMEval                       `json:"vlm"`
	Stages    []Stage                         `json:"stages"`
	Curves    map[string][]map[string]float64 `json:"curves"`
	Checks    []Check                         `json:"checks"`
	RLHF      *MMRLHF                         `json:"rlhf,omitempty"`    // multimodal_rlhf.go
	Imagine   *ImagineResult                  `json:"imagine,omitempty"` // the text-to-image stage (multimodal_imagine.go)
}

// Eval returns model's scores on split.
func (r *MMResult) Eval(model, split string) *VLMEval {
	for i := range r.VLM {
		if r.VLM[i].Model == model && r.VLM[i].Split == split {
			return &r.VLM[i]
		}
	}
	return nil
}

// vlmModels are the models the multimodal demo scores, in order: the
// text-only language model (the base), after stage 1, after stage 2,
// after the human-feedback stage (DPO: multimodal_rlhf.go).
var vlmModels = []string{"base", "align", "instruct", "rlhf"}

// vlmDirs are the models' folders in the demo's output.
var vlmDirs = map[string]string{"base": "lm", "align": "align", "instruct": "instruct", "rlhf": "dpo"}

// RunMultimodal runs the multi-modal recipe on the shapes world
// (data/synth/shapes): a CLIP model (zero-shot classification of the 32
// colour-shape pairs, retrieval), a language model pretrained on the
// world's conversations as text, LLaVA's two stages (align: the projector
// on descriptions; instruct: projector and LM on conversations), a
// reward model and DPO from stage 2 on the world's simulated image
// rankings (multimodal_rlhf.go), and each model scored on the test and held-out scenes (eval.VLMShapes).
// Models go in o.Out/{clip,lm,align,instruct,reward,dpo}, the world in o.Out/shapes.
func RunMultimodal(ctx context.Context, o MMOptions) (*MMResult, error) {
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.NewBackend == nil {
		return nil, errors.New("demo: no backend")
	}
	sz := mmSizesOf(o.Quick)
	begin := time.Now()
	res := &MMResult{Quick: o.Quick, Curves: map[string][]map[string]float64{}, Retrieval: map[string]eval.RetrievalResult{}}
	dir := func(s ...string) string { return filepath.Join(append([]string{o.Out}, s...)...) }
	const total = 7
	n := 0
	stage := func(name, what string) func() {
		n++
		fmt.Fprintf(o.Log, "\n[%d/%d] %s: %s\n", n, total, name, what)
		t0 := time.Now()
		return func() {
			s := time.Since(t0).Seconds()
			res.Stages = append(res.Stages, Stage{Name: name, Seconds: s})
			fmt.Fprintf(o.Log, "[%d/%d] %s done in %.0fs (%.0fs so far)\n", n, total, name, s, time.Since(begin).Seconds())
		}
	}
	loop := func(out string, steps int, lr float64) train.Config {
		return train.Config{Steps: steps, LR: lr, Warmup: steps / 20, Clip: 1, Seed: o.Seed, Out: dir(out), Quiet: o.Quick, Progress: o.Log}
	}

	// 1. The world: scenes, captions, questions, conversations.
	done := stage("shapes", fmt.Sprintf("the shapes world: %d training scenes, %d test and %d held-out", sz.train, sz.test, sz.test))
	world := dir("shapes")
	if _, err := shapes.Write(shapes.Options{Out: world, Seed: o.Seed, Size: sz.image, Train: sz.train, Test: sz.test, PerClass: sz.perClass}); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	res.Scenes.Train, res.Scenes.Test, res.Scenes.Heldout = sz.train, sz.test, sz.test
	if err := writeMMData(world, o.Seed, sz); err != nil {
		return nil, err
	}
	done()

	// 2. CLIP on the captions; zero-shot and retrieval.
	done = stage("clip", "CLIP on the training scenes' captions; zero-shot on the 32 colour-shape classes, retrieval on test and heldout")
	mc := train.CLIPPresets()["tiny"]
	mc.Vision.Image = sz.image
	tokPath := filepath.Join("..", "shared", "data", "tokenizer", "clip", "bpe_simple_vocab_16e6.txt.gz")
	if o.CLIPTokenizer != "" {
		tokPath = o.CLIPTokenizer
	}
	if _, err := train.CLIP(ctx, train.CLIPOptions{Backend: o.NewBackend(), Data: filepath.Join(world, "train.jsonl"), Model: mc, Tokenizer: tokPath, Batch: sz.clipBatch,
		Loop: train.Config{Steps: sz.clipSteps, LR: 1e-3, MinLR: 1e-4, Warmup: 20, WeightDecay: 0.1, Beta2: 0.98, Clip: 1, Seed: o.Seed, Out: dir("clip"), Quiet: o.Quick, Progress: o.Log}, Log: o.Log}); err != nil {
		return nil, fmt.Errorf("demo: clip: %w", err)
	}
	if err := clipScores(res, o.NewBackend(), dir("clip"), world); err != nil {
		return nil, err
	}
	done()

	// Text to image (multimodal_imagine.go): VQ-VAE, judge, generator, CLIP reranking.
	done = stage("imagine", "text to image: a VQ-VAE, the attribute judge, a text-to-image transformer; its drawings of test and heldout captions judged, first sample against CLIP's pick")
	if err := runImagine(ctx, o, res, world, dir); err != nil {
		return nil, err
	}
	done()

	// 3. The language model: the world's conversations as text.
	done = stage("lm", "a language model pretrained on the training scenes' conversations as text (no images): the base")
	p := train.Presets()["baby"]
	p.Model.Layers, p.Model.Hidden, p.Model.Intermediate = sz.lmLayers, sz.lmHidden, 4*sz.lmHidden
	p.Model.Heads, p.Model.KVHeads = max(2, sz.lmHidden/32), max(2, sz.lmHidden/32)
	p.Model.Context, p.Block, p.Batch = sz.lmBlock, sz.lmBlock, sz.lmBatch
	if o.Quick {
		p.EvalIters = 2
	}
	// The baby recipe's schedule (docs/multimodal.md's golem pretrain),
	// over the demo's steps.
	p.Loop.Steps, p.Loop.Warmup, p.Loop.EvalEvery = sz.lmSteps, min(p.Loop.Warmup, sz.lmSteps/6), max(1, sz.lmSteps/3)
	p.Loop.Seed, p.Loop.Out, p.Loop.Quiet, p.Loop.Progress = o.Seed, dir("lm"), o.Quick, o.Log
	if _, err := train.Pretrain(ctx, train.PretrainOptions{Backend: o.NewBackend(), Data: []string{filepath.Join(world, "lm_corpus.txt")}, VocabSize: sz.vocab,
		Preset: p, SpecialTokens: true, CacheDir: dir("cache"), Log: o.Log}); err != nil {
		return nil, fmt.Errorf("demo: pretrain: %w", err)
	}
	done()

	// 4. LLaVA's two stages.
	done = stage("vlm", "stage 1 (align: the projector on descriptions), stage 2 (instruct: projector and LM on conversations)")
	if _, err := train.VLM(ctx, train.VLMOptions{Backend: o.NewBackend(), Stage: train.StageAlign, Vision: dir("clip"), LM: dir("lm"),
		Data: filepath.Join(world, "align_train.jsonl"), Batch: 16, Loop: loop("align", sz.alignSteps, 5e-3), Log: o.Log}); err != nil {
		return nil, fmt.Errorf("demo: vlm align: %w", err)
	}
	if _, err := train.VLM(ctx, train.VLMOptions{Backend: o.NewBackend(), Stage: train.StageInstruct, Model: dir("align"),
		Data: filepath.Join(world, "train_llava_en.json"), Batch: sz.batch, Loop: loop("instruct", sz.instructSteps, 5e-4), Log: o.Log}); err != nil {
		return nil, fmt.Errorf("demo: vlm instruct: %w", err)
	}
	done()

	// 5. Human feedback: a reward model and DPO on simulated image rankings.
	done = stage("rlhf", "a reward model on simulated rankings of answers, and DPO (with RPO's term) from stage 2 on its own descriptions of training images, scored by what they get right")
	if err := mmRLHF(ctx, o, world, dir, res); err != nil {
		return nil, err
	}
	done()

	// 6. Every model on the test and held-out scenes.
	done = stage("eval", fmt.Sprintf("base, align, instruct and rlhf describe %d test and %d held-out scenes and answer their questions", sz.evalScenes, sz.evalScenes))
	for _, name := range vlmModels {
		for _, split := range []string{"test", "heldout"} {
			ev, err := vlmScores(o.NewBackend(), dir(vlmDirs[name]), world, split, sz.evalScenes, sz.samples)
			if err != nil {
				return nil, fmt.Errorf("demo: eval vlm %s %s: %w", name, split, err)
			}
			ev.Model, ev.Split = name, split
			for i := range ev.Scenes {
				ev.Scenes[i].Image = filepath.ToSlash(filepath.Join("shapes", ev.Scenes[i].Image))
			}
			res.VLM = append(res.VLM, *ev)
			fmt.Fprintf(o.Log, "  %-8s %-7s caption_acc %.3f  vqa_acc %.3f\n", name, split, ev.CaptionAcc, ev.VQA)
		}
	}
	for _, s := range []string{"clip", "lm", "align", "instruct"} {
		res.Curves[s], _ = readMetrics(dir(s))
	}
	done()

	check := func(claim string, ok bool) { res.Checks = append(res.Checks, Check{Claim: claim, Pass: ok}) }
	check(fmt.Sprintf("CLIP zero-shot accuracy over the 32 colour-shape classes is at least 4x chance (%.3f)", 4*res.ZeroShot.Chance), res.ZeroShot.Acc >= 4*res.ZeroShot.Chance)
	for _, split := range []string{"test", "heldout"} {
		r := res.Retrieval[split]
		check(fmt.Sprintf("CLIP image-to-text R@1 on %s is at least 10x chance (%.3f)", split, 10/float64(max(r.Images, 1))), r.ImageToText[1] >= 10/float64(max(r.Images, 1)))
		base, s1, s2 := res.Eval("base", split), res.Eval("align", split), res.Eval("instruct", split)
		check("caption attribute accuracy on "+split+": stage 2 > stage 1 > base", s2.CaptionAcc > s1.CaptionAcc && s1.CaptionAcc > base.CaptionAcc)
		check("VQA accuracy on "+split+": stage 2 > stage 1 > base", s2.VQA > s1.VQA && s1.VQA > base.VQA)
	}
	rlhfChecks(res, check)
	if res.Imagine != nil {
		check(imagineCheck(res.Imagine))
	}
	res.Seconds = time.Since(begin).Seconds()
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return nil, err
	}
	return res, atomicfile.WriteFile(dir("demo_result.json"), b)
}

// writeMMData writes what the stages train on beside the world: stage
// 1's descriptions (align_{train,test}.jsonl: each scene's full
// description, the answer to "Describe the image.", which caption
// accuracy scores), stage 2's conversations in English
// (train_llava_en.json: golem data shapes' English records; the language
// model's BPE is English) and the language model's corpus
// (lm_corpus.txt: the same conversations as text in llava.Prompt's
// format, <|im_end|> after each answer, <|endoftext|> after each scene).
func writeMMData(world string, seed uint64, sz mmSizes) error {
	var corpus bytes.Buffer
	var conv []vision.LLaVA
	for _, split := range []shapes.Split{shapes.Train, shapes.Test} {
		n := sz.train
		if split != shapes.Train {
			n = sz.test
		}
		var align bytes.Buffer
		enc := json.NewEncoder(&align)
		enc.SetEscapeHTML(false)
		for i := range n {
			s := shapes.Generate(seed, split, i)
			rec := s.Record(seed, filepath.ToSlash(filepath.Join("images", split.String(), fmt.Sprintf("%06d.png", i))))
			if err := enc.Encode(map[string]string{"image": rec.Image, "caption": rec.Instructions[0].Answer.EN}); err != nil {
				return err
			}
			if split != shapes.Train {
				continue
			}
			var turns []string
			c := vision.LLaVA{ID: fmt.Sprintf("train-%06d", i), Image: rec.Image}
			for j, qa := range s.Conversation(seed) {
				turns = append(turns, qa.Question.EN, qa.Answer.EN)
				q := qa.Question.EN
				if j == 0 {
					q = llava.Placeholder + "\n" + q
				}
				c.Conversations = append(c.Conversations, vision.Turn{From: "human", Value: q}, vision.Turn{From: "gpt", Value: qa.Answer.EN})
			}
			conv = append(conv, c)
			corpus.WriteString(llava.Prompt(tokenizer.ImEnd, false, turns...) + tokenizer.EndOfText)
		}
		if err := atomicfile.WriteFile(filepath.Join(world, "align_"+split.String()+".jsonl"), align.Bytes()); err != nil {
			return err
		}
	}
	b, err := json.Marshal(conv)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(world, "train_llava_en.json"), b); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(world, "lm_corpus.txt"), corpus.Bytes())
}

// clipTemplates are the zero-shot prompts (their embeddings averaged):
// the shapes world's caption forms for one shape.
var clipTemplates = []string{"a {}", "one shape: a {}"}

// clipScores scores the CLIP model in clipDir: zero-shot over the world's
// 32 colour-shape classes (with its confusion matrix and the held-out
// pairs apart) and retrieval on test and heldout.
func clipScores(res *MMResult, be backend.Backend, clipDir, world string) error {
	m, err := clip.Load(be, clipDir)
	if err != nil {
		return err
	}
	tok, err := tokenizer.LoadCLIPDir(clipDir)
	if err != nil {
		return err
	}
	open := func(spec string) (*vision.CLIPSet, []string, error) {
		ds, err := vision.Open(spec, vision.Limits{})
		if err != nil {
			return nil, nil, err
		}
		defer ds.Close()
		set, err := vision.LoadCLIPSet(ds, m.Config.Vision.Image, m.Config.Vision.Channels)
		return set, vision.Classes(ds), err
	}
	set, names, err := open(filepath.Join(world, "classes"))
	if err != nil {
		return err
	}
	for i := range names {
		names[i] = strings.ReplaceAll(names[i], "_", " ")
	}
	if res.ZeroShot, err = eval.CLIPZeroShot(m, tok, set, names, clipTemplates, 128); err != nil {
		return err
	}
	res.Classes = names
	res.Confusion = make([][]int, len(names))
	for i := range res.Confusion {
		res.Confusion[i] = make([]int, len(names))
	}
	held := map[string]bool{}
	for _, c := range shapes.HeldOut {
		held[c.String()] = true
	}
	for i, l := range set.Labels {
		res.Confusion[l][res.ZeroShot.Pred[i]]++
		if held[names[l]] {
			res.HeldOut[1]++
			if res.ZeroShot.Pred[i] == l {
				res.HeldOut[0]++
			}
		}
	}
	for _, split := range []string{"test", "heldout"} {
		set, _, err := open(filepath.Join(world, split+".jsonl"))
		if err != nil {
			return err
		}
		if res.Retrieval[split], err = eval.CLIPRetrieval(m, tok, set, 128); err != nil {
			return err
		}
	}
	return nil
}

// vlmMaxTokens bounds each generated description or answer (eval vlm's
// default).
const vlmMaxTokens = 48

// vlmScores has the model in dir (a LLaVA folder, or the text-only base,
// which answers without the image) describe the first scenes of split
// and answer their questions (eval.VLMShapes through
// eval.VLMConversation, as golem eval vlm), keeping the first samples
// scenes' words beside the right answers.
func vlmScores(be backend.Backend, dir, world, split string, scenes, samples int) (*VLMEval, error) {
	var cont eval.VLMContinue
	var end string
	image := llava.IsLLaVA(dir)
	if image {
		m, err := llava.Load(be, dir)
		if err != nil {
			return nil, err
		}
		tok, err := llava.LoadTokenizer(dir, &m.Config)
		if err != nil {
			return nil, err
		}
		cont, end = eval.VLMImage(m, tok, vlmMaxTokens)
	} else {
		l, err := load.Model(be, dir, load.Options{})
		if err != nil {
			return nil, err
		}
		cont, end = eval.VLMText(l.Model, l.Tok, l.SoftPrompt, vlmMaxTokens)
	}
	answer := eval.VLMConversation(cont, end, image)
	ev := &VLMEval{}
	keep := false
	record := func(q, img string) (string, error) {
		a, err := answer(q, img)
		if err != nil {
			return a, err
		}
		a = strings.TrimSpace(a)
		if q == eval.VLMDescribe {
			rel, _ := filepath.Rel(world, img)
			if keep = len(ev.Scenes) < samples; keep {
				ev.Scenes = append(ev.Scenes, SceneSample{Image: filepath.ToSlash(rel), Caption: a})
			}
		} else if keep {
			s := &ev.Scenes[len(ev.Scenes)-1]
			s.Answers = append(s.Answers, QASample{Question: q, Model: a})
		}
		return a, nil
	}
	var err error
	if ev.VLMResult, err = eval.VLMShapes(world, split, scenes, record); err != nil {
		return nil, err
	}
	// The right answers of the kept scenes, from the split's records.
	b, err := os.ReadFile(filepath.Join(world, split+"_scenes.jsonl"))
	if err != nil {
		return nil, err
	}
	for i, line := range bytes.SplitN(b, []byte("\n"), len(ev.Scenes)+1)[:len(ev.Scenes)] {
		var r shapes.SceneRecord
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("%s_scenes.jsonl:%d: %w", split, i+1, err)
		}
		s := &ev.Scenes[i]
		s.Truth = r.Instructions[0].Answer.EN
		right := map[string]string{}
		for _, q := range r.Questions {
			right[q.Question.EN] = q.Answer.EN
		}
		for j := range s.Answers {
			s.Answers[j].Answer = right[s.Answers[j].Question]
		}
	}
	return ev, nil
}

// MultimodalReport builds the report card of a multimodal demo run: the
// VLMs' scores on test and held-out scenes, CLIP's, the checks, scenes
// with what each model said of them, the zero-shot confusion matrix and
// each stage's curves.
func MultimodalReport(r *MMResult) *eval.Report {
	f := func(v float64) string { return fmt.Sprintf("%.3f", v) }
	kind := func(e *VLMEval, k string) string {
		c := e.Kinds[k]
		if c[1] == 0 {
			return "-"
		}
		return f(float64(c[0]) / float64(c[1]))
	}
	sum := eval.Table{Header: []string{"model", "split", "caption_acc", "vqa_acc", "colour", "shape", "count", "position"}}
	for _, split := range []string{"test", "heldout"} {
		for _, name := range vlmModels {
			e := r.Eval(name, split)
			if e == nil {
				continue
			}
			sum.Rows = append(sum.Rows, []string{vlmTitle[name], split, f(e.CaptionAcc), f(e.VQA), kind(e, "colour"), kind(e, "shape"), kind(e, "count"), kind(e, "position")})
		}
	}
	scenes := 0
	if len(r.VLM) > 0 {
		scenes = r.VLM[0].VLMResult.Scenes
	}
	rep := &eval.Report{
		Title: "golem demo --multimodal: CLIP and a LLaVA-style VLM on the shapes world",
		Intro: fmt.Sprintf("The shapes world (%d training scenes; test scenes and held-out scenes, each with a colour-shape pair never in training: red triangle, blue circle, green square, yellow diamond). A CLIP model trained on the captions; a language model pretrained on the training scenes' conversations as text (the base: it answers without the image); LLaVA's stage 1 (align: the projector on descriptions, CLIP's tower and the LM frozen) and stage 2 (instruct: projector and LM on the conversations); RLHF (a reward model on simulated rankings of answers about the training images, and DPO from stage 2 on its own descriptions of them, scored by what they get right). Each model describes the first %d scenes of each split and answers their colour, shape, count and position questions after its own description (greedy; eval vlm's protocol). caption_acc: the share of the scenes' objects whose colour and shape the description names together; vqa_acc: exact match. Run time %.0fs%s.",
			r.Scenes.Train, scenes, r.Seconds, map[bool]string{true: " (--quick: a smoke test, the numbers mean nothing)", false: ""}[r.Quick]),
		Summary: sum,
		Data:    r,
	}
	checks := eval.Table{Header: []string{"claim", "holds"}}
	for _, c := range r.Checks {
		checks.Rows = append(checks.Rows, []string{c.Claim, map[bool]string{true: "yes", false: "NO"}[c.Pass]})
	}
	rep.Sections = append(rep.Sections, eval.Section{Title: "Checks", Table: &checks})
	ct := eval.Table{Header: []string{"split", "images", "i2t R@1", "i2t R@5", "t2i R@1", "t2i R@5", "R@1 chance"}}
	for _, split := range []string{"test", "heldout"} {
		x := r.Retrieval[split]
		ct.Rows = append(ct.Rows, []string{split, fmt.Sprint(x.Images), f(x.ImageToText[1]), f(x.ImageToText[5]), f(x.TextToImage[1]), f(x.TextToImage[5]), f(1 / float64(max(x.Images, 1)))})
	}
	zs := r.ZeroShot
	cm := plot.Matrix{Title: "CLIP zero-shot: true class (rows) by predicted class", Labels: r.Classes, Counts: r.Confusion}
	var svg strings.Builder
	var figs []eval.Figure
	if err := cm.SVG(&svg); err == nil {
		figs = append(figs, eval.Figure{Name: "zeroshot_confusion", SVG: svg.String()})
	}
	rep.Sections = append(rep.Sections, eval.Section{Title: "CLIP",
		Text: fmt.Sprintf("Zero-shot classification of the %d single-shape images of the 32 colour-shape classes with the templates %q (their embeddings averaged): %d correct, accuracy %.3f (chance %.3f); the four held-out pairs, never in training: %d of %d. Retrieval ranks every caption of the split for each image and every image for each caption; captions repeat across scenes (\"one shape: a red circle\"), so R@1 cannot reach 1.",
			zs.N, clipTemplates, zs.Correct, zs.Acc, zs.Chance, r.HeldOut[0], r.HeldOut[1]),
		Table: &ct, Figures: figs})
	for _, split := range []string{"test", "heldout"} {
		var figs []eval.Figure
		base := r.Eval(vlmModels[0], split)
		if base == nil {
			continue
		}
		for i, sc := range base.Scenes {
			var b strings.Builder
			fmt.Fprintf(&b, "truth: %s\n", sc.Truth)
			for _, name := range vlmModels {
				if e := r.Eval(name, split); e != nil && i < len(e.Scenes) {
					fmt.Fprintf(&b, "%s: %s\n", vlmTitle[name], e.Scenes[i].Caption)
				}
			}
			for j, qa := range sc.Answers {
				fmt.Fprintf(&b, "Q: %s (answer: %s)", qa.Question, qa.Answer)
				for _, name := range vlmModels {
					if e := r.Eval(name, split); e != nil && i < len(e.Scenes) && j < len(e.Scenes[i].Answers) {
						fmt.Fprintf(&b, "  %s: %s", name, e.Scenes[i].Answers[j].Model)
					}
				}
				b.WriteString("\n")
			}
			figs = append(figs, eval.Figure{Name: sc.Image, Src: sc.Image, Caption: strings.TrimSpace(b.String())})
		}
		rep.Sections = append(rep.Sections, eval.Section{Title: "Scenes of " + split + " and what each model said", Figures: figs})
	}
	rlhfReport(rep, r)
	imagineSections(rep, r)
	st := eval.Table{Header: []string{"stage", "seconds"}}
	for _, s := range r.Stages {
		st.Rows = append(st.Rows, []string{s.Name, fmt.Sprintf("%.0f", s.Seconds)})
	}
	rep.Sections = append(rep.Sections, eval.Section{Title: "Time", Table: &st})
	series := func(stage string, keys ...string) []eval.Series { return curveSeries(r.Curves, stage, keys...) }
	addPlot(rep, "clip_loss", "CLIP: contrastive loss", "CLIP", "loss", series("clip", "loss"))
	addPlot(rep, "lm_loss", "Language model: training and validation loss", "pretraining", "loss (nats per token)", series("lm", "loss", "val_loss"))
	addPlot(rep, "align_loss", "Stage 1 (align): description loss", "align", "loss (nats per token)", series("align", "loss", "val_loss"))
	addPlot(rep, "instruct_loss", "Stage 2 (instruct): answer loss", "instruct", "loss (nats per token)", series("instruct", "loss", "val_loss"))
	return rep
}

// vlmTitle names the models in the report.
var vlmTitle = map[string]string{"base": "base LM (no image)", "align": "after stage 1 (align)", "instruct": "after stage 2 (instruct)", "rlhf": "after RLHF (DPO)"}
