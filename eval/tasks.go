package eval

import (
	"errors"
	"fmt"
	"sort"

	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tokenizer"
)

// GenOptions configure generation in evaluations (greedy decoding).
type GenOptions struct {
	MaxTokens int            // new tokens per answer (default 128)
	Batch     int            // prompts decoded together (default 16)
	Soft      *nn.SoftPrompt // prompt tuning's virtual tokens, if any
}

func (o *GenOptions) defaults() {
	if o.MaxTokens <= 0 {
		o.MaxTokens = 128
	}
	if o.Batch <= 0 {
		o.Batch = 16
	}
}

// TasksResult is the outcome of Tasks.
type TasksResult struct {
	All       synth.Result            `json:"all"`
	ByKind    map[string]synth.Result `json:"by_kind"`
	Responses []string                `json:"-"`
}

// Tasks answers each built-in task with greedy decoding under the chat
// template and checks the answers with the tasks' own programs.
func Tasks(m *gpt.Model, tok *tokenizer.Tokenizer, tasks []synth.Task, o GenOptions) (TasksResult, error) {
	o.defaults()
	prompts := make([][]int, len(tasks))
	for i, t := range tasks {
		ids, _, err := tok.RenderChat(t.Prompt, true)
		if err != nil {
			return TasksResult{}, fmt.Errorf("eval: task %d: %w", i, err)
		}
		prompts[i] = ids
	}
	outs, err := GreedyBatched(m, o.Soft, prompts, o.MaxTokens, o.Batch, tok.EndIDs())
	if err != nil {
		return TasksResult{}, err
	}
	res := TasksResult{Responses: make([]string, len(tasks))}
	for i, ids := range outs {
		res.Responses[i] = tok.Decode(ids)
	}
	res.All, res.ByKind, err = synth.Evaluate(tasks, res.Responses)
	return res, err
}

// GreedyBatched decodes up to maxNew tokens greedily after each prompt (and
// the soft prompt's virtual tokens before it, if sp is set), in batches of
// up to batch prompts of similar length, and returns the new tokens of each
// in the prompts' order (a stop token ends a sequence and is left out). A
// batch decodes no further than the model's context.
func GreedyBatched(m *gpt.Model, sp *nn.SoftPrompt, prompts [][]int, maxNew, batch int, stop []int) ([][]int, error) {
	order := make([]int, len(prompts))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(prompts[order[a]]) < len(prompts[order[b]]) })
	out := make([][]int, len(prompts))
	for s := 0; s < len(order); s += batch {
		idx := order[s:min(s+batch, len(order))]
		group := make([][]int, len(idx))
		for i, j := range idx {
			group[i] = prompts[j]
		}
		res, err := greedy(m, sp, group, maxNew, stop)
		if err != nil {
			return nil, err
		}
		for i, j := range idx {
			out[j] = res[i]
		}
	}
	return out, nil
}

// greedy decodes one batch of prompts through generate's batched path, up
// to maxNew tokens and no further than the context.
func greedy(m *gpt.Model, sp *nn.SoftPrompt, prompts [][]int, maxNew int, stop []int) ([][]int, error) {
	P, L := 0, 0
	if sp != nil {
		P = sp.Weight.Dim(0)
	}
	for _, p := range prompts {
		L = max(L, len(p))
	}
	if maxNew = min(maxNew, m.Config.Context-P-L); maxNew <= 0 {
		return nil, errors.New("eval: prompt too long for the model's context")
	}
	return generate.Tokens(m, prompts, generate.Options{MaxTokens: maxNew, StopIDs: stop, SoftPrompt: sp}, nil)
}
