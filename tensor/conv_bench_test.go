package tensor

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchConv times a Conv2d forward and backward (input, weight and bias
// gradients) at one shape, the graph released each step as training does.
func benchConv(b *testing.B, N, C, H, W, K, k int) {
	r := rand.New(rand.NewPCG(1, 1))
	x := randT(r, 1, N, C, H, W)
	w := randT(r, 0.1, K, C, k, k)
	bias := randT(r, 0.1, K)
	o := ConvOptions{Padding: [2]int{k / 2, k / 2}}
	step := func() {
		loss := Sum(Conv2d(x, w, bias, o))
		Backward(loss)
		Release(loss)
	}
	step()
	b.ResetTimer()
	b.ReportAllocs()
	for range b.N {
		step()
	}
	// One column matrix of C*k*k x N*H*W floats per step.
	b.ReportMetric(float64(C*k*k*N*H*W*4)/(1<<20), "colMiB")
}

// BenchmarkConv2dMNIST: N=64, 1->32 channels, 28x28, 3x3.
func BenchmarkConv2dMNIST(b *testing.B) { benchConv(b, 64, 1, 28, 28, 32, 3) }

// BenchmarkConv2dResNet: N=32, 64->64 channels, 16x16, 3x3.
func BenchmarkConv2dResNet(b *testing.B) { benchConv(b, 32, 64, 16, 16, 64, 3) }

// BenchmarkConv2dTinyStage1: SimCLR's step on the ResNet tiny's first stage:
// N=256 (two views of 128), 16->16 channels, 28x28, 3x3.
func BenchmarkConv2dTinyStage1(b *testing.B) { benchConv(b, 256, 16, 28, 28, 16, 3) }

// BenchmarkConv2dVQResidual: vqvae-32's residual 3x3 (N=32, 128->64
// channels, 8x8), through Winograd and through the implicit GEMM.
func BenchmarkConv2dVQResidual(b *testing.B) {
	b.Run("winograd", func(b *testing.B) { benchConv(b, 32, 128, 8, 8, 64, 3) })
	b.Run("gemm", func(b *testing.B) {
		defer SetWinograd(SetWinograd(false))
		benchConv(b, 32, 128, 8, 8, 64, 3)
	})
}

// benchStride2 times one of vqvae-32's 4x4 stride-2 pad-1 layers (N=32)
// forward and backward: Conv2d from C channels at HxW, or ConvTranspose2d
// to K channels from HxW.
func benchStride2(b *testing.B, transposed bool, C, H, K int) {
	r := rand.New(rand.NewPCG(1, 1))
	o := ConvOptions{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}
	x, w, bias := randT(r, 1, 32, C, H, H), randT(r, 0.1, K, C, 4, 4), randT(r, 0.1, K)
	op := func() *Tensor { return Conv2d(x, w, bias, o) }
	if transposed {
		w = randT(r, 0.1, C, K, 4, 4)
		op = func() *Tensor { return ConvTranspose2d(x, w, bias, o) }
	}
	step := func() {
		loss := Sum(op())
		Backward(loss)
		Release(loss)
	}
	step()
	b.ResetTimer()
	for range b.N {
		step()
	}
}

// BenchmarkConv2dVQStride2 runs vqvae-32's four 4x4 stride-2 layers (batch
// 32) with Winograd on (F(4x4, 2x2) or F(2x2, 2x2) where winogradS2Min
// lets it: not the 3-channel layers) and off (the GEMM path), and
// BenchmarkConv2dS2Tile 128-channel convolutions of smaller outputs (4x4,
// 6x6, 8x8) in either tile: where F(4x4, 2x2) starts to pay
// (winogradS2Tile).
func BenchmarkConv2dVQStride2(b *testing.B) {
	for _, c := range []struct {
		name       string
		transposed bool
		C, H, K    int
	}{
		{"down0-3to128", false, 3, 32, 128},
		{"down1-128to128", false, 128, 16, 128},
		{"up0-128to128", true, 128, 8, 128},
		{"up1-128to3", true, 128, 16, 3},
	} {
		for _, path := range []string{"f44", "f22", "gemm"} {
			b.Run(c.name+"/"+path, func(b *testing.B) {
				defer s2Path(path)()
				benchStride2(b, c.transposed, c.C, c.H, c.K)
			})
		}
	}
}

func BenchmarkConv2dS2Tile(b *testing.B) {
	for _, H := range []int{8, 12, 16} {
		for _, path := range []string{"f44", "f22"} {
			b.Run(fmt.Sprintf("out%dx%d/%s", H/2, H/2, path), func(b *testing.B) {
				defer s2Path(path)()
				benchStride2(b, false, 128, H, 128)
			})
		}
	}
}

// s2Path sets the 4x4 stride-2 convolutions' path: "f44" (F(4x4, 2x2)
// on every output), "f22" (F(2x2, 2x2)) or "gemm" (Winograd off), and
// returns a func that restores it.
func s2Path(path string) func() {
	old, wino := winogradS2Force, SetWinograd(path != "gemm")
	winogradS2Force = 2
	if path == "f44" {
		winogradS2Force = 4
	}
	return func() { winogradS2Force = old; SetWinograd(wino) }
}
