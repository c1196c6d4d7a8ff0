package cpu

// genericKernel is the pure-Go micro-kernel, used where no assembly kernel
// fits the machine.
var genericKernel = &gemmKernel{
	name: "go", mr: 4, nr: 16, vec: 4,
	kc: 256, nc: 1024, mc: 64,
	compute: genericCompute,
}

// genericCompute is the reference for the assembly kernels' contract: each
// value of C is alpha times its dot product (summed in p order) plus beta
// times C, and C is not read when beta is 0.
func genericCompute(kc int, a, b, c []float32, ldc, mr, nr int, alpha, beta float32) {
	w := roundUp(nr, 4)
	var acc [4 * 16]float32
	a = a[:kc*mr]
	b = b[:kc*w]
	for p := 0; p < kc; p++ {
		ap := a[p*mr : p*mr+mr]
		bp := b[p*w : p*w+nr]
		for i, av := range ap {
			row := acc[i*16 : i*16+16]
			for j, bv := range bp {
				row[j] += av * bv
			}
		}
	}
	for i := 0; i < mr; i++ {
		row := c[i*ldc : i*ldc+nr]
		for j := range row {
			v := alpha * acc[i*16+j]
			if beta != 0 {
				v += beta * row[j]
			}
			row[j] = v
		}
	}
}
