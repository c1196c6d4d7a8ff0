//go:build !purego

package cpu

import "golang.org/x/sys/cpu"

//go:noescape
func vdots(out, q, k *float32, ldk, n, d int, scale float32)

//go:noescape
func vwsum(o, p, v *float32, ldv, n, d int, acc bool)

// haveHalf: the float16 kernels (AVX-512 with 16-bit masked loads).
var haveHalf = haveVec && cpu.X86.HasAVX512BW

//go:noescape
func vdotsh(out, q *float32, k *uint16, ldk, n, d int, scale float32)

//go:noescape
func vwsumh(o, p *float32, v *uint16, ldv, n, d int)

//go:noescape
func vtohalf(dst *uint16, src *float32, n int)
