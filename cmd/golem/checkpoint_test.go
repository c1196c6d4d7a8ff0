package main

// The kill suite: real golem processes (this test binary re-run as the
// command), killed with SIGKILL at random instants while they train with
// --save-every 1, resumed, and compared with a run never stopped.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golem-ml/golem/internal/memtmp"
	"github.com/golem-ml/golem/safetensors"
	"github.com/golem-ml/golem/store"
)

// TestMain runs the command itself when the test binary is started with
// GOLEM_TEST_MAIN=1, so that the tests run real golem processes.
func TestMain(m *testing.M) {
	if os.Getenv("GOLEM_TEST_MAIN") == "1" {
		os.Args = append([]string{"golem"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	flag.Parse()
	if testing.Short() {
		// TestUsersCommands' accounts hashed as store's short tests hash.
		store.CheapPasswordsForTests()
	}
	done := memtmp.Use("cmd") // the golem processes' temporary folders too
	code := m.Run()
	if fix != nil {
		os.RemoveAll(fix.dir)
	}
	done()
	os.Exit(code)
}

// golemCmd is a golem process with its own token cache.
func golemCmd(cache string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "GOLEM_TEST_MAIN=1", "GOLEM_CACHE="+cache)
	return cmd
}

// golemRun runs golem to the end and fails the test if it fails.
func golemRun(t *testing.T, cache string, args ...string) time.Duration {
	t.Helper()
	cmd := golemCmd(cache, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("golem %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return time.Since(start)
}

// stage is one training command of the kill suite.
type stage struct {
	name  string
	args  func(f *fixture, out string) []string
	steps int
}

// fixture holds the inputs every stage needs, made once: a corpus, the
// base model (pretrain's uninterrupted run), the SFT model, the reward
// model, and preference pairs.
type fixture struct {
	dir, cache, corpus, pairs string
	base, sft, rm             string
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
)

const tiny = "--threads=1"

var stages = []stage{
	{"pretrain", func(f *fixture, out string) []string {
		return []string{"pretrain", "--data", f.corpus, "--vocab-size", "300", "--config", "baby", "--layers", "1", "--heads", "2", "--hidden", "32",
			"--block", "96", "--batch", "4", "--steps", "6", "--eval-iters", "1", "--eval-every", "0", "--save-every", "1", tiny, "--out", out}
	}, 6},
	{"sft", func(f *fixture, out string) []string {
		return []string{"sft", "--model", f.base, "--data", "builtin", "--builtin-n", "24", "--batch", "4", "--steps", "6", "--save-every", "1", tiny, "--out", out}
	}, 6},
	{"sft-lora", func(f *fixture, out string) []string { // a PEFT adapter folder, LoRA dropout on
		return []string{"sft", "--model", f.base, "--data", "builtin", "--builtin-n", "24", "--batch", "4", "--steps", "6", "--lora-r", "4",
			"--save-every", "1", tiny, "--out", out}
	}, 6},
	{"reward", func(f *fixture, out string) []string {
		return []string{"reward", "--model", f.sft, "--data", f.pairs, "--batch", "4", "--steps", "5", "--save-every", "1", tiny, "--out", out}
	}, 5},
	{"dpo", func(f *fixture, out string) []string {
		return []string{"dpo", "--model", f.sft, "--data", f.pairs, "--batch", "4", "--steps", "5", "--save-every", "1", tiny, "--out", out}
	}, 5},
	{"reward-lora", func(f *fixture, out string) []string { // a PEFT SEQ_CLS adapter: LoRA + the score head
		return []string{"reward", "--model", f.sft, "--data", f.pairs, "--batch", "4", "--steps", "5", "--lora-r", "4", "--save-every", "1", tiny, "--out", out}
	}, 5},
	{"dpo-lora", func(f *fixture, out string) []string { // a PEFT adapter over the SFT model, reference = adapters off
		return []string{"dpo", "--model", f.sft, "--data", f.pairs, "--batch", "4", "--steps", "5", "--lora-r", "4", "--lora-targets", "all-linear",
			"--save-every", "1", tiny, "--out", out}
	}, 5},
	{"ppo", func(f *fixture, out string) []string {
		return []string{"ppo", "--model", f.sft, "--reward", f.rm, "--builtin-n", "8", "--batch", "4", "--minibatches", "2", "--epochs", "1",
			"--max-tokens", "8", "--target-kl", "1", "--kl-horizon", "20", "--steps", "4", "--save-every", "1", tiny, "--out", out}
	}, 4},
	{"ppo-lora", func(f *fixture, out string) []string { // PEFT adapters: the policy's in OUT, the value model's in OUT/value
		return []string{"ppo", "--model", f.sft, "--reward", f.rm, "--builtin-n", "8", "--batch", "4", "--minibatches", "2", "--epochs", "1",
			"--max-tokens", "8", "--target-kl", "1", "--kl-horizon", "20", "--lora-r", "4", "--steps", "4", "--save-every", "1", tiny, "--out", out}
	}, 4},
	{"grpo", func(f *fixture, out string) []string {
		return []string{"grpo", "--model", f.sft, "--builtin-n", "8", "--group", "2", "--batch", "2", "--max-tokens", "8",
			"--steps", "4", "--save-every", "1", tiny, "--out", out}
	}, 4},
	{"grpo-lora", func(f *fixture, out string) []string {
		return []string{"grpo", "--model", f.sft, "--builtin-n", "8", "--group", "2", "--batch", "2", "--max-tokens", "8", "--lora-r", "4",
			"--steps", "4", "--save-every", "1", tiny, "--out", out}
	}, 4},
}

func stageNamed(name string) stage {
	for _, s := range stages {
		if s.name == name {
			return s
		}
	}
	panic(name)
}

// fixtures makes the inputs once per test binary, in a folder TestMain
// removes.
func fixtures(t *testing.T) *fixture {
	t.Helper()
	fixOnce.Do(func() {
		dir, err := os.MkdirTemp("", "golem-kill-")
		if err != nil {
			fixErr = err
			return
		}
		f := &fixture{dir: dir, cache: filepath.Join(dir, "cache"), corpus: filepath.Join(dir, "corpus.txt"), pairs: filepath.Join(dir, "pairs.jsonl")}
		r := rand.New(rand.NewPCG(1, 2))
		words := strings.Fields("the cat sat on a mat and dog ran to big red house with small blue car what is one two three")
		var b strings.Builder
		for i := 0; i < 800; i++ {
			for j := 0; j < 12; j++ {
				b.WriteString(words[r.IntN(len(words))] + " ")
			}
			b.WriteString("\n")
		}
		os.WriteFile(f.corpus, []byte(b.String()), 0o644)
		var p strings.Builder
		for i := 0; i < 12; i++ {
			fmt.Fprintf(&p, "{\"prompt\": \"What is %d+%d?\", \"chosen\": \"%d\", \"rejected\": \"%d%d\"}\n", i, i+1, 2*i+1, i, i+1)
		}
		os.WriteFile(f.pairs, []byte(p.String()), 0o644)
		fix = f
	})
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

// reference runs a stage once, uninterrupted, into dir/NAME-ref (once per
// test binary: later stages start from earlier stages' reference runs).
var refs sync.Map // name -> *refRun

type refRun struct {
	once sync.Once
	out  string
	dur  time.Duration
	ok   bool
}

func reference(t *testing.T, f *fixture, s stage) *refRun {
	t.Helper()
	v, _ := refs.LoadOrStore(s.name, &refRun{})
	r := v.(*refRun)
	r.once.Do(func() {
		switch s.name {
		case "sft", "sft-lora":
			f.base = reference(t, f, stageNamed("pretrain")).out
		case "reward", "dpo", "grpo", "reward-lora", "dpo-lora", "grpo-lora":
			f.sft = reference(t, f, stageNamed("sft")).out
		case "ppo", "ppo-lora":
			f.sft = reference(t, f, stageNamed("sft")).out
			f.rm = reference(t, f, stageNamed("reward")).out
		}
		r.out = filepath.Join(f.dir, s.name+"-ref")
		r.dur = golemRun(t, f.cache, s.args(f, r.out)...)
		r.ok = true
	})
	if !r.ok {
		t.Fatalf("the uninterrupted %s run failed", s.name)
	}
	return r
}

func killSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("GOLEM_KILL_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("GOLEM_KILL_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (rerun with GOLEM_KILL_SEED=%d)", seed, seed)
	return seed
}

// runKilled starts golem and kills it with SIGKILL after delay; it reports
// whether the kill landed (the process may have finished first) and how
// long the process ran.
func runKilled(t *testing.T, cache string, delay time.Duration, args ...string) (bool, time.Duration) {
	t.Helper()
	cmd := golemCmd(cache, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(delay, func() { cmd.Process.Signal(syscall.SIGKILL) })
	err := cmd.Wait()
	ran := time.Since(start)
	timer.Stop()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		return true, ran
	}
	if err != nil {
		t.Fatalf("golem %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return false, ran
}

// hasCheckpoint reports whether out holds a checkpoint: a committed step
// folder, or the loop state of the layout before trainer/.
func hasCheckpoint(out string) bool {
	m, _ := filepath.Glob(filepath.Join(out, "trainer", "step-*"))
	_, err := os.Stat(filepath.Join(out, "trainer_state.json"))
	return len(m) > 0 || err == nil
}

// killTrials kills a stage's runs n times at random instants, resumes each
// to the end, and compares the result with the uninterrupted run.
func killTrials(t *testing.T, name string, trials int) {
	if testing.Short() {
		t.Skip("the kill suite runs real training processes")
	}
	s := stageNamed(name)
	f := fixtures(t)
	ref := reference(t, f, s)
	seed := killSeed(t)
	kills, resumable := 0, 0 // kills, and those that left a checkpoint
	var mu sync.Mutex
	t.Run("trials", func(t *testing.T) {
		for i := range trials {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				t.Parallel()
				r := rand.New(rand.NewPCG(seed, uint64(i)))
				// Up to three kills, each at a uniform instant of a run's
				// duration, then a run to the end. A run that ends before
				// its kill (the host was faster than for the reference
				// run) starts the trial again in a new folder, with
				// instants drawn from the duration it took.
				span := ref.dur
				var out string
				for n, try := 0, 0; n == 0; try++ {
					if try == 20 {
						t.Fatalf("no kill landed in 20 runs (seed %d)", seed)
					}
					out = t.TempDir()
					resume := false
					for k := 0; k < 3; k++ {
						args := s.args(f, out)
						if resume {
							args = append(args, "--resume")
						}
						killed, ran := runKilled(t, f.cache, time.Duration(r.Float64()*float64(span)), args...)
						if !killed {
							span = min(span, ran)
							break
						}
						n++
						resume = hasCheckpoint(out)
						mu.Lock()
						kills++
						if resume {
							resumable++
						}
						mu.Unlock()
					}
				}
				args := s.args(f, out)
				if hasCheckpoint(out) {
					args = append(args, "--resume")
				}
				golemRun(t, f.cache, args...)
				sameOutput(t, ref.out, out, s.steps)
			})
		}
	})
	t.Logf("%d kills in %d trials, %d of them after the first checkpoint", kills, trials, resumable)
}

func TestKillResumePretrain(t *testing.T)   { killTrials(t, "pretrain", 3) }
func TestKillResumeSFT(t *testing.T)        { killTrials(t, "sft", 10) }
func TestKillResumeLoRA(t *testing.T)       { killTrials(t, "sft-lora", 2) }
func TestKillResumeReward(t *testing.T)     { killTrials(t, "reward", 3) }
func TestKillResumeDPO(t *testing.T)        { killTrials(t, "dpo", 3) }
func TestKillResumePPO(t *testing.T)        { killTrials(t, "ppo", 3) }
func TestKillResumeGRPO(t *testing.T)       { killTrials(t, "grpo", 3) }
func TestKillResumeDPOLoRA(t *testing.T)    { killTrials(t, "dpo-lora", 1) }
func TestKillResumeRewardLoRA(t *testing.T) { killTrials(t, "reward-lora", 1) }
func TestKillResumeGRPOLoRA(t *testing.T)   { killTrials(t, "grpo-lora", 1) }
func TestKillResumePPOLoRA(t *testing.T)    { killTrials(t, "ppo-lora", 1) }

// sameOutput checks a resumed run's folder against the uninterrupted
// run's: every tensor of every .safetensors file outside trainer/ equal to
// the bit, metrics.jsonl one record per step with the same losses, one
// step folder, no temporaries left.
func sameOutput(t *testing.T, ref, out string, steps int) {
	t.Helper()
	files := func(dir string) []string {
		var list []string
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			if d.IsDir() && rel == "trainer" {
				return filepath.SkipDir
			}
			if strings.HasPrefix(d.Name(), ".") && strings.Contains(d.Name(), ".tmp") {
				t.Errorf("%s: a temporary was left", p)
			}
			if !d.IsDir() && strings.HasSuffix(p, ".safetensors") {
				list = append(list, rel)
			}
			return nil
		})
		return list
	}
	fa, fb := files(ref), files(out)
	if !slices.Equal(fa, fb) || len(fa) == 0 {
		t.Fatalf("tensor files %v, want %v", fb, fa)
	}
	for _, rel := range fa {
		a, b := tensors(t, filepath.Join(ref, rel)), tensors(t, filepath.Join(out, rel))
		if len(a) != len(b) {
			t.Fatalf("%s: %d tensors, want %d", rel, len(b), len(a))
		}
		for n, x := range a {
			y, ok := b[n]
			if !ok || len(x) != len(y) {
				t.Fatalf("%s: tensor %s missing or resized", rel, n)
			}
			for j := range x {
				if math.Float32bits(x[j]) != math.Float32bits(y[j]) {
					t.Fatalf("%s: %s[%d] = %v after kills and resumes, %v uninterrupted", rel, n, j, y[j], x[j])
				}
			}
		}
	}
	la, lb := metricLosses(t, ref), metricLosses(t, out)
	if len(lb) != steps || !slices.Equal(la, lb) {
		t.Errorf("metrics.jsonl losses %v, want one per step: %v", lb, la)
	}
	steps2, _ := filepath.Glob(filepath.Join(out, "trainer", "*"))
	if len(steps2) != 1 || filepath.Base(steps2[0]) != fmt.Sprintf("step-%08d", steps) {
		t.Errorf("trainer/ holds %v, want only step %d", steps2, steps)
	}
}

func tensors(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string][]float32{}
	for _, n := range f.Names() {
		v, _, err := f.Float32(n)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, n, err)
		}
		m[n] = v
	}
	return m
}

// metricLosses is metrics.jsonl's losses in order, checking the steps run
// 1, 2, 3...
func metricLosses(t *testing.T, dir string) []float64 {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec struct {
			Step int     `json:"step"`
			Loss float64 `json:"loss"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%s: metrics.jsonl line %d: %v", dir, len(out)+1, err)
		}
		if rec.Step != len(out)+1 {
			t.Errorf("%s: metrics.jsonl line %d is step %d", dir, len(out)+1, rec.Step)
		}
		out = append(out, rec.Loss)
	}
	return out
}

// A second run on a folder a live run holds is refused, naming the
// holder's pid; once the holder is killed, the folder resumes.
func TestOutInUseRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real training processes")
	}
	f := fixtures(t)
	s := stageNamed("sft")
	f.base = reference(t, f, stageNamed("pretrain")).out
	out := t.TempDir()
	args := s.args(f, out)
	args[slices.Index(args, "--steps")+1] = "100000"
	holder := golemCmd(f.cache, args...)
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	pid := strconv.Itoa(holder.Process.Pid)
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(out, ".lock"))
		if strings.TrimSpace(string(b)) == pid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first run never wrote its pid into %s/.lock", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	second := golemCmd(f.cache, append(s.args(f, out), "--resume")...)
	msg, err := second.CombinedOutput()
	want := "golem: " + out + " is in use by pid " + pid + " (another golem run); wait for it or choose another --out\n"
	if err == nil || string(msg) != want {
		t.Fatalf("second run: %v, output %q, want %q", err, msg, want)
	}
	for !hasCheckpoint(out) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	holder.Process.Signal(syscall.SIGKILL)
	holder.Wait()
	args[slices.Index(args, "--steps")+1] = "6" // a shorter run from the checkpoint the killed one left
	golemRun(t, f.cache, append(args, "--resume")...)
}

// Ctrl-C (SIGINT) stops a run at a step boundary with a checkpoint saved,
// says so and exits 130, so that a script's next stage does not start
// from a half-trained model; the run resumes to the uninterrupted run's
// weights.
func TestInterruptSavesAndResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real training processes")
	}
	f := fixtures(t)
	s := stageNamed("sft")
	ref := reference(t, f, s)
	for try := 0; ; try++ {
		out := t.TempDir()
		cmd := golemCmd(f.cache, s.args(f, out)...)
		var msg bytes.Buffer
		cmd.Stdout, cmd.Stderr = &msg, &msg
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); !hasCheckpoint(out) && time.Now().Before(deadline); {
			time.Sleep(2 * time.Millisecond)
		}
		cmd.Process.Signal(os.Interrupt)
		err := cmd.Wait()
		if !strings.Contains(msg.String(), "interrupted at step ") {
			if err != nil {
				t.Fatalf("run: %v\n%s", err, msg.String())
			}
			if try == 5 {
				t.Fatalf("the run ended before each of 5 interrupts:\n%s", msg.String())
			}
			continue // it finished before the signal
		}
		if !strings.Contains(msg.String(), "saved to "+out+" (continue with --resume)") {
			t.Errorf("interrupted run says:\n%s", msg.String())
		}
		if code := cmd.ProcessState.ExitCode(); code != 130 {
			t.Errorf("interrupted run exits %d, want 130 (after saving)\n%s", code, msg.String())
		}
		golemRun(t, f.cache, append(s.args(f, out), "--resume")...)
		sameOutput(t, ref.out, out, s.steps)
		return
	}
}

// Ctrl-C stops golem demo with exit 130 and no report card of
// half-trained models.
func TestInterruptDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo")
	}
	for try := 0; ; try++ {
		out := filepath.Join(t.TempDir(), "demo")
		cmd := exec.Command(os.Args[0], "-test.run=^TestGolemChild$", "--", "demo", "--quick", "--threads", "1", "--out", out)
		cmd.Env = append(os.Environ(), golemEnv+"=1")
		var msg bytes.Buffer
		cmd.Stdout, cmd.Stderr = &msg, &msg
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); !hasCheckpoint(filepath.Join(out, "base")) && time.Now().Before(deadline); {
			time.Sleep(2 * time.Millisecond)
		}
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if _, err := os.Stat(filepath.Join(out, "report.md")); err == nil {
			if try == 5 {
				t.Fatalf("the demo wrote its report card after each of 5 interrupts (or ended before them):\n%s", msg.String())
			}
			continue
		}
		if code := cmd.ProcessState.ExitCode(); code != 130 || !strings.Contains(msg.String(), "interrupted: the stages' models are in "+out) {
			t.Fatalf("interrupted demo: exit %d, want 130 and the message\n%s", code, msg.String())
		}
		return
	}
}

// Every training command takes --checkpoint-activations and, with it,
// writes what the run without it wrote, bit for bit (recomputed
// activations are the same numbers).
func TestCheckpointActivationsCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real training processes")
	}
	f := fixtures(t)
	for _, name := range []string{"pretrain", "sft", "reward", "dpo-lora", "ppo", "grpo"} {
		t.Run(name, func(t *testing.T) {
			s := stageNamed(name)
			ref := reference(t, f, s)
			out := t.TempDir()
			golemRun(t, f.cache, append(s.args(f, out), "--checkpoint-activations")...)
			sameOutput(t, ref.out, out, s.steps)
		})
	}
}
