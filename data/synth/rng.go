package synth

import "math/bits"

// rng is a small SplitMix64 generator. golem's built-in data must be the
// same for a seed on every Go release and platform, so it does not depend on
// math/rand's streams.
type rng struct{ s uint64 }

const golden = 0x9e3779b97f4a7c15

// newRNG returns a generator for seed on an independent stream: the same
// seed with another stream number gives unrelated numbers.
func newRNG(seed int64, stream uint64) *rng {
	r := &rng{s: mix64(uint64(seed)^mix64(stream+golden)) + stream}
	return r
}

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (r *rng) next() uint64 {
	r.s += golden
	return mix64(r.s)
}

// intn returns a number in [0, n); n must be positive.
func (r *rng) intn(n int) int {
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int(hi)
}

// between returns a number in [lo, hi].
func (r *rng) between(lo, hi int) int { return lo + r.intn(hi-lo+1) }

// float returns a number in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// chance reports true with probability p.
func (r *rng) chance(p float64) bool { return r.float() < p }

func (r *rng) shuffle(n int, swap func(i, j int)) {
	for i := n - 1; i > 0; i-- {
		swap(i, r.intn(i+1))
	}
}

func pick[T any](r *rng, xs []T) T { return xs[r.intn(len(xs))] }

// hash64 is FNV-1a over the strings (with a separator), finished with a
// SplitMix64 mix so that its low bits are well spread.
func hash64(parts ...string) uint64 {
	h := uint64(14695981039346656037)
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			h ^= uint64(p[i])
			h *= 1099511628211
		}
		h ^= 0xff
		h *= 1099511628211
	}
	return mix64(h)
}
