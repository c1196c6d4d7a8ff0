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
	// The float16 kernels: AVX-512's where there are, else AVX2's with
	// F16C, else none.
	want := "f16=off"
	if haveHalf512 {
		want = "f16=avx512bw"
	} else if haveHalf2 {
		want = "f16=f16c"
	}
	if !strings.Contains(f, " "+want+" ") {
		t.Fatalf("Features() = %q, want %s (AVX-512BW %v, AVX2+FMA+F16C %v)", f, want, haveHalf512, haveHalf2)
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
	// The bf16 kernels: AVX512_BF16's where there are, else AVX2's,
	// else Go's; SgemmBF16 runs the one named.
	bf16 := "bf16=go"
	if haveBF16 {
		bf16 = "bf16=avx512bf16"
	} else if haveAVX2FMA {
		bf16 = "bf16=avx2"
	}
	if !strings.Contains(f, " "+bf16+" ") || !strings.HasSuffix(bf16, "="+activeBF16.name) {
		t.Fatalf("Features() = %q, want %s (AVX512_BF16 %v, AVX2+FMA %v, SgemmBF16's kernel %s)", f, bf16, haveBF16, haveAVX2FMA, activeBF16.name)
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
