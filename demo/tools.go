package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/model/load"
	"github.com/golem-ml/golem/tokenizer"
	"github.com/golem-ml/golem/train"
)

// ToolUse is a model's score on held-out calculator round trips.
type ToolUse struct {
	Tasks   int     `json:"tasks"`       // held-out questions
	Calls   float64 `json:"right_calls"` // share whose first answer is the right call
	Success float64 `json:"success"`     // share whose call is right and whose final answer is the tool's result
}

// toolTasks returns SFT's demonstrations, sft with the tool tasks mixed
// in (each step of calculator and lookup round trips, train split), and
// the held-out calculator questions of the tool-use score (call steps).
func toolTasks(seed int64, sz sizes, sft []synth.Task) (mixed, heldout []synth.Task, err error) {
	mixed = slices.Clone(sft)
	for _, k := range []struct {
		kind string
		n    int
	}{{synth.KindCalculator, sz.calcTasks}, {synth.KindLookup, sz.lookupTasks}} {
		ts, err := synth.Tasks(synth.TaskOptions{Seed: seed + 2, N: k.n, Kinds: []string{k.kind}})
		if err != nil {
			return nil, nil, err
		}
		mixed = append(mixed, ts...)
	}
	// Interleaved, so that every part of the data is as likely early as late.
	r := uint64(seed)*0x9e3779b97f4a7c15 + 1
	for i := len(mixed) - 1; i > 0; i-- {
		r ^= r << 13
		r ^= r >> 7
		r ^= r << 17
		j := int(r % uint64(i+1))
		mixed[i], mixed[j] = mixed[j], mixed[i]
	}
	all, err := synth.Tasks(synth.TaskOptions{Seed: seed + 3, N: 4 * sz.toolEval, Kinds: []string{synth.KindCalculator}, Split: synth.SplitHeldout})
	if err != nil {
		return nil, nil, err
	}
	for _, tk := range all {
		if tk.Want.Match == synth.MatchToolCall && len(heldout) < sz.toolEval {
			heldout = append(heldout, tk)
		}
	}
	return mixed, heldout, nil
}

// toolUse has m answer each held-out question (greedy, both tools
// offered), runs the calls that are right (synth.Task.FollowUp) and has
// it answer again with the result: the round trip passes when its final
// answer is the tool's result. A prompt longer than the context fails.
func toolUse(m *gpt.Model, tok *tokenizer.Tokenizer, tasks []synth.Task, maxTokens int) (ToolUse, error) {
	fits := func(ts []synth.Task) []synth.Task {
		var out []synth.Task
		for _, tk := range ts {
			if ids, _, err := tok.RenderChat(tk.Prompt, true); err == nil && len(ids)+1 < m.Config.Context {
				out = append(out, tk)
			}
		}
		return out
	}
	res := ToolUse{Tasks: len(tasks)}
	if len(tasks) == 0 {
		return res, nil
	}
	asked := fits(tasks)
	calls, err := sampleAnswers(m, tok, asked, 1, maxTokens, 0, 0)
	if err != nil {
		return res, fmt.Errorf("demo: tool use: %w", err)
	}
	var next []synth.Task
	for i, tk := range asked {
		if f, ok := tk.FollowUp(nil, calls[i][0]); ok {
			next = append(next, f)
		}
	}
	res.Calls = float64(len(next)) / float64(len(tasks))
	next = fits(next)
	answers, err := sampleAnswers(m, tok, next, 1, maxTokens, 0, 0)
	if err != nil {
		return res, fmt.Errorf("demo: tool use: %w", err)
	}
	right := 0
	for i, tk := range next {
		if tk.Check(answers[i][0]).Correct {
			right++
		}
	}
	res.Success = float64(right) / float64(len(tasks))
	return res, nil
}

// ToolModelOptions configure ToolModel.
type ToolModelOptions struct {
	NewBackend func() backend.Backend
	Out        string // OUT/base: pretrained on round trips; OUT/sft: the model
	Quick      bool   // a few steps of each stage (a smoke test: the model learns nothing)
	Seed       uint64
	Log        io.Writer
}

// ToolModel trains a tiny model that calls the calculator, in about 50 s
// of CPU: a byte-level BPE and a 2-layer GPT (64 wide) pretrained on
// transcripts of calculator round trips (train split; the calculator
// offered in the system message as golem's ChatML writes it), then SFT on
// their steps (the call; the answer from the tool's result). It is the
// model of serve's and chat's tool examples and of their end-to-end tests.
// It returns the model's tool use on 50 held-out questions (one run:
// right calls 0.92, round trips right 0.82, in 50 s of user CPU).
func ToolModel(ctx context.Context, o ToolModelOptions) (ToolUse, error) {
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	// Pretraining teaches the format; SFT, at a high learning rate, the
	// copies (the question's numbers into the call, the result into the
	// answer). Right calls and right round trips on the 50 questions, with
	// a context of 128: 1,200 pretraining + 500 SFT steps at 2e-3, 0.80 and
	// 0.56; 600 + 1,000 at 3e-3, 0.96 and 0.76; 400 + 1,400, 0.96 and 0.82.
	rounds, demos, preSteps, sftSteps, questions := 3000, 2000, 400, 1400, 50
	if o.Quick {
		rounds, demos, preSteps, sftSteps, questions = 200, 100, 4, 4, 4
	}
	seed := int64(o.Seed)
	dir := func(s string) string { return filepath.Join(o.Out, s) }
	if err := os.MkdirAll(dir("data"), 0o755); err != nil {
		return ToolUse{}, err
	}
	calc := []string{synth.KindCalculator}
	trips, err := synth.Tasks(synth.TaskOptions{Seed: seed, N: rounds, Kinds: calc, Tools: calc})
	if err != nil {
		return ToolUse{}, err
	}
	var corpus bytes.Buffer
	for _, tk := range trips {
		s, err := tokenizer.FormatChat(tk.Messages(), false)
		if err != nil {
			return ToolUse{}, err
		}
		corpus.WriteString(s + "\n")
	}
	if err := atomicfile.WriteFile(dir("data/corpus.txt"), corpus.Bytes()); err != nil {
		return ToolUse{}, err
	}
	p := train.Presets()["baby"]
	p.Model.Layers, p.Model.Heads, p.Model.KVHeads, p.Model.Hidden, p.Model.Intermediate = 2, 4, 4, 64, 256
	// A round trip is at most 117 tokens, so windows of 128; the context
	// of 192 leaves a client room to ask for 64 tokens after a prompt of
	// 110 (golem chat asks for up to half the context).
	p.Model.Context, p.Block, p.Batch, p.EvalIters = 192, 128, 8, 2
	p.Loop = train.Config{Steps: preSteps, LR: 3e-3, MinLR: 3e-4, Warmup: min(20, preSteps/2), Beta2: 0.99, WeightDecay: 0.1, Clip: 1,
		Seed: o.Seed, Out: dir("base"), Quiet: true, Progress: o.Log}
	if _, err := train.Pretrain(ctx, train.PretrainOptions{Backend: o.NewBackend(), Data: []string{dir("data/corpus.txt")}, VocabSize: 1024, Preset: p,
		SpecialTokens: true, CacheDir: dir("cache"), Log: o.Log}); err != nil {
		return ToolUse{}, fmt.Errorf("demo: tool model: pretrain: %w", err)
	}
	steps, err := synth.Tasks(synth.TaskOptions{Seed: seed + 1, N: demos, Kinds: calc, Tools: calc})
	if err != nil {
		return ToolUse{}, err
	}
	if err := writeFileWith(dir("data/sft.jsonl"), func(w io.Writer) error { return synth.WriteSFT(w, steps) }); err != nil {
		return ToolUse{}, err
	}
	if _, err := train.SFT(ctx, train.SFTOptions{Backend: o.NewBackend(), Model: dir("base"), Data: []string{dir("data/sft.jsonl")}, ValFrac: 0.02, Batch: 16,
		Loop: train.Config{Steps: sftSteps, LR: 3e-3, Warmup: min(10, sftSteps/2), Clip: 1, Seed: o.Seed, Out: dir("sft"), Quiet: true, Progress: o.Log}, Log: o.Log}); err != nil {
		return ToolUse{}, fmt.Errorf("demo: tool model: sft: %w", err)
	}
	heldout, err := synth.Tasks(synth.TaskOptions{Seed: seed + 2, N: 4 * questions, Kinds: calc, Tools: calc, Split: synth.SplitHeldout})
	if err != nil {
		return ToolUse{}, err
	}
	var asked []synth.Task
	for _, tk := range heldout {
		if tk.Want.Match == synth.MatchToolCall && len(asked) < questions {
			asked = append(asked, tk)
		}
	}
	l, err := load.Model(o.NewBackend(), dir("sft"), load.Options{})
	if err != nil {
		return ToolUse{}, err
	}
	return toolUse(l.Model, l.Tok, asked, 48)
}
