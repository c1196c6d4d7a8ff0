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
	quant := "quant=go"
	if haveVNNI {
		quant = "quant=avx512vnni"
	} else if haveQuantAVX2 {
		quant = "quant=avx2"
	}
	if !strings.Contains(f, " "+quant+" ") {
		t.Fatalf("Features() = %q, want %s (haveVNNI %v, haveQuantAVX2 %v)", f, quant, haveVNNI, haveQuantAVX2)
	}
}
