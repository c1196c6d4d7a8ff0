package eval

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestReportWrite(t *testing.T) {
	r := &Report{
		Title:    "Demo <report>",
		Intro:    "Numbers.",
		Summary:  Table{Header: []string{"model", "correct"}, Rows: [][]string{{"sft", "0.40"}, {"ppo", "0.55"}}},
		Sections: []Section{{Title: "Reward model", Text: "Accuracy.", Table: &Table{Header: []string{"a"}, Rows: [][]string{{"1|2"}}}, Code: "x < y"}},
		Plots: []Plot{{Name: "ppo", Title: "PPO", XLabel: "step", YLabel: "reward", Series: []Series{
			{Name: "reward", X: []float64{1, 2, 3, 4}, Y: []float64{-1, 0, 0.5, 2}},
			{Name: "kl", X: []float64{1, 2, 3}, Y: []float64{0, 0.1, 0.2}},
		}}},
		Data: map[string]float64{"correct": 0.55},
	}
	dir := t.TempDir()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	svg, err := os.ReadFile(filepath.Join(dir, "plots", "ppo.svg"))
	if err != nil {
		t.Fatal(err)
	}
	checkSVG(t, string(svg), []string{"PPO", "step", "reward", "kl"})
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	for _, want := range []string{"# Demo <report>", "| ppo | 0.55 |", `1\|2`, "![PPO](plots/ppo.svg)", "```\nx < y\n```"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	h, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	for _, want := range []string{"<title>Demo &lt;report&gt;</title>", `<figure id="ppo">`, "<svg ", ">PPO</text>", "white-space:pre-wrap", "<td>0.55</td>", "x &lt; y"} {
		if !strings.Contains(string(h), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	var js map[string]float64
	b, _ := os.ReadFile(filepath.Join(dir, "report.json"))
	if err := json.Unmarshal(b, &js); err != nil || js["correct"] != 0.55 {
		t.Errorf("report.json: %s (%v)", b, err)
	}
	if got := r.Summary.Text(); !strings.Contains(got, "ppo       0.55") {
		t.Errorf("summary text:\n%s", got)
	}
}

// checkSVG checks that an SVG is well-formed XML and has the texts.
func checkSVG(t *testing.T, svg string, texts []string) {
	t.Helper()
	var found []string
	dec := xml.NewDecoder(strings.NewReader(svg))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not XML: %v\n%s", err, svg)
		}
		if c, ok := tok.(xml.CharData); ok {
			found = append(found, strings.TrimSpace(string(c)))
		}
	}
	for _, want := range texts {
		if !slices.Contains(found, want) {
			t.Errorf("SVG has no text %q (texts: %q)", want, found)
		}
	}
}

// TestPlotSVG: a plot has its title, axis labels and a legend entry per
// series as text; a long noisy series gets a smoothed line beside its raw
// points, a short one a plain line.
func TestPlotSVG(t *testing.T) {
	var x, y []float64
	for i := range 200 {
		x, y = append(x, float64(i)), append(y, 1-float64(i)/200+0.3*float64(i%2*2-1))
	}
	p := Plot{Title: "SFT: loss", XLabel: "SFT step", YLabel: "loss", Series: []Series{
		{Name: "sft loss", X: x, Y: y},
		{Name: "sft val_loss", X: []float64{0, 100, 199}, Y: []float64{1, 0.5, 0.1}},
	}}
	var b strings.Builder
	if err := p.SVG(&b, 760, 380); err != nil {
		t.Fatal(err)
	}
	svg := b.String()
	checkSVG(t, svg, []string{"SFT: loss", "SFT step", "loss", "sft loss", "sft val_loss", "(dots: raw values; line: moving average)"})
	if n := strings.Count(svg, `class="smoothed"`); n != 1 {
		t.Errorf("%d smoothed lines, want 1 (the 200-point series)", n)
	}
	if n := strings.Count(svg, "<circle"); n != 203 {
		t.Errorf("%d points drawn, want 203", n)
	}
	if err := p.SVG(&b, 100, 100); err == nil {
		t.Error("a 100 x 100 plot: no error")
	}
}
