// Package train holds golem's one training loop and a file per stage
// (pretrain, sft, reward, ppo, dpo, grpo). A stage supplies the model's
// trainable parameters and the loss of each micro-batch; the loop does the
// rest: learning-rate schedule, gradient accumulation, clipping, AdamW,
// evaluation, checkpoints, exact resume, metrics and progress. Stages that
// train on a data set implement Batches; the RL stages, which train on
// answers they sample themselves, implement Rollouts, and the loop runs
// their iterations (rollout, then epochs of minibatches).
package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/optim"
	"github.com/golem-ml/golem/tensor"
)

// Config is what every stage's loop shares. Zero values get the defaults
// noted.
type Config struct {
	Steps       int     // optimizer steps
	Accum       int     // micro-batches per step (default 1)
	LR, MinLR   float64 // peak and final learning rate (cosine)
	Warmup      int     // linear warmup steps
	DecaySteps  int     // cosine length (default Steps)
	WeightDecay float64 // on matrices only
	Beta1       float64 // default 0.9
	Beta2       float64 // default 0.95
	Clip        float64 // global gradient-norm clip (0 = off)
	EvalEvery   int     // evaluate every N steps and at the end (0 = only at the end)
	SaveEvery   int     // checkpoint every N steps (0 = only at the end)
	Seed        uint64  // seeds data order and dropout
	Out         string  // the model folder; checkpoints in Out/trainer/step-N, metrics.jsonl
	Resume      bool    // continue from the checkpoint in Out
	// CheckpointActivations recomputes each transformer block's
	// activations in backward instead of keeping them
	// (gpt.Model.CheckpointActivations): less memory, more compute.
	CheckpointActivations bool
	// DType is the precision of the matrix products: "float32" (or "",
	// the default) or "bf16", mixed precision: the products of linear
	// layers, attention and the head in bfloat16 with float32 sums
	// (tensor.Scope.SetBF16 on each micro-batch's scope), the parameters
	// (float32 masters), gradients, optimizer state, norms, softmax and
	// reductions in float32.
	DType    string
	Progress io.Writer
	Quiet    bool                         // no progress line
	OnStep   func(step int, loss float64) `json:"-"` // called after each optimizer step (for UIs)
	Card     *ModelCard                   `json:"-"` // the README.md model card each checkpoint writes (nil: none)

	held *held // Out, locked and prepared by open
}

// Task is what every stage gives the loop. A Task also implements Batches
// or Rollouts, which say where its losses come from.
type Task interface {
	// Params returns every parameter saved in a checkpoint; the loop trains
	// those that require gradients.
	Params() []nn.Named
	// Eval returns evaluation metrics (e.g. "val_loss").
	Eval() (map[string]float64, error)
	// Save writes the model into dir (a Hugging Face model folder).
	Save(dir string) error
}

// Batches is a Task that trains on a data set (pretrain, sft, reward,
// dpo): each optimizer step is Config.Accum micro-batches of it.
type Batches interface {
	Task
	// Loss computes the loss of micro-batch micro of step (a scalar
	// tensor), the number of tokens it covered, and any metrics to log
	// (averaged over the step's micro-batches). Its tensors belong to s,
	// the micro-batch's scope, which the loop closes after backward (pass
	// it to Forward as gpt.Options.Scope; make constants with s.FromHost).
	Loss(s *tensor.Scope, step, micro int) (loss *tensor.Tensor, tokens int, metrics map[string]float64, err error)
}

// Rollouts is a Task that trains on answers it samples itself (ppo, grpo).
// The loop runs its iterations as nanochat's chat_rl does:
//
//	for iter := 0; ; iter++ {
//		Rollout(iter)  // sample answers, score them, compute advantages
//		for epoch := range epochs {
//			for minibatch := range minibatches {
//				Loss(...) of each micro-batch, backward; optimizer step; AfterStep
//			}
//		}
//	}
//
// Config.Steps counts optimizer steps, epochs x minibatches per rollout,
// so a run may stop, be killed and resume inside an iteration: the task
// saves the rollout it trains on with its checkpoint (Save) and goes on
// with it (Rollout with restored set).
type Rollouts interface {
	Task
	// Shape returns the passes over each rollout and the minibatches (one
	// optimizer step each) per pass.
	Shape() (epochs, minibatches int)
	// Rollout prepares rollout iteration iter: it samples answers with the
	// current policy, scores them and computes their advantages. When a
	// resumed run starts inside iteration iter, restored is true and the
	// task goes on with the rollout its checkpoint holds (sampling again,
	// with the policy updated since, would train on other answers).
	Rollout(iter int, restored bool) error
	// Loss computes the loss of one micro-batch of the current rollout (a
	// scalar tensor) in the micro-batch's scope s (see Batches), the
	// number of tokens it covered, and any metrics to log (averaged over
	// the step's micro-batches).
	Loss(s *tensor.Scope, mb Minibatch) (loss *tensor.Tensor, tokens int, metrics map[string]float64, err error)
	// AfterStep is called after each optimizer step, once the step's
	// scopes are closed, before the step is logged and saved (PPO's EMA
	// of the policy).
	AfterStep(step int)
}

// Minibatch says where a micro-batch of a Rollouts task is.
type Minibatch struct {
	Step  int // the optimizer step (from 0)
	Iter  int // the rollout iteration
	Epoch int // the pass over the rollout
	Index int // the minibatch in the pass
	Micro int // the micro-batch in the minibatch (Config.Accum of them)
}

// Result is what Run reports.
type Result struct {
	Step        int                // optimizer steps completed
	Loss        float64            // last training loss
	Eval        map[string]float64 // last evaluation
	Interrupted bool               // stopped by the context (a checkpoint was saved)
	Seconds     float64
}

type trainerState struct {
	Step   int                `json:"step"`
	Config Config             `json:"config"`
	Eval   map[string]float64 `json:"eval,omitempty"`
	Loss   float64            `json:"loss"`
}

func (c *Config) defaults() {
	if c.Accum <= 0 {
		c.Accum = 1
	}
	if c.Beta1 == 0 {
		c.Beta1 = 0.9
	}
	if c.Beta2 == 0 {
		c.Beta2 = 0.95
	}
	if c.DecaySteps == 0 {
		c.DecaySteps = c.Steps
	}
	if c.MinLR == 0 && c.LR > 0 {
		c.MinLR = c.LR / 10
	}
	if c.Progress == nil {
		c.Progress = os.Stderr
	}
}

// Run trains task for cfg.Steps optimizer steps.
func Run(ctx context.Context, cfg Config, task Task) (Result, error) {
	cfg.defaults()
	if cfg.Steps <= 0 || cfg.LR <= 0 {
		return Result{}, fmt.Errorf("train: need steps > 0 and lr > 0 (have %d, %g)", cfg.Steps, cfg.LR)
	}
	rl, isRL := task.(Rollouts)
	batches, isBatches := task.(Batches)
	if !isRL && !isBatches {
		return Result{}, fmt.Errorf("train: %T has no Loss (it implements neither Batches nor Rollouts)", task)
	}
	epochs, minibatches := 1, 1
	if isRL {
		if epochs, minibatches = rl.Shape(); epochs <= 0 || minibatches <= 0 {
			return Result{}, fmt.Errorf("train: need epochs > 0 and minibatches > 0 per rollout (have %d, %d)", epochs, minibatches)
		}
	}
	params := task.Params()
	if err := checkDType(cfg.DType, params); err != nil {
		return Result{}, err
	}
	opt := optim.NewAdamW(params, float32(cfg.Beta1), float32(cfg.Beta2), 1e-8, float32(cfg.WeightDecay))
	if len(opt.Params()) == 0 {
		return Result{}, errors.New("train: no trainable parameters")
	}
	release, err := cfg.open()
	if err != nil {
		return Result{}, err
	}
	defer release()
	l := &loop{cfg: cfg, task: task, opt: opt, sched: optim.Cosine{Max: cfg.LR, Min: cfg.MinLR, Warmup: cfg.Warmup, Decay: cfg.DecaySteps}}
	if cfg.Out != "" && cfg.Resume {
		st, err := loadState(cfg.held.from, opt)
		if err != nil {
			return l.res, err
		}
		l.start = st.Step
		l.res.Step, l.res.Loss, l.res.Eval = st.Step, st.Loss, st.Eval
		fmt.Fprintf(cfg.Progress, "resuming from step %d of %d in %s\n", l.start, cfg.Steps, cfg.Out)
	}
	if l.metrics, err = openMetrics(cfg.Out, cfg.Resume); err != nil {
		return l.res, err
	}
	defer l.metrics.Close()

	// On a terminal the progress line rewrites itself; in a log it is a
	// line every 10 seconds.
	l.cr, l.nl, l.every = "", "\n", 10*time.Second
	if f, ok := cfg.Progress.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			l.cr, l.nl, l.every = "\r", "", 500*time.Millisecond
		}
	}
	l.begin = time.Now()
	if isRL {
		err = l.rollouts(ctx, rl, epochs, minibatches)
	} else {
		err = l.batches(ctx, batches)
	}
	if err != nil {
		return l.res, err
	}
	if !cfg.Quiet && l.cr != "" {
		fmt.Fprintln(cfg.Progress)
	}
	l.res.Seconds = time.Since(l.begin).Seconds()
	if cfg.Out != "" {
		if err := checkpoint(cfg, task, opt, l.res); err != nil {
			return l.res, err
		}
	}
	return l.res, nil
}

// batches runs a Batches task's steps from step l.start.
func (l *loop) batches(ctx context.Context, task Batches) error {
	for step := l.start; step < l.cfg.Steps && !l.interrupted(ctx); step++ {
		err := l.step(step, func(s *tensor.Scope, micro int) (*tensor.Tensor, int, map[string]float64, error) {
			return task.Loss(s, step, micro)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// rollouts runs a Rollouts task's iterations from step l.start: a rollout,
// then epochs passes of minibatches optimizer steps over it.
func (l *loop) rollouts(ctx context.Context, task Rollouts, epochs, minibatches int) error {
	per := epochs * minibatches
	for iter := l.start / per; iter*per < l.cfg.Steps; iter++ {
		if l.interrupted(ctx) {
			return nil
		}
		first := max(l.start, iter*per)
		if err := task.Rollout(iter, first > iter*per); err != nil {
			return fmt.Errorf("train: step %d: %w", first, err)
		}
		for epoch := range epochs {
			for index := range minibatches {
				step := iter*per + epoch*minibatches + index
				if step < first {
					continue
				}
				if step >= l.cfg.Steps || l.interrupted(ctx) {
					return nil
				}
				mb := Minibatch{Step: step, Iter: iter, Epoch: epoch, Index: index}
				err := l.step(step, func(s *tensor.Scope, micro int) (*tensor.Tensor, int, map[string]float64, error) {
					mb.Micro = micro
					return task.Loss(s, mb)
				})
				if err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// loop is one Run's state.
type loop struct {
	cfg     Config
	task    Task
	opt     *optim.AdamW
	sched   optim.Cosine
	metrics *metricsLog
	res     Result
	start   int // the step the run (or its resume) began at

	begin, lastPrint time.Time
	tokensSeen       int
	cr, nl           string
	every            time.Duration
}

// interrupted reports whether the context is done, and records it.
func (l *loop) interrupted(ctx context.Context) bool {
	if ctx.Err() != nil {
		l.res.Interrupted = true
	}
	return l.res.Interrupted
}

// checkDType refuses a dtype other than float32 and bf16, and bf16 on a
// backend without bfloat16 products (it would silently train in float32).
func checkDType(dtype string, params []nn.Named) error {
	switch dtype {
	case "", "float32":
		return nil
	case "bf16":
		for _, p := range params {
			if _, ok := p.Tensor.Backend().(backend.BF16Products); !ok {
				return fmt.Errorf("train: dtype bf16: backend %s has no bfloat16 products", p.Tensor.Backend().Name())
			}
		}
		return nil
	}
	return fmt.Errorf("train: dtype %q: want float32 or bf16", dtype)
}

// lossFunc computes one micro-batch's loss in its scope (see Batches.Loss).
type lossFunc func(s *tensor.Scope, micro int) (*tensor.Tensor, int, map[string]float64, error)

// micro runs micro-batch micro in a scope of its own: its loss, scaled for
// accumulation, and backward, which adds into the parameters' gradients;
// closing the scope gives all else back to the pool.
func (l *loop) micro(lossOf lossFunc, micro int) (loss float64, tokens int, metrics map[string]float64, err error) {
	s := tensor.NewScope()
	defer s.Close()
	s.SetBF16(l.cfg.DType == "bf16")
	t, n, m, err := lossOf(s, micro)
	if err != nil {
		return 0, 0, nil, err
	}
	s.Adopt(t) // what a task computed without its scope
	tensor.Backward(tensor.Scale(t, 1/float32(l.cfg.Accum)))
	return float64(t.Item()), n, m, nil
}

// step runs optimizer step number step (from 0): the losses of its
// micro-batches and their gradients, clipping, the update, then the
// metrics, evaluation, progress and checkpoint due after it.
func (l *loop) step(step int, lossOf lossFunc) error {
	cfg, opt := &l.cfg, l.opt
	lr := l.sched.At(step)
	opt.ZeroGrad()
	var lossSum float64
	sums := map[string]float64{}
	tokens := 0
	for micro := 0; micro < cfg.Accum; micro++ {
		loss, n, m, err := l.micro(lossOf, micro)
		if err != nil {
			return fmt.Errorf("train: step %d: %w", step, err)
		}
		lossSum += loss
		tokens += n
		for k, v := range m {
			sums[k] += v
		}
	}
	loss := lossSum / float64(cfg.Accum)
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return fmt.Errorf("train: step %d: loss is %v (lower the learning rate?)", step, loss)
	}
	norm := opt.ClipGradNorm(cfg.Clip)
	opt.Update(float32(lr))
	if rl, ok := l.task.(Rollouts); ok {
		rl.AfterStep(step)
	}
	l.res.Step, l.res.Loss = step+1, loss
	l.tokensSeen += tokens
	rec := map[string]any{"step": step + 1, "loss": loss, "lr": lr, "grad_norm": norm, "tokens": tokens}
	for k, v := range sums {
		rec[k] = v / float64(cfg.Accum)
	}
	elapsed := time.Since(l.begin).Seconds()
	tps := float64(l.tokensSeen) / math.Max(elapsed, 1e-9)
	rec["tokens_per_s"] = tps
	last := step+1 == cfg.Steps
	if (cfg.EvalEvery > 0 && (step+1)%cfg.EvalEvery == 0) || last {
		ev, err := l.task.Eval()
		if err != nil {
			return fmt.Errorf("train: eval at step %d: %w", step+1, err)
		}
		l.res.Eval = ev
		for k, v := range ev {
			rec[k] = v
		}
		if !cfg.Quiet {
			fmt.Fprintf(cfg.Progress, "%sstep %d/%d: loss %.4f %s\n", l.cr, step+1, cfg.Steps, loss, fmtMetrics(ev))
		}
	}
	l.metrics.write(rec)
	if !cfg.Quiet && (time.Since(l.lastPrint) > l.every || last) {
		eta := time.Duration(float64(cfg.Steps-step-1) * elapsed / float64(step+1-l.start) * float64(time.Second))
		fmt.Fprintf(cfg.Progress, "%sstep %d/%d  loss %.4f  lr %.2e  %.0f tok/s  ETA %s   %s", l.cr, step+1, cfg.Steps, loss, lr, tps, eta.Round(time.Second), l.nl)
		l.lastPrint = time.Now()
	}
	if cfg.OnStep != nil {
		cfg.OnStep(step+1, loss)
	}
	if cfg.Out != "" && cfg.SaveEvery > 0 && (step+1)%cfg.SaveEvery == 0 && !last {
		if err := checkpoint(*cfg, l.task, opt, l.res); err != nil {
			return err
		}
	}
	return nil
}

func fmtMetrics(m map[string]float64) string {
	s := ""
	for _, k := range sortedKeys(m) {
		s += fmt.Sprintf(" %s %.4f", k, m[k])
	}
	return s
}

// writeAtomic writes a file so that a crash never leaves it half written.
func writeAtomic(path string, data []byte) error { return atomicfile.WriteFile(path, data) }
