package cpu

import (
	"strings"
	"sync"
)

// Features describes the kernels this process uses, for golem version:
// the GEMM micro-kernel, whether the vector element-wise and attention
// kernels run (vec=avx512, or vec=avx2: vec256_amd64.s, AVX2 and FMA),
// which float16 kernels (KV cache, decoding attention, float16 weights)
// do: AVX-512BW's ("f16=avx512bw"), AVX2's with FMA and F16C ("f16=f16c")
// or none ("f16=off"), and which quantized-weight kernels do: AVX-512
// VNNI's ("quant=avx512vnni"), AVX2's ("quant=avx2") or Go's
// ("quant=go"); e.g. "gemm=avx512 vec=avx512
// f16=avx512bw quant=avx512vnni", or "gemm=generic vec=off f16=off
// quant=go" where there is no assembly; the bfloat16 GEMM kernel
// ("bf16=avx512bf16" or "bf16=go") and whether AMX tiles are usable
// ("amx=no(cpuid)", "amx=no(xcr0)", "amx=no(permission)" when Linux
// refuses the tile data, or "amx=yes(unused)": golem has no AMX kernel
// yet, see docs/real-models.md).
func Features() string {
	f := []string{"gemm=" + activeKernel.name, "vec=off", "f16=off"}
	if haveVec {
		f[1] = "vec=avx512"
	} else if haveVec256 {
		f[1] = "vec=avx2"
	}
	if haveHalf512 {
		f[2] = "f16=avx512bw"
	} else if haveHalf2 {
		f[2] = "f16=f16c"
	}
	if haveVNNI {
		f = append(f, "quant=avx512vnni")
	} else if haveQuantAVX2 {
		f = append(f, "quant=avx2")
	} else {
		f = append(f, "quant=go")
	}
	if haveBF16 {
		f = append(f, "bf16=avx512bf16")
	} else if haveBF16AVX2 {
		f = append(f, "bf16=avx2")
	} else {
		f = append(f, "bf16=go")
	}
	if ok, why := amx(); ok {
		f = append(f, "amx=yes(unused)")
	} else {
		f = append(f, "amx=no("+why+")")
	}
	return strings.Join(f, " ")
}

// amx is detectAMX, run once: its permission request changes the
// process's state and need not be repeated.
var amx = sync.OnceValues(detectAMX)
