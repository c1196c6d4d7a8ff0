package chattemplate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golem-ml/golem/internal/shared"
)

// oracleCase is one render, as testdata/hf_render.py reads it.
type oracleCase struct {
	Name                string          `json:"name"`
	Template            string          `json:"template"`
	Messages            json.RawMessage `json:"messages"`
	Tools               json.RawMessage `json:"tools,omitempty"`
	AddGenerationPrompt bool            `json:"add_generation_prompt"`
	BOSToken            string          `json:"bos_token,omitempty"`
	EOSToken            string          `json:"eos_token,omitempty"`
	Vars                map[string]any  `json:"vars,omitempty"`
	Date                string          `json:"date"`
}

type oracleResult struct {
	Out   *string `json:"out"`
	Error string  `json:"error"`
}

// runOracle renders cases with transformers' Jinja environment
// (testdata/hf_render.py). It skips when python3 with jinja2 is missing,
// and fails under CI, which installs it (.ci/e2e-deps.sh).
func runOracle(t *testing.T, cases []oracleCase) []oracleResult {
	t.Helper()
	missing := func(err error) {
		shared.Missing(t, fmt.Sprintf("python3 with jinja2 is missing (apt-get install python3-jinja2; CI installs it with .ci/e2e-deps.sh): %v", err))
	}
	python, err := shared.Python3()
	if err != nil {
		missing(err)
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "testdata/hf_render.py")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && strings.Contains(stderr.String(), "No module named 'jinja2'") {
		missing(err) // the script's import is the check: no second start of Python
	}
	if err != nil {
		t.Fatalf("hf_render.py: %v\n%s", err, stderr.String())
	}
	var res []oracleResult
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(cases) {
		t.Fatalf("hf_render.py: %d results for %d cases: %v", len(res), len(cases), err)
	}
	return res
}

// corpus is every template of testdata/templates with every message set of
// testdata/messages.json, with and without tools and the generation prompt.
func corpus(t *testing.T) []oracleCase {
	var sets map[string]json.RawMessage
	readJSON(t, "testdata/messages.json", &sets)
	var tools json.RawMessage
	readJSON(t, "testdata/tools.json", &tools)
	files, err := filepath.Glob("testdata/templates/*.jinja")
	if err != nil || len(files) < 7 {
		t.Fatalf("testdata/templates: %d templates, %v", len(files), err)
	}
	// GOLEM_CHAT_TEMPLATES=DIR adds DIR's .jinja files (real models'
	// templates, say) to the corpus.
	if dir := os.Getenv("GOLEM_CHAT_TEMPLATES"); dir != "" {
		more, err := filepath.Glob(filepath.Join(dir, "*.jinja"))
		if err != nil || len(more) == 0 {
			t.Fatalf("GOLEM_CHAT_TEMPLATES=%s: no .jinja files (%v)", dir, err)
		}
		files = append(files, more...)
	}
	var cases []oracleCase
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range slices.Sorted(func(yield func(string) bool) {
			for k := range sets {
				if !yield(k) {
					return
				}
			}
		}) {
			for _, agp := range []bool{false, true} {
				for _, tl := range []json.RawMessage{nil, tools} {
					cases = append(cases, oracleCase{
						Name:     fmt.Sprintf("%s/%s/gen=%v/tools=%v", filepath.Base(f), name, agp, tl != nil),
						Template: string(src), Messages: sets[name], Tools: tl, AddGenerationPrompt: agp,
						BOSToken: "<s>", EOSToken: "</s>", Date: "2026-12-06",
					})
				}
			}
		}
	}
	return cases
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func render(c oracleCase) (string, error) {
	tmpl, err := Parse(c.Template)
	if err != nil {
		return "", err
	}
	vars := map[string]any{}
	for k, v := range c.Vars {
		vars[k] = v
	}
	if c.BOSToken != "" {
		vars["bos_token"] = c.BOSToken
	}
	if c.EOSToken != "" {
		vars["eos_token"] = c.EOSToken
	}
	now, err := time.Parse("2006-01-02", c.Date)
	if err != nil {
		return "", err
	}
	// Real templates stay far inside DefaultLimits: a fiftieth of its
	// steps renders every case of the corpus.
	lim := DefaultLimits
	lim.Steps /= 50
	return tmpl.RenderLimited(context.Background(), Input{Messages: c.Messages, Tools: c.Tools, AddGenerationPrompt: c.AddGenerationPrompt, Vars: vars, Now: now}, lim)
}

// compare renders every case in Go and in the oracle: outputs must be
// equal byte for byte, and a case fails in both or in neither.
func compare(t *testing.T, cases []oracleCase) {
	want := runOracle(t, cases)
	ok := 0
	for i, c := range cases {
		got, err := render(c)
		w := want[i]
		if w.Out != nil {
			got, w.Out = unaddressed(got), new(unaddressed(*w.Out))
		}
		switch {
		case w.Out == nil && err == nil:
			t.Errorf("%s: Go rendered %q; transformers fails: %s", c.Name, got, w.Error)
		case w.Out != nil && err != nil:
			t.Errorf("%s: Go fails: %v; transformers renders %q", c.Name, err, *w.Out)
		case w.Out != nil && got != *w.Out:
			t.Errorf("%s: renders differ\n go: %q\n hf: %q", c.Name, got, *w.Out)
		case w.Out == nil:
			var re *RaiseError
			if strings.Contains(w.Error, "TemplateError") && !errorsAs(err, &re) {
				t.Errorf("%s: transformers raises %s; Go fails otherwise: %v", c.Name, w.Error, err)
			}
			ok++
		default:
			ok++
		}
	}
	t.Logf("%d of %d renders equal transformers'", ok, len(cases))
}

// pyAddress is the address in Python's repr of an object
// (<generator object sync_do_map at 0x7f81f19ade40>), which changes from
// run to run; golem prints 0x0 there.
var pyAddress = regexp.MustCompile(`(<\w+ object (?:\w+ )?at )0x[0-9a-f]+>`)

// unaddressed is s with the addresses in Python's reprs left out.
func unaddressed(s string) string { return pyAddress.ReplaceAllString(s, "${1}0x…>") }

func TestTemplatesMatchTransformers(t *testing.T) {
	compare(t, corpus(t))
}

func errorsAs(err error, re **RaiseError) bool { return errors.As(err, re) }
