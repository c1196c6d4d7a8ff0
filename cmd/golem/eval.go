package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/eval"
	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/model/load"
)

func init() {
	register("eval mc", "multiple-choice accuracy by log-likelihood, as lm-evaluation-harness scores it (ARC/OpenBookQA JSONL, HellaSwag, CMMLU CSV)", runEvalMC)
	register("eval gen", "exact-match accuracy of generated answers (GSM8K-style #### answers), k-shot and chain of thought", runEvalGen)
	register("eval tasks", "task success on golem's held-out built-in instruction tasks", runEvalTasks)
}

// evalFlags are the flags every eval command shares.
type evalFlags struct {
	model, data, json *string
	limit, shots      *int
	device            deviceFlag
}

func newEvalFlags(fs *flag.FlagSet, dataHelp string) evalFlags {
	return evalFlags{
		model:  fs.String("model", "", "model or adapter folder, FILE.gguf or ollama:NAME[:TAG] (required)"),
		data:   fs.String("data", "", dataHelp),
		json:   fs.String("json", "", "append the result to this JSON file (an array, for the report card)"),
		limit:  fs.Int("limit", 0, "score only the first N items (0 = all)"),
		shots:  fs.Int("shots", 0, "k-shot: K solved examples before each question (eval mc: drawn from --fewshot as lm-eval draws them; eval gen: the first K items of the file, not scored)"),
		device: addDeviceFlag(fs),
	}
}

func runEvalMC(args []string) error {
	fs := newFlags("eval mc", `golem eval mc --model out/sft --data ../shared/data/eval/openbookqa_test.jsonl --limit 100`)
	f := newEvalFlags(fs, "data set: .jsonl (ARC/OpenBookQA/HellaSwag), .txt or .bz2 (llama.cpp's HellaSwag), .csv or folder (CMMLU) (required)")
	format := fs.String("format", "", "force the layout: arc, openbookqa, hellaswag or cmmlu")
	fewshot := fs.String("fewshot", "", "the split --shots draws from, as lm-eval: the train split (ARC, OpenBookQA, HellaSwag); CMMLU's dev split (default: the dev folder beside test)")
	seed := fs.Uint64("fewshot-seed", eval.DefaultFewshotSeed, "seed of the k-shot draws (lm-eval's random.Random(seed).sample; CMMLU takes the first K)")
	details := fs.String("details", "", "write each question's context, continuations, token log-probabilities and picks to this JSON-lines file")
	tokens := fs.Int("batch-tokens", 4096, "tokens per forward pass")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	be, err := f.device.open()
	if err != nil {
		return err
	}
	if err := required(fs, "model", "data"); err != nil {
		return err
	}
	mf := eval.MCFormat(*format)
	if mf == "" {
		mf = eval.DetectMC(*f.data)
	}
	qs, err := eval.ReadMC(*f.data, mf)
	if err != nil {
		return err
	}
	o := eval.MCOptions{Shots: *f.shots, Seed: *seed, Tokens: *tokens, Details: *details != "", FirstN: mf == eval.FormatCMMLU}
	if o.Shots > 0 {
		pool := *fewshot
		if pool == "" && mf == eval.FormatCMMLU {
			pool = cmmluDev(*f.data)
		}
		if pool == "" {
			return fmt.Errorf("eval mc: --shots %d needs --fewshot FILE: lm-eval draws %s's examples from its train split, which %s is not (give the train split, or the same file to draw from the test split as lm-eval then does)", o.Shots, mf, *f.data)
		}
		if o.Pool, err = eval.ReadMC(pool, mf); err != nil {
			return err
		}
		o.SameSplit = filepath.Clean(pool) == filepath.Clean(*f.data)
	}
	if *f.limit > 0 && *f.limit < len(qs) {
		qs = qs[:*f.limit]
	}
	l, err := load.Model(be, *f.model, load.Options{})
	if err != nil {
		return err
	}
	defer l.Freeze()()
	if l.SoftPrompt != nil {
		return fmt.Errorf("eval mc: %s is a prompt-tuning adapter; multiple choice scores a model or a LoRA adapter", *f.model)
	}
	r, err := eval.MultipleChoice(l.Model, l.Tok, qs, o)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %v (%d-shot, lm-eval's %s)\n", *f.data, r, o.Shots, mf.Task())
	if *details != "" {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		for _, it := range r.Items {
			if err := enc.Encode(it); err != nil {
				return err
			}
		}
		if err := atomicfile.WriteFile(*details, b.Bytes()); err != nil {
			return fmt.Errorf("eval mc: %w", err)
		}
	}
	if *f.json != "" {
		return eval.AppendJSON(*f.json, eval.Record{Eval: "mc", Model: *f.model, Data: *f.data, Task: mf.Task(), Shots: *f.shots, N: r.N, Correct: r.Correct,
			Accuracy: r.Acc, Metrics: map[string]float64{"acc": r.Acc, "acc_norm": r.AccNorm, "acc_bytes": r.AccBytes, "chance": r.Chance}})
	}
	return nil
}

// cmmluDev is the dev split beside a CMMLU test file or folder
// (cmmlu/test/x.csv -> cmmlu/dev/x.csv), or "" when there is none.
func cmmluDev(data string) string {
	clean := filepath.Clean(data)
	dir, base := filepath.Split(clean)
	if filepath.Base(clean) == "test" {
		dir, base = clean, ""
	}
	if filepath.Base(filepath.Clean(dir)) != "test" {
		return ""
	}
	dev := filepath.Join(filepath.Dir(filepath.Clean(dir)), "dev", base)
	if _, err := os.Stat(dev); err != nil {
		return ""
	}
	return dev
}

func runEvalGen(args []string) error {
	fs := newFlags("eval gen", `golem eval gen --model out/sft --data ../shared/data/eval/gsm8k_test.jsonl --shots 4 --cot`)
	f := newEvalFlags(fs, "GSM8K-style JSON lines {question, answer ending in #### FINAL} (required)")
	cot := fs.Bool("cot", false, "chain of thought: shots show their reasoning and the answer starts \"Let's think step by step.\"")
	chat := fs.Bool("chat", false, "ask through the chat template")
	maxTokens := fs.Int("max-tokens", 0, "new tokens per answer (default 256 with --cot, else 32)")
	batch := fs.Int("batch", 16, "questions decoded together")
	show := fs.Int("show", 0, "print the first N answers")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	be, err := f.device.open()
	if err != nil {
		return err
	}
	if err := required(fs, "model", "data"); err != nil {
		return err
	}
	ps, err := eval.ReadGSM8K(*f.data)
	if err != nil {
		return err
	}
	if *f.shots >= len(ps) {
		return fmt.Errorf("eval gen: --shots %d leaves no problem of %d", *f.shots, len(ps))
	}
	shots, ps := ps[:*f.shots], ps[*f.shots:]
	if *f.limit > 0 && *f.limit < len(ps) {
		ps = ps[:*f.limit]
	}
	if *maxTokens == 0 {
		*maxTokens = 32
		if *cot {
			*maxTokens = 256
		}
	}
	l, err := load.Model(be, *f.model, load.Options{})
	if err != nil {
		return err
	}
	defer l.Freeze()()
	m, tok, soft := l.Model, l.Tok, l.SoftPrompt
	r, err := eval.ExactMatch(m, tok, ps, eval.ExactOptions{GenOptions: eval.GenOptions{MaxTokens: *maxTokens, Batch: *batch, Soft: soft},
		Shots: shots, CoT: *cot, Chat: *chat})
	if err != nil {
		return err
	}
	for i := 0; i < *show && i < len(ps); i++ {
		fmt.Printf("--- %s (answer %s)\n%s\n", ps[i].ID, ps[i].Answer, r.Responses[i])
	}
	fmt.Printf("%s: exact match %v (%d-shot%s)\n", *f.data, r, *f.shots, map[bool]string{true: ", chain of thought"}[*cot])
	if *f.json != "" {
		return eval.AppendJSON(*f.json, eval.Record{Eval: "gen", Model: *f.model, Data: *f.data, Shots: *f.shots, CoT: *cot, N: r.N, Correct: r.Correct, Accuracy: r.Acc})
	}
	return nil
}

func runEvalTasks(args []string) error {
	fs := newFlags("eval tasks", `golem eval tasks --model out/sft --n 200 --json results.json`)
	model := fs.String("model", "", "model or adapter folder, FILE.gguf or ollama:NAME[:TAG] (required)")
	n := fs.Int("n", 200, "held-out tasks to answer")
	lang := fs.String("lang", "en", "en, zh or mix")
	kinds := fs.String("kinds", "", "comma-separated task kinds (default: all but the tool tasks): "+strings.Join(append(synth.Kinds(), synth.ToolKinds()...), ", "))
	seed := fs.Int64("seed", defaultSeed, "which held-out tasks")
	maxTokens := fs.Int("max-tokens", 128, "new tokens per answer")
	batch := fs.Int("batch", 16, "tasks decoded together")
	show := fs.Int("show", 0, "print the first N answers")
	jsonOut := fs.String("json", "", "append the result to this JSON file")
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	if err := required(fs, "model"); err != nil {
		return err
	}
	o := synth.TaskOptions{Seed: *seed, N: *n, Split: synth.SplitHeldout, Lang: *lang, System: 0.2}
	if *kinds != "" {
		o.Kinds = strings.Split(*kinds, ",")
	}
	tasks, err := synth.Tasks(o)
	if err != nil {
		return err
	}
	l, err := load.Model(be, *model, load.Options{})
	if err != nil {
		return err
	}
	defer l.Freeze()()
	m, tok, soft := l.Model, l.Tok, l.SoftPrompt
	r, err := eval.Tasks(m, tok, tasks, eval.GenOptions{MaxTokens: *maxTokens, Batch: *batch, Soft: soft})
	if err != nil {
		return err
	}
	for i := 0; i < *show && i < len(tasks); i++ {
		fmt.Printf("--- %s: %s\n%s\n", tasks[i].Kind, tasks[i].User(), r.Responses[i])
	}
	names := make([]string, 0, len(r.ByKind))
	for k := range r.ByKind {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		b := r.ByKind[k]
		fmt.Printf("  %-13s correct %3.0f/%-3d  %v\n", k, b.Correct*float64(b.N), b.N, b)
	}
	correct := int(r.All.Correct*float64(r.All.N) + 0.5)
	fmt.Printf("held-out task success: %.3f (%d/%d)  %v\n", r.All.Correct, correct, r.All.N, r.All)
	if *jsonOut != "" {
		return eval.AppendJSON(*jsonOut, eval.Record{Eval: "tasks", Model: *model, Data: "builtin-heldout", N: r.All.N, Correct: correct,
			Accuracy: r.All.Correct, Metrics: map[string]float64{"follows_format": r.All.FollowsFormat, "helpful": r.All.Helpful, "reward": r.All.Reward}})
	}
	return nil
}
