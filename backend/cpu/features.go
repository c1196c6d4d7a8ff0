package cpu

import "strings"

// Features describes the kernels this process uses, for golem version:
// the GEMM micro-kernel, whether the vector (AVX-512) element-wise and
// attention kernels run, and whether the float16 KV-cache kernels do
// and whether the quantized-weight kernels do ("gemm=avx512 vec=avx512
// f16=avx512bw quant=avx512vnni", or "gemm=generic vec=off f16=off
// quant=go" where there is no assembly).
func Features() string {
	f := []string{"gemm=" + activeKernel.name, "vec=off", "f16=off"}
	if haveVec {
		f[1] = "vec=avx512"
	}
	if haveHalf {
		f[2] = "f16=avx512bw"
	}
	if haveVNNI {
		f = append(f, "quant=avx512vnni")
	} else {
		f = append(f, "quant=go")
	}
	return strings.Join(f, " ")
}
