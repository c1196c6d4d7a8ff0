package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/llava"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
	"github.com/golem-ml/golem/tokenizer"
)

// Verifiable is a prompt whose answers programs score, as in
// reinforcement learning with verifiable rewards (golem's built-in tasks
// are: data/synth's Task.Scores).
type Verifiable struct {
	Key    string // names the task in errors
	Prompt []data.Message
	// Images is the prompt's image (one file, TRL's "images") for a LLaVA
	// policy, which needs one in every prompt; a text policy takes none.
	Images []string
	// Score returns a response's rewards by name. GRPOOptions.Rewards
	// says which are summed into the reward; "correct", when scored, is
	// logged as the share of correct answers, and each reward summed as
	// its mean over the rollout's answers.
	Score func(response string) map[string]float64
}

// GRPOOptions configures GRPO.
type GRPOOptions struct {
	Backend backend.Backend
	Policy  string       // the SFT model (or a LLaVA folder): the policy's start and the frozen reference
	Tasks   []Verifiable // prompts with programs that score answers
	Rewards []string     // the scores summed into the reward (default: correct and format)
	Group   int          // answers sampled per prompt (default 8)
	Prompts int          // prompts per micro-batch (default 4)
	// Beta weighs the KL estimate to the reference in the loss (default
	// 0.04, DeepSeekMath's; < 0 turns it off).
	Beta        float64
	ClipRange   float64 // ratio clip (default 0.2)
	MaxTokens   int     // new tokens per answer (default 64)
	Temperature float64 // sampling temperature (default 1)
	// LoRA, when set, trains low-rank adapters on the frozen policy (Out
	// is then a PEFT adapter folder) and the reference is the policy with
	// its adapters off; Merge also writes the merged model to Out/merged.
	LoRA  *gpt.LoRAConfig
	Merge bool
	// TrainProjector, with a LLaVA policy (full, not LoRA), trains its
	// projector with the language model, as LLaVA's stage 2 does; the
	// reference keeps the starting projector. Off, the projector stays.
	TrainProjector bool
	// SkipUniform keeps only groups whose rewards differ (DAPO's dynamic
	// sampling): a micro-batch draws Prompts prompts at a time, up to
	// skipDraws times, until Prompts groups differ; a group whose answers
	// all score alike has no advantage to learn from. Short of Prompts,
	// the alike groups drawn first fill the micro-batch.
	SkipUniform bool
	Loop        Config
	Log         io.Writer
}

type grpoTask struct {
	o       GRPOOptions
	lm      *lmTrainee
	policy  *gpt.Model // lm.m
	ref     *gpt.Model // the frozen starting model (nil with LoRA: lm.reference)
	tok     *tokenizer.Tokenizer
	prompt  [][]int
	vlm     *imagePrompts // a LLaVA policy's prompts with their images; nil for text
	imEnd   int
	accum   int
	seed    uint64
	rollout []grpoBatch // the step's rollout, a batch per micro-batch
}

// grpoBatch is one micro-batch of a rollout: Prompts groups of Group
// answers, padded to [N, T], with what the loss needs.
type grpoBatch struct {
	N, T    int
	tasks   []int // each row's task, for its image
	ids, tg []int32
	w, adv  []float32 // per token: the weight, the answer's advantage
	refLogp []float32 // the reference's log-probabilities
	tokens  int
	stats   map[string]float64
}

// GRPO runs group relative policy optimisation (Shao et al. 2024): for
// each prompt the policy samples a group of answers, programs score them,
// and each answer's advantage is its reward standardised within its group
// (no value model). The loss is PPO's clipped objective per token, averaged
// per answer, plus Beta times the k3 estimate of the KL to the reference.
// The samples of a step are a function of the seed and the step, so resume
// is exact. With a LLaVA policy every task carries one image (Images) and
// each answer sees its prompt's, as PPO's rollouts do (imagePrompts); the
// language model trains, the tower and projector stay (with
// TrainProjector, the projector trains too).
func GRPO(ctx context.Context, o GRPOOptions) (Result, error) {
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.Group <= 0 {
		o.Group = 8
	}
	if o.Group < 2 {
		return Result{}, errors.New("grpo: a group needs at least 2 answers")
	}
	if o.Prompts <= 0 {
		o.Prompts = 4
	}
	if o.Beta == 0 {
		o.Beta = 0.04
	}
	if o.ClipRange == 0 {
		o.ClipRange = 0.2
	}
	if o.MaxTokens <= 0 {
		o.MaxTokens = 64
	}
	if o.Temperature == 0 {
		o.Temperature = 1
	}
	if len(o.Rewards) == 0 {
		o.Rewards = []string{"correct", "format"}
	}
	cfg := o.Loop
	if cfg.Out == "" {
		return Result{}, errors.New("grpo: an output folder is needed (--out)")
	}
	if len(o.Tasks) == 0 {
		return Result{}, errors.New("grpo: no tasks")
	}
	scored := o.Tasks[0].Score("")
	for _, n := range o.Rewards {
		if _, ok := scored[n]; !ok {
			names := slices.Sorted(maps.Keys(scored))
			want := strings.Join(names, ", ")
			if k := len(names) - 1; k > 0 {
				want = strings.Join(names[:k], ", ") + " or " + names[k]
			}
			return Result{}, fmt.Errorf("grpo: reward function %q: want %s", n, want)
		}
	}
	release, err := cfg.open() // lock Out; on resume, its files are the checkpoint's
	if err != nil {
		return Result{}, err
	}
	defer release()
	if o.Merge && o.LoRA == nil {
		return Result{}, errors.New("grpo: --merge needs LoRA (--lora-r)")
	}
	t := &grpoTask{o: o, accum: max(1, cfg.Accum), seed: cfg.Seed}
	if t.lm, err = loadTrainee(o.Backend, o.Policy, cfg, o.LoRA, "grpo"); err != nil {
		return Result{}, err
	}
	t.policy = t.lm.m
	if t.ref, t.tok, err = t.lm.loadRef(o.Backend, o.Policy, "grpo: --policy"); err != nil {
		return Result{}, err
	}
	if o.TrainProjector {
		switch {
		case t.lm.vlm == nil:
			return Result{}, fmt.Errorf("grpo: training the projector needs a LLaVA policy; %s is a text-only model", o.Policy)
		case t.lm.lora != nil:
			return Result{}, errors.New("grpo: training the projector is for a full run, not LoRA (--lora-r): the reference's projector is the policy's")
		}
		for _, p := range t.lm.vlm.ProjectorParams() {
			p.Tensor.SetRequiresGrad(true)
		}
	}
	if err := t.prompts(); err != nil {
		return Result{}, err
	}
	method := t.lm.method()
	if o.TrainProjector {
		method += ", the projector too"
	}
	fmt.Fprintf(o.Log, "grpo: %d tasks, %d prompts x %d answers per micro-batch; %s, %.2fM parameters trained\n", len(o.Tasks), o.Prompts, o.Group, method, float64(nn.Count(t.Params()))/1e6)
	if cfg.Progress == nil {
		cfg.Progress = o.Log
	}
	cfg.Card = &ModelCard{Stage: "grpo", Base: o.Policy, Data: []string{fmt.Sprintf("%d checkable tasks", len(o.Tasks))},
		What: fmt.Sprintf("GRPO: groups of %d sampled answers scored by programs, KL weight %g to the starting model; %s", o.Group, o.Beta, method)}
	cfg.checkpointModels(t.policy)
	res, err := Run(ctx, cfg, t)
	if err != nil {
		return res, err
	}
	_, err = t.lm.mergeAfter(o.Merge, res, o.Log)
	return res, err
}

// prompts renders the tasks' prompts: for a LLaVA policy in the format
// it was trained in, each with its image (imagePrompts), else as chat
// models are prompted.
func (t *grpoTask) prompts() error {
	c := newChat(t.tok, t.policy.Config.Context, false)
	t.imEnd = c.imEnd
	files := newImageFiles(t.lm.vlm)
	if t.lm.vlm != nil {
		c.vision = t.lm.vlm
		end, err := imageEnd(c, t.o.Policy, "grpo")
		if err != nil {
			return err
		}
		t.vlm, t.imEnd = &imagePrompts{}, end
	}
	for i, tk := range t.o.Tasks {
		where := fmt.Sprintf("task %d (%s)", i+1, tk.Key)
		if t.vlm != nil {
			if err := t.vlm.add(c, files, tk.Prompt, tk.Images, t.o.Policy, "grpo", where); err != nil {
				return err
			}
			continue
		}
		if _, err := files.pixels(tk.Images, t.o.Policy, "grpo", where); err != nil {
			return err
		}
		ids, err := c.prompt(tk.Prompt, where)
		if err != nil {
			return fmt.Errorf("grpo: %w", err)
		}
		t.prompt = append(t.prompt, ids)
	}
	if t.vlm != nil {
		t.prompt = t.vlm.ids
	}
	return nil
}

// Params is what trains: the language model (or its adapters) and, with
// TrainProjector, the projector under its LLaVA name.
func (t *grpoTask) Params() []nn.Named {
	ps := t.lm.params()
	if t.o.TrainProjector {
		for _, p := range t.lm.vlm.ProjectorParams() {
			ps = append(ps, nn.Named{Name: llava.ProjectorPrefix + p.Name, Tensor: p.Tensor})
		}
	}
	return ps
}

// Shape is GRPO's iteration: one update per rollout.
func (t *grpoTask) Shape() (epochs, minibatches int) { return 1, 1 }

// Rollout makes the rollout of step iter: for each micro-batch, the policy
// answers a group of Group answers to each of Prompts prompts, programs
// score them, and each answer's advantage is its reward standardised within
// its group. A rollout is one step, so a run never resumes inside one.
func (t *grpoTask) Rollout(iter int, _ bool) error {
	t.rollout = t.rollout[:0]
	for micro := range t.accum {
		k := iter*t.accum + micro
		a, tasks, rewards, stats, err := t.draw(k)
		if err != nil {
			return err
		}
		adv, spread, alike := t.advantages(rewards)
		stats["reward_std"], stats["groups_alike"] = spread, alike
		b := t.batch(a.rows, a.start, tasks, adv)
		b.stats = stats
		t.rollout = append(t.rollout, b)
	}
	return nil
}

// skipDraws is how many times SkipUniform draws Prompts prompts at most
// for one micro-batch.
const skipDraws = 4

// draw samples and scores micro-batch k's groups: Prompts prompts' (sample
// and score), or with SkipUniform Prompts groups whose rewards differ,
// drawn skipDraws times at most (its statistics, "reward" and "correct"
// included, are over every answer drawn; "groups_kept" is the share of
// the groups drawn that differ, "draws" the draws).
func (t *grpoTask) draw(k int) (answers, []int, []float64, map[string]float64, error) {
	if !t.o.SkipUniform {
		a, tasks, err := t.sample(t.seed^0x6a09e667, k*t.o.Prompts, stepRand(t.seed, "grpo-sample", k).Uint64())
		if err != nil {
			return answers{}, nil, nil, nil, err
		}
		rewards, stats := t.score(a, tasks)
		return a, tasks, rewards, stats, nil
	}
	G, P := t.o.Group, t.o.Prompts
	var kept, alike answers
	var keptTasks, alikeTasks []int
	var keptRewards, alikeRewards []float64
	var all answers
	var allTasks []int
	draws := 0
	for c := 0; c < skipDraws && len(kept.rows) < P*G; c++ {
		j := k*skipDraws + c
		a, tasks, err := t.sample(t.seed^0x3c6ef372, j*P, stepRand(t.seed, "grpo-sample-skip", j).Uint64())
		if err != nil {
			return answers{}, nil, nil, nil, err
		}
		draws++
		rewards, _ := t.score(a, tasks)
		all.append(a, 0, len(a.rows))
		allTasks = append(allTasks, tasks...)
		for g := 0; g < len(a.rows); g += G {
			differ := slices.ContainsFunc(rewards[g:g+G], func(r float64) bool { return r != rewards[g] })
			switch {
			case differ && len(kept.rows) < P*G:
				kept.append(a, g, g+G)
				keptTasks, keptRewards = append(keptTasks, tasks[g:g+G]...), append(keptRewards, rewards[g:g+G]...)
			case !differ && len(alike.rows) < P*G:
				alike.append(a, g, g+G)
				alikeTasks, alikeRewards = append(alikeTasks, tasks[g:g+G]...), append(alikeRewards, rewards[g:g+G]...)
			}
		}
	}
	_, stats := t.score(all, allTasks)
	stats["groups_kept"] = float64(len(kept.rows)/G) / float64(draws*P)
	stats["draws"] = float64(draws)
	if n := P*G - len(kept.rows); n > 0 { // short: fill with alike groups
		kept.append(alike, 0, n)
		keptTasks, keptRewards = append(keptTasks, alikeTasks[:n]...), append(keptRewards, alikeRewards[:n]...)
	}
	return kept, keptTasks, keptRewards, stats, nil
}

// sample draws Prompts prompts, the order's (a permutation of the prompts
// per epoch, seeded by order) entries from first on, and the policy's
// answers to them, Group per prompt, sampled with seed; it returns them
// with each answer's task.
func (t *grpoTask) sample(order uint64, first int, seed uint64) (answers, []int, error) {
	o := &t.o
	G, P := o.Group, o.Prompts
	var prompts [][]int
	var tasks []int
	for i := 0; i < P; i++ {
		j := epochOrder(order, len(t.prompt), first+i)
		for g := 0; g < G; g++ {
			prompts = append(prompts, t.prompt[j])
			tasks = append(tasks, j)
		}
	}
	a, err := t.vlm.sample(t.policy, t.lm.vlm, prompts, tasks, o.MaxTokens, o.Temperature, t.imEnd, seed)
	return a, tasks, err
}

// score sums the reward functions of each answer and returns the
// rollout's statistics.
func (t *grpoTask) score(a answers, tasks []int) ([]float64, map[string]float64) {
	o := &t.o
	N := len(a.rows)
	rewards := make([]float64, N)
	sums := map[string]float64{}
	var lenSum float64
	for i, out := range a.outs {
		text := t.tok.Decode(out)
		s := o.Tasks[tasks[i]].Score(text)
		for _, n := range o.Rewards {
			rewards[i] += s[n]
		}
		for name, v := range s {
			if name == "correct" || slices.Contains(o.Rewards, name) {
				sums[name] += v
			}
		}
		lenSum += float64(len(a.rows[i]) - a.start[i])
	}
	n := float64(N)
	stats := map[string]float64{"reward": mean(rewards), "response_len": lenSum / n}
	for name, v := range sums {
		stats[name] = v / n
	}
	return rewards, stats
}

// advantages standardises the rewards within each group; spread is the
// groups' mean standard deviation, alike the share of groups whose
// rewards are all alike (no advantage: nothing to learn from them).
func (t *grpoTask) advantages(rewards []float64) (adv []float64, spread, alike float64) {
	G, N := t.o.Group, len(rewards)
	adv = make([]float64, N)
	for i := 0; i < N; i += G {
		mu := mean(rewards[i : i+G])
		v := 0.0
		for _, r := range rewards[i : i+G] {
			v += (r - mu) * (r - mu)
		}
		if !slices.ContainsFunc(rewards[i:i+G], func(r float64) bool { return r != rewards[i] }) {
			alike++
		}
		sd := math.Sqrt(v / float64(G-1))
		spread += sd
		for g := i; g < i+G; g++ {
			adv[g] = (rewards[g] - mu) / (sd + 1e-4)
		}
	}
	groups := float64(N / G)
	return adv, spread / groups, alike / groups
}

// batch pads a rollout's rows into a micro-batch with its per-token weights
// and advantages and the reference's log-probabilities.
func (t *grpoTask) batch(rows [][]int, start, tasks []int, adv []float64) grpoBatch {
	N := len(rows)
	ids, T := padRows(rows, t.policy.Config.Context-t.vlm.prefixLen(t.lm.vlm))
	masks := make([][]bool, N)
	for i, r := range rows {
		masks[i] = make([]bool, len(r))
		for p := start[i]; p < len(r); p++ {
			masks[i][p] = true
		}
	}
	b := grpoBatch{N: N, T: T, tasks: tasks, ids: ids, tg: actionTargets(rows, masks, T)}
	// Each token weighs 1/(answer length * answers): per-answer means,
	// averaged over the answers.
	b.w, b.adv = make([]float32, N*T), make([]float32, N*T)
	for i, r := range rows {
		n := len(r) - start[i]
		b.tokens += n
		for p := start[i] - 1; p < len(r)-1; p++ {
			b.w[i*T+p] = 1 / float32(n*N)
			b.adv[i*T+p] = float32(adv[i])
		}
	}
	t.lm.reference(t.ref, func(ref *gpt.Model) {
		b.refLogp = noGradValues(func(s *tensor.Scope) *tensor.Tensor {
			return tokenLogProbsAfter(s, ref, t.vlm.embeds(s, t.lm.refVision(), tasks), b.ids, b.tg, N, T, t.o.Temperature)
		})
	})
	return b
}

// Loss is GRPO's loss on micro-batch mb.Micro of the rollout: PPO's
// clipped objective per token, averaged per answer, plus Beta times the k3
// estimate of the KL to the reference.
func (t *grpoTask) Loss(s *tensor.Scope, mb Minibatch) (*tensor.Tensor, int, map[string]float64, error) {
	o := &t.o
	b := &t.rollout[mb.Micro]
	N, T := b.N, b.T
	be := t.policy.Embed.Weight.Backend()
	t.lm.setSeed(t.seed ^ uint64(mb.Step)<<20 ^ uint64(mb.Micro))
	lp := tokenLogProbsAfter(s, t.policy, t.vlm.embeds(s, t.lm.vlm, b.tasks), b.ids, b.tg, N, T, o.Temperature)
	old := s.FromHost(be, lp.Host(), N*T) // one update per sample: the ratio is 1, its gradient that of log pi
	ratio := tensor.Exp(tensor.Sub(lp, old))
	a := s.FromHost(be, b.adv, N*T)
	eps := float32(o.ClipRange)
	obj := tensor.Minimum(tensor.Mul(ratio, a), tensor.Mul(tensor.Clamp(ratio, 1-eps, 1+eps), a))
	wT := s.FromHost(be, b.w, N*T)
	loss := tensor.Neg(tensor.Sum(tensor.Mul(obj, wT)))
	klOf := func(lp *tensor.Tensor) *tensor.Tensor {
		// k3 = exp(ref - logp) - (ref - logp) - 1 >= 0
		d := tensor.Sub(s.FromHost(be, b.refLogp, N*T), lp)
		k3 := tensor.AddScalar(tensor.Sub(tensor.Exp(d), d), -1)
		return tensor.Sum(tensor.Mul(k3, wT))
	}
	var kl float64
	if o.Beta > 0 {
		klT := klOf(lp)
		kl = float64(klT.Item())
		loss = tensor.Add(loss, tensor.Scale(klT, float32(o.Beta)))
	} else { // only a metric: from the detached log-probabilities
		tensor.NoGrad(func() { kl = float64(klOf(old).Item()) })
	}
	metrics := map[string]float64{"kl": kl}
	for k, v := range b.stats {
		metrics[k] = v
	}
	return loss, b.tokens, metrics, nil
}

// AfterStep has nothing to do: the step's tensors were the loop's scope's.
func (t *grpoTask) AfterStep(int) {}

// Eval returns nothing of its own: the demo evaluates held-out tasks.
func (t *grpoTask) Eval() (map[string]float64, error) { return map[string]float64{}, nil }

func (t *grpoTask) Save(dir string) error { return t.lm.save(dir) }
