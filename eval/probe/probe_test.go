package probe

import (
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
)

// blobs is n rows of d features around one of k well-separated centres
// (class = centre), plus noise of the given size.
func blobs(n, d, k int, noise float64, seed uint64) Set {
	r := rand.New(rand.NewPCG(seed, 9))
	cr := rand.New(rand.NewPCG(1, 1)) // the same centres for every set
	centres := make([]float64, k*d)
	for i := range centres {
		centres[i] = 3 * cr.NormFloat64()
	}
	s := Set{D: d}
	for i := 0; i < n; i++ {
		c := i % k
		for j := 0; j < d; j++ {
			s.X = append(s.X, float32(centres[c*d+j]+noise*r.NormFloat64()))
		}
		s.Y = append(s.Y, c)
	}
	return s
}

func TestLinearSeparates(t *testing.T) {
	be := cpu.New()
	acc, err := Linear(be, blobs(600, 8, 4, 0.5, 1), blobs(200, 8, 4, 0.5, 2), LinearOptions{Steps: 200})
	if err != nil {
		t.Fatal(err)
	}
	if acc < 0.97 {
		t.Errorf("linear probe on separable blobs: accuracy %.3f, want >= 0.97", acc)
	}
	// Labels that the features do not predict: chance (1/4), not better.
	noise := blobs(600, 8, 4, 0.5, 1)
	test := blobs(400, 8, 4, 0.5, 2)
	r := rand.New(rand.NewPCG(5, 5))
	for i := range test.Y {
		test.Y[i] = r.IntN(4)
	}
	if acc, _ = Linear(be, noise, test, LinearOptions{Steps: 200}); acc > 0.4 {
		t.Errorf("linear probe on random test labels: accuracy %.3f, want about 0.25", acc)
	}
}

// k-NN's vote is weighted by exp(sim/0.07): one very close neighbour of
// class 1 outvotes two distant ones of class 0 (a plain majority would
// say 0); with k = 1 the nearest decides.
func TestKNNWeightedVote(t *testing.T) {
	be := cpu.New()
	train := Set{D: 2, X: []float32{
		1, 0.02, // class 1, cosine ~1 with the query
		0.6, 0.8, // class 0, cosine 0.6
		0.6, -0.8, // class 0, cosine 0.6
		-1, 0, // class 1, far
	}, Y: []int{1, 0, 0, 1}}
	test := Set{D: 2, X: []float32{2, 0}, Y: []int{1}}
	for _, k := range []int{1, 3} {
		acc, err := KNN(be, train, test, k)
		if err != nil {
			t.Fatal(err)
		}
		if acc != 1 {
			t.Errorf("k=%d: accuracy %v, want 1 (the close class-1 neighbour outweighs two far class-0 ones)", k, acc)
		}
	}
	// 600 test rows: three chunks of similarities against one normalised
	// training matrix.
	acc, _ := KNN(be, blobs(400, 6, 5, 0.5, 3), blobs(600, 6, 5, 0.5, 4), 20)
	if acc < 0.97 {
		t.Errorf("k-NN on separable blobs: %.3f", acc)
	}
}

func TestTop(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 50; trial++ {
		row := make([]float32, 1+r.IntN(60))
		for i := range row {
			row[i] = float32(r.IntN(10)) // ties
		}
		k := 1 + r.IntN(len(row))
		idx := make([]int, k)
		top(row, idx)
		order := make([]int, len(row))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return row[order[a]] > row[order[b]] })
		for i := 0; i < k; i++ {
			if row[idx[i]] != row[order[i]] {
				t.Fatalf("row %v k=%d: top %v, want values of %v", row, k, idx, order[:k])
			}
		}
	}
}

func TestBadSets(t *testing.T) {
	be := cpu.New()
	good := blobs(10, 3, 2, 0.1, 1)
	for _, c := range []struct {
		train, test Set
		want        string
	}{
		{good, Set{D: 4, X: make([]float32, 4), Y: []int{0}}, "training features have 3 values, test features 4"},
		{Set{D: 3, X: make([]float32, 5), Y: []int{0, 1}}, good, "training set: 5 values for 2 rows of 3"},
		{good, Set{D: 3, X: make([]float32, 3), Y: []int{-1}}, "test set: row 0 has no label"},
	} {
		_, err := Linear(be, c.train, c.test, LinearOptions{Steps: 1})
		_, err2 := KNN(be, c.train, c.test, 20)
		for _, e := range []error{err, err2} {
			if e == nil || !strings.Contains(e.Error(), c.want) {
				t.Errorf("error %v, want %q", e, c.want)
			}
		}
	}
}
