//go:build !amd64 || purego

package cpu

func vdots(out, q, k *float32, ldk, n, d int, scale float32) { panic("cpu: no vector kernels") }

func vwsum(o, p, v *float32, ldv, n, d int, acc bool) { panic("cpu: no vector kernels") }

var haveHalf, haveHalf512, haveHalf2 = false, false, false

func vdotsh(out, q *float32, k *uint16, ldk, n, d int, scale float32) {
	panic("cpu: no vector kernels")
}

func vwsumh(o, p *float32, v *uint16, ldv, n, d int) { panic("cpu: no vector kernels") }

func vtohalf(dst *uint16, src *float32, n int) { panic("cpu: no vector kernels") }

var (
	scoresHalf map[int]func(out, q *float32, k *uint16, blocks int, scale float32)
	wsumHalf   map[int]func(o, p *float32, v *uint16, n int)
)

func packHalfStrided512(dst []float32, ds int, src []uint16, ss, kc, cnt, width int) {
	panic("cpu: no vector kernels")
}

func packHalfStrided256(dst []float32, ds int, src []uint16, ss, kc, cnt, width int) {
	panic("cpu: no vector kernels")
}

func vdotsh2x8(out, q *float32, k *uint16, ldk, blocks, d int, scale float32) {
	panic("cpu: no vector kernels")
}

func vfromhalf2(dst *float32, src *uint16, n int) { panic("cpu: no vector kernels") }

func vdotsh2r3(out *float32, ldo int, x *float32, ldx int, k *uint16, ldk, n, d int) {
	panic("cpu: no vector kernels")
}

func vdotsh2r2(out *float32, ldo int, x *float32, ldx int, k *uint16, ldk, n, d int) {
	panic("cpu: no vector kernels")
}
