package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/golem-ml/golem/internal/shared"
)

// golemEnv, when set, makes the test binary run golem's main with the
// arguments after "--" instead of the tests: runGolem runs a real golem
// process this way without building cmd/golem.
const golemEnv = "GOLEM_CMD_TEST_CHILD"

// TestGolemChild is the child runGolem starts; it does nothing in a plain
// test run.
func TestGolemChild(t *testing.T) {
	if os.Getenv(golemEnv) == "" {
		return
	}
	os.Args = append([]string{"golem"}, flag.Args()...)
	code := run(os.Args[1:])
	if f := os.Getenv(docsExitsEnv); f != "" && code != 0 {
		recordExit(f, code, os.Args[1:])
	}
	os.Exit(code)
}

// runGolem runs `golem args...` as a process and returns its stdout, its
// stderr and its exit code.
func runGolem(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestGolemChild$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), golemEnv+"=1")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// Every command that builds a model takes --device; a device no backend
// registered fails at once, before any other flag is checked, with the
// flag, the name and the known devices.
func TestDeviceUnknown(t *testing.T) {
	const want = "golem: --device nope: unknown device (have: cpu)\n"
	for _, c := range []string{"pretrain", "sft", "reward", "ppo", "dpo", "grpo", "generate", "chat",
		"eval mc", "eval gen", "eval tasks", "eval ppl", "demo", "serve", "clip train", "clip zeroshot", "clip retrieve",
		"vision pretrain", "vision probe", "vision judge train", "eval judge", "vlm", "eval vlm", "data shapes-prefs",
		"vq train", "vq encode", "vq decode", "imagine train", "imagine", "imagine prefs", "imagine dpo", "quantize", "export --format gguf"} {
		args := append(strings.Fields(c), "--device", "nope")
		if _, stderr, code := runRefused(t, c == "pretrain", args...); code != 1 || stderr != want {
			t.Errorf("golem %s --device nope: exit %d, stderr %q; want exit 1, %q", c, code, stderr, want)
		}
	}
}

// --device cpu is the default: golem generate prints the same greedy
// continuation of a Hugging Face model with it and without it.
func TestDeviceCPU(t *testing.T) {
	dir := shared.Path(t, "fixtures/hf/llama-tiny")
	gen := []string{"generate", "--model", dir, "--prompt", "Hello", "--max-tokens", "8", "--temperature", "0"}
	def, stderr, code := runGolem(t, gen...)
	if code != 0 || strings.TrimSpace(def) == "" {
		t.Fatalf("golem generate: exit %d, stdout %q, stderr %q", code, def, stderr)
	}
	cpu, stderr, code := runGolem(t, append(gen, "--device", "cpu")...)
	if code != 0 || cpu != def {
		t.Fatalf("golem generate --device cpu: exit %d, stdout %q (without --device: %q), stderr %q", code, cpu, def, stderr)
	}
}
