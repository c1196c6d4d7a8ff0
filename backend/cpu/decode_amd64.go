//go:build !purego

package cpu

//go:noescape
func vdots(out, q, k *float32, ldk, n, d int, scale float32)

//go:noescape
func vwsum(o, p, v *float32, ldv, n, d int, acc bool)
