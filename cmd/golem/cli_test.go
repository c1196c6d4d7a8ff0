package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	xcpu "golang.org/x/sys/cpu"
)

// runInProcess runs golem's run(args) in this process, as main does, and
// returns what it wrote to stdout and stderr and its exit code. Only for
// commands that print and return (help, and command lines refused before
// anything runs): os.Stdout and os.Stderr are swapped while it runs.
func runInProcess(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	dir := t.TempDir()
	var files [2]*os.File
	for i, name := range []string{"stdout", "stderr"} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files[i] = f
	}
	savedOut, savedErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = files[0], files[1]
	code = run(args)
	os.Stdout, os.Stderr = savedOut, savedErr
	var out [2]string
	for i, f := range files {
		b, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		out[i] = string(b)
	}
	return out[0], out[1], code
}

// runRefused runs a line of a test's table of bad inputs (refused before
// running anything, or failing on a bad file met while running): the
// first of the table as a real process (runGolem: main's exit code and
// streams), the others in this process (runInProcess), each a process's
// start (0.04 s of CPU) and its models' loading saved.
func runRefused(t *testing.T, first bool, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	if first {
		return runGolem(t, args...)
	}
	return runInProcess(t, args...)
}

// hiddenAliases are the old flag names kept working but left out of help.
var hiddenAliases = map[string][]string{
	"ppo":             {"policy", "prompts", "kl-coef"},
	"dpo":             {"policy"},
	"grpo":            {"policy", "tasks", "prompts"},
	"tokenizer train": {"workers"},
}

func commandNames() []string {
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Every command's --help, -h and golem help CMD print its usage, one
// example and its flags to stdout and exit 0; no flag shows a sentinel
// default (-1) and no hidden alias shows.
func TestHelpEveryCommand(t *testing.T) {
	for _, name := range commandNames() {
		words := strings.Fields(name)
		out, stderr, code := runGolem(t, append(words, "--help")...)
		if code != 0 || stderr != "" {
			t.Errorf("golem %s --help: exit %d, stderr %q; want exit 0, nothing on stderr", name, code, stderr)
			continue
		}
		if !strings.HasPrefix(out, "usage: golem "+name+" [flags]\n") || !strings.Contains(out, "\nexample:\n  golem "+name) &&
			!strings.Contains(out, "| golem "+name) {
			t.Errorf("golem %s --help: no usage line or example:\n%s", name, out)
		}
		if strings.Contains(out, "default -1") {
			t.Errorf("golem %s --help shows a sentinel default:\n%s", name, out)
		}
		for _, a := range hiddenAliases[name] {
			if strings.Contains(out, "--"+a+" ") || strings.Contains(out, "--"+a+"\n") {
				t.Errorf("golem %s --help shows the hidden alias --%s:\n%s", name, a, out)
			}
		}
		// golem help CMD in this process (run, as main calls it): half
		// the test's hundred processes, for the same check.
		if h, _, code := runInProcess(t, append([]string{"help"}, words...)...); code != 0 || h != out {
			t.Errorf("golem help %s: exit %d, output differs from --help:\n%s", name, code, h)
		}
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"tokenizer", "--help"}} {
		out, stderr, code := runGolem(t, args...)
		if code != 0 || stderr != "" || !strings.Contains(out, "tokenizer train") {
			t.Errorf("golem %s: exit %d, stderr %q, stdout %q; want the command list on stdout, exit 0", strings.Join(args, " "), code, stderr, out)
		}
	}
}

// A wrong command line is exit 2 with the reason on stderr, a missing
// required flag too, naming it; golem alone lists the commands on stderr,
// exit 2.
func TestUsageErrors(t *testing.T) {
	for i, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sft", "--bogus"}, "golem: sft: flag provided but not defined: --bogus"},
		{[]string{"generate", "--model", "m", "hello"}, `golem: generate: unexpected argument "hello"`},
		{[]string{"help", "nope"}, `golem: unknown command "nope"`},
		{[]string{"ppo", "--beta", "x"}, `golem: ppo: invalid value "x" for flag --beta`},
		{[]string{}, "usage: golem COMMAND"},
		{[]string{"generate"}, "golem: generate: --model is required (golem generate --help lists the flags)"},
		{[]string{"dpo", "--model", "m"}, "golem: dpo: --data and --out are required"},
		{[]string{"ppo", "--out", "o"}, "golem: ppo: --model and --reward are required"},
		{[]string{"reward", "--data", "d", "--out", "o"}, "golem: reward: --model is required"},
		{[]string{"export", "--db", "sqlite:x.db", "--out", "o"}, "golem: export: --kind is required"},
		{[]string{"eval", "mc"}, "golem: eval mc: --model and --data are required"},
		{[]string{"sft", "--model", "m"}, "golem: sft: --data and --out are required"},
		{[]string{"sft", "--data", "builtin", "--out", "o"}, "golem: sft: --model is required"},
	} {
		_, stderr, code := runRefused(t, i == 0, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("golem %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
}

// golem version prints the module version and commit, the Go version and
// the CPU kernels in use, exit 0.
func TestVersion(t *testing.T) {
	out, stderr, code := runGolem(t, "version")
	if code != 0 || stderr != "" {
		t.Fatalf("golem version: exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"golem ", "\ncommit ", runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH, cpu.Features()} {
		if !strings.Contains(out, want) {
			t.Errorf("golem version lacks %q:\n%s", want, out)
		}
	}
	// The vector kernels it names are the machine's: AVX-512, else AVX2
	// with FMA (laptops, AMD before Zen 4), else none.
	want := "vec=off"
	switch {
	case runtime.GOARCH != "amd64", strings.Contains(out, "gemm=go "): // no assembly (purego)
	case xcpu.X86.HasAVX512F && xcpu.X86.HasAVX512VL && xcpu.X86.HasAVX512DQ:
		want = "vec=avx512"
	case xcpu.X86.HasAVX2 && xcpu.X86.HasFMA:
		want = "vec=avx2"
	}
	if !strings.Contains(out, " "+want+" ") {
		t.Errorf("golem version: want %s on this CPU:\n%s", want, out)
	}
}

// parseCommand parses a command line against the command's real flag set,
// running nothing, and returns the flag set.
func parseCommand(t *testing.T, args ...string) (*flag.FlagSet, error) {
	t.Helper()
	parseOnly = true
	defer func() { parseOnly = false }()
	c, rest, ok := findCommand(args)
	if !ok {
		return nil, errors.New("unknown command " + strings.Join(args[:min(len(args), 2)], " "))
	}
	lastFlags = nil
	err := c.run(rest)
	if errors.Is(err, errParsed) || errors.Is(err, errHelp) {
		err = nil
	}
	return lastFlags, err
}

// The old names (--policy, --kl-coef, ppo's --prompts FILE, grpo's
// --tasks and --prompts N, tokenizer train's --workers) set the new flags.
func TestHiddenAliasesWork(t *testing.T) {
	for _, c := range []struct {
		args       []string
		flag, want string
	}{
		{[]string{"ppo", "--policy", "sft1", "--kl-coef", "0.5", "--prompts", "p.jsonl"}, "model", "sft1"},
		{[]string{"ppo", "--kl-coef", "0.5"}, "beta", "0.5"},
		{[]string{"ppo", "--prompts", "p.jsonl"}, "data", "p.jsonl"},
		{[]string{"dpo", "--policy", "sft2"}, "model", "sft2"},
		{[]string{"grpo", "--policy", "sft3"}, "model", "sft3"},
		{[]string{"grpo", "--tasks", "t.jsonl"}, "data", "t.jsonl"},
		{[]string{"grpo", "--prompts", "3"}, "batch", "3"},
		{[]string{"tokenizer", "train", "--workers", "3"}, "threads", "3"},
	} {
		fs, err := parseCommand(t, c.args...)
		if err != nil {
			t.Errorf("golem %s: %v", strings.Join(c.args, " "), err)
			continue
		}
		if got := fs.Lookup(c.flag).Value.String(); got != c.want || !isSet(fs, c.flag) {
			t.Errorf("golem %s: --%s = %q (set: %v), want %q", strings.Join(c.args, " "), c.flag, got, isSet(fs, c.flag), c.want)
		}
	}
}

// One default per concept: every --seed defaults to 1337, and generate
// and chat sample alike.
func TestOneDefaultPerConcept(t *testing.T) {
	var sampling map[string]string
	for _, name := range commandNames() {
		fs, err := parseCommand(t, strings.Fields(name)...)
		if err != nil && fs == nil {
			t.Fatalf("golem %s: %v", name, err)
		}
		if f := fs.Lookup("seed"); f != nil && f.DefValue != "1337" {
			t.Errorf("golem %s: --seed defaults to %s, want 1337", name, f.DefValue)
		}
		for _, old := range []string{"policy", "kl-coef", "tasks", "workers"} {
			if f := fs.Lookup(old); f != nil {
				if _, hidden := f.Value.(aliasValue); !hidden {
					t.Errorf("golem %s: --%s is a visible flag; the concept's name is another", name, old)
				}
			}
		}
		if name == "generate" || name == "chat" {
			s := map[string]string{}
			for _, k := range []string{"temperature", "top-p", "top-k", "repetition-penalty", "max-tokens", "seed"} {
				s[k] = fs.Lookup(k).DefValue
			}
			if sampling != nil && !mapsEqual(s, sampling) {
				t.Errorf("chat and generate sample differently by default: %v vs %v", s, sampling)
			}
			sampling = s
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Every command's example parses against its flags.
func TestExamplesParse(t *testing.T) {
	for _, name := range commandNames() {
		fs, _ := parseCommand(t, strings.Fields(name)...)
		ex := examples[fs]
		if ex == "" {
			t.Errorf("golem %s has no example", name)
		}
		for _, line := range strings.Split(ex, "\n") {
			for _, args := range golemCommands(line) {
				if _, err := parseCommand(t, args...); err != nil {
					t.Errorf("example %q: %v", line, err)
				}
			}
		}
	}
}

// ppo with LoRA keeps no EMA: --ema with --lora-r is refused before
// anything is loaded, naming both flags.
func TestPPOLoRARefusesEMA(t *testing.T) {
	_, stderr, code := runGolem(t, "ppo", "--model", "m", "--reward", "r", "--out", t.TempDir(), "--lora-r", "4", "--ema", "0.9")
	if code == 0 || !strings.Contains(stderr, "ppo: --ema with --lora-r: a LoRA run keeps no EMA") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
