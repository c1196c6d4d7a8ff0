package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
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
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if err := required(fs, "model", "data"); err != nil {
		return err
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
		cont, end := eval.VLMImage(l.VLM, l.Tok, *maxTokens)
		answer = eval.VLMConversation(cont, end, true)
	} else {
		l, err := load.Model(be, *model, load.Options{})
		if err != nil {
			return err
		}
		cont, end := eval.VLMText(l.Model, l.Tok, l.SoftPrompt, *maxTokens)
		answer = eval.VLMConversation(cont, end, false)
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
