// Package demo runs golem's whole recipe on its built-in data (data/synth),
// stage after stage through package train, evaluates every model on
// held-out tasks (package eval) and builds the report card: what
// `golem demo` does.
package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/data"
	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/eval"
	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/load"
	"github.com/golem-ml/golem/tokenizer"
	"github.com/golem-ml/golem/train"
)

// Options configures Demo.
type Options struct {
	// NewBackend makes the backend of each stage. A backend per stage lets
	// the CPU backend's buffer pool, sized by one stage's shapes, go when
	// the stage ends.
	NewBackend func() backend.Backend
	Out        string // folder for every stage's model and the report data
	Quick      bool   // a few steps of each stage (a smoke test, not a result)
	Seed       uint64
	Log        io.Writer
	// Kinds are the built-in task kinds trained and evaluated on; nil
	// means Kinds.
	Kinds []string
	// Reuse keeps the base and SFT models an earlier run with the same
	// options left in Out instead of training them again.
	Reuse bool
	// CLIPTokenizer is CLIP's bpe_simple_vocab_16e6.txt[.gz]
	// (RunMultimodal; default ../shared/data/tokenizer/clip's).
	CLIPTokenizer string
}

// Kinds are the built-in task kinds the demo trains and evaluates on:
// ones a model of a million parameters learns in minutes, with answers
// that programs check.
var Kinds = []string{synth.KindFirstLetter, synth.KindCount, synth.KindRefusal}

// sizes are the demo's knobs.
type sizes struct {
	corpusBytes, vocab                int
	layers, heads, hidden, ctx        int
	pretrainSteps, pretrainBatch      int
	sftTasks, sftSteps                int
	sftLR                             float64
	rankPrompts, k                    int
	rmSteps, ppoIters, dpoSteps       int
	grpoSteps, evalTasks, maxTokens   int
	rankHeldout                       int
	ppoBatch, grpoPrompts, grpoGroups int
	// Tool use: calculator and lookup round trips in the SFT mix, and
	// held-out calculator questions for the tool-use score.
	calcTasks, lookupTasks, toolEval int
}

func sizesOf(quick bool) sizes {
	if quick {
		return sizes{corpusBytes: 60_000, vocab: 300, layers: 1, heads: 2, hidden: 32, ctx: 192,
			pretrainSteps: 4, pretrainBatch: 3, sftTasks: 64, sftSteps: 4, sftLR: 1e-3, rankPrompts: 16, k: 3, rankHeldout: 8,
			rmSteps: 3, ppoIters: 1, dpoSteps: 3, grpoSteps: 2, evalTasks: 8, maxTokens: 24, ppoBatch: 4, grpoPrompts: 2, grpoGroups: 4,
			calcTasks: 8, lookupTasks: 4, toolEval: 4}
	}
	// The context holds a tool round trip with both tools offered (up to
	// 171 tokens with the demo's tokenizer); pretraining's batch of 11
	// windows of 192 tokens keeps its tokens per step (2,112) about the
	// 2,048 of 16 windows of 128 it had before.
	return sizes{corpusBytes: 1_500_000, vocab: 1024, layers: 4, heads: 4, hidden: 128, ctx: 192,
		pretrainSteps: 1000, pretrainBatch: 11, sftTasks: 600, sftSteps: 600, sftLR: 2e-3, rankPrompts: 2000, k: 6, rankHeldout: 300,
		rmSteps: 400, ppoIters: 40, dpoSteps: 150, grpoSteps: 80, evalTasks: 300, maxTokens: 64, ppoBatch: 32, grpoPrompts: 4, grpoGroups: 8,
		calcTasks: 800, lookupTasks: 100, toolEval: 100}
}

// Model is one model's held-out evaluation.
type Model struct {
	Name string `json:"name"`
	Dir  string `json:"dir"`
	synth.Result
	RMReward   float64                 `json:"rm_reward"`             // mean reward-model score of its answers
	WinRateSFT float64                 `json:"rm_win_rate_vs_sft"`    // reward-model win rate against the SFT model's answers
	ToolUse    ToolUse                 `json:"tool_use"`              // held-out calculator round trips
	KL         float64                 `json:"kl_to_sft"`             // KL(model || SFT) per sampled answer, nats (eval.KL: exact per token, never negative)
	ByKind     map[string]synth.Result `json:"by_kind"`               // task success per kind
	Samples    []Sample                `json:"samples"`               // a few answers
	Seconds    float64                 `json:"train_seconds"`         // time its stage took
	Train      map[string]float64      `json:"train_final,omitempty"` // the stage's last logged metrics
}

// Sample is one held-out prompt and a model's answer.
type Sample struct {
	Prompt  string `json:"prompt"`
	Answer  string `json:"answer"`
	Correct bool   `json:"correct"`
}

// Result is every number of a demo run.
type Result struct {
	Quick         bool                            `json:"quick"`
	Seconds       float64                         `json:"seconds"`
	Parameters    int                             `json:"parameters"`
	Kinds         []string                        `json:"kinds"`
	HeldoutTasks  int                             `json:"heldout_tasks"`
	Models        []Model                         `json:"models"` // base, sft, ppo, dpo, grpo
	RewardModel   train.RewardReport              `json:"reward_model"`
	RewardData    map[string]int                  `json:"reward_data"`
	AnnotatorNote string                          `json:"annotator"`
	Stages        []Stage                         `json:"stages"`
	Curves        map[string][]map[string]float64 `json:"curves"` // each stage's metrics.jsonl
	Checks        []Check                         `json:"checks"`
}

// Stage is how long a stage took.
type Stage struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// Check is one of the claims the demo's numbers must support.
type Check struct {
	Claim string `json:"claim"`
	Pass  bool   `json:"pass"`
}

// Model returns the named model's evaluation.
func (r *Result) Model(name string) *Model {
	for i := range r.Models {
		if r.Models[i].Name == name {
			return &r.Models[i]
		}
	}
	return nil
}

// Run runs the whole recipe on built-in data: a BPE tokenizer and a small
// GPT pretrained on the built-in corpus, SFT on demonstrations of the
// built-in tasks, K sampled answers per prompt ranked by a simulated
// annotator (10% noise), a reward model, PPO, and DPO and GRPO from the
// same SFT model for comparison; then every model answers held-out
// prompts. Models go in o.Out/{base,sft,reward,ppo,dpo,grpo}.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.NewBackend == nil {
		return nil, errors.New("demo: no backend")
	}
	sz := sizesOf(o.Quick)
	if sizesOverride != nil {
		sz = *sizesOverride
	}
	kinds := o.Kinds
	if kinds == nil {
		kinds = Kinds
	}
	begin := time.Now()
	res := &Result{Quick: o.Quick, Kinds: kinds, Curves: map[string][]map[string]float64{},
		AnnotatorNote: "rankings come from synth.Annotator, a simulated annotator (a program that ranks by correctness, then format, then brevity) that swaps each adjacent pair with probability 0.1; it stands in for people"}
	dir := func(s string) string { return filepath.Join(o.Out, s) }
	if err := os.MkdirAll(dir("data"), 0o755); err != nil {
		return nil, err
	}
	total := 8
	n := 0
	stage := func(name, what string) func() {
		n++
		fmt.Fprintf(o.Log, "\n[%d/%d] %s: %s\n", n, total, name, what)
		t0 := time.Now()
		return func() {
			s := time.Since(t0).Seconds()
			res.Stages = append(res.Stages, Stage{Name: name, Seconds: s})
			fmt.Fprintf(o.Log, "[%d/%d] %s done in %.0fs (%.0fs so far)\n", n, total, name, s, time.Since(begin).Seconds())
		}
	}
	quiet := o.Quick
	seed := int64(o.Seed)

	// 1. Tokenizer and pretraining.
	done := stage("pretrain", "a byte-level BPE tokenizer and a small GPT on golem's built-in corpus")
	var corpus bytes.Buffer
	if err := synth.WriteCorpus(&corpus, synth.CorpusOptions{Seed: seed, Bytes: sz.corpusBytes}); err != nil {
		return nil, err
	}
	corpusPath := dir("data/corpus.txt")
	if err := os.WriteFile(corpusPath, corpus.Bytes(), 0o644); err != nil {
		return nil, err
	}
	p := train.Presets()["baby"]
	p.Model.Layers, p.Model.Heads, p.Model.KVHeads, p.Model.Hidden, p.Model.Intermediate = sz.layers, sz.heads, sz.heads, sz.hidden, 4*sz.hidden
	p.Model.Context, p.Block, p.Batch, p.EvalIters = sz.ctx, sz.ctx, sz.pretrainBatch, 4
	p.Loop = train.Config{Steps: sz.pretrainSteps, LR: 2e-3, Warmup: min(50, sz.pretrainSteps/10), Beta2: 0.99, WeightDecay: 0.1, Clip: 1,
		Seed: o.Seed, Out: dir("base"), Quiet: quiet, Progress: o.Log}
	var pre train.Result
	var err error
	if !o.Reuse || !haveModel(dir("base")) {
		pre, err = train.Pretrain(ctx, train.PretrainOptions{Backend: o.NewBackend(), Data: []string{corpusPath}, VocabSize: sz.vocab, Preset: p,
			CacheDir: dir("cache"), Log: o.Log})
		if err != nil {
			return nil, fmt.Errorf("demo: pretrain: %w", err)
		}
	}
	done()

	// 2. SFT on demonstrations.
	done = stage("sft", "instruction tuning on demonstrations of the built-in tasks")
	// One pool of training prompts: the first sftTasks are demonstrations,
	// the next rankPrompts are answered and ranked (prompts SFT never saw,
	// as in InstructGPT, where each stage has its own prompts), and RL
	// answers them all.
	trainTasks, err := synth.Tasks(synth.TaskOptions{Seed: seed, N: sz.sftTasks + sz.rankPrompts, Kinds: kinds})
	if err != nil {
		return nil, err
	}
	heldout, err := synth.Tasks(synth.TaskOptions{Seed: seed + 1, N: max(sz.evalTasks, sz.rankHeldout), Kinds: kinds, Split: synth.SplitHeldout})
	if err != nil {
		return nil, err
	}
	// Tool use is learned in SFT only: demonstrations of each step of
	// calculator and lookup round trips, mixed in.
	sftTasks, toolHeldout, err := toolTasks(seed, sz, trainTasks[:sz.sftTasks])
	if err != nil {
		return nil, err
	}
	if err := writeFileWith(dir("data/sft.jsonl"), func(w io.Writer) error { return synth.WriteSFT(w, sftTasks) }); err != nil {
		return nil, err
	}
	if err := writeFileWith(dir("data/sft_heldout.jsonl"), func(w io.Writer) error { return synth.WriteSFT(w, heldout) }); err != nil {
		return nil, err
	}
	var sft train.SFTResult
	if !o.Reuse || !haveModel(dir("sft")) {
		sft, err = train.SFT(ctx, train.SFTOptions{Backend: o.NewBackend(), Model: dir("base"), Data: []string{dir("data/sft.jsonl")}, Eval: []string{dir("data/sft_heldout.jsonl")},
			Batch: 16, Loop: train.Config{Steps: sz.sftSteps, LR: sz.sftLR, Warmup: min(20, sz.sftSteps/10), Clip: 1, Seed: o.Seed, Out: dir("sft"), Quiet: quiet, Progress: o.Log}, Log: o.Log})
		if err != nil {
			return nil, fmt.Errorf("demo: sft: %w", err)
		}
	}
	done()

	// 3. Sample K answers per prompt; the simulated annotator ranks them.
	done = stage("rank", fmt.Sprintf("the SFT model answers %d prompts %d times; a simulated annotator ranks the answers (10%% noise)", sz.rankPrompts+sz.rankHeldout, sz.k))
	sftModel, err := load.Model(o.NewBackend(), dir("sft"), load.Options{})
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	policy, tok := sftModel.Model, sftModel.Tok
	res.Parameters = countParams(policy)
	an := synth.Annotator{Noise: 0.1, Seed: seed}
	rankTrain, rankVal := trainTasks[sz.sftTasks:], heldout[:sz.rankHeldout]
	heldout = heldout[:sz.evalTasks]
	res.HeldoutTasks = len(heldout)
	rank := func(tasks []synth.Task, salt uint64) ([]data.Example, []synth.Pair, error) {
		ans, err := sampleAnswers(policy, tok, tasks, sz.k, sz.maxTokens, rankTemperature, o.Seed*1000+salt)
		if err != nil {
			return nil, nil, err
		}
		right, all := map[string]int{}, map[string]int{}
		for i, tk := range tasks {
			for _, a := range ans[i] {
				all[tk.Kind]++
				if tk.Check(a).Correct {
					right[tk.Kind]++
				}
			}
		}
		for _, k := range kinds {
			if all[k] > 0 {
				fmt.Fprintf(o.Log, "  %-12s %4d answers, %.2f correct\n", k, all[k], float64(right[k])/float64(all[k]))
			}
		}
		// The annotator ranks each prompt's answers; every pair of answers
		// it values differently is a comparison (equal answers, two
		// equally wrong ones say, are a tie, and a tie is no label).
		var ex []data.Example
		var ps []synth.Pair
		for i, tk := range tasks {
			for _, p := range an.Preferences(tk, ans[i]) {
				ps = append(ps, p)
				ex = append(ex, data.Example{Kind: data.Preference, Prompt: p.Prompt, Source: "demo:" + tk.Key,
					Chosen: []data.Message{{Role: "assistant", Content: p.Chosen}}, Rejected: []data.Message{{Role: "assistant", Content: p.Rejected}}})
			}
		}
		return ex, ps, nil
	}
	rkTrain, psTrain, err := rank(rankTrain, 1)
	if err != nil {
		return nil, err
	}
	rkVal, psVal, err := rank(rankVal, 2)
	if err != nil {
		return nil, err
	}
	if len(rkTrain) == 0 || len(rkVal) == 0 {
		return nil, fmt.Errorf("demo: the SFT model gave answers the annotator values the same every time; nothing to compare")
	}
	if err := writeFileWith(dir("data/preferences.jsonl"), func(w io.Writer) error { return synth.WritePreferences(w, psTrain) }); err != nil {
		return nil, err
	}
	if err := writeFileWith(dir("data/preferences_heldout.jsonl"), func(w io.Writer) error { return synth.WritePreferences(w, psVal) }); err != nil {
		return nil, err
	}
	promptsOf := func(ex []data.Example) int {
		n := map[string]bool{}
		for _, e := range ex {
			n[e.Source+fmt.Sprint(e.Prompt)] = true
		}
		return len(n)
	}
	res.RewardData = map[string]int{"train_prompts": promptsOf(rkTrain), "train_pairs": len(rkTrain), "heldout_prompts": promptsOf(rkVal), "heldout_pairs": len(rkVal),
		"ranked_prompts": len(rankTrain), "heldout_ranked_prompts": len(rankVal), "answers_per_prompt": sz.k}
	done()

	// 4. Reward model.
	done = stage("reward", "a reward model from the SFT model, on the annotator's comparisons")
	var demos []data.Example
	for _, tk := range rankTrain {
		demos = append(demos, data.Example{Kind: data.PromptCompletion, Prompt: tk.Prompt, Completion: []data.Message{{Role: "assistant", Content: tk.Answer}}})
	}
	_, rmRep, err := train.Reward(ctx, train.RewardOptions{Backend: o.NewBackend(), Model: dir("sft"), Data: rkTrain, Heldout: rkVal, Demos: demos, Batch: 16, FreezeEmbeddings: true,
		Loop: train.Config{Steps: sz.rmSteps, LR: 3e-4, WeightDecay: 0.1, Warmup: sz.rmSteps / 10, Clip: 1, EvalEvery: max(1, sz.rmSteps/5), Seed: o.Seed, Out: dir("reward"), Quiet: quiet, Progress: o.Log}, Log: o.Log})
	if err != nil {
		return nil, fmt.Errorf("demo: reward: %w", err)
	}
	res.RewardModel = rmRep
	done()

	// 5-7. PPO, DPO, GRPO from the same SFT model.
	var prompts []data.Example
	for _, tk := range trainTasks {
		prompts = append(prompts, data.Example{Kind: data.PromptCompletion, Prompt: tk.Prompt, Source: "builtin:" + tk.Key})
	}
	stageSeconds := map[string]float64{}
	done = stage("ppo", "PPO against the reward model, KL penalty to the SFT model")
	t0 := time.Now()
	_, err = train.PPO(ctx, train.PPOOptions{Backend: o.NewBackend(), Policy: dir("sft"), Reward: dir("reward"), Prompts: prompts, Batch: sz.ppoBatch, MiniBatches: 2, Epochs: 2,
		// Beta 0.2 and the EMA: with beta 0.05 and a higher learning rate
		// the policy games the reward model (its score rises from -0.2 to
		// 2.1 while first-letter success falls from 0.68 to 0.14); with
		// beta 0.2 the EMA of the policy beats SFT.
		MaxTokens: sz.maxTokens, Temperature: 0.7, KLCoef: 0.2,
		// No PPO-ptx here: at this scale SFT moves the model far from plain
		// text (its corpus loss goes from 1.5 to 8), and the ptx loss pulls
		// the policy back there, far from the SFT model (KL > 10 nats).
		Loop: train.Config{Steps: 4 * sz.ppoIters, LR: 5e-5, Clip: 1, Seed: o.Seed, Out: dir("ppo"), Quiet: quiet, Progress: o.Log}, Log: o.Log})
	if err != nil {
		return nil, fmt.Errorf("demo: ppo: %w", err)
	}
	stageSeconds["ppo"] = time.Since(t0).Seconds()
	done()
	done = stage("dpo", "DPO on the same comparisons")
	t0 = time.Now()
	_, err = train.DPO(ctx, train.DPOOptions{Backend: o.NewBackend(), Policy: dir("sft"), Data: rkTrain, Heldout: rkVal, Beta: 0.1, RPOAlpha: 0.5, Batch: 8,
		Loop: train.Config{Steps: sz.dpoSteps, LR: 2e-5, Clip: 1, EvalEvery: max(1, sz.dpoSteps/4), Seed: o.Seed, Out: dir("dpo"), Quiet: quiet, Progress: o.Log}, Log: o.Log})
	if err != nil {
		return nil, fmt.Errorf("demo: dpo: %w", err)
	}
	stageSeconds["dpo"] = time.Since(t0).Seconds()
	done()
	done = stage("grpo", "GRPO with program rewards (correct answer, format)")
	t0 = time.Now()
	_, err = train.GRPO(ctx, train.GRPOOptions{Backend: o.NewBackend(), Policy: dir("sft"), Tasks: verifiable(trainTasks), Group: sz.grpoGroups, Prompts: sz.grpoPrompts, MaxTokens: sz.maxTokens, Temperature: 0.7,
		Loop: train.Config{Steps: sz.grpoSteps, LR: 3e-5, Clip: 1, Seed: o.Seed, Out: dir("grpo"), Quiet: quiet, Progress: o.Log}, Log: o.Log})
	if err != nil {
		return nil, fmt.Errorf("demo: grpo: %w", err)
	}
	stageSeconds["grpo"] = time.Since(t0).Seconds()
	done()

	// 8. Evaluation on held-out prompts.
	done = stage("eval", fmt.Sprintf("every model answers %d held-out prompts", len(heldout)))
	evalBE := o.NewBackend()
	rm, err := gpt.LoadScorer(evalBE, dir("reward"))
	if err != nil {
		return nil, err
	}
	evalPrompts := make([][]tokenizer.Message, len(heldout))
	for i, tk := range heldout {
		evalPrompts[i] = tk.Prompt
	}
	var sftAnswers []string
	stageSeconds["base"], stageSeconds["sft"] = pre.Seconds, sft.Seconds
	for _, name := range []string{"sft", "base", "ppo", "dpo", "grpo"} {
		from := dir(name)
		if name == "ppo" && haveModel(dir("ppo/ema")) {
			from = dir("ppo/ema") // PPO's model is the EMA of its policy
		}
		l, err := load.Model(evalBE, from, load.Options{})
		if err != nil {
			return nil, err
		}
		m, mt := l.Model, tok
		if name == "base" {
			// The base model has no chat tokens of its own training, but
			// its tokenizer reserves them: it answers the same prompts.
			mt = l.Tok
		}
		ans, err := sampleAnswers(m, mt, heldout, 1, sz.maxTokens, 0, 0)
		if err != nil {
			return nil, err
		}
		answers := make([]string, len(ans))
		for i := range ans {
			answers[i] = ans[i][0]
		}
		dm := Model{Name: name, Dir: from, Seconds: stageSeconds[name]}
		if dm.Result, dm.ByKind, err = synth.Evaluate(heldout, answers); err != nil {
			return nil, err
		}
		if dm.ToolUse, err = toolUse(m, mt, toolHeldout, sz.maxTokens); err != nil {
			return nil, err
		}
		rw, err := eval.Rewards(rm, tok, evalPrompts, answers)
		if err != nil {
			return nil, err
		}
		dm.RMReward = mean(rw)
		if name == "sft" {
			sftAnswers = answers
			dm.WinRateSFT = 0.5
		} else if dm.WinRateSFT, err = eval.WinRate(rm, tok, evalPrompts, answers, sftAnswers); err != nil {
			return nil, err
		}
		if name != "base" {
			sampled, err := sampleAnswers(m, tok, heldout, 1, sz.maxTokens, 1, o.Seed+77)
			if err != nil {
				return nil, err
			}
			flat := make([]string, len(sampled))
			for i := range sampled {
				flat[i] = sampled[i][0]
			}
			if dm.KL, err = eval.KL(m, policy, tok, evalPrompts, flat); err != nil {
				return nil, err
			}
		}
		for i := 0; i < min(4, len(heldout)); i++ {
			dm.Samples = append(dm.Samples, Sample{Prompt: heldout[i].User(), Answer: answers[i], Correct: heldout[i].Check(answers[i]).Correct})
		}
		curve, _ := readMetrics(dir(name))
		res.Curves[name] = curve
		if len(curve) > 0 {
			dm.Train = curve[len(curve)-1]
		}
		res.Models = append(res.Models, dm)
		fmt.Fprintf(o.Log, "  %-5s %s  rm %.3f  win-vs-sft %.2f  kl %.2f  tool use %.3f\n", name, dm.Result, dm.RMReward, dm.WinRateSFT, dm.KL, dm.ToolUse.Success)
	}
	curve, _ := readMetrics(dir("reward"))
	res.Curves["reward"] = curve
	// Base first in the report's table.
	res.Models[0], res.Models[1] = res.Models[1], res.Models[0]
	done()

	base, sftM := res.Model("base"), res.Model("sft")
	check := func(claim string, ok bool) { res.Checks = append(res.Checks, Check{Claim: claim, Pass: ok}) }
	check("SFT beats the base model on held-out task success", sftM.Correct > base.Correct)
	check("SFT beats the base model on held-out tool use (calculator round trips)", sftM.ToolUse.Success > base.ToolUse.Success)
	check("reward model held-out pairwise accuracy >= 0.8 (labels with 10% noise)", rmRep.Accuracy >= 0.8)
	for _, name := range []string{"ppo", "dpo", "grpo"} {
		m := res.Model(name)
		check(name+" beats SFT on held-out task success", m.Correct > sftM.Correct)
		check(name+" wins against SFT by the reward model (> 0.5)", m.WinRateSFT > 0.5)
	}
	check("PPO's KL to the SFT model is bounded (< 10 nats per answer)", res.Model("ppo").KL < 10)
	res.Seconds = time.Since(begin).Seconds()
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return nil, err
	}
	return res, atomicfile.WriteFile(filepath.Join(o.Out, "demo_result.json"), b)
}

// rankTemperature is the temperature of the answers people rank: the
// model's own distribution, so that the K answers differ (at 0.7 most
// prompts get K answers the annotator cannot tell apart).
const rankTemperature = 1.0

// sizesOverride replaces the demo's sizes in experiments.
var sizesOverride *sizes

// haveModel reports whether dir holds a saved model.
func haveModel(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "model.safetensors"))
	return err == nil
}

// verifiable makes the built-in tasks GRPO's: prompts their programs score.
func verifiable(ts []synth.Task) []train.Verifiable {
	out := make([]train.Verifiable, len(ts))
	for i, tk := range ts {
		out[i] = train.Verifiable{Key: tk.Key, Prompt: tk.Prompt, Score: tk.Scores}
	}
	return out
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(max(len(xs), 1))
}

func countParams(m *gpt.Model) int {
	n := 0
	for _, p := range m.Params() {
		n += p.Tensor.Len()
	}
	return n
}

func writeFileWith(path string, fn func(io.Writer) error) error {
	var b bytes.Buffer
	if err := fn(&b); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b.Bytes())
}

// sampleAnswers has m answer each task k times (temperature 0: greedy),
// in batches, and returns the decoded answers.
func sampleAnswers(m *gpt.Model, tok *tokenizer.Tokenizer, tasks []synth.Task, k, maxTokens int, temp float64, seed uint64) ([][]string, error) {
	imEnd, ok := tok.SpecialID(tokenizer.ImEnd)
	if !ok {
		return nil, fmt.Errorf("demo: the tokenizer has no %s", tokenizer.ImEnd)
	}
	eot, _ := tok.SpecialID(tokenizer.EndOfText)
	out := make([][]string, len(tasks))
	var prompts [][]int
	var owner []int
	for i, tk := range tasks {
		ids, _, err := tok.RenderChat(tk.Prompt, true)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tk.Key, err)
		}
		if len(ids) >= m.Config.Context {
			return nil, fmt.Errorf("%s: the prompt has %d tokens, longer than the model's context of %d allows", tk.Key, len(ids), m.Config.Context)
		}
		for j := 0; j < k; j++ {
			prompts = append(prompts, ids)
			owner = append(owner, i)
		}
	}
	const batch = 32
	for i := 0; i < len(prompts); i += batch {
		j := min(i+batch, len(prompts))
		gen, err := generate.Tokens(m, prompts[i:j], generate.Options{MaxTokens: maxTokens, Temperature: temp, StopIDs: []int{imEnd, eot}, Seed: seed + uint64(i)}, nil)
		if err != nil {
			return nil, err
		}
		for g, ids := range gen {
			out[owner[i+g]] = append(out[owner[i+g]], tok.Decode(ids))
		}
	}
	return out, nil
}

// readMetrics reads a stage's metrics.jsonl.
func readMetrics(dir string) ([]map[string]float64, error) {
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []map[string]float64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]float64
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out, sc.Err()
}

// Report builds the report card of a demo run: the summary table of
// every model on held-out prompts, the reward model's numbers, the checks,
// samples, and the training curves of each stage.
func Report(r *Result) *eval.Report {
	f := func(v float64) string { return fmt.Sprintf("%.3f", v) }
	measured := func(v float64) string { // n/a without held-out pairs
		if r.RewardModel.Pairs == 0 {
			return "n/a"
		}
		return f(v)
	}
	sum := eval.Table{Header: []string{"model", "task success", "format", "helpful", "task reward", "RM reward", "RM win vs SFT", "KL to SFT (nats)", "tool use"}}
	for _, m := range r.Models {
		kl := f(m.KL)
		if m.Name == "base" {
			kl = "-"
		}
		sum.Rows = append(sum.Rows, []string{m.Name, f(m.Correct), f(m.FollowsFormat), f(m.Helpful), f(m.Reward), f(m.RMReward), f(m.WinRateSFT), kl, f(m.ToolUse.Success)})
	}
	rep := &eval.Report{
		Title: "golem demo: the ChatGPT recipe on built-in data",
		Intro: fmt.Sprintf("A %.2fM-parameter GPT pretrained on golem's built-in corpus, instruction-tuned (SFT), then improved from comparisons by a simulated annotator with a reward model and PPO (the model evaluated is the EMA of the PPO policy), and, for comparison, with DPO on the same comparisons and with GRPO on program rewards. Every model answers the same %d held-out prompts (greedy); kinds: %v. KL to SFT is KL(model || SFT) per answer: the exact KL between the two models' next-token distributions, summed over the positions of answers the model samples (temperature 1), averaged over the prompts; it is never negative. Run time %.0fs%s.",
			float64(r.Parameters)/1e6, r.HeldoutTasks, r.Kinds, r.Seconds, map[bool]string{true: " (--quick: a smoke test, the numbers mean nothing)", false: ""}[r.Quick]),
		Summary: sum,
		Data:    r,
	}
	rm := r.RewardModel
	rep.Sections = append(rep.Sections, eval.Section{Title: "Reward model",
		Text: fmt.Sprintf("The SFT model answered %d training prompts %d times each (temperature %g); the simulated annotator ranked each prompt's answers, and every two answers it values differently make a comparison (equal answers are a tie, which is no label). The reward model, from the SFT model, trained on the %d comparisons of %d prompts (all comparisons of a prompt in one batch element) and is scored on the %d comparisons of %d held-out prompts, against the annotator's noisy labels. %s.",
			r.RewardData["ranked_prompts"], r.RewardData["answers_per_prompt"], rankTemperature, r.RewardData["train_pairs"], r.RewardData["train_prompts"], r.RewardData["heldout_pairs"], r.RewardData["heldout_prompts"], r.AnnotatorNote),
		Table: &eval.Table{Header: []string{"held-out pairs", "pairwise accuracy", "mean margin", "reward-length correlation", "offset"},
			Rows: [][]string{{fmt.Sprint(rm.Pairs), measured(rm.Accuracy), measured(rm.Margin), measured(rm.LengthCorr), f(rm.Bias)}}}})
	checks := eval.Table{Header: []string{"claim", "holds"}}
	for _, c := range r.Checks {
		checks.Rows = append(checks.Rows, []string{c.Claim, map[bool]string{true: "yes", false: "NO"}[c.Pass]})
	}
	rep.Sections = append(rep.Sections, eval.Section{Title: "Checks", Table: &checks})
	kinds := eval.Table{Header: append([]string{"model"}, r.Kinds...)}
	for _, m := range r.Models {
		row := []string{m.Name}
		for _, k := range r.Kinds {
			row = append(row, f(m.ByKind[k].Correct))
		}
		kinds.Rows = append(kinds.Rows, row)
	}
	rep.Sections = append(rep.Sections, eval.Section{Title: "Task success by kind", Table: &kinds})
	tools := eval.Table{Header: []string{"model", "held-out questions", "right calls", "round trips right (tool use)"}}
	for _, m := range r.Models {
		tools.Rows = append(tools.Rows, []string{m.Name, fmt.Sprint(m.ToolUse.Tasks), f(m.ToolUse.Calls), f(m.ToolUse.Success)})
	}
	rep.Sections = append(rep.Sections, eval.Section{Title: "Tool use",
		Text: "SFT's demonstrations include both steps of calculator and lookup round trips (the tools offered in the system message, one line each: " +
			"the call, and the answer from the tool's result). Each model gets held-out calculator questions with both tools offered and answers greedily; " +
			"a right call (the calculator, with an expression whose value is the question's) is run, its result given back as a tool response, and the model answers again. " +
			"Tool use is the share of questions whose call is right and whose final answer is the tool's result; the other stages do not train on tools.",
		Table: &tools})
	var samples []byte
	for _, m := range r.Models {
		for _, s := range m.Samples {
			samples = fmt.Appendf(samples, "[%s] %s\n  -> %q (correct: %v)\n", m.Name, s.Prompt, s.Answer, s.Correct)
		}
	}
	rep.Sections = append(rep.Sections, eval.Section{Title: "Sample answers", Code: string(samples)})
	st := eval.Table{Header: []string{"stage", "seconds"}}
	for _, s := range r.Stages {
		st.Rows = append(st.Rows, []string{s.Name, fmt.Sprintf("%.0f", s.Seconds)})
	}
	rep.Sections = append(rep.Sections, eval.Section{Title: "Time", Table: &st})
	series := func(stage string, keys ...string) []eval.Series { return curveSeries(r.Curves, stage, keys...) }
	plot := func(name, title, stage, y string, s []eval.Series) { addPlot(rep, name, title, stage, y, s) }
	plot("pretrain_loss", "Pretraining: training and validation loss", "pretraining", "loss (nats per token)", series("base", "loss", "val_loss"))
	plot("sft_loss", "SFT: training and validation loss", "SFT", "loss (nats per token)", series("sft", "loss", "val_loss"))
	plot("reward_model", "Reward model: loss, training and held-out pairwise accuracy", "reward-model", "loss / accuracy", series("reward", "loss", "train_accuracy", "accuracy"))
	plot("ppo_reward", "PPO: reward-model score of rollouts", "PPO", "reward", series("ppo", "reward"))
	plot("ppo_kl", "PPO: KL to the SFT model per answer (k3) and approximate KL per update", "PPO", "KL (nats)", series("ppo", "kl_k3", "approx_kl"))
	plot("dpo_loss", "DPO: loss and implicit-reward margin", "DPO", "loss / margin", series("dpo", "loss", "margin"))
	plot("grpo_reward", "GRPO: program reward and task success of samples", "GRPO", "reward / success", series("grpo", "reward", "correct"))
	plot("grpo_kl", "GRPO: KL to the SFT model per token (k3)", "GRPO", "KL (nats per token)", series("grpo", "kl"))
	return rep
}

// curveSeries is one series per key of a stage's logged metrics
// (metrics.jsonl's records), against its steps; keys it never logged are
// left out.
func curveSeries(curves map[string][]map[string]float64, stage string, keys ...string) []eval.Series {
	var out []eval.Series
	for _, k := range keys {
		s := eval.Series{Name: stage + " " + k}
		for _, rec := range curves[stage] {
			if v, ok := rec[k]; ok {
				s.X, s.Y = append(s.X, rec["step"]), append(s.Y, v)
			}
		}
		if len(s.X) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// addPlot adds a plot of series s to rep when there is any: one plot per
// stage and unit, each on its stage's own steps.
func addPlot(rep *eval.Report, name, title, stage, y string, s []eval.Series) {
	if len(s) > 0 {
		rep.Plots = append(rep.Plots, eval.Plot{Name: name, Title: title, XLabel: stage + " step", YLabel: y, Series: s})
	}
}
