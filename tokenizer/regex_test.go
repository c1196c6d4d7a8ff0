package tokenizer

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/golem-ml/golem/internal/shared"
)

// splitScript splits each text with each pattern using Python's regex
// module, the engine GPT-2's encoder.py used, which supports \p{L} and
// (?i:...) as tiktoken's fancy-regex does.
const splitScript = `
import json, sys, regex
req = json.load(sys.stdin)
pats = [regex.compile(p) for p in req["patterns"]]
json.dump([[p.findall(t) for t in req["texts"]] for p in pats], sys.stdout)
`

// tricky holds characters of every class the patterns tell apart.
var tricky = []string{
	"a", "z", "Z", "é", "É", "ǅ", "ʰ", "中", "ー", "\u0301", "\u0903", "1", "٣", "Ⅻ", "½",
	" ", " ", " ", "\t", "\n", "\n", "\r", "\u00a0", "\u3000", "\u2028", "\u0085", "\v",
	"'", "'", "s", "S", "t", "re", "VE", "ll", "D", "m", "ſ", "!", ".", "/", "$", "\x00",
	"\x7f", "😀", "\u200b", "，", "𝐀", "𝐚",
}

func TestSplitMatchesPythonRegex(t *testing.T) {
	python, err := shared.Python3()
	if err != nil {
		t.Skip("skipping: needs python3 with the regex module")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	count, sample := 20000, 100000
	if testing.Short() {
		count, sample = 2000, 10000 // the full tier checks ten times as many
	}
	var texts []string
	for i := 0; i < count; i++ {
		var sb strings.Builder
		for n := 1 + rng.IntN(24); n > 0; n-- {
			sb.WriteString(tricky[rng.IntN(len(tricky))])
		}
		texts = append(texts, sb.String())
	}
	for _, line := range strings.SplitAfter(sampleText(t, sample), "\n") {
		if utf8.ValidString(line) {
			texts = append(texts, line)
		}
	}
	texts = append(texts, roundTripTexts[:len(roundTripTexts)-1]...)
	var valid []string
	for _, s := range texts {
		if utf8.ValidString(s) {
			valid = append(valid, s)
		}
	}
	patterns := []Pattern{PatternGPT2, PatternCL100K, PatternQwen2, PatternO200K}
	req := map[string]any{"texts": valid}
	var res []string
	for _, p := range patterns {
		res = append(res, p.Regexp())
	}
	req["patterns"] = res
	in, _ := json.Marshal(req)
	cmd := exec.Command(python, "-c", splitScript)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && strings.Contains(stderr.String(), "No module named 'regex'") {
		t.Skip("skipping: needs the Python regex module")
	}
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, stderr.String())
	}
	var want [][][]string
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	fails := 0
	for pi, p := range patterns {
		for i, s := range valid {
			if got := p.Split(s); !slices.Equal(got, want[pi][i]) && !(len(got) == 0 && len(want[pi][i]) == 0) {
				t.Errorf("%v: %q:\n got %q\nwant %q", p, s, got, want[pi][i])
				if fails++; fails > 20 {
					t.FailNow()
				}
			}
		}
	}
}
