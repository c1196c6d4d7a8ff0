package eval

import (
	"bytes"
	"compress/bzip2"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golem-ml/golem/internal/shared"
)

// TestMatchesLMEvalReference checks golem eval mc against
// testdata/lmeval_ref.py, an independent Python implementation of
// lm-evaluation-harness's task definitions and metrics: for a tiny random
// model on the shared sets, every question's context (description, k-shot
// examples drawn as lm-eval draws them) and continuations are the strings
// lm-eval builds, and acc, acc_norm and acc_bytes pick the same choice on
// every item.
func TestMatchesLMEvalReference(t *testing.T) {
	if testing.Short() {
		t.Skip("full tier: runs the Python lm-eval reference over three shared sets; TestRandomModelAtChance runs the same harness in the short tier")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		shared.Missing(t, "skipping: needs python3 for the lm-eval reference")
	}
	m, tok := tinyRandom(t)
	obqa := shared.Path(t, "data/eval/openbookqa_test.jsonl")
	hsFull := shared.Path(t, "data/eval/hellaswag_val_full.txt.bz2")
	cm := shared.Path(t, "data/eval/cmmlu")
	dir := t.TempDir()
	// HellaSwag's first 60 tasks, unpacked.
	hs := filepath.Join(dir, "hellaswag.txt")
	writeFile(t, hs, strings.Join(strings.SplitAfter(bzRead(t, hsFull), "\n")[:360], ""))
	// Chinese choices in ARC's layout (CMMLU's chemistry options as
	// texts, Chinese mixed with formulas): a Chinese character is three
	// bytes, so acc_norm and acc_bytes pick differently, and a space
	// counted in would move both.
	var zh []string
	for _, row := range strings.Split(readFile(t, filepath.Join(cm, "test", "high_school_chemistry.csv")), "\n")[1:61] {
		f := strings.Split(row, ",")
		if len(f) != 7 {
			continue
		}
		js, _ := json.Marshal(map[string]any{"question": map[string]any{"stem": f[1], "choices": []map[string]string{
			{"text": f[2], "label": "A"}, {"text": f[3], "label": "B"}, {"text": f[4], "label": "C"}, {"text": f[5], "label": "D"}}},
			"answerKey": strings.TrimSpace(f[6])})
		zh = append(zh, string(js))
	}
	zhARC := filepath.Join(dir, "zh_arc.jsonl")
	writeFile(t, zhARC, strings.Join(zh, "\n")+"\n")
	// OpenBookQA's train split is not in ../shared: its last 100 test
	// questions stand in as the pool the shots are drawn from.
	lines := strings.Split(strings.TrimSpace(readFile(t, obqa)), "\n")
	pool := filepath.Join(dir, "openbookqa_pool.jsonl")
	writeFile(t, pool, strings.Join(lines[len(lines)-100:], "\n")+"\n")
	// Three CMMLU subjects, 12 questions each, with their dev splits.
	for _, split := range []string{"test", "dev"} {
		os.MkdirAll(filepath.Join(dir, "cmmlu", split), 0o755)
		for _, s := range []string{"agronomy", "ancient_chinese", "world_religions"} {
			rows := strings.SplitAfter(readFile(t, filepath.Join(cm, split, s+".csv")), "\n")
			writeFile(t, filepath.Join(dir, "cmmlu", split, s+".csv"), strings.Join(rows[:min(len(rows), 13)], ""))
		}
	}
	cases := []struct {
		name, task, data, pool string
		shots, limit           int
	}{
		{"openbookqa", "openbookqa", obqa, "-", 0, 60},
		{"openbookqa-3shot", "openbookqa", obqa, pool, 3, 30},
		{"arc-template", "arc", obqa, pool, 2, 30},
		{"arc-chinese-choices", "arc", zhARC, "-", 0, 0},
		{"hellaswag", "hellaswag", hs, "-", 0, 0},
		{"hellaswag-2shot-same-split", "hellaswag", hs, hs, 2, 20},
		{"cmmlu", "cmmlu", filepath.Join(dir, "cmmlu", "test"), "-", 0, 0},
		{"cmmlu-2shot", "cmmlu", filepath.Join(dir, "cmmlu", "test"), filepath.Join(dir, "cmmlu", "dev"), 2, 0},
	}
	// golem's runs, then the reference's in one Python process.
	results := make([]MCResult, len(cases))
	var runs []map[string]any
	for i, c := range cases {
		qs, err := ReadMC(c.data, MCFormat(c.task))
		if err != nil {
			t.Fatal(err)
		}
		if c.limit > 0 {
			qs = qs[:c.limit]
		}
		o := MCOptions{Shots: c.shots, Seed: DefaultFewshotSeed, Details: true, FirstN: c.task == "cmmlu", SameSplit: c.pool == c.data}
		if c.pool != "-" {
			if o.Pool, err = ReadMC(c.pool, MCFormat(c.task)); err != nil {
				t.Fatal(err)
			}
		}
		if results[i], err = MultipleChoice(m, tok, qs, o); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		for _, it := range results[i].Items {
			js, _ := json.Marshal(it)
			b.Write(append(js, '\n'))
		}
		details := filepath.Join(dir, c.name+".details.jsonl")
		writeFile(t, details, b.String())
		runs = append(runs, map[string]any{"task": c.task, "data": c.data, "pool": c.pool, "shots": c.shots,
			"seed": DefaultFewshotSeed, "limit": c.limit, "details": details})
	}
	js, _ := json.Marshal(runs)
	casesFile := filepath.Join(dir, "cases.json")
	writeFile(t, casesFile, string(js))
	out, err := exec.Command("python3", "testdata/lmeval_ref.py", casesFile).Output()
	if err != nil {
		t.Fatalf("lmeval_ref.py: %v %s", err, stderrOf(err))
	}
	var refs []struct {
		N        int      `json:"n"`
		Acc      float64  `json:"acc"`
		AccNorm  float64  `json:"acc_norm"`
		AccBytes float64  `json:"acc_bytes"`
		Bad      []string `json:"bad"`
		NBad     int      `json:"n_bad"`
	}
	if err := json.Unmarshal(out, &refs); err != nil || len(refs) != len(cases) {
		t.Fatalf("lmeval_ref.py gave %d results for %d runs (%v): %s", len(refs), len(cases), err, out)
	}
	for i, c := range cases {
		r, ref := results[i], refs[i]
		if ref.NBad > 0 {
			t.Errorf("%s: %d disagreements with lm-eval's definitions, first:\n%s", c.name, ref.NBad, strings.Join(ref.Bad, "\n"))
			continue
		}
		if ref.N != r.N || math.Abs(ref.Acc-r.Acc) > 1e-12 || math.Abs(ref.AccNorm-r.AccNorm) > 1e-12 || math.Abs(ref.AccBytes-r.AccBytes) > 1e-12 {
			t.Errorf("%s: golem %v; lm-eval's definitions n=%d acc=%.3f acc_norm=%.3f acc_bytes=%.3f", c.name, r, ref.N, ref.Acc, ref.AccNorm, ref.AccBytes)
		}
		differ := 0
		for _, it := range r.Items {
			if it.PredNorm != it.PredBytes {
				differ++
			}
		}
		t.Logf("%s: %v; acc_norm and acc_bytes pick differently on %d", c.name, r, differ)
		if c.name == "arc-chinese-choices" && differ == 0 {
			t.Error("acc_norm and acc_bytes agree on every Chinese item: the test cannot tell them apart")
		}
	}
}

func bzRead(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(bzip2.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// TestPyRandomMatchesPython: the few-shot draws are Python's
// random.Random(seed).sample, call after call.
func TestPyRandomMatchesPython(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		shared.Missing(t, "skipping: needs python3")
	}
	cases := [][2]int{{100, 5}, {100, 5}, {10, 3}, {1000, 25}, {4, 4}, {1, 1}, {5000, 6}, {30, 29}, {1 << 20, 3}}
	seeds := []uint64{1234, 0, 42, 1 << 40}
	js, _ := json.Marshal(cases)
	sj, _ := json.Marshal(seeds)
	out, err := exec.Command("python3", "-c", `import json, random, sys
res = []
for seed in json.loads(sys.argv[1]):
    r = random.Random(seed)
    res.append([r.sample(range(n), k) for n, k in json.loads(sys.argv[2])])
print(json.dumps(res))`, string(sj), string(js)).Output()
	if err != nil {
		t.Fatal(err)
	}
	var want [][][]int
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	for s, seed := range seeds {
		r := newPyRandom(seed)
		for i, c := range cases {
			if got := r.sample(c[0], c[1]); fmt.Sprint(got) != fmt.Sprint(want[s][i]) {
				t.Fatalf("seed %d, sample(range(%d), %d) #%d: %v, Python %v", seed, c[0], c[1], i, got, want[s][i])
			}
		}
	}
}

// TestEmptyContextScoresEveryToken: lm-eval starts an empty context with
// the prefix token (BOS, else EOS), so every token of the continuation is
// scored; and spaces that end a context belong to the continuation.
func TestEmptyContextScoresEveryToken(t *testing.T) {
	m, tok := tinyRandom(t)
	q := Question{ID: "q", Choices: []string{"the cat sat on the mat", "a dog"}, Answer: 0}
	r, err := MultipleChoice(m, tok, []Question{q}, MCOptions{Details: true})
	if err != nil {
		t.Fatal(err)
	}
	for c, choice := range q.Choices {
		if n, want := len(r.Items[0].LogProbs[c]), len(tok.Encode(" "+choice)); n != want {
			t.Errorf("choice %d: %d tokens scored, want all %d", c, n, want)
		}
	}
	eot, _ := tok.SpecialID("<|endoftext|>")
	if p := prefixToken(m, tok); p != eot {
		t.Errorf("prefix token %d, want <|endoftext|> %d (the model has no BOS or EOS)", p, eot)
	}
	ctx, cont := encodePair(tok, eot, "Answer: ", "Paris")
	if want := tok.Encode("Answer:"); fmt.Sprint(ctx) != fmt.Sprint(want) || fmt.Sprint(append(ctx, cont...)) != fmt.Sprint(tok.Encode("Answer: Paris")) {
		t.Errorf("encodePair(%q, %q) = %v + %v", "Answer: ", "Paris", ctx, cont)
	}
}

// HellaSwag's own JSON lines are read as lm-eval's hellaswag
// process_docs: activity label, ctx_a, ctx_b capitalized, and the
// preprocess of context and endings ([title] to ". ", brackets dropped,
// double spaces single; the expected strings are what lm-eval's Python
// preprocess gives).
func TestHellaSwagJSONL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hellaswag_val.jsonl")
	writeFile(t, path, `{"ind": 24, "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.", "ctx_b": "he", "endings": ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.", "is holding a rubik's cube.", "starts pulling up roofing on a roof."], "label": 3}
{"activity_label": "Home and Garden", "ctx_a": "[header] How to clean a roof [title] Rake off debris.", "ctx_b": "", "endings": ["Use a  rake [step] to pull leaves.", "b", "c", "d"], "label": "0"}
`)
	if DetectMC(path) != FormatHellaSwag {
		t.Fatalf("%s detected as %s", path, DetectMC(path))
	}
	qs, err := ReadMC(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 2 || qs[0].Context != "Roof shingle removal: A man is sitting on a roof. He" || qs[0].Answer != 3 ||
		qs[0].Choices[1] != "is ripping level tiles off." {
		t.Errorf("first: %+v", qs[0])
	}
	if qs[1].Context != "Home and Garden: How to clean a roof. Rake off debris." || qs[1].Choices[0] != "Use a rake to pull leaves." || qs[1].Answer != 0 {
		t.Errorf("second: %q %q", qs[1].Context, qs[1].Choices[0])
	}
	bad := filepath.Join(t.TempDir(), "hellaswag.jsonl")
	writeFile(t, bad, `{"activity_label": "x", "endings": ["a", "b"], "label": 0}`+"\n")
	if _, err := ReadMC(bad, ""); err == nil || !strings.Contains(err.Error(), "hellaswag.jsonl:1") {
		t.Errorf("no ctx_a: %v", err)
	}
}
