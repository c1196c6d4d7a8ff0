package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/model/clip"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/model/load"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// VLM stages.
const (
	StageAlign    = "align"    // stage 1: the projector alone, on captions
	StageInstruct = "instruct" // stage 2: projector and language model, on conversations
)

// VLMOptions configures VLM.
type VLMOptions struct {
	Backend backend.Backend
	Stage   string // StageAlign or StageInstruct
	// Model is a LLaVA folder to start from (stage 2 starts from stage
	// 1's); "" builds a new model from Vision and LM with a new projector.
	Model    string
	Vision   string // a CLIPModel folder: its vision tower
	LM       string // a language model folder (and its tokenizer)
	Data     string // align: image-caption source (data/vision); instruct: LLaVA conversation JSON
	EvalData string // optional: val_loss on it at each evaluation
	Batch    int    // images per micro-batch (default 16)
	// LoRA, with stage instruct, trains low-rank adapters on the frozen
	// language model and the projector whole; Out is then a PEFT adapter
	// folder over Model (vlm_lora.go).
	LoRA  *gpt.LoRAConfig
	Merge bool // with LoRA: also write the merged LLaVA folder to Out/merged
	// FeatureLayer is a new model's vision_feature_layer (the tower's
	// hidden state it reads: -1 the last, -2 the penultimate; 0 means -1).
	FeatureLayer int
	Loop         Config
	Log          io.Writer
}

// vlmExample is one encoded image and text: the ids before the image and
// after it, and which of those after are targets (answers).
type vlmExample struct {
	pixels        []float32
	before, after []int
	target        []bool
}

type vlmTask struct {
	log   io.Writer
	model *llava.Model
	tok   *tokenizer.Tokenizer
	train []vlmExample
	val   []vlmExample
	batch int
	seed  uint64
	lora  *vlmLoRA // nil: no LoRA
}

// VLM trains a LLaVA model (model/llava) as LLaVA does: stage "align"
// trains the projector on captions (each image's caption answers
// llava.AlignPrompt), the vision tower and language model frozen; stage
// "instruct" trains the projector and the language model on LLaVA's
// conversation JSON, the loss on the answers' tokens only. Each
// micro-batch is Batch random examples as a function of (seed, step,
// micro), so a resumed run sees the same data.
func VLM(ctx context.Context, o VLMOptions) (Result, error) {
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.Batch <= 0 {
		o.Batch = 16
	}
	cfg := o.Loop
	switch {
	case cfg.Out == "":
		return Result{}, errors.New("vlm: an output folder is needed (--out)")
	case o.Stage != StageAlign && o.Stage != StageInstruct:
		return Result{}, fmt.Errorf("vlm: stage %q, want %q or %q", o.Stage, StageAlign, StageInstruct)
	case o.Data == "":
		return Result{}, errors.New("vlm: no training data (--data)")
	case o.Merge && o.LoRA == nil:
		return Result{}, errors.New("vlm: --merge needs LoRA (--lora-r)")
	case o.Model == "" && !cfg.Resume && (o.Vision == "" || o.LM == ""):
		return Result{}, errors.New("vlm: a new model needs --vision (a CLIP folder) and --lm (a language model folder); or start from a LLaVA folder with --model")
	}
	release, err := cfg.open()
	if err != nil {
		return Result{}, err
	}
	defer release()
	t := &vlmTask{log: o.Log, batch: o.Batch, seed: cfg.Seed}
	from := o.Model
	if cfg.Resume {
		from = cfg.Out
	}
	if o.LoRA != nil || cfg.Resume {
		if t.lora, err = t.loadLoRA(o, cfg); err != nil {
			return Result{}, err
		}
	}
	switch {
	case t.model != nil: // LoRA: loadLoRA loaded it
	case from != "":
		if !llava.IsLLaVA(from) {
			return Result{}, fmt.Errorf("vlm: %s is not a LLaVA folder (config.json's model_type is not \"llava\")", from)
		}
		l, err := load.Model(o.Backend, from, load.Options{}) // an adapter merged, its tokenizer or its base's
		if err != nil {
			return Result{}, err
		}
		t.model, t.tok = l.VLM, l.Tok
	default:
		cm, err := clip.Load(o.Backend, o.Vision)
		if err != nil {
			return Result{}, err
		}
		// The language model as every command reads --model: a model
		// folder, a GGUF model, or a LoRA adapter folder (merged).
		l, err := load.Model(o.Backend, o.LM, load.Options{})
		switch {
		case err != nil:
			return Result{}, err
		case l.VLM != nil:
			return Result{}, fmt.Errorf("vlm: --lm %s is a LLaVA folder: start from it with --model", o.LM)
		case l.SoftPrompt != nil:
			return Result{}, fmt.Errorf("vlm: --lm %s is a prompt-tuning adapter: the image's tokens take the soft prompt's place; pass its base model", o.LM)
		}
		t.tok = l.Tok
		if t.model, err = llava.New(cm.Vision, l.Model, o.FeatureLayer, cfg.Seed+1); err != nil {
			return Result{}, err
		}
	}
	if t.tok.VocabSize() > t.model.Config.Text.Vocab {
		return Result{}, fmt.Errorf("vlm: the tokenizer has %d tokens but the language model only %d", t.tok.VocabSize(), t.model.Config.Text.Vocab)
	}
	if o.Stage == StageAlign || t.lora != nil {
		t.model.LM.Freeze() // with LoRA, the adapters alone train
	} else {
		for _, p := range t.model.LM.Params() {
			p.Tensor.SetRequiresGrad(true)
		}
	}
	for _, p := range t.model.ProjectorParams() {
		p.Tensor.SetRequiresGrad(true)
	}
	if t.train, err = t.load(o.Data, o.Stage); err != nil {
		return Result{}, err
	}
	if o.EvalData != "" {
		if t.val, err = t.load(o.EvalData, o.Stage); err != nil {
			return Result{}, err
		}
	}
	t.batch = min(t.batch, len(t.train))
	trainable := 0
	for _, p := range t.Params() { // with LoRA, the adapters are not among the model's parameters
		if p.Tensor.RequiresGrad() {
			trainable += p.Tensor.Len()
		}
	}
	fmt.Fprintf(o.Log, "vlm %s: %d examples (%s), %d image tokens each; model: %.2fM parameters, %.2fM trained\n",
		o.Stage, len(t.train), o.Data, t.model.Tokens(), float64(nn.Count(t.model.Params()))/1e6, float64(trainable)/1e6)
	if cfg.Progress == nil {
		cfg.Progress = o.Log
	}
	res, err := Run(ctx, cfg, t)
	if err == nil && o.Merge && t.lora != nil && !res.Interrupted {
		err = t.saveMerged(filepath.Join(cfg.Out, "merged"), o.Log)
	}
	return res, err
}

// load reads and encodes a data set for stage: captions (align) or
// conversations (instruct); errors name the sample.
func (t *vlmTask) load(spec, stage string) ([]vlmExample, error) {
	ds, err := vision.Open(spec, vision.Limits{})
	if err != nil {
		return nil, err
	}
	defer ds.Close()
	vc := t.model.Config.Vision
	out := make([]vlmExample, 0, ds.Len())
	long := 0
	for i := range ds.Len() {
		im, err := ds.Load(i)
		if err != nil {
			return nil, err
		}
		var turns []vision.Turn
		switch {
		case stage == StageInstruct && len(im.Conversation) > 0:
			turns = im.Conversation
		case stage == StageInstruct:
			return nil, fmt.Errorf("vlm: %s: no conversation: stage %q trains on LLaVA's conversation JSON", ds.Name(i), StageInstruct)
		case im.Caption != "":
			turns = []vision.Turn{{From: "human", Value: llava.AlignPrompt}, {From: "gpt", Value: im.Caption}}
		default:
			return nil, fmt.Errorf("vlm: %s: no caption: stage %q trains on image captions", ds.Name(i), StageAlign)
		}
		ex, err := t.encode(turns)
		if errors.Is(err, errTooLong) {
			long++
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("vlm: %s: %w", ds.Name(i), err)
		}
		if ex.pixels, err = vision.CLIPPixels(im, vc.Image, vc.Channels); err != nil {
			return nil, fmt.Errorf("vlm: %s: %w", ds.Name(i), err)
		}
		out = append(out, ex)
	}
	if long > 0 {
		fmt.Fprintf(t.log, "vlm: %s: left out %d of %d examples whose first exchange and image do not fit the language model's context of %d\n", spec, long, ds.Len(), t.model.Config.Text.Context)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("vlm: %s has no examples that fit", spec)
	}
	return out, nil
}

// errTooLong is encode's error for a conversation whose first exchange
// does not fit the context: load leaves it out and counts it.
var errTooLong = errors.New("the first exchange does not fit the context")

// encode renders a conversation in llava's format: the text before the
// first turn's placeholder, then the rest, the answers' tokens (and each
// answer's end) marked as targets. Exchanges (a human turn and its
// answer) that do not fit the language model's context after those
// before them are left out, as LLaVA truncates to its maximum length;
// when the first does not fit, it returns errTooLong.
func (t *vlmTask) encode(turns []vision.Turn) (vlmExample, error) {
	var ex vlmExample
	end := t.tok.EndIDs()
	room := t.model.Config.Text.Context - t.model.Tokens()
	for i := 0; i+1 < len(turns); i += 2 {
		text := llava.UserTurn(turns[i].Value)
		var ids []int
		if i == 0 {
			before, after, err := llava.Split(text, t.tok.Encode)
			if err != nil {
				return ex, fmt.Errorf("conversations[0]: %w", err)
			}
			ex.before, ids = before, after
		} else {
			if strings.Contains(turns[i].Value, llava.Placeholder) {
				return ex, fmt.Errorf("conversations[%d] holds \"<image>\": only the first turn may", i)
			}
			ids = t.tok.Encode(text)
		}
		answer := t.tok.Encode(" " + turns[i+1].Value)
		if len(end) > 0 {
			answer = append(answer, end[0])
		} else {
			answer = append(answer, t.tok.Encode("\n")...)
		}
		if n := len(ex.before) + len(ex.after) + len(ids) + len(answer); n > room {
			if i == 0 {
				return ex, errTooLong
			}
			break
		}
		ex.after = append(append(ex.after, ids...), answer...)
		for range ids {
			ex.target = append(ex.target, false)
		}
		for range answer {
			ex.target = append(ex.target, true)
		}
	}
	return ex, nil
}

// loss is the mean loss per target token of exs, and the number of
// target tokens. Rows are grouped by the text before their image (one
// forward pass per group: gpt.Options.Embeds is the same shape for each
// row); the text after it is padded at its end.
func (t *vlmTask) loss(s *tensor.Scope, exs []vlmExample) (*tensor.Tensor, int, error) {
	groups := map[string][]vlmExample{}
	var keys []string
	for _, ex := range exs {
		k := fmt.Sprint(ex.before)
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], ex)
	}
	total := 0
	var sum *tensor.Tensor
	be := t.model.LM.Embed.Weight.Backend()
	for _, k := range keys {
		g := groups[k]
		B, T := len(g), 0
		var pixels []float32
		for _, ex := range g {
			T = max(T, len(ex.after))
			pixels = append(pixels, ex.pixels...)
		}
		ids, tgt := make([]int32, B*T), make([]int32, B*T)
		n := 0
		for b, ex := range g {
			for j := range T {
				tgt[b*T+j] = tensor.IgnoreIndex
				if j < len(ex.after) {
					ids[b*T+j] = int32(ex.after[j])
				}
				if j+1 < len(ex.after) && ex.target[j+1] {
					tgt[b*T+j] = int32(ex.after[j+1])
					n++
				}
			}
		}
		if n == 0 {
			continue
		}
		img, err := t.model.ImageFeatures(s, pixels, B)
		if err != nil {
			return nil, 0, err
		}
		l := t.model.LM.Loss(ids, tgt, B, T, gpt.Options{Embeds: t.model.Prefix(g[0].before, img), Scope: s})
		l = tensor.Scale(l, float32(n))
		if sum == nil {
			sum = l
		} else {
			sum = tensor.Add(sum, l)
		}
		total += n
	}
	if total == 0 {
		return s.Scalar(be, 0), 0, nil
	}
	return tensor.Scale(sum, 1/float32(total)), total, nil
}

func (t *vlmTask) Params() []nn.Named {
	if t.lora != nil {
		return append(t.model.ProjectorParams(), t.model.LM.LoRAParams()...)
	}
	return t.model.Params()
}

func (t *vlmTask) Loss(s *tensor.Scope, step, micro int) (*tensor.Tensor, int, map[string]float64, error) {
	if t.lora != nil {
		t.model.LM.SetLoRASeed(t.seed ^ uint64(step)<<20 ^ uint64(micro))
	}
	r := rand.New(rand.NewPCG(t.seed, uint64(step)<<20|uint64(micro)))
	exs := make([]vlmExample, t.batch)
	for i := range exs {
		exs[i] = t.train[r.IntN(len(t.train))]
	}
	loss, n, err := t.loss(s, exs)
	return loss, n, nil, err
}

// Eval is the mean loss per answer token over the validation examples.
func (t *vlmTask) Eval() (map[string]float64, error) {
	if len(t.val) == 0 {
		return map[string]float64{}, nil
	}
	var sum float64
	var total int
	var err error
	tensor.NoGrad(func() {
		for i := 0; i < len(t.val) && err == nil; i += t.batch {
			s := tensor.NewScope()
			var l *tensor.Tensor
			var n int
			if l, n, err = t.loss(s, t.val[i:min(i+t.batch, len(t.val))]); err == nil {
				sum += float64(l.Item()) * float64(n)
				total += n
			}
			s.Close()
		}
	})
	if err != nil || total == 0 {
		return map[string]float64{}, err
	}
	return map[string]float64{"val_loss": sum / float64(total)}, nil
}

// Save writes the LLaVA folder with the language model's tokenizer.
func (t *vlmTask) Save(dir string) error {
	if t.lora != nil {
		if err := t.model.SaveLoRA(dir, t.lora.c, t.lora.base); err != nil {
			return err
		}
		return llava.SaveTokenizer(t.tok, dir, &t.model.Config)
	}
	if err := t.model.Save(dir); err != nil {
		return err
	}
	return llava.SaveTokenizer(t.tok, dir, &t.model.Config)
}
