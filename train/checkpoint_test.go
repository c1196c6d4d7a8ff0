package train

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/internal/dirlock"
	"github.com/golem-ml/golem/model/gpt"
)

// pretrainTiny runs tinyPreset's 8 steps in out, saving every step, and
// cancels after step stopAt (0: runs to the end).
func pretrainTiny(t *testing.T, cache, out string, resume bool, stopAt int) (Result, error) {
	t.Helper()
	p := tinyPreset()
	p.Loop.Out, p.Loop.Resume, p.Loop.SaveEvery, p.Loop.Quiet = out, resume, 1, true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if stopAt > 0 {
		p.Loop.OnStep = func(step int, _ float64) {
			if step == stopAt {
				cancel()
			}
		}
	}
	corpus := filepath.Join(cache, "corpus.txt")
	if _, err := os.Stat(corpus); err != nil {
		if err := os.WriteFile(corpus, []byte(synth.Corpus(synth.CorpusOptions{Seed: 1, Bytes: 55000})[:50000]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Pretrain(ctx, PretrainOptions{Backend: cpu.New(), Tokenizer: "char", Data: []string{corpus}, Preset: p, CacheDir: cache, Log: io.Discard})
}

func sameModel(t *testing.T, a, b string) {
	t.Helper()
	be := cpu.New()
	ma, err := gpt.Load(be, a)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := gpt.Load(be, b)
	if err != nil {
		t.Fatal(err)
	}
	sameParams(t, b, ma.Params(), mb.Params())
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// A checkpoint lives in OUT/trainer/step-N (the top of OUT stays a model
// folder); a resume removes the temporaries a crash left, cuts
// metrics.jsonl back to the checkpoint's step (a torn line included) and
// ends with the weights of a run never stopped.
func TestCheckpointLayoutAndCleanResume(t *testing.T) {
	cache := t.TempDir()
	a, b := t.TempDir(), t.TempDir()
	if _, err := pretrainTiny(t, cache, a, false, 0); err != nil {
		t.Fatal(err)
	}
	if res, err := pretrainTiny(t, cache, b, false, 3); err != nil || !res.Interrupted || res.Step != 3 {
		t.Fatalf("interrupted run: %+v %v", res, err)
	}
	if got := names(t, filepath.Join(b, trainerDir)); !slices.Equal(got, []string{"step-00000003"}) {
		t.Fatalf("trainer/ holds %v, want the one step folder", got)
	}
	step := filepath.Join(b, trainerDir, "step-00000003")
	for _, n := range []string{"model.safetensors", "config.json", "tokenizer.json", optimFile, stateFile} {
		if _, err := os.Stat(filepath.Join(step, n)); err != nil {
			t.Errorf("step folder: %v", err)
		}
	}
	for _, n := range []string{optimFile, stateFile} {
		if _, err := os.Stat(filepath.Join(b, n)); err == nil {
			t.Errorf("%s at the top of the model folder", n)
		}
	}
	sameModel(t, step, b)

	// What a kill -9 can leave: an atomic write's temporary, a step folder
	// not yet committed, metrics of steps after the checkpoint, a torn line.
	stale := []string{filepath.Join(b, ".model.safetensors.tmp12345"), filepath.Join(b, trainerDir, ".tmp-step-00000004-999")}
	os.WriteFile(stale[0], []byte("half"), 0o644)
	os.MkdirAll(stale[1], 0o755)
	os.WriteFile(filepath.Join(stale[1], "model.safetensors"), []byte("half"), 0o644)
	f, _ := os.OpenFile(filepath.Join(b, metricsFile), os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprint(f, "{\"step\":4,\"loss\":1}\n{\"step\":5,\"loss\":1}\n{\"step\":6,\"lo")
	f.Close()

	if _, err := pretrainTiny(t, cache, b, true, 0); err != nil {
		t.Fatal(err)
	}
	for _, p := range stale {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was not removed", p)
		}
	}
	recs := metricRecords(t, b)
	la := metricRecords(t, a)
	if len(recs) != 8 {
		t.Fatalf("metrics.jsonl: %d records for 8 steps", len(recs))
	}
	for i, r := range recs {
		if int(r["step"]) != i+1 || math.Float64bits(r["loss"]) != math.Float64bits(la[i]["loss"]) {
			t.Errorf("record %d: step %v loss %v, want step %d loss %v", i, r["step"], r["loss"], i+1, la[i]["loss"])
		}
	}
	if got := names(t, filepath.Join(b, trainerDir)); !slices.Equal(got, []string{"step-00000008"}) {
		t.Errorf("trainer/ holds %v after the run", got)
	}
	sameModel(t, a, b)
}

// A folder from before trainer/ (optimizer.safetensors and
// trainer_state.json beside the model) resumes, and continues in the new
// layout.
func TestResumeOldLayout(t *testing.T) {
	cache := t.TempDir()
	a, b := t.TempDir(), t.TempDir()
	if _, err := pretrainTiny(t, cache, a, false, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := pretrainTiny(t, cache, b, false, 5); err != nil {
		t.Fatal(err)
	}
	step := filepath.Join(b, trainerDir, "step-00000005")
	for _, n := range []string{optimFile, stateFile} {
		if err := os.Rename(filepath.Join(step, n), filepath.Join(b, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(b, trainerDir)); err != nil {
		t.Fatal(err)
	}
	res, err := pretrainTiny(t, cache, b, true, 0)
	if err != nil || res.Step != 8 {
		t.Fatalf("resume: %+v %v", res, err)
	}
	sameModel(t, a, b)
	for _, n := range []string{optimFile, stateFile} {
		if _, err := os.Stat(filepath.Join(b, n)); err == nil {
			t.Errorf("the old layout's %s was left at the top", n)
		}
	}
}

// A run on a folder another run holds is refused with the holder's pid;
// --resume of a folder with no checkpoint says so.
func TestOutInUseAndNoCheckpoint(t *testing.T) {
	cache, out := t.TempDir(), t.TempDir()
	l, err := dirlock.Acquire(out)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pretrainTiny(t, cache, out, false, 0)
	want := fmt.Sprintf("%s is in use by pid %d (another golem run); wait for it or choose another --out", out, os.Getpid())
	if err == nil || err.Error() != want {
		t.Errorf("run on a held folder: %v, want %q", err, want)
	}
	l.Release()
	_, err = pretrainTiny(t, cache, out, true, 0)
	if err == nil || !strings.Contains(err.Error(), "no checkpoint in "+out) || !strings.Contains(err.Error(), "without --resume") {
		t.Errorf("resume with no checkpoint: %v", err)
	}
	missing := filepath.Join(out, "missing")
	_, err = pretrainTiny(t, cache, missing, true, 0)
	if _, serr := os.Stat(missing); err == nil || !strings.Contains(err.Error(), missing+" does not exist") || serr == nil {
		t.Errorf("resume in a missing folder: %v (and the folder was made: %v)", err, serr == nil)
	}
}
