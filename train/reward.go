package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// RewardOptions configures Reward.
type RewardOptions struct {
	Backend backend.Backend
	// Model is the folder of the language model the reward model starts
	// from (InstructGPT starts from the SFT model).
	Model string
	// Data holds Preference and Ranking examples. A ranking of K answers
	// is one training item whose C(K,2) pairs are all in the same batch
	// (InstructGPT: it avoids overfitting to answers seen K-1 times).
	Data []data.Example
	// Heldout holds the examples evaluated on; when nil, HeldoutFrac of
	// the prompts of Data (default 0.1) are held out, chosen by a hash of
	// the prompt.
	Heldout     []data.Example
	HeldoutFrac float64
	// Demos are demonstrations (prompt and answer) whose mean reward is
	// shifted to 0; nil uses the best answer of each training item.
	Demos []data.Example
	// Batch is the number of items (rankings or pairs) per micro-batch
	// (default 8).
	Batch int
	// Truncate keeps the end of conversations too long for the context
	// instead of failing.
	Truncate bool
	// FreezeEmbeddings keeps the token and position embeddings as the
	// starting model has them. With a few thousand comparisons it helps a
	// little (the demo's held-out accuracy 0.75 against 0.72).
	FreezeEmbeddings bool
	// LoRA, when set, trains low-rank adapters on the frozen backbone and
	// the score head whole; Out is then a PEFT SEQ_CLS adapter folder (the
	// head as modules_to_save). Merge also writes the merged reward model
	// to Out/merged.
	LoRA  *gpt.LoRAConfig
	Merge bool
	Loop  Config
	Log   io.Writer
}

// RewardReport is the held-out evaluation of a reward model.
type RewardReport struct {
	// Accuracy, Margin and LengthCorr are 0 when Pairs is 0 (written as
	// JSON null): nothing was measured.
	Accuracy   float64 `json:"accuracy"`    // pairs ordered as labelled (ties count half)
	Margin     float64 `json:"margin"`      // mean r(chosen) - r(rejected)
	LengthCorr float64 `json:"length_corr"` // Pearson correlation of reward and answer length: a reward-hacking signal
	Pairs      int     `json:"pairs"`       // held-out pairs
	Bias       float64 `json:"bias"`        // the offset that centres demonstrations on 0
}

// MarshalJSON writes accuracy, margin and length_corr as null when there
// were no held-out pairs to measure them on (rather than a misleading 0).
func (r RewardReport) MarshalJSON() ([]byte, error) {
	type plain RewardReport
	if r.Pairs > 0 {
		return json.Marshal(plain(r))
	}
	return json.Marshal(struct {
		Accuracy   *float64 `json:"accuracy"`
		Margin     *float64 `json:"margin"`
		LengthCorr *float64 `json:"length_corr"`
		Pairs      int      `json:"pairs"`
		Bias       float64  `json:"bias"`
	}{Pairs: 0, Bias: r.Bias})
}

// rankItem is one prompt's answers and the pairs between them.
type rankItem struct {
	seqs   [][]int // prompt + answer, ending at <|im_end|>
	img    *imagePrompt
	lens   []int // answer tokens
	pairs  []data.Pair
	source string
}

type rewardTask struct {
	s          *gpt.Scorer
	vlm        *llava.Scorer // a reward model that sees (s is its head), else nil
	tok        *tokenizer.Tokenizer
	train, val []rankItem
	demos      [][]int
	demoImgs   []*imagePrompt
	batch      int
	accum      int
	seed       uint64
	report     RewardReport
	lora       *gpt.LoRAConfig // nil: the whole model trains
	base, out  string          // with LoRA: the base model's folder, Out
}

// Reward trains a reward model (stage three of InstructGPT): the language
// model in o.Model with a scalar head, on pairs and rankings, with the loss
// -log σ(r(chosen) - r(rejected)) averaged over each item's pairs. The
// model is saved with its tokenizer and with an offset that makes the
// demonstrations' rewards average 0. Result.Eval holds the held-out
// "accuracy", "margin" and "length_corr".
func Reward(ctx context.Context, o RewardOptions) (Result, RewardReport, error) {
	if o.Log == nil {
		o.Log = os.Stderr
	}
	cfg := o.Loop
	if cfg.Out == "" {
		return Result{}, RewardReport{}, errors.New("reward: an output folder is needed (--out)")
	}
	if len(o.Data) == 0 {
		return Result{}, RewardReport{}, errors.New("reward: no comparisons to train on")
	}
	release, err := cfg.open() // lock Out; on resume, its files are the checkpoint's
	if err != nil {
		return Result{}, RewardReport{}, err
	}
	defer release()
	if o.Merge && o.LoRA == nil {
		return Result{}, RewardReport{}, errors.New("reward: --merge needs LoRA (--lora-r)")
	}
	var s *gpt.Scorer
	var vs *llava.Scorer
	var tok *tokenizer.Tokenizer
	var lora *gpt.LoRAConfig
	base := o.Model
	if vlm := llava.IsLLaVA(o.Model) || (cfg.Resume && llava.IsLLaVA(cfg.Out)); vlm && cfg.Resume {
		switch adapter := gpt.IsAdapter(cfg.Out); {
		case adapter && o.LoRA == nil:
			return Result{}, RewardReport{}, fmt.Errorf("reward: --resume: %s holds a LoRA adapter; pass the same --lora-r", cfg.Out)
		case !adapter && o.LoRA != nil:
			return Result{}, RewardReport{}, fmt.Errorf("reward: --resume: %s holds a full model, not a LoRA adapter (resume without --lora-r)", cfg.Out)
		case adapter:
			var c gpt.LoRAConfig
			if vs, c, err = llava.LoadScorerLoRA(o.Backend, cfg.Out); err != nil {
				return Result{}, RewardReport{}, fmt.Errorf("reward: --resume: %w", err)
			}
			a, err := gpt.ReadAdapterConfig(cfg.Out)
			if err != nil {
				return Result{}, RewardReport{}, fmt.Errorf("reward: --resume: %w", err)
			}
			c.Dropout = o.LoRA.Dropout // PEFT's file says 0 at inference; the run's is the flag's
			lora, base = &c, a.Base
		default:
			if vs, err = llava.LoadScorer(o.Backend, cfg.Out); err != nil {
				return Result{}, RewardReport{}, fmt.Errorf("reward: --resume: %w", err)
			}
			freeze(vs.ProjectorParams())
			for _, p := range vs.Score.Params() {
				p.Tensor.SetRequiresGrad(true)
			}
		}
		if tok, err = llava.LoadTokenizer(cfg.Out, &vs.Config); err != nil {
			return Result{}, RewardReport{}, fmt.Errorf("reward: --resume: %w", err)
		}
		s = vs.Score
		s.Bias = 0 // training never adds the offset (Save)
	} else if vlm {
		if o.LoRA != nil && gpt.IsAdapter(o.Model) {
			return Result{}, RewardReport{}, fmt.Errorf("reward: %s is a LoRA adapter; LoRA on it needs its merged LLaVA folder (golem vlm --merge writes OUT/merged)", o.Model)
		}
		v, t, err := loadVLM(o.Backend, o.Model, "reward")
		if err != nil {
			return Result{}, RewardReport{}, err
		}
		vs, tok = llava.NewScorer(v, cfg.Seed+17), t
		s = vs.Score
		if o.LoRA != nil { // adapters on the language model, the head whole (PEFT's SEQ_CLS)
			c := *o.LoRA
			if _, err := s.AttachLoRA(c, cfg.Seed+7); err != nil {
				return Result{}, RewardReport{}, fmt.Errorf("reward: %w", err)
			}
			lora = &c
		}
	} else if cfg.Resume {
		var err error
		if s, err = gpt.LoadScorer(o.Backend, cfg.Out); err != nil {
			return Result{}, RewardReport{}, fmt.Errorf("reward: --resume: %w", err)
		}
		if tok, err = tokenizer.Load(cfg.Out); err != nil {
			return Result{}, RewardReport{}, fmt.Errorf("reward: --resume: %w", err)
		}
		s.Bias = 0 // training never adds the offset (Save)
		switch adapter := gpt.IsAdapter(cfg.Out); {
		case adapter && o.LoRA == nil:
			return Result{}, RewardReport{}, fmt.Errorf("reward: --resume: %s holds a LoRA adapter; pass the same --lora-r", cfg.Out)
		case !adapter && o.LoRA != nil:
			return Result{}, RewardReport{}, fmt.Errorf("reward: --resume: %s holds a full model, not a LoRA adapter (resume without --lora-r)", cfg.Out)
		case adapter:
			a, err := gpt.ReadAdapterConfig(cfg.Out)
			if err != nil {
				return Result{}, RewardReport{}, fmt.Errorf("reward: --resume: %w", err)
			}
			c := a.LoRA
			c.Dropout = o.LoRA.Dropout
			lora, base = &c, a.Base
		}
	} else {
		lm, t, err := loadPolicy(o.Backend, o.Model, "reward")
		if err != nil {
			return Result{}, RewardReport{}, err
		}
		s, tok = gpt.NewScorer(lm, cfg.Seed+17), t
		if o.LoRA != nil {
			c := *o.LoRA
			if _, err := s.AttachLoRA(c, cfg.Seed+7); err != nil {
				return Result{}, RewardReport{}, fmt.Errorf("reward: %w", err)
			}
			lora = &c
		}
	}
	if o.FreezeEmbeddings {
		s.Embed.Weight.SetRequiresGrad(false)
		if s.Pos != nil {
			s.Pos.Weight.SetRequiresGrad(false)
		}
	}
	c := newChat(tok, s.Config.Context, o.Truncate)
	var files *imageFiles
	if vs != nil {
		c.vision = vs.Model
		files = newImageFiles(vs.Model)
	}
	trainEx, valEx := o.Data, o.Heldout
	if valEx == nil {
		trainEx, valEx = splitByPrompt(o.Data, o.HeldoutFrac)
	}
	t := &rewardTask{s: s, vlm: vs, tok: tok, batch: max(1, o.Batch), accum: max(1, cfg.Accum), seed: cfg.Seed, lora: lora, base: base, out: cfg.Out}
	if o.Batch == 0 {
		t.batch = 8
	}
	if t.train, err = rankItems(c, files, o.Model, trainEx); err != nil {
		return Result{}, RewardReport{}, err
	}
	if t.val, err = rankItems(c, files, o.Model, valEx); err != nil {
		return Result{}, RewardReport{}, err
	}
	if len(t.train) == 0 {
		return Result{}, RewardReport{}, errors.New("reward: no training comparisons left after holding out")
	}
	if o.Demos != nil {
		for _, d := range o.Demos {
			pixels, err := files.pixels(d.Images, o.Model, "reward", d.Source)
			if err != nil {
				return Result{}, RewardReport{}, err
			}
			img, ids, _, err := c.render(d.Prompt, demoAnswer(&d), pixels, d.Source)
			if err != nil {
				return Result{}, RewardReport{}, fmt.Errorf("reward: demonstration: %w", err)
			}
			t.demos, t.demoImgs = append(t.demos, ids), append(t.demoImgs, img)
		}
	} else {
		for _, it := range t.train {
			t.demos, t.demoImgs = append(t.demos, it.seqs[it.pairs[0].Winner]), append(t.demoImgs, it.img)
		}
	}
	if len(t.demos) > 512 {
		t.demos, t.demoImgs = t.demos[:512], t.demoImgs[:512]
	}
	pairs := 0
	for _, it := range t.train {
		pairs += len(it.pairs)
	}
	fmt.Fprintf(o.Log, "reward: %d items (%d pairs) to train on, %d held out; %.2fM parameters\n", len(t.train), pairs, len(t.val), float64(nn.Count(t.Params()))/1e6)
	if c.truncated > 0 {
		fmt.Fprintf(o.Log, "reward: %d conversations truncated to the context of %d tokens\n", c.truncated, s.Config.Context)
	}
	if cfg.Progress == nil {
		cfg.Progress = o.Log
	}
	cfg.Card = &ModelCard{Stage: "reward", Base: o.Model, Data: []string{fmt.Sprintf("%d rankings or pairs (%d pairs), %d held out", len(t.train), pairs, len(t.val))},
		What: "a reward model: the model with a scalar head, trained on ranked answers (Bradley-Terry)"}
	cfg.checkpointModels(t.s.Model)
	res, err := Run(ctx, cfg, t)
	if err == nil && o.Merge && !res.Interrupted {
		dir := filepath.Join(cfg.Out, "merged")
		t.s.MergeLoRA()
		t.s.Bias = float32(t.report.Bias)
		if vs != nil {
			if err = vs.Save(dir); err == nil {
				err = llava.SaveTokenizer(tok, dir, &vs.Config)
			}
		} else {
			err = saveScorer(dir, t.s, t.tok)
		}
		if err == nil {
			fmt.Fprintf(o.Log, "merged reward model written to %s\n", dir)
		}
	}
	return res, t.report, err
}

func demoAnswer(e *data.Example) []data.Message {
	switch e.Kind {
	case data.PromptCompletion, data.UnpairedPreference:
		return e.Completion
	case data.Preference:
		return e.Chosen
	case data.Ranking:
		return e.Completions[e.Ranking[0]]
	}
	return nil
}

// splitByPrompt holds out about frac (default 0.1) of the prompts, by a
// hash of the prompt and its image, so that no prompt is in both parts.
func splitByPrompt(ex []data.Example, frac float64) (train, val []data.Example) {
	if frac == 0 {
		frac = 0.1
	}
	for _, e := range ex {
		h := fnv.New64a()
		for _, m := range e.Prompt {
			io.WriteString(h, m.Role+"\x00"+m.Content+"\x00")
		}
		if len(e.Prompt) == 0 {
			io.WriteString(h, fmt.Sprint(e.Chosen))
		}
		for _, im := range e.Images { // the same question about another image is another prompt
			io.WriteString(h, "\x00image\x00"+imageKey(im, e.Source))
		}
		if heldOutBy(h.Sum64(), frac) {
			val = append(val, e)
		} else {
			train = append(train, e)
		}
	}
	return train, val
}

// heldOutBy says whether the item of hash h is in the held-out part of
// about frac of the items.
func heldOutBy(h uint64, frac float64) bool { return float64(h%10000) < frac*10000 }

// imageKey names an example's image for the held-out split wherever the
// data lives: its path relative to the data file's folder (source is
// "file:line"), as the record wrote it.
func imageKey(image, source string) string {
	if i := strings.LastIndex(source, ":"); i > 0 {
		if rel, err := filepath.Rel(filepath.Dir(source[:i]), image); err == nil {
			return filepath.ToSlash(rel)
		}
	}
	return filepath.Base(image)
}

// rankItems renders preference and ranking examples. A ranking lists each
// answer once and each answer appears once. Each example is one item: a
// ranking's pairs go in one batch element (InstructGPT), while pairs that
// share a prompt stay items of their own (on the demo's comparisons, 16
// pairs of 16 prompts a step generalise better than 8 prompts with all
// their pairs: 0.84 against 0.76 held-out accuracy for the same steps).
func rankItems(c *chat, files *imageFiles, model string, ex []data.Example) ([]rankItem, error) {
	var items []rankItem
	for i := range ex {
		e := &ex[i]
		where := e.Source
		if where == "" {
			where = fmt.Sprintf("example %d", i+1)
		}
		var answers [][]data.Message
		var pairs []data.Pair
		switch e.Kind {
		case data.Preference:
			answers = [][]data.Message{e.Chosen, e.Rejected}
			pairs = []data.Pair{{Winner: 0, Loser: 1}}
		case data.Ranking:
			k := len(e.Completions)
			if k < 2 || len(e.Ranking) != k {
				return nil, fmt.Errorf("reward: %s: a ranking needs at least 2 answers and one rank for each (have %d answers, %d ranks)", where, k, len(e.Ranking))
			}
			seen := make([]bool, k)
			for _, r := range e.Ranking {
				if r < 0 || r >= k || seen[r] {
					return nil, fmt.Errorf("reward: %s: ranking %v lists an answer twice or not at all (want a permutation of 0..%d)", where, e.Ranking, k-1)
				}
				seen[r] = true
			}
			answers, pairs = e.Completions, data.RankingPairs(e.Ranking)
		default:
			return nil, fmt.Errorf("reward: %s: a %s example; a reward model learns from preference pairs or rankings", where, e.Kind)
		}
		it := rankItem{source: where, pairs: pairs}
		pixels, err := files.pixels(e.Images, model, "reward", where)
		if err != nil {
			return nil, err
		}
		for j, a := range answers {
			for k := range j {
				if fmt.Sprint(answers[k]) == fmt.Sprint(a) {
					return nil, fmt.Errorf("reward: %s: answers %d and %d are the same; a comparison of an answer with itself says nothing", where, k, j)
				}
			}
			img, ids, mask, err := c.render(e.Prompt, a, pixels, where)
			if err != nil {
				return nil, fmt.Errorf("reward: %w", err)
			}
			it.img = img
			n := 0
			for _, m := range mask {
				if m {
					n++
				}
			}
			it.seqs, it.lens = append(it.seqs, ids), append(it.lens, n)
		}
		items = append(items, it)
	}
	return items, nil
}

// Params returns the whole scorer, or with LoRA its adapters and the
// score head (trained whole, PEFT's modules_to_save).
func (t *rewardTask) Params() []nn.Named {
	if t.lora != nil {
		return append(t.s.LoRAParams(), nn.Named{Name: "score.weight", Tensor: t.s.Score.Weight})
	}
	return t.s.Params()
}

func (t *rewardTask) Loss(s *tensor.Scope, step, micro int) (*tensor.Tensor, int, map[string]float64, error) {
	if t.lora != nil {
		t.s.SetLoRASeed(t.seed ^ uint64(step)<<20 ^ uint64(micro))
	}
	be := t.s.Embed.Weight.Backend()
	var rows [][]int
	var imgs []*imagePrompt
	var A, w []float32
	type pr struct{ w, l, g int }
	var prs []pr
	for i := 0; i < t.batch; i++ {
		it := &t.train[epochOrder(t.seed, len(t.train), (step*t.accum+micro)*t.batch+i)]
		base := len(rows)
		rows = append(rows, it.seqs...)
		for range it.seqs {
			imgs = append(imgs, it.img)
		}
		for _, p := range it.pairs {
			prs = append(prs, pr{base + p.Winner, base + p.Loser, i})
			w = append(w, 1/float32(len(it.pairs)*t.batch))
		}
	}
	N, P := len(rows), len(prs)
	A = make([]float32, P*N)
	for j, p := range prs {
		A[j*N+p.w], A[j*N+p.l] = 1, -1
	}
	tokens := 0
	for _, r := range rows {
		tokens += len(r)
	}
	r := rowScores(s, t.s, t.vision(), rows, imgs)
	d := tensor.Reshape(tensor.MatMul(s.FromHost(be, A, P, N), tensor.Reshape(r, N, 1), false, false), P)
	loss := tensor.Neg(tensor.Sum(tensor.Mul(logSigmoid(d), s.FromHost(be, w, P))))
	acc := 0.0
	for _, v := range d.Host() {
		if v > 0 {
			acc++
		}
	}
	return loss, tokens, map[string]float64{"train_accuracy": acc / float64(P)}, nil
}

// Eval scores the held-out answers.
func (t *rewardTask) Eval() (map[string]float64, error) {
	if len(t.val) == 0 {
		return map[string]float64{}, nil
	}
	rep, err := evalRanks(t.s, t.vision(), t.val)
	if err != nil {
		return nil, err
	}
	rep.Bias = t.report.Bias
	t.report = rep
	return map[string]float64{"accuracy": rep.Accuracy, "margin": rep.Margin, "length_corr": rep.LengthCorr}, nil
}

// vision is the LLaVA model the reward model sees through, nil for text.
func (t *rewardTask) vision() *llava.Model {
	if t.vlm == nil {
		return nil
	}
	return t.vlm.Model
}

func evalRanks(s *gpt.Scorer, v *llava.Model, items []rankItem) (RewardReport, error) {
	var seqs [][]int
	var imgs []*imagePrompt
	var lens []float64
	for _, it := range items {
		seqs = append(seqs, it.seqs...)
		for _, n := range it.lens {
			lens, imgs = append(lens, float64(n)), append(imgs, it.img)
		}
	}
	sc := scoreAll(s, v, seqs, imgs)
	var rep RewardReport
	k := 0
	for _, it := range items {
		for _, p := range it.pairs {
			m := sc[k+p.Winner] - sc[k+p.Loser]
			switch {
			case m > 0:
				rep.Accuracy++
			case m == 0:
				rep.Accuracy += 0.5
			}
			rep.Margin += m
			rep.Pairs++
		}
		k += len(it.seqs)
	}
	rep.Accuracy /= float64(max(rep.Pairs, 1))
	rep.Margin /= float64(max(rep.Pairs, 1))
	rep.LengthCorr = pearson(sc, lens)
	return rep, nil
}

// Save centres the reward on the demonstrations, then writes the reward
// model and its tokenizer.
func (t *rewardTask) Save(dir string) error {
	// Training scores without the offset, before and after a checkpoint
	// (a float32 offset added to both scores of a pair can change their
	// difference's last bit, so a resumed run would drift from one never
	// stopped, or one checkpointed at other steps).
	defer func() { t.s.Bias = 0 }()
	t.s.Bias = 0
	sc := scoreAll(t.s, t.vision(), t.demos, t.demoImgs)
	t.s.Bias = float32(-mean(sc))
	if math.IsNaN(float64(t.s.Bias)) {
		t.s.Bias = 0
	}
	t.report.Bias = float64(t.s.Bias)
	if t.vlm != nil && t.lora != nil {
		if err := t.vlm.SaveLoRA(dir, *t.lora, relBase(t.out, t.base)); err != nil {
			return err
		}
		return llava.SaveTokenizer(t.tok, dir, &t.vlm.Config)
	}
	if t.vlm != nil {
		if err := t.vlm.Save(dir); err != nil {
			return err
		}
		return llava.SaveTokenizer(t.tok, dir, &t.vlm.Config)
	}
	if t.lora == nil {
		return saveScorer(dir, t.s, t.tok)
	}
	if err := t.s.SaveLoRA(dir, *t.lora, relBase(t.out, t.base)); err != nil {
		return err
	}
	return t.tok.SaveForModel(dir, t.s.Config.Context)
}
