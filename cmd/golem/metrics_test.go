package main

import "testing"

func TestMetricNA(t *testing.T) {
	if got := metric(map[string]float64{}, "val_accuracy"); got != "n/a" {
		t.Errorf("no held-out metric prints %q, want n/a", got)
	}
	if got := metric(map[string]float64{"val_accuracy": 0}, "val_accuracy"); got != "0.0000" {
		t.Errorf("a measured 0 prints %q, want 0.0000", got)
	}
}
