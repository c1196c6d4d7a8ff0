package eval

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
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
	f, err := os.Open(filepath.Join(dir, "plots", "ppo.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 720 || b.Dy() != 360 {
		t.Errorf("plot is %v", b)
	}
	// Both series are drawn in their colours.
	seen := map[[3]uint32]bool{}
	for y := 0; y < 360; y++ {
		for x := 0; x < 720; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 8, g >> 8, b >> 8}] = true
		}
	}
	for i := 0; i < 2; i++ {
		c := palette[i]
		if !seen[[3]uint32{uint32(c.R), uint32(c.G), uint32(c.B)}] {
			t.Errorf("series %d colour not in the image", i)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	for _, want := range []string{"# Demo <report>", "| ppo | 0.55 |", `1\|2`, "![PPO](plots/ppo.png)", "```\nx < y\n```"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	h, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	for _, want := range []string{"<title>Demo &lt;report&gt;</title>", `<img src="plots/ppo.png"`, "<td>0.55</td>", "x &lt; y"} {
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

func TestTicks(t *testing.T) {
	got := ticks(0, 1, 5)
	if len(got) < 3 || got[0] != 0 || got[len(got)-1] != 1 {
		t.Errorf("ticks(0, 1) = %v", got)
	}
	// A plot of nothing, or of NaNs, still draws.
	p := Plot{Series: []Series{{X: []float64{1}, Y: []float64{nanF()}}}}
	var sb strings.Builder
	if err := p.PNG(&sb, 200, 100); err != nil {
		t.Fatal(err)
	}
}

func nanF() float64 { var z float64; return z / z }
