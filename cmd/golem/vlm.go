package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/eval"
	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/model/load"
	"github.com/golem-ml/golem/tokenizer"
	"github.com/golem-ml/golem/train"
)

func init() {
	register("eval vlm", "a vision-language model's caption attribute and VQA accuracy on a shapes world split (prints caption_acc=X vqa_acc=Y last)", runEvalVLM)
	register("vlm", "train a vision-language model (LLaVA's recipe): --stage align (projector on captions), then instruct (projector and LM on conversations)", runVLM)
}

func runVLM(args []string) error {
	fs := newFlags("vlm", `golem vlm --vision clip-shapes --lm lm-shapes --data shapes/train.jsonl --stage align --out vlm-align`)
	vision := fs.String("vision", "", "a CLIPModel folder whose vision tower the new model takes (golem clip train's --out)")
	lm := fs.String("lm", "", "the language model the new model takes, with its tokenizer: a model folder, a GGUF model, or a LoRA adapter folder (merged into its base), as --model reads them")
	model := fs.String("model", "", "a LLaVA folder to start from instead of --vision and --lm (stage instruct: stage align's --out)")
	data := fs.String("data", "", "align: images with captions (JSONL {\"image\",\"caption\"}, COCO captions, a .tar shard); instruct: LLaVA conversation JSON (required)")
	evalData := fs.String("eval-data", "", "the same kind of data to report val_loss on at each evaluation")
	stage := fs.String("stage", "", "align (stage 1: trains the projector) or instruct (stage 2: the projector and the language model) (required)")
	batch := fs.Int("batch", 16, "images per micro-batch")
	layer := fs.Int("vision-feature-layer", 0, "a new model's vision_feature_layer: the vision tower's hidden state whose patch tokens it reads (-1 the last layer's, -2 the penultimate's as LLaVA 1.5; the last layer's unless given)")
	lf := addLoopFlags(fs, 300, 1e-3)
	lora := addLoRAFlags(fs)
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if *data == "" || *lf.out == "" || *stage == "" {
		return usageError{fmt.Errorf("vlm: need --data SPEC, --stage align|instruct and --out DIR (golem vlm --help)")}
	}
	if *stage != train.StageAlign && *stage != train.StageInstruct {
		return usageError{fmt.Errorf("vlm: --stage %q: want align or instruct", *stage)}
	}
	if *model == "" && !*lf.resume && (*vision == "" || *lm == "") {
		return usageError{fmt.Errorf("vlm: a new model needs --vision CLIP_DIR and --lm LM_DIR (or --model VLM_DIR)")}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := train.VLM(ctx, train.VLMOptions{Backend: be, Stage: *stage, Model: *model, Vision: *vision, LM: *lm,
		Data: *data, EvalData: *evalData, Batch: *batch, FeatureLayer: *layer, LoRA: lora.config(), Merge: *lora.merge, Loop: lora.loop(fs, lf.config())})
	if err != nil {
		return err
	}
	fmt.Printf("model saved to %s (%d steps, %.0fs)\n", *lf.out, res.Step, res.Seconds)
	fmt.Printf("loss=%.4f\n", res.Loss)
	return interrupted(res.Interrupted, res.Step, *lf.out)
}

// loadImageModel loads the LLaVA folder dir for --image, with its
// tokenizer, and reads the image file prepared for its vision tower.
func loadImageModel(be backend.Backend, dir, image string) (*llava.Model, *tokenizer.Tokenizer, []float32, error) {
	if !llava.IsLLaVA(dir) {
		return nil, nil, nil, fmt.Errorf("--image: %s is a text-only model (its config.json's model_type is not \"llava\"); images need a vision-language model (golem vlm's --out)", dir)
	}
	l, err := load.Model(be, dir, load.Options{})
	if err != nil {
		return nil, nil, nil, err
	}
	m, tok := l.VLM, l.Tok
	im, err := vision.ReadFile(image, vision.Limits{})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--image: %w", err)
	}
	v := m.Config.Vision
	pix, err := vision.CLIPPixels(im, v.Image, v.Channels)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--image %s: %w", image, err)
	}
	return m, tok, pix, nil
}

// imageChat is chat about one image with a LLaVA model, in the format it
// was trained in (llava.UserTurn; each answer ends with the tokenizer's
// end token): the image goes in the first user turn; "/reset" forgets the
// history (the image stays), "/exit" or the end of the input ends it.
func imageChat(m *llava.Model, tok *tokenizer.Tokenizer, pixels []float32, in io.Reader, out io.Writer, gen generate.Options, prompt string) error {
	end := "\n"
	if ids := tok.EndIDs(); len(ids) > 0 {
		end, _ = tok.Token(ids[0])
		gen.StopIDs = ids
	}
	gen.Stop = append(gen.Stop, "\nUSER:")
	var history []tokenizer.Message
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for {
		fmt.Fprint(out, prompt)
		if !sc.Scan() {
			if prompt != "" {
				fmt.Fprintln(out)
			}
			return sc.Err()
		}
		line := strings.TrimSpace(sc.Text())
		switch line {
		case "":
			continue
		case "/exit", "/quit":
			return nil
		case "/reset":
			history = nil
			fmt.Fprintln(out, "(history cleared)")
			continue
		}
		line = strings.ReplaceAll(line, llava.Placeholder, "")
		if len(history) == 0 {
			line = llava.Placeholder + "\n" + line
		}
		history = append(history, tokenizer.Message{Role: "user", Content: line})
		text, err := llava.Render(history, end)
		if err != nil {
			return err
		}
		reply, err := generate.ImageText(m, tok, pixels, text, gen, func(d string) { io.WriteString(out, d) })
		if err != nil {
			return err
		}
		fmt.Fprintln(out)
		history = append(history, tokenizer.Message{Role: "assistant", Content: reply})
	}
}

func runEvalVLM(args []string) error {
	fs := newFlags("eval vlm", `golem eval vlm --model vlm-instruct --data shapes --split heldout --limit 50`)
	model := fs.String("model", "", "a LLaVA folder (golem vlm's --out), or a text-only model folder: the base, answering without the image (required)")
	dataDir := fs.String("data", "", "a shapes world folder (golem data shapes' --out) (required)")
	split := fs.String("split", "heldout", "the split to score: test or heldout (its colour-shape pairs never in train)")
	limit := fs.Int("limit", 50, "scenes to score, 0 = all")
	maxTokens := fs.Int("max-tokens", vlmDescribeTokens, "new tokens at most per answer (greedy)")
	marksOut := fs.String("marks", "", "also write each question's mark, in the order asked (1 right, 0 wrong, one line), to this file")
	against := fs.String("against", "", "a --marks file of another model on the same split and --limit: also print this model's VQA accuracy minus that one's and the standard error of the paired difference")
	after := fs.String("after", "own", "the description each question is asked after: own (the model's greedy description, as a conversation goes) or true (the scene's own description, as stage 2 trains: how well the model reads what its context states; the caption is still the model's)")
	samples := fs.Int("samples", 0, "also sample this many answers to each question (LLaVA folder; after the greedy description) and print, per kind, the greedy accuracy, pass@1 (the samples' accuracy) and pass@k for k = 2, 4, ... up to it: the headroom RL has; 0 = off")
	temp := fs.Float64("temperature", 1, "with --samples: the answers' sampling temperature")
	seed := fs.Uint64("seed", 1337, "with --samples: sampling seed (the same seed, the same samples)")
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if err := required(fs, "model", "data"); err != nil {
		return err
	}
	var truth map[string]string
	switch *after {
	case "own":
	case "true":
		if *samples != 0 {
			return usageError{fmt.Errorf("eval vlm: --after true goes without --samples")}
		}
		if truth, err = eval.VLMTrueDescriptions(*dataDir, *split, *limit); err != nil {
			return err
		}
	default:
		return usageError{fmt.Errorf("eval vlm: --after %q: want own or true", *after)}
	}
	if *samples != 0 {
		return evalVLMPass(be, *model, *dataDir, *split, *limit, *maxTokens, *samples, *temp, *seed, *marksOut != "" || *against != "")
	}
	var base eval.VLMResult
	if *against != "" {
		b, err := os.ReadFile(*against)
		if err != nil {
			return err
		}
		if base.Marks = strings.TrimSpace(string(b)); strings.Trim(base.Marks, "01") != "" {
			return fmt.Errorf("eval vlm: --against %s: not a --marks file (one line of 0s and 1s)", *against)
		}
	}
	var answer eval.VLMAnswerer
	if llava.IsLLaVA(*model) {
		l, err := load.Model(be, *model, load.Options{})
		if err != nil {
			return err
		}
		l.Freeze()
		cont, end := eval.VLMImage(l.VLM, l.Tok, *maxTokens)
		answer = eval.VLMConversationAfter(cont, end, true, truth)
	} else {
		l, err := load.Model(be, *model, load.Options{})
		if err != nil {
			return err
		}
		l.Freeze()
		cont, end := eval.VLMText(l.Model, l.Tok, l.SoftPrompt, *maxTokens)
		answer = eval.VLMConversationAfter(cont, end, false, truth)
	}
	res, err := eval.VLMShapes(*dataDir, *split, *limit, answer)
	if err != nil {
		return err
	}
	fmt.Printf("%d scenes of %s: captions name %d of %d objects' colour and shape\n", res.Scenes, *split, int(res.CaptionAcc*float64(res.Objects)+0.5), res.Objects)
	for _, k := range eval.VLMKinds {
		if c := res.Kinds[k]; c[1] > 0 {
			fmt.Printf("  vqa %-8s %.4f (%d/%d)\n", k, float64(c[0])/float64(c[1]), c[0], c[1])
		}
	}
	if *marksOut != "" {
		if err := atomicfile.WriteFile(*marksOut, []byte(res.Marks+"\n")); err != nil {
			return err
		}
	}
	if *against != "" {
		diff, se, ok := eval.PairedDiff(base, res)
		if !ok {
			return fmt.Errorf("eval vlm: --against %s marks %d questions, this run %d: not the same split and --limit", *against, len(base.Marks), len(res.Marks))
		}
		fmt.Printf("against %s: vqa_acc %+.4f, standard error of the paired difference %.4f (2 SE %.4f)\n", *against, diff, se, 2*se)
	}
	fmt.Printf("caption_acc=%.4f vqa_acc=%.4f\n", res.CaptionAcc, res.VQA)
	return nil
}

// evalVLMPass is golem eval vlm --samples: each question's greedy answer
// and k sampled ones, marked as golem eval vlm marks them, and pass@j per
// kind of question.
func evalVLMPass(be backend.Backend, model, dataDir, split string, limit, maxTokens, k int, temp float64, seed uint64, marks bool) error {
	if k < 1 || temp <= 0 {
		return usageError{fmt.Errorf("eval vlm: --samples %d --temperature %g: want at least 1 sample at a temperature above 0", k, temp)}
	}
	if marks {
		return usageError{fmt.Errorf("eval vlm: --marks and --against mark the greedy run: not with --samples")}
	}
	if !llava.IsLLaVA(model) {
		return fmt.Errorf("eval vlm: --samples: %s is not a LLaVA folder (golem vlm's --out)", model)
	}
	m, err := llava.Load(be, model)
	if err != nil {
		return err
	}
	tok, err := llava.LoadTokenizer(model, &m.Config)
	if err != nil {
		return err
	}
	describe, end := eval.VLMImage(m, tok, maxTokens)
	sample, _ := eval.VLMImageSampled(m, tok, maxTokens, temp, seed)
	kinds, skipped, err := eval.VLMPassAtK(dataDir, split, limit, k, describe, sample, end)
	if err != nil {
		return err
	}
	var js []int
	for j := 2; j < k; j *= 2 {
		js = append(js, j)
	}
	if k > 1 {
		js = append(js, k)
	}
	head := fmt.Sprintf("  %-8s %9s %6s %6s", "kind", "questions", "greedy", "pass@1")
	for _, j := range js {
		head += fmt.Sprintf(" %6s", fmt.Sprintf("pass@%d", j))
	}
	head += fmt.Sprintf(" %6s %7s %s", fmt.Sprintf("vote@%d", k), "answers", fmt.Sprintf("chance@%d", k))
	fmt.Printf("%s of %s, %d answers sampled a question at temperature %g (%d scenes described with nothing, not asked); vote: the most frequent sample's accuracy; chance: pass@%d guessing among the kind's answers\n%s\n", dataDir, split, k, temp, skipped, k, head)
	for _, kind := range append(slices.Clone(eval.VLMKinds), "all") {
		p, ok := kinds[kind]
		if !ok {
			continue
		}
		line := fmt.Sprintf("  %-8s %9d %6.4f %6.4f", kind, p.Questions, p.GreedyAcc(), p.PassAt(1))
		for _, j := range js {
			line += fmt.Sprintf(" %6.4f", p.PassAt(j))
		}
		answers := "-" // "all": each question's chance is its kind's
		if p.Answers > 0 {
			answers = fmt.Sprint(p.Answers)
		}
		line += fmt.Sprintf(" %6.4f %7s %.4f", float64(p.Majority)/float64(p.Questions), answers, p.Chance(k))
		fmt.Println(line)
	}
	all := kinds["all"]
	fmt.Printf("greedy=%.4f pass@1=%.4f pass@%d=%.4f\n", all.GreedyAcc(), all.PassAt(1), k, all.PassAt(k))
	return nil
}
