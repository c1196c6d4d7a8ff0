package train

import (
	"context"
	"fmt"
	"io"
	"slices"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/tensor"
)

// iterTask is a Rollouts task that records what the loop asks of it.
type iterTask struct {
	w      *tensor.Tensor
	epochs int
	mbs    int
	events []string
}

func newIterTask(epochs, minibatches int) *iterTask {
	w := tensor.FromHost(cpu.New(), []float32{1, 2}, 2).SetRequiresGrad(true)
	return &iterTask{w: w, epochs: epochs, mbs: minibatches}
}

func (t *iterTask) Params() []nn.Named                { return []nn.Named{{Name: "w", Tensor: t.w}} }
func (t *iterTask) Eval() (map[string]float64, error) { return nil, nil }
func (t *iterTask) Save(string) error                 { return nil }
func (t *iterTask) Shape() (int, int)                 { return t.epochs, t.mbs }
func (t *iterTask) AfterStep(step int)                { t.events = append(t.events, fmt.Sprintf("after %d", step)) }

func (t *iterTask) Rollout(iter int, restored bool) error {
	t.events = append(t.events, fmt.Sprintf("rollout %d restored=%v", iter, restored))
	return nil
}

func (t *iterTask) Loss(_ *tensor.Scope, mb Minibatch) (*tensor.Tensor, int, map[string]float64, error) {
	t.events = append(t.events, fmt.Sprintf("loss step %d iter %d epoch %d minibatch %d micro %d", mb.Step, mb.Iter, mb.Epoch, mb.Index, mb.Micro))
	return tensor.Sum(tensor.Square(t.w)), 1, nil, nil
}

// wantIterations is what the loop should ask of a task of shape
// epochs x minibatches with accum micro-batches from step from to step to.
func wantIterations(from, to, epochs, minibatches, accum int) []string {
	var ev []string
	per := epochs * minibatches
	for s := from; s < to; s++ {
		iter, k := s/per, s%per
		if k == 0 || s == from {
			ev = append(ev, fmt.Sprintf("rollout %d restored=%v", iter, k != 0))
		}
		for m := range accum {
			ev = append(ev, fmt.Sprintf("loss step %d iter %d epoch %d minibatch %d micro %d", s, iter, k/minibatches, k%minibatches, m))
		}
		ev = append(ev, fmt.Sprintf("after %d", s))
	}
	return ev
}

// The loop runs a Rollouts task's iterations: a rollout, then epochs
// passes of minibatches optimizer steps of Accum micro-batches each. A run
// stopped inside an iteration resumes with the restored rollout; one
// stopped at its end stops before sampling the next rollout (PPO's KL
// controller moves at each rollout, so sampling one then would save a
// state the resumed run does not reach).
func TestRolloutsIterations(t *testing.T) {
	const steps, epochs, minibatches, accum = 7, 2, 2, 2
	run := func(out string, resume bool, stopAt int) (*iterTask, Result) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cfg := Config{Steps: steps, Accum: accum, LR: 1e-2, Out: out, Resume: resume, Quiet: true, Progress: io.Discard}
		if stopAt > 0 {
			cfg.OnStep = func(step int, _ float64) {
				if step == stopAt {
					cancel()
				}
			}
		}
		task := newIterTask(epochs, minibatches)
		res, err := Run(ctx, cfg, task)
		if err != nil {
			t.Fatal(err)
		}
		return task, res
	}
	check := func(what string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: the loop asked\n%q\nwant\n%q", what, got, want)
		}
	}
	task, res := run(t.TempDir(), false, 0)
	check("uninterrupted", task.events, wantIterations(0, steps, epochs, minibatches, accum))
	if res.Step != steps || res.Interrupted {
		t.Errorf("uninterrupted run: %+v", res)
	}
	for _, stopAt := range []int{3, 4} { // inside iteration 0, at its end
		out := t.TempDir()
		task, res := run(out, false, stopAt)
		check(fmt.Sprintf("stopped after step %d", stopAt), task.events, wantIterations(0, stopAt, epochs, minibatches, accum))
		if res.Step != stopAt || !res.Interrupted {
			t.Errorf("run stopped after step %d: %+v", stopAt, res)
		}
		task, _ = run(out, true, 0)
		check(fmt.Sprintf("resumed at step %d", stopAt), task.events, wantIterations(stopAt, steps, epochs, minibatches, accum))
	}
	_, err := Run(context.Background(), Config{Steps: 1, LR: 1e-2, Quiet: true}, newIterTask(0, 2))
	wantErr(t, err, "need epochs > 0 and minibatches > 0 per rollout (have 0, 2)")
}
