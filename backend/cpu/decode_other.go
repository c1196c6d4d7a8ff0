//go:build !amd64 || purego

package cpu

func vdots(out, q, k *float32, ldk, n, d int, scale float32) { panic("cpu: no vector kernels") }

func vwsum(o, p, v *float32, ldv, n, d int, acc bool) { panic("cpu: no vector kernels") }
