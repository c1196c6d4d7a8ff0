package main

import "fmt"

// metric formats a held-out metric as %.4f, or "n/a" when it was not
// measured (no held-out examples): a 0.0000 would read as a result.
func metric(m map[string]float64, key string) string {
	v, ok := m[key]
	if !ok {
		return "n/a"
	}
	return fmt.Sprintf("%.4f", v)
}
