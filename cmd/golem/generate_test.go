package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tokenizer"
)

// writeRandomModel saves a random tiny llama with a BPE tokenizer (with
// the chat specials) in a new folder.
func writeRandomModel(t *testing.T) string {
	t.Helper()
	tok, err := tokenizer.Train(tokenizer.TrainOptions{Texts: []string{synth.Corpus(synth.CorpusOptions{Seed: 1, Bytes: 20000})}, VocabSize: 400, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := gpt.Config{Arch: "llama", Vocab: tok.VocabSize(), Context: 2048, Layers: 1, Heads: 2, KVHeads: 1,
		Hidden: 16, Intermediate: 32, Eps: 1e-5, RopeTheta: 10000, BOS: -1, EOS: -1}
	return saveRandomModel(t, cfg, 5, tok)
}

// saveRandomModel saves a model of config c with random weights from seed
// and the tokenizer tok in a new folder.
func saveRandomModel(t *testing.T, c gpt.Config, seed uint64, tok *tokenizer.Tokenizer) string {
	t.Helper()
	dir := t.TempDir()
	m, err := gpt.New(cpu.New(), c, seed)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := tok.Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// golem generate --json-schema answers with a value of the schema, even
// from a random model; one cut by --max-tokens is an error saying so.
func TestGenerateJSONSchema(t *testing.T) {
	dir := writeRandomModel(t)
	schema := filepath.Join(t.TempDir(), "schema.json")
	os.WriteFile(schema, []byte(`{"type":"object","properties":{"city":{"enum":["Paris","Rome"]},"days":{"type":"integer"},"note":{"type":"string","maxLength":10}},"required":["city","days","note"],"additionalProperties":false}`), 0o644)
	out, stderr, code := runGolem(t, "generate", "--model", dir, "--prompt", "Plan a trip:", "--json-schema", schema, "--max-tokens", "200", "--seed", "3")
	var v struct {
		City *string
		Days *int
		Note *string
	}
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.City == nil || v.Days == nil || v.Note == nil || len([]rune(*v.Note)) > 10 {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	out, stderr, code = runGolem(t, "generate", "--model", dir, "--prompt", "{", "--format", "json", "--max-tokens", "1")
	if code != 1 || !strings.Contains(stderr, "sample 1 was cut at --max-tokens 1 before its JSON value was whole") {
		t.Errorf("cut: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	os.WriteFile(schema, []byte(`{"type":"object","properties":{"a":{"type":"string","pattern":"x"}}}`), 0o644)
	_, stderr, code = runGolem(t, "generate", "--model", dir, "--json-schema", schema)
	if code != 1 || !strings.Contains(stderr, schema+`: schema: properties.a.pattern: keyword "pattern" is not supported`) {
		t.Errorf("bad schema: exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = runGolem(t, "generate", "--model", dir, "--format", "json", "--stop", "x")
	if code != 1 || !strings.Contains(stderr, "--stop would cut") {
		t.Errorf("--stop: exit %d, stderr %q", code, stderr)
	}
}

// golem chat --tools calculator runs the model's calls: a forced call from
// a random model is run, its result shown and given back, and the model
// answers again.
func TestChatCalculator(t *testing.T) {
	dir := writeRandomModel(t)
	cmd := golemCmdIn(t, "chat", "--model", dir, "--tools", "calculator", "--tool-choice", "required", "--max-tokens", "200", "--temperature", "1")
	cmd.Stdin = strings.NewReader("What is 6*7?\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	call := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "[calculator {\"expression\":") && strings.Contains(l, "} -> ") {
			call = i
		}
	}
	if call < 1 || !strings.HasPrefix(lines[call-1], "</tool_call>") && !strings.Contains(lines[call-1], "</tool_call>") {
		t.Fatalf("no calculator call run:\n%s", out)
	}
	if call == len(lines)-1 {
		t.Fatalf("no answer after the call:\n%s", out)
	}
	_, stderr, code := runGolem(t, "chat", "--model", dir, "--tools", "shell")
	if code != 1 || !strings.Contains(stderr, `no built-in tool "shell"`) {
		t.Errorf("--tools shell: exit %d, stderr %q", code, stderr)
	}
}

// golemCmdIn is a golem process (see runGolem) whose stdin the test sets.
func golemCmdIn(t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestGolemChild$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), golemEnv+"=1")
	return cmd
}
