package eval

import (
	"math"
	"math/bits"
)

// pyRandom is Python's random.Random: the Mersenne Twister seeded as
// Python seeds it from an integer, and the sample algorithm of its
// random.sample. lm-evaluation-harness draws its few-shot examples with
// random.Random(1234).sample, one draw per evaluated item in order; this
// reproduces the same draws, so golem's k-shot prompts are lm-eval's.
type pyRandom struct {
	mt  [624]uint32
	idx int
}

func newPyRandom(seed uint64) *pyRandom {
	r := &pyRandom{}
	// random.seed(int): init_by_array over the 32-bit words of |seed|.
	key := []uint32{uint32(seed)}
	if hi := uint32(seed >> 32); hi != 0 {
		key = append(key, hi)
	}
	r.initGenrand(19650218)
	mt := &r.mt
	i, j := 1, 0
	for k := max(624, len(key)); k > 0; k-- {
		mt[i] = (mt[i] ^ ((mt[i-1] ^ (mt[i-1] >> 30)) * 1664525)) + key[j] + uint32(j)
		i++
		j++
		if i >= 624 {
			mt[0] = mt[623]
			i = 1
		}
		if j >= len(key) {
			j = 0
		}
	}
	for k := 623; k > 0; k-- {
		mt[i] = (mt[i] ^ ((mt[i-1] ^ (mt[i-1] >> 30)) * 1566083941)) - uint32(i)
		i++
		if i >= 624 {
			mt[0] = mt[623]
			i = 1
		}
	}
	mt[0] = 0x80000000
	return r
}

func (r *pyRandom) initGenrand(s uint32) {
	r.mt[0] = s
	for i := 1; i < 624; i++ {
		r.mt[i] = 1812433253*(r.mt[i-1]^(r.mt[i-1]>>30)) + uint32(i)
	}
	r.idx = 624
}

func (r *pyRandom) uint32() uint32 {
	mt := &r.mt
	if r.idx >= 624 {
		for k := 0; k < 624; k++ {
			y := mt[k]&0x80000000 | mt[(k+1)%624]&0x7fffffff
			v := mt[(k+397)%624] ^ y>>1
			if y&1 != 0 {
				v ^= 0x9908b0df
			}
			mt[k] = v
		}
		r.idx = 0
	}
	y := mt[r.idx]
	r.idx++
	y ^= y >> 11
	y ^= y << 7 & 0x9d2c5680
	y ^= y << 15 & 0xefc60000
	y ^= y >> 18
	return y
}

// below is random._randbelow_with_getrandbits(n), n in (0, 2^32).
func (r *pyRandom) below(n int) int {
	k := bits.Len(uint(n))
	for {
		v := int(r.uint32() >> (32 - k)) // getrandbits(k)
		if v < n {
			return v
		}
	}
}

// sample is random.sample(range(n), k): k distinct indices below n.
func (r *pyRandom) sample(n, k int) []int {
	out := make([]int, k)
	setsize := 21
	if k > 5 {
		setsize += int(math.Pow(4, math.Ceil(math.Log(float64(k*3))/math.Log(4))))
	}
	if n <= setsize {
		pool := make([]int, n)
		for i := range pool {
			pool[i] = i
		}
		for i := range k {
			j := r.below(n - i)
			out[i] = pool[j]
			pool[j] = pool[n-i-1]
		}
		return out
	}
	selected := map[int]bool{}
	for i := range k {
		j := r.below(n)
		for selected[j] {
			j = r.below(n)
		}
		selected[j] = true
		out[i] = j
	}
	return out
}
