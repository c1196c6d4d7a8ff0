package tensor

import (
	"fmt"
	"slices"

	"github.com/golem-ml/golem/backend"
)

func (t *Tensor) unary(op backend.Unary, a float32, keepY bool) *Tensor {
	out := result(t.shape, t)
	t.be.Map(op, a, out.buf, t.buf)
	if out.requiresGrad {
		out.back = func() {
			var y backend.Buffer
			if keepY {
				y = out.buf
			}
			dx, acc := t.outGrad()
			t.be.MapGrad(op, a, dx, t.buf, y, out.grad, acc)
		}
	}
	return out
}

// Neg returns -t.
func Neg(t *Tensor) *Tensor { return t.unary(backend.Neg, 0, false) }

// Exp returns e^t.
func Exp(t *Tensor) *Tensor { return t.unary(backend.Exp, 0, true) }

// Log returns ln t.
func Log(t *Tensor) *Tensor { return t.unary(backend.Log, 0, false) }

// Tanh returns tanh t.
func Tanh(t *Tensor) *Tensor { return t.unary(backend.Tanh, 0, true) }

// Sigmoid returns 1/(1+e^-t).
func Sigmoid(t *Tensor) *Tensor { return t.unary(backend.Sigmoid, 0, true) }

// ReLU returns max(t, 0).
func ReLU(t *Tensor) *Tensor { return t.unary(backend.ReLU, 0, false) }

// GELU returns the exact GELU, x*Phi(x).
func GELU(t *Tensor) *Tensor { return t.unary(backend.GELU, 0, false) }

// GELUTanh returns GPT-2's tanh approximation of GELU.
func GELUTanh(t *Tensor) *Tensor { return t.unary(backend.GELUTanh, 0, false) }

// SiLU returns t*sigmoid(t).
func SiLU(t *Tensor) *Tensor { return t.unary(backend.SiLU, 0, false) }

// Sqrt returns the square root.
func Sqrt(t *Tensor) *Tensor { return t.unary(backend.Sqrt, 0, true) }

// Square returns t*t.
func Square(t *Tensor) *Tensor { return t.unary(backend.Square, 0, false) }

// Abs returns |t|.
func Abs(t *Tensor) *Tensor { return t.unary(backend.Abs, 0, false) }

// Scale returns a*t.
func Scale(t *Tensor, a float32) *Tensor { return t.unary(backend.Scale, a, false) }

// AddScalar returns t+a.
func AddScalar(t *Tensor, a float32) *Tensor { return t.unary(backend.AddScalar, a, false) }

// Pow returns t^a.
func Pow(t *Tensor, a float32) *Tensor { return t.unary(backend.PowScalar, a, false) }

// Recip returns 1/t.
func Recip(t *Tensor) *Tensor { return t.unary(backend.Recip, 0, true) }

// Clamp limits t to [lo, hi] (gradient 1 inside, 0 outside).
func Clamp(t *Tensor, lo, hi float32) *Tensor {
	return t.unary(backend.ClampMin, lo, false).unary(backend.ClampMax, hi, false)
}

// ClampMin returns max(t, lo).
func ClampMin(t *Tensor, lo float32) *Tensor { return t.unary(backend.ClampMin, lo, false) }

// ClampMax returns min(t, hi).
func ClampMax(t *Tensor, hi float32) *Tensor { return t.unary(backend.ClampMax, hi, false) }

// SwiGLU returns SiLU(gate)*up, the Llama MLP's gate.
func SwiGLU(gate, up *Tensor) *Tensor { return Mul(SiLU(gate), up) }

// broadcast returns the numpy-style broadcast of two shapes with the
// element strides of each operand (0 on broadcast dims).
func broadcast(a, b []int) (backend.Bcast, error) {
	n := max(len(a), len(b))
	if n > backend.MaxDims {
		return backend.Bcast{}, fmt.Errorf("tensor: broadcast of %d dims (max %d)", n, backend.MaxDims)
	}
	if n == 0 {
		return backend.Bcast{Shape: []int{1}, AStride: []int{0}, BStride: []int{0}}, nil
	}
	shape := make([]int, n)
	as, bs := make([]int, n), make([]int, n)
	sa, sb := 1, 1
	for i := n - 1; i >= 0; i-- {
		da, db := 1, 1
		if j := i - (n - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (n - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case da == db:
			shape[i] = da
		case da == 1:
			shape[i] = db
		case db == 1:
			shape[i] = da
		default:
			return backend.Bcast{}, fmt.Errorf("tensor: shapes %v and %v do not broadcast", a, b)
		}
		if da != 1 || shape[i] == 1 {
			as[i] = sa
		}
		if db != 1 || shape[i] == 1 {
			bs[i] = sb
		}
		sa *= da
		sb *= db
	}
	return backend.Bcast{Shape: shape, AStride: as, BStride: bs}, nil
}

func binary(op backend.Binary, a, b *Tensor) *Tensor {
	bc, err := broadcast(a.shape, b.shape)
	if err != nil {
		panic(err)
	}
	shape := bc.Shape
	if len(a.shape) == 0 && len(b.shape) == 0 {
		shape = []int{}
	}
	out := result(slices.Clone(shape), a, b)
	a.be.Binary(op, bc, out.buf, a.buf, b.buf)
	if out.requiresGrad {
		if op == backend.Add && a.Len() == out.Len() && b.Len() == out.Len() {
			// No broadcasting: both inputs get the output's gradient.
			out.back = func() {
				if b.requiresGrad {
					b.addGrad(out)
				}
				if a.requiresGrad {
					a.takeGrad(out)
				}
			}
			return out
		}
		out.back = func() {
			var da, db backend.Buffer
			if a.requiresGrad {
				da = a.GradBuffer()
			}
			if b.requiresGrad {
				db = b.GradBuffer()
			}
			a.be.BinaryGrad(op, bc, da, db, a.buf, b.buf, out.grad)
		}
	}
	return out
}

// Add returns a+b with broadcasting.
func Add(a, b *Tensor) *Tensor { return binary(backend.Add, a, b) }

// Sub returns a-b with broadcasting.
func Sub(a, b *Tensor) *Tensor { return binary(backend.Sub, a, b) }

// Mul returns a*b with broadcasting.
func Mul(a, b *Tensor) *Tensor { return binary(backend.Mul, a, b) }

// Div returns a/b with broadcasting.
func Div(a, b *Tensor) *Tensor { return binary(backend.Div, a, b) }

// Maximum returns the elementwise maximum.
func Maximum(a, b *Tensor) *Tensor { return binary(backend.Max, a, b) }

// Minimum returns the elementwise minimum.
func Minimum(a, b *Tensor) *Tensor { return binary(backend.Min, a, b) }

// Where returns cond ? a : b elementwise (a, b and cond of one size).
func Where(cond []bool, a, b *Tensor) *Tensor {
	if a.Len() != b.Len() || len(cond) != a.Len() {
		panic(fmt.Sprintf("tensor: Where over %v, %v with %d conditions", a.shape, b.shape, len(cond)))
	}
	out := result(slices.Clone(a.shape), a, b)
	a.be.Where(cond, out.buf, a.buf, b.buf)
	if out.requiresGrad {
		out.back = func() {
			var da, db backend.Buffer
			if a.requiresGrad {
				da = a.GradBuffer()
			}
			if b.requiresGrad {
				db = b.GradBuffer()
			}
			a.be.WhereGrad(cond, da, db, out.grad)
		}
	}
	return out
}

// Sum returns the sum of all elements as a 0-dim tensor.
func Sum(t *Tensor) *Tensor {
	out := result([]int{}, t)
	n := t.Len()
	t.be.SumRows(out.buf, t.buf, 1, n)
	if out.requiresGrad {
		out.back = func() { t.be.SumRowsGrad(t.GradBuffer(), out.grad, 1, n) }
	}
	return out
}

// Mean returns the mean of all elements.
func Mean(t *Tensor) *Tensor { return Scale(Sum(t), 1/float32(t.Len())) }

// SumLast sums over the last dimension.
func SumLast(t *Tensor) *Tensor {
	cols := t.Dim(-1)
	rows := t.Len() / max(cols, 1)
	out := result(slices.Clone(t.shape[:len(t.shape)-1]), t)
	t.be.SumRows(out.buf, t.buf, rows, cols)
	if out.requiresGrad {
		out.back = func() { t.be.SumRowsGrad(t.GradBuffer(), out.grad, rows, cols) }
	}
	return out
}

// MeanLast averages over the last dimension.
func MeanLast(t *Tensor) *Tensor { return Scale(SumLast(t), 1/float32(t.Dim(-1))) }

// Dropout zeroes each element with probability p (scaling the rest by
// 1/(1-p)); the mask is a function of seed alone. p == 0 returns t.
func Dropout(t *Tensor, p float32, seed uint64) *Tensor {
	if p == 0 {
		return t
	}
	out := result(slices.Clone(t.shape), t)
	mask := out.saveBuf(t.Len(), false)
	t.be.Dropout(out.buf, mask, t.buf, p, seed)
	if out.requiresGrad {
		out.back = func() {
			n := t.Len()
			bc := backend.Bcast{Shape: []int{n}, AStride: []int{1}, BStride: []int{1}}
			// d/dx (x*mask*s) = mask*s: use Mul's gradient with b = mask*s.
			scaled := t.be.Alloc(n, false)
			t.be.Map(backend.Scale, 1/(1-p), scaled, mask)
			t.be.BinaryGrad(backend.Mul, bc, t.GradBuffer(), nil, t.buf, scaled, out.grad)
			t.be.Free(scaled)
		}
	}
	return out
}
