package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// PPOOptions configures PPO. Zero values get the defaults noted; where
// they apply at golem's scale they follow InstructGPT (Ouyang et al. 2022,
// appendix C.4): no discount, GAE lambda 0.95, clip 0.2, a per-token KL
// penalty, the value model initialised from the reward model, an EMA of
// the policy.
type PPOOptions struct {
	Backend backend.Backend
	Policy  string // the SFT model: the policy's start and the frozen reference
	Reward  string // the reward model: the reward, and the value model's start
	// Prompts are the prompts answered in rollouts (each example's
	// Prompt, and its image, Images, for a LLaVA policy; other fields are
	// ignored). With a LLaVA policy (and a LLaVA reward model) every
	// prompt carries one image, with the same text before its <image>
	// (image_prompt.go): each rollout row sees its own.
	Prompts []data.Example
	// PtxTexts are pretraining documents; with PtxCoef > 0 their
	// language-modelling loss is mixed into every step (PPO-ptx).
	PtxTexts []string
	PtxCoef  float64
	PtxBatch int // windows per micro-batch (default 4)

	Batch       int     // prompts per rollout (default 16)
	MiniBatches int     // optimizer steps per pass over a rollout (default 2)
	Epochs      int     // passes over each rollout (default 2)
	MaxTokens   int     // new tokens per answer (default 64)
	Temperature float64 // sampling temperature of rollouts (default 1)

	KLCoef     float64 // beta, the KL penalty per token (default 0.02)
	TargetKL   float64 // > 0: adapt beta toward this KL per answer (Ziegler et al. 2019)
	KLHorizon  int     // the adaptive controller's horizon in samples (default 10000)
	ClipRange  float64 // policy ratio clip (default 0.2)
	ValueClip  float64 // value clip around the rollout's values (default 0.2)
	VFCoef     float64 // weight of the value loss (default 0.1)
	Gamma      float64 // discount (default 1)
	Lambda     float64 // GAE lambda (default 0.95)
	RewardClip float64 // reward-model scores are clipped to ±RewardClip (default 10)
	EMADecay   float64 // EMA of the policy, saved in OUT/ema (default 0.99; < 0 turns it off; off with LoRA)

	// LoRA, when set, trains low-rank adapters on the frozen policy (Out
	// is then a PEFT adapter folder over Policy; the reference is the
	// policy with its adapters off) and on the value model, whose backbone
	// is the reward model's own, shared (the reward is that backbone with
	// the adapters off and the reward model's head): Out/value is a PEFT
	// SEQ_CLS adapter over Reward, the value head as modules_to_save (over
	// a LLaVA reward model, as golem reward --lora-r writes one). No
	// EMA is kept (an average of the adapters' A and B is not one of their
	// product B A). Merge also writes the merged policy to Out/merged.
	LoRA  *gpt.LoRAConfig
	Merge bool

	Loop Config // Loop.Steps counts optimizer steps: Epochs*MiniBatches per rollout
	Log  io.Writer
}

func (o *PPOOptions) defaults() {
	def := func(p *float64, v float64) {
		if *p == 0 {
			*p = v
		}
	}
	defi := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	defi(&o.Batch, 16)
	defi(&o.MiniBatches, 2)
	defi(&o.Epochs, 2)
	defi(&o.MaxTokens, 64)
	defi(&o.KLHorizon, 10000)
	defi(&o.PtxBatch, 4)
	def(&o.Temperature, 1)
	def(&o.KLCoef, 0.02)
	def(&o.ClipRange, 0.2)
	def(&o.ValueClip, 0.2)
	def(&o.VFCoef, 0.1)
	def(&o.Gamma, 1)
	def(&o.Lambda, 0.95)
	def(&o.RewardClip, 10)
	def(&o.EMADecay, 0.99)
}

// rollout is one batch of sampled answers with everything PPO needs from
// the moment they were sampled. Per answer, index i of the slices refers
// to the answer's token i, Row[Start+i].
type rollout struct {
	Iter    int                `json:"iter"`
	Prompt  []int              `json:"prompt,omitempty"` // each row's prompt (index into the prompts), for its image
	Rows    [][]int            `json:"rows"`             // prompt + answer tokens
	Start   []int              `json:"start"`            // where each answer begins
	OldLogp [][]float32        `json:"old_logp"`
	Values  [][]float32        `json:"values"`
	Adv     [][]float32        `json:"adv"` // whitened GAE advantages
	Ret     [][]float32        `json:"ret"` // returns (value targets)
	Stats   map[string]float64 `json:"stats"`
}

// ppoState is what PPO keeps beside the model files so that a resumed run
// goes on exactly: the KL controller and the rollout being trained on.
type ppoState struct {
	KLCoef  float64  `json:"kl_coef"`
	Rollout *rollout `json:"rollout,omitempty"`
}

const ppoStateFile = "ppo_state.json"

type ppoTask struct {
	o        PPOOptions
	lm       *lmTrainee
	policy   *gpt.Model // lm.m
	ref      *gpt.Model // the frozen starting model (nil with LoRA: lm.reference)
	value    *gpt.Scorer
	rm       *gpt.Scorer // with LoRA, its backbone is value's, the adapters off
	ema      *gpt.Model
	tok      *tokenizer.Tokenizer
	prompts  [][]int
	vlm      *ppoVLM // nil for a text-only policy
	ptx      []int32
	ptxBlock int
	imEnd    int
	klCoef   float64
	ro       *rollout
	accum    int
	seed     uint64
	out      string
}

// PPO runs stage four of InstructGPT: the policy answers prompts, the
// reward model scores the answers, and PPO raises the score while a
// per-token KL penalty keeps the policy near the reference (the SFT model).
// Each rollout is a function of the seed and the rollout's index, and the
// KL controller, the rollout being trained on, the value model and the EMA
// are saved with every checkpoint, so a resumed run reaches the same state
// as one never stopped.
func PPO(ctx context.Context, o PPOOptions) (Result, error) {
	o.defaults()
	if o.Log == nil {
		o.Log = os.Stderr
	}
	cfg := o.Loop
	if cfg.Out == "" {
		return Result{}, errors.New("ppo: an output folder is needed (--out)")
	}
	if o.Policy == "" || o.Reward == "" {
		return Result{}, errors.New("ppo: a policy (--policy, the SFT model) and a reward model (--reward) are needed")
	}
	if len(o.Prompts) == 0 {
		return Result{}, errors.New("ppo: no prompts")
	}
	if o.Batch%o.MiniBatches != 0 || (o.Batch/o.MiniBatches)%max(1, cfg.Accum) != 0 {
		return Result{}, fmt.Errorf("ppo: a rollout of %d answers does not split into %d mini-batches of %d micro-batches", o.Batch, o.MiniBatches, max(1, cfg.Accum))
	}
	release, err := cfg.open() // lock Out; on resume, its files are the checkpoint's
	if err != nil {
		return Result{}, err
	}
	defer release()
	if o.Merge && o.LoRA == nil {
		return Result{}, errors.New("ppo: --merge needs LoRA (--lora-r)")
	}
	if o.LoRA != nil {
		o.EMADecay = -1
	}
	t := &ppoTask{o: o, klCoef: o.KLCoef, accum: max(1, cfg.Accum), seed: cfg.Seed, out: cfg.Out}
	if cfg.Resume {
		b, err := os.ReadFile(filepath.Join(cfg.Out, ppoStateFile))
		if err != nil {
			return Result{}, fmt.Errorf("ppo: --resume: %w", err)
		}
		var st ppoState
		if err := json.Unmarshal(b, &st); err != nil {
			return Result{}, fmt.Errorf("ppo: %s: %w", filepath.Join(cfg.Out, ppoStateFile), err)
		}
		t.klCoef, t.ro = st.KLCoef, st.Rollout
	}
	vision := llava.IsLLaVA(o.Policy)
	switch {
	case vision && !llava.IsScorer(o.Reward):
		return Result{}, fmt.Errorf("ppo: --policy %s is a vision-language model, but --reward %s is not one's reward model: train it with golem reward on the LLaVA folder, so that it sees the images", o.Policy, o.Reward)
	case !vision && llava.IsLLaVA(o.Reward):
		return Result{}, fmt.Errorf("ppo: --reward %s is a vision-language model's reward model, but --policy %s is a text-only model", o.Reward, o.Policy)
	}
	// The policy, whole or with LoRA (a LLaVA model's language model, its
	// tower and projector frozen), and the reference.
	if t.lm, err = loadTrainee(o.Backend, o.Policy, cfg, o.LoRA, "ppo"); err != nil {
		return Result{}, err
	}
	t.policy = t.lm.m
	if t.ref, t.tok, err = t.lm.loadRef(o.Backend, o.Policy, "ppo: --policy"); err != nil {
		return Result{}, err
	}
	if vision {
		t.vlm = &ppoVLM{lm: t.lm}
		if t.vlm.rm, err = llava.LoadScorer(o.Backend, o.Reward); err != nil {
			return Result{}, fmt.Errorf("ppo: --reward: %w", err)
		}
		t.rm = t.vlm.rm.Score
		freeze(t.vlm.rm.Params()) // its tower and projector too: the value model's, with LoRA
	} else if t.rm, err = gpt.LoadScorer(o.Backend, o.Reward); err != nil {
		return Result{}, fmt.Errorf("ppo: --reward: %w", err)
	}
	freeze(t.rm.Params())
	var rmTok *tokenizer.Tokenizer
	if vision {
		rmTok, err = llava.LoadTokenizer(o.Reward, &t.vlm.rm.Config)
	} else {
		rmTok, err = tokenizer.Load(o.Reward)
	}
	if err != nil {
		return Result{}, fmt.Errorf("ppo: --reward: %w", err)
	}
	if err := sameTokenizer(t.tok, rmTok, o.Policy, o.Reward); err != nil {
		return Result{}, fmt.Errorf("ppo: %w", err)
	}
	if t.rm.Config.Vocab != t.policy.Config.Vocab {
		return Result{}, fmt.Errorf("ppo: the reward model has a vocabulary of %d, the policy %d", t.rm.Config.Vocab, t.policy.Config.Vocab)
	}
	if err := t.loadValue(cfg); err != nil {
		return Result{}, err
	}
	emaFrom := o.Policy
	if cfg.Resume {
		emaFrom = filepath.Join(cfg.Out, "ema")
	}
	if o.EMADecay > 0 && t.vlm != nil {
		if t.vlm.ema, _, err = loadVLM(o.Backend, emaFrom, "ppo: EMA"); err != nil {
			return Result{}, err
		}
		t.ema = t.vlm.ema.LM
		freeze(t.ema.Params())
	} else if o.EMADecay > 0 {
		if t.ema, _, err = loadLM(o.Backend, emaFrom, "ppo: EMA"); err != nil {
			return Result{}, err
		}
		freeze(t.ema.Params())
	}
	c := newChat(t.tok, t.policy.Config.Context, false)
	t.imEnd = c.imEnd
	if t.vlm != nil {
		c.vision = t.lm.vlm
		if t.imEnd, err = t.vlm.prompts(c, o.Prompts, o.Policy); err != nil {
			return Result{}, err
		}
		t.prompts = t.vlm.ids
	} else {
		files := newImageFiles(nil)
		for i := range o.Prompts {
			e := &o.Prompts[i]
			where := promptWhere(e, i)
			if _, err := files.pixels(e.Images, o.Policy, "ppo", where); err != nil {
				return Result{}, err
			}
			ids, err := c.prompt(e.Prompt, where)
			if err != nil {
				return Result{}, fmt.Errorf("ppo: %w", err)
			}
			t.prompts = append(t.prompts, ids)
		}
	}
	if o.PtxCoef > 0 {
		if len(o.PtxTexts) == 0 {
			return Result{}, errors.New("ppo: PPO-ptx needs pretraining text (--ptx FILE)")
		}
		eot, _ := t.tok.SpecialID(tokenizer.EndOfText)
		for _, d := range o.PtxTexts {
			for _, id := range t.tok.Encode(d) {
				t.ptx = append(t.ptx, int32(id))
			}
			t.ptx = append(t.ptx, int32(eot))
		}
		t.ptxBlock = min(t.policy.Config.Context, 64)
		if len(t.ptx) <= t.ptxBlock+1 {
			return Result{}, fmt.Errorf("ppo: the pretraining text has %d tokens, too few for windows of %d", len(t.ptx), t.ptxBlock)
		}
	}
	fmt.Fprintf(o.Log, "ppo: %d prompts, rollouts of %d answers, %d optimizer steps each; %s, %.2fM parameters trained in the policy, %.2fM in the value model\n",
		len(t.prompts), o.Batch, o.Epochs*o.MiniBatches, t.lm.method(), float64(nn.Count(t.lm.params()))/1e6, float64(nn.Count(t.valueParams()))/1e6)
	if cfg.Progress == nil {
		cfg.Progress = o.Log
	}
	cfg.Card = &ModelCard{Stage: "ppo", Base: o.Policy, Data: []string{fmt.Sprintf("%d prompts, scored by the reward model `%s`", len(t.prompts), o.Reward)},
		What: fmt.Sprintf("PPO against a reward model with a KL penalty (beta %g) to the starting model; %s; the value model is in value/", o.KLCoef, t.lm.method())}
	if t.ema != nil {
		cfg.Card.What += ", the policy's EMA in ema/"
	}
	cfg.checkpointModels(t.policy, t.value.Model)
	res, err := Run(ctx, cfg, t)
	if err != nil {
		return res, err
	}
	_, err = t.lm.mergeAfter(o.Merge, res, o.Log)
	return res, err
}

// loadValue loads the value model: whole, the reward model (Out/value
// on resume) as a copy of its own; with LoRA, adapters and a copy of the
// reward model's head over the reward model's backbone, shared (rm is
// then that backbone with the adapters off), or Out/value's on resume.
// A LLaVA reward model's value model is so too: with LoRA, it shares the
// reward model's tower, projector and language model (all frozen), the
// adapters on the language model.
func (t *ppoTask) loadValue(cfg Config) error {
	o := &t.o
	if o.LoRA == nil {
		from := o.Reward
		if cfg.Resume {
			from = filepath.Join(cfg.Out, "value")
		}
		if t.vlm != nil {
			if err := t.vlm.loadValue(o.Backend, from); err != nil {
				return err
			}
			t.value = t.vlm.value.Score
			return nil
		}
		var err error
		if t.value, err = gpt.LoadScorer(o.Backend, from); err != nil {
			return fmt.Errorf("ppo: value model: %w", err)
		}
		if len(t.value.LoRAParams()) > 0 {
			// A reward model trained with LoRA (an adapter over its base): the
			// value model starts from it merged and trains whole.
			t.value.MergeLoRA()
			for _, p := range t.value.Params() {
				p.Tensor.SetRequiresGrad(true)
			}
		}
		return nil
	}
	if len(t.rm.LoRAParams()) > 0 {
		t.rm.MergeLoRA() // a reward adapter: its backbone merged, as loading Out/value over it does
	}
	w := t.rm.Score.Weight
	t.value = &gpt.Scorer{Model: t.rm.Model, Bias: t.rm.Bias,
		Score: &nn.Linear{Weight: tensor.FromHost(w.Backend(), w.Host(), w.Shape()...).SetRequiresGrad(true)}}
	apply := t.value.ApplyAdapter
	if t.vlm != nil {
		t.vlm.value = &llava.Scorer{Model: t.vlm.rm.Model, Score: t.value}
		apply = t.vlm.value.ApplyAdapter
	}
	if cfg.Resume {
		if err := apply(filepath.Join(cfg.Out, "value")); err != nil {
			return fmt.Errorf("ppo: --resume: value model: %w", err)
		}
		for _, md := range t.value.Modules() {
			if l := md.Linear.LoRA; l != nil {
				l.Dropout = o.LoRA.Dropout // the file's is for inference; the run's is the flag's
			}
		}
		return nil
	}
	c := *o.LoRA
	if _, err := t.value.AttachLoRA(c, cfg.Seed+11); err != nil {
		return fmt.Errorf("ppo: value model: %w", err)
	}
	return nil
}

// valueLoRA reports whether the value model trains through LoRA adapters
// on the reward model's backbone: with LoRA, on a text policy or a LLaVA
// one alike.
func (t *ppoTask) valueLoRA() bool { return t.o.LoRA != nil }

// valueParams is what trains of the value model: all of it, or with LoRA
// its adapters and its head.
func (t *ppoTask) valueParams() []nn.Named {
	if !t.valueLoRA() {
		return t.value.Params()
	}
	return append(t.value.LoRAParams(), nn.Named{Name: "score.weight", Tensor: t.value.Score.Weight})
}

// rewardScores runs fn on the reward model: with LoRA, its backbone (the
// value model's) with the adapters off.
func (t *ppoTask) rewardScores(fn func()) {
	if t.valueLoRA() {
		t.value.WithoutLoRA(fn)
		return
	}
	fn()
}

func freeze(ps []nn.Named) {
	for _, p := range ps {
		p.Tensor.SetRequiresGrad(false)
	}
}

// Params returns the policy's trained parameters and the value model's,
// under "value." (one optimizer trains both).
func (t *ppoTask) Params() []nn.Named {
	ps := t.lm.params()
	for _, p := range t.valueParams() {
		ps = append(ps, nn.Named{Name: "value." + p.Name, Tensor: p.Tensor})
	}
	return ps
}

// Shape is PPO's iteration: Epochs passes over each rollout, each of
// MiniBatches optimizer steps.
func (t *ppoTask) Shape() (epochs, minibatches int) { return t.o.Epochs, t.o.MiniBatches }

// Rollout makes rollout iteration iter: the policy answers Batch prompts,
// the models score the answers, and GAE turns the rewards into
// advantages; then the adaptive controller updates beta. A run resumed
// inside iteration iter goes on with the rollout of its checkpoint.
func (t *ppoTask) Rollout(iter int, restored bool) error {
	if restored {
		if t.ro != nil && t.ro.Iter == iter && t.vlm != nil && len(t.ro.Prompt) != len(t.ro.Rows) {
			return fmt.Errorf("ppo: %s: the rollout does not say which prompt (and image) each row answers", filepath.Join(t.out, ppoStateFile))
		}
		if t.ro == nil || t.ro.Iter != iter {
			have := "no rollout"
			if t.ro != nil {
				have = fmt.Sprintf("rollout %d", t.ro.Iter)
			}
			return fmt.Errorf("ppo: %s holds %s, but the checkpoint is in the middle of rollout %d (the folder's files are from different runs?)", filepath.Join(t.out, ppoStateFile), have, iter)
		}
		return nil
	}
	a, err := t.sample(iter)
	if err != nil {
		return err
	}
	sc := t.score(a)
	t.ro = t.advantages(iter, a, sc)
	t.adaptKL(t.ro.Stats["kl"])
	return nil
}

// sample draws rollout iter's prompts (an epoch-wise permutation of
// them) and the policy's answers.
func (t *ppoTask) sample(iter int) (answers, error) {
	B := t.o.Batch
	prompts, idx := make([][]int, B), make([]int, B)
	for i := range prompts {
		idx[i] = epochOrder(t.seed^0x9e3779b9, len(t.prompts), iter*B+i)
		prompts[i] = t.prompts[idx[i]]
	}
	var v *llava.Model
	var ip *imagePrompts
	if t.vlm != nil {
		v, ip = t.lm.vlm, &t.vlm.imagePrompts
	}
	return ip.sample(t.policy, v, prompts, idx, t.o.MaxTokens, t.o.Temperature, t.imEnd, stepRand(t.seed, "ppo-sample", iter).Uint64())
}

// scores is what the models say of a rollout's rows, padded to [B, T]:
// the policy's and the reference's log-probabilities of each next token,
// the value model's values, and the reward model's score of each answer.
type scores struct {
	T                     int
	logp, refLogp, values []float32
	reward                []float32
}

// score runs the policy, the reference, the value model and the reward
// model over the rows, with gradients off.
func (t *ppoTask) score(a answers) scores {
	o := &t.o
	B := len(a.rows)
	ids, T := padRows(a.rows, t.policy.Config.Context-t.prefixLen())
	tg, _ := t.targets(a.rows, a.start, T)
	last := make([]int, B)
	for b, r := range a.rows {
		last[b] = len(r) - 1
	}
	logps := func(m *gpt.Model, name string) []float32 {
		return noGradValues(func(s *tensor.Scope) *tensor.Tensor {
			return tokenLogProbsAfter(s, m, t.embeds(s, t.vlm.of(name), a.prompt), ids, tg, B, T, o.Temperature)
		})
	}
	sc := scores{T: T, logp: logps(t.policy, "policy"),
		values: noGradValues(func(s *tensor.Scope) *tensor.Tensor {
			return t.value.Values(ids, B, T, gpt.Options{Scope: s, Embeds: t.embeds(s, t.vlm.of("value"), a.prompt)})
		}),
	}
	t.lm.reference(t.ref, func(ref *gpt.Model) { sc.refLogp = logps(ref, "ref") })
	t.rewardScores(func() {
		sc.reward = noGradValues(func(s *tensor.Scope) *tensor.Tensor {
			return t.rm.Scores(ids, B, T, last, gpt.Options{Scope: s, Embeds: t.embeds(s, t.vlm.of("rm"), a.prompt)})
		})
	})
	return sc
}

// advantages turns a scored rollout into PPO's training data: per answer
// token, the old log-probability, the value, the reward (the clipped
// reward-model score at the last token, minus beta times the KL estimate
// log pi - log ref at every token), the GAE advantage (whitened over the
// rollout) and the return.
func (t *ppoTask) advantages(iter int, a answers, sc scores) *rollout {
	o := &t.o
	B, T := len(a.rows), sc.T
	logp, refLogp, values, scores := sc.logp, sc.refLogp, sc.values, sc.reward
	ro := &rollout{Iter: iter, Rows: a.rows, Start: a.start, Stats: map[string]float64{}}
	if t.vlm != nil {
		ro.Prompt = a.prompt
	}
	beta := float32(t.klCoef)
	clip := float32(o.RewardClip)
	var klSum, k3Sum, scoreSum, lenSum float64
	var allAdv []float64
	for b, r := range ro.Rows {
		n := len(r) - ro.Start[b]
		p0 := ro.Start[b] - 1 // position predicting the first answer token
		old, val, rew := make([]float32, n), make([]float32, n), make([]float32, n)
		kl := 0.0
		for i := 0; i < n; i++ {
			k := b*T + p0 + i
			old[i], val[i] = logp[k], values[k]
			d := logp[k] - refLogp[k]
			kl += float64(d)
			k3Sum += math.Expm1(float64(-d)) + float64(d) // k3 = (r - 1) - log r, r = ref/pi: never negative
			rew[i] = -beta * d
		}
		s := min(max(scores[b], -clip), clip)
		rew[n-1] += s
		// GAE: delta_i = r_i + gamma V_{i+1} - V_i, A_i = delta_i + gamma lambda A_{i+1}.
		adv, ret := make([]float32, n), make([]float32, n)
		var next, run float64
		for i := n - 1; i >= 0; i-- {
			delta := float64(rew[i]) + o.Gamma*next - float64(val[i])
			run = delta + o.Gamma*o.Lambda*run
			adv[i], ret[i] = float32(run), float32(run+float64(val[i]))
			next = float64(val[i])
		}
		for _, a := range adv {
			allAdv = append(allAdv, float64(a))
		}
		ro.OldLogp, ro.Values, ro.Adv, ro.Ret = append(ro.OldLogp, old), append(ro.Values, val), append(ro.Adv, adv), append(ro.Ret, ret)
		klSum += kl
		scoreSum += float64(scores[b])
		lenSum += float64(n)
	}
	// Whiten the advantages over the rollout.
	mu := mean(allAdv)
	v := 0.0
	for _, a := range allAdv {
		v += (a - mu) * (a - mu)
	}
	sd := math.Sqrt(v/float64(max(1, len(allAdv)-1))) + 1e-8
	for _, adv := range ro.Adv {
		for i := range adv {
			adv[i] = float32((float64(adv[i]) - mu) / sd)
		}
	}
	kl := klSum / float64(B)
	ro.Stats["reward"] = scoreSum / float64(B)
	ro.Stats["kl"] = kl                    // k1, the sum of log pi - log ref: the penalty's and the controller's estimate; can be negative
	ro.Stats["kl_k3"] = k3Sum / float64(B) // the same KL by k3 (Schulman), never negative
	ro.Stats["kl_coef"] = t.klCoef
	ro.Stats["response_len"] = lenSum / float64(B)
	return ro
}

// adaptKL moves beta toward the KL per answer TargetKL (Ziegler et al.
// 2019), when one is set.
func (t *ppoTask) adaptKL(kl float64) {
	o := &t.o
	if o.TargetKL > 0 {
		e := min(max(kl/o.TargetKL-1, -0.2), 0.2)
		t.klCoef *= 1 + e*float64(o.Batch)/float64(o.KLHorizon)
	}
}

// targets returns the next-token targets of rows [B, T] (the answer's
// tokens, -1 elsewhere) and a mask of the positions predicting them.
func (t *ppoTask) targets(rows [][]int, start []int, T int) ([]int32, []float32) {
	tg := make([]int32, len(rows)*T)
	mask := make([]float32, len(rows)*T)
	for b, r := range rows {
		for p := 0; p < T; p++ {
			tg[b*T+p] = -1
			if p+1 >= start[b] && p+1 < len(r) {
				tg[b*T+p] = int32(r[p+1])
				mask[b*T+p] = 1
			}
		}
	}
	return tg, mask
}

// Loss is PPO's loss on one micro-batch of minibatch mb.Index of pass
// mb.Epoch over the rollout: the clipped policy objective, the clipped
// value loss, and with PPO-ptx the pretraining loss.
func (t *ppoTask) Loss(s *tensor.Scope, mb Minibatch) (*tensor.Tensor, int, map[string]float64, error) {
	o := &t.o
	ro := t.ro
	order := stepRand(t.seed, "ppo-minibatch", mb.Iter*o.Epochs+mb.Epoch).Perm(o.Batch)
	mbSize := o.Batch / o.MiniBatches
	size := mbSize / t.accum
	idx := order[mb.Index*mbSize+mb.Micro*size : mb.Index*mbSize+(mb.Micro+1)*size]

	B := len(idx)
	rows := make([][]int, B)
	start := make([]int, B)
	var prompt []int // each row's prompt, for its image
	for i, j := range idx {
		rows[i], start[i] = ro.Rows[j], ro.Start[j]
		if t.vlm != nil {
			prompt = append(prompt, ro.Prompt[j])
		}
	}
	P := t.prefixLen()
	ids, T := padRows(rows, t.policy.Config.Context-P)
	tg, mask := t.targets(rows, start, T)
	old, adv, ret, oldV := make([]float32, B*T), make([]float32, B*T), make([]float32, B*T), make([]float32, B*T)
	n := 0
	for i, j := range idx {
		p0 := start[i] - 1
		for a := range ro.Adv[j] {
			q := i*T + p0 + a
			old[q], adv[q], ret[q], oldV[q] = ro.OldLogp[j][a], ro.Adv[j][a], ro.Ret[j][a], ro.Values[j][a]
			n++
		}
	}
	w := make([]float32, B*T)
	for q, m := range mask {
		w[q] = m / float32(n)
	}
	be := t.policy.Embed.Weight.Backend()
	V := t.policy.Config.Vocab
	t.lm.setSeed(t.seed ^ uint64(mb.Step)<<20 ^ uint64(mb.Micro))
	if t.valueLoRA() {
		t.value.SetLoRASeed(t.seed ^ uint64(mb.Step)<<20 ^ uint64(mb.Micro) ^ 0x5bd1e995)
	}
	h := t.policy.Forward(ids, B, T, gpt.Options{Scope: s, Embeds: t.embeds(s, t.vlm.of("policy"), prompt)})
	if P > 0 {
		h = tensor.Slice(h, 1, P, P+T)
	}
	logits := tensor.Reshape(tempered(t.policy.Logits(h), o.Temperature), B*T, V)
	logp := tensor.TokenLogProbs(logits, tg)
	eps := float32(o.ClipRange)
	advT := s.FromHost(be, adv, B*T)
	ratio := tensor.Exp(tensor.Sub(logp, s.FromHost(be, old, B*T)))
	pg := tensor.Neg(tensor.Minimum(tensor.Mul(ratio, advT), tensor.Mul(tensor.Clamp(ratio, 1-eps, 1+eps), advT)))
	wT := s.FromHost(be, w, B*T)
	pgLoss := tensor.Sum(tensor.Mul(pg, wT))

	v := tensor.Reshape(t.value.Values(ids, B, T, gpt.Options{Scope: s, Embeds: t.embeds(s, t.vlm.of("value"), prompt)}), B*T)
	oldVT, retT := s.FromHost(be, oldV, B*T), s.FromHost(be, ret, B*T)
	ev := float32(o.ValueClip)
	vClip := tensor.Add(oldVT, tensor.Clamp(tensor.Sub(v, oldVT), -ev, ev))
	vf := tensor.Scale(tensor.Maximum(tensor.Square(tensor.Sub(v, retT)), tensor.Square(tensor.Sub(vClip, retT))), 0.5)
	vfLoss := tensor.Sum(tensor.Mul(vf, wT))
	loss := tensor.Add(pgLoss, tensor.Scale(vfLoss, float32(o.VFCoef)))

	// Diagnostics, from the forward pass's values.
	lh, rh := logp.Host(), ratio.Host()
	lg := logits.Host()
	var clipped, approxKL, ent float64
	for q, m := range mask {
		if m == 0 {
			continue
		}
		if math.Abs(float64(rh[q])-1) > float64(eps) {
			clipped++
		}
		lr := float64(lh[q] - old[q])
		approxKL += math.Exp(lr) - 1 - lr
		ent += entropy(lg[q*V : (q+1)*V])
	}
	metrics := map[string]float64{
		"policy_loss": float64(pgLoss.Item()), "value_loss": float64(vfLoss.Item()),
		"clip_frac": clipped / float64(n), "approx_kl": approxKL / float64(n), "entropy": ent / float64(n),
	}
	for k, v := range ro.Stats {
		metrics[k] = v
	}
	if o.PtxCoef > 0 {
		r := stepRand(t.seed, "ppo-ptx", mb.Step*t.accum+mb.Micro)
		P, bl := o.PtxBatch, t.ptxBlock
		pid, ptg := make([]int32, P*bl), make([]int32, P*bl)
		for b := 0; b < P; b++ {
			at := r.IntN(len(t.ptx) - bl)
			copy(pid[b*bl:], t.ptx[at:at+bl])
			copy(ptg[b*bl:], t.ptx[at+1:at+bl+1])
		}
		ptx := t.policy.Loss(pid, ptg, P, bl, gpt.Options{Scope: s})
		metrics["ptx_loss"] = float64(ptx.Item())
		loss = tensor.Add(loss, tensor.Scale(ptx, float32(o.PtxCoef)))
	}
	return loss, n, metrics, nil
}

// AfterStep moves the EMA toward the updated policy.
func (t *ppoTask) AfterStep(int) {
	if t.ema == nil {
		return
	}
	d := float32(t.o.EMADecay)
	src := t.policy.Params()
	for i, p := range t.ema.Params() {
		e, s := p.Tensor.Host(), src[i].Tensor.Host()
		for j := range e {
			e[j] = d*e[j] + (1-d)*s[j]
		}
		p.Tensor.Set(e)
	}
}

// entropy of softmax(logits), in nats.
func entropy(logits []float32) float64 {
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = math.Max(mx, float64(v))
	}
	var z, s float64
	for _, v := range logits {
		e := math.Exp(float64(v) - mx)
		z += e
		s += e * (float64(v) - mx)
	}
	return math.Log(z) - s/z
}

// Eval reports the last rollout's statistics (PPO's evaluation is the
// rollouts themselves; the demo evaluates held-out prompts separately).
func (t *ppoTask) Eval() (map[string]float64, error) {
	m := map[string]float64{}
	if t.ro != nil {
		for k, v := range t.ro.Stats {
			m[k] = v
		}
	}
	return m, nil
}

// Save writes the policy (with its tokenizer), the value model in
// OUT/value, the EMA in OUT/ema, and PPO's state; with LoRA, the policy's
// and the value model's PEFT adapter folders.
func (t *ppoTask) Save(dir string) error {
	if err := t.saveModels(dir); err != nil {
		return err
	}
	b, err := json.Marshal(ppoState{KLCoef: t.klCoef, Rollout: t.ro})
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, ppoStateFile), b)
}

func (t *ppoTask) saveModels(dir string) error {
	if err := t.lm.save(dir); err != nil {
		return err
	}
	if err := t.saveValue(filepath.Join(dir, "value")); err != nil {
		return err
	}
	switch edir := filepath.Join(dir, "ema"); {
	case t.vlm != nil && t.vlm.ema != nil:
		if err := t.vlm.ema.Save(edir); err != nil {
			return err
		}
		return llava.SaveTokenizer(t.tok, edir, &t.vlm.ema.Config)
	case t.ema != nil:
		return saveModel(edir, t.ema, t.tok)
	}
	return nil
}

// saveValue writes the value model into vdir with the tokenizer: whole
// (a LLaVA folder for a LLaVA reward model's), or with LoRA a PEFT
// SEQ_CLS adapter over the reward model (a LLaVA reward model's as
// golem reward --lora-r writes one).
func (t *ppoTask) saveValue(vdir string) error {
	base := relBase(filepath.Join(t.out, "value"), t.o.Reward)
	var err error
	switch {
	case t.vlm != nil && t.valueLoRA():
		err = t.vlm.value.SaveLoRA(vdir, *t.o.LoRA, base)
	case t.vlm != nil:
		err = t.vlm.value.Save(vdir)
	case t.valueLoRA():
		err = t.value.SaveLoRA(vdir, *t.o.LoRA, base)
	default:
		return saveScorer(vdir, t.value, t.tok)
	}
	if err != nil {
		return err
	}
	if t.vlm != nil {
		return llava.SaveTokenizer(t.tok, vdir, &t.vlm.value.Config)
	}
	return t.tok.SaveForModel(vdir, t.value.Config.Context)
}

// ppoVLM is PPO on a vision-language model (model/llava): each model is
// a LLaVA model's language model (the policy lm's, whole or with LoRA;
// the reward and value models a LLaVA reward model's, with LoRA one
// model: the value model its adapters and its head over the reward
// model's, shared), its vision tower and projector frozen, and each rollout row sees its prompt's image,
// through the input embeddings of that model (rowPrefixes) in sampling,
// scoring and training alike.
type ppoVLM struct {
	lm        *lmTrainee // the policy and, whole, its reference (refVLM)
	ema       *llava.Model
	value, rm *llava.Scorer
	imagePrompts
}

// loadValue loads the value model to train whole from a LLaVA reward
// model (from): its language model and head; the tower and projector
// stay (with LoRA, ppoTask.loadValue shares the reward model's instead).
func (v *ppoVLM) loadValue(be backend.Backend, from string) error {
	var err error
	if v.value, err = llava.LoadScorer(be, from); err != nil {
		return fmt.Errorf("ppo: value model: %w", err)
	}
	freeze(v.value.Params())
	for _, p := range v.value.Score.Params() {
		p.Tensor.SetRequiresGrad(true)
	}
	return nil
}

// prompts renders the prompts in the format the LLaVA model was trained
// in, each with its image (imagePrompts.add), and returns the end token
// the answers stop at.
func (v *ppoVLM) prompts(c *chat, ex []data.Example, model string) (int, error) {
	files := newImageFiles(v.lm.vlm)
	end, err := imageEnd(c, model, "ppo")
	if err != nil {
		return 0, err
	}
	for i := range ex {
		e := &ex[i]
		if err := v.add(c, files, e.Prompt, e.Images, model, "ppo", promptWhere(e, i)); err != nil {
			return 0, err
		}
	}
	return end, nil
}

// of returns the LLaVA model around one of PPO's models: "policy",
// "ref", "value" or "rm"; nil for a text-only run (v nil).
func (v *ppoVLM) of(model string) *llava.Model {
	if v == nil {
		return nil
	}
	switch model {
	case "policy":
		return v.lm.vlm
	case "ref": // with LoRA, the policy with its adapters off
		return v.lm.refVision()
	case "value":
		return v.value.Model
	case "rm":
		return v.rm.Model
	}
	panic("ppo: no model " + model)
}

// embeds returns what goes before the rows of prompts (indices into the
// prompts) for the LLaVA model v: [B, P, C] in scope s; nil for text.
func (t *ppoTask) embeds(s *tensor.Scope, v *llava.Model, prompts []int) *tensor.Tensor {
	if v == nil {
		return nil
	}
	return t.vlm.embeds(s, v, prompts)
}

// prefixLen is the positions before each row's tokens: its image's and
// the text's before it; 0 for text.
func (t *ppoTask) prefixLen() int {
	if t.vlm == nil {
		return 0
	}
	return t.vlm.prefixLen(t.lm.vlm)
}

// promptWhere names prompt i of a stage's prompts in errors: its source
// (file:line), else its number.
func promptWhere(e *data.Example, i int) string {
	if e.Source != "" {
		return e.Source
	}
	return fmt.Sprintf("prompt %d", i+1)
}
