package ssl

import (
	"fmt"

	"github.com/golem-ml/golem/tensor"
)

// NTXent is SimCLR's normalised temperature-scaled cross-entropy over the
// 2B views z1, z2 [B, D] (row i of z1 and row i of z2 are two views of one
// image): each view's positive is its partner, its negatives the other
// 2B-2 views; the loss is the mean over all 2B views of
//
//	-log exp(cos(z_i, z_pos)/T) / sum_{k != i} exp(cos(z_i, z_k)/T).
func NTXent(z1, z2 *tensor.Tensor, temp float32) *tensor.Tensor {
	B := z1.Dim(0)
	if z2.Dim(0) != B || B < 2 {
		panic(fmt.Sprintf("ssl: NT-Xent of %v and %v (want the same B >= 2)", z1.Shape(), z2.Shape()))
	}
	z := tensor.L2Normalize(tensor.Concat(0, z1, z2), 1e-12)
	sim := tensor.Scale(tensor.MatMul(z, z, false, true), 1/temp)
	// A view is not its own negative: its similarity with itself is masked.
	self := make([]bool, 4*B*B)
	for i := 0; i < 2*B; i++ {
		self[i*2*B+i] = true
	}
	masked := tensor.Where(self, tensor.AddScalar(tensor.Scale(sim, 0), -1e9), sim)
	targets := make([]int32, 2*B)
	for i := 0; i < B; i++ {
		targets[i], targets[B+i] = int32(B+i), int32(i)
	}
	return tensor.CrossEntropy(masked, targets, nil)
}

// contrastive is MoCo v3's InfoNCE of queries q [B, D] against keys k
// [B, D] (key i is query i's positive, the other keys its negatives),
// scaled by 2T as the paper's code does.
func contrastive(q, k *tensor.Tensor, temp float32) *tensor.Tensor {
	B := q.Dim(0)
	logits := tensor.Scale(tensor.MatMul(tensor.L2Normalize(q, 1e-12), tensor.L2Normalize(k, 1e-12), false, true), 1/temp)
	targets := make([]int32, B)
	for i := range targets {
		targets[i] = int32(i)
	}
	return tensor.Scale(tensor.CrossEntropy(logits, targets, nil), 2*temp)
}

// MoCoLoss is MoCo v3's symmetrised loss: the online predictions of view 1
// (q1) against the momentum encoder's keys of view 2 (k2), plus q2 against
// k1. The keys carry no gradient.
func MoCoLoss(q1, q2, k1, k2 *tensor.Tensor, temp float32) *tensor.Tensor {
	return tensor.Add(contrastive(q1, k2, temp), contrastive(q2, k1, temp))
}

// BYOLLoss is BYOL's normalised mean squared error between the online
// predictions p [B, D] and the target projections z [B, D] of the other
// view: mean over rows of ||p/|p| - z/|z|||^2 = 2 - 2 cos(p, z).
func BYOLLoss(p, z *tensor.Tensor) *tensor.Tensor {
	cos := tensor.SumLast(tensor.Mul(tensor.L2Normalize(p, 1e-12), tensor.L2Normalize(z, 1e-12)))
	return tensor.AddScalar(tensor.Scale(tensor.Mean(cos), -2), 2)
}
