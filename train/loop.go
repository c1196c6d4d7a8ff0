// Package train holds golem's one training loop and a file per stage
// (pretrain, sft, reward, ppo, dpo, grpo). A stage supplies the model's
// trainable parameters and a function that computes the loss of one
// micro-batch; the loop does the rest: learning-rate schedule, gradient
// accumulation, clipping, AdamW, evaluation, checkpoints, exact resume,
// metrics and progress.
package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

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
	Progress    io.Writer
	Quiet       bool                         // no progress line
	OnStep      func(step int, loss float64) `json:"-"` // called after each optimizer step (for UIs)

	held *held // Out, locked and prepared by open
}

// Task is one stage's side of the loop.
type Task interface {
	// Params returns every parameter saved in a checkpoint; the loop trains
	// those that require gradients.
	Params() []nn.Named
	// Loss computes the loss of micro-batch micro of step (a scalar tensor
	// whose graph the loop releases), the number of tokens it covered, and
	// any metrics to log (averaged over the step's micro-batches).
	Loss(step, micro int) (loss *tensor.Tensor, tokens int, metrics map[string]float64, err error)
	// Eval returns evaluation metrics (e.g. "val_loss").
	Eval() (map[string]float64, error)
	// Save writes the model into dir (a Hugging Face model folder).
	Save(dir string) error
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
	params := task.Params()
	opt := optim.NewAdamW(params, float32(cfg.Beta1), float32(cfg.Beta2), 1e-8, float32(cfg.WeightDecay))
	if len(opt.Params()) == 0 {
		return Result{}, errors.New("train: no trainable parameters")
	}
	sched := optim.Cosine{Max: cfg.LR, Min: cfg.MinLR, Warmup: cfg.Warmup, Decay: cfg.DecaySteps}
	res := Result{}
	start := 0
	release, err := cfg.open()
	if err != nil {
		return res, err
	}
	defer release()
	if cfg.Out != "" && cfg.Resume {
		st, err := loadState(cfg.held.from, opt)
		if err != nil {
			return res, err
		}
		start = st.Step
		res.Step, res.Loss, res.Eval = st.Step, st.Loss, st.Eval
		fmt.Fprintf(cfg.Progress, "resuming from step %d of %d in %s\n", start, cfg.Steps, cfg.Out)
	}
	metrics, err := openMetrics(cfg.Out, cfg.Resume)
	if err != nil {
		return res, err
	}
	defer metrics.Close()

	// On a terminal the progress line rewrites itself; in a log it is a
	// line every 10 seconds.
	cr, nl, every := "", "\n", 10*time.Second
	if f, ok := cfg.Progress.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			cr, nl, every = "\r", "", 500*time.Millisecond
		}
	}
	begin := time.Now()
	var tokensSeen int
	lastPrint := time.Time{}
	for step := start; step < cfg.Steps; step++ {
		if ctx.Err() != nil {
			res.Interrupted = true
			break
		}
		lr := sched.At(step)
		opt.ZeroGrad()
		var lossSum float64
		sums := map[string]float64{}
		tokens := 0
		for micro := 0; micro < cfg.Accum; micro++ {
			loss, n, m, err := task.Loss(step, micro)
			if err != nil {
				return res, fmt.Errorf("train: step %d: %w", step, err)
			}
			scaled := tensor.Scale(loss, 1/float32(cfg.Accum))
			tensor.Backward(scaled)
			lossSum += float64(loss.Item())
			tensor.Release(scaled)
			tokens += n
			for k, v := range m {
				sums[k] += v
			}
		}
		loss := lossSum / float64(cfg.Accum)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return res, fmt.Errorf("train: step %d: loss is %v (lower the learning rate?)", step, loss)
		}
		norm := opt.ClipGradNorm(cfg.Clip)
		opt.Update(float32(lr))
		res.Step, res.Loss = step+1, loss
		tokensSeen += tokens
		rec := map[string]any{"step": step + 1, "loss": loss, "lr": lr, "grad_norm": norm, "tokens": tokens}
		for k, v := range sums {
			rec[k] = v / float64(cfg.Accum)
		}
		elapsed := time.Since(begin).Seconds()
		tps := float64(tokensSeen) / math.Max(elapsed, 1e-9)
		rec["tokens_per_s"] = tps
		last := step+1 == cfg.Steps
		if (cfg.EvalEvery > 0 && (step+1)%cfg.EvalEvery == 0) || last {
			ev, err := task.Eval()
			if err != nil {
				return res, fmt.Errorf("train: eval at step %d: %w", step+1, err)
			}
			res.Eval = ev
			for k, v := range ev {
				rec[k] = v
			}
			if !cfg.Quiet {
				fmt.Fprintf(cfg.Progress, "%sstep %d/%d: loss %.4f %s\n", cr, step+1, cfg.Steps, loss, fmtMetrics(ev))
			}
		}
		metrics.write(rec)
		if !cfg.Quiet && (time.Since(lastPrint) > every || last) {
			eta := time.Duration(float64(cfg.Steps-step-1) * elapsed / float64(step+1-start) * float64(time.Second))
			fmt.Fprintf(cfg.Progress, "%sstep %d/%d  loss %.4f  lr %.2e  %.0f tok/s  ETA %s   %s", cr, step+1, cfg.Steps, loss, lr, tps, eta.Round(time.Second), nl)
			lastPrint = time.Now()
		}
		if cfg.OnStep != nil {
			cfg.OnStep(step+1, loss)
		}
		if cfg.Out != "" && cfg.SaveEvery > 0 && (step+1)%cfg.SaveEvery == 0 && !last {
			if err := checkpoint(cfg, task, opt, res); err != nil {
				return res, err
			}
		}
	}
	if !cfg.Quiet && cr != "" {
		fmt.Fprintln(cfg.Progress)
	}
	res.Seconds = time.Since(begin).Seconds()
	if cfg.Out != "" {
		if err := checkpoint(cfg, task, opt, res); err != nil {
			return res, err
		}
	}
	return res, nil
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
