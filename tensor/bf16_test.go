package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// bf16Case is one op whose products SetBF16 moves to bfloat16, over host
// inputs of the given shapes.
type bf16Case struct {
	name   string
	shapes [][]int
	fn     func(in []*Tensor) *Tensor
	// bias is the input whose gradient is a reduction, float32 exactly
	// as without bf16 (0: none).
	bias int
}

func bf16Cases() []bf16Case {
	ids := []int32{3, 0, 7, 7, 1, 5, 2, 9, 4, 6, 8, 0}
	return []bf16Case{
		{"matmul", [][]int{{9, 40}, {40, 17}}, func(i []*Tensor) *Tensor { return MatMul(i[0], i[1], false, false) }, 0},
		{"matmul_tt_batched", [][]int{{2, 40, 9}, {2, 17, 40}}, func(i []*Tensor) *Tensor { return MatMul(i[0], i[1], true, true) }, 0},
		{"matmul_shared_b", [][]int{{3, 5, 33}, {33, 6}}, func(i []*Tensor) *Tensor { return MatMul(i[0], i[1], false, false) }, 0},
		{"linear", [][]int{{2, 6, 48}, {20, 48}, {20}}, func(i []*Tensor) *Tensor { return Linear(i[0], i[1], i[2]) }, 2},
		{"linear_inout", [][]int{{7, 31}, {31, 12}, {12}}, func(i []*Tensor) *Tensor { return LinearInOut(i[0], i[1], i[2]) }, 2},
		{"attention", [][]int{{2, 9, 4 * 16}, {2, 9, 2 * 16}, {2, 9, 2 * 16}}, func(i []*Tensor) *Tensor {
			return Attention(i[0], i[1], i[2], AttentionOptions{Heads: 4, KVHeads: 2, Causal: true})
		}, 0},
		{"attention_qkv", [][]int{{2, 10, 3 * 2 * 16}}, func(i []*Tensor) *Tensor {
			return AttentionQKV(i[0], AttentionOptions{Heads: 2, Causal: true})
		}, 0},
		{"linear_cross_entropy", [][]int{{12, 24}, {10, 24}}, func(i []*Tensor) *Tensor {
			return Mul(LinearCrossEntropy(i[0], i[1], ids, nil), i[0].Scope().Scalar(be, 3))
		}, 0},
	}
}

// runBF16Case makes the inputs in a scope (with bfloat16 products or not),
// runs the op and backpropagates sum(out*w); it returns the output and the
// inputs' gradients.
func runBF16Case(c bf16Case, bf16 bool, host [][]float32, w []float32) (out []float32, grads [][]float32) {
	s := NewScope()
	defer s.Close()
	s.SetBF16(bf16)
	ins := make([]*Tensor, len(host))
	for i, h := range host {
		ins[i] = s.FromHost(be, h, c.shapes[i]...).SetRequiresGrad(true)
	}
	o := c.fn(ins)
	Backward(Sum(Mul(o, s.FromHost(be, w[:o.Len()], o.shape...))))
	for _, in := range ins {
		grads = append(grads, in.Grad().Host())
	}
	return o.Host(), grads
}

// maxAbs is the largest magnitude in s.
func maxAbs(s []float32) float64 {
	var m float64
	for _, v := range s {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

// In a scope with bfloat16 products, the ops' outputs and gradients are
// those of float32 within bfloat16's rounding (1/64 of the values' scale),
// yet not equal to them: the products really ran in bfloat16, forward and
// backward (a bias's gradient, a sum, stays float32 exactly). The
// gradients also match central finite differences of the
// float32 op at that tolerance.
func TestBF16Products(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, c := range bf16Cases() {
		t.Run(c.name, func(t *testing.T) {
			host := make([][]float32, len(c.shapes))
			for i, sh := range c.shapes {
				host[i] = make([]float32, numel(sh))
				for j := range host[i] {
					host[i][j] = float32(r.NormFloat64())
				}
			}
			w := make([]float32, 4096)
			for i := range w {
				w[i] = float32(r.NormFloat64())
			}
			o32, g32 := runBF16Case(c, false, host, w)
			o16, g16 := runBF16Case(c, true, host, w)
			close := func(what string, got, want []float32) {
				t.Helper()
				tol, differ := maxAbs(want)/64, 0
				for i := range want {
					if d := math.Abs(float64(got[i] - want[i])); d > tol || math.IsNaN(d) {
						t.Fatalf("%s[%d] = %v in bf16, %v in float32: more than bf16's %g apart", what, i, got[i], want[i], tol)
					}
					if got[i] != want[i] {
						differ++
					}
				}
				if differ == 0 {
					t.Fatalf("%s: bf16 gives float32's values exactly: the products were not rounded", what)
				}
			}
			close("output", o16, o32)
			for i := range g32 {
				if i == c.bias && i > 0 {
					for j := range g32[i] {
						if g16[i][j] != g32[i][j] {
							t.Fatalf("bias gradient[%d] = %v in bf16, %v in float32: a reduction must stay float32", j, g16[i][j], g32[i][j])
						}
					}
					continue
				}
				close(fmt.Sprintf("grad %d", i), g16[i], g32[i])
			}
			// Finite differences of the float32 op against the bf16
			// gradient, at a few elements of each input.
			eval := func() float64 {
				var sum float64
				NoGrad(func() {
					ins := make([]*Tensor, len(host))
					for i, h := range host {
						ins[i] = FromHost(be, h, c.shapes[i]...)
					}
					for i, v := range c.fn(ins).Host() {
						sum += float64(v) * float64(w[i])
					}
				})
				return sum
			}
			for k := range host {
				scale := maxAbs(g32[k])
				for _, i := range r.Perm(len(host[k]))[:min(8, len(host[k]))] {
					orig := host[k][i]
					const eps = 1e-2
					host[k][i] = orig + eps
					fp := eval()
					host[k][i] = orig - eps
					fm := eval()
					host[k][i] = orig
					num := (fp - fm) / (2 * eps)
					if d := math.Abs(num - float64(g16[k][i])); d > scale/64+1e-3 {
						t.Fatalf("input %d elem %d: bf16 gradient %v, finite differences %v", k, i, g16[k][i], num)
					}
				}
			}
		})
	}
}

// Children of a bf16 scope run their products in bfloat16 too; a scope
// that did not ask, and no scope at all, stay float32.
func TestBF16ScopeInherited(t *testing.T) {
	s := NewScope()
	defer s.Close()
	if s.BF16() || (*Scope)(nil).BF16() {
		t.Fatal("a new scope, or no scope, has bf16 products")
	}
	s.SetBF16(true)
	if c := s.Child(); !c.BF16() {
		t.Fatal("a child of a bf16 scope has float32 products")
	}
	x := s.FromHost(be, []float32{1.00390625, 1}, 1, 2) // 1 + 2^-8 rounds to 1 in bf16
	y := s.FromHost(be, []float32{1, 0}, 2, 1)
	if got := MatMul(x, y, false, false).Host()[0]; got != 1 {
		t.Fatalf("bf16 product = %v, want 1 (1+2^-8 rounded)", got)
	}
	xf := FromHost(be, []float32{1.00390625, 1}, 1, 2)
	if got := MatMul(xf, FromHost(be, []float32{1, 0}, 2, 1), false, false).Host()[0]; got != 1.00390625 {
		t.Fatalf("float32 product = %v, want 1.00390625", got)
	}
}
