package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/internal/dirlock"
	"github.com/golem-ml/golem/optim"
	"github.com/golem-ml/golem/safetensors"
)

// A checkpoint is whole or absent. The loop writes step N's model files,
// optimizer state and trainer state into OUT/trainer/.tmp-step-N-*, and
// commits them with one rename to OUT/trainer/step-0000000N (then syncs
// the folder): a process killed at any instant leaves either the new step
// folder or none, and the previous one until the new one is committed.
// Then the model files at the top of OUT (the Hugging Face folder users
// load and serve) are replaced from the step folder, each atomically (a
// hard link when possible), and the older step folders are removed.
//
// A run holds an flock on OUT/.lock for its whole life. On --resume the
// loop reads only the highest committed step folder, removes temporaries
// left by a crash, rewrites the top-level files from the step folder and
// cuts metrics.jsonl back to that step. Folders written before this layout
// (optimizer.safetensors and trainer_state.json at the top) still resume.
const (
	trainerDir = "trainer"
	stepPrefix = "step-"
	stateFile  = "trainer_state.json"
	optimFile  = "optimizer.safetensors"
)

// held is an output folder this process has locked and prepared.
type held struct {
	lock *dirlock.Lock
	from string // the folder the loop's state resumes from ("" for a new run)
	step int    // its step
}

// begin is what a stage that loads its model from a folder does first:
// it locks Out (open; the returned function releases it) and names the
// folder to load from: init, or Out on --resume.
func (c *Config) begin(init string) (release func(), from string, err error) {
	if release, err = c.open(); err != nil {
		return nil, "", err
	}
	if c.Resume {
		return release, c.Out, nil
	}
	return release, init, nil
}

// open locks cfg.Out and prepares it: temporaries a crash left are
// removed; on resume the latest committed checkpoint is found, the model
// files at the top of Out are rewritten from it and metrics.jsonl is cut
// back to its step; a new run clears the previous run's checkpoints.
// Stages call it before they read Out, so that they load the resumed
// step's files; Run calls it when the stage did not. The returned function
// releases the lock.
func (c *Config) open() (release func(), err error) {
	if c.Out == "" || c.held != nil {
		return func() {}, nil
	}
	if _, err := os.Stat(c.Out); c.Resume && os.IsNotExist(err) {
		return nil, fmt.Errorf("train: --resume: %s does not exist: no run to continue there", c.Out)
	}
	if err := os.MkdirAll(c.Out, 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	lock, err := dirlock.Acquire(c.Out)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			lock.Release()
		}
	}()
	if err := removeTemporaries(c.Out); err != nil {
		return nil, err
	}
	h := &held{lock: lock}
	if c.Resume {
		if h.from, h.step, err = restoreLatest(c.Out); err != nil {
			return nil, err
		}
		if err := cutMetrics(c.Out, h.step); err != nil {
			return nil, err
		}
	} else {
		if err := removeDir(filepath.Join(c.Out, trainerDir)); err != nil {
			return nil, err
		}
		if err := removeOldLayout(c.Out); err != nil {
			return nil, err
		}
	}
	c.held = h
	return func() { lock.Release() }, nil
}

// removeTemporaries deletes the temporary files and folders (".NAME.tmp*",
// ".tmp-step-*") a killed run left anywhere in out.
func removeTemporaries(out string) error {
	return filepath.WalkDir(out, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != out && atomicfile.IsTemp(d.Name()) {
			if err := os.RemoveAll(path); err != nil {
				return fmt.Errorf("train: removing a crash's temporary %s: %w", path, err)
			}
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
}

func stepName(step int) string { return fmt.Sprintf("%s%08d", stepPrefix, step) }

// committedSteps lists the committed step folders under out/trainer,
// highest step first.
func committedSteps(out string) ([]int, error) {
	ents, err := os.ReadDir(filepath.Join(out, trainerDir))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	var steps []int
	for _, e := range ents {
		n, ok := strings.CutPrefix(e.Name(), stepPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		if s, err := strconv.Atoi(n); err == nil && s >= 0 {
			steps = append(steps, s)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(steps)))
	return steps, nil
}

// restoreLatest finds the checkpoint a resumed run continues from and
// makes the top of out match it.
func restoreLatest(out string) (from string, step int, err error) {
	steps, err := committedSteps(out)
	if err != nil {
		return "", 0, err
	}
	if len(steps) > 0 {
		from = filepath.Join(out, trainerDir, stepName(steps[0]))
		st, err := readState(from)
		if err != nil {
			return "", 0, err
		}
		if st.Step != steps[0] {
			return "", 0, fmt.Errorf("train: %s says step %d", filepath.Join(from, stateFile), st.Step)
		}
		if err := publish(out, st.Step); err != nil {
			return "", 0, err
		}
		return from, st.Step, nil
	}
	if _, err := os.Stat(filepath.Join(out, stateFile)); err == nil { // the layout before trainer/
		st, err := readState(out)
		if err != nil {
			return "", 0, err
		}
		return out, st.Step, nil
	}
	return "", 0, fmt.Errorf("train: --resume: no checkpoint in %s (no %s folder and no %s: the run stopped before its first save?); run again without --resume", out, filepath.Join(trainerDir, stepPrefix+"N"), stateFile)
}

func readState(dir string) (trainerState, error) {
	var st trainerState
	path := filepath.Join(dir, stateFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return st, fmt.Errorf("train: --resume: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("train: %s: %w", path, err)
	}
	return st, nil
}

// checkpoint commits step res.Step: the task's files, the optimizer and
// the loop state go into a temporary folder renamed to
// trainer/step-N, then the top of Out is updated from it.
func checkpoint(cfg Config, task Task, opt *optim.AdamW, res Result) error {
	trainer := filepath.Join(cfg.Out, trainerDir)
	if err := os.MkdirAll(trainer, 0o755); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	final := filepath.Join(trainer, stepName(res.Step))
	// A step committed already (an interrupt right after a save) holds
	// this very state.
	if _, err := os.Stat(filepath.Join(final, stateFile)); err != nil {
		tmp, err := os.MkdirTemp(trainer, ".tmp-"+stepName(res.Step)+"-")
		if err != nil {
			return fmt.Errorf("train: %w", err)
		}
		if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp's 0700 would hide the model from other users
			os.RemoveAll(tmp)
			return fmt.Errorf("train: %w", err)
		}
		if err := writeStep(tmp, cfg, task, opt, res); err != nil {
			os.RemoveAll(tmp)
			return err
		}
		if err := atomicfile.SyncDir(tmp); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("train: %w", err)
		}
		if err := os.Rename(tmp, final); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("train: committing the checkpoint: %w", err)
		}
		if err := atomicfile.SyncDir(trainer); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	return publish(cfg.Out, res.Step)
}

// writeStep writes one step's files into dir, the loop state last.
func writeStep(dir string, cfg Config, task Task, opt *optim.AdamW, res Result) error {
	if err := task.Save(dir); err != nil {
		return fmt.Errorf("train: saving model: %w", err)
	}
	if cfg.Card != nil {
		if err := writeCard(dir, cfg.Card, cfg, res); err != nil {
			return fmt.Errorf("train: model card: %w", err)
		}
	}
	st := opt.State()
	ts := make([]safetensors.Tensor, 0, len(st))
	for _, k := range sortedKeys(st) {
		ts = append(ts, safetensors.Tensor{Name: k, Shape: []int{len(st[k])}, F32: st[k]})
	}
	meta := map[string]string{"step": fmt.Sprint(opt.Step)}
	if err := safetensors.Write(filepath.Join(dir, optimFile), ts, meta); err != nil {
		return fmt.Errorf("train: saving optimizer: %w", err)
	}
	c := cfg
	c.Progress = nil
	b, err := json.MarshalIndent(trainerState{Step: res.Step, Config: c, Eval: res.Eval, Loss: res.Loss}, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, stateFile), b)
}

// publish makes the top of out hold committed step's model files (each
// replaced atomically), then removes every other step folder and the
// loop state of the layout before trainer/.
func publish(out string, step int) error {
	from := filepath.Join(out, trainerDir, stepName(step))
	if err := mirror(from, out, true); err != nil {
		return fmt.Errorf("train: updating %s from %s: %w", out, from, err)
	}
	if err := removeOldLayout(out); err != nil {
		return err
	}
	steps, err := committedSteps(out)
	if err != nil {
		return err
	}
	for _, s := range steps {
		if s != step {
			if err := removeDir(filepath.Join(out, trainerDir, stepName(s))); err != nil {
				return err
			}
		}
	}
	return nil
}

// mirror links or copies every file under src to the same place under dst;
// at the top, the loop's own state stays in src.
func mirror(src, dst string, top bool) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if top && (name == stateFile || name == optimFile) {
			continue
		}
		s, d := filepath.Join(src, name), filepath.Join(dst, name)
		if e.IsDir() {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
			if err := mirror(s, d, false); err != nil {
				return err
			}
			continue
		}
		if err := atomicfile.LinkOrCopy(s, d); err != nil {
			return err
		}
	}
	return nil
}

// removeDir removes a folder so that no crash leaves it half removed
// under its name (a step folder missing files would be resumed from): it
// is renamed to a temporary name first, which removeTemporaries finds.
func removeDir(dir string) error {
	tmp := filepath.Join(filepath.Dir(dir), ".tmp-removed-"+filepath.Base(dir))
	if err := os.Rename(dir, tmp); err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return fmt.Errorf("train: %w", err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// removeOldLayout removes the loop state a run before trainer/ kept at
// the top of out.
func removeOldLayout(out string) error {
	for _, n := range []string{stateFile, optimFile} {
		if err := os.Remove(filepath.Join(out, n)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("train: %w", err)
		}
	}
	return nil
}

// loadState reads the loop state and the optimizer from dir (a committed
// step folder, or out itself in the layout before trainer/).
func loadState(dir string, opt *optim.AdamW) (trainerState, error) {
	st, err := readState(dir)
	if err != nil {
		return st, err
	}
	f, err := safetensors.Open(filepath.Join(dir, optimFile))
	if err != nil {
		return st, err
	}
	defer f.Close()
	if f.Metadata()["step"] != fmt.Sprint(st.Step) {
		return st, fmt.Errorf("train: %s is from step %s but %s says %d", filepath.Join(dir, optimFile), f.Metadata()["step"], stateFile, st.Step)
	}
	m := map[string][]float32{}
	for _, n := range f.Names() {
		v, _, err := f.Float32(n)
		if err != nil {
			return st, err
		}
		m[n] = v
	}
	if err := opt.LoadState(m); err != nil {
		return st, fmt.Errorf("train: %s: %w", dir, err)
	}
	opt.Step = st.Step
	return st, nil
}

// cutMetrics keeps the records of metrics.jsonl up to step (those of
// steps after the checkpoint are trained again), rewriting it atomically;
// a line torn by a crash is dropped.
func cutMetrics(out string, step int) error {
	path := filepath.Join(out, metricsFile)
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	var keep bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var rec struct {
			Step *int `json:"step"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Step == nil || *rec.Step > step {
			continue
		}
		keep.Write(sc.Bytes())
		keep.WriteByte('\n')
	}
	if keep.Len() == len(b) {
		return nil
	}
	return atomicfile.WriteFile(path, keep.Bytes())
}
