package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/internal/shared"
)

// golem eval mc draws k-shot examples as lm-eval does: CMMLU's from the
// dev folder beside test (the first K of the same subject), with the
// subject's description first; a set with no train split given says so.
func TestEvalMCFewshot(t *testing.T) {
	model := shared.Path(t, "fixtures/hf/gpt2-tiny")
	cm := shared.Path(t, "data/eval/cmmlu")
	dir := t.TempDir()
	for _, split := range []string{"test", "dev"} {
		rows := strings.SplitAfter(readText(t, filepath.Join(cm, split, "agronomy.csv")), "\n")
		os.MkdirAll(filepath.Join(dir, "cmmlu", split), 0o755)
		os.WriteFile(filepath.Join(dir, "cmmlu", split, "agronomy.csv"), []byte(strings.Join(rows[:4], "")), 0o644)
	}
	details, record := filepath.Join(dir, "details.jsonl"), filepath.Join(dir, "results.json")
	stdout, stderr, code := runGolem(t, "eval", "mc", "--model", model, "--data", filepath.Join(dir, "cmmlu", "test"), "--shots", "2", "--details", details, "--json", record)
	if code != 0 || !strings.Contains(stdout, "acc=") || !strings.Contains(stdout, "acc_norm=") || !strings.Contains(stdout, "acc_bytes=") || !strings.Contains(stdout, "2-shot, lm-eval's cmmlu 0.0") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	// The task version a published number is set beside is in the record.
	var recs []struct {
		Task    string             `json:"task"`
		Metrics map[string]float64 `json:"metrics"`
	}
	if err := json.Unmarshal([]byte(readText(t, record)), &recs); err != nil || len(recs) != 1 || recs[0].Task != "cmmlu 0.0" {
		t.Errorf("--json record %+v (%v), want task \"cmmlu 0.0\"", recs, err)
	} else if _, ok := recs[0].Metrics["acc_norm"]; !ok {
		t.Errorf("--json record's metrics %v lack acc_norm", recs[0].Metrics)
	}
	dev := strings.Split(readText(t, filepath.Join(dir, "cmmlu", "dev", "agronomy.csv")), "\n")
	var first struct {
		Context       string   `json:"context"`
		Continuations []string `json:"continuations"`
	}
	if err := json.Unmarshal([]byte(strings.SplitN(readText(t, details), "\n", 2)[0]), &first); err != nil {
		t.Fatal(err)
	}
	q1 := strings.Split(dev[1], ",")[1]
	q2 := strings.Split(dev[2], ",")[1]
	if !strings.HasPrefix(first.Context, "以下是关于农学的单项选择题，请直接给出正确答案的选项。\n\n"+q1) || !strings.Contains(first.Context, q2) ||
		strings.Join(first.Continuations, "|") != " A| B| C| D" {
		t.Errorf("first question: %+v", first)
	}
	_, stderr, code = runGolem(t, "eval", "mc", "--model", model, "--data", shared.Path(t, "data/eval/openbookqa_test.jsonl"), "--shots", "1")
	if code != 1 || !strings.Contains(stderr, "needs --fewshot FILE") {
		t.Errorf("OpenBookQA 1-shot without a train split: exit %d, %s", code, stderr)
	}
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
