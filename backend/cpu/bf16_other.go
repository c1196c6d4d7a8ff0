//go:build !amd64 || purego

package cpu

// haveBF16: no bfloat16 assembly here; the Go kernel runs.
var haveBF16 = false

func detectAMX() (ok bool, why string) { return false, "cpuid" }

// haveBF16AVX2: nor the AVX2 ones.
var haveBF16AVX2 = false
