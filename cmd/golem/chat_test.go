package main

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/generate"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/tokenizer"
)

// tinyChatModel is a random-init GPT-2 of 2 layers, 32 wide, with a small
// BPE trained on a slice of the built-in corpus.
func tinyChatModel(t *testing.T) (*gpt.Model, *tokenizer.Tokenizer) {
	t.Helper()
	corpus := synth.Corpus(synth.CorpusOptions{Seed: 1, Bytes: 55000})
	tok, err := tokenizer.Train(tokenizer.TrainOptions{Texts: []string{corpus[:min(len(corpus), 50000)]}, VocabSize: 400})
	if err != nil {
		t.Fatal(err)
	}
	m, err := gpt.New(cpu.New(), gpt.Config{Arch: "gpt2", Vocab: tok.VocabSize(), Context: 512, Layers: 2, Heads: 2, KVHeads: 2,
		Hidden: 32, Intermediate: 64, Eps: 1e-5, Activation: "gelu", Bias: true, Tied: true, BOS: -1, EOS: -1}, 7)
	if err != nil {
		t.Fatal(err)
	}
	return m, tok
}

func TestChatFromAPipe(t *testing.T) {
	m, tok := tinyChatModel(t)
	in := strings.NewReader("Hello!\n\n/reset\nWhat is 2 + 2?\n/exit\nnever read\n")
	var out bytes.Buffer
	err := chat(m, tok, in, &out, chatOptions{System: "Be brief.", Gen: generate.Options{MaxTokens: 5}})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	// Two answers (one line each, unless the model wrote a newline) and the
	// reset notice; nothing after /exit.
	if !strings.Contains(out.String(), "(history cleared)") || len(lines) < 3 {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestFitHistoryDropsOldestTurns(t *testing.T) {
	_, tok := tinyChatModel(t)
	h := []tokenizer.Message{{Role: "system", Content: "S"}}
	for i := 0; i < 10; i++ {
		h = append(h, tokenizer.Message{Role: "user", Content: strings.Repeat("question ", 5)},
			tokenizer.Message{Role: "assistant", Content: strings.Repeat("answer ", 5)})
	}
	h = append(h, tokenizer.Message{Role: "user", Content: "last"})
	full, _, _ := tok.RenderChat(h, true)
	ids, err := fitHistory(tok, &h, len(full)/2)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) > len(full)/2 || h[0].Role != "system" || h[len(h)-1].Content != "last" || h[1].Role != "user" {
		t.Errorf("%d tokens of %d, history %+v", len(ids), len(full)/2, h)
	}
	if _, err := fitHistory(tok, &h, 3); err == nil {
		t.Error("a history that cannot fit was accepted")
	}
}

// golem chat with the calculator: a model trained by golem demo --tools
// (a real process) gets two held-out questions on stdin, calls the
// calculator each time (tool choice auto: nothing forces the call), golem
// runs the call, and the model's answer holds the result.
func TestChatCalculatorDemoModel(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model for about a minute: go test -short leaves it to the full run (CI)")
	}
	out := t.TempDir()
	if stdout, stderr, code := runGolem(t, "demo", "--tools", "--out", out); code != 0 || !strings.HasPrefix(stdout, "tool_use=") {
		t.Fatalf("golem demo --tools: exit %d\n%s%s", code, stdout, stderr)
	}
	var questions []synth.Task
	for _, tk := range synth.MustTasks(synth.TaskOptions{Seed: 12, N: 40, Kinds: []string{synth.KindCalculator}, Tools: []string{"calculator"}, Split: synth.SplitHeldout}) {
		if tk.Want.Match == synth.MatchToolCall && len(questions) < 2 {
			questions = append(questions, tk)
		}
	}
	cmd := golemCmdIn(t, "chat", "--model", filepath.Join(out, "sft"), "--tools", "calculator", "--temperature", "0", "--max-tokens", "64")
	// /reset between the questions: the model learned single round trips.
	cmd.Stdin = strings.NewReader(questions[0].User() + "\n/reset\n" + questions[1].User() + "\n")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("golem chat: %v\n%s%s", err, o.String(), e.String())
	}
	// Each turn: the call, golem's line "[calculator {...} -> RESULT]",
	// and the answer.
	lines := strings.Split(strings.TrimSpace(o.String()), "\n")
	for _, q := range questions {
		r := q.Want.Values[0]
		i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "[calculator ") && strings.HasSuffix(l, " -> "+r+"]") })
		if i < 0 || i+1 >= len(lines) || !strings.Contains(lines[i+1], r) {
			t.Errorf("%q: no calculator call giving %s followed by an answer holding it:\n%s", q.User(), r, o.String())
		}
	}
}
