//go:build !purego

package cpu

import "golang.org/x/sys/cpu"

// haveVec reports whether the AVX-512 kernels of vec_amd64.s can run.
var haveVec = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512DQ

//go:noescape
func vexpsub(y, x *float32, n int, m, s float32) float32

//go:noescape
func vexpsum(x *float32, n int, m float32) float32

//go:noescape
func vmax(x *float32, n int) float32

//go:noescape
func vgelu(y, x *float32, n int)

//go:noescape
func vgelugrad(dx, x, dy *float32, n int, set bool)

//go:noescape
func vaxpy(y, x *float32, n int, a float32)

//go:noescape
func vdot(x, y *float32, n int) float32

//go:noescape
func vlnfwd(y, x, w, b *float32, n int, eps float32) (mean, rstd float32)

//go:noescape
func vlngrad(dx, x, gr, w, pw, pb *float32, n int, mean, rstd float32)

//go:noescape
func vadamw(p, gr, m, v *float32, n int, h *[6]float32)

//go:noescape
func vaxpy4(c, b *float32, ldb, n int, x *[4]float32)

//go:noescape
func vsilu(y, x *float32, n int)

//go:noescape
func vscal(x *float32, n int, a float32)

//go:noescape
func vsoftgrad(d, p *float32, n int, s, scale float32)

//go:noescape
func vrelugrad(d, x, gr *float32, n int)

//go:noescape
func vrelu(y, x *float32, n int)

//go:noescape
func vinterleave2(d, a, b *float32, n int, acc bool)
