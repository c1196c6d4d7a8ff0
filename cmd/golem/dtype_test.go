package main

import (
	"strings"
	"testing"

	"github.com/golem-ml/golem/internal/shared"
)

// golem generate --dtype bf16 runs a model with its matrices in bfloat16
// (model/load's BF16) and greedy-decodes text from it; another dtype is
// refused, naming it.
func TestGenerateDTypeBF16(t *testing.T) {
	dir := shared.Path(t, "fixtures/hf/llama-tiny")
	args := []string{"generate", "--model", dir, "--prompt", "Hello", "--max-tokens", "8", "--temperature", "0"}
	f32 := golemOut(t, "", "", args...)
	bf, stderr, code := runGolem(t, append(args, "--dtype", "bf16")...)
	if code != 0 || !strings.Contains(stderr, "generate: 15 matrices kept as bfloat16") {
		t.Fatalf("generate --dtype bf16: exit %d, stderr %q (llama-tiny has 15 matrices)", code, stderr)
	}
	if len(strings.Fields(bf)) < 2 {
		t.Fatalf("generate --dtype bf16 printed %q", bf)
	}
	t.Logf("float32: %q, bf16: %q", f32, bf)
	_, stderr, code = runGolem(t, append(args, "--dtype", "fp8")...)
	if code == 0 || !strings.Contains(stderr, `--dtype "fp8": want float32 or bf16`) {
		t.Fatalf("generate --dtype fp8: exit %d, stderr %q", code, stderr)
	}
}
