package main

import (
	"flag"
	"fmt"
	"sort"
	"strings"

	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/eval"
)

func init() {
	register("eval mc", "multiple-choice accuracy by log-likelihood (ARC/OpenBookQA JSONL, HellaSwag text, CMMLU CSV)", runEvalMC)
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
		shots:  fs.Int("shots", 0, "k-shot: the first K items of the file are solved examples before each question (and are not scored)"),
		device: addDeviceFlag(fs),
	}
}

func runEvalMC(args []string) error {
	fs := newFlags("eval mc", `golem eval mc --model out/sft --data ../shared/data/eval/openbookqa_test.jsonl --limit 100`)
	f := newEvalFlags(fs, "data set: .jsonl (ARC/OpenBookQA), .txt or .bz2 (HellaSwag), .csv or folder (CMMLU) (required)")
	format := fs.String("format", "", "force the layout: arc, hellaswag or cmmlu")
	tokens := fs.Int("batch-tokens", 4096, "tokens per forward pass")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	be, err := f.device.open()
	if err != nil {
		return err
	}
	if *f.model == "" || *f.data == "" {
		return fmt.Errorf("eval mc: --model and --data are required")
	}
	qs, err := eval.ReadMC(*f.data, eval.MCFormat(*format))
	if err != nil {
		return err
	}
	if *f.shots >= len(qs) {
		return fmt.Errorf("eval mc: --shots %d leaves no question of %d", *f.shots, len(qs))
	}
	shots, qs := qs[:*f.shots], qs[*f.shots:]
	if *f.limit > 0 && *f.limit < len(qs) {
		qs = qs[:*f.limit]
	}
	m, tok, _, err := eval.LoadModel(be, *f.model)
	if err != nil {
		return err
	}
	r, err := eval.MultipleChoice(m, tok, qs, eval.MCOptions{Shots: shots, Tokens: *tokens})
	if err != nil {
		return err
	}
	fmt.Printf("%s: %v\n", *f.data, r)
	if *f.json != "" {
		return eval.AppendJSON(*f.json, eval.Record{Eval: "mc", Model: *f.model, Data: *f.data, Shots: *f.shots, N: r.N, Correct: r.Correct,
			Accuracy: r.Acc, Metrics: map[string]float64{"accuracy_norm": r.AccNorm, "chance": r.Chance}})
	}
	return nil
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
	if *f.model == "" || *f.data == "" {
		return fmt.Errorf("eval gen: --model and --data are required")
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
	m, tok, soft, err := eval.LoadModel(be, *f.model)
	if err != nil {
		return err
	}
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
	kinds := fs.String("kinds", "", "comma-separated task kinds (default: all): "+strings.Join(synth.Kinds(), ", "))
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
	if *model == "" {
		return fmt.Errorf("eval tasks: --model is required")
	}
	o := synth.TaskOptions{Seed: *seed, N: *n, Split: synth.SplitHeldout, Lang: *lang, System: 0.2}
	if *kinds != "" {
		o.Kinds = strings.Split(*kinds, ",")
	}
	tasks, err := synth.Tasks(o)
	if err != nil {
		return err
	}
	m, tok, soft, err := eval.LoadModel(be, *model)
	if err != nil {
		return err
	}
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
