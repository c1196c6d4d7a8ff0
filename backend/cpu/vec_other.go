//go:build !amd64 || purego

package cpu

// haveVec is false: there are no vector kernels here.
var haveVec = false

func vexpsub(y, x *float32, n int, m, s float32) float32 { panic("cpu: no vector kernels") }
func vexpsum(x *float32, n int, m float32) float32       { panic("cpu: no vector kernels") }
func vmax(x *float32, n int) float32                     { panic("cpu: no vector kernels") }
func vgelu(y, x *float32, n int)                         { panic("cpu: no vector kernels") }
func vgelugrad(dx, x, dy *float32, n int, set bool)      { panic("cpu: no vector kernels") }
func vaxpy(y, x *float32, n int, a float32)              { panic("cpu: no vector kernels") }
func vdot(x, y *float32, n int) float32                  { panic("cpu: no vector kernels") }

func vlnfwd(y, x, w, b *float32, n int, eps float32) (mean, rstd float32) {
	panic("cpu: no vector kernels")
}
func vlngrad(dx, x, gr, w, pw, pb *float32, n int, mean, rstd float32) {
	panic("cpu: no vector kernels")
}
func vadamw(p, gr, m, v *float32, n int, h *[6]float32) { panic("cpu: no vector kernels") }
func vaxpy4(c, b *float32, ldb, n int, x *[4]float32)   { panic("cpu: no vector kernels") }

func vsilu(y, x *float32, n int) { panic("cpu: no vector kernels") }

func vscal(x *float32, n int, a float32)               { panic("cpu: no vector kernels") }
func vsoftgrad(d, p *float32, n int, s, scale float32) { panic("cpu: no vector kernels") }

func vrelugrad(d, x, g *float32, n int)              { panic("cpu: no vector kernels") }
func vrelu(y, x *float32, n int)                     { panic("cpu: no vector kernels") }
func vinterleave2(d, a, b *float32, n int, acc bool) { panic("cpu: no vector kernels") }

// haveVec256 and haveAVX2FMA are false: there are no AVX2 kernels here
// either.
var haveVec256, haveAVX2FMA = false, false

func vexpsub256(y, x *float32, n int, m, s float32) float32 { panic("cpu: no vector kernels") }
func vexpsum256(x *float32, n int, m float32) float32       { panic("cpu: no vector kernels") }
func vmax256(x *float32, n int) float32                     { panic("cpu: no vector kernels") }
func vgelu256(y, x *float32, n int)                         { panic("cpu: no vector kernels") }
func vgelugrad256(dx, x, dy *float32, n int, set bool)      { panic("cpu: no vector kernels") }
func vaxpy256(y, x *float32, n int, a float32)              { panic("cpu: no vector kernels") }
func vdot256(x, y *float32, n int) float32                  { panic("cpu: no vector kernels") }

func vlnfwd256(y, x, w, b *float32, n int, eps float32) (mean, rstd float32) {
	panic("cpu: no vector kernels")
}
func vlngrad256(dx, x, gr, w, pw, pb *float32, n int, mean, rstd float32) {
	panic("cpu: no vector kernels")
}
func vadamw256(p, gr, m, v *float32, n int, h *[6]float32) { panic("cpu: no vector kernels") }
func vaxpy4256(c, b *float32, ldb, n int, x *[4]float32)   { panic("cpu: no vector kernels") }
func vsilu256(y, x *float32, n int)                        { panic("cpu: no vector kernels") }
func vscal256(x *float32, n int, a float32)                { panic("cpu: no vector kernels") }
func vsoftgrad256(d, p *float32, n int, s, scale float32)  { panic("cpu: no vector kernels") }
func vrelugrad256(d, x, g *float32, n int)                 { panic("cpu: no vector kernels") }
func vrelu256(y, x *float32, n int)                        { panic("cpu: no vector kernels") }
func vinterleave2256(d, a, b *float32, n int, acc bool)    { panic("cpu: no vector kernels") }
func vtanh256(y, x *float32, n int)                        { panic("cpu: no vector kernels") }
func vgelutanh256(y, x *float32, n int)                    { panic("cpu: no vector kernels") }
func vgelutanhgrad256(dx, x, dy *float32, n int, set bool) { panic("cpu: no vector kernels") }
