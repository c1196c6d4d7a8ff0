package cpu

import (
	"strings"
	"testing"
)

// Features names the GEMM kernel Sgemm runs, one this machine can run.
func TestFeaturesNamesActiveKernel(t *testing.T) {
	f := Features()
	if !strings.HasPrefix(f, "gemm="+gemmKernels[0].name+" ") {
		t.Fatalf("Features() = %q, want gemm=%s first", f, gemmKernels[0].name)
	}
	if haveVec != strings.Contains(f, "vec=avx512") {
		t.Fatalf("Features() = %q, haveVec = %v", f, haveVec)
	}
	// AVX2 and FMA without AVX-512 (a laptop, an AMD EPYC of before Zen
	// 4): the AVX2 kernels, named so.
	if want := haveAVX2FMA && !haveVec; want != strings.Contains(f, "vec=avx2") || want != haveVec256 {
		t.Fatalf("Features() = %q, AVX2+FMA without AVX-512 %v, haveVec256 %v", f, want, haveVec256)
	}
	if !haveVec && !haveVec256 && !strings.Contains(f, "vec=off") {
		t.Fatalf("Features() = %q, no vector kernels: want vec=off", f)
	}
}
