//go:build !amd64 || purego

package cpu

// haveVNNI is false: the quantized products run the scalar definition.
var haveVNNI = false

func qdot8x4(q *int8, d *float32, c *int32, wq *[4]*byte, ws *[4]*float32, nch int, out *[4]float32) {
	panic("cpu: no vector kernels")
}

func qdot4x4(q *int8, d *float32, c *int32, wq *[4]*byte, ws *[4]*float32, nch int, out *[4]float32) {
	panic("cpu: no vector kernels")
}

func qdot8x2x4(q *int8, d *float32, c *int32, wq *[4]*byte, ws *[4]*float32, nch int, out *[8]float32) {
	panic("cpu: no vector kernels")
}

func qdot4x2x4(q *int8, d *float32, c *int32, wq *[4]*byte, ws *[4]*float32, nch int, out *[8]float32) {
	panic("cpu: no vector kernels")
}

func quantChunks(x *float32, nch int, q *int8, d *float32, corr *int32, shift int32) {
	panic("cpu: no vector kernels")
}
