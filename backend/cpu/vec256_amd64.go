//go:build !purego

package cpu

import "golang.org/x/sys/cpu"

// haveVec256 reports whether the AVX2+FMA kernels of vec256_amd64.s run:
// on machines with AVX2 and FMA but not the AVX-512 of haveVec, which
// wins where both exist. Each kernel vXXX256 has the contract of vXXX.
var haveVec256 = !haveVec && cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func vexpsub256(y, x *float32, n int, m, s float32) float32

//go:noescape
func vexpsum256(x *float32, n int, m float32) float32

//go:noescape
func vmax256(x *float32, n int) float32

//go:noescape
func vgelu256(y, x *float32, n int)

//go:noescape
func vgelugrad256(dx, x, dy *float32, n int, set bool)

//go:noescape
func vaxpy256(y, x *float32, n int, a float32)

//go:noescape
func vdot256(x, y *float32, n int) float32

//go:noescape
func vlnfwd256(y, x, w, b *float32, n int, eps float32) (mean, rstd float32)

//go:noescape
func vlngrad256(dx, x, gr, w, pw, pb *float32, n int, mean, rstd float32)

//go:noescape
func vadamw256(p, gr, m, v *float32, n int, h *[6]float32)

//go:noescape
func vaxpy4256(c, b *float32, ldb, n int, x *[4]float32)

//go:noescape
func vsilu256(y, x *float32, n int)

//go:noescape
func vscal256(x *float32, n int, a float32)

//go:noescape
func vsoftgrad256(d, p *float32, n int, s, scale float32)

//go:noescape
func vrelugrad256(d, x, gr *float32, n int)

//go:noescape
func vrelu256(y, x *float32, n int)

//go:noescape
func vinterleave2256(d, a, b *float32, n int, acc bool)

// haveAVX2FMA reports whether the AVX2 kernels can run here at all, as
// they can on AVX-512 machines too (where haveVec wins): tests force them.
var haveAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func vtanh256(y, x *float32, n int)

//go:noescape
func vgelutanh256(y, x *float32, n int)

//go:noescape
func vgelutanhgrad256(dx, x, dy *float32, n int, set bool)
