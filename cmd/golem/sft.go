package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"

	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/store"
	"github.com/golem-ml/golem/train"
)

func init() {
	register("sft", "stage 2: instruction tuning (full, LoRA or prompt tuning) on demonstrations", runSFT)
}

// loraFlags are the LoRA flags of every stage that can train adapters
// (sft, reward, dpo, ppo, grpo), with the same names and defaults.
type loraFlags struct {
	r              *int
	alpha, dropout *float64
	targets        *string
	merge          *bool
}

func addLoRAFlags(fs *flag.FlagSet) loraFlags {
	return loraFlags{
		r:       fs.Int("lora-r", 0, "train a LoRA adapter of this rank on a frozen model (0 = train the whole model); OUT is then a PEFT adapter folder (RL stages: the default --lr is 10x)"),
		alpha:   fs.Float64("lora-alpha", 0, "LoRA scale numerator (default 2 x rank)"),
		dropout: fs.Float64("lora-dropout", 0.05, "dropout on the LoRA input"),
		targets: fs.String("lora-targets", "", "comma-separated module names, e.g. q_proj,v_proj or c_attn, or all-linear (default: PEFT's for the architecture)"),
		merge:   fs.Bool("merge", false, "with LoRA: also write the merged model to OUT/merged"),
	}
}

// loop returns the loop's config for a LoRA run: with --lora-r and no
// --lr, the stage's default learning rate times 10 (the adapters start at
// zero and move in a low-rank subspace; PEFT's recipes raise the rate so).
func (l loraFlags) loop(fs *flag.FlagSet, c train.Config) train.Config {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "lr" })
	if *l.r > 0 && !set {
		c.LR *= 10
	}
	return c
}

// config is the LoRA the flags ask for, nil without --lora-r.
func (l loraFlags) config() *gpt.LoRAConfig {
	if *l.r <= 0 {
		return nil
	}
	c := &gpt.LoRAConfig{R: *l.r, Alpha: *l.alpha, Dropout: float32(*l.dropout)}
	if c.Alpha == 0 {
		c.Alpha = 2 * float64(*l.r)
	}
	if *l.targets != "" {
		c.Targets = strings.Split(*l.targets, ",")
	}
	return c
}

func runSFT(args []string) error {
	fs := newFlags("sft", `golem sft --model out/base --data builtin --out out/sft`)
	model := fs.String("model", "", "base model folder, FILE.gguf or ollama:NAME[:TAG] (a quantized one: LoRA or prompt tuning only) (required unless --resume)")
	var files, evalFiles listFlag
	fs.Var(&files, "data", `data file (any format golem reads: TRL, Alpaca, ShareGPT, ...) or "builtin" for golem's instruction tasks (repeatable)`)
	fs.Var(&evalFiles, "eval", "held-out data file (repeatable; default: 5% of --data, or held-out built-in tasks)")
	format := fs.String("format", "", "force the data format: "+formatNames())
	out := fs.String("out", "", "output folder (required): the model, or the adapter in PEFT layout")
	resume := fs.Bool("resume", false, resumeHelp)
	lora := addLoRAFlags(fs)
	promptTokens := fs.Int("prompt-tuning", 0, "train N virtual tokens on a frozen model (prompt tuning)")
	allTokens := fs.Bool("all-tokens", false, "loss on every token, not only the assistant's")
	packing := fs.Bool("packing", false, "group examples of similar length into micro-batches of up to batch x max-len tokens (each example still sees only itself)")
	maxLen := fs.Int("max-len", 0, "tokens per example; longer ones are truncated and counted (default: the model's context)")
	batch := fs.Int("batch", 8, "examples per micro-batch")
	accum := fs.Int("accum", 1, "micro-batches per step")
	steps := fs.Int("steps", 0, "optimizer steps (default: --epochs over the data)")
	epochs := fs.Float64("epochs", 1, "passes over the data when --steps is 0")
	lr := fs.Float64("lr", 0, "peak learning rate (default 2e-4 full, 1e-3 LoRA, 3e-2 prompt tuning)")
	minLR := fs.Float64("min-lr", 0, "final learning rate (default lr/10)")
	warmup := fs.Int("warmup", 10, "warmup steps")
	wd := fs.Float64("weight-decay", 0, "weight decay (matrices only)")
	clip := fs.Float64("clip", 1, "gradient-norm clip (0 = off)")
	evalEvery := fs.Int("eval-every", 0, "evaluate every N steps (0 = at the end)")
	saveEvery := fs.Int("save-every", 0, saveEveryHelp)
	seed := fs.Uint64("seed", defaultSeed, "random seed")
	builtinN := fs.Int("builtin-n", 2000, "built-in tasks to train on")
	lang := fs.String("lang", "en", "built-in tasks' language: en, zh or mix")
	ckptAct := addCheckpointActivationsFlag(fs)
	dtype := addDTypeFlag(fs)
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	need := []string{"model", "data", "out"}
	if *resume {
		need = need[1:] // the model is the checkpoint's
	}
	if err := required(fs, need...); err != nil {
		return err
	}
	// A store (--data sqlite:FILE or postgres://...) is read as its demonstrations.
	files, cleanup, err := storeFiles(files, store.ExportSFT)
	if err != nil {
		return err
	}
	defer cleanup()
	o := train.SFTOptions{Backend: be, Model: *model, Format: data.Format(*format), Eval: evalFiles, MaxLen: *maxLen, Batch: *batch, Packing: *packing, AllTokens: *allTokens,
		Epochs: *epochs, LoRA: lora.config(), Merge: *lora.merge, PromptTokens: *promptTokens,
		Loop: train.Config{Steps: *steps, Accum: *accum, LR: *lr, MinLR: *minLR, Warmup: *warmup, WeightDecay: *wd, Clip: *clip,
			EvalEvery: *evalEvery, SaveEvery: *saveEvery, Seed: *seed, Out: *out, Resume: *resume, CheckpointActivations: *ckptAct, DType: *dtype}}
	// --data builtin: golem's instruction tasks (train split), validated
	// on held-out ones when they are the only data.
	builtin := slices.Contains(files, "builtin")
	files = slices.DeleteFunc(files, func(f string) bool { return f == "builtin" })
	if builtin {
		if o.Examples, err = synth.Demonstrations(synth.TaskOptions{Seed: int64(*seed), N: *builtinN, Split: synth.SplitTrain, Lang: *lang, System: 0.2}); err != nil {
			return fmt.Errorf("sft: %w", err)
		}
		o.ExamplesAbout = fmt.Sprintf("%d built-in %s tasks (train split)", *builtinN, *lang)
		if len(files) == 0 && len(evalFiles) == 0 {
			if o.EvalExamples, err = synth.Demonstrations(synth.TaskOptions{Seed: 99, N: 100, Split: synth.SplitHeldout, Lang: *lang, System: 0.2}); err != nil {
				return fmt.Errorf("sft: %w", err)
			}
		}
	}
	o.Data = files
	if o.Loop.LR == 0 {
		switch {
		case o.LoRA != nil:
			o.Loop.LR = 1e-3
		case o.PromptTokens > 0:
			o.Loop.LR = 3e-2
		default:
			o.Loop.LR = 2e-4
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := train.SFT(ctx, o)
	if err != nil {
		return err
	}
	fmt.Printf("%s: saved to %s (%d steps, %.0fs, %.0f tokens/s)\n", res.Method, *out, res.Step, res.Seconds, res.TokensPerSecond)
	fmt.Printf("trainable=%d total=%d truncated=%d\n", res.Trainable, res.Total, res.Truncated)
	if v, ok := res.Eval["val_loss"]; ok {
		fmt.Printf("val_loss=%.4f\n", v)
	}
	return interrupted(res.Interrupted, res.Step, *out)
}
