package tensor

import (
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
