package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// DPOOptions configures DPO.
type DPOOptions struct {
	Backend backend.Backend
	Policy  string // the SFT model: the policy's start and the frozen reference
	// Data holds Preference examples; Rankings are expanded into their
	// pairs.
	Data []data.Example
	// Heldout is evaluated on; nil holds out HeldoutFrac (default 0.1) of
	// the prompts of Data.
	Heldout     []data.Example
	HeldoutFrac float64
	Beta        float64 // strength of the implicit KL constraint (default 0.1)
	// LossType is "sigmoid" (DPO, Rafailov et al. 2023, the default) or
	// "ipo" (Azar et al. 2023: (h - 1/(2 beta))^2 on the answers' mean
	// token log-ratios, as TRL computes it).
	LossType string
	// RPOAlpha > 0 adds RPOAlpha times the chosen answers' negative
	// log-likelihood per token to the loss (RPO, Pang et al. 2024; TRL's
	// rpo_alpha): preference learning that keeps the preferred answers
	// likely instead of only pushing the rejected ones down.
	RPOAlpha float64
	Batch    int  // pairs per micro-batch (default 8)
	Truncate bool // keep the end of too-long conversations instead of failing
	// LoRA, when set, trains low-rank adapters on the frozen policy (Out
	// is then a PEFT adapter folder) and the reference is the policy with
	// its adapters off; Merge also writes the merged model to Out/merged.
	LoRA  *gpt.LoRAConfig
	Merge bool
	Loop  Config
	Log   io.Writer
}

// dpoPair is one rendered preference pair and the reference's
// log-probabilities of its answers.
type dpoPair struct {
	rows   [2][]int  // chosen, rejected
	masks  [2][]bool // answer tokens
	img    *imagePrompt
	ref    [2]float64
	source string
}

type dpoTask struct {
	o          DPOOptions
	lm         *lmTrainee
	policy     *gpt.Model // lm.m
	tok        *tokenizer.Tokenizer
	train, val []dpoPair
	accum      int
	seed       uint64
}

// DPO trains the policy directly on preferences (direct preference
// optimisation): no reward model, no sampling; the reference is the SFT
// model, frozen. Result.Eval holds the held-out "accuracy" (pairs whose
// implicit reward orders them as labelled) and "margin".
func DPO(ctx context.Context, o DPOOptions) (Result, error) {
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if err := dpoSettings("dpo", &o.Beta, &o.LossType, o.RPOAlpha, &o.Batch); err != nil {
		return Result{}, err
	}
	cfg := o.Loop
	if cfg.Out == "" {
		return Result{}, errors.New("dpo: an output folder is needed (--out)")
	}
	release, err := cfg.open() // lock Out; on resume, its files are the checkpoint's
	if err != nil {
		return Result{}, err
	}
	defer release()
	if o.Merge && o.LoRA == nil {
		return Result{}, errors.New("dpo: --merge needs LoRA (--lora-r)")
	}
	t := &dpoTask{o: o, accum: max(1, cfg.Accum), seed: cfg.Seed}
	if t.lm, err = loadTrainee(o.Backend, o.Policy, cfg, o.LoRA, "dpo"); err != nil {
		return Result{}, err
	}
	t.policy = t.lm.m
	fullRef, tok, err := t.lm.loadRef(o.Backend, o.Policy, "dpo: --policy")
	if err != nil {
		return Result{}, err
	}
	t.tok = tok
	ctxLen := t.policy.Config.Context
	trainEx, valEx := o.Data, o.Heldout
	if valEx == nil {
		trainEx, valEx = splitByPrompt(o.Data, o.HeldoutFrac)
	}
	c := newChat(tok, ctxLen, o.Truncate)
	c.vision = t.lm.vlm
	files := newImageFiles(t.lm.vlm)
	t.lm.reference(fullRef, func(ref *gpt.Model) {
		if t.train, err = t.pairs(c, files, ref, trainEx); err == nil {
			t.val, err = t.pairs(c, files, ref, valEx)
		}
	})
	if err != nil {
		return Result{}, err
	}
	if len(t.train) == 0 {
		return Result{}, errors.New("dpo: no preference pairs to train on")
	}
	fmt.Fprintf(o.Log, "dpo: %d pairs to train on, %d held out; loss %s, beta %g; %s, %.2fM parameters trained\n", len(t.train), len(t.val), o.LossType, o.Beta, t.lm.method(), float64(nn.Count(t.lm.params()))/1e6)
	if c.truncated > 0 {
		fmt.Fprintf(o.Log, "dpo: %d answers truncated to the context of %d tokens\n", c.truncated, ctxLen)
	}
	if cfg.Progress == nil {
		cfg.Progress = o.Log
	}
	cfg.Card = &ModelCard{Stage: "dpo", Base: o.Policy, Data: []string{fmt.Sprintf("%d preference pairs, %d held out", len(t.train), len(t.val))},
		What: fmt.Sprintf("direct preference optimisation (loss %s, beta %g; %s) against the frozen starting model", o.LossType, o.Beta, t.lm.method())}
	cfg.checkpointModels(t.policy)
	res, err := Run(ctx, cfg, t)
	if err != nil {
		return res, err
	}
	_, err = t.lm.mergeAfter(o.Merge, res, o.Log)
	return res, err
}

// dpoSettings fills in the defaults of the options every preference
// stage shares (text DPO, image DPO): beta 0.1, the sigmoid loss, 8 pairs
// a micro-batch, and checks them: a beta or batch below 0, a negative RPO
// alpha or another loss type is an error naming the stage.
func dpoSettings(stage string, beta *float64, lossType *string, rpoAlpha float64, batch *int) error {
	if *beta == 0 {
		*beta = 0.1
	}
	if *lossType == "" {
		*lossType = "sigmoid"
	}
	if *batch == 0 {
		*batch = 8
	}
	switch {
	case *lossType != "sigmoid" && *lossType != "ipo":
		return fmt.Errorf("%s: loss type %q: want sigmoid or ipo", stage, *lossType)
	case !(*beta > 0):
		return fmt.Errorf("%s: beta %g, want above 0", stage, *beta)
	case !(rpoAlpha >= 0):
		return fmt.Errorf("%s: RPO alpha %g, want 0 (off) or above", stage, rpoAlpha)
	case *batch < 1:
		return fmt.Errorf("%s: batch %d, want 1 or more", stage, *batch)
	}
	return nil
}

// pairs renders the examples' pairs and scores them with the reference.
func (t *dpoTask) pairs(c *chat, files *imageFiles, ref *gpt.Model, ex []data.Example) ([]dpoPair, error) {
	var out []dpoPair
	for i := range ex {
		e := &ex[i]
		where := e.Source
		if where == "" {
			where = fmt.Sprintf("example %d", i+1)
		}
		if e.Kind != data.Preference && e.Kind != data.Ranking {
			return nil, fmt.Errorf("dpo: %s: a %s example; DPO learns from preference pairs or rankings", where, e.Kind)
		}
		pixels, err := files.pixels(e.Images, t.o.Policy, "dpo", where)
		if err != nil {
			return nil, err
		}
		for _, p := range e.Pairs() {
			var dp dpoPair
			dp.source = where
			for k, a := range [2][]data.Message{p.Chosen, p.Rejected} {
				img, ids, mask, err := c.render(p.Prompt, a, pixels, where)
				if err != nil {
					return nil, fmt.Errorf("dpo: %w", err)
				}
				dp.rows[k], dp.masks[k], dp.img = ids, mask, img
			}
			out = append(out, dp)
		}
	}
	for i := 0; i < len(out); i += 16 {
		batch := out[i:min(i+16, len(out))]
		var lp []float64
		for _, v := range noGradValues(func(s *tensor.Scope) *tensor.Tensor { return t.answerLogps(s, ref, t.refVision(ref), batch) }) {
			lp = append(lp, float64(v))
		}
		n := len(batch)
		for j := range batch {
			batch[j].ref = [2]float64{lp[j], lp[n+j]}
		}
	}
	return out, nil
}

// answerLogps returns the log-probability of each answer under m (v: the
// LLaVA model around it, nil for a text-only model): the chosen answers',
// then the rejected ones' ([2n]); for IPO the mean per answer token. Its
// tensors belong to s.
func (t *dpoTask) answerLogps(s *tensor.Scope, m *gpt.Model, v *llava.Model, ps []dpoPair) *tensor.Tensor {
	n := len(ps)
	rows, masks, imgs := make([][]int, 2*n), make([][]bool, 2*n), make([]*imagePrompt, 2*n)
	for i, p := range ps {
		rows[i], masks[i], imgs[i] = p.rows[0], p.masks[0], p.img
		rows[n+i], masks[n+i], imgs[n+i] = p.rows[1], p.masks[1], p.img
	}
	return answerLogps(s, m, v, rows, masks, imgs, t.o.LossType == "ipo")
}

// refVision is the LLaVA model around the reference ref: the policy's with
// LoRA (its adapters off), else the frozen copy's; nil for a text model.
func (t *dpoTask) refVision(ref *gpt.Model) *llava.Model {
	if t.lm.refVLM != nil && t.lm.refVLM.LM == ref {
		return t.lm.refVLM
	}
	return t.lm.vlm
}

func (t *dpoTask) Params() []nn.Named { return t.lm.params() }

func (t *dpoTask) Loss(s *tensor.Scope, step, micro int) (*tensor.Tensor, int, map[string]float64, error) {
	B := t.o.Batch
	ps := make([]dpoPair, B)
	tokens := 0
	for i := range ps {
		ps[i] = t.train[epochOrder(t.seed, len(t.train), (step*t.accum+micro)*B+i)]
		tokens += len(ps[i].rows[0]) + len(ps[i].rows[1])
	}
	t.lm.setSeed(t.seed ^ uint64(step)<<20 ^ uint64(micro))
	lp := t.answerLogps(s, t.policy, t.lm.vlm, ps)
	refs, chosen := make([][2]float64, B), make([]int, B)
	for i, p := range ps {
		refs[i], chosen[i] = p.ref, 1
		if t.o.LossType != "ipo" { // IPO's log-probabilities are per token already
			chosen[i] = max(1, countTrue(p.masks[0]))
		}
	}
	loss, metrics := dpoLoss(s, lp, refs, chosen, t.o.Beta, t.o.LossType, t.o.RPOAlpha)
	return loss, tokens, metrics, nil
}

// dpoLoss is DPO's loss (Rafailov et al. 2023) on the policy's
// log-probabilities lp [2B] of B pairs (the chosen answers', then the
// rejected ones') given the reference's, refs[i] = {chosen, rejected}:
// with h = (log pi(c) - log ref(c)) - (log pi(r) - log ref(r)), lossType
// "sigmoid" is -mean(log sigma(beta h)) and "ipo" mean((h - 1/(2 beta))^2)
// (Azar et al. 2023). rpoAlpha > 0 adds rpoAlpha times the chosen answers'
// negative log-likelihood per token (chosen[i]: pair i's chosen tokens,
// what its log-probability is divided by; RPO, Pang et al. 2024). The
// metrics are the batch's accuracy (h > 0), margin (beta h) and implicit
// rewards, and nll_chosen with RPO. Every stage that tunes on preferences
// (text, image prompts, images) shares it.
func dpoLoss(s *tensor.Scope, lp *tensor.Tensor, refs [][2]float64, chosen []int, beta float64, lossType string, rpoAlpha float64) (*tensor.Tensor, map[string]float64) {
	B := len(refs)
	be := lp.Backend()
	refH := make([]float32, B)
	for i, r := range refs {
		refH[i] = float32(r[0] - r[1])
	}
	diff := tensor.Reshape(tensor.MatMul(s.FromHost(be, pairMatrix(B), B, 2*B), tensor.Reshape(lp, 2*B, 1), false, false), B)
	h := tensor.Sub(diff, s.FromHost(be, refH, B))
	b := float32(beta)
	var loss *tensor.Tensor
	if lossType == "ipo" {
		loss = tensor.Mean(tensor.Square(tensor.AddScalar(h, -1/(2*b))))
	} else {
		loss = tensor.Neg(tensor.Mean(logSigmoid(tensor.Scale(h, b))))
	}
	metrics := map[string]float64{}
	if rpoAlpha > 0 {
		// The chosen rows' log-likelihood per token, averaged over pairs.
		c := make([]float32, 2*B)
		for i, n := range chosen {
			c[i] = 1 / float32(max(1, n)*B)
		}
		nll := tensor.Neg(tensor.Sum(tensor.Mul(lp, s.FromHost(be, c, 2*B))))
		metrics["nll_chosen"] = float64(nll.Item())
		loss = tensor.Add(loss, tensor.Scale(nll, float32(rpoAlpha)))
	}
	hh, lh := h.Host(), lp.Host()
	var acc, margin, rc, rr float64
	for i, r := range refs {
		if hh[i] > 0 {
			acc++
		}
		margin += float64(b * hh[i])
		rc += float64(b) * (float64(lh[i]) - r[0])
		rr += float64(b) * (float64(lh[B+i]) - r[1])
	}
	n := float64(B)
	metrics["accuracy"], metrics["margin"], metrics["reward_chosen"], metrics["reward_rejected"] = acc/n, margin/n, rc/n, rr/n
	return loss, metrics
}

func countTrue(b []bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}

// pairMatrix is the [n, 2n] matrix taking rows i and n+i to their
// difference.
func pairMatrix(n int) []float32 {
	a := make([]float32, n*2*n)
	for i := 0; i < n; i++ {
		a[i*2*n+i], a[i*2*n+n+i] = 1, -1
	}
	return a
}

// Eval is the held-out accuracy and margin of the implicit reward
// beta * log(pi / ref).
func (t *dpoTask) Eval() (map[string]float64, error) {
	if len(t.val) == 0 {
		return map[string]float64{}, nil
	}
	var acc, margin float64
	for i := 0; i < len(t.val); i += 16 {
		batch := t.val[i:min(i+16, len(t.val))]
		n := len(batch)
		lp := noGradValues(func(s *tensor.Scope) *tensor.Tensor { return t.answerLogps(s, t.policy, t.lm.vlm, batch) })
		refs := make([][2]float64, n)
		for j, p := range batch {
			refs[j] = p.ref
		}
		a, m := pairStats(lp, refs, t.o.Beta)
		acc, margin = acc+a, margin+m
	}
	n := float64(len(t.val))
	return map[string]float64{"val_accuracy": acc / n, "val_margin": margin / n}, nil
}

// pairStats counts the pairs whose implicit reward orders them as
// labelled (h > 0) and sums their margins beta * h, from the policy's
// log-probabilities lp (the chosen, then the rejected, as dpoLoss takes
// them) and the reference's refs.
func pairStats(lp []float32, refs [][2]float64, beta float64) (right, margin float64) {
	n := len(refs)
	for j, r := range refs {
		h := (float64(lp[j]) - r[0]) - (float64(lp[n+j]) - r[1])
		if h > 0 {
			right++
		}
		margin += beta * h
	}
	return right, margin
}

func (t *dpoTask) Save(dir string) error { return t.lm.save(dir) }
