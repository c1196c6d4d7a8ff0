//go:build !purego

package cpu

import "testing"

// The AVX2 bf16 packing checked as TestPackPairsVector checks the packing
// this machine runs: also on AVX512_BF16 machines, where it does not run
// by default.
func TestPackPairs256(t *testing.T) {
	if !haveAVX2FMA {
		t.Skip("no AVX2 and FMA here")
	}
	ps, pr := pairStrided, pairRowsPack
	pairStrided, pairRowsPack = packStridedPairs256, packRowsPairs256
	defer func() { pairStrided, pairRowsPack = ps, pr }()
	checkPairPacking(t)
}

// Decoding's AVX2 kernels (bdot256, cvtPairs256) checked as TestBdotRows
// and TestConvertPairs check those this machine runs: also on
// AVX512_BF16 machines, with their kernels turned off.
func TestBdotRows256(t *testing.T) {
	if !haveAVX2FMA {
		t.Skip("no AVX2 and FMA here")
	}
	b, b2 := haveBF16, haveBF16AVX2
	haveBF16, haveBF16AVX2 = false, true
	defer func() { haveBF16, haveBF16AVX2 = b, b2 }()
	TestBdotRows(t)
	TestConvertPairs(t)
}
