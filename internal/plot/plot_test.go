package plot

import (
	"math"
	"strings"
	"testing"
)

func TestSmooth(t *testing.T) {
	ys := []float64{1, -1, 1, -1, 1, -1, 1, -1, 1}
	sm := Smooth(ys, 5)
	for i, v := range sm[2 : len(sm)-2] {
		if math.Abs(v) > 0.21 {
			t.Errorf("smoothed[%d] = %g: the alternation is not averaged out", i+2, v)
		}
	}
	c := Smooth([]float64{3, 3, 3, nanF(), 3}, 3)
	if c[0] != 3 || c[4] != 3 || !math.IsNaN(c[3]) {
		t.Errorf("Smooth of a constant with a NaN: %v", c)
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
	if err := p.SVG(&sb, 200, 150); err != nil {
		t.Fatal(err)
	}
}

func nanF() float64 { var z float64; return z / z }

func TestMatrixSVG(t *testing.T) {
	m := Matrix{Title: "zero-shot", Labels: []string{"red circle", "blue <square>"}, Counts: [][]int{{3, 1}, {0, 4}}}
	var b strings.Builder
	if err := m.SVG(&b); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	for _, want := range []string{"<svg", ">3</text>", ">4</text>", "blue &lt;square&gt;", `fill-opacity="0.750"`, `fill-opacity="1.000"`} {
		if !strings.Contains(s, want) {
			t.Errorf("the SVG lacks %s", want)
		}
	}
	if strings.Contains(s, ">0</text>") {
		t.Error("a zero count is written")
	}
	bad := Matrix{Labels: []string{"a", "b"}, Counts: [][]int{{1, 2}, {3}}}
	if err := bad.SVG(&b); err == nil {
		t.Error("a ragged matrix drew")
	}
}
