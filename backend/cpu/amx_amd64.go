//go:build !purego

package cpu

import "golang.org/x/sys/cpu"

// haveBF16: the bfloat16 GEMM micro-kernels of gemm_amd64.s (AVX-512
// with AVX512_BF16's VDPBF16PS, CPUID.(EAX=7,ECX=1):EAX bit 5, which
// golang.org/x/sys/cpu reads only where the OS saves the ZMM registers).
var haveBF16 = haveVec && cpu.X86.HasAVX512BF16

// xgetbv returns XCR0, the register state the OS saves (XGETBV with ECX=0).
// It must only be called where CPUID reports OSXSAVE.
func xgetbv() (eax, edx uint32)

// XCR0 bits of the AMX state: XTILECFG (17) and XTILEDATA (18).
const xcr0AMX = 1<<17 | 1<<18

// detectAMX reports whether this process may run AMX BF16 tiles
// (TDPBF16PS): CPUID.(EAX=7,ECX=0):EDX bits 22 (AMX-BF16) and 24
// (AMX-TILE), the OS saving the tile state (XCR0 bits 17 and 18), and the
// OS granting this process the tile data (Linux's arch_prctl
// ARCH_REQ_XCOMP_PERM). When it may not, why says which check failed.
func detectAMX() (ok bool, why string) {
	switch {
	case !cpu.X86.HasAMXTile || !cpu.X86.HasAMXBF16:
		return false, "cpuid"
	case !cpu.X86.HasOSXSAVE:
		return false, "xcr0"
	}
	if eax, _ := xgetbv(); eax&xcr0AMX != xcr0AMX {
		return false, "xcr0"
	}
	if err := requestAMX(); err != nil {
		return false, "permission"
	}
	return true, ""
}
