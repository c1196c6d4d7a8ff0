package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend"
)

// plainBackend hides the CPU backend's optional abilities (Im2Col,
// BatchNorm), so tests run the path every backend without them takes.
type plainBackend struct{ backend.Backend }

// columnsBackend has the CPU backend's Im2Col but not its ConvGemm, so
// that tests run convolutions through written column matrices.
type columnsBackend struct {
	backend.Backend
	ic backend.Im2Col
}

func (b columnsBackend) Im2Col(g backend.Conv2D, col, x backend.Buffer, pad float32) {
	b.ic.Im2Col(g, col, x, pad)
}

func (b columnsBackend) Col2Im(g backend.Conv2D, dx, col backend.Buffer) { b.ic.Col2Im(g, dx, col) }

// bothPaths runs fn on the CPU backend (with its abilities: Winograd for
// 3x3 stride-1 convolutions, implicit GEMMs), on it with Winograd off,
// with Im2Col's column matrices, and without either.
func bothPaths(t *testing.T, fn func(t *testing.T)) {
	t.Run("implicit", fn)
	t.Run("no-winograd", func(t *testing.T) {
		defer SetWinograd(SetWinograd(false))
		fn(t)
	})
	t.Run("im2col", func(t *testing.T) {
		old := be
		be = columnsBackend{old, old.(backend.Im2Col)}
		defer func() { be = old }()
		fn(t)
	})
	t.Run("index", func(t *testing.T) {
		old := be
		be = plainBackend{old}
		defer func() { be = old }()
		fn(t)
	})
}

func h64(t *Tensor) []float64 {
	h := t.Host()
	out := make([]float64, len(h))
	for i, v := range h {
		out[i] = float64(v)
	}
	return out
}

// naiveConv is the nested-loop definition of PyTorch's conv2d, in float64.
func naiveConv(x []float64, N, C, H, W int, w []float64, K, kh, kw int, b []float64, o ConvOptions) ([]float64, int, int) {
	y, _, OH, OW := naiveConvMag(x, N, C, H, W, w, K, kh, kw, b, o)
	return y, OH, OW
}

// naiveConvMag is naiveConv, and beside y the sums of the magnitudes of
// the terms each output adds (the bias's and the products'), in the same
// pass: naiveConv of |x|, |w| and |b|, the same values bit for bit.
func naiveConvMag(x []float64, N, C, H, W int, w []float64, K, kh, kw int, b []float64, o ConvOptions) (y, mag []float64, OH, OW int) {
	o = o.norm()
	OH = (H+2*o.Padding[0]-o.Dilation[0]*(kh-1)-1)/o.Stride[0] + 1
	OW = (W+2*o.Padding[1]-o.Dilation[1]*(kw-1)-1)/o.Stride[1] + 1
	Cg, Kg := C/o.Groups, K/o.Groups
	y, mag = make([]float64, N*K*OH*OW), make([]float64, N*K*OH*OW)
	for n := range N {
		for k := range K {
			g := k / Kg
			for oh := range OH {
				for ow := range OW {
					s, m := 0.0, 0.0
					if b != nil {
						s, m = b[k], math.Abs(b[k])
					}
					for c := range Cg {
						for i := range kh {
							for j := range kw {
								h := oh*o.Stride[0] - o.Padding[0] + i*o.Dilation[0]
								ww := ow*o.Stride[1] - o.Padding[1] + j*o.Dilation[1]
								if h < 0 || h >= H || ww < 0 || ww >= W {
									continue
								}
								p := x[((n*C+g*Cg+c)*H+h)*W+ww] * w[((k*Cg+c)*kh+i)*kw+j]
								s += p
								m += math.Abs(p)
							}
						}
					}
					y[((n*K+k)*OH+oh)*OW+ow], mag[((n*K+k)*OH+oh)*OW+ow] = s, m
				}
			}
		}
	}
	return y, mag, OH, OW
}

// naiveConvT is the nested-loop definition of conv_transpose2d: each
// input value spreads its kernel into the output.
func naiveConvT(x []float64, N, C, H, W int, w []float64, Kg, kh, kw int, b []float64, o ConvOptions) ([]float64, int, int) {
	o = o.norm()
	OH := (H-1)*o.Stride[0] - 2*o.Padding[0] + o.Dilation[0]*(kh-1) + o.OutputPadding[0] + 1
	OW := (W-1)*o.Stride[1] - 2*o.Padding[1] + o.Dilation[1]*(kw-1) + o.OutputPadding[1] + 1
	Cg, K := C/o.Groups, Kg*o.Groups
	y := make([]float64, N*K*OH*OW)
	for n := range N {
		for k := range K {
			for p := range OH * OW {
				if b != nil {
					y[(n*K+k)*OH*OW+p] = b[k]
				}
			}
		}
		for c := range C {
			g := c / Cg
			for h := range H {
				for ww := range W {
					v := x[((n*C+c)*H+h)*W+ww]
					for k := range Kg {
						for i := range kh {
							for j := range kw {
								oh := h*o.Stride[0] - o.Padding[0] + i*o.Dilation[0]
								ow := ww*o.Stride[1] - o.Padding[1] + j*o.Dilation[1]
								if oh < 0 || oh >= OH || ow < 0 || ow >= OW {
									continue
								}
								y[((n*K+g*Kg+k)*OH+oh)*OW+ow] += v * w[((c*Kg+k)*kh+i)*kw+j]
							}
						}
					}
				}
			}
		}
	}
	return y, OH, OW
}

func closeTo(t *testing.T, name string, got []float32, want []float64, shape, wantShape []int) {
	t.Helper()
	if fmt.Sprint(shape) != fmt.Sprint(wantShape) {
		t.Fatalf("%s: shape %v, want %v", name, shape, wantShape)
	}
	for i, w := range want {
		if d := math.Abs(float64(got[i]) - w); d > 1e-4*math.Max(1, math.Abs(w)) {
			t.Fatalf("%s: element %d is %.7g, want %.7g", name, i, got[i], w)
		}
	}
}

type convCase struct {
	N, C, H, W, K, kh, kw int
	o                     ConvOptions
	bias                  bool
}

// convCases are the options that change the code path: stride 2, padding,
// dilation, groups (depthwise too), no bias, rectangular kernels, output
// padding, and strided padded columns.
func convCases() []convCase {
	return []convCase{
		{2, 3, 6, 5, 4, 3, 3, ConvOptions{}, true},
		{2, 3, 7, 6, 4, 3, 3, ConvOptions{Stride: [2]int{2, 2}}, true},
		{1, 2, 5, 5, 3, 3, 3, ConvOptions{Padding: [2]int{1, 1}}, false},
		{2, 2, 7, 7, 2, 3, 2, ConvOptions{Dilation: [2]int{2, 1}, Padding: [2]int{2, 0}}, true},
		{2, 4, 5, 6, 6, 3, 3, ConvOptions{Groups: 2, Stride: [2]int{2, 1}, Padding: [2]int{1, 1}}, true},
		{1, 4, 5, 5, 4, 3, 3, ConvOptions{Groups: 4, Padding: [2]int{1, 1}}, false},
		{2, 3, 8, 8, 4, 2, 2, ConvOptions{Stride: [2]int{2, 2}, OutputPadding: [2]int{1, 1}}, true},
		{1, 2, 4, 5, 2, 4, 4, ConvOptions{Stride: [2]int{4, 4}}, true}, // a ViT-style patch embedding
		// columns padded on both sides with stride and dilation: the
		// kernel's first and last taps each miss some output columns
		{2, 2, 5, 9, 3, 3, 3, ConvOptions{Stride: [2]int{1, 3}, Padding: [2]int{1, 2}, Dilation: [2]int{1, 2}}, true},
		// rows long enough for the CPU backend's axpy in col2im (16
		// values), strided, and a kernel taller than the padded input reads
		{1, 2, 3, 40, 2, 3, 3, ConvOptions{Padding: [2]int{1, 1}}, true},
		{1, 2, 3, 40, 2, 4, 4, ConvOptions{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}, false},
		{2, 2, 3, 5, 3, 4, 2, ConvOptions{Padding: [2]int{2, 0}, Dilation: [2]int{2, 1}}, true},
		// sub-pixel: vqvae-32's 4x4 stride-2 layers (the transposed
		// convolution and the convolution's input gradient), a 3x3
		// input gradient to fewer channels, mixed strides, and a phase
		// that would start past its first tap (the column path)
		{2, 4, 6, 6, 4, 4, 4, ConvOptions{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}, true},
		{2, 4, 5, 5, 3, 3, 3, ConvOptions{Padding: [2]int{1, 1}}, false},
		{1, 3, 6, 5, 3, 4, 3, ConvOptions{Stride: [2]int{2, 1}, Padding: [2]int{1, 1}}, true},
		{1, 2, 4, 4, 2, 2, 2, ConvOptions{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}, false},
	}
}

func TestConv2dMatchesNaive(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(21, 22))
		cases := convCases()
		for range 6 { // random shapes too
			g := 1 + r.IntN(2)
			cases = append(cases, convCase{1 + r.IntN(3), g * (1 + r.IntN(3)), 3 + r.IntN(6), 3 + r.IntN(6), g * (1 + r.IntN(3)), 1 + r.IntN(3), 1 + r.IntN(3),
				ConvOptions{Stride: [2]int{1 + r.IntN(2), 1 + r.IntN(2)}, Padding: [2]int{r.IntN(2), r.IntN(2)}, Groups: g}, r.IntN(2) == 0})
		}
		for _, c := range cases {
			name := fmt.Sprintf("%+v", c)
			x := randT(r, 1, c.N, c.C, c.H, c.W)
			w := randT(r, 1, c.K, c.C/c.o.norm().Groups, c.kh, c.kw)
			var b *Tensor
			var bh []float64
			if c.bias {
				b = randT(r, 1, c.K)
				bh = h64(b)
			}
			oc := c.o
			oc.OutputPadding = [2]int{}
			want, OH, OW := naiveConv(h64(x), c.N, c.C, c.H, c.W, h64(w), c.K, c.kh, c.kw, bh, oc)
			y := Conv2d(x, w, b, oc)
			closeTo(t, "conv2d"+name, y.Host(), want, y.Shape(), []int{c.N, c.K, OH, OW})

			// Transposed: C input channels to K.
			wt := randT(r, 1, c.C, c.K/oc.norm().Groups, c.kh, c.kw)
			want, OH, OW = naiveConvT(h64(x), c.N, c.C, c.H, c.W, h64(wt), c.K/oc.norm().Groups, c.kh, c.kw, bh, c.o)
			yt := ConvTranspose2d(x, wt, b, c.o)
			closeTo(t, "conv_transpose2d"+name, yt.Host(), want, yt.Shape(), []int{c.N, c.K, OH, OW})
		}
	})
}

func TestGradConv2d(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(23, 24))
		for _, c := range convCases() {
			name := fmt.Sprintf("%+v", c)
			G := c.o.norm().Groups
			x := randT(r, 1, c.N, c.C, c.H, c.W)
			w := randT(r, 0.5, c.K, c.C/G, c.kh, c.kw)
			wt := randT(r, 0.5, c.C, c.K/G, c.kh, c.kw)
			ins, inT := []*Tensor{x, w}, []*Tensor{x, wt}
			if c.bias {
				b := randT(r, 1, c.K)
				ins, inT = append(ins, b), append(inT, b)
			}
			bias := func(in []*Tensor) *Tensor {
				if len(in) > 2 {
					return in[2]
				}
				return nil
			}
			oc := c.o
			oc.OutputPadding = [2]int{}
			gradCheck(t, "conv2d"+name, r, ins, func(in []*Tensor) *Tensor { return Conv2d(in[0], in[1], bias(in), oc) })
			gradCheck(t, "conv_transpose2d"+name, r, inT, func(in []*Tensor) *Tensor { return ConvTranspose2d(in[0], in[1], bias(in), c.o) })
		}
	})
}

// distinct fills x with a random permutation of well-spaced values, so no
// finite-difference step changes which value of a window is largest.
func distinct(r *rand.Rand, x *Tensor) {
	h := x.Host()
	for i, p := range r.Perm(len(h)) {
		h[i] = float32(p)*0.05 - float32(len(h))*0.025
	}
	x.Set(h)
}

func naivePool(x []float64, N, C, H, W int, k, s, p [2]int, max bool) ([]float64, int, int) {
	if s == [2]int{} {
		s = k
	}
	OH := (H+2*p[0]-k[0])/s[0] + 1
	OW := (W+2*p[1]-k[1])/s[1] + 1
	y := make([]float64, N*C*OH*OW)
	for nc := range N * C {
		for oh := range OH {
			for ow := range OW {
				m, sum := math.Inf(-1), 0.0
				for i := range k[0] {
					for j := range k[1] {
						h, w := oh*s[0]-p[0]+i, ow*s[1]-p[1]+j
						if h < 0 || h >= H || w < 0 || w >= W {
							continue
						}
						v := x[(nc*H+h)*W+w]
						m = math.Max(m, v)
						sum += v
					}
				}
				if max {
					y[(nc*OH+oh)*OW+ow] = m
				} else {
					y[(nc*OH+oh)*OW+ow] = sum / float64(k[0]*k[1])
				}
			}
		}
	}
	return y, OH, OW
}

func TestPool2d(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(25, 26))
		type pc struct{ k, s, p [2]int }
		for _, c := range []pc{{[2]int{2, 2}, [2]int{}, [2]int{}}, {[2]int{3, 3}, [2]int{2, 2}, [2]int{1, 1}}, {[2]int{3, 2}, [2]int{1, 2}, [2]int{1, 0}}} {
			name := fmt.Sprintf("%+v", c)
			x := randT(r, 1, 2, 3, 7, 6)
			distinct(r, x)
			for _, isMax := range []bool{true, false} {
				want, OH, OW := naivePool(h64(x), 2, 3, 7, 6, c.k, c.s, c.p, isMax)
				op := AvgPool2d
				if isMax {
					op = MaxPool2d
				}
				y := op(x, c.k, c.s, c.p)
				closeTo(t, fmt.Sprintf("pool max=%v %s", isMax, name), y.Host(), want, y.Shape(), []int{2, 3, OH, OW})
				gradCheck(t, fmt.Sprintf("pool max=%v %s", isMax, name), r, []*Tensor{x}, func(in []*Tensor) *Tensor { return op(in[0], c.k, c.s, c.p) })
			}
		}
		x := randT(r, 1, 2, 3, 4, 5)
		y := GlobalAvgPool2d(x)
		want, _, _ := naivePool(h64(x), 2, 3, 4, 5, [2]int{4, 5}, [2]int{}, [2]int{}, false)
		closeTo(t, "global_avg_pool", y.Host(), want, y.Shape(), []int{2, 3, 1, 1})
		gradCheck(t, "global_avg_pool", r, []*Tensor{x}, func(in []*Tensor) *Tensor { return GlobalAvgPool2d(in[0]) })
	})
}

// TestMaxPoolTiesGoToFirst: a window of equal values sends its whole
// gradient to its first element (row-major), as PyTorch does.
func TestMaxPoolTiesGoToFirst(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		x := FromHost(be, []float32{0, 1, 1, 1, 1, 1, 2, 2}, 1, 2, 2, 2).SetRequiresGrad(true)
		y := MaxPool2d(x, [2]int{2, 2}, [2]int{}, [2]int{})
		loss := Sum(y)
		Backward(loss)
		if got, want := fmt.Sprint(x.Grad().Host()), "[0 1 0 0 0 0 1 0]"; got != want {
			t.Fatalf("max_pool2d gradient %s, want %s", got, want)
		}
		Release(loss)
	})
}

func TestGradGroupNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	N, C, H, W := 2, 6, 3, 4
	for _, groups := range []int{1, 2, 3, 6} {
		x := randT(r, 1, N, C, H, W)
		w, b := randT(r, 1, C), randT(r, 1, C)
		// Reference: normalise each (n, group) over its channels and positions.
		xh, wh, bh := h64(x), h64(w), h64(b)
		want := make([]float64, len(xh))
		m := C / groups * H * W
		for ng := range N * groups {
			blk := xh[ng*m : (ng+1)*m]
			mean, v := 0.0, 0.0
			for _, a := range blk {
				mean += a
			}
			mean /= float64(m)
			for _, a := range blk {
				v += (a - mean) * (a - mean)
			}
			v /= float64(m)
			for i, a := range blk {
				c := (ng%groups)*(C/groups) + i/(H*W)
				want[ng*m+i] = (a-mean)/math.Sqrt(v+1e-5)*wh[c] + bh[c]
			}
		}
		y := GroupNorm(x, groups, w, b, 1e-5)
		closeTo(t, fmt.Sprintf("group_norm %d", groups), y.Host(), want, y.Shape(), x.Shape())
		gradCheck(t, fmt.Sprintf("group_norm %d", groups), r, []*Tensor{x, w, b}, func(in []*Tensor) *Tensor { return GroupNorm(in[0], groups, in[1], in[2], 1e-5) })
		gradCheck(t, fmt.Sprintf("group_norm %d no affine", groups), r, []*Tensor{x}, func(in []*Tensor) *Tensor { return GroupNorm(in[0], groups, nil, nil, 1e-5) })
	}
}

// TestBatchNorm2d: the CPU backend's fused kernel ("im2col") and the
// composition of permutes, LayerNorm and affine ("index") against float64
// loops, and their gradients against finite differences.
func TestBatchNorm2d(t *testing.T) { bothPaths(t, testBatchNorm2d) }

func testBatchNorm2d(t *testing.T) {
	r := rand.New(rand.NewPCG(29, 30))
	N, C, H, W := 3, 4, 2, 3
	x := randT(r, 2, N, C, H, W)
	w, b := randT(r, 1, C), randT(r, 1, C)
	rm := FromHost(be, []float32{0.5, -1, 0, 2}, C)
	rv := FromHost(be, []float32{1, 2, 0.5, 3}, C)
	xh, wh, bh := h64(x), h64(w), h64(b)
	L := N * H * W
	want := make([]float64, len(xh))
	wantRM, wantRV := []float64{0.5, -1, 0, 2}, []float64{1, 2, 0.5, 3}
	for c := range C {
		mean, v := 0.0, 0.0
		at := func(i int) int { n, p := i/(H*W), i%(H*W); return (n*C+c)*H*W + p }
		for i := range L {
			mean += xh[at(i)]
		}
		mean /= float64(L)
		for i := range L {
			v += (xh[at(i)] - mean) * (xh[at(i)] - mean)
		}
		for i := range L {
			want[at(i)] = (xh[at(i)]-mean)/math.Sqrt(v/float64(L)+1e-5)*wh[c] + bh[c]
		}
		wantRM[c] = 0.9*wantRM[c] + 0.1*mean
		wantRV[c] = 0.9*wantRV[c] + 0.1*v/float64(L-1)
	}
	y := BatchNorm2d(x, w, b, rm, rv, true, 0.1, 1e-5)
	closeTo(t, "batch_norm2d train", y.Host(), want, y.Shape(), x.Shape())
	closeTo(t, "running_mean", rm.Host(), wantRM, rm.Shape(), []int{C})
	closeTo(t, "running_var", rv.Host(), wantRV, rv.Shape(), []int{C})
	if rm.HasGrad() || rv.HasGrad() {
		t.Fatal("running statistics got gradients")
	}
	// Evaluation uses the running statistics.
	for i := range want {
		c := i / (H * W) % C
		want[i] = (xh[i]-wantRM[c])/math.Sqrt(wantRV[c]+1e-5)*wh[c] + bh[c]
	}
	ye := BatchNorm2d(x, w, b, rm, rv, false, 0.1, 1e-5)
	closeTo(t, "batch_norm2d eval", ye.Host(), want, ye.Shape(), x.Shape())
	NoGrad(func() { // a frozen encoder's pass (the fused kernel on the CPU)
		yn := BatchNorm2d(x, w, b, rm, rv, false, 0.1, 1e-5)
		closeTo(t, "batch_norm2d eval without gradients", yn.Host(), want, yn.Shape(), x.Shape())
	})

	gradCheck(t, "batch_norm2d train", r, []*Tensor{x, w, b}, func(in []*Tensor) *Tensor { return BatchNorm2d(in[0], in[1], in[2], nil, nil, true, 0.1, 1e-5) })
	gradCheck(t, "batch_norm2d train no affine", r, []*Tensor{x}, func(in []*Tensor) *Tensor { return BatchNorm2d(in[0], nil, nil, nil, nil, true, 0.1, 1e-5) })
	gradCheck(t, "batch_norm2d eval", r, []*Tensor{x, w, b}, func(in []*Tensor) *Tensor { return BatchNorm2d(in[0], in[1], in[2], rm, rv, false, 0.1, 1e-5) })
}

// TestConvBadShapes: a shape that does not fit panics with a message
// naming the op and the shapes, before any kernel runs.
func TestConvBadShapes(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	x := randT(r, 1, 1, 3, 5, 5)
	for _, c := range []struct {
		name, want string
		fn         func()
	}{
		{"channels", "conv2d: weight [4 2 3 3] for 3 input channels in 1 groups", func() { Conv2d(x, randT(r, 1, 4, 2, 3, 3), nil, ConvOptions{}) }},
		{"groups", "weight [4 1 3 3] for 3 input channels in 2 groups", func() { Conv2d(x, randT(r, 1, 4, 1, 3, 3), nil, ConvOptions{Groups: 2}) }},
		{"too small", "input 5x5 is smaller than the 7x7 kernel", func() { Conv2d(x, randT(r, 1, 4, 3, 7, 7), nil, ConvOptions{}) }},
		{"bias", "bias of shape [3] for 4 channels", func() { Conv2d(x, randT(r, 1, 4, 3, 3, 3), randT(r, 1, 3), ConvOptions{}) }},
		{"3-D", "input has shape [3 5 5], want 4 dims", func() { MaxPool2d(Reshape(x, 3, 5, 5), [2]int{2, 2}, [2]int{}, [2]int{}) }},
		{"pool padding", "padding at most half the kernel", func() { AvgPool2d(x, [2]int{2, 2}, [2]int{}, [2]int{2, 0}) }},
		{"output padding", "output padding [2 0] must be smaller than stride", func() {
			ConvTranspose2d(x, randT(r, 1, 3, 2, 3, 3), nil, ConvOptions{Stride: [2]int{2, 2}, OutputPadding: [2]int{2, 0}})
		}},
		{"group norm", "group_norm: 2 groups for input [1 3 5 5]", func() { GroupNorm(x, 2, nil, nil, 1e-5) }},
	} {
		func() {
			defer func() {
				msg := fmt.Sprint(recover())
				if !strings.Contains(msg, c.want) {
					t.Errorf("%s: panic %q, want it to say %q", c.name, msg, c.want)
				}
			}()
			c.fn()
		}()
	}
}

// TestSubPixelMatchesColumns runs vqvae-32's transposed convolutions and
// input gradients (batch 2) both ways: the sub-pixel phases and the
// column matrix with col2im. They sum the same products in another order.
func TestSubPixelMatchesColumns(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for _, c := range []struct {
		Cin, H, Cout, k int
		o               ConvOptions
	}{
		{128, 8, 128, 4, ConvOptions{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}}, // the decoder's first upsampling
		{64, 8, 128, 3, ConvOptions{Padding: [2]int{1, 1}}},                        // a residual 3x3's input gradient
		{16, 5, 24, 4, ConvOptions{Stride: [2]int{2, 2}, Padding: [2]int{2, 2}}},
	} {
		o := c.o.norm()
		N := 2
		OH := (c.H-1)*o.Stride[0] - 2*o.Padding[0] + c.k + o.OutputPadding[0]
		sp := subPixelPlan(N, c.Cin, c.H, c.H, c.Cout, c.k, c.k, OH, OH, o)
		if sp == nil {
			t.Fatalf("%+v: no sub-pixel plan", c)
		}
		x := randT(r, 1, N, c.Cin, c.H, c.H)
		w := randT(r, 0.1, c.Cin, c.Cout, c.k, c.k)
		y := New(be, N, c.Cout, OH, OH)
		sp.run(be, w.buf, x.buf, y.buf, 0)
		g := geom("test", N, c.Cout, OH, OH, c.Cin, c.k, c.k, o)
		want := New(be, N, c.Cout, OH, OH)
		xc := channelMajor(be, x.buf, N, c.Cin, c.H*c.H)
		col := be.Alloc(colLen(g), false)
		imageToCol(be, g, w.buf, xc, col)
		col2imBuf(be, g, want.buf, col)
		be.Free(col)
		be.Free(xc)
		got, wh := y.Host(), want.Host()
		for i := range wh {
			if d := math.Abs(float64(got[i] - wh[i])); d > 1e-5*math.Max(1, math.Abs(float64(wh[i]))) {
				t.Fatalf("%+v: element %d is %g, the column path %g", c, i, got[i], wh[i])
			}
		}
		// adding (beta 1) onto y doubles it
		sp.run(be, w.buf, x.buf, y.buf, 1)
		if g2 := y.Host(); g2[7] != 2*got[7] {
			t.Fatalf("%+v: adding gave %g, want %g", c, g2[7], 2*got[7])
		}
	}
}

// TestImplicitMatchesColumns runs vqvae-32's convolutions (batch 2)
// forward and backward on the CPU backend, whose GEMMs read the column
// matrices straight from the images, and through Im2Col's written
// matrices: the GEMMs pack the same values in the same order, so the
// outputs and every gradient are the same bit for bit (Winograd off: it
// would take the residual 3x3; TestWinogradMatchesGemm checks it).
func TestImplicitMatchesColumns(t *testing.T) {
	defer SetWinograd(SetWinograd(false))
	s2 := ConvOptions{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}
	for _, c := range []struct {
		name       string
		transposed bool
		C, H, K, k int
		o          ConvOptions
	}{
		{"downsampling", false, 128, 16, 128, 4, s2},
		{"first downsampling", false, 3, 32, 128, 4, s2},
		{"residual 3x3", false, 128, 8, 64, 3, ConvOptions{Padding: [2]int{1, 1}}},
		{"residual 1x1", false, 64, 8, 128, 1, ConvOptions{}},
		{"upsampling", true, 128, 8, 128, 4, s2},
		{"last upsampling", true, 128, 16, 3, 4, s2},
	} {
		run := func(b backend.Backend) []float32 {
			old := be
			be = b
			defer func() { be = old }()
			r := rand.New(rand.NewPCG(51, 52))
			x := randT(r, 1, 2, c.C, c.H, c.H)
			var w *Tensor
			if c.transposed {
				w = randT(r, 0.1, c.C, c.K, c.k, c.k)
			} else {
				w = randT(r, 0.1, c.K, c.C, c.k, c.k)
			}
			bias := randT(r, 1, c.K)
			var y *Tensor
			if c.transposed {
				y = ConvTranspose2d(x, w, bias, c.o)
			} else {
				y = Conv2d(x, w, bias, c.o)
			}
			Backward(Sum(Mul(y, randT(r, 1, y.Shape()...))))
			var out []float32
			for _, v := range []*Tensor{y, x.Grad(), w.Grad(), bias.Grad()} {
				out = append(out, v.Host()...)
			}
			return out
		}
		got := run(be)
		want := run(columnsBackend{be, be.(backend.Im2Col)})
		for i, v := range want {
			if got[i] != v {
				t.Fatalf("%s: value %d (output, then the gradients of x, w and bias) is %g implicitly, %g through Im2Col", c.name, i, got[i], v)
			}
		}
	}
}
