package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/store"
	"github.com/golem-ml/golem/train"
)

func init() {
	register("reward", "stage 3: train a reward model from preference pairs or K-way rankings", runReward)
}

// The checkpoint flags' help, shared by every training command.
const (
	resumeHelp    = "continue the run in --out from its last checkpoint (OUT/trainer/step-N), removing what a crash left"
	saveEveryHelp = "also checkpoint every N steps into OUT/trainer/step-N (0 = at the end and on Ctrl-C)"
)

// addCheckpointActivationsFlag is --checkpoint-activations, on every
// training command.
func addCheckpointActivationsFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("checkpoint-activations", false, "recompute each transformer block's activations in backward instead of keeping them: less memory, about a third more compute")
}

// addDTypeFlag is --dtype, on every training command that has
// --checkpoint-activations.
func addDTypeFlag(fs *flag.FlagSet) *string {
	return fs.String("dtype", "float32", "precision of the matrix products: float32, or bf16 (mixed precision: linear layers' and attention's products in bfloat16 with float32 sums; weights, gradients and optimizer state stay float32)")
}

// loopFlags are the training-loop flags every RL stage shares.
type loopFlags struct {
	steps, accum, warmup, evalEvery, saveEvery *int
	lr, clip                                   *float64
	seed                                       *uint64
	out, dtype                                 *string
	resume, checkpointAct                      *bool
}

func addLoopFlags(fs *flag.FlagSet, steps int, lr float64) loopFlags {
	return loopFlags{
		steps: fs.Int("steps", steps, "optimizer steps"), accum: fs.Int("accum", 1, "micro-batches per step"),
		warmup: fs.Int("warmup", 0, "warmup steps"), evalEvery: fs.Int("eval-every", 0, "evaluate every N steps (0 = at the end)"),
		saveEvery: fs.Int("save-every", 0, saveEveryHelp),
		lr:        fs.Float64("lr", lr, "peak learning rate"), clip: fs.Float64("clip", 1, "gradient-norm clip (0 = off)"),
		seed: fs.Uint64("seed", defaultSeed, "random seed"), out: fs.String("out", "", "output folder (required)"),
		resume: fs.Bool("resume", false, resumeHelp), checkpointAct: addCheckpointActivationsFlag(fs),
		dtype: addDTypeFlag(fs),
	}
}

func (l loopFlags) config() train.Config {
	return train.Config{Steps: *l.steps, Accum: *l.accum, LR: *l.lr, Warmup: *l.warmup, Clip: *l.clip, EvalEvery: *l.evalEvery,
		SaveEvery: *l.saveEvery, Seed: *l.seed, Out: *l.out, Resume: *l.resume, CheckpointActivations: *l.checkpointAct, DType: *l.dtype}
}

func readExamples(path string, format string) ([]data.Example, error) {
	if path == "" {
		return nil, nil
	}
	if ex, ok, err := readStore(path, store.ExportRankings); ok { // --data sqlite:FILE or postgres://...
		return ex, err
	}
	ds, err := data.Read(path, data.ReadOptions{Format: data.Format(format)})
	if err != nil {
		return nil, err
	}
	return ds.Examples, nil
}

// interrupted returns errInterrupted (exit 130) when Ctrl-C stopped the
// run, after telling how to continue it: the run saved, but a script
// running the next stage must not go on with a half-trained model.
func interrupted(stopped bool, step int, out string) error {
	if !stopped {
		return nil
	}
	fmt.Fprintf(os.Stderr, "interrupted at step %d: saved to %s (continue with --resume)\n", step, out)
	return errInterrupted
}

func runReward(args []string) error {
	fs := newFlags("reward", `golem reward --model out/sft --data rankings.jsonl --out out/rm`)
	model := fs.String("model", "", "the SFT model the reward model starts from; a LLaVA folder (golem vlm's --out) makes a reward model that sees, trained on labels with images (required)")
	dataPath := fs.String("data", "", "preference pairs or rankings (TRL, HH, LLaMA-Factory, {prompt, completions, ranking}) (required)")
	heldout := fs.String("heldout", "", "held-out comparisons (default: --heldout-frac of the prompts of --data)")
	frac := fs.Float64("heldout-frac", 0.1, "share of prompts held out when --heldout is not given")
	demos := fs.String("demos", "", "demonstrations whose mean reward becomes 0 (default: the best answer of each comparison)")
	format := fs.String("format", "", "force the data format")
	batch := fs.Int("batch", 8, "comparisons (rankings or pairs) per micro-batch")
	truncate := fs.Bool("truncate", false, "keep the end of conversations longer than the context instead of failing")
	freezeEmb := fs.Bool("freeze-embeddings", false, "keep the starting model's token and position embeddings")
	lf := addLoopFlags(fs, 200, 1e-5)
	lora := addLoRAFlags(fs)
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	need := []string{"model", "data", "out"}
	if *lf.resume {
		need = need[1:] // the model is the checkpoint's
	}
	if err := required(fs, need...); err != nil {
		return err
	}
	ex, err := readExamples(*dataPath, *format)
	if err != nil {
		return err
	}
	hv, err := readExamples(*heldout, *format)
	if err != nil {
		return err
	}
	dm, err := readExamples(*demos, *format)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, rep, err := train.Reward(ctx, train.RewardOptions{Backend: be, Model: *model, Data: ex, Heldout: hv, HeldoutFrac: *frac, Demos: dm,
		Batch: *batch, Truncate: *truncate, FreezeEmbeddings: *freezeEmb, LoRA: lora.config(), Merge: *lora.merge, Loop: lora.loop(fs, lf.config())})
	if err != nil {
		return err
	}
	fmt.Printf("reward model saved to %s (%d steps, %.0fs)\n", *lf.out, res.Step, res.Seconds)
	// With no held-out pairs, Eval has no accuracy: it prints n/a.
	fmt.Printf("heldout_pairs=%d accuracy=%s margin=%s length_corr=%s offset=%.4f\n", rep.Pairs,
		metric(res.Eval, "accuracy"), metric(res.Eval, "margin"), metric(res.Eval, "length_corr"), rep.Bias)
	return interrupted(res.Interrupted, res.Step, *lf.out)
}
