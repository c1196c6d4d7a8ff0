package cpu

import "github.com/golem-ml/golem/backend"

// The exact GELU fused into a product's output (backend.GELUProducts): an
// epilogue that gemmBlocked runs on each block of C as soon as it holds
// its final values, epCols columns of a row block at a time, so the
// values it reads are still in L2 instead of coming back from memory.

var _ backend.GELUProducts = (*CPU)(nil)

// epCols is the width of the blocks an epilogue finishes: 224 rows (the
// bf16 kernel's mc) of 256 float32 values are 224 KB, within L2.
const epCols = 256

const (
	epNone     = iota
	epGELU     // y = GELU(C)
	epGELUGrad // C *= GELU'(x)
)

// An epilogue is what gemm does to C's blocks once they are final: kind
// says what, with x (y for epGELU) laid out as the whole C, with stride
// ld.
type epilogue struct {
	kind int
	x    []float32
	ld   int
}

// apply finishes rows [i, i+rows) and columns [j, j+cols) of the whole C,
// whose first value is c[0], with stride ldc.
func (e *epilogue) apply(i, j, rows, cols int, c []float32, ldc int) {
	if e.kind == epNone || rows == 0 || cols == 0 {
		return
	}
	for r := 0; r < rows; r++ {
		cr := c[r*ldc : r*ldc+cols]
		o := (i+r)*e.ld + j
		xr := e.x[o : o+cols]
		if e.kind == epGELU {
			gelu(xr, cr)
		} else {
			geluGradMul(cr, xr)
		}
	}
}

// MatMulGELU is backend.GELUProducts's forward: c = the product (g, as
// MatMul or, with bf16, MatMulBF16 computes it), y = GELU(c).
func (c *CPU) MatMulGELU(g backend.Gemm, bf16 bool, a, b, cc, y backend.Buffer) {
	c.matmulEpilogue(g, bf16, a, b, cc, epilogue{kind: epGELU, x: f(y)[g.OffC:], ld: g.LDC})
}

// MatMulGELUGrad is backend.GELUProducts's backward: c = the product
// (alpha op(A) op(B), beta 0) times GELU'(x).
func (c *CPU) MatMulGELUGrad(g backend.Gemm, bf16 bool, a, b, x, cc backend.Buffer) {
	if g.Beta != 0 {
		panic("cpu: MatMulGELUGrad with beta != 0")
	}
	c.matmulEpilogue(g, bf16, a, b, cc, epilogue{kind: epGELUGrad, x: f(x)[g.OffC:], ld: g.LDC})
}

// matmulEpilogue runs one product with ep on its blocks (a quantized B:
// its own kernel, then ep over the whole of C).
func (c *CPU) matmulEpilogue(g backend.Gemm, bf16 bool, a, b, cc backend.Buffer, ep epilogue) {
	if q, ok := b.(*QuantBuf); ok {
		c.matmulQuantB(g, a, q, cc)
		ep.apply(0, 0, g.M, g.N, f(cc)[g.OffC:], g.LDC)
		return
	}
	kern := activeKernel
	if bf16 {
		kern = activeBF16
	}
	matmul(g, a, b, cc, kern, ep)
}
