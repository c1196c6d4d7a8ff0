//go:build !amd64 || purego

package cpu

func wgin(src *float32, ld int, dst *float32, ds int, n int)     { panic("cpu: no vector kernels") }
func wgingrad(dst *float32, ld int, src *float32, ss int, n int) { panic("cpu: no vector kernels") }

func wgout(src *float32, ss int, dst *float32, ld int, bias *float32, n int) {
	panic("cpu: no vector kernels")
}
func wgoutgrad(src *float32, ld int, dst *float32, ds int, n int) { panic("cpu: no vector kernels") }
