package cpu

import "testing"

// BenchmarkAllocFree is a step's allocation pattern as the pool sees it:
// 32 buffers of 16 sizes taken, then all given back, the sizes repeating
// every step.
func BenchmarkAllocFree(b *testing.B) {
	be := New()
	var bufs [32]*Buf
	for b.Loop() {
		for i := range bufs {
			bufs[i] = be.Alloc(64+i%16*1000, false).(*Buf)
		}
		for _, x := range bufs {
			be.Free(x)
		}
	}
}
