//go:build !purego

package cpu

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/cpu"
)

// cpuFlags returns the flags line of /proc/cpuinfo: the kernel's own
// reading of CPUID, to check golem's against.
func cpuFlags(t *testing.T) map[string]bool {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Skipf("no /proc/cpuinfo: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "flags" {
			m := map[string]bool{}
			for _, f := range strings.Fields(v) {
				m[f] = true
			}
			return m
		}
	}
	t.Skip("no flags line in /proc/cpuinfo")
	return nil
}

// The bf16 kernel and AMX are reported as the kernel sees the CPU: the
// bf16 kernel where the CPU has AVX512_BF16, no AMX where it has no tiles.
func TestFeaturesBF16AMX(t *testing.T) {
	flags := cpuFlags(t)
	f := Features()
	wantBF16 := flags["avx512_bf16"] && flags["avx512vl"] && flags["avx512dq"]
	if haveBF16 != wantBF16 || strings.Contains(f, "bf16=avx512bf16") != wantBF16 {
		t.Fatalf("Features() = %q, haveBF16 = %v; /proc/cpuinfo says avx512_bf16 = %v", f, haveBF16, flags["avx512_bf16"])
	}
	if !strings.Contains(f, " amx=") {
		t.Fatalf("Features() = %q has no amx=", f)
	}
	if !flags["amx_tile"] || !flags["amx_bf16"] {
		if !strings.Contains(f, "amx=no(cpuid)") {
			t.Fatalf("Features() = %q on a CPU without AMX, want amx=no(cpuid)", f)
		}
	} else if strings.Contains(f, "amx=no(cpuid)") {
		t.Fatalf("Features() = %q, but /proc/cpuinfo lists amx_tile and amx_bf16", f)
	}
}

// XGETBV reads the same XCR0 that golang.org/x/sys/cpu checked for AVX
// and AVX-512 (bits 1, 2 and 5-7).
func TestXgetbv(t *testing.T) {
	if !cpu.X86.HasOSXSAVE {
		t.Skip("no OSXSAVE")
	}
	eax, _ := xgetbv()
	if avx := eax&6 == 6; avx != cpu.X86.HasAVX {
		t.Fatalf("XCR0 = %#x: AVX state %v, x/sys/cpu HasAVX %v", eax, avx, cpu.X86.HasAVX)
	}
	if z := eax&0xe6 == 0xe6; z != cpu.X86.HasAVX512F && cpu.X86.HasAVX512F {
		t.Fatalf("XCR0 = %#x: AVX-512 state %v, x/sys/cpu HasAVX512F %v", eax, z, cpu.X86.HasAVX512F)
	}
}

// The tile permission is granted exactly where the kernel can enable the
// tile data, and its refusal is an error, not a crash.
func TestRequestAMX(t *testing.T) {
	supp, err := xcompSupported()
	if err != nil {
		t.Skipf("arch_prctl(ARCH_GET_XCOMP_SUPP): %v (a kernel before 5.16)", err)
	}
	err = requestAMX()
	if supp&(1<<xfeatureTileData) == 0 {
		if err == nil {
			t.Fatalf("XCOMP_SUPP = %#x has no tile data, yet ARCH_REQ_XCOMP_PERM succeeded", supp)
		}
		ok, why := detectAMX()
		if ok {
			t.Fatal("detectAMX() = true where the kernel cannot enable tiles")
		}
		t.Logf("no AMX here: %s; the request says %v", why, err)
		return
	}
	if err != nil {
		t.Fatalf("XCOMP_SUPP = %#x has tile data, ARCH_REQ_XCOMP_PERM: %v", supp, err)
	}
}
