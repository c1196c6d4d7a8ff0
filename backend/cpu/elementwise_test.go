package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/golem-ml/golem/backend"
)

// MapGrad without acc writes dx whole, never reading it (a new gradient's
// buffer holds whatever the pool left, NaNs here): bit for bit what adding
// into zeros gives, for every function, over several of its pieces and
// both ways of splitting the work; with acc it adds to what dx holds.
func TestMapGradWrites(t *testing.T) {
	c := New()
	r := rand.New(rand.NewPCG(3, 4))
	n := 3*mapGradPiece + 17
	x, y, dy := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = float32(0.1 + 2*r.Float64())
		dy[i] = float32(r.NormFloat64())
	}
	for op := backend.Neg; op <= backend.Recip; op++ {
		for _, th := range []int{1, 2} {
			prev := SetThreads(th)
			c.Map(op, 1.5, &Buf{D: y}, &Buf{D: x})
			want := make([]float32, n)
			c.MapGrad(op, 1.5, &Buf{D: want}, &Buf{D: x}, &Buf{D: y}, &Buf{D: dy}, true)
			got := make([]float32, n)
			for i := range got {
				got[i] = float32(math.NaN())
			}
			c.MapGrad(op, 1.5, &Buf{D: got}, &Buf{D: x}, &Buf{D: y}, &Buf{D: dy}, false)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("op %d, %d threads: dx[%d] = %v written, %v added to zero", op, th, i, got[i], want[i])
				}
			}
			c.MapGrad(op, 1.5, &Buf{D: got}, &Buf{D: x}, &Buf{D: y}, &Buf{D: dy}, true)
			for i := range got {
				if got[i] != want[i]+want[i] {
					t.Fatalf("op %d, %d threads: dx[%d] = %v after adding %v twice", op, th, i, got[i], want[i])
				}
			}
			SetThreads(prev)
		}
	}
}
