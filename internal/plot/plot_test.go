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
