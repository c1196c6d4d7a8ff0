//go:build !amd64 || purego

package cpu

func wgin(src *float32, ld int, dst *float32, ds int, n int)     { panic("cpu: no vector kernels") }
func wgingrad(dst *float32, ld int, src *float32, ss int, n int) { panic("cpu: no vector kernels") }

func wgout(src *float32, ss int, dst *float32, ld int, bias *float32, n int) {
	panic("cpu: no vector kernels")
}
func wgoutgrad(src *float32, ld int, dst *float32, ds int, n int) { panic("cpu: no vector kernels") }

func wgin256(src *float32, ld int, dst *float32, ds int, n int)     { panic("cpu: no vector kernels") }
func wgingrad256(dst *float32, ld int, src *float32, ss int, n int) { panic("cpu: no vector kernels") }

func wgout256(src *float32, ss int, dst *float32, ld int, bias *float32, n int) {
	panic("cpu: no vector kernels")
}
func wgoutgrad256(src *float32, ld int, dst *float32, ds int, n int) { panic("cpu: no vector kernels") }

func interleave256(d, a, b *float32, n int, acc bool) { panic("cpu: no vector kernels") }

func deinterleave256(a, b, src *float32, n int) { panic("cpu: no vector kernels") }

func wg2in256(src *float32, ld, cs int, dst *float32, ds int, n int) { panic("cpu: no vector kernels") }
func wg2ingrad256(dst *float32, ld, cs int, src *float32, ss int, n int) {
	panic("cpu: no vector kernels")
}
func wg2out256(src *float32, ss int, dst *float32, ld int, bias *float32, n int) {
	panic("cpu: no vector kernels")
}
func wg2outgrad256(src *float32, ld int, dst *float32, ds int, n int) {
	panic("cpu: no vector kernels")
}

func wg4in256(src *float32, ld, cs int, dst *float32, ds int, n int) { panic("cpu: no vector kernels") }
func wg4ingrad256(dst *float32, ld, cs int, src *float32, ss int, n int) {
	panic("cpu: no vector kernels")
}
func wg4out256(src *float32, ss int, dst *float32, ld int, bias *float32, n int) {
	panic("cpu: no vector kernels")
}
func wg4outgrad256(src *float32, ld int, dst *float32, ds int, n int) {
	panic("cpu: no vector kernels")
}
