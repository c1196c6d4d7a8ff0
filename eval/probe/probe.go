// Package probe measures how well frozen features separate classes, the
// standard evaluation of self-supervised encoders: a linear probe
// (multinomial logistic regression trained on the training set's
// features, accuracy on the test set's) and k-nearest neighbours (k = 20,
// cosine similarity, each neighbour's vote weighted by exp(sim / 0.07), as
// InstDisc and DINO do). Features are rows of host memory; the training
// and the similarity products run on a backend.
package probe

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/golem-ml/golem/backend"
	"github.com/golem-ml/golem/nn"
	"github.com/golem-ml/golem/optim"
	"github.com/golem-ml/golem/tensor"
)

// Set is n feature vectors of D values (row-major X) and their class ids.
type Set struct {
	X []float32
	D int
	Y []int
}

// Len is the number of rows.
func (s Set) Len() int { return len(s.Y) }

func (s Set) check(what string) error {
	if s.D <= 0 || len(s.X) != s.D*len(s.Y) || len(s.Y) == 0 {
		return fmt.Errorf("probe: %s: %d values for %d rows of %d", what, len(s.X), len(s.Y), s.D)
	}
	for i, y := range s.Y {
		if y < 0 {
			return fmt.Errorf("probe: %s: row %d has no label (%d)", what, i, y)
		}
	}
	return nil
}

func checkPair(train, test Set) error {
	if err := train.check("training set"); err != nil {
		return err
	}
	if err := test.check("test set"); err != nil {
		return err
	}
	if train.D != test.D {
		return fmt.Errorf("probe: training features have %d values, test features %d", train.D, test.D)
	}
	return nil
}

// LinearOptions configures Linear. Zero values get the defaults noted.
type LinearOptions struct {
	Steps       int     // AdamW steps (default 1500)
	Batch       int     // rows a step (default 1024)
	LR          float64 // peak learning rate, cosine to 0 (default 5e-3)
	WeightDecay float64 // on the weight matrix (default 1e-4)
	Seed        uint64
}

// Linear trains multinomial logistic regression on train's features
// (standardised by train's per-feature mean and deviation) with AdamW on
// random mini-batches, and returns its accuracy on test.
func Linear(be backend.Backend, train, test Set, o LinearOptions) (float64, error) {
	if err := checkPair(train, test); err != nil {
		return 0, err
	}
	if o.Steps <= 0 {
		o.Steps = 1500
	}
	if o.Batch <= 0 {
		o.Batch = 1024
	}
	if o.LR <= 0 {
		o.LR = 5e-3
	}
	if o.WeightDecay == 0 {
		o.WeightDecay = 1e-4
	}
	K := 0
	for _, y := range append(append([]int(nil), train.Y...), test.Y...) {
		K = max(K, y+1)
	}
	D := train.D
	mean, std := moments(train)
	xtr, xte := standardise(train, mean, std), standardise(test, mean, std)
	in := nn.NewInit(be, o.Seed)
	lin := nn.NewLinear(in, D, K, true, 0)
	params := nn.Params(lin)
	opt := optim.NewAdamW(params, 0.9, 0.999, 1e-8, float32(o.WeightDecay))
	sched := optim.Cosine{Max: o.LR, Min: 0, Warmup: 0, Decay: o.Steps}
	r := rand.New(rand.NewPCG(o.Seed, 0x1b))
	B := min(o.Batch, train.Len())
	xb := make([]float32, B*D)
	yb := make([]int32, B)
	for step := 0; step < o.Steps; step++ {
		for k := 0; k < B; k++ {
			i := r.IntN(train.Len())
			copy(xb[k*D:(k+1)*D], xtr[i*D:(i+1)*D])
			yb[k] = int32(train.Y[i])
		}
		if err := linearStep(be, lin, opt, xb, yb, B, D); err != nil {
			return 0, err
		}
		opt.Update(float32(sched.At(step)))
	}
	correct := 0
	const chunk = 4096
	tensor.NoGrad(func() {
		for lo := 0; lo < test.Len(); lo += chunk {
			hi := min(lo+chunk, test.Len())
			s := tensor.NewScope()
			h := lin.Forward(s.FromHost(be, xte[lo*D:hi*D], hi-lo, D)).Host()
			s.Close()
			for i := lo; i < hi; i++ {
				if argmax(h[(i-lo)*K:(i-lo+1)*K]) == test.Y[i] {
					correct++
				}
			}
		}
	})
	return float64(correct) / float64(test.Len()), nil
}

// linearStep adds the gradients of one mini-batch's loss (rows xb [B, D],
// classes yb) in a scope of its own.
func linearStep(be backend.Backend, lin *nn.Linear, opt *optim.AdamW, xb []float32, yb []int32, B, D int) error {
	s := tensor.NewScope()
	defer s.Close()
	opt.ZeroGrad()
	loss := tensor.CrossEntropy(lin.Forward(s.FromHost(be, xb, B, D)), yb, nil)
	tensor.Backward(loss)
	if l := loss.Item(); math.IsNaN(float64(l)) {
		return errors.New("probe: the linear probe's loss is NaN")
	}
	return nil
}

// moments returns each feature's mean and standard deviation over s (a
// deviation of 0 counts as 1: a constant feature stays 0).
func moments(s Set) (mean, std []float64) {
	mean, std = make([]float64, s.D), make([]float64, s.D)
	for i := 0; i < s.Len(); i++ {
		for j, v := range s.X[i*s.D : (i+1)*s.D] {
			mean[j] += float64(v)
		}
	}
	for j := range mean {
		mean[j] /= float64(s.Len())
	}
	for i := 0; i < s.Len(); i++ {
		for j, v := range s.X[i*s.D : (i+1)*s.D] {
			d := float64(v) - mean[j]
			std[j] += d * d
		}
	}
	for j := range std {
		std[j] = math.Sqrt(std[j] / float64(s.Len()))
		if std[j] < 1e-8 {
			std[j] = 1
		}
	}
	return mean, std
}

func standardise(s Set, mean, std []float64) []float32 {
	out := make([]float32, len(s.X))
	for i, v := range s.X {
		j := i % s.D
		out[i] = float32((float64(v) - mean[j]) / std[j])
	}
	return out
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// KNNTemp is the temperature of the k-NN vote's weights exp(sim / T).
const KNNTemp = 0.07

// KNN classifies each test row by its k nearest training rows by cosine
// similarity, each voting for its class with weight exp(sim / KNNTemp)
// (InstDisc's and DINO's weighted k-NN), and returns the accuracy.
func KNN(be backend.Backend, train, test Set, k int) (float64, error) {
	if err := checkPair(train, test); err != nil {
		return 0, err
	}
	if k <= 0 {
		return 0, fmt.Errorf("probe: k is %d, want at least 1", k)
	}
	k = min(k, train.Len())
	K := 0
	for _, y := range train.Y {
		K = max(K, y+1)
	}
	D, N := train.D, train.Len()
	correct := 0
	tensor.NoGrad(func() {
		all := tensor.NewScope() // the normalised training rows, for every chunk
		defer all.Close()
		trn := tensor.L2Normalize(all.FromHost(be, train.X, N, D), 1e-12)
		const chunk = 256
		idx := make([]int, k)
		sims := make([]float32, 0)
		votes := make([]float64, K)
		for lo := 0; lo < test.Len(); lo += chunk {
			hi := min(lo+chunk, test.Len())
			s := all.Child() // a chunk's similarities
			sims = tensor.MatMul(tensor.L2Normalize(s.FromHost(be, test.X[lo*D:hi*D], hi-lo, D), 1e-12), trn, false, true).HostInto(sims)
			s.Close()
			for i := lo; i < hi; i++ {
				row := sims[(i-lo)*N : (i-lo+1)*N]
				top(row, idx)
				clear(votes)
				for _, j := range idx {
					votes[train.Y[j]] += math.Exp(float64(row[j]) / KNNTemp)
				}
				best := 0
				for c := range votes {
					if votes[c] > votes[best] {
						best = c
					}
				}
				if best == test.Y[i] {
					correct++
				}
			}
		}
	})
	return float64(correct) / float64(test.Len()), nil
}

// top fills idx with the indices of row's len(idx) largest values (ties
// to the lower index), largest first.
func top(row []float32, idx []int) {
	k := len(idx)
	n := 0
	for j, v := range row {
		if n == k && !(v > row[idx[k-1]]) {
			continue
		}
		p := min(n, k-1)
		for p > 0 && v > row[idx[p-1]] {
			idx[p] = idx[p-1]
			p--
		}
		idx[p] = j
		if n < k {
			n++
		}
	}
}
